"""Stasis route ``campaign-return``: somebody calls the number a campaign presented.

People the dialer called see the campaign's caller ID and call it back. A number that is no
line of the centre comes here (the catch-all of ``[from-callers]``): if a campaign presents it,
the caller joins that campaign's queue while an agent is logged in to it, not paused and
reachable, or,
when nobody is, hears the campaign's message (who called, the number to call back) -- the
same words an abandoned call hears. A number no campaign presents is refused as before
(unallocated number).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from telephonist.core import calls
from telephonist.core.models import Campaign
from telephonist.core.numbers import NumberError, Numbering
from telephonist.core.prompts import Prompter
from telephonist.core.storage import Store
from telephonist.dialer import observe, pacing
from telephonist.dialer.events import DIALER

if TYPE_CHECKING:
    from telephonist.acd.controller import AcdController
    from telephonist.acd.watcher import QueueWatcher

log = logging.getLogger("telephonist.dialer")

LINE = "campaign-return"
"""The line name such calls are recorded under."""


async def campaign_presenting(store: Store, numbering: Numbering, dialed: str) -> Campaign | None:
    """The campaign that presents ``dialed`` as its caller ID (the most recent one, if several
    do; a stopped campaign's number still reaches its queue: people call back for days)."""
    try:
        digits = numbering.identity(dialed, "dialed number").lstrip("+")
    except NumberError:
        return None
    if not digits:
        return None
    async with store.sessions() as s:
        return (
            await s.execute(
                select(Campaign)
                .where(col(Campaign.caller_id) == digits)
                .order_by(col(Campaign.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()


class CampaignReturns:
    def __init__(
        self,
        store: Store,
        numbering: Numbering,
        acd: AcdController,
        watcher: QueueWatcher,
    ) -> None:
        self.store, self.numbering, self.acd, self.watcher = store, numbering, acd, watcher

    def someone_ready(self, queue: str) -> bool:
        """An agent of ``queue`` the call can reach: a member who is not away (paused, or a
        phone Asterisk cannot reach) -- the pacing's own view of a member (dialer/observe.py)."""
        state = self.watcher.state.queues.get(queue)
        now = time.time()
        return state is not None and any(
            observe.agent_state(m, now, 0) != pacing.AWAY for m in state.members.values()
        )

    async def __call__(self, session: Prompter) -> None:
        c = await campaign_presenting(self.store, self.numbering, session.dialed)
        if c is None:
            log.info("call %s to %r: no line, and no campaign presents it", session.id,
                     session.dialed)  # fmt: skip
            return  # hung up: the dialplan's "no such line"
        await calls.record_start(self.store, session, answered=True)
        await session.answer()
        ready = self.someone_ready(c.queue)
        async with self.store.unit_of_work() as uow:
            DIALER(uow, "returned", {"campaign": c.name, "caller": session.caller_number,
                                     "to": "queue" if ready else "message",
                                     "queue": c.queue})  # fmt: skip
        if ready:
            await self.acd.to_queue(session, c.queue, LINE)
            await calls.set_outcome(self.store, session.id, f"queued:{c.queue}")
            return
        await session.play(f"sound:{c.message or 'silence/1'}", timeout=60)
        await calls.record_end(self.store, session.id, f"campaign-message:{c.name}")
