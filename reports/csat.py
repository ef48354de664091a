"""Customer satisfaction (CSAT) from the post-call surveys, in SQL on both databases.

Per queue and per agent over a period: calls answered, callers asked (the agent hung up first
on a queue with a survey), answers (a key 1-5), the response rate, the average score, the
share of 4 and 5 ("CSAT %", the usual definition) and the count of each score.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, literal, select

from telephonist.core.centre import Centre
from telephonist.core.models import QueueCall
from telephonist.core.storage import Store
from telephonist.reports.kpi import Period, ReportError, check_queues


async def csat(
    store: Store, centre: Centre, period: Period, *, only: tuple[str, ...] = (),
    by: str = "queue",
) -> list[dict[str, Any]]:  # fmt: skip
    check_queues(centre, only)
    if by not in ("queue", "agent"):
        raise ReportError(f"--by: {by!r} is not queue or agent")
    c = QueueCall.__table__.c  # type: ignore[attr-defined]
    key = c.queue if by == "queue" else c.agent
    scored = c.csat.is_not(None)

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    stmt = (
        select(
            key.label("key"),
            func.count().label("answered"),
            count(c.surveyed).label("asked"),
            count(scored).label("answers"),
            func.avg(c.csat).label("average"),
            count(c.csat >= 4).label("satisfied"),
            *[count(c.csat == n).label(f"s{n}") for n in range(1, 6)],
        )
        .where(and_(c.kind == "inbound", c.outcome == "answered",
                    c.local_day >= period.first.isoformat(), c.local_day <= period.last.isoformat(),
                    c.queue.in_(only) if only else literal(True)))
        .group_by(key)
        .order_by(key)
    )  # fmt: skip
    out = []
    async with store.sessions() as s:
        for r in (await s.execute(stmt)).mappings():
            answers = int(r["answers"])
            out.append({
                by: r["key"],
                "answered": int(r["answered"]),
                "asked": int(r["asked"]),
                "answers": answers,
                "response_rate": round(answers / int(r["asked"]), 4) if r["asked"] else None,
                "average": None if r["average"] is None else round(float(r["average"]), 2),
                "csat": round(int(r["satisfied"]) / answers, 4) if answers else None,
                "scores": {str(n): int(r[f"s{n}"]) for n in range(1, 6)},
            })  # fmt: skip
    return out
