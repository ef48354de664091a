"""The call list: every call of a period as Asterisk recorded it (core/cel.py), with what
telephonist did with it and what the queue_log says of its queue visit."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, select, true

from telephonist.core.cel import cause_text
from telephonist.core.centre import Centre
from telephonist.core.models import Call, PbxCall, QueueCall, as_utc
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, ReportError


async def calls(
    store: Store, centre: Centre, period: Period, *, line: str | None = None, limit: int = 10000
) -> list[dict[str, Any]]:
    """Every call of the period, oldest first, as Asterisk recorded it (``pbx_calls``, from
    its channel events: answer and end times, hang-up cause, who hung up, talk), with what
    telephonist did with it (``calls``: line, route, outcome) and its queue visit
    (``queue_calls``: queue, wait, agent, talk, wrap-up, who left first, survey score).
    Calls Asterisk has not finished recording (in progress, or channel events not
    configured) are listed from telephonist's own record, ``source`` ``telephonist``.
    A call that visited two queues is listed once per visit."""
    if line is not None and line not in {x.name for x in centre.lines}:
        raise ReportError(f"--line: no line {line!r}")
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    c = Call.__table__.c  # type: ignore[attr-defined]
    p = PbxCall.__table__.c  # type: ignore[attr-defined]
    v = QueueCall.__table__.c  # type: ignore[attr-defined]
    visit = (v.queue, v.wait, v.outcome.label("queue_outcome"), v.agent,
             v.talk.label("queue_talk"), v.wrap, v.ended_by, v.csat)  # fmt: skip
    recorded = (
        select(p.linkedid.label("call"), p.started_at, c.line, c.route,
               func.coalesce(c.caller_number, p.caller_number).label("caller_number"),
               p.exten, c.outcome, p.answered_at, p.ended_at, p.hangup_cause, p.hung_up_by,
               p.talk, p.peer, *visit)
        .select_from(PbxCall.__table__)  # type: ignore[attr-defined]
        .outerjoin(Call.__table__, c.channel_id == p.linkedid)  # type: ignore[attr-defined]
        .outerjoin(QueueCall.__table__, v.callid == p.linkedid)  # type: ignore[attr-defined]
        .where(and_(p.started_at >= start, p.started_at < end))
        .where(c.line == line if line is not None else true())
        .order_by(p.started_at)
        .limit(limit)
    )  # fmt: skip
    unrecorded = (
        select(c.channel_id.label("call"), c.started_at, c.line, c.route, c.caller_number,
               c.dialed.label("exten"), c.outcome, c.answered_at, c.ended_at, *visit)
        .outerjoin(QueueCall.__table__, v.callid == c.channel_id)  # type: ignore[attr-defined]
        .where(and_(c.started_at >= start, c.started_at < end))
        .where(c.line == line if line is not None else true())
        .where(~exists().where(p.linkedid == c.channel_id))
        .order_by(c.started_at)
        .limit(limit)
    )  # fmt: skip

    def local(t: Any) -> str | None:
        return None if t is None else as_utc(t).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def row(r: Any, source: str) -> dict[str, Any]:
        pbx = source == "pbx"
        cause = r["hangup_cause"] if pbx else None
        return {
            "call": r["call"], "time": local(r["started_at"]), "line": r["line"],
            "route": r["route"],
            "caller": r["caller_number"], "dialed": r["exten"], "outcome": r["outcome"],
            "answered": local(r["answered_at"]), "ended": local(r["ended_at"]),
            "duration": round((as_utc(r["ended_at"]) - as_utc(r["started_at"])).total_seconds())
            if r["ended_at"] is not None else None,
            "hangup_cause": cause, "hangup": None if cause is None else cause_text(cause),
            "hung_up_by": r["hung_up_by"] if pbx else None,
            "queue": r["queue"], "wait": r["wait"], "queue_outcome": r["queue_outcome"],
            "agent": r["agent"],
            "talk": r["queue_talk"] if r["queue_talk"] is not None
            else (r["talk"] if pbx else None),
            "wrap": r["wrap"], "ended_by": r["ended_by"], "csat": r["csat"],
            "peer": r["peer"] if pbx else None, "source": source,
            "_at": as_utc(r["started_at"]),
        }  # fmt: skip

    async with store.sessions() as s:
        rows = [row(r, "pbx") for r in (await s.execute(recorded)).mappings()]
        rows += [row(r, "telephonist") for r in (await s.execute(unrecorded)).mappings()]
    rows.sort(key=lambda r: r["_at"])
    for r in rows:
        del r["_at"]
    return rows[:limit]
