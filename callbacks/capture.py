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

from callbacks import tasks
from core.models import CallbackRequest
from core.stasis import CallEnded, CallSession
from core.storage import Store
from ivr.controller import confirm_number

if TYPE_CHECKING:
    from acd.controller import AcdController
    from acd.watcher import QueueWatcher

log = logging.getLogger("telephonist.callbacks")


class QueueCallbackRoute:
    def __init__(self, store: Store, watcher: QueueWatcher, acd: AcdController) -> None:
        self.store = store
        self.watcher = watcher
        self.acd = acd

    async def __call__(self, session: CallSession) -> None:
        queue = await session.get_var("TELEPHONIST_QUEUE")
        joined = await self._joined(session)
        try:
            await session.answer()
            number = await confirm_number(session)
            if number is None:
                await session.play("sound:pls-hold-while-try")
                await self.acd.to_queue(session, queue, session.line)
                return
            async with self.store.unit_of_work() as uow:
                cb = await tasks.create(
                    uow,
                    CallbackRequest(
                        number=number,
                        queue=queue,
                        source="queue",
                        channel_id=session.id,
                        line=session.line,
                        joined_at=datetime.fromtimestamp(joined, UTC),
                    ),
                )
            log.info("call %s: callback %s from %s keeps its place", session.id, cb.id, queue)
            await session.play("sound:auth-thankyou")  # the promise, after the record exists
            await session.hangup()
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
