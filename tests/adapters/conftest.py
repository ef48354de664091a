"""Both storage backends for the adapter tests: SQLite, and PostgreSQL (started by make test;
unreachable is a failure that says so, never a skip)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from telephonist.core.storage import Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", node="n1")
        await s.migrate()
        yield s
        await s.close()
        return
    name = f"telephonist_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN} (make test starts it): {exc}")
    await admin.execute(f'CREATE DATABASE "{name}"')
    s = Store(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", node="n1")
    try:
        await s.migrate()
        yield s
    finally:
        await s.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
