"""Campaign rules (pure): calling windows in the contact's local time, retries by outcome,
and the jurisdiction presets for the abandon cap."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from telephonist.core import hours

DEFAULT_RETRY = {"busy": 600, "no_answer": 3600, "machine": 7200, "failed": 1800, "callback": 0}
"""Seconds before the next try, by the last outcome."""


@dataclass(frozen=True)
class Jurisdiction:
    name: str
    cap: float
    period: timedelta
    """Over what the abandon rate is measured."""
    redial_abandoned_after: timedelta
    """An abandoned number is not called again before this (UK: 72 h unless an agent is
    guaranteed, which a predictive dialer cannot promise)."""
    message_within: int = 2
    """Seconds from the answer (or the end of the greeting) by which a call no agent took
    must hear the message naming the caller (FTC TSR and Ofcom: 2)."""
    min_ring: int = 15
    """Seconds an unanswered call rings at least before the dialer gives up (both: 15)."""


JURISDICTIONS = {
    "US": Jurisdiction("US", 0.03, timedelta(days=30), timedelta(0)),
    "UK": Jurisdiction("UK", 0.03, timedelta(hours=24), timedelta(hours=72)),
}


HOLD_MARGIN = 0.5
"""Seconds of the 2-second rule kept for the PBX: an answered person waits for an agent
``message_within - HOLD_MARGIN`` seconds (1.5), then the message starts. The channel's
absolute time-out that ends the wait fires late when Asterisk is busy: measured on the
sandbox with a loaded machine, 0.18 s and 0.49 s late while app_queue was ringing an agent
(the message then began 2.08 s and 2.39 s after the answer with a 1.9-s hold)."""


def hold_seconds(jurisdiction: str) -> float:
    """How long an answered call waits for an agent before the message.

    >>> hold_seconds("UK")
    1.5
    """
    return JURISDICTIONS[jurisdiction].message_within - HOLD_MARGIN


def ring_for(jurisdiction: str, ring_seconds: int) -> int:
    """How long a call rings before the dialer gives up: the campaign's, never under the
    jurisdiction's minimum.

    >>> ring_for("UK", 10), ring_for("US", 20)
    (15, 20)
    """
    return max(JURISDICTIONS[jurisdiction].min_ring, ring_seconds)


class RuleError(ValueError):
    """A bad campaign setting: the message names the field."""


def parse_days(spec: str) -> frozenset[int]:
    """``mon-fri,sun`` -> weekday numbers (Monday 0); ``fri-mon`` wraps round the week.

    >>> sorted(parse_days("mon-wed,sat"))
    [0, 1, 2, 5]
    >>> parse_days("funday")
    Traceback (most recent call last):
    ...
    telephonist.dialer.rules.RuleError: --days: 'funday' is not like mon-fri or sat,sun
    """
    try:
        return frozenset(hours.parse_days(spec))
    except hours.HoursError:
        raise RuleError(f"--days: {spec!r} is not like mon-fri or sat,sun") from None


def parse_hhmm(text: str, field: str) -> time:
    try:
        minutes = hours.parse_hhmm(text, field)
    except hours.HoursError as exc:
        raise RuleError(str(exc).replace("an impossible time", "not HH:MM")) from None
    if minutes == hours.MINUTES_A_DAY:
        raise RuleError(f"{field}: {text!r} is not HH:MM (00:00 is midnight)")
    return time(minutes // 60, minutes % 60)


def zone(name: str, field: str = "--timezone") -> ZoneInfo:
    try:
        return hours.zone(name)
    except hours.HoursError:
        raise RuleError(f"{field}: unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Window:
    """A campaign's calling window, parsed once (the engine asks it for every lead due on
    every pacing tick)."""

    hours: hours.OpeningHours

    @classmethod
    def of(cls, start: str, end: str, days: str) -> Window:
        parse_hhmm(start, "window_start"), parse_hhmm(end, "window_end")
        return cls(hours.OpeningHours.parse({days: f"{start}-{end}"}))

    def open_for(self, now_utc: datetime, tz: str) -> bool:
        """Inside the window in the contact's own time zone ``tz``?"""
        return self.hours.open_at(now_utc.astimezone(zone(tz, "timezone")))


def in_window(now_utc: datetime, tz: str, start: str, end: str, days: str) -> bool:
    """Whether ``now`` is inside the calling window in the contact's own time zone (the
    opening-hours language of core/hours.py: a window that ends before it starts runs
    overnight, and belongs to the day it starts on).

    >>> from datetime import UTC
    >>> t = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # a Monday
    >>> in_window(t, "Europe/Paris", "09:00", "20:00", "mon-fri")   # 08:30 in Paris
    False
    >>> in_window(t, "Asia/Tokyo", "09:00", "20:00", "mon-fri")     # 16:30 in Tokyo
    True
    >>> in_window(t, "America/New_York", "20:00", "09:00", "sun-fri")  # 02:30, Sunday night
    True
    """
    return Window.of(start, end, days).open_for(now_utc, tz)


def retry_delays(text: str) -> dict[str, int]:
    """``busy=600,no_answer=3600`` (over the defaults) -> {outcome: seconds}."""
    delays = dict(DEFAULT_RETRY)
    if not text:
        return delays
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in DEFAULT_RETRY or not value.strip().isdigit():
            raise RuleError(
                f"--retry: {part!r} is not OUTCOME=SECONDS with OUTCOME one of "
                f"{', '.join(DEFAULT_RETRY)}"
            )
        delays[key] = int(value)
    return delays


def after_attempt(
    outcome: str,
    attempts: int,
    max_attempts: int,
    retry_json: str,
    jurisdiction: str,
    now: datetime,
) -> tuple[str, datetime | None]:
    """The lead's next state and when it may be dialled again.

    Answered by a person and connected: done. Abandoned: again, but (UK) not within 72 h.
    Busy, no answer, machine, failed: again after that outcome's delay, up to
    ``max_attempts``; then exhausted."""
    if outcome == "answered":
        return "done", None
    if attempts >= max_attempts:
        return "exhausted", None
    if outcome == "abandoned":
        wait = JURISDICTIONS[jurisdiction].redial_abandoned_after
        return "retry", now + max(wait, timedelta(seconds=DEFAULT_RETRY["no_answer"]))
    delays = json.loads(retry_json) if retry_json else DEFAULT_RETRY
    seconds = int(delays.get(outcome, DEFAULT_RETRY.get(outcome, 3600)))
    return "retry", now + timedelta(seconds=seconds)


def abandon_rate(
    abandoned: int, live: int, machines: int, amd_false_positive: float
) -> tuple[float, float]:
    """The abandoned-call rate over a period, and the estimated AMD false positives in it.

    Ofcom's formula (persistent misuse policy): live people AMD classed as machines were hung
    up on, so an estimate of them counts as abandoned calls and as live calls::

        (abandoned + machines x FP rate) / (live + machines x FP rate)

    Applied to US campaigns too (a live person hung up on is an abandoned call for the FTC).

    >>> abandon_rate(2, 100, 0, 0.0)
    (0.02, 0.0)
    >>> rate, fp = abandon_rate(2, 100, 300, 0.01)
    >>> round(rate, 4), fp
    (0.0485, 3.0)
    """
    fp = machines * amd_false_positive
    denominator = live + fp
    return ((abandoned + fp) / denominator if denominator else 0.0), fp


def window_ms(start: str, end: str) -> int:
    """The length of a calling window (an overnight one runs past midnight), at least an hour.

    >>> window_ms("09:00", "17:00") // 3_600_000
    8
    >>> window_ms("22:00", "02:00") // 3_600_000
    4
    """
    a, b = parse_hhmm(start, "window"), parse_hhmm(end, "window")
    minutes = (b.hour * 60 + b.minute) - (a.hour * 60 + a.minute)
    if minutes <= 0:
        minutes += 24 * 60
    return max(60, minutes) * 60_000
