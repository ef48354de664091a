"""Prompts a caller answers with digits: collect digits (with barge-in), confirm a number.

Shared by the IVR's menus, a waiting caller's callback request and every capability that asks
a caller something. All of them are typed against :class:`Prompter`, the call as a caller
experiences it; :class:`telephonist.core.stasis.CallSession` (ARI) is its implementation, and
the controllers' unit tests drive them with fakes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol


class Prompter(Protocol):
    """One call the centre talks to: who called and on which line, prompts that play (and a
    key press cuts short), the caller's keys, the channel's variables, and the ways out
    (hang up, on in the dialplan)."""

    id: str

    @property
    def route(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def caller_number(self) -> str: ...
    @property
    def caller_name(self) -> str: ...
    @property
    def dialed(self) -> str: ...

    async def answer(self) -> None: ...
    async def play(self, media: str, *, wait: bool = True, timeout: float = 30.0) -> str: ...
    async def start_playback(self, media: list[str], language: str | None = None) -> str: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def wait(
        self, *types: str, timeout: float | None = None, playback: str | None = None
    ) -> dict[str, Any]:
        """The next of these events (``ChannelDtmfReceived``, ``PlaybackFinished``...);
        TimeoutError after ``timeout``; CallEnded when the caller hangs up."""
        ...

    async def set_var(self, name: str, value: str) -> None: ...
    async def get_var(self, name: str) -> str: ...
    async def continue_in_dialplan(
        self, context: str, extension: str, priority: int = 1
    ) -> None: ...
    async def hangup(self) -> None: ...


DTMF = frozenset("0123456789*#")


async def confirm_number(session: Prompter, refused: set[str] | None = None) -> str | None:
    """The number to call back: the caller's own (read back, 1 confirms) or digits they
    type; None after three failed tries. Only digits come out of here. A number in
    ``refused`` (the policy said no) is not offered again."""
    number = session.caller_number if re.fullmatch(r"\+?[0-9]{3,20}", session.caller_number) else ""
    number = number.lstrip("+")
    if number in (refused or ()):
        number = ""
    for _attempt in range(3):
        if number:
            prompt = [
                "sound:you-entered",
                # One sound per digit, not "digits:": ARI's stop only skips the current digit
                # of a "digits:" media, so a caller pressing 1 would hear the rest read out.
                *(f"sound:digits/{d}" for d in number),
                "sound:if-correct-press",
                "sound:digits/1",
            ]
            answer = await collect(session, prompt, max_digits=1, first_timeout=5)
            if answer == "1":
                return number
        typed = await collect(
            session,
            ["sound:vm-enter-num-to-call", "sound:vm-then-pound"],
            max_digits=20,
            terminator="#",
            first_timeout=8,
        )
        number = typed if re.fullmatch(r"[0-9]{3,20}", typed) else ""
    return None


async def collect(
    session: Prompter,
    prompts: list[str],
    *,
    max_digits: int,
    terminator: str = "",
    first_timeout: float = 5,
    digit_timeout: float = 3,
) -> str:
    """Play ``prompts`` (barge-in) and collect up to ``max_digits`` digits."""
    loop = asyncio.get_running_loop()
    playback: str | None = await session.start_playback(prompts)
    digits = ""
    deadline: float | None = None
    while True:
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            ev = await session.wait(
                "ChannelDtmfReceived", "PlaybackFinished", timeout=timeout, playback=playback
            )
        except TimeoutError:
            return digits
        if ev["type"] == "PlaybackFinished":
            if ev.get("playback", {}).get("id") == playback:
                playback = None
                deadline = loop.time() + (digit_timeout if digits else first_timeout)
            continue
        digit = str(ev.get("digit", ""))
        if digit not in DTMF:
            continue
        if playback is not None:
            await session.stop_playback(playback)
            playback = None
        if terminator and digit == terminator:
            return digits
        digits += digit
        if len(digits) >= max_digits:
            return digits
        deadline = loop.time() + digit_timeout
