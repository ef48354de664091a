"""Placing callbacks: an agent first, then the customer — without losing the customer's
place in the queue, and without ever calling anyone twice.

How a callback is placed (the dialplan is in ``[telephonist-cb-*]``):

1. The task is due: telephonist stores the try (``state = queued``, ``tries + 1``) and
   only then sends AMI ``Originate`` of ``Local/cb<id>x<attempt>@telephonist-cb-queue``. That
   placeholder joins the queue at the position the customer had (callers who joined before
   them stay ahead; callers who joined after stay behind) and waits like any caller — so a
   callback only ever takes an agent who is free to take it.
2. An agent answers the placeholder; its other half runs ``[telephonist-cb-dial]``: the
   agent hears "calling" and the number, then the customer is dialled and bridged.
3. Every step is written to Asterisk's queue_log (``CALLBACKPLACED``, ``CONNECT``,
   ``CALLBACKDIAL``, ``CALLBACKRESULT``, ``CALLBACKUNPLACED``). telephonist learns outcomes
   from there (:meth:`CallbackService.on_queue_log`, run inside the queue_log ingestion
   transaction): what happened while telephonist was down is learnt when it is back, once.

After every (re)connect to AMI, :meth:`reconcile` first lists Asterisk's channels, then reads
the queue_log to its end, then puts back to *pending* any task whose placeholder is gone
without an outcome (Asterisk restarted, or telephonist died between storing and sending).
Order matters: a channel gone at listing time has written its last line already.

A task for a named agent (scheduled) rings that agent's phone directly, only when the agent is
logged in, not paused and idle, and goes to anyone in its queue ``promote_after`` seconds
after its time.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from telephonist.callbacks import rules, tasks
from telephonist.callbacks.events import CALLBACKS
from telephonist.callbacks.policy import NumberPolicy
from telephonist.callbacks.tasks import payload
from telephonist.core.ami import AmiClient, AmiError, list_channels, outcome_unknown
from telephonist.core.callcontrol import AmiCallControl, Originate
from telephonist.core.centre import Centre
from telephonist.core.models import (
    CallbackAttempt,
    CallbackRequest,
    QueueLogEntry,
    as_utc,
    is_dialer_call,
)
from telephonist.core.numbers import Dialing, NumberError
from telephonist.core.storage import Store, UnitOfWork

if TYPE_CHECKING:
    from telephonist.acd.queue_log import QueueLogIngester
    from telephonist.acd.redirects import Decision
    from telephonist.acd.watcher import QueueWatcher

log = logging.getLogger("telephonist.callbacks")

DIAL_OUTCOMES = {
    "ANSWER": "answered",
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
    "CANCEL": "agent_hung_up",
    "": "agent_hung_up",
}
"""Dial()'s DIALSTATUS on the customer leg -> the attempt's outcome."""
_CONDITION = {"in use": "inuse", "busy": "inuse", "ringing (in use)": "ringing"}
"""Device states (as the queue watcher names them) -> app_queue's joinempty conditions."""
_PLACEHOLDER = re.compile(r"^Local/(?:cb|ag)([0-9]+)x([0-9]+)@")
RECONCILE_EVERY = 30.0
"""Seconds between two checks of tries against Asterisk's channels (besides each connect)."""
GRACE = 20.0
"""A try younger than this is not judged lost: its Originate may still be on its way."""


def placeholder(cb_id: int, attempt: int, direct: bool = False) -> str:
    """The Local channel name prefix of a task's placeholder."""
    return f"Local/{'ag' if direct else 'cb'}{cb_id}x{attempt}@"


class CallbackService:
    def __init__(
        self,
        store: Store,
        ami: AmiClient,
        centre: Centre,
        watcher: QueueWatcher,
        queue_log: QueueLogIngester | None,
        *,
        policy: NumberPolicy,
        interval: float = 1.0,
    ) -> None:
        self.policy = policy
        self.numbering = policy.numbering
        self.dialing = Dialing(policy.numbering, centre.trunks)
        self.store = store
        self.ami = ami
        self.control = AmiCallControl(ami)
        self.centre = centre
        self.settings = centre.callbacks
        self.watcher = watcher
        self.queue_log = queue_log
        self.interval = interval
        self.wake = asyncio.Event()
        self._reconciled = False
        self._reconcile_at = 0.0
        self.agents = {a.id: a for a in centre.agents}
        ami.on_connect(self._connected)
        if queue_log is not None:
            queue_log.hooks.append(self.on_queue_log)

    async def _connected(self) -> None:
        self._reconciled = False
        self.wake.set()

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        if self.settings.trunk is None:
            log.warning("callbacks.trunk is not set: callback tasks are stored, never placed")
        await self.renumber()
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except TimeoutError:
                pass
            self.wake.clear()
            if not self.ami.link.is_up:
                continue
            try:
                loop = asyncio.get_running_loop()
                if not self._reconciled or loop.time() >= self._reconcile_at:
                    await self.reconcile()
                    self._reconciled = True
                    self._reconcile_at = loop.time() + RECONCILE_EVERY
                await self.sweep()
                if self.settings.trunk is not None:
                    await self.place_due()
            except AmiError as exc:
                log.warning("callbacks: %s (will try again)", exc)

    async def renumber(self) -> int:
        """Open tasks stored under another spelling of their number (by an earlier version,
        or before ``dialer.region`` was set) get the customer's key; of two pending tasks for
        one customer the later is merged into the earlier. Returns how many rows changed."""
        changed = 0
        async with self.store.unit_of_work() as uow:
            rows = (
                await uow.session.execute(
                    select(CallbackRequest)
                    .where(col(CallbackRequest.state).in_(tasks.OPEN))
                    .order_by(col(CallbackRequest.id))
                )
            ).scalars()
            first: dict[str, CallbackRequest] = {}
            for cb in rows:
                try:
                    key = self.numbering.identity(cb.number)
                except NumberError:
                    continue  # placed or failed alone, like any bad row
                kept = first.setdefault(key, cb)
                if kept is not cb and cb.state == "pending":
                    kept.merged += 1
                    await tasks.close(uow, cb, "cancelled", f"same customer as task {kept.id}")
                    changed += 1
                elif cb.number != key:
                    cb.number = key
                    changed += 1
        if changed:
            log.info("callbacks: %d open task(s) renumbered or merged", changed)
        return changed

    async def reconcile(self, grace: float = GRACE) -> int:
        """Put back to *pending* the tasks whose placeholder vanished without an outcome
        (tries younger than ``grace`` seconds are left alone). Returns how many."""
        channels = await list_channels(self.ami, "Channel")
        if self.queue_log is not None:
            await self.queue_log.catch_up()  # after listing: see the module's docstring
        fixed = 0
        async with self.store.unit_of_work() as uow:
            rows = (
                await uow.session.execute(
                    select(CallbackRequest).where(
                        col(CallbackRequest.state).in_(("queued", "connected"))
                    )
                )
            ).scalars()
            recent = datetime.now(UTC) - timedelta(seconds=grace)
            for cb in list(rows):
                assert cb.id is not None
                names = (placeholder(cb.id, cb.tries), placeholder(cb.id, cb.tries, True))
                if any(c.startswith(names) for c in channels):
                    continue
                row = await _attempt(uow, cb.id, cb.tries)
                if row is not None and as_utc(row.started_at) > recent:
                    continue  # just sent: its channel may not be listed yet
                fixed += 1
                log.warning("callback %s: placeholder gone without an outcome", cb.id)
                await self._ended(uow, cb, "lost", "", 0, counted=cb.state == "connected")
        return fixed

    async def sweep(self) -> int:
        """Hang up placeholders still waiting for a task that is no longer queued
        (cancelled by an admin, or the customer called again and was served)."""
        waiting: dict[str, tuple[int, int]] = {}
        for q in self.watcher.state.queues.values():
            for caller in q.callers.values():
                m = _PLACEHOLDER.match(caller.channel)
                if m is not None:
                    waiting[caller.channel] = (int(m.group(1)), int(m.group(2)))
        if not waiting:
            return 0
        async with self.store.sessions() as s:
            live = {
                (cb.id, cb.tries)
                for cb in (
                    await s.execute(
                        select(CallbackRequest).where(
                            col(CallbackRequest.id).in_([i for i, _ in waiting.values()])
                        )
                    )
                ).scalars()
                if cb.state in ("queued", "connected")
            }
        gone = 0
        for channel, key in waiting.items():
            if key not in live:
                gone += 1
                log.info("callback %s: task closed, its placeholder leaves the queue", key[0])
                try:
                    await self.control.hangup(channel)
                except AmiError as exc:
                    log.warning("placeholder %s not hung up: %s", channel, exc)
        return gone

    async def place_due(self) -> int:
        """Place every task that is due and can be placed now; returns how many."""
        now = datetime.now(UTC)
        async with self.store.sessions() as s:
            due = list(
                (
                    await s.execute(
                        select(CallbackRequest)
                        .where(col(CallbackRequest.state) == "pending")
                        .where(
                            (col(CallbackRequest.due_at).is_(None))
                            | (col(CallbackRequest.due_at) <= now)
                        )
                        .order_by(col(CallbackRequest.joined_at), col(CallbackRequest.id))
                    )
                ).scalars()
            )
        busy_agents = await self._agents_with_callbacks()
        placed = 0
        for cb in due:
            assert cb.id is not None
            try:
                direct = self._direct_agent(cb, now, busy_agents)
                if direct is None:
                    continue
                if await self._place(cb.id, direct):
                    placed += 1
                    if direct:
                        busy_agents.add(direct)
            except DBAPIError:
                raise  # the database, not this task: the loop is restarted and tries again
            except Exception as exc:  # this one task cannot be placed: never the service
                log.exception("callback %s cannot be placed; marked failed", cb.id)
                await self._fail(cb.id, f"error: {type(exc).__name__}: {exc}")
        return placed

    def _direct_agent(
        self, cb: CallbackRequest, now: datetime, busy_agents: set[str]
    ) -> str | None:
        """The named agent to ring now, "" for anyone in the queue, None: not yet."""
        if not cb.agent:
            # Nobody logged in to the queue: the queue would refuse the placeholder. The task
            # waits (no try is made, none is counted) until somebody logs in.
            return "" if self._staffed(cb.queue) else None
        if cb.agent not in self.agents:
            raise tasks.CallbackError(f"agent {cb.agent!r} is not in the centre")
        due_at = _aware(cb.due_at) or _aware(cb.requested_at)
        assert due_at is not None
        if now >= due_at + timedelta(seconds=self.settings.promote_after):
            return "" if self._staffed(cb.queue) else None
        if cb.agent in busy_agents or not self._agent_free(cb.agent):
            return None
        return cb.agent

    def _dial_strings(self, number: str) -> tuple[str, str]:
        """(what the callback trunk is sent, what the agent hears read back) for a stored
        number, in the trunk's ``dial_format``; CallbackError if it is no number."""
        try:
            return self.dialing.string(number, self.settings.trunk or ""), self.dialing.say(number)
        except NumberError as exc:
            raise tasks.CallbackError(f"stored number {number!r}: {exc}") from None

    async def _fail(self, cb_id: int, reason: str) -> None:
        async with self.store.unit_of_work() as uow:
            cb = await uow.session.get(CallbackRequest, cb_id)
            if cb is None or cb.state in ("done", "failed", "cancelled"):
                return
            cb.outcome = "error"
            await tasks.close(uow, cb, "failed", reason[:80])

    async def _place(self, cb_id: int, agent_id: str) -> bool:
        """Store the attempt, then send the Originate (persist before acting)."""
        async with self.store.unit_of_work() as uow:
            cb = await uow.session.get(CallbackRequest, cb_id)
            if cb is None or cb.state != "pending":
                return False
            dial, say = self._dial_strings(cb.number)  # a number that cannot be: fails alone
            cb.tries += 1
            cb.state = "queued"
            if cb.queue not in self.watcher.queues:
                # Stored with no queue or one removed since: the centre's callback queue.
                fallback = self.settings.queue
                log.warning("callback %s: no queue %r, placed in %r", cb_id, cb.queue, fallback)
                cb.queue = fallback or cb.queue
            attempt = CallbackAttempt(callback_id=cb_id, attempt=cb.tries, agent=agent_id)
            uow.session.add(attempt)
            CALLBACKS(uow, "placed", payload(cb, direct_to=agent_id))
            queue, n = cb.queue, cb.tries
            position = 0 if agent_id or cb.attempts > 0 else await self._position(uow, cb)
        variables = {
            "TELEPHONIST_CB_ID": str(cb_id),
            "TELEPHONIST_CB_ATTEMPT": str(n),
            "TELEPHONIST_CB_NUMBER": dial,
            "TELEPHONIST_CB_SAY": say,
            "TELEPHONIST_CB_POSITION": str(position) if position else "",
            "TELEPHONIST_CB_ANNOUNCE": self.settings.announce,
            "TELEPHONIST_QUEUE": queue,
            "TELEPHONIST_TRUNK": self.settings.trunk or "",
            "TELEPHONIST_RING_SECONDS": str(self.settings.ring_seconds),
        }
        if agent_id:
            agent = self.agents[agent_id]
            variables["TELEPHONIST_CB_AGENT"] = agent_id
            variables["TELEPHONIST_CB_AGENT_EXTEN"] = agent.extension
        exten = f"{'ag' if agent_id else 'cb'}{cb_id}x{n}"
        try:
            await self.control.originate(
                Originate(
                    channel=f"Local/{exten}@telephonist-cb-queue/n",
                    context="telephonist-cb-dial",
                    timeout=8 * 3600,  # a placeholder may wait in the queue for hours
                    caller_id=f"Callback <{say}>",
                    variables=variables,
                )
            )
        except AmiError as exc:
            if outcome_unknown(exc):
                # The Originate may have gone out: the placeholder may exist. The try stays
                # queued; reconcile() decides once its grace period is over (placeholder
                # there: kept; gone without an outcome: tried again). Never a second call.
                log.warning("callback %s try %s: %s; outcome unknown, checked later", cb_id, n,
                            exc)  # fmt: skip
                self._reconcile_at = 0.0
                return False
            log.warning("callback %s not placed: %s", cb_id, exc)
            async with self.store.unit_of_work() as uow:
                cb = await uow.session.get(CallbackRequest, cb_id)
                if cb is not None and cb.state == "queued" and cb.tries == n:
                    await self._ended(uow, cb, "not_placed:originate", "", 0, counted=False)
            return False
        log.info("callback %s try %s placed in %s at %s", cb_id, n, queue, position or "end")
        return True

    async def _position(self, uow: UnitOfWork, cb: CallbackRequest) -> int:
        """Where the customer's place is now: behind every caller (or callback) who joined
        before them. 0: at the end."""
        joined = _aware(cb.joined_at)
        state = self.watcher.state.queues.get(cb.queue)
        if joined is None or state is None:
            return 0
        others = (
            await uow.session.execute(
                select(CallbackRequest).where(col(CallbackRequest.state).in_(("queued",)))
            )
        ).scalars()
        kept = {
            placeholder(o.id, o.tries): when
            for o in others
            if o.id is not None and o.id != cb.id
            and (when := _aware(o.joined_at) or _aware(o.requested_at)) is not None
        }  # fmt: skip
        waiting = [(c.channel, c.joined_at) for c in state.callers.values()]
        return rules.kept_place(joined, waiting, kept)

    def _staffed(self, queue: str) -> bool:
        """Would the queue take the placeholder now? Not when it refuses callers while every
        agent is unavailable (``refuse_join_when``, app_queue's joinempty) and they are:
        then no try is made at all (each would only be refused), until somebody logs in."""
        if queue not in self.watcher.queues:
            queue = self.settings.queue or queue
        definition = next((q for q in self.centre.queues if q.name == queue), None)
        if definition is None or not definition.refuse_join_when:
            return True
        state = self.watcher.state.queues.get(queue)
        if self.watcher.loaded == 0 or state is None:
            return False
        refused = set(definition.refuse_join_when)
        return any(
            _CONDITION.get(m.state, m.state) not in refused
            and not (m.paused and "paused" in refused)
            for m in state.members.values()
        )

    def _agent_free(self, agent_id: str) -> bool:
        agent = self.agents.get(agent_id)
        if agent is None:
            return False
        iface = f"PJSIP/{agent.extension}"
        members = [
            q.members[iface] for q in self.watcher.state.queues.values() if iface in q.members
        ]
        return bool(members) and all(
            not m.paused and not m.in_call and m.state == "idle" for m in members
        )

    async def _agents_with_callbacks(self) -> set[str]:
        async with self.store.sessions() as s:
            rows = await s.execute(
                select(col(CallbackAttempt.agent))
                .join(CallbackRequest, col(CallbackRequest.id) == col(CallbackAttempt.callback_id))
                .where(col(CallbackRequest.state).in_(("queued", "connected")))
                .where(col(CallbackAttempt.attempt) == col(CallbackRequest.tries))
                .where(col(CallbackAttempt.agent) != "")
            )
            return {a for (a,) in rows.all()}

    # -- outcomes, from the queue_log ----------------------------------------------------
    async def on_queue_log(self, uow: UnitOfWork, entries: list[QueueLogEntry]) -> None:
        """Inside the ingestion transaction: learn callback steps, missed calls and served
        customers from new queue_log lines (exactly once, like the lines themselves)."""
        recent = datetime.now(UTC) - timedelta(seconds=self.settings.missed.window)
        for e in entries:
            try:
                await self._line(uow, e, recent)
            except DBAPIError:
                raise  # the database: the whole batch is read again
            except Exception:  # one line this code cannot handle must not block the rest
                log.exception("queue_log line %s %s %s skipped", e.callid, e.event, e.data1)

    async def _line(self, uow: UnitOfWork, e: QueueLogEntry, recent: datetime) -> None:
        if e.event.startswith("CALLBACK"):
            await self._callback_line(uow, e)
        elif is_dialer_call(e.callid):
            # The dialer's own calls: an abandoned one heard the campaign's message and its
            # lead is retried by its disposition; its caller ID is the campaign's number.
            # Never a missed call to call back, nor a customer served.
            return
        elif e.event in ("CONNECT", "ABANDON"):
            placed = await _queue_log_line(uow, e.callid, "CALLBACKPLACED")
            if placed is not None:
                await self._placeholder_line(uow, e, placed)
            elif as_utc(e.time) >= recent:
                joined = await _queue_log_line(uow, e.callid, "ENTERQUEUE")
                number = joined.data2 if joined is not None else ""
                if not number:
                    return
                if e.event == "CONNECT":  # their placeholder, if any, goes in sweep()
                    await tasks.served(uow, self.numbering, number, f"{e.queue} by {e.agent}")
                elif self._abandon_counts(e):
                    await self._missed(uow, number, e.queue, "abandoned", e)

    def _abandon_counts(self, e: QueueLogEntry) -> bool:
        missed = self.settings.missed
        try:
            waited = int(e.data3 or 0)
        except ValueError:
            return False
        return missed.abandoned and waited >= missed.min_wait

    async def _missed(
        self, uow: UnitOfWork, number: str, queue: str, source: str, e: QueueLogEntry
    ) -> None:
        try:
            cb, created = await tasks.missed(
                uow,
                policy=self.policy,
                number=number,
                queue=queue,
                source=source,
                window=self.settings.missed.window,
                delay=self.settings.missed.delay,
                note=f"waited {e.data3}s",
            )
        except tasks.NumberRefused as exc:
            log.info("missed call in %s not called back: %s", queue, exc)
            return
        except tasks.CallbackError:
            return  # withheld or garbage caller ID: nobody to call back
        log.info("missed call from %s in %s: task %s (%s)", number, queue, cb.id,
                 "new" if created else "merged")  # fmt: skip

    async def on_redirect(self, uow: UnitOfWork, decision: Decision, caller: str) -> None:
        """A queue redirected a caller (the ACD's redirect hook, in the transaction that
        stores the redirect). Sent nowhere that serves them (hang-up, an outside number, or
        nothing configured): a missed call to call back. Voicemail makes its own task when a
        message is left; another queue, a menu or an extension still serve the caller."""
        missed = self.settings.missed
        kind = (decision.destination or "hangup").partition(":")[0]
        if not missed.redirected or kind not in ("hangup", "outside"):
            return
        try:
            await tasks.missed(
                uow,
                policy=self.policy,
                number=caller,
                queue=decision.queue,
                source="missed",
                window=missed.window,
                delay=missed.delay,
                note=f"{decision.reason} ({decision.detail})"[:200],
            )
        except tasks.CallbackError as exc:
            log.info("missed call not called back: %s", exc)  # withheld, or the policy

    async def _callback_line(self, uow: UnitOfWork, e: QueueLogEntry) -> None:
        try:
            cb_id, attempt = int(e.data1), int(e.data2)
        except ValueError:
            return
        cb = await uow.session.get(CallbackRequest, cb_id)
        if cb is None or cb.tries != attempt or cb.state not in ("queued", "connected"):
            return  # an old attempt, or a task closed meanwhile (cancelled)
        if e.event == "CALLBACKDIAL":
            cb.state = "connected"
            row = await _attempt(uow, cb_id, attempt)
            if row is not None and row.connected_at is None:
                row.connected_at = as_utc(e.time)
            CALLBACKS(uow, "connected", payload(cb, agent=row.agent if row else ""))
        elif e.event == "CALLBACKRESULT":
            status = e.data3.upper()
            outcome = DIAL_OUTCOMES.get(status, "failed")
            talk = int(e.data4) if e.data4.isdigit() else 0
            await self._ended(uow, cb, outcome, status, talk, counted=True)
        elif e.event == "CALLBACKUNPLACED":
            await self._ended(uow, cb, f"not_placed:{e.data3[:20]}", "", 0, counted=False)

    async def _placeholder_line(
        self, uow: UnitOfWork, e: QueueLogEntry, placed: QueueLogEntry
    ) -> None:
        try:
            cb_id, attempt = int(placed.data1), int(placed.data2)
        except ValueError:
            return
        cb = await uow.session.get(CallbackRequest, cb_id)
        if cb is None or cb.tries != attempt or cb.state != "queued":
            return
        if e.event == "CONNECT":
            row = await _attempt(uow, cb_id, attempt)
            if row is not None:
                row.agent = e.agent[:80]
        else:  # the placeholder left the queue without an agent (Originate time-out...)
            await self._ended(uow, cb, "not_placed:ABANDON", "", 0, counted=False)

    async def _ended(
        self,
        uow: UnitOfWork,
        cb: CallbackRequest,
        outcome: str,
        dial_status: str,
        talk: int,
        *,
        counted: bool,
    ) -> None:
        """An attempt is over: store its outcome; done, retry later, or give up."""
        assert cb.id is not None
        now = datetime.now(UTC)
        row = await _attempt(uow, cb.id, cb.tries)
        if row is not None:
            row.ended_at, row.outcome, row.dial_status = now, outcome, dial_status
            row.talk_seconds = talk
        cb.outcome = outcome
        if counted:
            cb.attempts += 1
        CALLBACKS(uow, "attempt", payload(cb, dial_status=dial_status, talk_seconds=talk))
        then = rules.after_try(
            outcome, attempts=cb.attempts, counted=counted, now=now,
            max_attempts=self.settings.max_attempts, retry_delay=self.settings.retry_delay,
        )  # fmt: skip
        if then.state in tasks.CLOSED:
            await tasks.close(uow, cb, then.state, then.reason, now)
            return
        cb.state, cb.due_at = then.state, then.due_at
        if then.retry:
            CALLBACKS(uow, "retry", payload(cb))


async def _attempt(uow: UnitOfWork, cb_id: int, attempt: int) -> CallbackAttempt | None:
    return (
        await uow.session.execute(
            select(CallbackAttempt)
            .where(col(CallbackAttempt.callback_id) == cb_id)
            .where(col(CallbackAttempt.attempt) == attempt)
        )
    ).scalar_one_or_none()


async def _queue_log_line(uow: UnitOfWork, callid: str, event: str) -> QueueLogEntry | None:
    """The first queue_log line of ``event`` for a queue call (CALLBACKPLACED: the call is a
    callback's placeholder; ENTERQUEUE: data2 is the caller's number)."""
    return (
        await uow.session.execute(
            select(QueueLogEntry)
            .where(col(QueueLogEntry.callid) == callid)
            .where(col(QueueLogEntry.event) == event)
            .limit(1)
        )
    ).scalar_one_or_none()


def _aware(t: datetime | None) -> datetime | None:
    return None if t is None else as_utc(t)
