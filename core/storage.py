"""Storage: one async engine (SQLite by default, PostgreSQL by URL), migrations, and the
unit of work that writes a state change and its outbox events in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from telephonist.core.models import OutboxEvent, utcnow

SCHEMA_VERSION = 1
"""Version of the MQTT payload envelope (``schema`` in every event)."""

MIGRATIONS = Path(__file__).parent / "migrations"


class StorageError(Exception):
    pass


SQLITE_BUSY_TIMEOUT = 30
"""Seconds a SQLite writer waits for another connection's write transaction to end."""


class _SqliteConnection(aiosqlite.Connection):
    """aiosqlite's connection, rolled back before it is closed.

    SQLite's close does not end a transaction while one of its statements is still half
    read: a task cancelled between an ``INSERT ... RETURNING`` and the fetch of its rows
    (a stop in the middle of a CEL backlog) leaves the closed connection holding the
    database's write lock until the garbage collector frees the statement. Every other
    writer then waits its whole busy timeout (30 s): serve's stop took more than its 10 s
    grace and exited 70. A rollback resets the statements and releases the lock at once.
    SQLAlchemy closes a connection one of two ways, both covered: ``close()`` (a graceful
    close, or the pool's) and ``stop()`` (its forced close when that close is cancelled).
    """

    async def close(self) -> None:
        if self._running and self._connection is not None:
            await self._execute(self._rollback_in_thread)
        await super().close()

    def stop(self) -> asyncio.Future[Any] | None:
        if self._running:
            self._tx.put_nowait((None, self._rollback_in_thread))
        return super().stop()

    def _rollback_in_thread(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.rollback()


def _sqlite_connector(path: str) -> Callable[[], _SqliteConnection]:
    """What ``create_async_engine(async_creator=)`` calls for each new connection (the
    arguments SQLAlchemy would give ``aiosqlite.connect`` for the URL)."""

    def connect() -> _SqliteConnection:
        conn = _SqliteConnection(
            partial(sqlite3.connect, path, timeout=SQLITE_BUSY_TIMEOUT, check_same_thread=False),
            64,
        )
        conn._thread.daemon = True  # as SQLAlchemy does: a leaked one never blocks the exit
        return conn

    return connect


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_async_engine(url, async_creator=_sqlite_connector(path or ":memory:"))

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _private_file(path: Path) -> None:
    """The SQLite file (callers' numbers) readable by its owner only: its folder 0700, the
    file 0600 (SQLite gives its -wal and -shm files the database file's mode)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


class UnitOfWork:
    """A transaction: ``session`` for the state change, ``emit()`` for the events it causes."""

    def __init__(self, session: AsyncSession, topic_prefix: str, node: str) -> None:
        self.session = session
        self._prefix = topic_prefix
        self._node = node
        self.emitted = 0

    def emit(self, domain: str, name: str, data: dict[str, Any]) -> None:
        """Queue the event ``<prefix>/<node>/<domain>/<name>`` in this transaction."""
        envelope = {
            "schema": SCHEMA_VERSION,
            "event": f"{domain}.{name}",
            "node": self._node,
            "time": utcnow().isoformat(),
            "data": data,
        }
        self.session.add(
            OutboxEvent(
                topic=f"{self._prefix}/{self._node}/{domain}/{name}",
                payload=json.dumps(envelope, default=_json_default, separators=(",", ":")),
            )
        )
        self.emitted += 1


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Store:
    def __init__(self, url: str, *, topic_prefix: str = "telephonist", node: str = "node") -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._prefix = topic_prefix
        self._node = node
        # One writer of outbox events at a time, so ids are committed in id order and the
        # publisher never skips past an id whose transaction has not committed yet.
        self._write_lock = asyncio.Lock()
        self.outbox_changed = asyncio.Event()

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (alembic ``upgrade head``)."""

        def _upgrade(connection: Any) -> None:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """Commit the state change and its events together, or neither."""
        async with self._write_lock, self.sessions() as session, session.begin():
            uow = UnitOfWork(session, self._prefix, self._node)
            yield uow
        if uow.emitted:
            self.outbox_changed.set()

    async def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(OutboxEvent)
                .where(OutboxEvent.sent_at.is_(None))  # type: ignore[union-attr]
                .order_by(OutboxEvent.id)  # type: ignore[arg-type]
                .limit(limit)
            )
            return list(rows.scalars())

    async def mark_sent(self, ids: list[int]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_(ids))  # type: ignore[union-attr]
                .values(sent_at=utcnow())
            )

    async def count_pending(self) -> int:
        async with self.sessions() as session:
            result = await session.execute(
                select(func.count()).where(OutboxEvent.sent_at.is_(None))  # type: ignore[union-attr]
            )
            return int(result.scalar_one())
