"""The AMI watcher: keeps :class:`acd.state.CentreState` true and publishes every change.

On each (re)connect it reloads the whole picture from ``QueueStatus`` (calls waiting in
app_queue survive a restart of telephonist, and the state is right again at once); then it
follows app_queue's events. Every change goes out as ``telephonist/<node>/acd/state``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from acd.state import CentreState, Change
from core.ami import AmiClient, AmiError
from core.centre import Centre
from core.storage import Store

log = logging.getLogger("telephonist.acd")

EVENTS = (
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentComplete",
    "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberStatus", "QueueMemberPause",
    "QueueMemberPenalty", "QueueMemberRinginuse",
)  # fmt: skip


class QueueWatcher:
    def __init__(self, ami: AmiClient, store: Store, centre: Centre) -> None:
        self.ami = ami
        self.store = store
        self.state = CentreState([q.name for q in centre.queues])
        self.queues = {q.name: q for q in centre.queues}
        self._no_answers: dict[str, int] = {}
        self._redirected: set[str] = set()
        self.delays: deque[float] = deque(maxlen=50_000)
        """Seconds from an AMI event (Asterisk's Timestamp) to the state change applied."""
        self.loaded = 0
        """How many times the full state was (re)loaded from QueueStatus."""
        for name in EVENTS:
            ami.on_event(name, self._on_event)
        ami.on_event("AgentRingNoAnswer", self._on_no_answer)
        ami.on_connect(self.reload)

    async def reload(self) -> None:
        try:
            response: Any = await self.ami.send({"Action": "QueueStatus"}, as_list=True)
        except AmiError as exc:
            log.warning("queue state not loaded: %s", exc)
            return
        self.state.reset()
        now = time.time()
        for message in response if isinstance(response, list) else []:
            self.state.apply(message, now)
        self.loaded += 1
        async with self.store.unit_of_work() as uow:
            uow.emit("acd", "state", {"kind": "snapshot", "queues": self.state.snapshot()})

    async def _on_event(self, event: Any) -> None:
        if event.get("Event") in ("QueueCallerLeave", "QueueCallerAbandon"):
            self._no_answers.pop(event.get("Uniqueid", ""), None)
            self._redirected.discard(event.get("Uniqueid", ""))
        now = time.time()
        change = self.state.apply(event, now)
        if change is not None:
            try:
                self.delays.append(max(0.0, now - float(event.get("Timestamp", now))))
            except ValueError:
                pass
            await self._publish(change)

    async def _on_no_answer(self, event: Any) -> None:
        """Count unanswered rings per waiting caller; past the queue's ``ring_attempts``
        take the caller out of the queue to its *no answer* destination."""
        queue = self.queues.get(event.get("Queue", ""))
        uniqueid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
        if queue is None or not queue.ring_attempts or uniqueid in self._redirected:
            return
        count = self._no_answers.get(uniqueid, 0) + 1
        self._no_answers[uniqueid] = count
        if count < queue.ring_attempts:
            return
        self._redirected.add(uniqueid)
        self._no_answers.pop(uniqueid, None)
        try:
            await self.ami.send(
                {
                    "Action": "Setvar",
                    "Channel": channel,
                    "Variable": "TELEPHONIST_REDIRECT_REASON",
                    "Value": "no_answer",
                }
            )
            await self.ami.send(
                {
                    "Action": "Redirect",
                    "Channel": channel,
                    "Context": "telephonist-dest",
                    "Exten": "queue-no-answer",
                    "Priority": "1",
                }
            )
            log.info(
                "caller %s: %d unanswered rings in %s -> no answer", uniqueid, count, queue.name
            )
        except AmiError as exc:
            log.warning("caller %s not taken out of %s: %s", uniqueid, queue.name, exc)

    async def _publish(self, change: Change) -> None:
        async with self.store.unit_of_work() as uow:
            uow.emit("acd", "state", {"kind": change.kind, "queue": change.queue, **change.data})
