"""Per-agent statistics per period (15, 30, 60 minutes, day, week, month or the whole range),
in the centre's time zone, counted in SQL on both databases (logins and pauses, a few a day
per agent, are cut into periods in Python).

- logged-in time (``agent_logins``) and paused time by reason (``agent_pauses``), each cut
  at the periods' boundaries (a login still open counts until now);
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
from telephonist.core.storage import Store
from telephonist.reports import periods
from telephonist.reports.kpi import Period, ReportError, _keys, _label


def _blank(agent: str, name: str, label: str) -> dict[str, Any]:
    return {"agent": agent, "name": name, "period": label, "logged_in": 0.0, "paused": 0.0,
            "paused_by_reason": {}, "answered": 0, "answered_inbound": 0,
            "rings_unanswered": 0, "talk": 0, "wrap": 0, "aht": None, "occupancy": None,
            "outbound_dials": 0, "dispositions": {}}  # fmt: skip


async def agents(
    store: Store,
    centre: Centre,
    period: Period,
    *,
    only: tuple[str, ...] = (),
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """A row per agent and period (``period.interval``; ``total``: one row per agent, every
    agent listed) in which the agent did something."""
    known = {a.id: a for a in centre.agents}
    for agent_id in only:
        if agent_id not in known:
            raise ReportError(f"--agent: no agent {agent_id!r} ({', '.join(sorted(known))})")
    ids = only or tuple(sorted(known))
    member = {known[i].name or i: i for i in ids}
    zone = ZoneInfo(centre.timezone)
    interval = period.interval
    start, end = period.utc_range(zone)
    end = min(end, now or datetime.now(UTC))
    lg = AgentLogin.__table__.c  # type: ignore[attr-defined]
    ps = AgentPause.__table__.c  # type: ignore[attr-defined]
    qc = QueueCall.__table__.c  # type: ignore[attr-defined]
    ql = QueueLogEntry.__table__.c  # type: ignore[attr-defined]
    da = DialAttempt.__table__.c  # type: ignore[attr-defined]
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def row(agent: str, label: str) -> dict[str, Any]:
        key = (agent, label)
        if key not in out:
            out[key] = _blank(agent, known[agent].name, label)
        return out[key]

    if interval == "total":
        for i in ids:
            row(i, "total")

    def clip(a: datetime, b: datetime | None) -> tuple[datetime, datetime]:
        return max(as_utc(a), start), min(as_utc(b) if b is not None else end, end)

    async with store.sessions() as s:
        # Logins and pauses cross periods: their spans (a few a day per agent, not calls)
        # are cut at the periods' boundaries (reports/periods.py).
        for agent, a, b in await s.execute(
            select(lg.agent, lg.logged_in_at, lg.logged_out_at)
            .where(and_(or_(lg.logged_out_at.is_(None), lg.logged_out_at > start),
                        lg.logged_in_at < end, lg.agent.in_(ids)))
        ):  # fmt: skip
            for label, seconds in periods.pieces(*clip(a, b), interval, zone):
                row(agent, label)["logged_in"] += seconds
        for agent, reason, a, b in await s.execute(
            select(ps.agent, ps.reason, ps.started_at, ps.ended_at)
            .where(and_(or_(ps.ended_at.is_(None), ps.ended_at > start), ps.started_at < end))
            .where(ps.agent.in_(ids))
        ):
            for label, seconds in periods.pieces(*clip(a, b), interval, zone):
                r = row(agent, label)
                by = r["paused_by_reason"]
                by[reason or "(none)"] = by.get(reason or "(none)", 0.0) + seconds
                r["paused"] += seconds
        answered = and_(qc.outcome == "answered", qc.entered_at >= start, qc.entered_at < end,
                        qc.agent.in_(member))  # fmt: skip
        ended = qc.ended_at.is_not(None)
        keys = _keys(interval)
        for name, k, m, n, inbound, talk, wrap, aht in await s.execute(
            select(
                qc.agent, keys[0], keys[1], func.count(),
                func.coalesce(func.sum(case((qc.kind == "inbound", 1), else_=0)), 0),
                func.coalesce(func.sum(qc.talk), 0), func.coalesce(func.sum(qc.wrap), 0),
                func.avg(case((ended, qc.talk + qc.wrap))),
            )
            .where(answered)
            .group_by(qc.agent, *keys)
        ):  # fmt: skip
            row(member[name], _label(str(k), int(m))).update(
                answered=int(n),
                answered_inbound=int(inbound),
                talk=int(talk),
                wrap=int(wrap),
                aht=None if aht is None else round(float(aht), 1),
            )
        for lo, hi, offset in periods.offset_spans(start, end, zone):
            ring_slot = periods.slot(ql.time, offset, interval)
            for name, n_slot, n in await s.execute(
                select(ql.agent, ring_slot, func.count())
                .where(and_(ql.event == "RINGNOANSWER", ql.time >= lo, ql.time < hi))
                .where(ql.agent.in_(member))
                .group_by(ql.agent, ring_slot)
            ):
                row(member[name], periods.label(interval, int(n_slot)))["rings_unanswered"] += int(
                    n
                )
            dial_slot = periods.slot(da.started_at, offset, interval)
            for name, n_slot, n in await s.execute(
                select(da.agent, dial_slot, func.count())
                .where(and_(da.started_at >= lo, da.started_at < hi, da.agent.in_(member)))
                .group_by(da.agent, dial_slot)
            ):
                row(member[name], periods.label(interval, int(n_slot)))["outbound_dials"] += int(n)
            for name, n_slot, code, n in await s.execute(
                select(da.agent, dial_slot, ld.disposition, func.count(func.distinct(ld.id)))
                .join_from(DialAttempt.__table__, CampaignLead.__table__, ld.id == da.lead_id)  # type: ignore[attr-defined]
                .where(and_(da.started_at >= lo, da.started_at < hi, da.agent.in_(member)))
                .where(ld.disposition != literal(""))
                .group_by(da.agent, dial_slot, ld.disposition)
            ):  # fmt: skip
                by = row(member[name], periods.label(interval, int(n_slot)))["dispositions"]
                by[code] = by.get(code, 0) + int(n)
    for r in out.values():
        r["logged_in"] = round(r["logged_in"], 1)
        r["paused"] = round(r["paused"], 1)
        r["paused_by_reason"] = {k: round(v, 1) for k, v in r["paused_by_reason"].items()}
        available = r["logged_in"] - r["paused"]
        busy = r["talk"] + r["wrap"]
        r["occupancy"] = round(busy / available, 4) if available > 0 else None
    return [out[key] for key in sorted(out)]


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
