"""Old rows are pruned so the database does not grow without end (``storage.retention_*``).

Delivered outbox events, IVR steps and ingested queue_log lines older than their retention
are deleted once an hour, a few thousand rows per transaction so that the write lock is never
held long. Undelivered events are never pruned, whatever their age.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import col

from telephonist.core.models import IvrStep, OutboxEvent, QueueLogEntry
from telephonist.core.settings import StorageSettings
from telephonist.core.storage import Store

log = logging.getLogger("telephonist.retention")

CHUNK = 2000


class Pruner:
    def __init__(self, store: Store, settings: StorageSettings, *, every: float = 3600) -> None:
        self.store = store
        self.settings = settings
        self.every = every

    async def run(self) -> None:
        while True:
            await self.prune()
            await asyncio.sleep(self.every)

    async def prune(self, now: datetime | None = None) -> dict[str, int]:
        """Delete what is past its retention; returns how many rows of each kind."""
        now = now or datetime.now(UTC)
        s = self.settings
        plan: list[tuple[str, Any, Any, int]] = [
            ("outbox", OutboxEvent, col(OutboxEvent.sent_at), s.retention_outbox_days),
            ("ivr_steps", IvrStep, col(IvrStep.at), s.retention_ivr_steps_days),
            ("queue_log", QueueLogEntry, col(QueueLogEntry.time), s.retention_queue_log_days),
        ]
        counts: dict[str, int] = {}
        for name, model, when, days in plan:
            if days <= 0:
                continue
            cutoff = now - timedelta(days=days)
            counts[name] = 0
            while True:
                async with self.store.unit_of_work() as uow:
                    ids = list(
                        (
                            await uow.session.execute(
                                select(col(model.id)).where(when < cutoff).limit(CHUNK)
                            )
                        ).scalars()
                    )
                    if ids:
                        await uow.session.execute(delete(model).where(col(model.id).in_(ids)))
                counts[name] += len(ids)
                if len(ids) < CHUNK:
                    break
                await asyncio.sleep(0)  # let the calls in progress write between chunks
        if any(counts.values()):
            log.info("pruned %s", ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        return counts
