"""``agi://.../vip-lookup``: a FastAGI route that decides where a caller goes.

A sample of "ask a FastAGI route for the destination": callers whose number is in the menu
file's ``vip_numbers`` go to ``vip_destination``, everybody else to ``vip_otherwise``. The
answer is set as TELEPHONIST_DEST (``queue:vip``, ``menu:main``...) and the dialplan hands the
call back to the IVR, which acts on it. Numbers are compared as the centre's one customer key
(:meth:`core.numbers.Numbering.identity`): a VIP listed as ``0612345678`` is recognised when
their caller ID arrives as ``+33612345678``.
"""

from __future__ import annotations

from telephonist.agi_handlers.protocol import quote_arg
from telephonist.agi_handlers.server import AgiSession, Handler
from telephonist.core.numbers import NumberError, Numbering
from telephonist.ivr.registry import MenuRegistry


def _key(numbering: Numbering, number: str) -> str | None:
    try:
        return numbering.identity(number)
    except NumberError:
        return None


def vip_lookup_route(registry: MenuRegistry, numbering: Numbering) -> Handler:
    async def route(session: AgiSession) -> None:
        config = registry.current.config
        caller = _key(numbering, session.env.get("agi_callerid", ""))
        vips = {_key(numbering, n) for n in config.vip_numbers} - {None}
        action = config.vip_destination if caller in vips else config.vip_otherwise
        dest = action.describe() if action is not None else ""
        await session.command("SET VARIABLE TELEPHONIST_DEST " + quote_arg(dest))

    return route
