"""Opening hours: one language and one ``is_open`` for IVR entries, queues and the dialer's
calling windows.

A spec maps days to time ranges: ``{"mon-fri": "08:00-18:00", "sat": "09:00-12:00"}``; days
not named are closed; several ranges a day: ``"08:00-12:00,14:00-18:00"``; ``24:00`` is the
end of the day. A range that ends before it starts runs overnight: ``{"fri": "22:00-02:00"}``
is open from Friday 22:00 to Saturday 02:00. Times are local to the time zone given with
them; a holiday (a local date) is closed all day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_A_DAY = 24 * 60


class HoursError(ValueError):
    """Opening hours that do not parse; the message names the day and the range."""


@dataclass(frozen=True)
class OpeningHours:
    """Open minutes per weekday (0 = Monday): ``(start, end)`` with ``0 <= start < end <=
    1440``; an overnight range is stored as its two halves."""

    ranges: dict[int, tuple[tuple[int, int], ...]]

    @classmethod
    def parse(cls, spec: dict[str, str]) -> OpeningHours:
        """Parse a spec; :class:`HoursError` names the day and range at fault.

        >>> OpeningHours.parse({"fri": "22:00-02:00"}).ranges
        {4: ((1320, 1440),), 5: ((0, 120),)}
        """
        ranges: dict[int, list[tuple[int, int]]] = {}
        for days, text in spec.items():
            for day in parse_days(str(days)):
                for start, end in _ranges(str(text), str(days)):
                    if end > start:
                        ranges.setdefault(day, []).append((start, end))
                    else:  # overnight: the rest of this day, then the next morning
                        ranges.setdefault(day, []).append((start, MINUTES_A_DAY))
                        if end > 0:
                            ranges.setdefault((day + 1) % 7, []).append((0, end))
        return cls(ranges={d: tuple(sorted(r)) for d, r in sorted(ranges.items())})

    def open_at(self, local: datetime) -> bool:
        """Open at this local (wall-clock) time?"""
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.ranges.get(local.weekday(), ()))

    def day_ranges(self) -> list[tuple[int, str, str]]:
        """(ISO weekday 1-7, ``HHMM`` start, ``HHMM`` end, end exclusive, ``2400`` for
        midnight) for the dialplan's own check.

        >>> OpeningHours.parse({"sun": "22:00-02:00"}).day_ranges()
        [(1, '0000', '0200'), (7, '2200', '2400')]
        """
        return [
            (day + 1, f"{start // 60:02d}{start % 60:02d}", f"{end // 60:02d}{end % 60:02d}")
            for day, spans in self.ranges.items()
            for start, end in spans
        ]


def is_open(
    hours: dict[str, str] | None,
    now: datetime,
    timezone: str,
    holidays: Iterable[date] = (),
) -> bool:
    """Is a place with these ``hours`` (None: always) and ``holidays`` open at ``now`` (any
    time zone; read in ``timezone``)?

    >>> from datetime import UTC
    >>> sat_1am = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # Saturday 01:30 in Paris
    >>> is_open({"fri": "22:00-02:00"}, sat_1am, "Europe/Paris")
    True
    >>> is_open({"fri": "22:00-02:00"}, sat_1am, "Europe/Paris", [date(2026, 11, 28)])
    False
    >>> is_open(None, sat_1am, "UTC"), is_open({}, sat_1am, "UTC")
    (True, False)
    """
    local = now.astimezone(zone(timezone))
    if local.date() in set(holidays):
        return False
    return hours is None or OpeningHours.parse(hours).open_at(local)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or :class:`HoursError` saying what is expected."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {name!r} (e.g. Europe/Paris)") from None


def parse_days(spec: str) -> list[int]:
    """Weekdays (0 = Monday) of ``mon-fri``, ``sat,sun``, ``fri-mon`` (wraps), ``daily``.

    >>> parse_days("fri-mon"), parse_days("mon-wed,sat")
    ([4, 5, 6, 0], [0, 1, 2, 5])
    """
    spec = spec.strip().lower()
    if spec in ("daily", "all", "mon-sun"):
        return list(range(7))
    days: list[int] = []
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        if a not in DAYS or (b and b not in DAYS):
            raise HoursError(f"day {part.strip()!r}: use mon..sun, ranges like mon-fri, or daily")
        ia, ib = DAYS.index(a), DAYS.index(b or a)
        span = range(ia, ib + 1) if ia <= ib else [*range(ia, 7), *range(0, ib + 1)]
        days.extend(d for d in span if d not in days)
    return days


def parse_hhmm(text: str, where: str = "time") -> int:
    """Minutes since midnight of ``HH:MM`` (``24:00`` is 1440).

    >>> parse_hhmm("08:30"), parse_hhmm("24:00")
    (510, 1440)
    """
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if m is None:
        raise HoursError(f"{where}: {text.strip()!r} is not HH:MM")
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24 or (h == 24 and mi):
        raise HoursError(f"{where}: {text.strip()!r} is an impossible time")
    return h * 60 + mi


def _ranges(text: str, days: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        start, sep, end = part.partition("-")
        if not sep:
            raise HoursError(f"{days}: {part.strip()!r} is not a range like 08:00-18:00")
        a = parse_hhmm(start, f"{days}: {part.strip()!r}")
        b = parse_hhmm(end, f"{days}: {part.strip()!r}")
        if a == b or a == MINUTES_A_DAY:
            raise HoursError(f"{days}: {part.strip()!r} is empty")
        out.append((a, b))
    return out


def check_hours(spec: dict[str, str] | None) -> dict[str, str] | None:
    """Opening hours that parse (for validators: the error names the day and range)."""
    if spec is not None:
        OpeningHours.parse(spec)
    return spec


def check_timezone(name: str | None) -> str | None:
    """A known time zone name (or None), for validators."""
    if name is not None:
        zone(name)
    return name


def local_place(at: datetime, zone: ZoneInfo) -> tuple[str, int, str]:
    """(day, minute of the day, ISO week) of ``at`` in ``zone``.

    >>> from datetime import UTC
    >>> local_place(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), ZoneInfo("Europe/Paris"))
    ('2027-01-01', 30, '2026-W53')
    """
    local = at.astimezone(zone)
    year, week, _ = local.isocalendar()
    return local.date().isoformat(), local.hour * 60 + local.minute, f"{year}-W{week:02d}"
