"""Ingest Asterisk's queue_log into the database, exactly once.

app_queue appends one line per queue event (``time|callid|queue|agent|event|data...``);
report tools read it, and so will telephonist's reports. Every second the new complete lines
are parsed and stored together with the file position in one transaction, so a restart
neither loses nor repeats a line; a rotated (new inode) or truncated file is read from the
start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from telephonist.acd.events import ACD
from telephonist.core.loops import retry_after
from telephonist.core.models import QueueLogEntry, QueueLogPosition
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.acd")


def parse_line(line: str) -> QueueLogEntry | None:
    """One queue_log line, or None if it is not one.

    >>> e = parse_line("1795337005|telephonist-test-1.0|sales|NONE|ENTERQUEUE||5580001|1")
    >>> (e.queue, e.event, e.data2, e.time.year)
    ('sales', 'ENTERQUEUE', '5580001', 2026)
    >>> parse_line("garbage") is None
    True
    """
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit():
        return None
    data = (parts[5:] + [""] * 5)[:5]
    return QueueLogEntry(
        time=datetime.fromtimestamp(int(parts[0]), UTC),
        callid=parts[1][:150],
        queue=parts[2][:80],
        agent=parts[3][:80],
        event=parts[4][:40],
        data1=data[0][:200],
        data2=data[1][:200],
        data3=data[2][:200],
        data4=data[3][:200],
        data5=data[4][:200],
    )


Hook = Callable[[UnitOfWork, list[QueueLogEntry]], Awaitable[None]]
"""Runs inside the ingestion transaction with the new lines (callbacks learn outcomes so)."""


class QueueLogIngester:
    def __init__(self, path: Path, store: Store, interval: float = 1.0) -> None:
        self.path = path
        self.store = store
        self.interval = interval
        self.hooks: list[Hook] = []
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        while True:
            try:
                await self.ingest_once()
            except OSError as exc:
                log.warning("queue_log %s not read: %s", self.path, exc)
            await retry_after(self.interval)

    async def ingest_once(self) -> int:
        """Store the lines added since the last call; returns how many."""
        async with self._lock:
            return await self._ingest()

    async def _ingest(self) -> int:
        if not self.path.exists():
            return 0
        stat = self.path.stat()
        async with self.store.unit_of_work() as uow:
            result = await uow.session.execute(
                select(QueueLogPosition).where(QueueLogPosition.path == str(self.path))  # type: ignore[arg-type]
            )
            position = result.scalar_one_or_none()
            if position is None:
                position = QueueLogPosition(path=str(self.path), inode=stat.st_ino, offset=0)
                uow.session.add(position)
            if position.inode != stat.st_ino or position.offset > stat.st_size:
                position.inode, position.offset = stat.st_ino, 0  # rotated or truncated
            if position.offset == stat.st_size:
                return 0
            chunk = await asyncio.to_thread(_read_from, self.path, position.offset)
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a half-written last line waits
            entries = []
            for raw in complete.decode(errors="replace").splitlines():
                entry = parse_line(raw)
                if entry is not None:
                    uow.session.add(entry)
                    entries.append(entry)
            position.offset += len(complete)
            if entries:
                await uow.session.flush()
                for hook in self.hooks:
                    await hook(uow, entries)
                ACD(uow, "queue_log", {"lines": len(entries)})
        return len(entries)


def _read_from(path: Path, offset: int, limit: int = 4 << 20) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(limit)


def sandbox_queue_log(rootfs: Path, instance: str) -> Path:
    return rootfs / "var/lib/telephonist" / instance / "log" / "queue_log"


__all__ = ["QueueLogIngester", "parse_line", "sandbox_queue_log"]
