"""``agi://.../vip-lookup``: a FastAGI route that decides where a caller goes.

A sample of "ask a FastAGI route for the destination": callers whose number is in the menu
file's ``vip_numbers`` go to ``vip_destination``, everybody else to ``vip_otherwise``. The
answer is set as TELEPHONIST_DEST (``queue:vip``, ``menu:main``...) and the dialplan hands the
call back to the IVR, which acts on it.
"""

from __future__ import annotations

from agi_handlers.protocol import quote_arg
from agi_handlers.server import AgiSession, Handler
from ivr.registry import MenuRegistry


def vip_lookup_route(registry: MenuRegistry) -> Handler:
    async def route(session: AgiSession) -> None:
        config = registry.current.config
        caller = session.env.get("agi_callerid", "")
        action = config.vip_destination if caller in config.vip_numbers else config.vip_otherwise
        dest = action.describe() if action is not None else ""
        await session.command("SET VARIABLE TELEPHONIST_DEST " + quote_arg(dest))

    return route
