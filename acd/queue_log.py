"""Ingest Asterisk's queue_log into the database, exactly once.

app_queue appends one line per queue event (``time|callid|queue|agent|event|data...``);
report tools read it, and so do telephonist's reports. Every second the new complete lines
are parsed and stored together with the file position in one transaction
(:class:`~telephonist.core.logtail.LogIngester`), so a restart neither loses nor repeats a
line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from telephonist.acd.events import ACD
from telephonist.core.logtail import LogIngester
from telephonist.core.models import QueueLogEntry
from telephonist.core.storage import Store, UnitOfWork


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


class QueueLogIngester(LogIngester):
    what = "queue_log"

    def __init__(self, path: Path, store: Store, interval: float = 1.0) -> None:
        super().__init__(path, store, interval)
        self.hooks: list[Hook] = []

    async def handle(self, uow: UnitOfWork, lines: list[str]) -> int:
        entries = []
        for raw in lines:
            entry = parse_line(raw)
            if entry is not None:
                uow.session.add(entry)
                entries.append(entry)
        if entries:
            await uow.session.flush()
            for hook in self.hooks:
                await hook(uow, entries)
            ACD(uow, "queue_log", {"lines": len(entries)})
        return len(entries)


def sandbox_queue_log(rootfs: Path, instance: str) -> Path:
    return rootfs / "var/lib/telephonist" / instance / "log" / "queue_log"


__all__ = ["QueueLogIngester", "parse_line", "sandbox_queue_log"]
