"""Deliver the outbox to MQTT, in order, at least once.

Events are written to the ``outbox`` table in the same transaction as the change they report
(:meth:`core.storage.Store.unit_of_work`). This publisher sends them oldest first with QoS 1,
marks each sent once the broker has acknowledged it, and when the broker is away simply waits
and reconnects (capped, jittered back-off): nothing is lost, nothing overtakes.

Payloads are the JSON envelope written by ``UnitOfWork.emit`` plus ``seq`` (the outbox id),
which a consumer can use to drop the rare duplicate after a reconnect.
"""

from __future__ import annotations

import asyncio
import json

import aiomqtt

from telephonist.core import metrics
from telephonist.core.backoff import Backoff
from telephonist.core.loops import retry_after
from telephonist.core.settings import MqttSettings
from telephonist.core.storage import Store
from telephonist.core.supervision import Link


class OutboxPublisher:
    def __init__(
        self, store: Store, mqtt: MqttSettings, *, batch: int = 200, coalesce: float = 0.02
    ) -> None:
        self.store = store
        self.settings = mqtt
        self.link = Link("mqtt")
        self._batch = batch
        self.coalesce = coalesce
        self._backoff = Backoff(base=0.2, cap=3.0)

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            identifier=f"telephonist-{s.node}-publisher",
            keepalive=5,
            timeout=5,
        )

    async def run(self) -> None:
        while True:
            try:
                async with self._client() as client:
                    self._backoff.reset()
                    self.link.up(f"{self.settings.host}:{self.settings.port}")
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._drain_forever(client), name="mqtt-drain")
                        tg.create_task(_until_disconnected(client), name="mqtt-watch")
            except* aiomqtt.MqttError as group:
                self.link.down(group.exceptions[0])
            await retry_after(self._backoff.next())

    async def watch_pending(self, interval: float = 2.0) -> None:
        """Keep ``telephonist_outbox_pending`` the true count of unsent events, also while
        the broker is away (the publisher's batches only see up to one batch)."""
        while True:
            metrics.OUTBOX_PENDING.set(await self.store.count_pending())
            await asyncio.sleep(interval)

    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        while True:
            self.store.outbox_changed.clear()
            events = await self.store.pending_events(self._batch)
            if not events:
                # Woken at once by a new event; the timeout also catches rows another
                # process (e.g. a CLI command) wrote.
                try:
                    async with asyncio.timeout(1.0):
                        await self.store.outbox_changed.wait()
                except TimeoutError:
                    continue
                # Let a burst gather: under load a batch per 20 ms costs far less than a
                # query and an update per event (measured with make bench-ivr).
                await asyncio.sleep(self.coalesce)
                continue
            sent: list[int] = []
            try:
                for ev in events:
                    assert ev.id is not None
                    payload = json.loads(ev.payload)
                    payload["seq"] = ev.id
                    await client.publish(
                        ev.topic,
                        json.dumps(payload, separators=(",", ":")),
                        qos=self.settings.qos,
                    )
                    sent.append(ev.id)
                    metrics.EVENTS_PUBLISHED.inc()
            finally:
                # One transaction per batch; what was acknowledged is marked even if the
                # broker went away in the middle (the rest goes again: at least once).
                if sent:
                    await self.store.mark_sent(sent)


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Raise MqttError as soon as the broker connection drops, even while nothing is being
    published (otherwise a dead broker is only noticed at the next event)."""
    async for _ in client.messages:  # nothing is subscribed: it only ends on disconnect
        pass
    raise aiomqtt.MqttError("the broker connection ended")
