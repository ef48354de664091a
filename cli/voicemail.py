"""``telephonist voicemail``: the messages callers left — list, play (on a phone), export, done."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlmodel import col

from telephonist.callbacks.voicemail import VoicemailError, mark_done, play_message
from telephonist.cli.common import ami_session, errors, open_store, state
from telephonist.core.ami import AmiError
from telephonist.core.callcontrol import AmiCallControl
from telephonist.core.files import open_export
from telephonist.core.models import VoicemailMessage
from telephonist.core.settings import Settings

app = typer.Typer(help="Voicemail messages: list, play, export, done.")


async def _get(settings: Settings, message_id: int) -> VoicemailMessage:
    store = open_store(settings)
    try:
        await store.migrate()
        async with store.sessions() as s:
            row = await s.get(VoicemailMessage, message_id)
    finally:
        await store.close()
    if row is None:
        raise VoicemailError(f"no voicemail message {message_id}")
    return row


@app.command("list")
def list_(
    ctx: typer.Context,
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Done messages too")] = False,
) -> None:
    """Messages, newest first (new ones only unless --all)."""
    settings = state(ctx).settings()

    async def go() -> list[VoicemailMessage]:
        store = open_store(settings)
        try:
            await store.migrate()
            q = select(VoicemailMessage).order_by(col(VoicemailMessage.id).desc())
            if mailbox:
                q = q.where(col(VoicemailMessage.mailbox) == mailbox)
            if not all_:
                q = q.where(col(VoicemailMessage.state) == "new")
            async with store.sessions() as s:
                return list((await s.execute(q)).scalars())
        finally:
            await store.close()

    with errors():
        rows = asyncio.run(go())
    table = Table(title=f"voicemail ({len(rows)})")
    for column in ("id", "mailbox", "from", "received", "seconds", "state", "e-mailed", "callback"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id), r.mailbox, f"{r.caller_name} {r.caller_number}".strip(),
            r.received_at.strftime("%Y-%m-%d %H:%M:%S"), str(r.duration), r.state,
            "yes" if r.emailed_at else (r.email_error or "no"), str(r.callback_id or ""),
        )  # fmt: skip
    Console(width=160).print(table)


@app.command()
def export(ctx: typer.Context, message_id: int, dest: Path) -> None:
    """Copy a message's recording (WAV) to DEST (a file or a folder)."""
    settings = state(ctx).settings()
    with errors(VoicemailError, OSError):
        row = asyncio.run(_get(settings, message_id))
        source = Path(row.file)
        if not source.exists():
            raise VoicemailError(f"message {message_id}: recording {source} is gone")
        target = dest / f"voicemail-{row.id}.wav" if dest.is_dir() else dest
        # Neither end through a symbolic link: not one planted where the copy goes, nor one
        # put in place of the recording in the spool (Asterisk's user owns that folder).
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as src, open_export(target, "wb") as out:
            shutil.copyfileobj(src, out)
    typer.echo(f"message {message_id} -> {target}")


@app.command()
def done(ctx: typer.Context, message_id: int) -> None:
    """Mark a message as dealt with (it stays stored)."""
    settings = state(ctx).settings()

    async def go() -> None:
        store = open_store(settings)
        try:
            await mark_done(store, message_id)
        finally:
            await store.close()

    with errors(VoicemailError):
        asyncio.run(go())
    typer.echo(f"message {message_id} done")


@app.command()
def play(
    ctx: typer.Context,
    message_id: int,
    on: Annotated[str, typer.Option(help="Ring this extension and play the message")],
) -> None:
    """Play a message on a phone: the extension rings, and plays it when answered."""
    st = state(ctx)
    settings = st.settings()
    centre = st.centre()
    extensions = {e.number for e in centre.extensions} | {a.extension for a in centre.agents}
    if on not in extensions:
        with errors(VoicemailError):
            raise VoicemailError(f"--on: no extension {on!r} ({', '.join(sorted(extensions))})")

    rootfs = None
    if settings.pbx.mode == "sandbox":
        rootfs = settings.pbx.cache_dir / f"rootfs-{settings.pbx.debian_suite}"

    async def go() -> None:
        row = await _get(settings, message_id)
        async with ami_session(settings) as ami:
            await play_message(AmiCallControl(ami), row, on, rootfs)

    with errors(VoicemailError, AmiError):
        asyncio.run(go())
    typer.echo(f"message {message_id}: ringing {on}")
