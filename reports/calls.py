"""The call list: every call that reached telephonist in a period, with what the queue_log
says of its queue visit (wait, agent, talk, who hung up, score). One SQL statement."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select

from telephonist.core.centre import Centre
from telephonist.core.models import Call, QueueCall, as_utc
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, ReportError


async def calls(
    store: Store, centre: Centre, period: Period, *, line: str | None = None, limit: int = 10000
) -> list[dict[str, Any]]:
    if line is not None and line not in {x.name for x in centre.lines}:
        raise ReportError(f"--line: no line {line!r}")
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    c = Call.__table__.c  # type: ignore[attr-defined]
    v = QueueCall.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(c.started_at, c.line, c.route, c.caller_number, c.outcome, c.answered_at,
               c.ended_at, v.queue, v.wait, v.outcome.label("queue_outcome"), v.agent, v.talk,
               v.ended_by, v.csat)
        .outerjoin(QueueCall.__table__, and_(v.callid == c.channel_id, v.kind == "inbound"))  # type: ignore[attr-defined]
        .where(and_(c.started_at >= start, c.started_at < end))
        .where(c.line == line if line is not None else c.line.is_not(None))
        .order_by(c.started_at)
        .limit(limit)
    )  # fmt: skip

    def local(t: Any) -> str | None:
        return None if t is None else as_utc(t).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    async with store.sessions() as s:
        return [
            {"time": local(r["started_at"]), "line": r["line"], "route": r["route"],
             "caller": r["caller_number"], "outcome": r["outcome"],
             "answered": local(r["answered_at"]), "ended": local(r["ended_at"]),
             "queue": r["queue"], "wait": r["wait"], "queue_outcome": r["queue_outcome"],
             "agent": r["agent"], "talk": r["talk"], "ended_by": r["ended_by"],
             "csat": r["csat"]}
            for r in (await s.execute(stmt)).mappings()
        ]  # fmt: skip


async def lines(store: Store, centre: Centre, period: Period) -> list[dict[str, Any]]:
    """Per line over the period: calls, answered, and how they ended (the outcome's kind:
    ``routed`` to a destination, ``queued``, ``caller_hangup``, ``fallback`` while serve was
    down...), counted in SQL."""
    start, end = period.utc_range(ZoneInfo(centre.timezone))
    c = Call.__table__.c  # type: ignore[attr-defined]
    kind = case(
        *[(c.outcome.like(f"{prefix}:%"), prefix) for prefix in ("routed", "queued", "fallback")],
        else_=func.coalesce(c.outcome, "open"),
    )
    stmt = (
        select(c.line, kind.label("kind"), func.count(), func.count(c.answered_at))
        .where(and_(c.started_at >= start, c.started_at < end))
        .group_by(c.line, kind)
        .order_by(c.line, kind)
    )
    out: dict[str, dict[str, Any]] = {}
    async with store.sessions() as s:
        for line, how, n, answered in await s.execute(stmt):
            row = out.setdefault(line, {"line": line, "calls": 0, "answered": 0, "ended": {}})
            row["calls"] += int(n)
            row["answered"] += int(answered)
            row["ended"][how or "open"] = int(n)
    return list(out.values())
