"""One opening-hours language for IVR entries, queues and the dialer (core/hours.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from telephonist.acd.redirects import after_hours
from telephonist.asterisk_conf.render import fallback_hours
from telephonist.core.centre import Queue
from telephonist.core.hours import HoursError, OpeningHours, is_open
from telephonist.dialer import rules

FRI_23 = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # Friday 23:00 in Paris
SAT_01 = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # Saturday 01:30 in Paris
SAT_03 = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)  # Saturday 03:30 in Paris


def test_an_overnight_range_runs_past_midnight_everywhere_hours_are_used() -> None:
    night = {"fri": "22:00-02:00"}
    assert [is_open(night, t, "Europe/Paris") for t in (FRI_23, SAT_01, SAT_03)] == [
        True, True, False,
    ]  # fmt: skip
    queue = Queue(name="night", hours=night, timezone="Europe/Paris")
    assert after_hours(queue, SAT_01) is None
    closed = after_hours(queue, SAT_03)
    assert closed is not None and closed.reason == "after_hours"
    # The dialplan's own check (serve down) gets the two halves.
    assert fallback_hours(queue).ranges == [(5, "2200", "2400"), (6, "0000", "0200")]
    # The dialer's 20:00-09:00 window dials at night (before: accepted, then never dialled).
    assert rules.in_window(FRI_23, "Europe/Paris", "20:00", "09:00", "fri")
    assert rules.in_window(SAT_01, "Europe/Paris", "20:00", "09:00", "fri")
    assert not rules.in_window(SAT_01, "Europe/Paris", "20:00", "09:00", "sat")


def test_holidays_close_the_whole_local_day() -> None:
    always = {"daily": "00:00-24:00"}
    assert is_open(always, SAT_01, "Europe/Paris")
    assert not is_open(always, SAT_01, "Europe/Paris", [date(2026, 11, 28)])
    assert is_open(always, SAT_01, "America/New_York", [date(2026, 11, 28)])  # still Friday


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mon": "08:00-08:00"}, "is empty"),
        ({"mon": "25:00-26:00"}, "impossible time"),
        ({"funday": "08:00-10:00"}, "day 'funday'"),
        ({"mon": "8-10"}, "is not HH:MM"),
        ({"mon": "08:00"}, "not a range"),
    ],
)
def test_bad_hours_name_the_day_and_range(spec: dict[str, str], message: str) -> None:
    with pytest.raises(HoursError, match=message):
        OpeningHours.parse(spec)
