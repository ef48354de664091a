"""The demo route (line 100 in the demo centre): answer, record the call, play a beep, hang up.

It proves the whole chain a real caller goes through: dialplan -> Stasis -> telephonist ->
database + outbox -> MQTT. The IVR menus replace it for real lines.
"""

from __future__ import annotations

from telephonist.core import calls
from telephonist.core.stasis import CallEnded, CallSession, Route
from telephonist.core.storage import Store


def demo_route(store: Store) -> Route:
    async def route(session: CallSession) -> None:
        # Persist before we promise anything to the caller.
        await calls.record_start(store, session)
        outcome = "error"
        try:
            await session.answer()
            await calls.mark_answered(store, session.id)
            await session.play("sound:beep", timeout=10)
            outcome = "completed"
        except CallEnded:
            outcome = "caller_hangup"
        finally:
            await calls.record_end(store, session.id, outcome)

    return route
