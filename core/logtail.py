"""Ingest a log file Asterisk appends to (queue_log, channel events), exactly once.

Every ``interval`` seconds the complete lines added since the last read are handed to
:meth:`LogIngester.handle`, :data:`BATCH` lines per transaction, together with the new file position
(``queue_log_position`` rows, one per path): a restart neither loses nor repeats a line, and
lines written while serve was down are read when it is back. A rotated (new inode) or
truncated file is read from the start; a half-written last line waits for the next read.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import select

from telephonist.core.loops import retry_after
from telephonist.core.models import QueueLogPosition
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.logtail")

BATCH = 500
"""At most this many lines per transaction. A backlog (a first start beside a year of
queue_log, serve down for a day) is read batch after batch without waiting, and other
writers (a call's record, a callback) get the database between batches: one 4-MB
transaction held SQLite's write lock for 25 s and stalled the event loop for 5 s."""


class LogIngester:
    """Subclasses say what a batch of new lines becomes (:meth:`handle`)."""

    what = "log"

    def __init__(self, path: Path, store: Store, interval: float = 1.0) -> None:
        self.path = path
        self.store = store
        self.interval = interval
        self._lock = asyncio.Lock()
        self.behind = False
        """The last read stopped before the end of the file (more complete lines wait)."""

    async def run(self) -> None:
        while True:
            try:
                await self.catch_up()
            except OSError as exc:
                log.warning("%s %s not read: %s", self.what, self.path, exc)
                self.behind = False
            await retry_after(self.interval)

    async def ingest_once(self) -> int:
        """Handle the lines added since the last call; returns what :meth:`handle` counted."""
        async with self._lock:
            if not self.path.exists():
                return 0
            stat = self.path.stat()
            async with self.store.unit_of_work() as uow:
                position = (
                    await uow.session.execute(
                        select(QueueLogPosition).where(
                            QueueLogPosition.path == str(self.path)  # type: ignore[arg-type]
                        )
                    )
                ).scalar_one_or_none()
                if position is None:
                    position = QueueLogPosition(path=str(self.path), inode=stat.st_ino, offset=0)
                    uow.session.add(position)
                if position.inode != stat.st_ino or position.offset > stat.st_size:
                    position.inode, position.offset = stat.st_ino, 0  # rotated or truncated
                self.behind = False
                if position.offset == stat.st_size:
                    return 0
                complete = await asyncio.to_thread(_read_lines, self.path, position.offset, BATCH)
                position.offset += len(complete)
                self.behind = bool(complete) and position.offset < stat.st_size
                lines = complete.decode(errors="replace").splitlines()
                return await self.handle(uow, lines) if lines else 0

    async def catch_up(self) -> int:
        """Read to the end of the file as it is now, batch after batch (a reconciliation
        that must know every line written before it listed the channels)."""
        total = await self.ingest_once()
        while self.behind:
            await asyncio.sleep(0)  # the next batch at once; other tasks run first
            total += await self.ingest_once()
        return total

    async def handle(self, uow: UnitOfWork, lines: list[str]) -> int:
        raise NotImplementedError


def _read_lines(path: Path, offset: int, limit: int) -> bytes:
    """The first ``limit`` complete lines from ``offset`` (a half-written last one is left
    for the next read); reads only as far as they go."""
    out: list[bytes] = []
    with path.open("rb") as fh:
        fh.seek(offset)
        for _ in range(limit):
            line = fh.readline()
            if not line.endswith(b"\n"):
                break
            out.append(line)
    return b"".join(out)


__all__ = ["LogIngester"]
