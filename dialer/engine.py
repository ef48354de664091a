"""The dialing engine in ``serve``: paces each running campaign with its policy, places calls
with AMI Originate, and learns every outcome.

Each second, for each running campaign: an :class:`~dialer.pacing.Observation` is built from
the campaign queue's agents (the ACD watcher's live state) and the calls in flight; the policy
says how many calls to launch; that many due leads are taken — in their calling window (the
contact's own time zone), not on the do-not-call list (checked now, at dial time) — and for
each the attempt is stored *before* the Originate. The channel's unique id is
``dial-<attempt id>``, so every later trace of the call names its attempt.

Outcomes: an unanswered call ends with AMI ``OriginateResponse`` (busy, no answer, failed); an
answered one runs ``[telephonist-dialer]``, which writes ``DIALERANSWER`` to the queue_log,
puts the person in the campaign queue for 2 seconds at most, and, if no agent took them,
plays the recorded message and writes ``DIALERABANDON``; app_queue's own ``CONNECT`` says
which agent took it. The queue_log is ingested exactly once, so those outcomes survive a
restart of telephonist. Numbers reach the dialplan as E.164 digits only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlmodel import col

from telephonist.core.ami import AmiClient, AmiError, list_channels, outcome_unknown
from telephonist.core.callcontrol import AmiCallControl, Originate
from telephonist.core.models import (
    DIALER_CALL_PREFIX,
    Campaign,
    CampaignLead,
    Contact,
    ContactList,
    ContactPhone,
    DialAttempt,
    DncEntry,
    QueueLogEntry,
    as_utc,
    dialer_call_id,
    is_dialer_call,
    utcnow,
)
from telephonist.core.numbers import Dialing, NumberError, Numbering
from telephonist.core.storage import Store, UnitOfWork
from telephonist.dialer import observe, pacing, rules
from telephonist.dialer.dispositions import DispositionError, set_disposition
from telephonist.dialer.events import DIALER

if TYPE_CHECKING:
    from telephonist.acd.queue_log import QueueLogIngester
    from telephonist.acd.watcher import QueueWatcher

log = logging.getLogger("telephonist.dialer")

ORIGINATE_REASONS = {"5": "busy", "3": "no_answer", "8": "failed", "1": "failed", "0": "failed"}
"""AMI OriginateResponse Reason -> outcome (5 busy, 3 rang out, 8 congestion, 1/0 failed)."""
HANGUP_CAUSES = {"17": "busy", "18": "no_answer", "19": "no_answer", "21": "failed",
                 "34": "failed", "1": "failed", "28": "failed"}  # fmt: skip
"""Q.850 cause of the unanswered channel -> outcome (17 user busy, 18/19 no answer)."""


RECONCILE_EVERY = 30.0
"""Seconds between two checks of open attempts against Asterisk (and at every connect)."""
LOST_AFTER = 10.0
"""An attempt with no outcome and no channel this long past its ring time is lost."""


class DialerService:
    def __init__(
        self,
        store: Store,
        ami: AmiClient,
        watcher: QueueWatcher,
        queue_log: QueueLogIngester | None,
        *,
        interval: float = 1.0,
        wrapups: Mapping[str, int] | None = None,
        dialing: Dialing | None = None,
    ) -> None:
        self.store = store
        self.dialing = dialing or Dialing(Numbering())
        """Each trunk's dial format (contacts are stored as E.164)."""
        self.wrapups = dict(wrapups or {})
        """Each queue's wrap-up seconds (app_queue's ``wrapuptime``; members may have their own)."""
        self.ami = ami
        self.control = AmiCallControl(ami)
        self.watcher = watcher
        self.interval = interval
        self.policies: dict[int, pacing.Policy] = {}
        self.finished: dict[int, pacing.Finished] = {}
        self._causes: dict[str, str] = {}
        self._failed: dict[str, str] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.queue_log = queue_log
        self._reconcile_at = 0.0
        ami.on_connect(self._connected)
        ami.on_event("Hangup", self._on_hangup)
        ami.on_event("OriginateResponse", self._on_originate)
        ami.on_event("UserEvent", self._on_user_event)
        if queue_log is not None:
            queue_log.hooks.append(self.on_queue_log)

    async def run(self) -> None:
        # At a fixed rate (a decision every second, as the policy and the simulator assume),
        # not a second after the previous round ended; a round that overruns is not made up.
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + self.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())
            if not self.ami.link.is_up:
                continue
            if loop.time() >= self._reconcile_at:
                try:
                    await self.reconcile()
                    self._reconcile_at = loop.time() + RECONCILE_EVERY
                except AmiError as exc:
                    log.warning("dialer: attempts not reconciled: %s", exc)
            async with self.store.sessions() as s:
                running = list(
                    (
                        await s.execute(select(Campaign).where(col(Campaign.state) == "running"))
                    ).scalars()
                )
            for campaign in running:
                if campaign.mode == "preview":
                    continue  # agents see each lead first and place the call themselves
                try:
                    await self.pace(campaign)
                except AmiError as exc:
                    log.warning("campaign %s: %s", campaign.name, exc)

    async def _connected(self) -> None:
        self._reconcile_at = 0.0  # at once: calls may have ended while the link was down

    async def reconcile(self, grace: float = LOST_AFTER) -> int:
        """Close the attempts with no outcome whose call is gone: Asterisk restarted, the
        link was down when the outcome came, or telephonist died between storing and sending.
        The queue_log is read first (an outcome written meanwhile is learnt, not guessed);
        an attempt still ringing, or younger than its ring time plus ``grace`` seconds, is
        left alone. The rest are *failed (lost)* and their leads retried by the campaign's
        rules. Returns how many were closed."""
        live = set(await list_channels(self.ami, "Uniqueid"))
        if self.queue_log is not None:
            await self.queue_log.catch_up()  # after listing (see callbacks/service.py)
        now = datetime.now(UTC)
        closed = 0
        async with self.store.unit_of_work() as uow:
            rows = (
                await uow.session.execute(
                    select(DialAttempt, col(Campaign.ring_seconds), col(Campaign.jurisdiction))
                    .join(Campaign, col(Campaign.id) == col(DialAttempt.campaign_id))
                    .where(col(DialAttempt.outcome) == "")
                    .where(col(DialAttempt.started_at) < now - timedelta(seconds=grace))
                )
            ).all()
            for attempt, ring_seconds, jurisdiction in rows:
                assert attempt.id is not None
                if dialer_call_id(attempt.id) in live:
                    continue
                limit = rules.ring_for(jurisdiction, ring_seconds) + grace
                if (now - as_utc(attempt.started_at)).total_seconds() < limit:
                    continue
                log.warning("dial attempt %s: the call is gone with no outcome", attempt.id)
                await self._outcome(uow, attempt.id, "failed", "lost: no outcome")
                closed += 1
        return closed

    def _policy(self, c: Campaign) -> pacing.Policy:
        assert c.id is not None
        if c.id not in self.policies:
            if c.mode == "progressive":
                self.policies[c.id] = pacing.Progressive()
            else:
                self.policies[c.id] = pacing.Predictive(
                    cap=c.abandon_cap,
                    amd_false_positive=c.amd_false_positive if c.amd else 0.0,
                    day_ms=rules.window_ms(c.window_start, c.window_end),
                )
        return self.policies[c.id]

    async def observe(self, c: Campaign, now: datetime) -> pacing.Observation:
        """Read the queue's members and the campaign's day; the policy's view of them is
        built by the pure functions of ``dialer/observe.py``."""
        assert c.id is not None
        queue = self.watcher.state.queues.get(c.queue)
        members = list(queue.members.values()) if queue is not None else []
        states, elapsed = observe.agents(members, now.timestamp(), self.wrapups.get(c.queue, 0))
        # Today's counters as one aggregate, and only the calls still in flight as rows:
        # this runs every second for every running campaign.
        since = now - timedelta(hours=24)
        mine = (col(DialAttempt.campaign_id) == c.id) & (col(DialAttempt.started_at) >= since)
        async with self.store.sessions() as s:
            dials, answered, abandoned, first = (
                await s.execute(
                    select(
                        func.count(),
                        func.count(col(DialAttempt.answered_at)),
                        func.coalesce(
                            func.sum(case((col(DialAttempt.outcome) == "abandoned", 1), else_=0)), 0
                        ),
                        func.min(col(DialAttempt.started_at)),
                    ).where(mine)
                )
            ).one()
            flying = [
                observe.Flight(a.started_at, a.answered_at, a.connected_at)
                for a in (
                    await s.execute(
                        select(DialAttempt).where(mine).where(col(DialAttempt.outcome) == "")
                    )
                ).scalars()
            ]
        day = observe.Day(int(dials), int(answered), int(abandoned), first)
        return observe.observation(
            now, states, elapsed, day, flying, self.finished.pop(c.id, pacing.Finished())
        )

    async def pace(self, c: Campaign) -> int:
        """One pacing round for campaign ``c``; returns how many calls were placed."""
        now = datetime.now(UTC)
        obs = await self.observe(c, now)
        want = min(self._policy(c).decide(obs), obs.lines_free)
        if log.isEnabledFor(logging.DEBUG):  # every second: built only when it is read
            log.debug(
                "campaign %s: agents %s, ringing %d, waiting %d, lines free %d: launch %d",
                c.name, "".join("ITWA"[x] for x in obs.agent_state), len(obs.ringing_ms),
                obs.waiting, obs.lines_free, want,
            )  # fmt: skip
        placed = 0
        if want <= 0:
            return 0
        for lead_id, number in await due_leads(self.store, c, now, want):
            if await self._dial(c, lead_id, number):
                placed += 1
        return placed

    async def _dial(self, c: Campaign, lead_id: int, number: str) -> bool:
        """Store the attempt, then Originate (persist before acting)."""
        try:
            digits = self.dialing.string(number, c.trunk)
        except NumberError:
            log.warning("campaign %s lead %s: %r is not a number; not dialled", c.name,
                        lead_id, number)  # fmt: skip
            return False
        async with self.store.unit_of_work() as uow:
            lead = await uow.session.get(CampaignLead, lead_id)
            if lead is None or not _due(lead, utcnow()):
                return False
            lead.attempts += 1
            lead.state = "dialing"
            attempt = DialAttempt(
                campaign_id=c.id or 0, lead_id=lead_id, number=number, attempt=lead.attempts
            )
            uow.session.add(attempt)
            await uow.session.flush()
            assert attempt.id is not None
            attempt_id = attempt.id
            DIALER(uow, "dial", {"campaign": c.name, "attempt_id": attempt_id,
                                        "lead_id": lead_id, "attempt": lead.attempts})  # fmt: skip
        variables = {
            "TELEPHONIST_ATTEMPT": str(attempt_id),
            "TELEPHONIST_QUEUE": c.queue,
            "TELEPHONIST_MESSAGE": c.message or "silence/1",
            "TELEPHONIST_AMD": "1" if c.amd else "0",
            # How long the answered person may wait for an agent: the message then starts
            # within the jurisdiction's limit (rules.HOLD_MARGIN left for the PBX).
            "TELEPHONIST_HOLD": f"{rules.hold_seconds(c.jurisdiction):.1f}",
        }
        try:
            await self.control.originate(
                Originate(
                    channel=f"PJSIP/{digits}@{c.trunk}",
                    channel_id=dialer_call_id(attempt_id),
                    context="telephonist-dialer",
                    timeout=rules.ring_for(c.jurisdiction, c.ring_seconds),
                    caller_id=f"<{c.caller_id}>" if c.caller_id else "",
                    variables=variables,
                )
            )
        except AmiError as exc:
            if outcome_unknown(exc):
                # The call may exist: never dialled again before reconcile() has checked.
                log.warning("campaign %s: attempt %s: %s; outcome unknown, checked later",
                            c.name, attempt_id, exc)  # fmt: skip
                return False
            log.warning("campaign %s: attempt %s not placed: %s", c.name, attempt_id, exc)
            async with self.store.unit_of_work() as uow:
                await self._outcome(uow, attempt_id, "failed", "originate refused")
            return False
        return True

    async def _on_hangup(self, event: Any) -> None:
        uid = event.get("Uniqueid", "")
        if not is_dialer_call(uid):
            return
        cause = event.get("Cause", "")
        reason = self._failed.pop(uid, None)
        if reason is not None:  # the OriginateResponse came first
            await self._unanswered(uid, reason, cause)
            return
        self._causes[uid] = cause
        while len(self._causes) > 10_000:
            self._causes.pop(next(iter(self._causes)))

    async def _on_user_event(self, event: Any) -> None:
        """A CRM sets a disposition over AMI: ``Action: UserEvent``, ``UserEvent:
        TelephonistDisposition``, ``Attempt: <id>``, ``Code: <code>``."""
        if event.get("UserEvent") != "TelephonistDisposition":
            return
        raw_id, code = event.get("Attempt", ""), event.get("Code", "")
        try:
            if not raw_id.isdigit():
                raise DispositionError(f"Attempt: {raw_id[:40]!r} is not an attempt id")
            async with self.store.unit_of_work() as uow:
                await set_disposition(uow, int(raw_id), code, by="ami")
        except DispositionError as exc:
            log.warning("AMI disposition refused: %s", exc)
            async with self.store.unit_of_work() as uow:
                DIALER(uow, "disposition_refused", {"error": str(exc)[:200]})

    async def _on_originate(self, event: Any) -> None:
        """An unanswered call. The hang-up cause says more than the Reason (PJSIP reports a
        486 as Reason 0), and the channel's Hangup event may come before or after this."""
        uid = event.get("Uniqueid", "")
        if not is_dialer_call(uid) or event.get("Response") == "Success":
            return
        reason = event.get("Reason", "")
        cause = self._causes.pop(uid, None)
        if cause is not None:
            await self._unanswered(uid, reason, cause)
            return
        self._failed[uid] = reason
        task = asyncio.get_running_loop().create_task(self._no_hangup_seen(uid))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _no_hangup_seen(self, uid: str) -> None:
        await asyncio.sleep(2.0)
        reason = self._failed.pop(uid, None)
        if reason is not None:
            await self._unanswered(uid, reason, "")

    async def _unanswered(self, uid: str, reason: str, cause: str) -> None:
        try:
            attempt_id = int(uid[5:])
        except ValueError:
            return
        outcome = HANGUP_CAUSES.get(cause) or ORIGINATE_REASONS.get(reason, "failed")
        async with self.store.unit_of_work() as uow:
            await self._outcome(uow, attempt_id, outcome, f"reason {reason} cause {cause}")

    async def on_queue_log(self, uow: UnitOfWork, entries: list[QueueLogEntry]) -> None:
        for e in entries:
            if not is_dialer_call(e.callid):
                continue
            try:
                attempt_id = int(e.callid.removeprefix(DIALER_CALL_PREFIX))
            except ValueError:
                continue
            attempt = await uow.session.get(DialAttempt, attempt_id)
            if attempt is None:
                continue
            at = as_utc(e.time)
            if e.event == "DIALERANSWER" and attempt.answered_at is None:
                attempt.answered_at = _clock(e.data2) or at  # to the millisecond
                attempt.hold_from = "answer"
            elif e.event == "CONNECT":
                attempt.connected_at, attempt.agent = at, e.agent[:80]
                await self._outcome(uow, attempt_id, "answered", "CONNECT")
            elif e.event == "DIALERABANDON":  # data2 QUEUESTATUS, data3-5 the clock
                clock, message = _clock(e.data4), _clock(e.data5)
                if clock is not None and message is not None:
                    attempt.hold_from = e.data3[:10]
                    attempt.message_after = round((message - clock).total_seconds(), 3)
                await self._outcome(uow, attempt_id, "abandoned", f"queue {e.data2}"[:40])
            elif e.event == "DIALERAMD":  # data2 the verdict, data3 its cause
                attempt.amd_status, attempt.amd_cause = e.data2[:10], e.data3[:40]
            elif e.event == "DIALERMACHINE":
                await self._outcome(uow, attempt_id, "machine", "AMD")
            elif e.event in ("COMPLETECALLER", "COMPLETEAGENT"):
                attempt.ended_at = at
                # What the policy learns from: the talk time (whole seconds in the queue_log:
                # the middle of that second) and the wrap-up that follows it.
                learnt = self.finished.setdefault(attempt.campaign_id, pacing.Finished())
                if e.data2.isdigit():
                    learnt.talks.append(int(e.data2) * 1000 + 500)
                if self.wrapups.get(e.queue, 0):
                    learnt.wraps.append(self.wrapups[e.queue] * 1000)
            elif e.event == "PREVIEWRESULT":  # a preview call, placed by the agent
                status = e.data1.upper()
                if status == "ANSWER":
                    attempt.answered_at = attempt.connected_at = at
                    attempt.agent = e.agent[:80]
                outcome = PREVIEW_OUTCOMES.get(status, "failed")
                await self._outcome(uow, attempt_id, outcome, f"preview {status}"[:40])
                attempt.ended_at = at

    async def _outcome(self, uow: UnitOfWork, attempt_id: int, outcome: str, reason: str) -> None:
        attempt = await uow.session.get(DialAttempt, attempt_id)
        if attempt is None or attempt.outcome:
            return
        now = datetime.now(UTC)
        attempt.outcome, attempt.reason = outcome, reason[:40]
        if outcome != "answered":
            attempt.ended_at = attempt.ended_at or now
        lead = await uow.session.get(CampaignLead, attempt.lead_id)
        campaign = await uow.session.get(Campaign, attempt.campaign_id)
        if lead is not None and campaign is not None:
            lead.last_outcome = outcome
            lead.state, lead.next_at = rules.after_attempt(
                outcome, lead.attempts, campaign.max_attempts, campaign.retry,
                campaign.jurisdiction, now,
            )  # fmt: skip
        ring_ms = int((now - as_utc(attempt.started_at)).total_seconds() * 1000)
        code = {"answered": pacing.LIVE, "abandoned": pacing.LIVE, "busy": pacing.BUSY,
                "machine": pacing.MACHINE}.get(outcome, pacing.NO_ANSWER)  # fmt: skip
        self.finished.setdefault(attempt.campaign_id, pacing.Finished()).outcomes.append(
            (code, ring_ms)
        )
        DIALER(uow, "attempt", {
            "attempt_id": attempt.id, "campaign_id": attempt.campaign_id,
            "lead_id": attempt.lead_id, "outcome": outcome, "reason": attempt.reason,
            "agent": attempt.agent,
        })  # fmt: skip


def _clock(text: str) -> datetime | None:
    """A moment the dialplan wrote as ``STRFTIME(,,%s.%3q)`` (epoch seconds, milliseconds).

    >>> _clock("1764979200.250")
    datetime.datetime(2025, 12, 6, 0, 0, 0, 250000, tzinfo=datetime.timezone.utc)
    >>> _clock("") is None and _clock("soon") is None
    True
    """
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        return None


def _due(lead: CampaignLead, now: datetime) -> bool:
    """Still free to dial: new, to retry, or held by an agent whose hold has run out."""
    if lead.state in ("new", "retry"):
        return True
    return lead.state == "held" and lead.next_at is not None and as_utc(lead.next_at) <= now


async def due_leads(store: Store, c: Campaign, now: datetime, want: int) -> list[tuple[int, str]]:
    """Up to ``want`` leads to dial now: due, in their window, not on the DNC list (a lead an
    agent held in preview is due again once the hold has run out)."""
    out: list[tuple[int, str]] = []
    async with store.unit_of_work() as uow:
        s = uow.session
        rows = (
            await s.execute(
                select(CampaignLead, Contact)
                .join(Contact, col(Contact.id) == col(CampaignLead.contact_id))
                .where(col(CampaignLead.campaign_id) == c.id)
                .where(col(CampaignLead.state).in_(("new", "retry", "held")))
                .where((col(CampaignLead.next_at).is_(None)) | (col(CampaignLead.next_at) <= now))
                .order_by(col(CampaignLead.state).desc(), col(CampaignLead.id))
                .limit(max(50, want * 5))
            )
        ).all()
        window = rules.Window.of(c.window_start, c.window_end, c.days)  # once per round
        for lead, contact in rows:
            if len(out) >= want:
                break
            if not window.open_for(now, contact.timezone or c.default_timezone):
                continue
            phones = (
                (
                    await s.execute(
                        select(col(ContactPhone.number))
                        .where(col(ContactPhone.contact_id) == contact.id)
                        .order_by(col(ContactPhone.position))
                    )
                )
                .scalars()
                .all()
            )
            if not phones:
                continue
            number = phones[lead.attempts % len(phones)]
            dnc = (
                await s.execute(select(col(DncEntry.id)).where(col(DncEntry.number) == number))
            ).first()
            if dnc is not None:
                lead.state, lead.last_outcome = "dnc", "dnc_blocked"
                DIALER(uow, "dnc_blocked", {"campaign": c.name, "lead_id": lead.id})
                continue
            assert lead.id is not None
            out.append((lead.id, number))
    return out


PREVIEW_OUTCOMES = {"ANSWER": "answered", "BUSY": "busy", "NOANSWER": "no_answer"}


async def place_preview(
    store: Store,
    ami: AmiClient,
    c: Campaign,
    lead_id: int,
    number: str,
    agent_id: str,
    extension: str,
    ring_seconds: int = 30,
    dialing: Dialing | None = None,
) -> int:
    """Preview mode: ring the agent's phone, then dial the lead. Returns the attempt id."""
    dialing = dialing or Dialing(Numbering())
    try:
        digits = dialing.string(number, c.trunk)
    except NumberError as exc:
        raise ValueError(f"lead {lead_id}: {exc}") from None
    async with store.unit_of_work() as uow:
        lead = await uow.session.get(CampaignLead, lead_id)
        if lead is None or lead.state not in ("new", "retry", "held"):
            raise ValueError(f"lead {lead_id} is not due")
        if lead.state == "held" and lead.held_by != agent_id:
            raise ValueError(f"lead {lead_id} is held by {lead.held_by}")
        lead.attempts += 1
        lead.state = "dialing"
        attempt = DialAttempt(campaign_id=c.id or 0, lead_id=lead_id, number=number,
                              attempt=lead.attempts, agent=agent_id)  # fmt: skip
        uow.session.add(attempt)
        await uow.session.flush()
        assert attempt.id is not None
        attempt_id = attempt.id
        DIALER(uow, "dial", {"campaign": c.name, "attempt_id": attempt_id,
                                    "lead_id": lead_id, "preview_by": agent_id})  # fmt: skip
    variables = {
        "TELEPHONIST_ATTEMPT": str(attempt_id),
        "TELEPHONIST_QUEUE": c.queue,
        "TELEPHONIST_AGENT": agent_id,
        "TELEPHONIST_NUMBER": digits,
        "TELEPHONIST_TRUNK": c.trunk,
        "TELEPHONIST_RING_SECONDS": str(rules.ring_for(c.jurisdiction, c.ring_seconds)),
        "TELEPHONIST_CALLER_ID": c.caller_id,  # E.164 digits (checked at create)
    }
    await AmiCallControl(ami).originate(
        Originate(
            channel=f"PJSIP/{extension}",
            context="telephonist-dialer-preview",
            timeout=ring_seconds,
            caller_id=f"Preview <{dialing.say(number)}>",
            variables=variables,
        )
    )
    return attempt_id


async def load_leads(uow: UnitOfWork, campaign: Campaign) -> int:
    """Add the list's contacts not in the campaign yet (on start); returns how many."""
    lst = (
        await uow.session.execute(
            select(ContactList).where(col(ContactList.name) == campaign.list_name)
        )
    ).scalar_one_or_none()
    if lst is None:
        return 0
    have = set(
        (
            await uow.session.execute(
                select(col(CampaignLead.contact_id)).where(
                    col(CampaignLead.campaign_id) == campaign.id
                )
            )
        ).scalars()
    )
    added = 0
    for contact_id in (
        await uow.session.execute(select(col(Contact.id)).where(col(Contact.list_id) == lst.id))
    ).scalars():
        if contact_id is not None and contact_id not in have:
            uow.session.add(CampaignLead(campaign_id=campaign.id or 0, contact_id=contact_id))
            added += 1
    return added
