"""The abandoned-call list: who hung up waiting (or was sent to a hang-up), and what became of
them — their callback task and its state, how long until an agent called them back, and
whether they called again and were answered.

The callers hanging up in a queue come from ``queue_calls`` (their wait and their place in the
queue when they left); the callers a queue's redirect hung up on come from
``queue_redirects``. A caller's callback task is the first one for their number (the centre's
customer key) that was open when they left or was made after; "called back" is the first try
of it a customer answered. Each column is a correlated sub-query, so the list is one SQL
statement per kind, on both databases.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal, or_, select

from telephonist.core.centre import Centre
from telephonist.core.models import (
    CallbackAttempt,
    CallbackRequest,
    QueueCall,
    QueueRedirect,
    as_utc,
)
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, check_queues


async def abandoned(
    store: Store,
    centre: Centre,
    period: Period,
    *,
    only: tuple[str, ...] = (),
    include_short: bool = False,
) -> list[dict[str, Any]]:
    """Rows in time order: time (centre's zone), queue, caller, how (``abandoned``,
    ``short_abandon``, ``hangup:<reason>``), wait, position when they left, callback task
    (id, state, source), called back after (seconds), called again and answered at."""
    check_queues(centre, only)
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    names = only or tuple(sorted(centre.queue_names))
    short_t = centre.reports.short_abandon
    c = QueueCall.__table__.c  # type: ignore[attr-defined]
    cb = CallbackRequest.__table__.c  # type: ignore[attr-defined]
    at = CallbackAttempt.__table__.c  # type: ignore[attr-defined]
    later = QueueCall.__table__.alias("later").c  # type: ignore[attr-defined]

    def task_of(number: Any, came: Any, left: Any) -> Any:
        # Their task: made after they came, or one already open when they left (a missed call
        # is merged into the number's open task). No date arithmetic: the same on both.
        task = (
            select(func.min(cb.id))
            .where(cb.number == number)
            .where(or_(cb.requested_at >= came,
                       and_(cb.requested_at <= left,
                            or_(cb.closed_at.is_(None), cb.closed_at >= left))))
            .scalar_subquery()
        )  # fmt: skip
        return task.label("task")

    left_at = func.coalesce(c.ended_at, c.entered_at)
    visits = (
        select(
            c.entered_at, c.ended_at, c.queue, c.caller, c.wait, c.left_position,
            task_of(c.caller, c.entered_at, left_at),
            select(func.min(later.entered_at))
            .where(and_(later.caller == c.caller, later.entered_at > c.entered_at,
                        later.outcome == "answered", later.kind == "inbound"))
            .scalar_subquery().label("answered_again_at"),
        )
        .where(and_(c.kind == "inbound", c.outcome == "abandoned", c.caller != ""))
        .where(and_(c.entered_at >= start, c.entered_at < end, c.queue.in_(names)))
        .where(literal(True) if include_short else c.wait >= short_t)
        .order_by(c.entered_at)
    )  # fmt: skip
    r = QueueRedirect.__table__.c  # type: ignore[attr-defined]
    hangups = (
        select(r.at, r.queue, r.reason, r.caller_number, task_of(r.caller_number, r.at, r.at))
        .where(and_(r.destination == "hangup", r.at >= start, r.at < end, r.queue.in_(names)))
        .order_by(r.at)
    )
    out: list[dict[str, Any]] = []
    async with store.sessions() as s:
        found = list((await s.execute(visits)).mappings()) + list(
            (await s.execute(hangups)).mappings()
        )
        ids = {r["task"] for r in found if r["task"] is not None}
        tasks = {
            t.id: t
            for t in (await s.execute(select(CallbackRequest).where(cb.id.in_(ids)))).scalars()
        }
        answered: dict[int, Any] = dict(
            (
                await s.execute(
                    select(at.callback_id, func.min(at.connected_at))
                    .where(and_(at.callback_id.in_(ids), at.outcome == "answered"))
                    .group_by(at.callback_id)
                )
            ).all()
        )
    for r in found:
        task = tasks.get(r["task"])
        fate = {
            "task": r["task"],
            "task_state": task.state if task else None,
            "task_source": task.source if task else None,
            "called_back_at": answered.get(r["task"]),
        }
        if "entered_at" in r:
            left = _aware(r["ended_at"] or r["entered_at"])
            out.append(_row(zone, left, r["queue"], r["caller"],
                            "short_abandon" if r["wait"] < short_t else "abandoned",
                            int(r["wait"]), int(r["left_position"]), fate,
                            _aware(r["answered_again_at"])))  # fmt: skip
        else:
            out.append(_row(zone, _aware(r["at"]), r["queue"], r["caller_number"],
                            f"hangup:{r['reason']}", None, None, fate, None))  # fmt: skip
    out.sort(key=lambda row: row["time"])
    return out


def _aware(t: Any) -> Any:
    return None if t is None else as_utc(t)


def _row(zone: ZoneInfo, left: Any, queue: str, caller: str, how: str, wait: int | None,
         position: int | None, fate: Any, answered_again: Any) -> dict[str, Any]:  # fmt: skip
    called_back = _aware(fate["called_back_at"])
    return {
        "time": left.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "queue": queue,
        "caller": caller,
        "how": how,
        "wait": wait,
        "position": position,
        "callback": fate["task"],
        "callback_state": fate["task_state"],
        "callback_source": fate["task_source"],
        "called_back_after": None if called_back is None
        else int((called_back - left).total_seconds()),
        "answered_again": None if answered_again is None
        else answered_again.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
