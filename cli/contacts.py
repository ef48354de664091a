"""``telephonist contacts`` and ``telephonist dnc``: contact lists and the do-not-call list."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.cli.common import errors, open_store, state, with_store
from telephonist.core.centre import Centre
from telephonist.core.models import ContactList, ContactPhone
from telephonist.core.numbers import check_region
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from telephonist.dialer.contacts import (
    ImportFileError,
    ListInUse,
    delete_list,
    dnc_add,
    dnc_check,
    dnc_list,
    dnc_remove,
    import_file,
    show_list,
)

app = typer.Typer(help="Contact lists: import CSV/XLSX files, list, show and delete them.")
dnc_app = typer.Typer(
    help="Do-not-call list: add, import, check, list, remove (applied at dial time)."
)


def _mapping(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        if not sep or key.strip() not in ("phone", "name", "timezone", "tags"):
            raise ImportFileError(
                f"--map: {part!r} is not FIELD=COLUMN with FIELD phone, name, timezone or tags"
            )
        out[key.strip()] = column.strip()
    return out


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path,
    list_name: Annotated[str, typer.Option("--list", help="The list to import into")],
    map_: Annotated[
        str | None,
        typer.Option("--map", help="FIELD=COLUMN,... (phone=Tel+Mobile,name=First+Last)"),
    ] = None,
    region: Annotated[str | None, typer.Option(help="Country of numbers without +CC")] = None,
    rejects: Annotated[Path | None, typer.Option(help="Where bad rows go")] = None,
) -> None:
    """Import a CSV or XLSX file: good rows in, bad rows to a rejects file with the reason."""
    settings = state(ctx).settings()
    region = _region(region, settings)

    async def go() -> None:
        store = open_store(settings)
        try:
            await store.migrate()
            with Progress(transient=True) as bar:
                task = bar.add_task(f"importing {file.name}", total=None)
                report = await import_file(
                    store, file, list_name, region=region,
                    mapping=_mapping(map_), rejects=rejects,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )  # fmt: skip
        finally:
            await store.close()
        typer.echo(
            f"{report.list_name}: {report.imported} contacts imported, {report.merged} merged "
            f"into existing ones, {report.rejected} rejected"
            + (f" (see {report.rejects_file})" if report.rejects_file else "")
        )

    with errors(ImportFileError):
        asyncio.run(go())


@app.command("lists")
def lists(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """The contact lists with how many contacts and numbers each has."""
    settings = state(ctx).settings()

    async def go() -> list[tuple[str, int, int]]:
        store = open_store(settings)
        try:
            await store.migrate()
            async with store.sessions() as s:
                rows = await s.execute(
                    select(
                        col(ContactList.name),
                        func.count(func.distinct(col(ContactPhone.contact_id))),
                        func.count(col(ContactPhone.id)),
                    )
                    .join(
                        ContactPhone, col(ContactPhone.list_id) == col(ContactList.id), isouter=True
                    )
                    .group_by(col(ContactList.name))
                )
                return [(n, int(c), int(p)) for n, c, p in rows.all()]
        finally:
            await store.close()

    found = asyncio.run(go())
    if json_:
        typer.echo(json.dumps([{"list": n, "contacts": c, "numbers": p} for n, c, p in found],
                              indent=1))  # fmt: skip
        return
    for name, contacts, numbers in found:
        typer.echo(f"{name}: {contacts} contacts, {numbers} numbers")


Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
Limit = Annotated[int, typer.Option(min=1, max=10000, help="At most this many rows")]
Offset = Annotated[int, typer.Option(min=0, help="Skip this many rows first")]


@app.command("show")
def show(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Argument(help="The contact list")],
    limit: Limit = 100,
    offset: Offset = 0,
    json_: Json = False,
) -> None:
    """A contact list's contacts (a page at a time) with their numbers in calling order."""

    async def go(store: Store, centre: Centre) -> tuple[int, list[dict[str, Any]]]:
        return await show_list(store, list_name, limit=limit, offset=offset)

    total, rows = with_store(ctx, go, ImportFileError)
    if json_:
        typer.echo(json.dumps({"list": list_name, "contacts": total, "rows": rows}, indent=1))
        return
    typer.echo(f"{list_name}: {total} contacts (showing {offset + 1}-{offset + len(rows)})")
    for r in rows:
        typer.echo(f"  {r['id']}: {r['name']} {' '.join(r['numbers'])} {r['timezone']} "
                   f"{','.join(r['tags'])}")  # fmt: skip


@app.command("delete")
def delete_(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Argument(help="The contact list")],
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it")] = False,
) -> None:
    """Delete a contact list and its contacts (refused while a campaign that is not stopped
    calls from it). Asks for --yes."""
    if not yes:
        typer.secho(f"error: deleting {list_name!r} and its contacts needs --yes", err=True,
                    fg=typer.colors.RED)  # fmt: skip
        raise typer.Exit(2)
    by = f"admin {getpass.getuser()}"
    n = with_store(ctx, lambda store, centre: delete_list(store, list_name, by),
                   ImportFileError, ListInUse)  # fmt: skip
    typer.echo(f"contact list {list_name} deleted ({n} contacts)")


REGION_HELP = "Country of numbers written without +CC (default: dialer.region)"


def _region(region: str | None, settings: Settings) -> str:
    """``--region`` checked before anything is read or stored (exit 2 naming it)."""
    if region is None:
        return settings.dialer.region
    try:
        return check_region(region, "--region")
    except ValueError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


@dnc_app.command("add")
def dnc_add_(
    ctx: typer.Context,
    numbers: list[str],
    note: Annotated[str, typer.Option(help="Why (kept with the entry)")] = "added by admin",
    region: Annotated[str | None, typer.Option(help=REGION_HELP)] = None,
) -> None:
    """Add numbers to the do-not-call list."""
    settings = state(ctx).settings()
    added, bad = asyncio.run(_dnc_add(settings, numbers, note, _region(region, settings)))
    for e in bad:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
    typer.echo(f"{added} added to the do-not-call list")
    if bad:
        raise typer.Exit(2)


async def _dnc_add(
    settings: Settings, numbers: Iterable[str], source: str, region: str
) -> tuple[int, list[str]]:
    store = open_store(settings)
    try:
        await store.migrate()
        return await dnc_add(store, numbers, region, source)
    finally:
        await store.close()


@dnc_app.command("import")
def dnc_import(
    ctx: typer.Context,
    file: Path,
    region: Annotated[str | None, typer.Option(help=REGION_HELP)] = None,
) -> None:
    """Import a file of numbers (one per line, or the first column of a CSV)."""
    settings = state(ctx).settings()
    region = _region(region, settings)
    with errors(ImportFileError):
        try:
            fh = file.open(errors="replace")
        except OSError as exc:
            raise ImportFileError(f"{file}: cannot be read ({exc.strerror})") from None
        with fh:  # read line by line: a list of millions of numbers stays out of memory
            numbers = (line.split(",")[0].split(";")[0].strip() for line in fh)
            wanted = (n for n in numbers if n and any(ch.isdigit() for ch in n))
            added, bad = asyncio.run(_dnc_add(settings, wanted, f"import {file.name}", region))
    for e in bad:
        typer.secho(f"{file}: rejected: {e}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"{added} added to the do-not-call list, {len(bad)} rejected")


@dnc_app.command("check")
def dnc_check_(
    ctx: typer.Context,
    number: str,
    region: Annotated[str | None, typer.Option(help=REGION_HELP)] = None,
) -> None:
    """Whether a number is on the list (exit 0: listed, 1: not listed)."""
    settings = state(ctx).settings()
    region = _region(region, settings)

    async def go() -> bool:
        store = open_store(settings)
        try:
            await store.migrate()
            entry = await dnc_check(store, number, region)
            return entry is not None
        finally:
            await store.close()

    with errors(ValueError):
        listed = asyncio.run(go())
    typer.echo(f"{number}: {'on the do-not-call list' if listed else 'not listed'}")
    raise typer.Exit(0 if listed else 1)


@dnc_app.command("list")
def dnc_list_(
    ctx: typer.Context,
    contains: Annotated[str, typer.Option(help="Only numbers containing these digits")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
    json_: Json = False,
) -> None:
    """The do-not-call list, by number (a page at a time)."""
    total, rows = with_store(
        ctx, lambda store, centre: dnc_list(store, limit=limit, offset=offset, contains=contains)
    )
    if json_:
        typer.echo(json.dumps({"total": total, "rows": rows}, indent=1))
        return
    typer.echo(
        f"{total} numbers on the do-not-call list" + (f" containing {contains}" if contains else "")
    )
    for r in rows:
        typer.echo(f"  {r['number']}  {r['added_at'][:19]}  {r['source']}")


@dnc_app.command("remove")
def dnc_remove_(
    ctx: typer.Context,
    numbers: list[str],
    region: Annotated[str | None, typer.Option(help=REGION_HELP)] = None,
) -> None:
    """Take numbers off the do-not-call list (announced with your user name: they may be
    called again)."""
    settings = state(ctx).settings()
    region_ = _region(region, settings)
    by = f"admin {getpass.getuser()}"
    removed, absent, bad = with_store(
        ctx, lambda store, centre: dnc_remove(store, numbers, region_, by)
    )
    for e in bad:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
    for n in absent:
        typer.echo(f"{n}: not on the list")
    typer.echo(f"{len(removed)} removed from the do-not-call list")
    if bad:
        raise typer.Exit(2)


@app.command("bench")
def bench(
    rows: Annotated[int, typer.Option(help="Rows in the generated list", min=1)] = 100_000,
) -> None:
    """Import a generated list into a scratch database: rows/s, memory, longest write lock."""
    from telephonist.bench.contacts_import import run

    result = asyncio.run(run(rows))
    for line in result.lines():
        typer.echo(line)
