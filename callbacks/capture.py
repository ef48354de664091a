"""Stasis route ``queue-callback``: a waiting caller pressed the queue's callback digit.

app_queue lets them out to ``[telephonist-qexit-<queue>]``, which hands the call here. The
number to call is confirmed (their caller ID read back, or digits they type), the request is
stored with the moment they had joined the queue — their place — and only then do they hear
the confirmation. A caller who cannot confirm a number goes back to the queue.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from telephonist.callbacks.policy import NumberPolicy
from telephonist.callbacks.request import request_callback
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, Router
from telephonist.core.models import CallbackRequest
from telephonist.core.stasis import CallEnded, CallSession
from telephonist.core.storage import Store

if TYPE_CHECKING:
    from telephonist.acd.watcher import QueueWatcher

log = logging.getLogger("telephonist.callbacks")


class QueueCallbackRoute:
    def __init__(
        self,
        store: Store,
        watcher: QueueWatcher,
        router: Router,
        centre: Centre,
        policy: NumberPolicy,
    ) -> None:
        self.store = store
        self.watcher = watcher
        self.router = router
        self.centre = centre
        self.policy = policy

    async def __call__(self, session: CallSession) -> None:
        queue = await session.get_var("TELEPHONIST_QUEUE")
        joined = await self._joined(session)
        try:
            await session.answer()
            place = datetime.fromtimestamp(joined, UTC)

            def task(number: str) -> CallbackRequest:
                return CallbackRequest(number=number, queue=queue, source="queue",
                                       channel_id=session.id, line=session.line,
                                       joined_at=place)  # fmt: skip

            result = await request_callback(session, self.store, self.policy, self.centre, task)
            if result == "stored":
                log.info("call %s: callback from %s keeps its place", session.id, queue)
                await session.hangup()
                return
            # No number confirmed, or none allowed: back to the queue (a new place).
            await session.play("sound:pls-hold-while-try")
            await self.router.send(session, Destination("queue", queue), session.line)
        except CallEnded:
            pass

    async def _joined(self, session: CallSession) -> float:
        """When the caller joined the queue: the watcher saw it (to the millisecond), or
        the dialplan noted it (to the second)."""
        seen = self.watcher.left.get(session.id)
        if seen is not None:
            return seen[1]
        noted = await session.get_var("TELEPHONIST_JOINED")
        return float(noted) if noted.isdigit() else time.time()
