"""Outbound campaigns per period (15, 30, 60 minutes, day, week, month, total) in the
centre's time zone: dials, each outcome, connects, abandons and the abandon rate of the
period (abandoned / (connected + abandoned): the figure regulators ask for), talk and
average talk (from the queue_log: the dialer's calls are ``dial-N`` visits of the campaign's
queue), and the dispositions agents gave. Counted in SQL on ``dial_attempts`` (slots from
:mod:`telephonist.reports.periods`). The rolling abandon rate the pacing obeys, over the
jurisdiction's period, stays with ``campaign stats``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, func, literal, select

from telephonist.core.centre import Centre
from telephonist.core.models import (
    DIALER_CALL_PREFIX,
    Campaign,
    CampaignLead,
    DialAttempt,
    QueueCall,
)
from telephonist.core.storage import Store
from telephonist.reports import periods
from telephonist.reports.kpi import Period, ReportError

OUTCOMES = ("answered", "abandoned", "machine", "no_answer", "busy", "failed", "dnc_blocked")


async def campaigns(
    store: Store, centre: Centre, period: Period, *, only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    da = DialAttempt.__table__.c  # type: ignore[attr-defined]
    cp = Campaign.__table__.c  # type: ignore[attr-defined]
    qc = QueueCall.__table__.c  # type: ignore[attr-defined]
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    async with store.sessions() as s:
        names: dict[int, str] = dict((await s.execute(select(cp.id, cp.name))).all())
        for name in only:
            if name not in names.values():
                raise ReportError(f"--campaign: no campaign {name!r}")
        wanted = [i for i, n in names.items() if not only or n in only]

        def row(campaign_id: int, label: str) -> dict[str, Any]:
            key = (names[campaign_id], label)
            if key not in out:
                out[key] = {"campaign": names[campaign_id], "period": label, "dials": 0,
                            **{o: 0 for o in OUTCOMES}, "in_progress": 0, "abandon_rate": None,
                            "talk": 0, "avg_talk": None, "dispositions": {}}  # fmt: skip
            return out[key]

        for lo, hi, offset in periods.offset_spans(start, end, zone):
            when = periods.slot(da.started_at, offset, period.interval)
            dialled = and_(da.started_at >= lo, da.started_at < hi, da.campaign_id.in_(wanted))
            visit = and_(qc.callid == literal(DIALER_CALL_PREFIX) + cast(da.id, String),
                         qc.kind == "outbound")  # fmt: skip
            stmt = (
                select(da.campaign_id, when, func.count(),
                       *[func.coalesce(func.sum(case((da.outcome == o, 1), else_=0)), 0)
                         for o in (*OUTCOMES, "")],
                       func.coalesce(func.sum(qc.talk), 0),
                       func.coalesce(func.sum(case((qc.outcome == "answered", 1), else_=0)), 0))
                .select_from(DialAttempt.__table__)  # type: ignore[attr-defined]
                .outerjoin(QueueCall.__table__, visit)  # type: ignore[attr-defined]
                .where(dialled)
                .group_by(da.campaign_id, when)
            )  # fmt: skip
            for campaign_id, n_slot, n, *counts in await s.execute(stmt):
                r = row(campaign_id, periods.label(period.interval, int(n_slot)))
                talk, visits = counts[-2:]
                r["dials"] += int(n)
                for o, k in zip((*OUTCOMES, "in_progress"), counts[:-2], strict=True):
                    r[o] += int(k)
                r["talk"] += int(talk)
                r["_visits"] = r.get("_visits", 0) + int(visits)
            for campaign_id, n_slot, code, n in await s.execute(
                select(da.campaign_id, when, ld.disposition, func.count(func.distinct(ld.id)))
                .join_from(DialAttempt.__table__, CampaignLead.__table__, ld.id == da.lead_id)  # type: ignore[attr-defined]
                .where(and_(dialled, ld.disposition != literal("")))
                .group_by(da.campaign_id, when, ld.disposition)
            ):  # fmt: skip
                by = row(campaign_id, periods.label(period.interval, int(n_slot)))["dispositions"]
                by[code] = by.get(code, 0) + int(n)
    rows = []
    for key in sorted(out):
        r = out[key]
        live = r["answered"] + r["abandoned"]
        r["abandon_rate"] = round(r["abandoned"] / live, 4) if live else None
        visits = r.pop("_visits", 0)
        r["avg_talk"] = round(r["talk"] / visits, 1) if visits else None
        rows.append(r)
    return rows


__all__ = ["OUTCOMES", "campaigns"]
