"""Campaigns as a service: create, change state, read the numbers, preview the next lead.

What the ``telephonist campaign`` commands do, with no CLI in it: each function checks its
input (errors name the option an admin typed), stores in one short transaction and publishes
its ``dialer/campaign`` event with it. The CLI prints; serve's dialer paces what is running.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import String, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telephonist.core.centre import Centre
from telephonist.core.models import (
    DIALER_CALL_PREFIX,
    AgentLogin,
    AgentPause,
    Campaign,
    CampaignLead,
    Contact,
    ContactList,
    ContactPhone,
    DialAttempt,
    QueueCall,
    as_utc,
)
from telephonist.core.numbers import NumberError, Numbering
from telephonist.core.sql import epoch, greatest, least
from telephonist.core.storage import Store
from telephonist.dialer import pacing, rules
from telephonist.dialer.engine import due_leads, load_leads
from telephonist.dialer.events import DIALER
from telephonist.dialer.rules import RuleError

MODES = ("preview", "progressive", "predictive")
STATES = ("paused", "running", "stopped")


def abandon_message(company: str, caller_id: str) -> str:
    """The words of a spoken abandoned-call message: who called and the number to call back
    (Ofcom: the message names the company and a number that is not premium-rate).

    >>> m = abandon_message("Example Ltd.", "12125550100")
    >>> m.startswith("Hello, this is Example Ltd. We are sorry")
    True
    >>> m.endswith("Please call us back on 2 1 2, 5 5 5, 0 1 0 0. Thank you.")
    True
    """
    national = phonenumbers.format_number(
        phonenumbers.parse("+" + caller_id.lstrip("+")), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    groups = ["".join(ch for ch in g if ch.isdigit()) for g in re.split(r"[\s-]+", national)]
    spoken = ", ".join(" ".join(g) for g in groups if g)
    return (f"Hello, this is {company.strip().rstrip('.')}. We are sorry, none of our agents is "
            f"free to take your call. Please call us back on {spoken}. Thank you.")  # fmt: skip


def message_sound(campaign: str, text: str) -> str:
    """The sound name of a spoken message (one per campaign and text: a second campaign of
    the same name, refused, never overwrites the first's)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    safe = re.sub(r"[^a-z0-9_-]", "-", campaign.lower())
    return f"custom/telephonist-abandon-{safe}-{digest}"[:80]


NOT_PRESENTABLE = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail-access",
}
"""Numbers a called person could not (or should not have to pay to) call back."""


def presented_number(raw: str, region: str) -> str:
    """The caller ID a campaign presents, E.164, or RuleError: required (regulators ask that
    people see a number they can call back), valid, and not premium-rate or the like.

    >>> presented_number("(212) 555-0100", "US")
    '+12125550100'
    >>> presented_number("", "US")
    Traceback (most recent call last):
    ...
    telephonist.dialer.rules.RuleError: --caller-id: a campaign must present a number people ...
    >>> presented_number("+44 909 879 0000", "GB")
    Traceback (most recent call last):
    ...
    telephonist.dialer.rules.RuleError: --caller-id: '+44 909 879 0000' is a premium-rate ...
    """
    if not raw.strip():
        raise RuleError("--caller-id: a campaign must present a number people can call back "
                        "(--caller-id, or dialer.caller_id in the settings)")  # fmt: skip
    try:
        e164, _parsed, kind = Numbering(region).e164(raw, "--caller-id")
    except NumberError as exc:
        raise RuleError(str(exc)) from None
    if kind in NOT_PRESENTABLE:
        raise RuleError(f"--caller-id: {raw!r} is a {NOT_PRESENTABLE[kind]} number: people must "
                        "be able to call it back at a normal rate")  # fmt: skip
    return e164


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as an admin describes it (``campaign create``)."""

    name: str
    list_name: str
    queue: str
    trunk: str
    mode: str = "predictive"
    caller_id: str = ""
    window: str = "09:00-20:00"
    days: str = "mon-fri"
    timezone: str = "UTC"
    max_attempts: int = 3
    retry: str = ""
    jurisdiction: str = "US"
    ring_seconds: int = 20
    amd: bool = False
    amd_false_positive: float = 0.01
    message: str = ""
    message_text: str = ""
    """Spoken by telephonist (:func:`abandon_message`) when no recorded ``message`` is named."""
    region: str = "US"
    """Of a caller ID written without a country code (``dialer.region``)."""

    def checked(self, centre: Centre) -> Campaign:
        """The campaign row (paused), or RuleError naming the option (pure: no I/O)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}", self.name):
            raise RuleError(f"NAME: {self.name!r} is not a name (letters, digits, _ . -)")
        if self.mode not in MODES:
            raise RuleError(f"--mode: {self.mode!r} is not preview, progressive or predictive")
        if self.queue not in centre.queue_names:
            raise RuleError(
                f"--queue: no queue {self.queue!r} ({', '.join(sorted(centre.queue_names))})"
            )
        if self.trunk not in {t.name for t in centre.trunks}:
            raise RuleError(f"--trunk: no trunk {self.trunk!r}")
        caller_id = presented_number(self.caller_id, self.region)
        start, sep, end = self.window.partition("-")
        if not sep:
            raise RuleError(f"--window: {self.window!r} is not HH:MM-HH:MM")
        rules.parse_hhmm(start, "--window"), rules.parse_hhmm(end, "--window")
        rules.parse_days(self.days)
        rules.zone(self.timezone)
        delays = rules.retry_delays(self.retry)
        if not 1 <= self.max_attempts <= 50:
            raise RuleError(f"--max-attempts: {self.max_attempts} is not 1 to 50")
        if not 15 <= self.ring_seconds <= 60:
            raise RuleError(f"--ring-seconds: {self.ring_seconds} is not 15 to 60")
        if self.jurisdiction not in rules.JURISDICTIONS:
            raise RuleError(f"--jurisdiction: {self.jurisdiction!r} is not US or UK")
        cap = rules.JURISDICTIONS[self.jurisdiction].cap
        if self.amd:
            try:
                pacing.Predictive(cap=cap, amd_false_positive=self.amd_false_positive)
            except ValueError as exc:
                raise RuleError(f"--amd-false-positive: {exc}") from None
        if self.message and not re.fullmatch(r"[a-z0-9][a-z0-9_/-]{0,79}", self.message):
            raise RuleError(f"--message: {self.message!r} is not a sound name")
        if not self.message and not self.message_text.strip():
            raise RuleError(
                f"--message: a {self.jurisdiction} campaign must tell the people it cannot put "
                f"through who called and how to call back (--message SOUND, a recording, or "
                f'--message-text "Example Ltd" to have it spoken)'
            )
        if len(self.message_text) > 200 or any(
            ord(ch) < 32 or ch in "<>{}[]|\\`$" for ch in self.message_text
        ):
            raise RuleError("--message-text: at most 200 characters of plain words")
        return Campaign(
            name=self.name, list_name=self.list_name, queue=self.queue, mode=self.mode,
            trunk=self.trunk, caller_id=caller_id.lstrip("+"), window_start=start,
            window_end=end, days=self.days, default_timezone=self.timezone,
            max_attempts=self.max_attempts, retry=json.dumps(delays),
            jurisdiction=self.jurisdiction, abandon_cap=cap, ring_seconds=self.ring_seconds,
            amd=self.amd, amd_false_positive=self.amd_false_positive if self.amd else 0.0,
            message=self.message, message_text=self.message_text,
        )  # fmt: skip


async def create(store: Store, centre: Centre, spec: CampaignSpec) -> Campaign:
    """Store a new campaign, paused (``start`` begins dialling); ``dialer/campaign`` event."""
    c = spec.checked(centre)
    async with store.unit_of_work() as uow:
        listed = await uow.session.execute(
            select(ContactList).where(col(ContactList.name) == spec.list_name)
        )
        if listed.scalar_one_or_none() is None:
            raise RuleError(f"--list: no contact list {spec.list_name!r} (contacts import first)")
        if (
            await uow.session.execute(select(Campaign).where(col(Campaign.name) == spec.name))
        ).scalar_one_or_none() is not None:
            raise RuleError(f"NAME: a campaign {spec.name!r} exists already")
        uow.session.add(c)
        await uow.session.flush()
        DIALER(uow, "campaign", {"campaign": c.name, "state": c.state})
        return c


async def set_state(store: Store, name: str, new: str) -> tuple[Campaign, int]:
    """``running`` (takes in the list's contacts added since), ``paused`` or ``stopped`` (for
    good). Returns the campaign and how many leads were added."""
    if new not in STATES:
        raise RuleError(f"state: {new!r} is not one of {', '.join(STATES)}")
    async with store.unit_of_work() as uow:
        c = await get(uow.session, name)
        if c.state == "stopped" and new == "running":
            raise RuleError(f"campaign {name} is stopped for good; create a new one")
        added = await load_leads(uow, c) if new == "running" else 0
        c.state = new
        DIALER(uow, "campaign", {"campaign": name, "state": new, "leads_added": added})
        return c, added


async def get(s: AsyncSession, name: str) -> Campaign:
    c = (await s.execute(select(Campaign).where(col(Campaign.name) == name))).scalar_one_or_none()
    if c is None:
        raise RuleError(f"no campaign {name!r}")
    return c


@dataclass(frozen=True)
class DueLead:
    lead_id: int
    number: str
    name: str
    tries: int
    timezone: str
    fields: str


async def next_lead(store: Store, c: Campaign, now: datetime | None = None) -> DueLead | None:
    """The next lead due now (in its window, not on the DNC list), with its contact."""
    leads = await due_leads(store, c, now or datetime.now(UTC), 1)
    if not leads:
        return None
    lead_id, number = leads[0]
    async with store.sessions() as s:
        lead = await s.get(CampaignLead, lead_id)
        assert lead is not None
        contact = await s.get(Contact, lead.contact_id)
    assert contact is not None
    return DueLead(lead_id, number, contact.name, lead.attempts + 1,
                   contact.timezone or c.default_timezone, str(contact.fields))  # fmt: skip


async def stats(store: Store, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Dials, connects, abandons (the rate over the jurisdiction's period, with the estimated
    AMD false positives), talk and agent time, occupancy, outcomes and leads — each an SQL
    aggregate (a campaign of a year is not loaded into memory)."""
    now = now or datetime.now(UTC)
    da = DialAttempt.__table__.c  # type: ignore[attr-defined]
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    qc = QueueCall.__table__.c  # type: ignore[attr-defined]
    lg = AgentLogin.__table__.c  # type: ignore[attr-defined]
    async with store.sessions() as s:
        c = await get(s, name)
        period = rules.JURISDICTIONS[c.jurisdiction].period
        outcome = func.coalesce(func.nullif(da.outcome, ""), "in progress")
        by_outcome = {
            str(k): int(n)
            for k, n in await s.execute(
                select(outcome, func.count()).where(da.campaign_id == c.id).group_by(outcome)
            )
        }
        by_lead = {
            str(k): int(n)
            for k, n in await s.execute(
                select(ld.state, func.count()).where(ld.campaign_id == c.id).group_by(ld.state)
            )
        }
        since = now - period
        recent = and_(da.campaign_id == c.id, da.started_at >= since)
        live, abandoned, machines, first = (
            await s.execute(
                select(
                    func.coalesce(func.sum(case((da.outcome.in_(("answered", "abandoned")), 1),
                                                else_=0)), 0),
                    func.coalesce(func.sum(case((da.outcome == "abandoned", 1), else_=0)), 0),
                    func.coalesce(func.sum(case((da.outcome == "machine", 1), else_=0)), 0),
                    select(func.min(da.started_at))
                    .where(da.campaign_id == c.id)
                    .scalar_subquery(),
                ).where(recent)
            )
        ).one()  # fmt: skip
        calls = select(literal(DIALER_CALL_PREFIX) + cast(da.id, String)).where(
            da.campaign_id == c.id
        )
        talk = (
            await s.execute(
                select(func.coalesce(func.sum(qc.talk), 0))
                .where(and_(qc.kind == "outbound", qc.queue == c.queue))
                .where(qc.callid.in_(calls))
            )
        ).scalar_one()
        # Agents logged in to the campaign's queue, from its first call until now.
        start = as_utc(first) if first is not None else now
        in_queue = or_(
            lg.queues == c.queue,
            lg.queues.like(f"{c.queue},%"),
            lg.queues.like(f"%,{c.queue}"),
            lg.queues.like(f"%,{c.queue},%"),
        )
        until = least(func.coalesce(lg.logged_out_at, now), now)
        logged = (
            await s.execute(
                select(func.coalesce(func.sum(epoch(until) - epoch(greatest(lg.logged_in_at,
                                                                            start))), 0))
                .where(and_(in_queue, lg.logged_in_at < now,
                            or_(lg.logged_out_at.is_(None), lg.logged_out_at > start)))
            )
        ).scalar_one()  # fmt: skip
        # AMD's verdicts, and how many MACHINE verdicts a later call to the same lead showed
        # wrong (it reached an agent: a person answers there) -- the measured side of the
        # false-positive estimate the pacing takes.
        verdicts = {
            str(k): int(n)
            for k, n in await s.execute(
                select(da.amd_status, func.count())
                .where(and_(da.campaign_id == c.id, da.amd_status != ""))
                .group_by(da.amd_status)
            )
        }
        later = DialAttempt.__table__.alias("later").c  # type: ignore[attr-defined]
        contradicted = (
            await s.execute(
                select(func.count()).where(and_(
                    da.campaign_id == c.id, da.amd_status == "MACHINE",
                    select(later.id).where(and_(
                        later.lead_id == da.lead_id, later.attempt > da.attempt,
                        later.outcome == "answered",
                    )).exists(),
                ))
            )
        ).scalar_one()  # fmt: skip
        # The 2-second rule as Asterisk measured it: how soon each abandoned call heard the
        # message (from the answer, or the end of the greeting with AMD).
        within = rules.JURISDICTIONS[c.jurisdiction].message_within
        heard, slowest, late = (
            await s.execute(
                select(
                    func.count(da.message_after),
                    func.max(da.message_after),
                    func.coalesce(func.sum(case((da.message_after > within, 1), else_=0)), 0),
                ).where(and_(da.campaign_id == c.id, da.outcome == "abandoned"))
            )
        ).one()
    rate, fp_estimate = rules.abandon_rate(int(abandoned), int(live), int(machines),
                                           c.amd_false_positive)  # fmt: skip
    logged = max(0.0, float(logged))
    return {
        "campaign": c.name,
        "state": c.state,
        "mode": c.mode,
        "dials": sum(by_outcome.values()),
        "connects": by_outcome.get("answered", 0),
        "abandoned": by_outcome.get("abandoned", 0),
        "abandon_rate": round(rate, 4),
        "abandon_cap": c.abandon_cap,
        "abandon_period": f"{c.jurisdiction}: {period}",
        "abandoned_heard_message": int(heard),
        "message_after_max_seconds": None if slowest is None else round(float(slowest), 3),
        "message_late": int(late),
        "message_within_seconds": within,
        "amd_false_positives_estimated": round(fp_estimate, 2),
        "amd_verdicts": verdicts,
        "amd_machine_then_person": int(contradicted),
        "amd_false_positive_measured": round(int(contradicted) / verdicts["MACHINE"], 4)
        if verdicts.get("MACHINE")
        else None,
        "talk_seconds": int(talk),
        "agent_seconds": round(logged, 1),
        "occupancy": round(int(talk) / logged, 4) if logged else 0.0,
        "outcomes": by_outcome,
        "leads": by_lead,
    }


async def listing(store: Store) -> list[dict[str, Any]]:
    """Every campaign with its settings and its leads by state (one grouped query)."""
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    async with store.sessions() as s:
        found = list((await s.execute(select(Campaign).order_by(col(Campaign.name)))).scalars())
        leads: dict[int, dict[str, int]] = {}
        for campaign_id, lead_state, n in await s.execute(
            select(ld.campaign_id, ld.state, func.count()).group_by(ld.campaign_id, ld.state)
        ):
            leads.setdefault(int(campaign_id), {})[str(lead_state)] = int(n)
    return [
        {"campaign": c.name, "state": c.state, "mode": c.mode, "list": c.list_name,
         "queue": c.queue, "trunk": c.trunk, "caller_id": c.caller_id,
         "window": f"{c.window_start}-{c.window_end}", "days": c.days,
         "jurisdiction": c.jurisdiction, "ring_seconds": c.ring_seconds, "amd": c.amd,
         "created_at": as_utc(c.created_at).isoformat(), "leads": leads.get(c.id or 0, {})}
        for c in found
    ]  # fmt: skip


HOLD_SECONDS = 120
"""How long a previewed lead stays an agent's (``campaign next --hold``)."""


async def agent_ready(store: Store, centre: Centre, agent_id: str, queue: str) -> None:
    """RuleError unless the agent exists, is logged in to ``queue`` and is not paused."""
    agent = centre.agent(agent_id)
    if agent is None:
        raise RuleError(f"--agent: no agent {agent_id!r}")
    lg = AgentLogin.__table__.c  # type: ignore[attr-defined]
    async with store.sessions() as s:
        logins = [
            q for (q,) in await s.execute(
                select(lg.queues).where(and_(lg.agent == agent_id, lg.logged_out_at.is_(None)))
            )
        ]  # fmt: skip
        paused = (
            await s.execute(
                select(func.count())
                .select_from(AgentPause)
                .where(and_(col(AgentPause.agent) == agent_id, col(AgentPause.ended_at).is_(None)))
            )
        ).scalar_one()
    if not any(queue in q.split(",") for q in logins):
        raise RuleError(f"--agent: {agent_id} is not logged in to {queue} (agent login first)")
    if paused:
        raise RuleError(f"--agent: {agent_id} is paused (agent unpause first)")


async def _due_lead(s: AsyncSession, c: Campaign, lead_id: int, number: str) -> DueLead:
    lead = await s.get(CampaignLead, lead_id)
    assert lead is not None
    contact = await s.get(Contact, lead.contact_id)
    assert contact is not None
    return DueLead(lead_id, number, contact.name, lead.attempts + 1,
                   contact.timezone or c.default_timezone, str(contact.fields))  # fmt: skip


async def claim_next(
    store: Store,
    centre: Centre,
    name: str,
    agent_id: str,
    *,
    now: datetime | None = None,
    hold: int = HOLD_SECONDS,
) -> DueLead | None:
    """Preview mode: the lead ``agent_id`` previews, held for them for ``hold`` seconds (no
    other agent, nor the pacing, takes it) until they call it, skip it or the hold runs out.
    Asking again returns the lead they already hold (its hold renewed). Two agents asking at
    the same moment get different leads: the hold is a compare-and-set on the lead's state."""
    now = now or datetime.now(UTC)
    if not 10 <= hold <= 3600:
        raise RuleError(f"--hold: {hold} is not 10 to 3600 seconds")
    async with store.sessions() as s:
        c = await get(s, name)
    if c.mode != "preview":
        raise RuleError(f"campaign {name} is {c.mode}: the dialer places its calls")
    if c.state != "running":
        raise RuleError(f"campaign {name} is {c.state}: start it first")
    await agent_ready(store, centre, agent_id, c.queue)
    until = now + timedelta(seconds=hold)
    ld = CampaignLead.__table__.c  # type: ignore[attr-defined]
    async with store.unit_of_work() as uow:
        mine = (
            await uow.session.execute(
                select(CampaignLead).where(and_(
                    col(CampaignLead.campaign_id) == c.id, col(CampaignLead.state) == "held",
                    col(CampaignLead.held_by) == agent_id, col(CampaignLead.next_at) > now,
                ))
            )
        ).scalars().first()  # fmt: skip
        if mine is not None:
            mine.next_at = until
            number = await _lead_number(uow.session, mine)
            return await _due_lead(uow.session, c, mine.id or 0, number)
    for lead_id, number in await due_leads(store, c, now, 5):
        async with store.unit_of_work() as uow:
            taken = await uow.session.execute(
                update(CampaignLead.__table__)  # type: ignore[attr-defined]
                .where(and_(ld.id == lead_id, or_(
                    ld.state.in_(("new", "retry")),
                    and_(ld.state == "held", ld.next_at <= now),
                )))
                .values(state="held", held_by=agent_id, next_at=until)
            )  # fmt: skip
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                DIALER(uow, "lead_held", {"campaign": name, "lead_id": lead_id,
                                          "agent": agent_id, "until": until})  # fmt: skip
                return await _due_lead(uow.session, c, lead_id, number)
    return None


async def _lead_number(s: AsyncSession, lead: CampaignLead) -> str:
    phones = list(
        (
            await s.execute(
                select(col(ContactPhone.number))
                .where(col(ContactPhone.contact_id) == lead.contact_id)
                .order_by(col(ContactPhone.position))
            )
        ).scalars()
    )
    return phones[lead.attempts % len(phones)] if phones else ""


async def skip_held(store: Store, name: str, agent_id: str, reason: str) -> int:
    """The agent skips the lead they hold: it is never dialled in this campaign (state
    ``skipped``, with the reason). Returns its id."""
    reason = reason.strip()
    if not reason or len(reason) > 80 or any(ord(ch) < 32 for ch in reason):
        raise RuleError("--reason: say why in at most 80 characters")
    async with store.unit_of_work() as uow:
        c = await get(uow.session, name)
        lead = (
            await uow.session.execute(
                select(CampaignLead).where(and_(
                    col(CampaignLead.campaign_id) == c.id, col(CampaignLead.state) == "held",
                    col(CampaignLead.held_by) == agent_id,
                ))
            )
        ).scalars().first()  # fmt: skip
        if lead is None:
            raise RuleError(f"--skip: {agent_id} holds no lead of {name} (campaign next first)")
        lead.state, lead.skip_reason, lead.last_outcome = "skipped", reason, "skipped"
        DIALER(uow, "lead_skipped", {"campaign": name, "lead_id": lead.id, "agent": agent_id,
                                     "reason": reason})  # fmt: skip
        return lead.id or 0
