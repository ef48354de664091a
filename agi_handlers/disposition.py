"""``agi://.../disposition?key=N``: the agent keys ``*7N`` on their phone after a dialer call.

The agent is the one whose endpoint places the call (``PJSIP/<extension>-...``, a name
Asterisk gives only after the phone authenticated); their latest dialer call connected within
the last hour gets the disposition the digit stands for (the centre's ``dispositions``).
``TELEPHONIST_DISPOSITION`` is set to the code, or to ``unknown-key`` / ``no-call`` /
``not-an-agent`` (and ``TELEPHONIST_DISPOSITION_SET`` to 1 or 0); the dialplan says thank you
or beeps.

A FastAGI session only *says* which channel it is for. Before anything is stored the route
asks Asterisk (AMI) whether that channel exists now, with that unique id, in the agents'
context: a local process forging a session for an agent's channel changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telephonist.agi_handlers.protocol import quote_arg
from telephonist.agi_handlers.server import AgiSession, Handler
from telephonist.core.ami import AmiClient, AmiError, channels
from telephonist.core.centre import Centre
from telephonist.core.storage import Store
from telephonist.dialer.dispositions import latest_attempt_of, set_disposition

log = logging.getLogger("telephonist.agi")

AGENT_CONTEXT = "from-agents"
"""The dialplan context of the agents' own endpoints (pjsip.conf), where ``*7N`` lives."""

ChannelCheck = Callable[[str, str], Awaitable[bool]]


def agent_channel(ami: AmiClient) -> ChannelCheck:
    """Is ``channel`` with ``uniqueid`` live in Asterisk now, in the agents' context?"""

    async def check(channel: str, uniqueid: str) -> bool:
        try:
            live = await channels(ami)
        except AmiError as exc:
            log.warning("disposition: channel %s not checked (%s); refused", channel, exc)
            return False
        return any(
            c.get("Channel") == channel
            and c.get("Uniqueid") == uniqueid
            and c.get("Context") == AGENT_CONTEXT
            for c in live
        )

    return check


def disposition_route(store: Store, centre: Centre, is_agent_channel: ChannelCheck) -> Handler:
    async def route(session: AgiSession) -> None:
        key = session.args.get("key", "")
        channel = session.env.get("agi_channel", "")
        m = re.match(r"^PJSIP/([0-9]{2,8})-[0-9a-f]+$", channel)
        agent = next(
            (a for a in centre.agents if m is not None and a.extension == m.group(1)), None
        )
        result = "unknown-key"
        if agent is None:
            result = "not-an-agent"
        elif not await is_agent_channel(channel, session.env.get("agi_uniqueid", "")):
            log.warning("disposition for %s refused: %r is not a live call of theirs",
                        agent.id, channel[:60])  # fmt: skip
            result = "not-an-agent"
        elif key in centre.dispositions:
            async with store.unit_of_work() as uow:
                attempt = await latest_attempt_of(
                    uow, tuple({agent.id, agent.name or agent.id}), timedelta(hours=1)
                )
                if attempt is None or attempt.id is None:
                    result = "no-call"
                else:
                    await set_disposition(uow, attempt.id, centre.dispositions[key], by=agent.id)
                    result = centre.dispositions[key]
        log.info("disposition key %r from %s: %s", key[:4], agent.id if agent else "?", result)
        await session.command("SET VARIABLE TELEPHONIST_DISPOSITION " + quote_arg(result))
        done = "1" if result in centre.dispositions.values() else "0"
        await session.command("SET VARIABLE TELEPHONIST_DISPOSITION_SET " + quote_arg(done))

    return route
