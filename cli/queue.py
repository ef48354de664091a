"""``telephonist queue``: the queues, who waits and who answers, and what they did today."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from telephonist.acd.report import REASONS, redirects_since, start_of_today
from telephonist.cli.common import state
from telephonist.core.centre import Centre
from telephonist.core.http_client import ApiError, api
from telephonist.core.settings import Settings
from telephonist.core.storage import Store

app = typer.Typer(help="Queues: live status and today's redirects.")


def _live(settings: Settings) -> dict[str, Any] | None:
    try:
        body = api(settings, "/acd/state", timeout=2)
    except ApiError as exc:
        typer.secho(f"serve refused the live state: {exc}", err=True)
        return None
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _redirects(settings: Settings, tz: str) -> dict[str, dict[str, int]]:
    async def _load() -> dict[str, dict[str, int]]:
        store = Store(settings.database_url)
        try:
            await store.migrate()
            return await redirects_since(store, start_of_today(tz))
        finally:
            await store.close()

    return asyncio.run(_load())


def _render(
    centre: Centre, live: dict[str, Any] | None, counts: dict[str, dict[str, int]], tz: str
) -> Group:
    queues = Table(title=f"queues (redirects today, {tz})")
    for column in ("queue", "strategy", "waiting", "longest wait", "agents", "paused", *REASONS):
        queues.add_column(column, justify="left" if column in ("queue", "strategy") else "right")
    callers = Table(title="waiting callers")
    for column in ("queue", "position", "caller", "waiting"):
        callers.add_column(column)
    agents = Table(title="agents")
    for column in ("queue", "agent", "phone", "paused", "in call", "calls"):
        agents.add_column(column)
    now = time.time()
    snapshot = (live or {}).get("queues", {})
    for q in centre.queues:
        s = snapshot.get(q.name, {"callers": [], "members": []})
        waits = [now - c["joined_at"] for c in s["callers"]]
        members = s["members"]
        c = counts.get(q.name, {})
        queues.add_row(
            q.name, q.strategy, str(len(s["callers"])) if live else "?",
            f"{max(waits):.0f}s" if waits else "-",
            str(len(members)) if live else "?", str(sum(m["paused"] for m in members)),
            *(str(c.get(r, 0)) for r in REASONS),
        )  # fmt: skip
        for caller in s["callers"]:
            callers.add_row(
                q.name,
                str(caller["position"]),
                caller["caller_number"],
                f"{now - caller['joined_at']:.0f}s",
            )
        for m in members:
            paused = f"yes: {m['reason']}" if m["paused"] else "no"
            agents.add_row(
                q.name,
                m["name"],
                m["state"],
                paused,
                "yes" if m["in_call"] else "no",
                str(m["calls_taken"]),
            )
    parts: list[Any] = [queues]
    if live is None:
        parts.append("[yellow]telephonist serve is not answering: live columns unknown[/yellow]")
    else:
        parts += [callers, agents]
    return Group(*parts)


@app.command()
def status(
    ctx: typer.Context,
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every second until Ctrl-C"),
    tz: str = typer.Option("UTC", help="Time zone whose midnight starts 'today'"),
) -> None:
    """Queues with waiting callers and agents (from a running serve) and today's redirects."""
    st = state(ctx)
    settings, centre = st.settings(), st.centre()
    console = Console(width=140)
    if not watch:
        console.print(_render(centre, _live(settings), _redirects(settings, tz), tz))
        return
    with Live(console=console, refresh_per_second=2) as live_view:
        try:
            while True:
                live_view.update(_render(centre, _live(settings), _redirects(settings, tz), tz))
                time.sleep(1)
        except KeyboardInterrupt:
            pass


@app.command()
def bench(
    agents: int = typer.Option(10, min=1, max=200),
    rate: float = typer.Option(2.0, help="Callers per second"),
    seconds: int = typer.Option(30, min=1),
    talk: float = typer.Option(4.0, help="Seconds each answered call lasts"),
) -> None:
    """ACD benchmark on the sandbox PBX: offered, answered, redirected, lost, watcher delay."""
    from telephonist.asterisk_conf.sandbox import SandboxError
    from telephonist.bench.acd import run
    from telephonist.cli.common import errors

    with errors(SandboxError, RuntimeError):
        r = asyncio.run(run(agents, rate, seconds, int(talk * 1000), out=typer.echo))
    typer.echo(
        f"offered {r['offered']}, answered {r['answered']}, "
        f"redirected {r['redirected']}, lost {r['lost']}"
    )
    typer.echo(f"most agent calls at once: {r['max_simultaneous_agent_calls']} ({agents} agents)")
    d = r["state_delay_ms"]
    typer.echo(
        f"AMI event -> watcher state: p50 {d['p50']:.2f} ms, p99 {d['p99']:.2f} ms (n={d['n']})"
    )
