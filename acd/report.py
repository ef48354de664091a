"""What the queues did today: redirects by reason (the manager's first question: did callers
meet a full queue, an empty queue, a closed queue?)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.core.models import QueueRedirect
from telephonist.core.storage import Store

REASONS = ("overflow", "empty", "no_answer", "after_hours")


async def redirects_since(store: Store, since: datetime) -> dict[str, dict[str, int]]:
    """``{queue: {reason: count}}`` of redirects from ``since`` on."""
    async with store.sessions() as s:
        rows = await s.execute(
            select(col(QueueRedirect.queue), col(QueueRedirect.reason), func.count())
            .where(col(QueueRedirect.at) >= since)
            .group_by(col(QueueRedirect.queue), col(QueueRedirect.reason))
        )
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for queue, reason, count in rows.all():
            out[queue][reason] = int(count)
        return dict(out)


def start_of_today(tz: str = "UTC", now: datetime | None = None) -> datetime:
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)
