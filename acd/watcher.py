"""The AMI watcher: keeps :class:`acd.state.CentreState` true and publishes every change.

On each (re)connect it reloads the whole picture from ``QueueStatus`` (calls waiting in
app_queue survive a restart of telephonist, and the state is right again at once); then it
follows app_queue's events. Every change goes out as ``telephonist/<node>/acd/state``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from typing import Any

from telephonist.acd.events import ACD
from telephonist.acd.state import CentreState, Change
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.callcontrol import AmiCallControl
from telephonist.core.centre import Centre
from telephonist.core.storage import Store

log = logging.getLogger("telephonist.acd")

PLACEHOLDER = ("Local/cb", "Local/ag")
"""Channels of callbacks waiting in a queue (see callbacks/service.py)."""

EVENTS = (
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentComplete",
    "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberStatus", "QueueMemberPause",
    "QueueMemberPenalty", "QueueMemberRinginuse",
)  # fmt: skip


class QueueWatcher:
    def __init__(self, ami: AmiClient, store: Store, centre: Centre) -> None:
        self.ami = ami
        self.control = AmiCallControl(ami)
        self.store = store
        self.state = CentreState([q.name for q in centre.queues])
        self.queues = {q.name: q for q in centre.queues}
        self._no_answers: dict[str, int] = {}
        self._redirected: set[str] = set()
        self.delays: deque[float] = deque(maxlen=50_000)
        """Seconds from an AMI event (Asterisk's Timestamp) to the state change applied."""
        self.loaded = 0
        self.left: OrderedDict[str, tuple[str, float]] = OrderedDict()
        """Callers who recently left a queue: uniqueid -> (queue, when they had joined)."""
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
            ACD(uow, "state", {"kind": "snapshot", "queues": self.state.snapshot()})

    async def _on_event(self, event: Any) -> None:
        if event.get("Event") in ("QueueCallerLeave", "QueueCallerAbandon"):
            uid = event.get("Uniqueid", "")
            self._no_answers.pop(uid, None)
            self._redirected.discard(uid)
            queue = self.state.queues.get(event.get("Queue", ""))
            if queue is not None and uid in queue.callers:
                self.left[uid] = (queue.name, queue.callers[uid].joined_at)
                while len(self.left) > 1000:
                    self.left.popitem(last=False)
        now = time.time()
        change = self.state.apply(event, now)
        if change is not None:
            try:
                self.delays.append(max(0.0, now - float(event.get("Timestamp", now))))
            except ValueError:
                pass
            await self._publish(change)

    async def run(self, interval: float = 0.5) -> None:
        """Enforce each queue's ``max_wait`` to the second: app_queue checks its own time-out
        for the caller at the head only between ring cycles (measured: 30 s for a 20 s limit)."""
        while True:
            await asyncio.sleep(interval)
            if not self.ami.link.is_up:
                continue
            now = time.time()
            for name, queue in self.queues.items():
                if not queue.max_wait:
                    continue
                for caller in list(self.state.queues[name].callers.values()):
                    if caller.channel.startswith(PLACEHOLDER):
                        continue  # a callback keeping a customer's place: no time limit
                    if now - caller.joined_at >= queue.max_wait + 0.5:
                        await self._take_out(
                            caller.uniqueid, caller.channel, queue.name, "max_wait"
                        )

    async def _on_no_answer(self, event: Any) -> None:
        """Count unanswered rings per waiting caller; past the queue's ``ring_attempts``
        take the caller out of the queue to its *no answer* destination."""
        queue = self.queues.get(event.get("Queue", ""))
        uniqueid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
        if queue is None or not queue.ring_attempts or uniqueid in self._redirected:
            return
        if channel.startswith(PLACEHOLDER):
            return  # a callback: app_queue keeps ringing agents for it
        count = self._no_answers.get(uniqueid, 0) + 1
        self._no_answers[uniqueid] = count
        if count >= queue.ring_attempts:
            await self._take_out(uniqueid, channel, queue.name, "no_answer")

    async def _take_out(self, uniqueid: str, channel: str, queue: str, reason: str) -> None:
        """Move a waiting caller out of app_queue to ``acd-redirect`` with ``reason``."""
        if uniqueid in self._redirected or not channel:
            return
        self._redirected.add(uniqueid)
        self._no_answers.pop(uniqueid, None)
        try:
            await self.control.set_variable(channel, "TELEPHONIST_REDIRECT_REASON", reason)
            await self.control.redirect(channel, "telephonist-dest", "queue-no-answer")
            log.info("caller %s taken out of %s: %s", uniqueid, queue, reason)
        except AmiError as exc:
            log.warning("caller %s not taken out of %s: %s", uniqueid, queue, exc)

    async def _publish(self, change: Change) -> None:
        async with self.store.unit_of_work() as uow:
            ACD(uow, "state", {"kind": change.kind, "queue": change.queue, **change.data})
