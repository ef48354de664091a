"""``telephonist campaign`` and ``telephonist disposition``: outbound campaigns."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, TypeVar

import typer

from telephonist.cli.common import ami_session, errors, state, with_store
from telephonist.core.ami import AmiError
from telephonist.core.centre import Centre
from telephonist.core.models import Campaign
from telephonist.core.numbers import Dialing, Numbering
from telephonist.core.speech import SpeechError, custom_sounds, synthesize
from telephonist.core.storage import Store
from telephonist.dialer import campaigns
from telephonist.dialer.dispositions import DispositionError, set_disposition
from telephonist.dialer.engine import place_preview
from telephonist.dialer.rules import RuleError

app = typer.Typer(help="Outbound campaigns: create, list, start, pause, stop, stats, next.")
disposition_app = typer.Typer(help="Dispositions agents set on the calls they took.")
T = TypeVar("T")


def _run(ctx: typer.Context, action: Callable[[Store, Centre], Awaitable[T]]) -> T:
    return with_store(ctx, action, RuleError, DispositionError, ValueError)


@app.command()
def create(
    ctx: typer.Context,
    name: str,
    list_name: Annotated[str, typer.Option("--list", help="The contact list to call")],
    queue: Annotated[str, typer.Option(help="The queue whose agents take the calls")],
    trunk: Annotated[str, typer.Option(help="The outside line calls go out through")],
    mode: Annotated[str, typer.Option(help="preview, progressive or predictive")] = "predictive",
    caller_id: Annotated[
        str, typer.Option(help="The number called people see (default: dialer.caller_id)")
    ] = "",
    window: Annotated[
        str, typer.Option(help="Calling hours, contact's local time")
    ] = "09:00-20:00",
    days: Annotated[str, typer.Option(help="Calling days, e.g. mon-fri")] = "mon-fri",
    timezone: Annotated[str, typer.Option(help="For contacts whose zone is unknown")] = "UTC",
    max_attempts: Annotated[int, typer.Option(min=1, max=50)] = 3,
    retry: Annotated[str, typer.Option(help="busy=600,no_answer=3600,machine=7200,...")] = "",
    jurisdiction: Annotated[str, typer.Option(help="US (3%/30 days) or UK (3%/24 h)")] = "US",
    ring_seconds: Annotated[int, typer.Option(min=15, max=60, help="At least 15")] = 20,
    amd: Annotated[bool, typer.Option(help="Answering-machine detection")] = False,
    amd_false_positive: Annotated[
        float, typer.Option(help="Live people AMD calls machines")
    ] = 0.01,
    message: Annotated[
        str, typer.Option(help="Recorded message for an abandoned call (a sound name)")
    ] = "",
    message_text: Annotated[
        str,
        typer.Option(
            help="Or: the company's name; telephonist speaks the message with the "
            "caller ID to call back"
        ),
    ] = "",
) -> None:
    """Create a campaign (paused: `campaign start` begins dialling). It needs a message for
    the calls no agent can take within 2 s: --message (a recording) or --message-text."""

    settings = state(ctx).settings()
    spec = campaigns.CampaignSpec(
        name=name, list_name=list_name, queue=queue, trunk=trunk, mode=mode,
        caller_id=caller_id or settings.dialer.caller_id, region=settings.dialer.region,
        window=window, days=days, timezone=timezone,
        max_attempts=max_attempts, retry=retry, jurisdiction=jurisdiction,
        ring_seconds=ring_seconds, amd=amd, amd_false_positive=amd_false_positive,
        message=message, message_text=message_text,
    )  # fmt: skip
    if message_text and not message:
        spec = _spoken(ctx, spec)
    c = _run(ctx, lambda store, centre: campaigns.create(store, centre, spec))
    typer.echo(f"campaign {c.name} created ({c.mode}, queue {c.queue}); start it to dial")


def _spoken(ctx: typer.Context, spec: campaigns.CampaignSpec) -> campaigns.CampaignSpec:
    """The spec with its message spoken into a sound Asterisk plays (checked first: nothing
    is written for a campaign that would be refused)."""
    st = state(ctx)
    with errors(RuleError, SpeechError):
        checked = spec.checked(st.centre())
        words = campaigns.abandon_message(spec.message_text, checked.caller_id)
        sound = campaigns.message_sound(spec.name, words)
        folder = custom_sounds(st.settings())
        if folder is None:
            raise RuleError("--message-text: set pbx.sounds_dir so that the message is written "
                            "where Asterisk plays it (or record one: --message)")  # fmt: skip
        synthesize(words, folder / f"{sound.removeprefix('custom/')}.wav")
    return replace(spec, message=sound, message_text=words)


def _set_state(ctx: typer.Context, name: str, new: str) -> tuple[Campaign, int]:
    return _run(ctx, lambda store, centre: campaigns.set_state(store, name, new))


@app.command()
def start(ctx: typer.Context, name: str) -> None:
    """Start (or resume) dialling; contacts added to the list since are taken in."""
    c, added = _set_state(ctx, name, "running")
    typer.echo(f"campaign {c.name} running ({added} new leads)")


@app.command()
def pause(ctx: typer.Context, name: str) -> None:
    """Stop placing new calls (calls in progress finish)."""
    c, _ = _set_state(ctx, name, "paused")
    typer.echo(f"campaign {c.name} paused")


@app.command()
def stop(ctx: typer.Context, name: str) -> None:
    """End the campaign for good."""
    c, _ = _set_state(ctx, name, "stopped")
    typer.echo(f"campaign {c.name} stopped")


@app.command("list")
def list_(
    ctx: typer.Context, json_: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """Every campaign: state, mode, list, queue, calling hours, leads by state."""
    rows = _run(ctx, lambda store, centre: campaigns.listing(store))
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("no campaign")
    for r in rows:
        leads = ", ".join(f"{k} {v}" for k, v in sorted(r["leads"].items())) or "no leads yet"
        where = f"list {r['list']}, queue {r['queue']}"
        when = f"{r['window']} {r['days']} ({r['jurisdiction']})"
        typer.echo(f"{r['campaign']}: {r['state']}, {r['mode']}, {where}, {when}; {leads}")


@app.command()
def stats(
    ctx: typer.Context,
    name: str,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dials, connects, abandons (rate over the jurisdiction's period), occupancy, leads."""
    result = _run(ctx, lambda store, centre: campaigns.stats(store, name))
    if json_:
        typer.echo(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        typer.echo(f"{key:>14}: {value}")


@app.command("next")
def next_(
    ctx: typer.Context,
    name: str,
    agent: Annotated[
        str | None, typer.Option(help="The agent previewing: the lead is held for them")
    ] = None,
    call: Annotated[bool, typer.Option("--call", help="Call the lead the agent holds")] = False,
    skip: Annotated[
        bool, typer.Option("--skip", help="Skip the lead the agent holds (never dialled)")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why it is skipped (with --skip)")] = "",
    hold: Annotated[
        int, typer.Option(help="Seconds the lead stays the agent's before it is released")
    ] = campaigns.HOLD_SECONDS,
) -> None:
    """Preview mode. With --agent A: the next lead due (in its window, not on the DNC list),
    held for A -- logged in to the campaign's queue and not paused -- until A calls it
    (--call: A's phone rings, then the lead is dialled), skips it (--skip --reason) or the
    hold runs out. Asking again shows the lead A holds. Without --agent: a look at the next
    lead, held for nobody."""
    st = state(ctx)
    settings = st.settings()
    if (call or skip) and agent is None:
        typer.secho("error: --agent: --call and --skip need the agent", err=True, fg="red")
        raise typer.Exit(2)
    if call and skip:
        typer.secho("error: --call or --skip, not both", err=True, fg="red")
        raise typer.Exit(2)

    async def go(store: Store, centre: Centre) -> str:
        if agent is not None and skip:
            lead_id = await campaigns.skip_held(store, name, agent, reason)
            return f"lead {lead_id} skipped by {agent}: {reason.strip()}"
        async with store.sessions() as s:
            c = await campaigns.get(s, name)
        if agent is None:
            due = await campaigns.next_lead(store, c)
            if due is None:
                return "no lead due now"
            seen = f"lead {due.lead_id}: {due.name} {due.number} (try {due.tries}, {due.timezone})"
            return f"{seen} {due.fields}\n(held for nobody: --agent A holds it)"
        due = await campaigns.claim_next(store, centre, name, agent, hold=hold)
        if due is None:
            return "no lead due now"
        text = (f"lead {due.lead_id}: {due.name} {due.number} (try {due.tries}, {due.timezone}) "
                f"{due.fields}\nheld for {agent} for {hold} s")  # fmt: skip
        if not call:
            return text
        a = centre.agent(agent)
        assert a is not None
        try:
            async with ami_session(settings) as ami:
                dialing = Dialing(Numbering(settings.dialer.region), centre.trunks)
                attempt_id = await place_preview(
                    store, ami, c, due.lead_id, due.number, a.id, a.extension, dialing=dialing
                )
        except AmiError as exc:
            raise RuleError(f"the call was not placed: {exc}") from None
        return f"{text}\nattempt {attempt_id}: ringing {a.id} ({a.extension}), then {due.number}"

    typer.echo(_run(ctx, go))


@disposition_app.command("set")
def disposition_set(ctx: typer.Context, attempt_id: int, code: str) -> None:
    """Set the agent's disposition of a call (e.g. sale, callback, not-interested, dnc):
    callback dials the lead again later, dnc puts the number on the do-not-call list."""

    async def go(store: Store, centre: Centre) -> str:
        async with store.unit_of_work() as uow:  # set_disposition checks the code first
            lead = await set_disposition(uow, attempt_id, code, by="cli")
            return lead.state

    lead_state = _run(ctx, go)
    typer.echo(f"attempt {attempt_id}: {code} (lead {lead_state})")
