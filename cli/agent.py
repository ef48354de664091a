"""``telephonist agent``: log agents in and out of their queues, pause them with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from telephonist.acd.agents import AgentError, AgentService
from telephonist.asterisk_conf.render import agent_password
from telephonist.cli.common import ami_session, errors, open_store, state
from telephonist.core.ami import AmiError
from telephonist.core.settings import Settings

app = typer.Typer(help="Agents: login, logout, pause, unpause, list.")
T = TypeVar("T")


def _run(ctx: typer.Context, action: Callable[[AgentService], Awaitable[T]]) -> T:
    st = state(ctx)
    settings: Settings = st.settings()
    centre = st.centre()

    async def _go() -> T:
        store = open_store(settings)
        try:
            await store.migrate()
            async with ami_session(settings) as ami:
                return await action(AgentService(ami, store, centre))
        finally:
            await store.close()

    with errors(AgentError, AmiError):
        return asyncio.run(_go())


@app.command()
def login(ctx: typer.Context, agent: str) -> None:
    """Log the agent in to every queue of their skills."""
    queues = _run(ctx, lambda s: s.login(agent))
    typer.echo(f"{agent} logged in to {', '.join(queues)}")


@app.command()
def logout(ctx: typer.Context, agent: str) -> None:
    """Log the agent out of all their queues (ends an open pause)."""
    _run(ctx, lambda s: s.logout(agent))
    typer.echo(f"{agent} logged out")


@app.command()
def pause(
    ctx: typer.Context,
    agent: str,
    reason: str = typer.Option(..., "--reason", "-r", help="e.g. lunch, training, after-call work"),
) -> None:
    """Pause the agent in all their queues, with a reason (stored, with its duration)."""
    _run(ctx, lambda s: s.pause(agent, reason))
    typer.echo(f"{agent} paused ({reason})")


@app.command()
def unpause(ctx: typer.Context, agent: str) -> None:
    """Take the agent off pause."""
    seconds = _run(ctx, lambda s: s.unpause(agent))
    lasted = f" after {seconds:.0f}s" if seconds is not None else ""
    typer.echo(f"{agent} unpaused{lasted}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every agent: queues (penalty), pause and reason, phone state, calls taken."""
    statuses = _run(ctx, lambda s: s.status())
    table = Table(title="agents")
    for column in ("agent", "extension", "queues (penalty)", "paused", "phone", "calls"):
        table.add_column(column)
    for st in statuses:
        queues = ", ".join(f"{q} ({p})" for q, p in sorted(st.queues.items())) or "-"
        paused = f"yes: {st.reason}" if st.paused else "no"
        table.add_row(
            st.agent.id, st.agent.extension, queues, paused, st.state, str(st.calls_taken)
        )
    Console(width=120).print(table)


@app.command()
def password(ctx: typer.Context, agent: str) -> None:
    """The SIP password of the agent's phone (user name: the extension)."""
    st = state(ctx)
    found = st.centre().agent(agent)
    if found is None:
        typer.secho(f"error: no agent {agent!r}", err=True)
        raise typer.Exit(2)
    typer.echo(agent_password(st.settings().ami_secret, found.extension))
