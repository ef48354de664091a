"""``telephonist queue``: the queues and what they did today."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from acd.report import REASONS, redirects_since, start_of_today
from cli.common import state
from core.storage import Store

app = typer.Typer(help="Queues: status and redirects.")


@app.command()
def status(
    ctx: typer.Context,
    tz: str = typer.Option("UTC", help="Time zone whose midnight starts 'today'"),
) -> None:
    """Each queue's settings and today's redirects by reason."""
    st = state(ctx)
    settings, centre = st.settings(), st.centre()

    async def _load() -> dict[str, dict[str, int]]:
        store = Store(settings.database_url)
        try:
            await store.migrate()
            return await redirects_since(store, start_of_today(tz))
        finally:
            await store.close()

    counts = asyncio.run(_load())
    table = Table(title=f"queues — redirects today ({tz})")
    for column in ("queue", "strategy", "max wait", "max len", *REASONS):
        table.add_column(column, justify="left" if column in ("queue", "strategy") else "right")
    for q in centre.queues:
        c = counts.get(q.name, {})
        table.add_row(
            q.name, q.strategy, f"{q.max_wait}s" if q.max_wait else "-", str(q.maxlen or "-"),
            *(str(c.get(r, 0)) for r in REASONS),
        )  # fmt: skip
    Console(width=120).print(table)
