"""First-contact resolution: of the callers answered in a period, the share who did not call
again within ``reports.fcr_days`` days (default 7), and the list of those who did.

Callers are the centre's customer key (``+33612345678`` and ``0612345678`` are one); a
caller with no number is left out (nobody can tell whether they called again). A call again
is any inbound visit to any queue after the answered one, answered or not, within the days.
Counted in SQL on each answered visit's ``next_at`` (when the caller next entered a queue,
kept as the visits are built); only the repeat callers are listed row by row, with how many
times they called again.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select

from telephonist.core.centre import Centre
from telephonist.core.models import QueueCall, as_utc
from telephonist.core.sql import plus_days
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, ReportError, check_queues


async def fcr(
    store: Store, centre: Centre, period: Period, *, only: tuple[str, ...] = (),
    days: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    check_queues(centre, only)
    days = days or centre.reports.fcr_days
    if not 1 <= days <= 90:
        raise ReportError(f"--days: {days} is not 1 to 90")
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    c = QueueCall.__table__.c  # type: ignore[attr-defined]
    later = QueueCall.__table__.alias("later").c  # type: ignore[attr-defined]
    # Each visit knows when its caller next entered a queue (reports/facts.py keeps
    # ``next_at``): the test is on the row itself, one scan of the period.
    called_again = and_(c.next_at.is_not(None),
                        c.next_at <= plus_days(c.entered_at, literal(days)))  # fmt: skip
    answered = and_(
        c.kind == "inbound", c.outcome == "answered", c.caller != "",
        c.entered_at >= start, c.entered_at < end,
        c.queue.in_(only) if only else c.queue.is_not(None),
    )  # fmt: skip
    # How many times, for the listed callers only: a range on (caller, entered_at).
    again = (
        select(func.count())
        .where(and_(later.caller == c.caller, later.kind == "inbound",
                    later.entered_at > c.entered_at,
                    later.entered_at <= plus_days(c.entered_at, literal(days))))
        .scalar_subquery()
    )  # fmt: skip
    counts = select(func.count(), func.coalesce(func.sum(case((called_again, 1), else_=0)), 0))
    listed = (
        select(c.entered_at, c.queue, c.caller, c.agent, again.label("again"))
        .where(and_(answered, called_again))
        .order_by(c.entered_at)
    )
    async with store.sessions() as s:
        total, repeated = (await s.execute(counts.where(answered))).one()
        repeats = list((await s.execute(listed)).mappings())
    total, repeated = int(total), int(repeated)
    return {
        "days": days,
        "answered": total,
        "resolved": total - repeated,
        "fcr": round((total - repeated) / total, 4) if total else None,
        "repeat_callers": [
            {"time": as_utc(r["entered_at"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
             "queue": r["queue"], "caller": r["caller"], "agent": r["agent"],
             "called_again": int(r["again"])}
            for r in repeats
        ],
    }  # fmt: skip
