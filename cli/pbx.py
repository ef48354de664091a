"""``telephonist pbx``: the sandbox Asterisk (our test container) and rendered config."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer

from telephonist.asterisk_conf.render import AsteriskPaths, render_all, write_config
from telephonist.asterisk_conf.sandbox import Sandbox, SandboxError
from telephonist.cli.common import errors, state
from telephonist.core.ami import AmiError, probe_fully_booted

app = typer.Typer(help="Run the sandbox Asterisk, or render the config for an existing one.")


def _sandbox(ctx: typer.Context) -> Sandbox:
    st = state(ctx)
    with errors(SandboxError):
        return Sandbox(st.settings(), st.centre())


@app.command()
def up(ctx: typer.Context) -> None:
    """Build (once), configure and start the sandbox Asterisk; return when it is FullyBooted."""
    sandbox = _sandbox(ctx)
    with errors(SandboxError):
        status = asyncio.run(sandbox.up(log=lambda m: typer.echo(m, err=True)))
    typer.echo(f"PBX {status}")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the sandbox Asterisk (by its PID)."""
    sandbox = _sandbox(ctx)
    stopped = asyncio.run(sandbox.down())
    typer.echo("PBX stopped" if stopped else "PBX was not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the PBX is running and answering AMI. Exit 1 when it is not."""
    settings = state(ctx).settings()
    if settings.pbx.mode == "external":
        pbx = settings.pbx
        try:
            booted = asyncio.run(
                probe_fully_booted(pbx.host, pbx.ami_port, pbx.ami_user, settings.ami_secret)
            )
        except (OSError, TimeoutError, AmiError) as exc:
            typer.echo(f"PBX (external {pbx.host}:{pbx.ami_port}) not reachable: {exc}")
            raise typer.Exit(1) from None
        typer.echo(
            f"PBX (external {pbx.host}:{pbx.ami_port}) FullyBooted {booted.get('Uptime', '')}"
        )
        return
    st = asyncio.run(_sandbox(ctx).status())
    typer.echo(f"PBX {st}")
    if not st.fully_booted:
        raise typer.Exit(1)


@app.command()
def logs(ctx: typer.Context, lines: int = typer.Option(50, "--lines", "-n", min=1)) -> None:
    """Print the end of the sandbox Asterisk's full log."""
    typer.echo(_sandbox(ctx).logs(lines))


@app.command()
def cli(
    ctx: typer.Context,
    command: str = typer.Argument(None, help="One CLI command; none: an interactive console"),
) -> None:
    """Run an Asterisk CLI command in the sandbox (or open its console)."""
    sandbox = _sandbox(ctx)
    if command is None:
        conf = "/" + str(
            (sandbox.host_path(sandbox.paths().etc) / "asterisk.conf").relative_to(sandbox.rootfs)
        )
        os.execvp("chroot", ["chroot", str(sandbox.rootfs), "/usr/sbin/asterisk", "-C", conf, "-r"])
    with errors(SandboxError):
        typer.echo(sandbox.cli(command), nl=False)


@app.command()
def render(
    ctx: typer.Context,
    out_dir: Path = typer.Argument(..., help="Folder to write the .conf files into"),
    etc_dir: str = typer.Option(
        "/etc/asterisk", help="Where these files will live on the Asterisk machine"
    ),
) -> None:
    """Render the Asterisk config for an existing Asterisk (standard Debian paths)."""
    st = state(ctx)
    settings, centre = st.settings(), st.centre()
    with errors():
        files = render_all(settings, centre, AsteriskPaths(etc=etc_dir))
    for path in write_config(files, out_dir):
        typer.echo(str(path))
