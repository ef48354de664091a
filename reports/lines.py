"""Per line (the numbers callers dial), per period: calls, answered, where they went, how long
they stayed in the menus and on the phone.

Counted in SQL from ``calls`` (what telephonist did with each call: its ``outcome``) joined
to ``pbx_calls`` (Asterisk's record: the call's whole duration), placed in the centre's
periods by :mod:`telephonist.reports.periods`; days are grouped into weeks and months in
Python — aggregates of aggregates (a few hundred rows a year per line), never the calls.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select

from telephonist.core.centre import Centre
from telephonist.core.models import Call, PbxCall
from telephonist.core.sql import epoch
from telephonist.core.storage import Store
from telephonist.reports import periods
from telephonist.reports.kpi import Period, ReportError

KINDS = (
    ("routed:queue:%", "queue"), ("queued:%", "queue"), ("routed:voicemail:%", "voicemail"),
    ("routed:callback%", "callback"), ("routed:outside:%", "outside"), ("routed:%", "routed"),
    ("redirected:%", "redirected"), ("fallback:%", "fallback"),
)  # fmt: skip
"""How a call left telephonist, from its outcome: to a queue (from the menu, or a queue
line), voicemail, a callback request, an outside number, another destination (an agent, an
extension, a hang-up), redirected by a queue, taken by the dialplan while serve was down;
otherwise the outcome itself (``caller_hangup`` in the menus, ``completed``, ``error``,
``lost``) or ``open`` (still in progress)."""


async def lines(
    store: Store, centre: Centre, period: Period, *, only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Per line and period: ``calls``, ``answered``, ``ended`` (how many left each way, see
    :data:`KINDS`), ``avg_in_menus`` (seconds in telephonist's menus before being sent on or
    hanging up) and ``avg_duration`` (seconds from ring to hang-up, from Asterisk's
    record)."""
    known = {x.name for x in centre.lines}
    for name in only:
        if name not in known:
            raise ReportError(f"--line: no line {name!r}")
    zone = ZoneInfo(centre.timezone)
    start, end = period.utc_range(zone)
    c = Call.__table__.c  # type: ignore[attr-defined]
    p = PbxCall.__table__.c  # type: ignore[attr-defined]
    kind = case(*[(c.outcome.like(pattern), name) for pattern, name in KINDS],
                else_=func.coalesce(c.outcome, "open"))  # fmt: skip
    menus = case((c.ended_at.is_not(None), epoch(c.ended_at) - epoch(c.started_at)))
    duration = case((p.linkedid.is_not(None), epoch(p.ended_at) - epoch(p.started_at)))
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    async with store.sessions() as s:
        for lo, hi, offset in periods.offset_spans(start, end, zone):
            slot = periods.slot(c.started_at, offset, period.interval)
            stmt = (
                select(c.line, slot.label("slot"), kind.label("kind"), func.count(),
                       func.count(c.answered_at), func.count(menus), func.sum(menus),
                       func.count(duration), func.sum(duration))
                .select_from(Call.__table__)  # type: ignore[attr-defined]
                .outerjoin(PbxCall.__table__, p.linkedid == c.channel_id)  # type: ignore[attr-defined]
                .where(and_(c.started_at >= lo, c.started_at < hi))
                .where(c.line.in_(only) if only else literal(True))
                .group_by(c.line, slot, kind)
            )  # fmt: skip
            for line, n_slot, how, n, answered, n_menus, s_menus, n_dur, s_dur in await s.execute(
                stmt
            ):
                label = periods.label(period.interval, int(n_slot))
                row = totals.setdefault((line, label), {
                    "line": line, "period": label, "calls": 0, "answered": 0, "ended": {},
                    "_menus": [0, 0.0], "_duration": [0, 0.0]})  # fmt: skip
                row["calls"] += int(n)
                row["answered"] += int(answered)
                row["ended"][how] = row["ended"].get(how, 0) + int(n)
                row["_menus"][0] += int(n_menus)
                row["_menus"][1] += float(s_menus or 0)
                row["_duration"][0] += int(n_dur)
                row["_duration"][1] += float(s_dur or 0)
    out = []
    for key in sorted(totals):
        row = totals[key]
        for name, field in (("_menus", "avg_in_menus"), ("_duration", "avg_duration")):
            n, total = row.pop(name)
            row[field] = round(total / n, 1) if n else None
        row["ended"] = dict(sorted(row["ended"].items()))
        out.append(row)
    return out


__all__ = ["KINDS", "lines"]
