"""``telephonist dialer``: pacing in the seeded simulator (``simulate``, ``bench``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from telephonist.bench.dialer import bench as run_bench
from telephonist.bench.dialer import parse_seeds, render, run_days, table
from telephonist.cli.common import errors
from telephonist.dialer.pacing import POLICIES
from telephonist.dialer.sim import SCENARIOS

app = typer.Typer(help="Predictive dialer: pacing simulator and benchmark.")


class DialerError(ValueError):
    pass


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help=f"One of {', '.join(SCENARIOS)}")] = "S2",
    policy: Annotated[str, typer.Option(help=f"One of {', '.join(POLICIES)}")] = "predictive",
    seeds: Annotated[str, typer.Option(help="Seed-days, e.g. 0-9 or 0,3,5")] = "0",
    json_: Annotated[bool, typer.Option("--json", help="Per seed-day figures as JSON")] = False,
    hours: Annotated[float | None, typer.Option(help="Shorter days (default: 8 h)")] = None,
) -> None:
    """One policy on one scenario over seed-days: the same seed gives the same day."""
    with errors(DialerError, ValueError):
        if scenario not in SCENARIOS:
            raise DialerError(f"--scenario: {scenario!r} is not one of {', '.join(SCENARIOS)}")
        if policy not in POLICIES:
            raise DialerError(f"--policy: {policy!r} is not one of {', '.join(POLICIES)}")
        if hours is not None and not 0 < hours <= 24:
            raise DialerError(f"--hours: {hours} is not in (0, 24]")
        days = run_days([(scenario, policy, s, hours) for s in parse_seeds(seeds)])
    if json_:
        typer.echo(json.dumps(days, indent=1))
        return
    for d in days:
        typer.echo(
            f"{d['scenario']} {d['policy']} seed {d['seed']}: occupancy {d['occupancy']:.4f}, "
            f"abandoned {d['abandon_rate']:.2%}, "
            f"dials {d['dials']}, connects {d['connects']}, log {d['log_digest']}"
        )
    typer.echo(render(table(days)))


@app.command()
def bench(
    seeds: Annotated[
        str,
        typer.Option(
            help="Seed-days for every scenario and policy (30 at least: a day "
            "in 20 over the cap must show)"
        ),
    ] = "0-29",
) -> None:
    """Every scenario and policy: occupancy, abandon rate (worst day, days over 3%), the gain
    captured G, throughput per agent-hour, agent wait, decision latency."""
    with errors(ValueError):
        run_bench(parse_seeds(seeds), out=typer.echo)
