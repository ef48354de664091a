"""Creating and closing callback tasks (pure database work, no telephony).

Every path that creates a callback goes through here: the IVR and the queue (a caller asked),
missed and abandoned calls, voicemail, the CLI. The rules that make telephonist call nobody
twice live here too: one open task per number for missed calls, and a task cancelled when
its customer calls again and is served.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.callbacks.events import CALLBACKS
from telephonist.callbacks.policy import NumberPolicy, Verdict
from telephonist.core.models import CallbackRequest
from telephonist.core.numbers import NumberError, Numbering
from telephonist.core.storage import UnitOfWork

OPEN = ("pending", "queued", "connected")
"""States of a task that will still call the customer (or is calling them now)."""
CLOSED = ("done", "failed", "cancelled")
AUTOMATIC = ("abandoned", "missed", "voicemail")
"""Sources of tasks nobody asked for explicitly: cancelled when the customer is served."""


EXPLICIT = ("ivr", "queue")
"""Sources where a caller asked: rate-limited per caller number."""


class CallbackError(ValueError):
    """A bad callback request: the message names the field."""


class NumberRefused(CallbackError):
    """The centre's number policy does not allow dialling this number back."""

    def __init__(self, number: str, verdict: Verdict) -> None:
        super().__init__(f"number: {number!r} is not called back: {verdict.why}")
        self.verdict = verdict


class TooManyRequests(CallbackError):
    """This caller number asked for more callbacks than ``requests_per_caller`` allows."""


def identity(numbering: Numbering, number: str, field: str = "number") -> str:
    """The customer's key for ``number`` (E.164 when valid, else digits: one customer, one
    task, whichever way the number was written), or :class:`CallbackError` naming ``field``.

    Only digits (and a leading ``+``) ever reach the dialplan: a number is the one value a
    caller or a contact list controls that ends up in a ``Dial()`` string.

    >>> identity(Numbering("FR"), "1;Hangup")
    Traceback (most recent call last):
    ...
    telephonist.callbacks.tasks.CallbackError: number: '1;Hangup' has characters other than ...
    >>> identity(Numbering("FR"), "06 12 34 56 78"), identity(Numbering("FR"), "+3312345")
    ('+33612345678', '3312345')
    """
    try:
        return numbering.identity(number, field)
    except NumberError as exc:
        raise CallbackError(str(exc)) from None


def payload(cb: CallbackRequest, **extra: Any) -> dict[str, Any]:
    return {
        "callback_id": cb.id,
        "number": cb.number,
        "queue": cb.queue,
        "source": cb.source,
        "state": cb.state,
        "attempts": cb.attempts,
        "outcome": cb.outcome,
        "due_at": cb.due_at,
        "agent": cb.agent,
        **extra,
    }


def allowed(policy: NumberPolicy, number: str, override: str = "") -> str:
    """``number``'s identity (:func:`identity`) if the centre's policy allows it (or an
    admin overrides it: ``override`` says who and is kept); else :class:`NumberRefused`. Emergency
    numbers are never dialled back, override or not."""
    key = identity(policy.numbering, number)
    verdict = policy.check(number)
    if not verdict.allowed and (not override or verdict.reason == "emergency"):
        raise NumberRefused(number, verdict)
    return key


async def open_task(uow: UnitOfWork, digits: str) -> CallbackRequest | None:
    """The oldest task that will still call ``digits``, if any."""
    return (
        await uow.session.execute(
            select(CallbackRequest)
            .where(col(CallbackRequest.number) == digits)
            .where(col(CallbackRequest.state).in_(OPEN))
            .order_by(col(CallbackRequest.id))
            .limit(1)
        )
    ).scalar_one_or_none()


async def create(
    uow: UnitOfWork,
    cb: CallbackRequest,
    *,
    policy: NumberPolicy,
    limit: tuple[int, int] | None = None,
    merge: bool = True,
    override: str = "",
    now: datetime | None = None,
) -> tuple[CallbackRequest, bool]:
    """Store an explicit request (IVR, queue, CLI) and publish ``callbacks/requested``.

    The number must pass ``policy`` (:func:`allowed`). With ``merge``, a number that already
    has an open task gets that task (its ``merged`` count goes up), never a second call.
    ``limit`` = (requests, seconds): the caller number ``cb.requested_by`` may have made at
    most that many requests in that time (:class:`TooManyRequests`). Returns (task, created).
    """
    now = now or datetime.now(UTC)
    cb.number = allowed(policy, cb.number, override)
    if cb.requested_by and cb.requested_by != "anonymous":
        cb.requested_by = caller_key(policy.numbering, cb.requested_by)
    if merge:
        existing = await open_task(uow, cb.number)
        if existing is not None:
            existing.merged += 1
            CALLBACKS(uow, "merged", payload(existing, merged=existing.merged,
                                                    via=cb.source))  # fmt: skip
            return existing, False
    if limit is not None and cb.requested_by:
        most, seconds = limit
        made = (
            await uow.session.execute(
                select(func.count())
                .select_from(CallbackRequest)
                .where(col(CallbackRequest.requested_by) == cb.requested_by)
                .where(col(CallbackRequest.source).in_(EXPLICIT))
                .where(col(CallbackRequest.requested_at) >= now - timedelta(seconds=seconds))
            )
        ).scalar_one()
        if made >= most:
            raise TooManyRequests(
                f"caller {cb.requested_by}: {made} callbacks asked for within {seconds}s "
                f"(callbacks.requests_per_caller: {most})"
            )
    cb.requested_at = now
    uow.session.add(cb)
    await uow.session.flush()
    extra = {"override": override} if override else {}
    CALLBACKS(uow, "requested", payload(cb, channel_id=cb.channel_id, **extra))
    return cb, True


async def missed(
    uow: UnitOfWork,
    *,
    policy: NumberPolicy,
    number: str,
    queue: str,
    source: str,
    window: int,
    delay: int,
    now: datetime | None = None,
    note: str = "",
) -> tuple[CallbackRequest, bool]:
    """A missed call from ``number``: a new task, or the open one requested within
    ``window`` seconds (its ``merged`` count goes up). Returns (task, created). A caller ID
    the policy refuses makes no task (:class:`NumberRefused`)."""
    now = now or datetime.now(UTC)
    digits = allowed(policy, number)
    since = now - timedelta(seconds=window)
    existing = (
        await uow.session.execute(
            select(CallbackRequest)
            .where(col(CallbackRequest.number) == digits)
            .where(col(CallbackRequest.state).in_(OPEN))
            .where(col(CallbackRequest.requested_at) >= since)
            .order_by(col(CallbackRequest.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.merged += 1
        CALLBACKS(uow, "merged", payload(existing, merged=existing.merged, via=source))
        return existing, False
    cb = CallbackRequest(
        number=digits,
        queue=queue,
        source=source,
        requested_at=now,
        due_at=now + timedelta(seconds=delay),
        note=note,
    )
    uow.session.add(cb)
    await uow.session.flush()
    CALLBACKS(uow, "created", payload(cb))
    return cb, True


async def close(
    uow: UnitOfWork, cb: CallbackRequest, state: str, reason: str, now: datetime | None = None
) -> None:
    assert state in CLOSED
    cb.state = state
    cb.closed_at = now or datetime.now(UTC)
    cb.closed_reason = reason[:80]
    CALLBACKS(uow, state, payload(cb, reason=cb.closed_reason))


async def cancel(uow: UnitOfWork, callback_id: int, reason: str) -> CallbackRequest:
    """An admin cancels a task not done yet (``callback cancel``); CallbackError otherwise.
    A placeholder waiting in a queue leaves it at the service's next sweep."""
    cb = await uow.session.get(CallbackRequest, callback_id)
    if cb is None:
        raise CallbackError(f"no callback {callback_id}")
    if cb.state not in ("pending", "queued"):
        raise CallbackError(f"callback {callback_id} is {cb.state}: nothing to cancel")
    await close(uow, cb, "cancelled", reason)
    return cb


async def retry(uow: UnitOfWork, callback_id: int, by: str) -> CallbackRequest:
    """A failed, cancelled or pending task is tried again now with a fresh set of attempts
    (``callback retry``); CallbackError otherwise."""
    cb = await uow.session.get(CallbackRequest, callback_id)
    if cb is None:
        raise CallbackError(f"no callback {callback_id}")
    if cb.state not in ("failed", "cancelled", "pending"):
        raise CallbackError(f"callback {callback_id} is {cb.state}: cannot retry")
    cb.state, cb.due_at, cb.attempts = "pending", None, 0
    cb.closed_at, cb.closed_reason = None, ""
    CALLBACKS(uow, "retry", payload(cb, by=by))
    return cb


def caller_key(numbering: Numbering, caller: str) -> str:
    """A caller ID as the key its requests are counted under (``anonymous`` if it is none).

    >>> caller_key(Numbering("FR"), "0612345678"), caller_key(Numbering("FR"), "<unknown>")
    ('+33612345678', 'anonymous')
    """
    try:
        return numbering.identity(caller)
    except NumberError:
        return "anonymous"


async def served(
    uow: UnitOfWork, numbering: Numbering, number: str, how: str
) -> list[CallbackRequest]:
    """The customer called again and an agent took the call: their automatic tasks that
    have not started yet are cancelled. Returns the tasks cancelled (a queued one's
    placeholder must then leave the queue)."""
    try:
        digits = numbering.identity(number)
    except NumberError:
        return []
    rows = (
        await uow.session.execute(
            select(CallbackRequest)
            .where(col(CallbackRequest.number) == digits)
            .where(col(CallbackRequest.state).in_(("pending", "queued")))
            .where(col(CallbackRequest.source).in_(AUTOMATIC))
        )
    ).scalars()
    cancelled = []
    for cb in rows:
        await close(uow, cb, "cancelled", f"customer served: {how}")
        cancelled.append(cb)
    return cancelled
