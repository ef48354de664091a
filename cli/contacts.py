"""``telephonist contacts`` and ``telephonist dnc``: contact lists and the do-not-call list."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.cli.common import errors, open_store, state
from telephonist.core.models import ContactList, ContactPhone
from telephonist.core.numbers import check_region
from telephonist.core.settings import Settings
from telephonist.dialer.contacts import ImportFileError, dnc_add, dnc_check, import_file

app = typer.Typer(help="Contact lists: import CSV/XLSX files, list them.")
dnc_app = typer.Typer(help="Do-not-call list: add, import, check (applied at dial time).")


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
def lists(ctx: typer.Context) -> None:
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

    for name, contacts, numbers in asyncio.run(go()):
        typer.echo(f"{name}: {contacts} contacts, {numbers} numbers")


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


@app.command("bench")
def bench(
    rows: Annotated[int, typer.Option(help="Rows in the generated list", min=1)] = 100_000,
) -> None:
    """Import a generated list into a scratch database: rows/s, memory, longest write lock."""
    from telephonist.bench.contacts_import import run

    result = asyncio.run(run(rows))
    for line in result.lines():
        typer.echo(line)
