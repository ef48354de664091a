"""``agi://.../selftest``: a FastAGI round trip that proves the dialplan reaches telephonist.

Reads the channel name back from Asterisk, sets ``TELEPHONIST_SELFTEST=ok`` on the channel and
records an ``agi/selftest`` event.
"""

from __future__ import annotations

from telephonist.agi_handlers.events import AGI
from telephonist.agi_handlers.protocol import quote_arg
from telephonist.agi_handlers.server import AgiSession, Handler
from telephonist.core.storage import Store


def selftest_route(store: Store) -> Handler:
    async def route(session: AgiSession) -> None:
        name = await session.command("GET VARIABLE " + quote_arg("CHANNEL(name)"))
        setvar = await session.command("SET VARIABLE TELEPHONIST_SELFTEST " + quote_arg("ok"))
        async with store.unit_of_work() as uow:
            AGI(
                uow,
                "selftest",
                {
                    "channel": name.value,
                    "uniqueid": session.env.get("agi_uniqueid", ""),
                    "set_variable_ok": setvar.ok,
                },
            )

    return route
