"""``telephonist contacts bench``: how fast a large contact list is imported, how much memory
it takes and how long the database's write lock is held at most (prints numbers).

A CSV of ``rows`` contacts (valid French and US numbers, names, tags, a custom field; one row
in fifty shares a number with an earlier one, one in a hundred is bad) is written to a
temporary folder and imported into a new SQLite database there, as ``contacts import`` does.
"""

from __future__ import annotations

import csv
import random
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telephonist.core.storage import Store
from telephonist.dialer.contacts import import_file


@dataclass
class ImportBench:
    rows: int
    seconds: float
    imported: int
    merged: int
    rejected: int
    batches: int
    longest_batch_ms: float
    batch_p50_ms: float
    batch_p99_ms: float
    peak_rss_mb: float

    def lines(self) -> list[str]:
        return [
            f"rows in the file         {self.rows}",
            f"imported / merged / bad  {self.imported} / {self.merged} / {self.rejected}",
            f"time                     {self.seconds:.1f} s",
            f"rows per second          {self.rows / self.seconds:,.0f}",
            f"batches                  {self.batches}",
            f"write lock per batch     p50 {self.batch_p50_ms:.1f} ms,"
            f" p99 {self.batch_p99_ms:.1f} ms, longest {self.longest_batch_ms:.1f} ms",
            f"peak memory (RSS)        {self.peak_rss_mb:.0f} MB",
        ]


def write_list(path: Path, rows: int, seed: int = 0) -> None:
    """A contact list of ``rows`` rows, written as it is generated (memory stays flat)."""
    rng = random.Random(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "phone", "mobile", "tags", "account"])
        for i in range(rows):
            if i % 100 == 99:
                w.writerow([f"Bad {i}", "not a number", "", "", ""])
                continue
            n = i - 1 if i % 50 == 49 else i  # a duplicate of the row before
            if n % 2:
                phone = f"+1 212 {200 + n // 10_000 % 800:03d} {n % 10_000:04d}"
            else:
                phone = f"+33 1 {n // 1_000_000 % 100:02d} {n // 10_000 % 100:02d} {n % 10_000:04d}"
            w.writerow([f"Contact {i}", phone, "", rng.choice(["vip", "new", "old"]), f"A{i}"])


async def run(rows: int, folder: Path | None = None) -> ImportBench:
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "list.csv"
        write_list(path, rows)
        store = Store(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            await store.migrate()
            started = time.perf_counter()
            report = await import_file(store, path, "bench", region="FR")
            seconds = time.perf_counter() - started
        finally:
            await store.close()
    return ImportBench(
        rows=rows,
        seconds=seconds,
        imported=report.imported,
        merged=report.merged,
        rejected=report.rejected,
        batches=report.batches,
        longest_batch_ms=report.longest_batch * 1000,
        batch_p50_ms=float(np.percentile(report.batch_seconds, 50)) * 1000,
        batch_p99_ms=float(np.percentile(report.batch_seconds, 99)) * 1000,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
