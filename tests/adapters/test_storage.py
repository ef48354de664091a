"""Storage on both backends: migrations, and the outbox written atomically with the change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from telephonist.core.models import Call, OutboxEvent, PbxCall
from telephonist.core.storage import Store


async def test_migrate_is_idempotent(store: Store) -> None:
    await store.migrate()
    assert await store.count_pending() == 0


async def test_change_and_event_commit_together(store: Store) -> None:
    async with store.unit_of_work() as uow:
        uow.session.add(Call(channel_id="c1", line="l", route="demo"))
        uow.emit("calls", "started", {"channel_id": "c1"})
    async with store.sessions() as s:
        calls = (await s.execute(select(Call))).scalars().all()
        events = (await s.execute(select(OutboxEvent))).scalars().all()
    assert [c.channel_id for c in calls] == ["c1"]
    assert [e.topic for e in events] == ["telephonist/n1/calls/started"]
    assert store.outbox_changed.is_set()


async def test_failure_rolls_back_both(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.unit_of_work() as uow:
            uow.session.add(Call(channel_id="c2", line="l", route="demo"))
            uow.emit("calls", "started", {"channel_id": "c2"})
            await uow.session.flush()
            raise RuntimeError("boom")
    async with store.sessions() as s:
        assert (await s.execute(select(Call))).scalars().all() == []
    assert await store.count_pending() == 0


async def test_pending_in_order_and_mark_sent(store: Store) -> None:
    for i in range(5):
        async with store.unit_of_work() as uow:
            uow.emit("test", "tick", {"i": i})
    pending = await store.pending_events()
    ids = [e.id or 0 for e in pending]
    assert ids == sorted(ids)
    assert len(pending) == 5
    await store.mark_sent([pending[0].id, pending[1].id])  # type: ignore[list-item]
    rest = await store.pending_events()
    assert [e.id for e in rest] == [e.id for e in pending[2:]]


async def test_migrations_match_the_models(store: Store) -> None:
    """Every model change has its migration: autogenerate finds nothing left to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, SQLModel.metadata))

    async with store.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_queue_log_ingested_exactly_once(store: Store, tmp_path: Path) -> None:
    from telephonist.acd.queue_log import QueueLogIngester
    from telephonist.core.models import QueueLogEntry

    path = tmp_path / "queue_log"
    path.write_text("1795337005|c1|sales|NONE|ENTERQUEUE||5550001|1\n1795337009|c1|sales|NONE|ABAN")
    assert await QueueLogIngester(path, store).ingest_once() == 1  # the half line waits
    with path.open("a") as fh:
        fh.write("DON|1|1|4\nnot a queue_log line\n")
    assert await QueueLogIngester(path, store).ingest_once() == 1  # a new reader: a restart
    assert await QueueLogIngester(path, store).ingest_once() == 0
    path.unlink()
    path.write_text("1795337100|c2|sales|NONE|ENTERQUEUE||5550002|1\n")  # rotated: new inode
    assert await QueueLogIngester(path, store).ingest_once() == 1
    async with store.sessions() as s:
        rows = (await s.execute(select(QueueLogEntry).order_by(QueueLogEntry.id))).scalars().all()  # type: ignore[arg-type]
    assert [(r.callid, r.event, r.data2) for r in rows] == [
        ("c1", "ENTERQUEUE", "5550001"),
        ("c1", "ABANDON", "1"),
        ("c2", "ENTERQUEUE", "5550002"),
    ]


async def test_old_rows_are_pruned_and_undelivered_events_never(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select
    from sqlmodel import col

    from telephonist.core.models import IvrStep, OutboxEvent, QueueLogEntry
    from telephonist.core.retention import Pruner
    from telephonist.core.settings import StorageSettings

    now = datetime.now(UTC)
    old, recent = now - timedelta(days=10), now - timedelta(days=1)
    async with store.unit_of_work() as uow:
        s = uow.session
        s.add(OutboxEvent(topic="t/old-sent", payload="{}", sent_at=old))
        s.add(OutboxEvent(topic="t/old-unsent", payload="{}", created_at=old))
        s.add(OutboxEvent(topic="t/recent", payload="{}", sent_at=recent))
        for at in (old, recent):
            s.add(IvrStep(channel_id="c", seq=1, entry="e", event="k", at=at))
            s.add(QueueLogEntry(time=at, callid="x", queue="q", agent="a", event="E"))
    pruner = Pruner(store, StorageSettings(
        retention_outbox_days=7, retention_ivr_steps_days=7, retention_queue_log_days=0,
    ))  # fmt: skip
    assert await pruner.prune(now) == {"outbox": 1, "ivr_steps": 1}
    async with store.sessions() as s:
        topics = set((await s.execute(select(col(OutboxEvent.topic)))).scalars())
        steps = (await s.execute(select(func.count()).select_from(IvrStep))).scalar_one()
        lines = (await s.execute(select(func.count()).select_from(QueueLogEntry))).scalar_one()
    assert topics == {"t/old-unsent", "t/recent"} and steps == 1 and lines == 2
    assert await pruner.prune(now) == {"outbox": 0, "ivr_steps": 0}  # nothing twice


async def test_a_queue_log_backlog_is_read_in_batches_that_let_other_writers_in(
    store: Store, tmp_path: Path
) -> None:
    """A first start beside a long queue_log: each transaction holds at most BATCH lines
    (one 4-MB transaction once held SQLite's write lock for 25 s), the loop reads the next
    batch at once instead of waiting its interval, and a call record written meanwhile is
    not made to wait for the whole backlog."""
    import asyncio

    from telephonist.acd.queue_log import QueueLogIngester
    from telephonist.core import logtail
    from telephonist.core.models import QueueLogEntry

    n = 3 * logtail.BATCH + 7
    path = tmp_path / "queue_log"
    path.write_text(
        "".join(f"{1795337000 + i}|c{i}|sales|NONE|ENTERQUEUE||555{i:04d}|1\n" for i in range(n))
        + "1795339999|cx|sales|NONE|ABAN"  # a half-written last line
    )
    ingester = QueueLogIngester(path, store, interval=3600)  # only a backlog may go on at once
    assert await ingester.ingest_once() == logtail.BATCH and ingester.behind

    counts: list[int] = []

    async def count() -> int:
        async with store.sessions() as s:
            return len((await s.execute(select(QueueLogEntry.id))).all())  # type: ignore[call-overload]

    async def writer() -> None:  # another loop's write, between two batches
        while len(counts) < 2:
            async with store.unit_of_work() as uow:
                uow.session.add(Call(channel_id=f"w{len(counts)}", line="l", route="demo"))
            counts.append(await count())
            await asyncio.sleep(0)

    task = asyncio.create_task(ingester.run())
    try:
        await asyncio.wait_for(writer(), 10)
        for _ in range(200):
            if await count() == n:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await count() == n and not ingester.behind  # the half line still waits
    assert counts[0] < n  # the call record was written while the backlog was being read
    assert await ingester.catch_up() == 0
    with path.open("a") as fh:
        fh.write("DON|1|1|4\n")
    assert await ingester.catch_up() == 1


async def _half_read_insert(store: Store) -> tuple[AsyncConnection, Any, Any]:
    """A connection of the pool mid-way through an ``INSERT ... RETURNING``: the statement
    has run (its write transaction is open) and its rows are not fetched yet, as when a
    task is cancelled between the two awaits of a flush. Returns the connection, its
    aiosqlite connection and the cursor."""
    conn = await store.engine.connect()
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    cursor = await driver.execute(
        "INSERT INTO outbox (topic, payload, created_at) VALUES ('t/x', '{}', '2026-01-01') "
        "RETURNING id"
    )
    return conn, driver, cursor


@pytest.mark.parametrize("closed_by", ["graceful close", "forced stop"])
async def test_a_connection_closed_mid_statement_leaves_no_write_lock(
    tmp_path: Path, closed_by: str
) -> None:
    """SQLite's close keeps a half-read statement's transaction, and its write lock, until
    the statement is freed: the next writer waited its whole busy timeout (30 s) and serve's
    stop during a CEL backlog overran its grace (exit 70). Both ways SQLAlchemy closes an
    aiosqlite connection (its graceful close, and the forced stop when that is cancelled)
    roll back first. The cursor is kept alive here, as the cancelled task's traceback
    kept it in serve."""
    import asyncio

    store = Store(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await store.migrate()
    try:
        conn, driver, cursor = await _half_read_insert(store)
        if closed_by == "graceful close":
            await conn.invalidate()  # the pool terminates it
        else:
            stopped = driver.stop()
            assert stopped is not None
            await asyncio.wait_for(stopped, 5)
            await conn.invalidate()
        assert driver._connection is None  # closed
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(5):
            async with store.unit_of_work() as uow:
                uow.emit("test", "after", {})
        assert loop.time() - started < 1.0
        assert [e.topic for e in await store.pending_events()] == ["telephonist/node/test/after"]
        del cursor
    finally:
        await store.close()


async def test_a_cel_backlog_cancelled_anywhere_never_holds_up_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop that overran on CI: serve cancelled while it read a long CEL file, the
    publisher's ``mark_sent`` waiting meanwhile on another connection. The ingest (batches
    of 100 lines, about 0.2 s each) is cancelled at 30 moments spread over its batches.
    Each time, the waiting writer gets the database within a second (it used to wait 30 s
    for a lock the cancelled connection kept), and the lines stored are whole batches."""
    import asyncio
    import json
    import random

    from telephonist.core import logtail
    from telephonist.core.cel import CelIngester
    from telephonist.core.models import CelEvent, QueueLogPosition

    monkeypatch.setattr(logtail, "BATCH", 100)
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await store.migrate()
    path = tmp_path / "cel.json"
    t = 1796326720.0
    with path.open("w") as fh:
        for i in range(1500):
            for ev in ("CHAN_START", "ANSWER", "HANGUP", "LINKEDID_END"):
                t += 0.01
                fh.write(json.dumps({
                    "eventtype": ev, "eventtime": f"{t:.6f}", "num": "5550100",
                    "channame": f"PJSIP/callees-{i:08x}", "uniqueid": f"d-{i}",
                    "linkedid": f"d-{i}", "exten": "s", "context": "from-callers",
                }) + "\n")  # fmt: skip
    async with store.unit_of_work() as uow:
        uow.emit("test", "sent-later", {})
    [pending] = await store.pending_events()
    assert pending.id is not None
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    slow = []
    try:
        for _ in range(30):
            ingester = CelIngester(path, store, interval=3600)
            task = asyncio.create_task(ingester.catch_up())
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            writer = asyncio.create_task(store.mark_sent([pending.id]))  # its own connection
            await asyncio.sleep(rng.uniform(0.0, 0.01))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            started = loop.time()
            done, _ = await asyncio.wait({writer}, timeout=5)
            assert done, "the writer still waited 5 s after the ingest was cancelled"
            writer.result()
            if loop.time() - started > 1.0:
                slow.append(round(loop.time() - started, 2))
            if task.done() and not task.cancelled() and task.exception() is None:
                break  # read to the end before the cancel: every line is in
        assert not slow, f"the writer waited {slow} s after an ingest was cancelled"
        async with store.sessions() as s:
            offset = (await s.execute(select(col(QueueLogPosition.offset)))).scalar_one()
            stored = (await s.execute(select(func.count()).select_from(CelEvent))).scalar_one()
            recorded = (await s.execute(select(func.count()).select_from(PbxCall))).scalar_one()
        lines = path.read_bytes()[:offset].count(b"\n")
        assert lines % logtail.BATCH == 0 or offset == path.stat().st_size  # whole batches
        assert stored + 4 * recorded == lines  # a call's events go when it is recorded
    finally:
        await store.close()
