"""Asking for a callback on the phone: confirm a number, judge it, store the task, and only
then say thank you. Used by the IVR's ``callback:`` option, the queue's callback digit and the
``callback:<queue>`` destination (:class:`CallbackOffer`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from telephonist.callbacks import tasks
from telephonist.callbacks.events import CALLBACKS
from telephonist.callbacks.policy import NumberPolicy
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination
from telephonist.core.models import CallbackRequest
from telephonist.core.prompts import Prompter, confirm_number
from telephonist.core.storage import Store

log = logging.getLogger("telephonist.callbacks")


async def request_callback(
    session: Prompter,
    store: Store,
    policy: NumberPolicy,
    centre: Centre,
    task: Callable[[str], CallbackRequest],
) -> str:
    """A caller asks to be called back: confirm a number (theirs or one they type), store the
    task — only a number the centre's policy allows, at most ``requests_per_caller`` per
    caller number, the number's open task if it has one — and only then say thank you.

    A refused number is explained ("your call cannot be completed as dialled") and the caller
    may type another (three tries); a caller over the limit hears that the service is not
    available on their line. Returns ``stored``, ``refused``, ``limited`` or ``none``."""
    refused: set[str] = set()
    requested_by = tasks.caller_key(policy.numbering, session.caller_number)
    rules = centre.callbacks
    for _ in range(3):
        number = await confirm_number(session, refused)
        if number is None:
            return "none"
        cb = task(number)
        cb.requested_by = requested_by
        try:
            async with store.unit_of_work() as uow:
                cb, created = await tasks.create(
                    uow, cb, policy=policy,
                    limit=(rules.requests_per_caller, rules.requests_window),
                )  # fmt: skip
        except tasks.NumberRefused as exc:
            log.info("call %s: callback to %s refused: %s", session.id, number, exc.verdict.why)
            await _tell(store, "refused", session, cb, exc.verdict.reason)
            refused.add(number)
            await session.play("sound:cannot-complete-as-dialed")
            continue
        except tasks.TooManyRequests as exc:
            log.warning("call %s: %s", session.id, exc)
            await _tell(store, "limited", session, cb, "requests_per_caller")
            await session.play("sound:im-sorry")
            await session.play("sound:feature-not-avail-line")
            return "limited"
        log.info("call %s: callback %s for %s (%s)", session.id, cb.id, number,
                 "new" if created else "already open")  # fmt: skip
        await session.play("sound:auth-thankyou")  # the promise, after the record exists
        return "stored"
    return "refused"


async def _tell(
    store: Store, event: str, session: Prompter, cb: CallbackRequest, reason: str
) -> None:
    """``callbacks/refused`` or ``callbacks/limited``: a request that made no task, for the
    records and for CRMs (who asked, for which number, why)."""
    async with store.unit_of_work() as uow:
        CALLBACKS(uow, event, {"number": cb.number, "queue": cb.queue,
                                      "source": cb.source, "requested_by": cb.requested_by,
                                      "channel_id": session.id, "reason": reason})  # fmt: skip


class CallbackOffer:
    """The ``callback:<queue>`` destination: the caller asks to be called back by that queue
    (their place: as if they had joined it now — virtual hold), then the call ends."""

    def __init__(self, store: Store, policy: NumberPolicy, centre: Centre) -> None:
        self.store, self.policy, self.centre = store, policy, centre

    async def __call__(self, session: Prompter, dest: Destination, line: str) -> None:
        def task(number: str) -> CallbackRequest:
            return CallbackRequest(number=number, queue=dest.target, channel_id=session.id,
                                   line=line, joined_at=datetime.now(UTC))  # fmt: skip

        await session.answer()
        result = await request_callback(session, self.store, self.policy, self.centre, task)
        if result != "stored":
            await session.play("sound:goodbye")
        await session.hangup()
