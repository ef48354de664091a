"""Call records: every call telephonist takes is stored and announced (``calls`` domain).

Topics: ``<prefix>/<node>/calls/started`` and ``.../calls/ended``.

No call is left without its record closed, and none without a record:
- :class:`CallReconciler` closes (outcome ``lost``) the records of calls whose channel is gone
  while nobody was there to see it end (serve killed mid-call, Asterisk restarted);
- :func:`on_queue_log` stores the calls the dialplan took alone while serve was down (the
  fallback writes a ``FALLBACK`` line to the queue_log, ingested once when serve is back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from telephonist.core.ami import AmiClient, AmiError, list_channels
from telephonist.core.models import Call, QueueLogEntry, as_utc, utcnow
from telephonist.core.notify import Notifier
from telephonist.core.prompts import Prompter
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.calls")

CALLS = Notifier("calls", "started", "ended", "fallback", "recorded")
"""Call records' events: see README, "Events"."""


async def record_start(store: Store, session: Prompter, *, answered: bool = False) -> Call:
    async with store.unit_of_work() as uow:
        call = Call(
            answered_at=utcnow() if answered else None,
            channel_id=session.id,
            line=session.line,
            route=session.route,
            caller_number=session.caller_number,
            caller_name=session.caller_name,
            dialed=session.dialed,
        )
        uow.session.add(call)
        await uow.session.flush()
        CALLS(uow, "started", _public(call))
    return call


async def record_end(store: Store, channel_id: str, outcome: str) -> None:
    async with store.unit_of_work() as uow:
        result = await uow.session.execute(select(Call).where(col(Call.channel_id) == channel_id))
        call = result.scalar_one_or_none()
        if call is None or call.ended_at is not None:
            return
        call.ended_at = utcnow()
        call.outcome = outcome
        CALLS(uow, "ended", _public(call))


async def set_outcome(store: Store, channel_id: str, outcome: str) -> None:
    """Correct a call's outcome after it came back to telephonist (e.g. after a FastAGI
    decision) and announce it again."""
    async with store.unit_of_work() as uow:
        result = await uow.session.execute(select(Call).where(col(Call.channel_id) == channel_id))
        call = result.scalar_one_or_none()
        if call is None:
            return
        call.outcome = outcome
        call.ended_at = utcnow()
        CALLS(uow, "ended", _public(call))


async def mark_answered(store: Store, channel_id: str) -> None:
    async with store.unit_of_work() as uow:
        result = await uow.session.execute(select(Call).where(col(Call.channel_id) == channel_id))
        call = result.scalar_one_or_none()
        if call is not None and call.answered_at is None:
            call.answered_at = utcnow()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _public(call: Call) -> dict[str, object]:
    return {
        "call_id": call.id,
        "channel_id": call.channel_id,
        "line": call.line,
        "route": call.route,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "dialed": call.dialed,
        "started_at": _aware(call.started_at),
        "answered_at": _aware(call.answered_at),
        "ended_at": _aware(call.ended_at),
        "outcome": call.outcome,
    }


class CallReconciler:
    """At every AMI connect and every ``every`` seconds: the open call records whose channel
    Asterisk no longer has are closed with outcome ``lost`` (their end was not seen)."""

    def __init__(
        self,
        store: Store,
        ami: AmiClient,
        *,
        busy: Callable[[], Collection[str]] = frozenset,
        every: float = 60.0,
    ) -> None:
        """``busy()``: channels whose route is still running here (never judged lost)."""
        self.store, self.ami, self.every, self.busy = store, ami, every, busy
        self._wake = asyncio.Event()
        ami.on_connect(self._connected)

    async def _connected(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.every)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self.ami.link.is_up:
                continue
            try:
                await self.reconcile()
            except AmiError as exc:
                log.warning("call records not reconciled: %s", exc)

    async def reconcile(self, grace: float = 2.0) -> int:
        """Close the lost ones (older than ``grace`` seconds); returns how many."""
        live = set(await list_channels(self.ami, "Uniqueid")) | set(self.busy())
        cutoff = utcnow() - timedelta(seconds=grace)
        closed = 0
        async with self.store.unit_of_work() as uow:
            rows = (
                await uow.session.execute(
                    select(Call)
                    .where(col(Call.ended_at).is_(None))
                    .where(col(Call.started_at) < cutoff)
                )
            ).scalars()
            for call in list(rows):
                if call.channel_id in live:
                    continue
                call.ended_at, call.outcome = utcnow(), "lost"
                CALLS(uow, "ended", _public(call))
                closed += 1
        if closed:
            log.warning("%d call record(s) closed as lost (their end was not seen)", closed)
        return closed


async def on_queue_log(uow: UnitOfWork, entries: list[QueueLogEntry]) -> None:
    """Store the calls the dialplan fallback took while serve was down (``FALLBACK`` lines:
    data1 the line, data2 the caller's number, data3 where they were sent)."""
    for e in entries:
        if e.event != "FALLBACK" or not e.callid:
            continue
        known = (
            await uow.session.execute(select(Call).where(col(Call.channel_id) == e.callid))
        ).scalar_one_or_none()
        if known is not None:
            continue
        at = as_utc(e.time)
        call = Call(
            channel_id=e.callid, line=e.data1[:40], route="fallback",
            caller_number=e.data2[:80], started_at=at, ended_at=at,
            outcome=f"fallback:{e.data3}"[:40],
        )  # fmt: skip
        uow.session.add(call)
        await uow.session.flush()
        CALLS(uow, "fallback", _public(call))
