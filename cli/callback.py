"""``telephonist callback``: the callback tasks — list, add (scheduled), cancel, retry.

These commands work on the database; ``serve`` places due tasks within a second. No task is
ever deleted: a cancelled one stays with its reason.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlmodel import col

from telephonist.callbacks import tasks
from telephonist.callbacks.policy import NumberPolicy
from telephonist.callbacks.tasks import CallbackError
from telephonist.cli.common import state, with_store
from telephonist.core.centre import Centre
from telephonist.core.models import CallbackAttempt, CallbackRequest
from telephonist.core.numbers import Numbering
from telephonist.core.storage import Store

log = logging.getLogger("telephonist.callbacks")
app = typer.Typer(help="Callback tasks: list, add, cancel, retry.")
T = TypeVar("T")
STATES = ("pending", "queued", "connected", "done", "failed", "cancelled")


def _run(ctx: typer.Context, action: Callable[[Store, Centre], Awaitable[T]]) -> T:
    return with_store(ctx, action, CallbackError)


@app.command("list")
def list_(
    ctx: typer.Context,
    state_: Annotated[
        str | None, typer.Option("--state", help=f"One of {', '.join(STATES)}, or 'open'")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue")] = None,
    number: Annotated[str | None, typer.Option(help="Only this number")] = None,
    attempts: Annotated[bool, typer.Option("--attempts", help="Show every attempt")] = False,
) -> None:
    """The callback tasks, newest first."""

    async def go(
        store: Store, centre: Centre
    ) -> tuple[list[CallbackRequest], list[CallbackAttempt]]:
        if state_ is not None and state_ not in (*STATES, "open"):
            raise CallbackError(f"--state: {state_!r} is not one of {', '.join(STATES)}, open")
        q = select(CallbackRequest).order_by(col(CallbackRequest.id).desc())
        if state_ == "open":
            q = q.where(col(CallbackRequest.state).in_(tasks.OPEN))
        elif state_:
            q = q.where(col(CallbackRequest.state) == state_)
        if queue:
            q = q.where(col(CallbackRequest.queue) == queue)
        if number:
            region = state(ctx).settings().dialer.region
            key = tasks.identity(Numbering(region), number, "--number")
            q = q.where(col(CallbackRequest.number) == key)
        async with store.sessions() as s:
            rows = list((await s.execute(q)).scalars())
            tries: list[CallbackAttempt] = []
            if attempts and rows:
                tries = list(
                    (
                        await s.execute(
                            select(CallbackAttempt)
                            .where(col(CallbackAttempt.callback_id).in_([r.id for r in rows]))
                            .order_by(
                                col(CallbackAttempt.callback_id), col(CallbackAttempt.attempt)
                            )
                        )
                    ).scalars()
                )
        return rows, tries

    rows, tries = _run(ctx, go)
    table = Table(title=f"callbacks ({len(rows)})")
    for column in ("id", "number", "queue", "source", "state", "due", "agent", "tries", "last",
                   "merged", "requested"):  # fmt: skip
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id), r.number, r.queue, r.source, r.state, _when(r.due_at), r.agent,
            str(r.attempts), r.outcome, str(r.merged), _when(r.requested_at),
        )  # fmt: skip
    Console(width=160).print(table)
    if attempts:
        detail = Table(title="attempts")
        for column in ("callback", "try", "started", "agent", "outcome", "dial", "talk s"):
            detail.add_column(column)
        for a in tries:
            detail.add_row(
                str(a.callback_id), str(a.attempt), _when(a.started_at), a.agent, a.outcome,
                a.dial_status, str(a.talk_seconds),
            )  # fmt: skip
        Console(width=160).print(detail)


@app.command()
def add(
    ctx: typer.Context,
    number: str,
    queue: Annotated[
        str | None, typer.Option(help="Queue whose agents call (default: callbacks.queue)")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="'YYYY-MM-DD HH:MM' in --tz (default: now)")
    ] = None,
    tz: Annotated[str, typer.Option(help="The customer's time zone, e.g. Europe/Paris")] = "UTC",
    agent: Annotated[
        str | None, typer.Option(help="For this agent (anyone after promote_after)")
    ] = None,
    note: Annotated[str, typer.Option(help="What the call is about")] = "",
    allow_any_number: Annotated[
        bool,
        typer.Option(
            "--allow-any-number",
            help="Dial it even if the centre's number policy refuses it (not an emergency "
            "number); logged, and kept in the task's event",
        ),
    ] = False,
) -> None:
    """Schedule a callback (for anyone, or for a named agent). The number must pass the
    centre's number policy (callbacks.numbers); a number that already has an open task gets
    that one, unless this one is scheduled (--at) or for a named agent."""
    region = state(ctx).settings().dialer.region
    override = f"admin {getpass.getuser()} (--allow-any-number)" if allow_any_number else ""

    async def go(store: Store, centre: Centre) -> tuple[CallbackRequest, bool]:
        tasks.identity(Numbering(region), number, "NUMBER")
        target = queue or centre.callbacks.queue
        if target is None:
            raise CallbackError("--queue: needed (the centre sets no callbacks.queue)")
        if target not in centre.queue_names:
            raise CallbackError(
                f"--queue: no queue {target!r} ({', '.join(sorted(centre.queue_names))})"
            )
        if agent is not None and centre.agent(agent) is None:
            raise CallbackError(f"--agent: no agent {agent!r}")
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise CallbackError(f"--tz: unknown time zone {tz!r}") from None
        due = None
        if at is not None:
            try:
                local = datetime.strptime(at, "%Y-%m-%d %H:%M")
            except ValueError:
                raise CallbackError(f"--at: {at!r} is not 'YYYY-MM-DD HH:MM'") from None
            due = local.replace(tzinfo=zone).astimezone(UTC)
            if due < datetime.now(UTC) - timedelta(minutes=1):
                raise CallbackError(f"--at: {at} {tz} is in the past")
        if len(note) > 200 or not note.isprintable():
            raise CallbackError("--note: at most 200 printable characters")
        policy = NumberPolicy(centre.callbacks.numbers, region)
        async with store.unit_of_work() as uow:
            try:
                return await tasks.create(
                    uow,
                    CallbackRequest(
                        number=number, queue=target, source="manual", due_at=due, timezone=tz,
                        agent=agent or "", note=note,
                    ),
                    policy=policy, merge=due is None and agent is None, override=override,
                )  # fmt: skip
            except tasks.NumberRefused as exc:
                hint = "" if exc.verdict.reason == "emergency" else " (--allow-any-number)"
                raise CallbackError(f"NUMBER: {number!r} is {exc.verdict.why}: refused by the "
                                    f"centre's number policy{hint}") from None  # fmt: skip

    cb, created = _run(ctx, go)
    if override:
        log.warning("callback %s to %s: number policy overridden by %s", cb.id, cb.number,
                    override)  # fmt: skip
    if not created:
        typer.echo(f"callback {cb.id}: {cb.number} already has this open task ({cb.state}); "
                   "no second one")  # fmt: skip
        return
    when = f"at {_when(cb.due_at)} UTC" if cb.due_at else "now"
    typer.echo(f"callback {cb.id}: {cb.number} by {cb.agent or 'anyone in ' + cb.queue}, {when}")


@app.command()
def cancel(
    ctx: typer.Context,
    callback_id: int,
    reason: Annotated[str, typer.Option(help="Why (kept with the task)")] = "cancelled by admin",
) -> None:
    """Cancel a task that has not been done yet (a placeholder waiting in a queue leaves
    it at once; a call in progress is not cut)."""

    async def go(store: Store, centre: Centre) -> CallbackRequest:
        async with store.unit_of_work() as uow:
            return await tasks.cancel(uow, callback_id, reason)

    cb = _run(ctx, go)
    typer.echo(f"callback {cb.id} cancelled")


@app.command()
def retry(ctx: typer.Context, callback_id: int) -> None:
    """Try a failed or cancelled task again now, with a fresh set of attempts."""

    async def go(store: Store, centre: Centre) -> CallbackRequest:
        async with store.unit_of_work() as uow:
            return await tasks.retry(uow, callback_id, by="admin")

    cb = _run(ctx, go)
    typer.echo(f"callback {cb.id} will be tried again now")


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""
