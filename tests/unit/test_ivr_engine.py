"""The IVR state machine, event by event (pure: no Asterisk)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from telephonist.ivr.engine import (
    Digit,
    IvrMachine,
    Play,
    PlaybackDone,
    Route,
    Step,
    StopPlayback,
    Timeout,
    Wait,
    is_open,
)
from telephonist.ivr.model import IvrConfig

CONFIG = IvrConfig.model_validate(
    {
        "timezone": "Europe/Paris",
        "entries": [
            {"number": "200", "name": "main-line", "menu": "main", "direct_dial": True},
            {
                "number": "201",
                "name": "office",
                "menu": "main",
                "hours": {"mon-fri": "08:00-18:00"},
                "holidays": ["2026-12-25"],
                "after_hours": {"voicemail": "100"},
            },
        ],
        "menus": {
            "main": {
                "greeting": ["welcome"],
                "timeout": 4,
                "retries": 1,
                "options": {
                    "1": {"menu": "sales"},
                    "2": {"queue": "support"},
                    "8": {"menu": "order"},
                    "0": "repeat",
                },
                "on_failure": {"queue": "support"},
            },
            "sales": {"greeting": ["sales"], "options": {"1": {"queue": "sales"}, "*": "back"}},
            "order": {
                "greeting": ["enter-order"],
                "input": {
                    "name": "order",
                    "min_digits": 3,
                    "max_digits": 6,
                    "then": {"queue": "support"},
                },
            },
        },
    }
)
NOON = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # a Monday, 12:00 in Paris


def machine(entry: str = "main-line", exts: frozenset[str] = frozenset({"1001"})) -> IvrMachine:
    e = CONFIG.entry(entry)
    assert e is not None
    return IvrMachine(CONFIG, e, exts)


def routes(cmds: list) -> list[str]:
    return [c.action.describe() for c in cmds if isinstance(c, Route)]


def test_greeting_then_wait_then_option() -> None:
    m = machine()
    cmds = m.start(NOON)
    assert cmds[0] == Play(("welcome",), "en")
    assert m.handle(PlaybackDone()) == [Wait(4)]
    out = m.handle(Digit("2"))
    assert routes(out) == ["queue:support"]
    assert Step("main", "digit", "2", "queue:support") in out
    assert m.state == "done"
    assert m.handle(Digit("1")) == []  # nothing after the caller left


def test_barge_in_stops_the_prompt() -> None:
    m = machine(exts=frozenset())
    m.start(NOON)
    out = m.handle(Digit("1"))
    assert out[0] == StopPlayback()
    assert Play(("sales",), "en") in out
    assert m.menu_name == "sales"


def test_back_returns_to_previous_menu() -> None:
    m = machine(exts=frozenset())
    m.start(NOON)
    m.handle(PlaybackDone())
    m.handle(Digit("1"))
    m.handle(PlaybackDone())
    out = m.handle(Digit("*"))
    assert m.menu_name == "main"
    assert Play(("welcome",), "en") in out


def test_invalid_retry_then_failure_destination() -> None:
    m = machine()
    m.start(NOON)
    m.handle(PlaybackDone())
    out = m.handle(Digit("9"))
    assert Step("main", "invalid", "9") in out
    assert Play(("invalid", "welcome"), "en") in out
    m.handle(PlaybackDone())
    out = m.handle(Digit("7"))
    assert [s.event for s in out if isinstance(s, Step)] == ["invalid", "failure", "route"]
    assert routes(out) == ["queue:support"]


def test_silence_times_out_then_failure() -> None:
    m = machine()
    m.start(NOON)
    m.handle(PlaybackDone())
    out = m.handle(Timeout())
    assert Step("main", "timeout") in out
    assert Play(("please-try-again", "welcome"), "en") in out
    m.handle(PlaybackDone())
    assert routes(m.handle(Timeout())) == ["queue:support"]


def test_multi_digit_input_with_terminator() -> None:
    m = machine()
    m.start(NOON)
    m.handle(Digit("8"))
    for d in "4711":
        assert m.handle(Digit(d))[-1] == Wait(3.0) or m.state == "playing"
    out = m.handle(Digit("#"))
    assert Step("order", "input", "4711", "order") in out
    route = next(c for c in out if isinstance(c, Route))
    assert route.inputs == {"order": "4711"}
    assert route.action.describe() == "queue:support"


def test_multi_digit_input_too_short_is_invalid() -> None:
    m = machine()
    m.start(NOON)
    m.handle(Digit("8"))
    m.handle(PlaybackDone())
    m.handle(Digit("4"))
    out = m.handle(Digit("#"))
    assert Step("order", "invalid", "4#") in out


def test_multi_digit_input_ends_at_max_digits_or_pause() -> None:
    m = machine()
    m.start(NOON)
    m.handle(Digit("8"))
    for d in "123456":
        out = m.handle(Digit(d))
    assert routes(out) == ["queue:support"]
    m2 = machine()
    m2.start(NOON)
    m2.handle(Digit("8"))
    m2.handle(PlaybackDone())
    for d in "123":
        m2.handle(Digit(d))
    out = m2.handle(Timeout())
    assert Step("order", "input", "123", "order") in out


def test_direct_dial_extension() -> None:
    m = machine()
    m.start(NOON)
    m.handle(PlaybackDone())
    assert m.handle(Digit("1")) == [Wait(3.0)]  # could be option 1 or extension 1001
    m.handle(Digit("0"))
    m.handle(Digit("0"))
    out = m.handle(Digit("1"))
    assert routes(out) == ["extension:1001"]


def test_direct_dial_prefix_alone_falls_back_to_the_option() -> None:
    m = machine()
    m.start(NOON)
    m.handle(PlaybackDone())
    m.handle(Digit("1"))
    m.handle(Timeout())
    assert m.menu_name == "sales"


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), True),  # Monday 12:00 Paris
        (datetime(2026, 11, 23, 17, 30, tzinfo=UTC), False),  # Monday 18:30 Paris
        (datetime(2026, 11, 22, 11, 0, tzinfo=UTC), False),  # Sunday
        (datetime(2026, 12, 25, 11, 0, tzinfo=UTC), False),  # holiday (a Friday)
        (datetime(2026, 11, 23, 6, 59, tzinfo=UTC), False),  # 07:59 Paris
        (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), True),  # 08:00 Paris
    ],
)
def test_business_hours_in_the_entry_time_zone(when: datetime, open_: bool) -> None:
    entry = CONFIG.entry("office")
    assert entry is not None
    assert is_open(CONFIG, entry, when) is open_


def test_after_hours_routes_at_once() -> None:
    m = machine("office")
    out = m.start(datetime(2026, 12, 25, 11, 0, tzinfo=UTC))
    assert out[0] == Step("", "closed", detail="after hours")
    assert routes(out) == ["voicemail:100"]
    assert date(2026, 12, 25) in CONFIG.entries[1].holidays


def test_repeat_resets_tries() -> None:
    m = machine()
    m.start(NOON)
    m.handle(PlaybackDone())
    m.handle(Digit("9"))  # one invalid (retries: 1)
    m.handle(PlaybackDone())
    m.handle(Digit("0"))  # repeat: a fresh start
    assert m.tries == 0
    m.handle(PlaybackDone())
    out = m.handle(Digit("9"))
    assert routes(out) == []  # still one retry left
