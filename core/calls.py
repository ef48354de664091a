"""Call records: every call telephonist takes is stored and announced (``calls`` domain).

Topics: ``<prefix>/<node>/calls/started`` and ``.../calls/ended``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import col

from core.models import Call, utcnow
from core.stasis import CallSession
from core.storage import Store


async def record_start(store: Store, session: CallSession, *, answered: bool = False) -> Call:
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
        uow.emit("calls", "started", _public(call))
    return call


async def record_end(store: Store, channel_id: str, outcome: str) -> None:
    async with store.unit_of_work() as uow:
        result = await uow.session.execute(select(Call).where(col(Call.channel_id) == channel_id))
        call = result.scalar_one_or_none()
        if call is None or call.ended_at is not None:
            return
        call.ended_at = utcnow()
        call.outcome = outcome
        uow.emit("calls", "ended", _public(call))


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
        uow.emit("calls", "ended", _public(call))


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
