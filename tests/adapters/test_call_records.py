"""Call records are never left open nor missing: lost ends are closed, fallback calls stored
(a fake AMI lists the channels; the store is real, on both databases)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from telephonist.core import calls
from telephonist.core.models import Call, QueueLogEntry, utcnow
from telephonist.core.storage import Store


class _Ami:
    def __init__(self, channels: list[str]) -> None:
        self.channels = channels
        self.link = SimpleNamespace(is_up=True)

    def on_connect(self, handler: Any) -> None:
        pass

    async def send(self, action: dict[str, str], **_: Any) -> Any:
        return [{"Event": "CoreShowChannel", "Uniqueid": c} for c in self.channels]


async def test_records_of_vanished_channels_are_closed_as_lost(store: Store) -> None:
    old = utcnow() - timedelta(minutes=5)
    async with store.unit_of_work() as uow:
        for channel in ("gone", "live", "busy-here"):
            uow.session.add(Call(channel_id=channel, line="l", route="ivr", started_at=old))
        uow.session.add(Call(channel_id="done", line="l", route="ivr", started_at=old,
                             ended_at=old, outcome="completed"))  # fmt: skip
    reconciler = calls.CallReconciler(
        store, _Ami(["live"]),  # type: ignore[arg-type]
        busy=lambda: {"busy-here"},
    )  # fmt: skip
    assert await reconciler.reconcile() == 1
    assert await reconciler.reconcile() == 0  # nothing closed twice
    async with store.sessions() as s:
        rows = {c.channel_id: c for c in (await s.execute(select(Call))).scalars()}
    assert rows["gone"].outcome == "lost" and rows["gone"].ended_at is not None
    assert rows["live"].ended_at is None and rows["busy-here"].ended_at is None
    assert rows["done"].outcome == "completed"


async def test_fallback_calls_are_stored_once(store: Store) -> None:
    at = utcnow()
    line = QueueLogEntry(time=at, callid="1796-1.1", queue="NONE", agent="NONE",
                         event="FALLBACK", data1="empty-line", data2="5550100",
                         data3="queue:empty-q")  # fmt: skip
    for _ in range(2):
        async with store.unit_of_work() as uow:
            await calls.on_queue_log(uow, [line])
    async with store.sessions() as s:
        (call,) = (await s.execute(select(Call).where(col(Call.route) == "fallback"))).scalars()
    assert (call.line, call.caller_number, call.outcome) == (
        "empty-line", "5550100", "fallback:queue:empty-q",
    )  # fmt: skip
