"""Placing instants in a report's periods (15, 30, 60-minute intervals, days, ISO weeks,
months, the whole range) in the centre's time zone, for tables without stored local columns.

- In SQL: the range is cut where the zone's UTC offset changes (:func:`offset_spans`, at most
  twice a year) and, within each piece, an instant's slot is ⌊(epoch + offset) / width⌋
  (:func:`slot`), the same expression on SQLite and PostgreSQL; :func:`label` names it.
- In Python, for spans that cross periods (an agent's login, a pause): :func:`pieces` cuts a
  span at the periods' local boundaries.

Labels are those of ``queue_calls``' local columns: ``2026-12-03 09:15``, ``2026-12-03``,
``2026-W49``, ``2026-12``, ``total``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import literal

from telephonist.core.sql import epoch, floor_div

MINUTES = ("15", "30", "60")


def width(interval: str) -> int:
    """Seconds of a slot: the interval's, or a day (weeks and months are made of days)."""
    return int(interval) * 60 if interval in MINUTES else 86400


def offset_spans(
    start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, int]]:
    """[start, end) cut where ``zone``'s UTC offset changes: (from, to, offset in seconds).

    >>> paris = ZoneInfo("Europe/Paris")
    >>> spans = offset_spans(datetime(2026, 3, 28, 23, tzinfo=UTC),
    ...                      datetime(2026, 3, 29, 23, tzinfo=UTC), paris)
    >>> [(a.strftime("%H:%M"), b.strftime("%H:%M"), o) for a, b, o in spans]
    [('23:00', '01:00', 3600), ('01:00', '23:00', 7200)]
    """

    def offset(t: datetime) -> int:
        value = t.astimezone(zone).utcoffset()
        return int(value.total_seconds()) if value is not None else 0

    spans: list[tuple[datetime, datetime, int]] = []
    lo, current = start, offset(start)
    t = start
    step = timedelta(minutes=15)  # offsets change on a quarter hour everywhere
    while t < end:
        t = min(t + step, end)
        now = offset(t) if t < end else current
        if now != current:
            spans.append((lo, t, current))
            lo, current = t, now
    spans.append((lo, end, current))
    return spans


def slot(column: Any, offset: int, interval: str) -> Any:
    """The SQL slot number of a timestamp column within a piece of constant ``offset``."""
    return floor_div(epoch(column) + literal(offset), literal(width(interval)))


def label(interval: str, number: int) -> str:
    """The name of slot ``number`` (of :func:`slot`).

    >>> n = int(datetime(2026, 12, 3, 9, 40, tzinfo=UTC).timestamp()) // 900
    >>> [label(i, n * 900 // width(i)) for i in ("15", "60", "day", "week", "month", "total")]
    ['2026-12-03 09:30', '2026-12-03 09:00', '2026-12-03', '2026-W49', '2026-12', 'total']
    """
    return name(interval, datetime.fromtimestamp(number * width(interval), UTC))


def name(interval: str, local: datetime) -> str:
    """The period a local wall-clock time falls in."""
    if interval in MINUTES:
        step = int(interval)
        return local.replace(minute=local.minute // step * step).strftime("%Y-%m-%d %H:%M")
    day = local.date()
    if interval == "day":
        return day.isoformat()
    if interval == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == "month":
        return day.strftime("%Y-%m")
    return "total"


def pieces(
    start: datetime, end: datetime, interval: str, zone: ZoneInfo
) -> Iterator[tuple[str, float]]:
    """(period, seconds) of the span [start, end) cut at the periods' local boundaries.

    >>> paris = ZoneInfo("Europe/Paris")
    >>> list(pieces(datetime(2026, 12, 3, 8, 50, tzinfo=UTC),
    ...             datetime(2026, 12, 3, 9, 20, tzinfo=UTC), "15", paris))
    [('2026-12-03 09:45', 600.0), ('2026-12-03 10:00', 900.0), ('2026-12-03 10:15', 300.0)]
    """
    t = start
    while t < end:
        local = t.astimezone(zone)
        if interval in MINUTES:
            step = int(interval)
            floor = local.replace(minute=local.minute // step * step, second=0, microsecond=0)
            boundary = floor.astimezone(UTC) + timedelta(minutes=step)
        elif interval == "total":
            boundary = end
        else:
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            boundary = (midnight + timedelta(days=1)).astimezone(UTC)  # wall-clock day
        upto = min(boundary, end)
        yield name(interval, local), (upto - t).total_seconds()
        t = upto


__all__ = ["label", "name", "offset_spans", "pieces", "slot", "width"]
