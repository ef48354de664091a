"""The ``telephonist`` command. One sub-app per domain; commands call services, never
protocol clients directly."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer

from telephonist.cli import (
    agent,
    callback,
    campaign,
    contacts,
    dialer,
    ivr,
    pbx,
    queue,
    report,
    voicemail,
)
from telephonist.cli.common import CliState, errors, state
from telephonist.core.settings import mask_url
from telephonist.core.storage import Store

app = typer.Typer(help="telephonist: a contact-centre backend for Asterisk.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective settings.")
db_app = typer.Typer(help="Database schema.")
app.add_typer(config_app, name="config")
app.add_typer(pbx.app, name="pbx")
app.add_typer(db_app, name="db")
app.add_typer(ivr.app, name="ivr")
app.add_typer(queue.app, name="queue")
app.add_typer(agent.app, name="agent")
app.add_typer(callback.app, name="callback")
app.add_typer(voicemail.app, name="voicemail")
app.add_typer(dialer.app, name="dialer")
app.add_typer(contacts.app, name="contacts")
app.add_typer(contacts.dnc_app, name="dnc")
app.add_typer(campaign.app, name="campaign")
app.add_typer(campaign.disposition_app, name="disposition")
app.add_typer(report.app, name="report")


@app.callback()
def main(
    ctx: typer.Context,
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        envvar="TELEPHONIST_CONFIG",
        help="TOML settings file (default: built-in defaults and TELEPHONIST_* variables)",
    ),
) -> None:
    ctx.obj = CliState(config=config)


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the effective settings (secrets masked) as JSON."""
    typer.echo(json.dumps(state(ctx).settings().masked(), indent=2))


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the database migrations."""
    settings = state(ctx).settings()

    async def _run() -> None:
        store = Store(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(_run())
    typer.echo(f"database at {mask_url(settings.database_url)} is up to date")


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run telephonist: Stasis apps, AMI watcher, FastAGI, MQTT events, /healthz and /metrics."""
    from telephonist.serve.app import serve as run_service

    st = state(ctx)
    settings, definitions = st.settings(), st.definitions()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("aioari", "aioswagger11", "panoramisk"):  # their INFO/DEBUG is noise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with errors():
        asyncio.run(run_service(settings, definitions))


if __name__ == "__main__":
    app()
