"""Queue KPIs, aggregated in SQL over ``queue_calls`` (the same queries on SQLite and
PostgreSQL; rows are never loaded into Python to be counted).

Per queue and per period (15, 30 or 60-minute intervals, day, ISO week, month, or the whole
range), in the centre's time zone, for inbound visits (a callback's placeholder and the
dialer's calls are not offered calls):

- offered, answered, abandoned (callers who hung up waiting at least ``short_abandon``
  seconds), short abandons (apart), left on time-out (waited too long), on an empty queue,
  with a key (a callback request);
- service level: answered within the queue's ``service_level`` seconds T, over the chosen
  formula's denominator (:data:`telephonist.core.centre.SL_FORMULAS`; the formula is named in
  the output); short abandons are left out unless asked for;
- average speed of answer, the longest and the 90th-percentile wait (nearest rank, over every
  caller who left the queue, answered or not), the average time before abandoning;
- average handle time = talk + hold + wrap-up (app_queue logs no hold: 0 until the PBX
  reports it), with its parts.

For the whole range, also the redirects by reason (``queue_redirects``), the callbacks
requested and completed for the queue, and the voicemails its callers left after a redirect
to a mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from telephonist.core.centre import SL_FORMULAS, Centre
from telephonist.core.models import CallbackRequest, QueueCall, QueueRedirect, VoicemailMessage
from telephonist.core.sql import plus_days
from telephonist.core.storage import Store
from telephonist.reports import periods

INTERVALS = ("15", "30", "60", "day", "week", "month", "total")


class ReportError(ValueError):
    """Bad report parameters; the message names the option."""


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    interval: str = "day"

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ReportError(f"--from: {self.first} is after --to {self.last}")
        if self.interval not in INTERVALS:
            raise ReportError(
                f"--interval: {self.interval!r} is not one of {', '.join(INTERVALS)} "
                "(minutes must divide an hour evenly)"
            )

    def utc_range(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[first 00:00, the day after last 00:00) in ``zone``, as UTC instants (SQLite
        compares the stored UTC text: a bound local time would be read as UTC)."""
        start = datetime.combine(self.first, time(0), zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), zone).astimezone(UTC)
        return start, end


def check_queues(centre: Centre, only: tuple[str, ...]) -> None:
    """ReportError naming ``--queue`` for a queue the centre does not have."""
    for name in only:
        if name not in centre.queue_names:
            known = ", ".join(sorted(centre.queue_names))
            raise ReportError(f"--queue: no queue {name!r} ({known})")


def _sum(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _keys(interval: str, table: Any = None) -> list[Any]:
    """The grouping of a period on a table with ``local_day``/``local_minute``/``local_week``
    (``queue_calls``, ``queue_redirects``)."""
    c = (table if table is not None else QueueCall.__table__).c  # type: ignore[attr-defined]
    if interval in ("15", "30", "60"):
        # // is floor division on both databases (a plain / is a true division on PostgreSQL
        # and its cast to an integer rounds: 09:40 would land in 10:00).
        return [c.local_day, (c.local_minute // int(interval)) * int(interval)]
    if interval == "day":
        return [c.local_day, literal(-1)]
    if interval == "week":
        return [c.local_week, literal(-1)]
    if interval == "month":
        return [func.substr(c.local_day, 1, 7), literal(-1)]
    return [literal("total"), literal(-1)]


def nearest_rank(histogram: list[tuple[int, int]], share: float) -> int:
    """The nearest-rank percentile of a histogram of (value, count).

    >>> nearest_rank([(3, 1), (10, 1), (12, 1), (30, 1), (45, 1), (60, 1)], 0.9)
    60
    >>> nearest_rank([(5, 9), (100, 1)], 0.9), nearest_rank([(5, 8), (100, 2)], 0.9)
    (5, 100)
    """
    ordered = sorted(histogram)
    total = sum(n for _, n in ordered)
    rank = -(-int(share * total * 1000) // 1000)  # ceil(share * total), no float fuzz
    seen = 0
    for value, n in ordered:
        seen += n
        if seen >= rank:
            return value
    return ordered[-1][0]


def _label(key: str, minute: int) -> str:
    return key if minute < 0 else f"{key} {minute // 60:02d}:{minute % 60:02d}"


async def queues(
    store: Store,
    centre: Centre,
    period: Period,
    *,
    only: tuple[str, ...] = (),
    formula: str | None = None,
    include_short: bool = False,
) -> dict[str, Any]:
    """The queue report: ``rows`` (per queue and period) and ``totals`` (per queue)."""
    check_queues(centre, only)
    formula = formula or centre.reports.service_level_formula
    if formula not in SL_FORMULAS:
        raise ReportError(f"--formula: {formula!r} is not one of {', '.join(SL_FORMULAS)}")
    short_t = centre.reports.short_abandon
    c = QueueCall.__table__.c  # type: ignore[attr-defined]
    sl_t = case(
        *[(c.queue == q.name, q.service_level) for q in centre.queues], else_=20
    ) if centre.queues else literal(20)  # fmt: skip
    answered = c.outcome == "answered"
    abandoned = c.outcome == "abandoned"
    short = and_(abandoned, c.wait < short_t)
    counted_ab = abandoned if include_short else and_(abandoned, c.wait >= short_t)
    ended = and_(answered, c.ended_at.is_not(None))
    keys = _keys(period.interval)
    where = and_(
        c.kind == "inbound",
        c.local_day >= period.first.isoformat(),
        c.local_day <= period.last.isoformat(),
        c.queue.in_(only) if only else literal(True),
    )
    stmt = (
        select(
            c.queue, keys[0].label("k"), keys[1].label("m"),
            func.count().label("offered"),
            _sum(answered).label("answered"),
            _sum(and_(abandoned, c.wait >= short_t)).label("abandoned"),
            _sum(short).label("short_abandoned"),
            _sum(c.outcome == "timeout").label("timeout"),
            _sum(c.outcome == "empty").label("empty"),
            _sum(c.outcome == "key").label("key"),
            _sum(and_(answered, c.wait <= sl_t)).label("within"),
            _sum(counted_ab).label("sl_abandoned"),
            _sum(and_(counted_ab, c.wait > sl_t)).label("sl_abandoned_after"),
            func.avg(case((answered, c.wait))).label("asa"),
            func.max(case((c.outcome != "waiting", c.wait))).label("max_wait"),
            func.avg(case((and_(abandoned, c.wait >= short_t), c.wait))).label("abandon_time"),
            func.avg(case((ended, c.talk))).label("talk"),
            func.avg(case((ended, c.wrap))).label("wrap"),
            func.avg(case((ended, c.talk + c.wrap))).label("aht"),
        )
        .where(where)
        .group_by(c.queue, *keys)
        .order_by(c.queue, *keys)
    )  # fmt: skip
    # The 90th-percentile wait (nearest rank) over the callers who left the queue. Days and
    # longer: from a histogram counted in SQL (waits are whole seconds: a few hundred values
    # per period). Intervals: a period holds a few dozen calls, so a histogram would be a
    # row per call; a window gives each wait its cumulative share in its period, in SQL.
    fine = period.interval in ("15", "30", "60")
    left = and_(where, c.outcome != "waiting")
    if fine:
        # nearest rank: the smallest wait whose cumulative share (waits <= it / all) is >= 0.9
        ranked = (
            select(c.queue, keys[0].label("k"), keys[1].label("m"), c.wait,
                   func.cume_dist().over(partition_by=[c.queue, *keys], order_by=c.wait)
                   .label("share"))
            .where(left)
            .subquery()
        )  # fmt: skip
        histogram = (
            select(ranked.c.queue, ranked.c.k, ranked.c.m, func.min(ranked.c.wait), literal(1))
            .where(ranked.c.share >= 0.9)
            .group_by(ranked.c.queue, ranked.c.k, ranked.c.m)
        )
    else:
        histogram = (
            select(c.queue, *keys, c.wait, func.count())
            .where(left)
            .group_by(c.queue, *keys, c.wait)
        )
    rt = QueueRedirect.__table__  # type: ignore[attr-defined]
    rkeys = _keys(period.interval, rt)
    redirects_q = (
        select(rt.c.queue, rkeys[0], rkeys[1], rt.c.reason, func.count())
        .where(and_(rt.c.local_day >= period.first.isoformat(),
                    rt.c.local_day <= period.last.isoformat(),
                    rt.c.queue.in_(only) if only else literal(True)))
        .group_by(rt.c.queue, *rkeys, rt.c.reason)
    )  # fmt: skip
    async with store.sessions() as s:
        rows = (await s.execute(stmt)).mappings().all()
        waits: dict[tuple[str, str, int], list[tuple[int, int]]] = {}
        for row in await s.execute(histogram):
            q, k, m, w, n = tuple(row)
            waits.setdefault((q, str(k), int(m)), []).append((int(w), int(n)))
        p90s = {group: nearest_rank(values, 0.9) for group, values in waits.items()}
        redirected: dict[tuple[str, str, int], dict[str, int]] = {}
        for q, k, m, reason, n in await s.execute(redirects_q):
            redirected.setdefault((q, str(k), int(m)), {})[reason] = int(n)
        totals = await _totals(s, centre, period, only)
        follow_ups = await _follow_ups(s, centre, period, only)
    out = []
    for r in rows:
        key, minute = str(r["k"]), int(r["m"])
        denominator = {
            "answered": r["answered"],
            "offered": r["answered"] + r["sl_abandoned"],
            "abandoned_after": r["answered"] + r["sl_abandoned_after"],
        }[formula]
        out.append({
            "queue": r["queue"],
            "period": _label(key, minute),
            "offered": int(r["offered"]),
            "answered": int(r["answered"]),
            "abandoned": int(r["abandoned"]),
            "short_abandoned": int(r["short_abandoned"]),
            "timeout": int(r["timeout"]),
            "empty": int(r["empty"]),
            "left_with_key": int(r["key"]),
            "answered_within_sl": int(r["within"]),
            "service_level": round(r["within"] / denominator, 4) if denominator else None,
            "asa": _round(r["asa"]),
            "max_wait": _int(r["max_wait"]),
            "p90_wait": p90s.get((r["queue"], key, minute)),
            "avg_abandon_time": _round(r["abandon_time"]),
            "avg_talk": _round(r["talk"]),
            "avg_wrap": _round(r["wrap"]),
            "aht": _round(r["aht"]),
            "redirects": redirected.pop((r["queue"], key, minute), {}),
        })  # fmt: skip
    for (queue, key, minute), reasons in redirected.items():  # periods with redirects only
        out.append({**{k: 0 for k in ZERO}, **{k: None for k in NONE}, "queue": queue,
                    "period": _label(key, minute), "redirects": reasons})  # fmt: skip
    for line in out:
        line.update(follow_ups.pop((line["queue"], line["period"]), dict.fromkeys(FOLLOW_UPS, 0)))
    for (queue, label), counts in follow_ups.items():  # periods with callbacks only
        out.append({**{k: 0 for k in ZERO}, **{k: None for k in NONE}, "queue": queue,
                    "period": label, "redirects": {}, **counts})  # fmt: skip
    out.sort(key=lambda row: (row["queue"], row["period"]))
    return {
        "formula": f"{formula}: {SL_FORMULAS[formula]}"
        + ("" if include_short else f" (short abandons under {short_t}s left out)"),
        "time_zone": centre.timezone,
        "rows": out,
        "totals": totals,
    }


async def _totals(s: Any, centre: Centre, period: Period, only: tuple[str, ...]) -> dict[str, Any]:
    start, end = period.utc_range(ZoneInfo(centre.timezone))
    r = QueueRedirect.__table__.c  # type: ignore[attr-defined]
    cb = CallbackRequest.__table__.c  # type: ignore[attr-defined]
    names = only or tuple(sorted(centre.queue_names))
    out: dict[str, Any] = {q: {"redirects": {}, "callbacks_requested": 0,
                               "callbacks_completed": 0, "voicemails": 0}
                           for q in names}  # fmt: skip
    redirects = await s.execute(
        select(r.queue, r.reason, func.count())
        .where(and_(r.at >= start, r.at < end, r.queue.in_(names)))
        .group_by(r.queue, r.reason)
    )
    for queue, reason, n in redirects.all():
        out[queue]["redirects"][reason] = int(n)
    requested = await s.execute(
        select(cb.queue, func.count())
        .where(and_(cb.requested_at >= start, cb.requested_at < end, cb.queue.in_(names)))
        .group_by(cb.queue)
    )
    for queue, n in requested.all():
        out[queue]["callbacks_requested"] = int(n)
    completed = await s.execute(
        select(cb.queue, func.count())
        .where(and_(cb.state == "done", cb.closed_at >= start, cb.closed_at < end))
        .where(cb.queue.in_(names))
        .group_by(cb.queue)
    )
    for queue, n in completed.all():
        out[queue]["callbacks_completed"] = int(n)
    voicemails = await s.execute(
        select(r.queue, func.count())
        .where(and_(r.at >= start, r.at < end, r.queue.in_(names)))
        .where(_message_left())
        .group_by(r.queue)
    )
    for queue, n in voicemails.all():
        out[queue]["voicemails"] = int(n)
    return out


def _message_left() -> Any:
    """A redirect to a mailbox after which the caller left a message there (from their
    number, within a day)."""
    r = QueueRedirect.__table__.c  # type: ignore[attr-defined]
    vm = VoicemailMessage.__table__.c  # type: ignore[attr-defined]
    return and_(r.destination.like("voicemail:%"), exists().where(and_(
        vm.mailbox == func.substr(r.destination, len("voicemail:") + 1),
        vm.caller_number == r.caller_number, r.caller_number != "",
        vm.received_at >= r.at, vm.received_at < plus_days(r.at, literal(1)),
    )))  # fmt: skip


FOLLOW_UPS = ("callbacks_requested", "callbacks_completed", "voicemails")


async def _follow_ups(
    s: Any, centre: Centre, period: Period, only: tuple[str, ...]
) -> dict[tuple[str, str], dict[str, int]]:
    """Per queue and period: callbacks requested (when asked), completed (when done) and the
    voicemails left after a redirect (when redirected), slotted in SQL
    (reports/periods.py)."""
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    names = only or tuple(sorted(centre.queue_names))
    cb = CallbackRequest.__table__.c  # type: ignore[attr-defined]
    r = QueueRedirect.__table__.c  # type: ignore[attr-defined]
    out: dict[tuple[str, str], dict[str, int]] = {}
    for lo, hi, offset in periods.offset_spans(start, end, zone):
        for field, column, condition in (
            ("callbacks_requested", cb.requested_at, cb.queue.in_(names)),
            ("callbacks_completed", cb.closed_at, and_(cb.state == "done", cb.queue.in_(names))),
            ("voicemails", r.at, and_(r.queue.in_(names), _message_left())),
        ):
            queue = cb.queue if field.startswith("callbacks") else r.queue
            when = periods.slot(column, offset, period.interval)
            for q, n_slot, n in await s.execute(
                select(queue, when, func.count())
                .where(and_(column >= lo, column < hi, condition))
                .group_by(queue, when)
            ):
                key = (q, periods.label(period.interval, int(n_slot)))
                counts = out.setdefault(key, dict.fromkeys(FOLLOW_UPS, 0))
                counts[field] += int(n)
    return out


ZERO = ("offered", "answered", "abandoned", "short_abandoned", "timeout", "empty",
        "left_with_key", "answered_within_sl")  # fmt: skip
NONE = ("service_level", "asa", "max_wait", "p90_wait", "avg_abandon_time", "avg_talk",
        "avg_wrap", "aht")  # fmt: skip


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


async def wait_distribution(
    store: Store, centre: Centre, period: Period, *, only: tuple[str, ...] = (), bin_s: int = 10
) -> list[tuple[int, int]]:
    """(bin start in seconds, callers) of the waits of inbound callers who left the queue."""
    c = QueueCall.__table__.c  # type: ignore[attr-defined]
    bucket = (c.wait // bin_s) * bin_s
    stmt = (
        select(bucket, func.count())
        .where(and_(c.kind == "inbound", c.outcome != "waiting",
                    c.local_day >= period.first.isoformat(), c.local_day <= period.last.isoformat(),
                    c.queue.in_(only) if only else literal(True)))
        .group_by(bucket)
        .order_by(bucket)
    )  # fmt: skip
    async with store.sessions() as s:
        return [(int(b), int(n)) for b, n in await s.execute(stmt)]
