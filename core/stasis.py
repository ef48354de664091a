"""Stasis dispatcher: one task per call, owned by one TaskGroup.

Every ARI event is routed to the call it concerns (by channel id, or a playback's target).
``StasisStart`` creates a :class:`CallSession` and starts the route named by the first Stasis
argument (``Stasis(app,<route>,<line>)`` in the dialplan). A route is an ``async`` function
that takes the session; when it returns, a channel still in Stasis is hung up, so no caller is
left in silence.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from telephonist.core import metrics
from telephonist.core.ari import AriClient, AriError

log = logging.getLogger("telephonist.stasis")

Route = Callable[["CallSession"], Awaitable[None]]

PLAYBACK_CHECK = 5.0
"""Seconds between two checks that a playback whose end was not seen still plays."""

EVENTS = (
    "StasisStart",
    "StasisEnd",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "PlaybackFinished",
)
"""The ARI events the dispatcher and the routes use (the app's event filter)."""


class CallEnded(Exception):
    """The caller hung up (or the channel left Stasis) while the route waited."""


class CallSession:
    """What a route sees of one call. ``channel`` is the ARI channel JSON at StasisStart."""

    def __init__(self, ari: AriClient, start: dict[str, Any]) -> None:
        self.ari = ari
        self.channel: dict[str, Any] = start["channel"]
        self.id: str = self.channel["id"]
        self.args: list[str] = list(start.get("args", []))
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ended = False
        self.released = False
        """True once the call was handed back to the dialplan (not to be hung up)."""

    @property
    def route(self) -> str:
        return self.args[0] if self.args else ""

    @property
    def line(self) -> str:
        return self.args[1] if len(self.args) > 1 else ""

    @property
    def caller_number(self) -> str:
        return str(self.channel.get("caller", {}).get("number", ""))[:80]

    @property
    def caller_name(self) -> str:
        return str(self.channel.get("caller", {}).get("name", ""))[:80]

    @property
    def dialed(self) -> str:
        return str(self.channel.get("dialplan", {}).get("exten", ""))[:80]

    async def next_event(self, *types: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event of one of ``types``; raises CallEnded when the call ends first."""
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.events.get()
                if ev["type"] in types:
                    return ev
                if ev["type"] in ("StasisEnd", "ChannelDestroyed"):
                    self.ended = True
                    raise CallEnded(self.id)

    async def wait(
        self, *types: str, timeout: float | None = None, playback: str | None = None
    ) -> dict[str, Any]:
        """:meth:`next_event`, also while ``playback`` plays: a ``PlaybackFinished`` lost with
        the ARI link (it dropped while the prompt played) must not leave the caller in
        silence, so every :data:`PLAYBACK_CHECK` seconds ARI is asked whether the playback
        still exists; if not, its end is returned as if the event had come."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            step = remaining
            if playback is not None:
                step = PLAYBACK_CHECK if remaining is None else min(PLAYBACK_CHECK, remaining)
            try:
                return await self.next_event(*types, timeout=step)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    raise
                if playback is not None and await self.playback_gone(playback):
                    log.warning("call %s: playback %s ended unseen", self.id, playback)
                    return {"type": "PlaybackFinished", "playback": {"id": playback}}

    async def playback_gone(self, playback_id: str) -> bool:
        """True when Asterisk no longer has the playback (it finished); False if it still
        plays or ARI cannot tell now."""
        try:
            await self.ari.op("playbacks", "get", playbackId=playback_id, timeout=2)
        except AriError as exc:
            return exc.status == 404
        return False

    async def answer(self) -> None:
        await self.ari.op("channels", "answer", channelId=self.id)

    async def play(self, media: str, *, wait: bool = True, timeout: float = 30.0) -> str:
        """Play ``media`` (e.g. ``sound:beep``); with ``wait``, until it finishes."""
        playback_id = uuid.uuid4().hex  # made here so early events can be matched
        await self.ari.op(
            "channels", "play", channelId=self.id, media=media, playbackId=playback_id
        )
        if wait:
            while True:
                ev = await self.next_event("PlaybackFinished", timeout=timeout)
                if ev.get("playback", {}).get("id") == playback_id:
                    break
        return playback_id

    async def set_var(self, name: str, value: str) -> None:
        await self.ari.op(
            "channels", "setChannelVar", channelId=self.id, variable=name, value=value
        )

    async def get_var(self, name: str) -> str:
        try:
            result = await self.ari.op(
                "channels", "getChannelVar", channelId=self.id, variable=name
            )
        except AriError as exc:
            if exc.status == 404:  # not set
                return ""
            raise
        return str(result.get("value", "")) if isinstance(result, dict) else ""

    async def continue_in_dialplan(self, context: str, extension: str, priority: int = 1) -> None:
        """Hand the call back to the dialplan (it leaves Stasis; we no longer own it)."""
        await self.ari.op(
            "channels",
            "continueInDialplan",
            channelId=self.id,
            context=context,
            extension=extension,
            priority=priority,
        )
        self.released = True

    async def start_playback(self, media: list[str], language: str | None = None) -> str:
        """Start playing (without waiting); returns the playback id (made here so that an
        early PlaybackFinished can be matched)."""
        playback_id = uuid.uuid4().hex
        params: dict[str, Any] = {"media": ",".join(media), "playbackId": playback_id}
        if language:
            params["lang"] = language
        await self.ari.op("channels", "play", channelId=self.id, **params)
        return playback_id

    async def stop_playback(self, playback_id: str) -> None:
        try:
            await self.ari.op("playbacks", "stop", playbackId=playback_id, timeout=5)
        except AriError as exc:
            if exc.status != 404:  # already finished
                raise

    async def hangup(self) -> None:
        if self.ended or self.released:
            return
        try:
            await self.ari.op("channels", "hangup", channelId=self.id, timeout=5)
        except AriError as exc:
            if exc.status != 404:  # already gone is fine
                raise
        self.ended = True


def _channel_of(event: dict[str, Any]) -> str | None:
    if "channel" in event and isinstance(event["channel"], dict):
        return event["channel"].get("id")
    target = event.get("playback", {}).get("target_uri", "")
    if target.startswith("channel:"):
        return target.split(":", 1)[1]
    return None


class StasisDispatcher:
    def __init__(self, ari: AriClient, routes: dict[str, Route]) -> None:
        self.ari = ari
        self.routes = routes
        self.sessions: dict[str, CallSession] = {}
        self.running: set[str] = set()
        """Channels whose route is still running (it may still be writing their record)."""
        ari.on_connect(self._reconcile)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as calls:
            while True:
                event = await self.ari.events.get()
                if event["type"] == "StasisStart":
                    self._start(calls, event)
                    continue
                channel_id = _channel_of(event)
                session = self.sessions.get(channel_id) if channel_id else None
                if session is not None:
                    session.events.put_nowait(event)
                    if event["type"] == "StasisEnd":
                        # The channel left the app (hung up, or went on in the dialplan); it
                        # may come back at once (Stasis after an AGI) as a new session.
                        del self.sessions[session.id]

    def _start(self, calls: asyncio.TaskGroup, event: dict[str, Any]) -> None:
        session = CallSession(self.ari, event)
        route = self.routes.get(session.route)
        if session.id in self.sessions:
            return
        self.sessions[session.id] = session
        self.running.add(session.id)
        metrics.CALLS_ACTIVE.inc()
        calls.create_task(self._run_call(session, route), name=f"call-{session.id}")

    async def _run_call(self, session: CallSession, route: Route | None) -> None:
        try:
            if route is None:
                log.error("call %s: no route %r; hanging up", session.id, session.route)
            else:
                metrics.CALLS.labels(session.route).inc()
                await route(session)
        except CallEnded:
            pass
        except (AriError, TimeoutError) as exc:
            log.warning("call %s (%s): %s", session.id, session.route, exc or type(exc).__name__)
        except Exception:
            log.exception("call %s (%s): route failed", session.id, session.route)
        finally:
            if self.sessions.get(session.id) is session:
                del self.sessions[session.id]
            metrics.CALLS_ACTIVE.dec()
            try:
                await session.hangup()
            except AriError:
                pass
            self.running.discard(session.id)

    async def _reconcile(self) -> None:
        """After a reconnect, end the sessions whose channels no longer exist."""
        if not self.sessions:
            return
        try:
            channels = await self.ari.op("channels", "list")
        except AriError:
            return
        alive = {getattr(c, "id", None) for c in channels}
        for channel_id, session in list(self.sessions.items()):
            if channel_id not in alive:
                session.events.put_nowait({"type": "StasisEnd", "synthetic": True})
