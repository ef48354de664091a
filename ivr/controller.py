"""The IVR Stasis app: drives one :class:`IvrMachine` per call over ARI.

Prompts are played with barge-in; digits come from ``ChannelDtmfReceived``; time-outs are the
machine's ``Wait`` deadlines. Each step of the journey is stored (``ivr_steps``) and
published (``telephonist/<node>/ivr/step``). When the machine routes the caller, validated
values are set as ``TELEPHONIST_*`` channel variables and the call continues in the
``[telephonist-dest]`` context of the dialplan (queue, extension, mailbox, outside number,
FastAGI decision), or telephonist plays and hangs up, or takes a callback request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.core import calls, metrics
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, DestinationError, Router
from telephonist.core.models import IvrStep
from telephonist.core.prompts import DTMF, Prompter
from telephonist.core.stasis import CallEnded
from telephonist.core.storage import Store
from telephonist.ivr.engine import (
    Command,
    Digit,
    IvrMachine,
    Play,
    PlaybackDone,
    Route,
    Step,
    StopPlayback,
    Timeout,
    Wait,
)
from telephonist.ivr.events import IVR
from telephonist.ivr.loader import MenuSet
from telephonist.ivr.model import Action, Entry
from telephonist.ivr.registry import MenuRegistry

log = logging.getLogger("telephonist.ivr")


class LatencyLog:
    """Recent digit-to-next-prompt latencies in seconds (``GET /ivr/latency``, the
    benchmark). serve makes one and hands it to the IVR controller and the HTTP endpoint."""

    def __init__(self, size: int = 20_000) -> None:
        self.samples: deque[float] = deque(maxlen=size)

    def prompt_started(self, digit_at: float | None) -> None:
        """A prompt began: if a digit asked for it, how long it took."""
        if digit_at is not None:
            latency = max(0.0, time.time() - digit_at)
            self.samples.append(latency)
            metrics.IVR_DIGIT_TO_PROMPT.observe(latency)


def asterisk_time(value: str) -> float | None:
    """Seconds since the epoch of an ARI event timestamp (``2026-11-22T08:34:02.362+0000``)."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except (TypeError, ValueError):
        return None


def media(prompts: tuple[str, ...] | list[str]) -> list[str]:
    return [f"sound:{p}" for p in prompts]


class IvrController:
    def __init__(
        self,
        store: Store,
        registry: MenuRegistry,
        centre: Centre,
        router: Router,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        latency: LatencyLog | None = None,
    ) -> None:
        self.latency = latency or LatencyLog()
        self.store = store
        self.registry = registry
        self.centre = centre
        self.router = router
        self.clock = clock
        router.handle("menu", self.to_menu)
        self.extensions = frozenset(e.number for e in centre.extensions)

    # -- Stasis routes ----------------------------------------------------------------------
    async def start(self, session: Prompter) -> None:
        """Route ``ivr``: a caller dialled an IVR entry."""
        menus = self.registry.current  # this call keeps this version to the end
        entry = menus.config.entry(session.line)
        outcome = "error"
        await session.answer()
        await calls.record_start(self.store, session, answered=True)
        try:
            if entry is None:
                log.error("call %s: no IVR entry named %r", session.id, session.line)
                await session.play("sound:ss-noservice")
                return
            machine = IvrMachine(menus.config, entry, self.extensions)
            outcome = await self._drive(session, machine, machine.start(self.clock()), menus, entry)
        except CallEnded:
            outcome = "caller_hangup"
        finally:
            await calls.record_end(self.store, session.id, outcome)

    async def resume(self, session: Prompter) -> None:
        """Route ``ivr-resume``: back from a FastAGI decision (TELEPHONIST_DEST)."""
        menus = self.registry.current
        entry = menus.config.entry(session.line)
        if entry is None:
            return
        written = await session.get_var("TELEPHONIST_DEST")
        machine = IvrMachine(menus.config, entry, self.extensions)
        decided = Step("", "route", detail=f"agi decided {written or '(nothing)'}")
        steps: list[Command] = [decided]
        try:
            dest: Destination | None = Destination.parse(written)
        except DestinationError:
            log.warning("call %s: FastAGI decided %r, not a destination: entry menu", session.id,
                        written)  # fmt: skip
            dest = None
        if dest is not None and dest.kind == "menu" and dest.target in menus.config.menus:
            cmds = steps + machine.enter(dest.target)
        elif dest is not None and dest.kind != "menu":
            # Any destination the router takes (queue, voicemail, callback, outside, hangup...).
            seq = await self._last_seq(session.id)
            await self._journal(session, entry, menus.version,
                                [decided, Step("", "route", detail=str(dest))], seq)  # fmt: skip
            outcome = f"routed:{dest}"
            try:
                await self.router.send(session, dest, entry.name)
            except CallEnded:
                outcome = "caller_hangup"
            finally:
                await calls.set_outcome(self.store, session.id, outcome)
            return
        else:
            cmds = steps + machine.enter(entry.menu)
        outcome = "caller_hangup"
        try:
            seq = await self._last_seq(session.id)
            outcome = await self._drive(session, machine, cmds, menus, entry, seq)
        except CallEnded:
            pass
        finally:
            await calls.set_outcome(self.store, session.id, outcome)

    async def _last_seq(self, channel_id: str) -> int:
        async with self.store.sessions() as db:
            result = await db.execute(
                select(func.max(IvrStep.seq)).where(col(IvrStep.channel_id) == channel_id)
            )
            return int(result.scalar() or 0)

    async def to_menu(self, session: Prompter, dest: Destination, line: str) -> None:
        """The ``menu:`` destination: a caller who is not in a menu (a queue redirect) enters
        menu ``dest.target`` of the IVR entry they came in on."""
        menus = self.registry.current
        entry = menus.config.entry(line)
        if entry is None or dest.target not in menus.config.menus:
            log.error("call %s: cannot start menu %s from line %r", session.id, dest.target, line)
            await session.answer()
            await session.play("sound:all-circuits-busy-now")
            await session.hangup()
            return
        machine = IvrMachine(menus.config, entry, self.extensions)
        seq = await self._last_seq(session.id)
        await self._drive(session, machine, machine.enter(dest.target), menus, entry, seq)

    # -- the loop ---------------------------------------------------------------------------
    async def _drive(
        self,
        session: Prompter,
        machine: IvrMachine,
        cmds: list[Command],
        menus: MenuSet,
        entry: Entry,
        seq: int = 0,
    ) -> str:
        loop = asyncio.get_running_loop()
        playback: str | None = None
        deadline: float | None = None
        digit_at: float | None = None
        while True:
            steps: list[Step] = []
            route: Route | None = None
            for cmd in cmds:
                if isinstance(cmd, Play):
                    playback = await session.start_playback(media(cmd.prompts), cmd.language)
                    self.latency.prompt_started(digit_at)
                    digit_at = None
                    deadline = None
                elif isinstance(cmd, StopPlayback):
                    if playback is not None:
                        await session.stop_playback(playback)
                        playback = None
                elif isinstance(cmd, Wait):
                    deadline = loop.time() + cmd.seconds
                elif isinstance(cmd, Step):
                    steps.append(cmd)
                elif isinstance(cmd, Route):
                    route = cmd
            if steps:
                seq = await self._journal(session, entry, menus.version, steps, seq)
            if route is not None:
                await self._route(session, route, entry, digit_at)
                return "routed:" + route.action.describe()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                ev = await session.wait(
                    "ChannelDtmfReceived", "PlaybackFinished", timeout=timeout, playback=playback
                )
            except TimeoutError:
                deadline = None
                cmds = machine.handle(Timeout())
                log.debug("call %s: time-out in %s -> %s", session.id, machine.menu_name, cmds)
                continue
            log.debug(
                "call %s: %s (state %s, wait %s)", session.id, ev["type"], machine.state, timeout
            )
            if ev["type"] == "ChannelDtmfReceived":
                digit = str(ev.get("digit", ""))
                cmds = machine.handle(Digit(digit)) if digit in DTMF else []
                digit_at = asterisk_time(str(ev.get("timestamp", "")))
            elif ev.get("playback", {}).get("id") == playback:
                playback = None
                cmds = machine.handle(PlaybackDone())
            else:
                cmds = []

    async def _journal(
        self, session: Prompter, entry: Entry, version: int, steps: list[Step], seq: int
    ) -> int:
        async with self.store.unit_of_work() as uow:
            for step in steps:
                seq += 1
                row = IvrStep(
                    channel_id=session.id,
                    seq=seq,
                    entry=entry.name,
                    menu=step.menu,
                    event=step.event,
                    digit=step.digit,
                    detail=step.detail,
                    version=version,
                )
                uow.session.add(row)
                IVR(
                    uow,
                    "step",
                    {
                        "channel_id": session.id,
                        "seq": seq,
                        "entry": entry.name,
                        "menu": step.menu,
                        "event": step.event,
                        "digit": step.digit,
                        "detail": step.detail,
                        "version": version,
                        "at": row.at,
                    },
                )
        return seq

    # -- destinations -----------------------------------------------------------------------
    async def _route(
        self, session: Prompter, route: Route, entry: Entry, digit_at: float | None = None
    ) -> None:
        action = route.action
        for name, value in route.inputs.items():
            # Digits the caller typed, kept with the call for the next step (agent screen).
            await session.set_var(f"TELEPHONIST_INPUT_{name.upper()}", value)
        kind = action.kind
        if kind == "play":
            playback = await session.start_playback(media(action.play or []))
            self.latency.prompt_started(digit_at)
            while (await session.wait("PlaybackFinished", timeout=300, playback=playback))[
                "playback"
            ]["id"] != playback:
                pass
            await session.hangup()
        elif kind == "agi":
            await self.router.to_dialplan(
                session,
                "agi",
                TELEPHONIST_AGI_ROUTE=action.agi or "",
                TELEPHONIST_LINE=entry.name,
                TELEPHONIST_LINE_NUMBER=entry.number,
            )
        else:
            dest = destination(action)
            if dest is not None:
                await self.router.send(session, dest, entry.name)


def destination(action: Action) -> Destination | None:
    """An IVR action that sends the caller elsewhere, as a destination (None: ``play``,
    ``agi``, ``back``, ``repeat``, which the IVR does itself).

    >>> str(destination(Action.model_validate({"transfer": {"number": "01", "trunk": "o"}})))
    'outside:01@o'
    """
    kind = action.kind
    if kind == "hangup":
        return Destination("hangup")
    if kind == "transfer" and action.transfer is not None:
        return Destination("outside", action.transfer.number, action.transfer.trunk)
    if kind == "callback" and action.callback is not None:
        return Destination("callback", action.callback.queue)
    target = {"queue": action.queue, "extension": action.extension,
              "voicemail": action.voicemail, "menu": action.menu}.get(kind)  # fmt: skip
    return Destination(kind, target) if target else None
