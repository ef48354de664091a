"""``telephonist campaign`` and ``telephonist disposition``: outbound campaigns."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telephonist.cli.common import ami_session, state, with_store
from telephonist.core.ami import AmiError
from telephonist.core.centre import Centre
from telephonist.core.models import (
    AgentLogin,
    Campaign,
    CampaignLead,
    Contact,
    ContactList,
    DialAttempt,
    QueueLogEntry,
    as_utc,
)
from telephonist.core.numbers import Dialing, Numbering
from telephonist.core.storage import Store
from telephonist.dialer import pacing, rules
from telephonist.dialer.dispositions import DispositionError, set_disposition
from telephonist.dialer.engine import due_leads, load_leads, place_preview
from telephonist.dialer.rules import RuleError

app = typer.Typer(help="Outbound campaigns: create, start, pause, stop, stats.")
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
    caller_id: Annotated[str, typer.Option(help="The number called people see")] = "",
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
    message: Annotated[str, typer.Option(help="Recorded message for an abandoned call")] = "",
) -> None:
    """Create a campaign (paused: `campaign start` begins dialling)."""

    async def go(store: Store, centre: Centre) -> Campaign:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}", name):
            raise RuleError(f"NAME: {name!r} is not a name (letters, digits, _ . -)")
        if mode not in ("preview", "progressive", "predictive"):
            raise RuleError(f"--mode: {mode!r} is not preview, progressive or predictive")
        if queue not in centre.queue_names:
            raise RuleError(
                f"--queue: no queue {queue!r} ({', '.join(sorted(centre.queue_names))})"
            )
        if trunk not in {t.name for t in centre.trunks}:
            raise RuleError(f"--trunk: no trunk {trunk!r}")
        if caller_id and not re.fullmatch(r"\+?[0-9]{3,20}", caller_id):
            raise RuleError(f"--caller-id: {caller_id!r} is not a phone number")
        start, sep, end = window.partition("-")
        if not sep:
            raise RuleError(f"--window: {window!r} is not HH:MM-HH:MM")
        rules.parse_hhmm(start, "--window"), rules.parse_hhmm(end, "--window")
        rules.parse_days(days)
        rules.zone(timezone)
        delays = rules.retry_delays(retry)
        if jurisdiction not in rules.JURISDICTIONS:
            raise RuleError(f"--jurisdiction: {jurisdiction!r} is not US or UK")
        cap = rules.JURISDICTIONS[jurisdiction].cap
        if amd:
            try:
                pacing.Predictive(cap=cap, amd_false_positive=amd_false_positive)
            except ValueError as exc:
                raise RuleError(f"--amd-false-positive: {exc}") from None
        if message and not re.fullmatch(r"[a-z0-9][a-z0-9_/-]{0,79}", message):
            raise RuleError(f"--message: {message!r} is not a sound name")
        async with store.unit_of_work() as uow:
            if (
                await uow.session.execute(
                    select(ContactList).where(col(ContactList.name) == list_name)
                )
            ).scalar_one_or_none() is None:
                raise RuleError(f"--list: no contact list {list_name!r} (contacts import first)")
            if (
                await uow.session.execute(select(Campaign).where(col(Campaign.name) == name))
            ).scalar_one_or_none() is not None:
                raise RuleError(f"NAME: a campaign {name!r} exists already")
            c = Campaign(
                name=name, list_name=list_name, queue=queue, mode=mode, trunk=trunk,
                caller_id=caller_id.lstrip("+"), window_start=start, window_end=end, days=days,
                default_timezone=timezone, max_attempts=max_attempts, retry=json.dumps(delays),
                jurisdiction=jurisdiction, abandon_cap=cap, ring_seconds=ring_seconds, amd=amd,
                amd_false_positive=amd_false_positive if amd else 0.0, message=message,
            )  # fmt: skip
            uow.session.add(c)
            await uow.session.flush()
            uow.emit("dialer", "campaign", {"campaign": name, "state": c.state})
            return c

    c = _run(ctx, go)
    typer.echo(f"campaign {c.name} created ({c.mode}, queue {c.queue}); start it to dial")


def _set_state(ctx: typer.Context, name: str, new: str) -> tuple[Campaign, int]:
    async def go(store: Store, centre: Centre) -> tuple[Campaign, int]:
        async with store.unit_of_work() as uow:
            c = await _campaign(uow.session, name)
            if c.state == "stopped" and new == "running":
                raise RuleError(f"campaign {name} is stopped for good; create a new one")
            added = await load_leads(uow, c) if new == "running" else 0
            c.state = new
            uow.emit("dialer", "campaign", {"campaign": name, "state": new, "leads_added": added})
            return c, added

    return _run(ctx, go)


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


async def _campaign(s: AsyncSession, name: str) -> Campaign:
    c = (await s.execute(select(Campaign).where(col(Campaign.name) == name))).scalar_one_or_none()
    if c is None:
        raise RuleError(f"no campaign {name!r}")
    return c


async def campaign_stats(store: Store, name: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    async with store.sessions() as s:
        c = await _campaign(s, name)
        period = rules.JURISDICTIONS[c.jurisdiction].period
        attempts = list(
            (
                await s.execute(select(DialAttempt).where(col(DialAttempt.campaign_id) == c.id))
            ).scalars()
        )
        leads = list(
            (
                await s.execute(select(CampaignLead).where(col(CampaignLead.campaign_id) == c.id))
            ).scalars()
        )
        completes = list(
            (
                await s.execute(
                    select(QueueLogEntry)
                    .where(col(QueueLogEntry.callid).like("dial-%"))
                    .where(col(QueueLogEntry.event).in_(("COMPLETECALLER", "COMPLETEAGENT")))
                    .where(col(QueueLogEntry.queue) == c.queue)
                )
            ).scalars()
        )
        logins = list((await s.execute(select(AgentLogin))).scalars())
    mine = {f"dial-{a.id}" for a in attempts}
    talk = sum(int(e.data2) for e in completes if e.callid in mine and e.data2.isdigit())
    first = min((as_utc(x.started_at) for x in attempts), default=now)
    logged = 0.0
    for login in logins:
        if c.queue not in login.queues.split(","):
            continue
        since = max(as_utc(login.logged_in_at), first)
        until = min(as_utc(login.logged_out_at) if login.logged_out_at else now, now)
        logged += max(0.0, (until - since).total_seconds())
    recent = [a for a in attempts if as_utc(a.started_at) >= now - period]
    live = sum(a.outcome in ("answered", "abandoned") for a in recent)
    abandoned = sum(a.outcome == "abandoned" for a in recent)
    machines = sum(a.outcome == "machine" for a in recent)
    rate, fp_estimate = rules.abandon_rate(abandoned, live, machines, c.amd_false_positive)
    by_outcome: dict[str, int] = {}
    for a in attempts:
        by_outcome[a.outcome or "in progress"] = by_outcome.get(a.outcome or "in progress", 0) + 1
    by_lead: dict[str, int] = {}
    for lead in leads:
        by_lead[lead.state] = by_lead.get(lead.state, 0) + 1
    return {
        "campaign": c.name,
        "state": c.state,
        "mode": c.mode,
        "dials": len(attempts),
        "connects": by_outcome.get("answered", 0),
        "abandoned": by_outcome.get("abandoned", 0),
        "abandon_rate": round(rate, 4),
        "abandon_period": f"{c.jurisdiction}: {period}",
        "amd_false_positives_estimated": round(fp_estimate, 2),
        "talk_seconds": talk,
        "agent_seconds": round(logged, 1),
        "occupancy": round(talk / logged, 4) if logged else 0.0,
        "outcomes": by_outcome,
        "leads": by_lead,
    }


@app.command()
def stats(
    ctx: typer.Context,
    name: str,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dials, connects, abandons (rate over the jurisdiction's period), occupancy, leads."""
    result = _run(ctx, lambda store, centre: campaign_stats(store, name))
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
        str | None, typer.Option(help="With --call: the agent whose phone rings first")
    ] = None,
    call: Annotated[bool, typer.Option("--call", help="Place the call (preview mode)")] = False,
) -> None:
    """Preview mode: the next lead due (in its window, not on the DNC list) with its
    details; with --call --agent ID, ring the agent's phone, then dial the lead."""
    st = state(ctx)
    settings = st.settings()

    async def go(store: Store, centre: Centre) -> str:
        async with store.sessions() as s:
            c = await _campaign(s, name)
        if call and c.mode != "preview":
            raise RuleError(f"campaign {name} is {c.mode}: the dialer places its calls")
        if call and (agent is None or centre.agent(agent) is None):
            raise RuleError(f"--agent: no agent {agent!r}")
        leads = await due_leads(store, c, datetime.now(UTC), 1)
        if not leads:
            return "no lead due now"
        lead_id, number = leads[0]
        async with store.sessions() as s:
            lead = await s.get(CampaignLead, lead_id)
            assert lead is not None
            contact = await s.get(Contact, lead.contact_id)
        assert contact is not None
        text = (
            f"lead {lead_id}: {contact.name} {number} (try {lead.attempts + 1}, "
            f"{contact.timezone or c.default_timezone}) {contact.fields}"
        )
        if not call:
            return text
        a = centre.agent(agent or "")
        assert a is not None
        try:
            async with ami_session(settings) as ami:
                dialing = Dialing(Numbering(settings.dialer.region), centre.trunks)
                attempt_id = await place_preview(
                    store, ami, c, lead_id, number, a.id, a.extension, dialing=dialing
                )
        except AmiError as exc:
            raise RuleError(f"the call was not placed: {exc}") from None
        return f"{text}\nattempt {attempt_id}: ringing {a.id} ({a.extension}), then {number}"

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
