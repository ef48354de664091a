"""Queue calls from the queue_log: the facts every queue and agent report counts.

Why the queue_log (and not CDR or CEL): it is what app_queue itself writes for every queue
event — the wait when answered (CONNECT), the talk and who hung up (COMPLETECALLER /
COMPLETEAGENT), the position and wait of a caller who left (ABANDON, EXITWITHTIMEOUT,
EXITEMPTY, EXITWITHKEY) — to the second, in order, on disk, also while telephonist is down;
report tools (QueueMetrics among them) read nothing else. telephonist already ingests it
exactly once; :class:`QueueCallBuilder` runs in that same transaction, so each visit to a
queue becomes one ``queue_calls`` row exactly once.

A SURVEY line (written by the dialplan's post-call survey, ``extensions.conf``) gives the
visit the caller's score.

A visit's kind: ``outbound`` for the dialer's calls (unique ids ``dial-N``), ``callback`` for
a callback's placeholder (its CALLBACKPLACED line comes first), ``inbound`` for the rest —
only inbound calls are offered calls of a queue.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telephonist.core.centre import Centre
from telephonist.core.hours import local_place
from telephonist.core.models import QueueCall, QueueLogEntry, QueueRedirect, as_utc, is_dialer_call
from telephonist.core.numbers import NumberError, Numbering
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.reports")

LEFT = {"ABANDON": "abandoned", "EXITWITHTIMEOUT": "timeout", "EXITEMPTY": "empty"}
"""Events of a caller who left without an answer: data1 position, data3 seconds waited."""

LINK_DAYS = 90
"""How far back a visit is linked to the caller's earlier ones (``report fcr --days`` is at
most this)."""
ENDED = {"COMPLETECALLER": "caller", "COMPLETEAGENT": "agent"}
"""Events of an answered call's end: data1 wait, data2 talk seconds."""


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


class QueueCallBuilder:
    """A queue_log hook: each line changes the visit it belongs to (see the module)."""

    def __init__(self, centre: Centre, numbering: Numbering | None = None) -> None:
        self.zone = ZoneInfo(centre.timezone)
        self.wrapups = {q.name: q.wrapup for q in centre.queues}
        self.numbering = numbering or Numbering()
        """Callers are stored as the centre's customer key (core/numbers.py): the abandoned
        list finds their callback tasks, first-contact resolution their next calls."""

    def caller(self, raw: str) -> str:
        """The customer key; empty for a caller with no number (``anonymous``...)."""
        if not any(ch.isdigit() for ch in raw):
            return ""
        try:
            return self.numbering.identity(raw)[:80]
        except NumberError:
            return raw[:80]

    async def __call__(self, uow: UnitOfWork, entries: list[QueueLogEntry]) -> None:
        await self.apply(uow.session, entries)

    async def apply(self, s: AsyncSession, entries: Iterable[QueueLogEntry]) -> int:
        """Apply the lines in order; returns how many visits were opened."""
        opened = 0
        placeholders: set[str] = set()
        for e in entries:
            if e.event == "CALLBACKPLACED":
                placeholders.add(e.callid)
            elif e.event == "ENTERQUEUE":
                opened += await self._enter(s, e, e.callid in placeholders)
            elif e.event == "CONNECT" or e.event in ENDED or e.event in LEFT:
                await self._change(s, e)
            elif e.event in ("EXITWITHKEY", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"):
                await self._change(s, e)
            elif e.event == "SURVEY":
                await self._change(s, e)
        return opened

    async def _enter(self, s: AsyncSession, e: QueueLogEntry, placeholder: bool) -> int:
        exists = await s.execute(
            select(col(QueueCall.id)).where(
                (col(QueueCall.callid) == e.callid)
                & (col(QueueCall.queue) == e.queue)
                & (col(QueueCall.entered_at) == e.time)
            )
        )
        if exists.first() is not None:
            return 0  # a rebuild over lines already applied
        if is_dialer_call(e.callid):
            kind = "outbound"
        elif placeholder or await _placed(s, e.callid):
            kind = "callback"
        else:
            kind = "inbound"
        day, minute, week = local_place(e.time, self.zone)
        caller = self.caller(e.data2)
        visit = QueueCall(
            callid=e.callid, queue=e.queue, kind=kind, caller=caller, entered_at=e.time,
            local_day=day, local_minute=minute, local_week=week, position=_int(e.data3),
        )  # fmt: skip
        if caller:
            await self._link(s, visit)
        s.add(visit)
        await s.flush()
        return 1

    async def _link(self, s: AsyncSession, visit: QueueCall) -> None:
        """Keep ``next_at`` for first-contact resolution, whatever order the lines come in:
        the new visit's is the caller's earliest later inbound visit; an inbound visit is the
        next of the caller's earlier visits (within :data:`LINK_DAYS`) that had none or a
        later one. Index ranges on (caller, entered_at)."""
        same = col(QueueCall.caller) == visit.caller
        later = await s.execute(
            select(func.min(col(QueueCall.entered_at)))
            .where(same & (col(QueueCall.kind) == "inbound"))
            .where(col(QueueCall.entered_at) > visit.entered_at)
        )
        visit.next_at = later.scalar_one_or_none()
        if visit.kind != "inbound":
            return
        await s.execute(
            update(QueueCall)
            .where(same & (col(QueueCall.entered_at) < visit.entered_at))
            .where(col(QueueCall.entered_at) >= visit.entered_at - timedelta(days=LINK_DAYS))
            .where(col(QueueCall.next_at).is_(None) | (col(QueueCall.next_at) > visit.entered_at))
            .values(next_at=visit.entered_at)
            .execution_options(synchronize_session="fetch")
        )

    async def _change(self, s: AsyncSession, e: QueueLogEntry) -> None:
        visit = (
            await s.execute(
                select(QueueCall)
                .where((col(QueueCall.callid) == e.callid) & (col(QueueCall.queue) == e.queue))
                .where(col(QueueCall.entered_at) <= e.time)
                .order_by(col(QueueCall.entered_at).desc(), col(QueueCall.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if visit is None:
            return  # its ENTERQUEUE was before the lines telephonist has
        if e.event == "CONNECT":
            visit.outcome, visit.agent = "answered", e.agent[:80]
            visit.wait, visit.answered_at = _int(e.data1), e.time
        elif e.event in ENDED:
            visit.talk, visit.ended_by, visit.ended_at = _int(e.data2), ENDED[e.event], e.time
            visit.wrap = self.wrapups.get(e.queue, 0)
            if visit.outcome != "answered":  # a CONNECT lost before telephonist's lines
                visit.outcome, visit.agent, visit.wait = "answered", e.agent[:80], _int(e.data1)
        elif e.event in LEFT:
            visit.outcome, visit.ended_at = LEFT[e.event], e.time
            visit.left_position, visit.wait = _int(e.data1), _int(e.data3)
        elif e.event == "SURVEY":  # data1: the score, empty when no valid key came
            visit.surveyed = True
            score = _int(e.data1)
            visit.csat = score if 1 <= score <= 5 else None
        elif e.event == "EXITWITHKEY":
            visit.outcome, visit.ended_at = "key", e.time
            visit.left_position, visit.wait = _int(e.data2), _int(e.data4)
        else:  # a transfer: data3 wait, data4 talk (TRANSFER)
            visit.ended_by, visit.ended_at = "transfer", e.time
            if e.event == "TRANSFER":
                visit.talk = _int(e.data4)
            visit.wrap = self.wrapups.get(e.queue, 0)


async def _placed(s: AsyncSession, callid: str) -> bool:
    found = await s.execute(
        select(col(QueueLogEntry.id))
        .where(col(QueueLogEntry.callid) == callid)
        .where(col(QueueLogEntry.event) == "CALLBACKPLACED")
        .limit(1)
    )
    return found.first() is not None


async def rebuild(
    store: Store, centre: Centre, numbering: Numbering | None = None, batch: int = 5000
) -> int:
    """Build the visits from the queue_log lines already stored (after an upgrade, or a
    change of the centre's time zone: the day and minute are placed again, the redirects'
    too). Short transactions of ``batch`` lines; returns how many visits there are."""
    builder = QueueCallBuilder(centre, numbering)
    async with store.unit_of_work() as uow:
        await uow.session.execute(QueueCall.__table__.delete())  # type: ignore[attr-defined]
    async for uow, lines in _batches(store, QueueLogEntry, batch):
        await builder.apply(uow.session, lines)
    async for _, redirects in _batches(store, QueueRedirect, batch):
        for row in redirects:  # placed again in the centre's zone
            row.local_day, row.local_minute, row.local_week = local_place(
                as_utc(row.at), builder.zone
            )
    async with store.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(QueueCall))).scalar_one())


async def _batches(
    store: Store, model: type[QueueLogEntry] | type[QueueRedirect], size: int
) -> AsyncIterator[tuple[UnitOfWork, list[Any]]]:
    """The rows of ``model`` in id order, ``size`` at a time, each batch in its own short
    transaction (committed when the loop asks for the next)."""
    last = 0
    while True:
        async with store.unit_of_work() as uow:
            rows = list(
                (
                    await uow.session.execute(
                        select(model).where(col(model.id) > last).order_by(col(model.id))
                        .limit(size)
                    )
                ).scalars()
            )  # fmt: skip
            if not rows:
                return
            yield uow, rows
            last = rows[-1].id or last  # type: ignore[attr-defined]
