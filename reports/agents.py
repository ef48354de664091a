"""Per-agent statistics over a period, in SQL on both databases.

- logged-in time (``agent_logins``) and paused time by reason (``agent_pauses``), each clipped
  to the period (a login still open counts until now);
- calls answered (queue visits the agent took; inbound ones apart), rings not answered
  (app_queue's RINGNOANSWER lines), talk and wrap-up (after-call work) in seconds, average
  handle time (talk + hold + wrap-up; app_queue logs no hold);
- occupancy = (talk + wrap-up) / (logged in - paused);
- outbound: dialer calls connected to the agent, and the dispositions of their leads.

In the queue_log an agent is their member name (``name``, else ``id``); the centre maps it back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, or_, select

from telephonist.core.centre import Centre
from telephonist.core.models import (
    AgentLogin,
    AgentPause,
    CampaignLead,
    DialAttempt,
    QueueCall,
    QueueLogEntry,
    as_utc,
)
from telephonist.core.sql import epoch, greatest, least
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, ReportError


def _clipped(start_col: Any, end_col: Any, start: datetime, end: datetime) -> Any:
    """Seconds of [start_col, end_col or the period's end) inside [start, end)."""
    until = least(func.coalesce(end_col, end), end)
    return func.coalesce(func.sum(epoch(until) - epoch(greatest(start_col, start))), 0)


async def agents(
    store: Store,
    centre: Centre,
    period: Period,
    *,
    only: tuple[str, ...] = (),
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    known = {a.id: a for a in centre.agents}
    for agent_id in only:
        if agent_id not in known:
            raise ReportError(f"--agent: no agent {agent_id!r} ({', '.join(sorted(known))})")
    ids = only or tuple(sorted(known))
    member = {known[i].name or i: i for i in ids}
    start, end = period.utc_range(ZoneInfo(centre.timezone))
    end = min(end, now or datetime.now(UTC))
    lg = AgentLogin.__table__.c  # type: ignore[attr-defined]
    ps = AgentPause.__table__.c  # type: ignore[attr-defined]
    qc = QueueCall.__table__.c  # type: ignore[attr-defined]
    ql = QueueLogEntry.__table__.c  # type: ignore[attr-defined]
    da = DialAttempt.__table__.c  # type: ignore[attr-defined]
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    out: dict[str, dict[str, Any]] = {
        i: {"agent": i, "name": known[i].name, "logged_in": 0.0, "paused": 0.0,
            "paused_by_reason": {}, "answered": 0, "answered_inbound": 0,
            "rings_unanswered": 0, "talk": 0, "wrap": 0, "aht": None, "occupancy": None,
            "outbound_dials": 0, "dispositions": {}}
        for i in ids
    }  # fmt: skip
    overlapping = and_(or_(lg.logged_out_at.is_(None), lg.logged_out_at > start),
                       lg.logged_in_at < end)  # fmt: skip
    async with store.sessions() as s:
        for agent, seconds in await s.execute(
            select(lg.agent, _clipped(lg.logged_in_at, lg.logged_out_at, start, end))
            .where(and_(overlapping, lg.agent.in_(ids)))
            .group_by(lg.agent)
        ):
            out[agent]["logged_in"] = round(float(seconds), 1)
        for agent, reason, seconds in await s.execute(
            select(ps.agent, ps.reason, _clipped(ps.started_at, ps.ended_at, start, end))
            .where(and_(or_(ps.ended_at.is_(None), ps.ended_at > start), ps.started_at < end))
            .where(ps.agent.in_(ids))
            .group_by(ps.agent, ps.reason)
        ):
            out[agent]["paused_by_reason"][reason or "(none)"] = round(float(seconds), 1)
            out[agent]["paused"] = round(out[agent]["paused"] + float(seconds), 1)
        answered = and_(qc.outcome == "answered", qc.entered_at >= start, qc.entered_at < end,
                        qc.agent.in_(member))  # fmt: skip
        ended = qc.ended_at.is_not(None)
        for name, n, inbound, talk, wrap, aht in await s.execute(
            select(
                qc.agent, func.count(),
                func.coalesce(func.sum(case((qc.kind == "inbound", 1), else_=0)), 0),
                func.coalesce(func.sum(qc.talk), 0), func.coalesce(func.sum(qc.wrap), 0),
                func.avg(case((ended, qc.talk + qc.wrap))),
            )
            .where(answered)
            .group_by(qc.agent)
        ):  # fmt: skip
            row = out[member[name]]
            row.update(
                answered=int(n),
                answered_inbound=int(inbound),
                talk=int(talk),
                wrap=int(wrap),
                aht=None if aht is None else round(float(aht), 1),
            )
        for name, n in await s.execute(
            select(ql.agent, func.count())
            .where(and_(ql.event == "RINGNOANSWER", ql.time >= start, ql.time < end))
            .where(ql.agent.in_(member))
            .group_by(ql.agent)
        ):
            out[member[name]]["rings_unanswered"] = int(n)
        for name, n in await s.execute(
            select(da.agent, func.count())
            .where(and_(da.started_at >= start, da.started_at < end, da.agent.in_(member)))
            .group_by(da.agent)
        ):
            out[member[name]]["outbound_dials"] = int(n)
        for name, code, n in await s.execute(
            select(da.agent, ld.disposition, func.count(func.distinct(ld.id)))
            .join_from(DialAttempt.__table__, CampaignLead.__table__, ld.id == da.lead_id)  # type: ignore[attr-defined]
            .where(and_(da.started_at >= start, da.started_at < end, da.agent.in_(member)))
            .where(ld.disposition != literal(""))
            .group_by(da.agent, ld.disposition)
        ):
            out[member[name]]["dispositions"][code] = int(n)
    for row in out.values():
        available = row["logged_in"] - row["paused"]
        busy = row["talk"] + row["wrap"]
        row["occupancy"] = round(busy / available, 4) if available > 0 else None
    return list(out.values())


TIMELINE_LIMIT = 20000
"""At most this many spans are drawn (one day of a large centre is well under it)."""


async def timeline(
    store: Store,
    centre: Centre,
    day: date,
    *,
    only: tuple[str, ...] = (),
    now: datetime | None = None,
) -> dict[str, list[tuple[str, float, float]]]:
    """Each agent's states over one day (centre's zone), for the chart: (state, from, to) in
    hours since local midnight, ``logged_in`` first, then ``paused:<reason>``, ``talk`` and
    ``wrap`` drawn over it. The spans of one day are read (a chart needs them), clipped to
    the day."""
    known = {a.id: a for a in centre.agents}
    for agent_id in only:
        if agent_id not in known:
            raise ReportError(f"--agent: no agent {agent_id!r} ({', '.join(sorted(known))})")
    ids = only or tuple(sorted(known))
    member = {known[i].name or i: i for i in ids}
    zone = ZoneInfo(centre.timezone)
    start, end = Period(day, day).utc_range(zone)
    midnight = datetime.combine(day, time(0), zone)
    until = min(end, now or datetime.now(UTC))

    def hours(t: datetime | None) -> float:
        t = until if t is None else as_utc(t)
        t = max(start, min(t, until, end))
        return (t - midnight).total_seconds() / 3600

    lg = AgentLogin.__table__.c  # type: ignore[attr-defined]
    ps = AgentPause.__table__.c  # type: ignore[attr-defined]
    qc = QueueCall.__table__.c  # type: ignore[attr-defined]
    out: dict[str, list[tuple[str, float, float]]] = {i: [] for i in ids}
    async with store.sessions() as s:
        for agent, a, b in await s.execute(
            select(lg.agent, lg.logged_in_at, lg.logged_out_at)
            .where(and_(or_(lg.logged_out_at.is_(None), lg.logged_out_at > start),
                        lg.logged_in_at < end, lg.agent.in_(ids)))
            .order_by(lg.logged_in_at).limit(TIMELINE_LIMIT)
        ):  # fmt: skip
            out[agent].append(("logged_in", hours(a), hours(b)))
        for agent, reason, a, b in await s.execute(
            select(ps.agent, ps.reason, ps.started_at, ps.ended_at)
            .where(and_(or_(ps.ended_at.is_(None), ps.ended_at > start),
                        ps.started_at < end, ps.agent.in_(ids)))
            .order_by(ps.started_at).limit(TIMELINE_LIMIT)
        ):  # fmt: skip
            out[agent].append((f"paused:{reason or '(none)'}", hours(a), hours(b)))
        for name, a, b, wrap in await s.execute(
            select(qc.agent, qc.answered_at, qc.ended_at, qc.wrap)
            .where(and_(qc.outcome == "answered", qc.answered_at.is_not(None),
                        qc.answered_at < end, or_(qc.ended_at.is_(None), qc.ended_at > start),
                        qc.agent.in_(member)))
            .order_by(qc.answered_at).limit(TIMELINE_LIMIT)
        ):  # fmt: skip
            agent = member[name]
            out[agent].append(("talk", hours(a), hours(b)))
            if b is not None and wrap:
                out[agent].append(("wrap", hours(b), hours(as_utc(b) + timedelta(seconds=wrap))))
    return {a: [x for x in spans if x[2] > x[1]] for a, spans in out.items()}
