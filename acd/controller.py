"""Sending callers to queues, and deciding what happens when a queue cannot serve them.

``to_queue`` is how every part of telephonist puts a caller in a queue: it checks the queue's
opening hours (after-hours redirect), then hands the call to ``[telephonist-dest]`` with the
queue's maximum wait. When ``Queue()`` returns (full, waited too long, nobody to answer...),
the dialplan brings the call back to the ``acd-redirect`` route, which stores the redirect
with its reason, publishes it (``telephonist/<node>/acd/redirect``) and sends the caller to
the queue's configured destination.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from telephonist.acd.events import ACD
from telephonist.acd.redirects import Decision, after_hours, decide
from telephonist.core import calls
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, Router
from telephonist.core.hours import local_place
from telephonist.core.models import QueueRedirect
from telephonist.core.prompts import Prompter
from telephonist.core.stasis import CallEnded
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.acd")

RedirectHook = Callable[[UnitOfWork, Decision, str], Awaitable[None]]


class AcdController:
    def __init__(
        self,
        store: Store,
        centre: Centre,
        router: Router,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.centre = centre
        self.router = router
        self.clock = clock
        self.redirect_hooks: list[RedirectHook] = []
        """Run inside the transaction that stores each redirect (callbacks makes a missed
        call's task there): ``hook(uow, decision, caller_number)``."""
        self.queues = {q.name: q for q in centre.queues}
        router.handle("queue", self.take)

    async def take(self, session: Prompter, dest: Destination, line: str) -> None:
        """The ``queue:`` destination (an IVR option, another queue's redirect...)."""
        await self.to_queue(session, dest.target, line)

    async def line(self, session: Prompter) -> None:
        """Route ``queue``: a line whose callers go straight to a queue, answered at once or
        only when an agent picks up (the line's answer policy)."""
        line = self.centre.line(session.line)
        if line is None or line.queue is None:
            log.error("call %s: line %r has no queue", session.id, session.line)
            return
        await calls.record_start(self.store, session, answered=line.answer == "immediate")
        if line.answer == "immediate":
            await session.answer()
        await self.to_queue(session, line.queue, line.name, ringing=line.answer == "on_pickup")
        await calls.set_outcome(self.store, session.id, f"queued:{line.queue}")

    async def to_queue(
        self, session: Prompter, queue_name: str, line: str, *, ringing: bool = False
    ) -> None:
        """Put the caller in ``queue_name`` (or redirect them at once if it is closed).
        ``ringing``: the caller hears ringing, not hold music, and stays unanswered until an
        agent answers (app_queue's ``r`` option)."""
        queue = self.queues[queue_name]
        closed = after_hours(queue, self.clock())
        if closed is not None:
            await self._redirect(session, closed, line)
            return
        survey = queue.survey
        # "c": the caller stays in the dialplan when the agent hangs up first (the survey).
        options = ("r" if ringing else "") + ("c" if survey else "")
        for name, value in (
            ("TELEPHONIST_QUEUE", queue.name),
            ("TELEPHONIST_QUEUE_OPTIONS", options),
            ("TELEPHONIST_SURVEY", survey.prompt if survey else ""),
            ("TELEPHONIST_SURVEY_THANKS", survey.thanks if survey else ""),
            ("TELEPHONIST_SURVEY_TRIES", str(survey.tries) if survey else ""),
            ("TELEPHONIST_SURVEY_TIMEOUT", str(survey.timeout) if survey else ""),
            ("TELEPHONIST_MAX_WAIT", str(queue.max_wait) if queue.max_wait else ""),
            ("TELEPHONIST_LINE", line),
        ):
            await session.set_var(name, value)
        await session.continue_in_dialplan("telephonist-dest", "queue")

    async def redirect(self, session: Prompter) -> None:
        """Route ``acd-redirect``: the caller came back from Queue()."""
        queue_name = await session.get_var("TELEPHONIST_QUEUE")
        reason = await session.get_var("TELEPHONIST_REDIRECT_REASON")
        # Taken out of the queue by telephonist (no answer, or max_wait enforced to the
        # second): app_queue set no status, so the reason stands in for it.
        taken_out = {"no_answer": "CONTINUE", "max_wait": "TIMEOUT"}
        status = taken_out.get(reason) or await session.get_var("QUEUESTATUS")
        queue = self.queues.get(queue_name)
        if queue is None:
            log.error("call %s back from unknown queue %r (%s)", session.id, queue_name, status)
            return
        try:
            await self._redirect(session, decide(queue, status), session.line)
        except CallEnded:
            pass

    async def _redirect(self, session: Prompter, decision: Decision, line: str) -> None:
        at = datetime.now(UTC)
        day, minute, week = local_place(at, ZoneInfo(self.centre.timezone))
        async with self.store.unit_of_work() as uow:
            row = QueueRedirect(
                at=at,
                local_day=day,
                local_minute=minute,
                local_week=week,
                queue=decision.queue,
                reason=decision.reason,
                detail=decision.detail,
                status=decision.status,
                destination=decision.destination or "",
                channel_id=session.id,
                caller_number=session.caller_number,
            )
            uow.session.add(row)
            await uow.session.flush()
            ACD(
                uow,
                "redirect",
                {
                    "redirect_id": row.id,
                    "queue": row.queue,
                    "reason": row.reason,
                    "detail": row.detail,
                    "status": row.status,
                    "destination": row.destination,
                    "channel_id": row.channel_id,
                    "caller_number": row.caller_number,
                    "at": row.at,
                },
            )
            for hook in self.redirect_hooks:
                await hook(uow, decision, session.caller_number)
        log.info(
            "call %s: %s %s (%s) -> %s",
            session.id, decision.queue, decision.reason, decision.detail, decision.destination,
        )  # fmt: skip
        outcome = f"redirected:{decision.reason}:{decision.destination or 'none'}"
        await calls.set_outcome(self.store, session.id, outcome)
        if decision.destination is None:
            # Nothing configured: tell the caller rather than leave them in silence.
            await session.answer()
            await session.play("sound:all-circuits-busy-now")
            await session.hangup()
            return
        await self.router.send(session, Destination.parse(decision.destination), line)
