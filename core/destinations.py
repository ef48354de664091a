"""Destinations: where a caller is sent, and the one router that sends them.

A destination is written ``queue:sales``, ``menu:main``, ``voicemail:100``,
``extension:1001``, ``outside:0123456789@office``, ``callback:support`` or ``hangup`` — in
queue redirects, line fallbacks and (as mappings) IVR options. The :class:`Router` sends a
caller there. It does the kinds the dialplan finishes itself (voicemail, extension, outside,
hang-up) and hands the others to the capability that registered them: ``queue`` (the ACD),
``menu`` (the IVR), ``callback`` (callbacks). A centre without IVR menus still redirects its
queue callers: nothing here depends on the IVR.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telephonist.core.centre import DESTINATION, Centre
from telephonist.core.prompts import Prompter

log = logging.getLogger("telephonist.destinations")

DEST_CONTEXT = "telephonist-dest"
"""The dialplan context where telephonist finishes a caller's route (extensions.conf)."""


class DestinationError(ValueError):
    """Not a destination; the message shows the forms."""


@dataclass(frozen=True)
class Destination:
    kind: str
    """queue, menu, voicemail, extension, outside, callback or hangup."""
    target: str = ""
    """The queue, menu, mailbox, extension, number or callback queue."""
    trunk: str = ""
    """outside: the trunk the number is dialled through."""

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Parse the written form; :class:`DestinationError` shows the forms.

        >>> Destination.parse("outside:0123@office")
        Destination(kind='outside', target='0123', trunk='office')
        >>> str(Destination.parse("callback:support")), str(Destination.parse("hangup"))
        ('callback:support', 'hangup')
        """
        if not re.fullmatch(DESTINATION, text):
            raise DestinationError(
                f"{text!r} is not a destination (queue:NAME, menu:NAME, voicemail:BOX, "
                "extension:N, outside:NUMBER@TRUNK, callback:QUEUE or hangup)"
            )
        if text == "hangup":
            return cls("hangup")
        kind, _, target = text.partition(":")
        if kind == "outside":
            number, _, trunk = target.partition("@")
            return cls(kind, number, trunk)
        return cls(kind, target)

    def __str__(self) -> str:
        if self.kind == "hangup":
            return "hangup"
        if self.kind == "outside":
            return f"outside:{self.target}@{self.trunk}"
        return f"{self.kind}:{self.target}"


Handler = Callable[[Prompter, Destination, str], Awaitable[None]]
"""How a capability takes a caller: (session, destination, the line they came in on)."""


class Router:
    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self.handlers: dict[str, Handler] = {
            "voicemail": self._voicemail,
            "extension": self._extension,
            "outside": self._outside,
            "hangup": self._hangup,
        }

    def handle(self, kind: str, handler: Handler) -> None:
        """A capability takes callers sent to ``kind`` (queue, menu, callback)."""
        self.handlers[kind] = handler

    async def send(self, session: Prompter, dest: Destination, line: str) -> None:
        """Send the caller to ``dest``. A kind nobody takes (a ``menu:`` in a centre without
        menus) is logged, and the caller hears that the call cannot go through — never
        silence."""
        handler = self.handlers.get(dest.kind)
        if handler is None:
            log.error("call %s: nothing takes callers to %s (line %r)", session.id, dest, line)
            await session.answer()
            await session.play("sound:all-circuits-busy-now")
            await session.hangup()
            return
        await handler(session, dest, line)

    async def to_dialplan(self, session: Prompter, exten: str, **variables: str) -> None:
        """Set the ``TELEPHONIST_*`` variables, then continue in ``[telephonist-dest]``."""
        for name, value in variables.items():
            await session.set_var(name, value)
        await session.continue_in_dialplan(DEST_CONTEXT, exten)

    async def _voicemail(self, session: Prompter, dest: Destination, line: str) -> None:
        mailbox = self.centre.mailbox(dest.target)
        options = mailbox.options if mailbox else "u"
        await self.to_dialplan(session, "voicemail", TELEPHONIST_MAILBOX=dest.target,
                               TELEPHONIST_VM_OPTIONS=options)  # fmt: skip

    async def _extension(self, session: Prompter, dest: Destination, line: str) -> None:
        await self.to_dialplan(session, "extension", TELEPHONIST_EXTEN=dest.target,
                               TELEPHONIST_RING_SECONDS="30")  # fmt: skip

    async def _outside(self, session: Prompter, dest: Destination, line: str) -> None:
        await self.to_dialplan(session, "outside", TELEPHONIST_NUMBER=dest.target,
                               TELEPHONIST_TRUNK=dest.trunk)  # fmt: skip

    async def _hangup(self, session: Prompter, dest: Destination, line: str) -> None:
        await session.hangup()
