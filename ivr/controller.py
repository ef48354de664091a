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
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import col

from acd.controller import AcdController
from callbacks import tasks
from callbacks.policy import NumberPolicy
from core import calls, metrics
from core.centre import Centre
from core.models import CallbackRequest, IvrStep
from core.stasis import CallEnded, CallSession
from core.storage import Store
from ivr.engine import (
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
from ivr.loader import MenuSet
from ivr.model import Action, Entry
from ivr.registry import MenuRegistry

log = logging.getLogger("telephonist.ivr")

DTMF = frozenset("0123456789*#")


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


DEST_CONTEXT = "telephonist-dest"
_DEST = re.compile(r"^(menu|queue|voicemail|extension):([a-z0-9][a-z0-9_-]{0,39})$")


def _line_entry(line: str) -> Entry:
    """A stand-in entry for a line that is not an IVR entry (only its name is used)."""
    return Entry(
        number="0",
        name=line if re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", line) else "unknown",
        menu="none",
    )


def media(prompts: tuple[str, ...] | list[str]) -> list[str]:
    return [f"sound:{p}" for p in prompts]


class IvrController:
    def __init__(
        self,
        store: Store,
        registry: MenuRegistry,
        centre: Centre,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        acd: AcdController | None = None,
        *,
        policy: NumberPolicy,
        latency: LatencyLog | None = None,
    ) -> None:
        self.latency = latency or LatencyLog()
        self.store = store
        self.registry = registry
        self.centre = centre
        self.clock = clock
        self.acd = acd
        self.policy = policy
        if acd is not None:
            acd.send = self.send
        self.extensions = frozenset(e.number for e in centre.extensions)

    # -- Stasis routes ----------------------------------------------------------------------
    async def start(self, session: CallSession) -> None:
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

    async def resume(self, session: CallSession) -> None:
        """Route ``ivr-resume``: back from a FastAGI decision (TELEPHONIST_DEST)."""
        menus = self.registry.current
        entry = menus.config.entry(session.line)
        if entry is None:
            return
        dest = await session.get_var("TELEPHONIST_DEST")
        machine = IvrMachine(menus.config, entry, self.extensions)
        m = _DEST.match(dest)
        steps: list[Command] = [Step("", "route", detail=f"agi decided {dest or '(nothing)'}")]
        if m and m.group(1) == "menu" and m.group(2) in menus.config.menus:
            cmds = steps + machine.enter(m.group(2))
        elif m and m.group(1) != "menu":
            action = Action.model_validate({m.group(1): m.group(2)})
            cmds = [*steps, Step("", "route", detail=action.describe()), Route(action)]
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

    async def send(self, session: CallSession, action: Action, line: str) -> None:
        """Send a caller who is not in a menu to ``action`` (used for queue redirects)."""
        menus = self.registry.current
        entry = menus.config.entry(line)
        if action.kind == "menu":
            if entry is None or action.menu not in menus.config.menus:
                log.error(
                    "call %s: cannot start menu %s from line %r", session.id, action.menu, line
                )
                await session.hangup()
                return
            machine = IvrMachine(menus.config, entry, self.extensions)
            seq = await self._last_seq(session.id)
            await self._drive(session, machine, machine.enter(action.menu), menus, entry, seq)
            return
        await self._route(session, Route(action), entry or _line_entry(line))

    # -- the loop ---------------------------------------------------------------------------
    async def _drive(
        self,
        session: CallSession,
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
        self, session: CallSession, entry: Entry, version: int, steps: list[Step], seq: int
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
                uow.emit(
                    "ivr",
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
        self, session: CallSession, route: Route, entry: Entry, digit_at: float | None = None
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
        elif kind == "hangup":
            await session.hangup()
        elif kind == "queue" and action.queue is not None:
            if self.acd is not None:
                await self.acd.to_queue(session, action.queue, entry.name)
            else:
                await self._dest(session, "queue", TELEPHONIST_QUEUE=action.queue)
        elif kind == "extension":
            await self._dest(
                session,
                "extension",
                TELEPHONIST_EXTEN=action.extension,
                TELEPHONIST_RING_SECONDS="30",
            )
        elif kind == "voicemail":
            mailbox = self.centre.mailbox(action.voicemail or "")
            await self._dest(
                session,
                "voicemail",
                TELEPHONIST_MAILBOX=action.voicemail,
                TELEPHONIST_VM_OPTIONS=mailbox.options if mailbox else "u",
            )
        elif kind == "transfer" and action.transfer is not None:
            await self._dest(
                session,
                "outside",
                TELEPHONIST_NUMBER=action.transfer.number,
                TELEPHONIST_TRUNK=action.transfer.trunk,
            )
        elif kind == "agi":
            await self._dest(
                session,
                "agi",
                TELEPHONIST_AGI_ROUTE=action.agi,
                TELEPHONIST_LINE=entry.name,
                TELEPHONIST_LINE_NUMBER=entry.number,
            )
        elif kind == "callback" and action.callback is not None:
            await self._callback(session, entry, action.callback.queue)

    async def _dest(self, session: CallSession, exten: str, **variables: str | None) -> None:
        for name, value in variables.items():
            await session.set_var(name, value or "")
        await session.continue_in_dialplan(DEST_CONTEXT, exten)

    async def _callback(self, session: CallSession, entry: Entry, queue: str) -> None:
        """Confirm the number to call, store the request, and only then confirm it."""

        def task(number: str) -> CallbackRequest:
            # Their place: as if they had joined the queue now (virtual hold).
            return CallbackRequest(number=number, queue=queue, channel_id=session.id,
                                   line=entry.name, joined_at=datetime.now(UTC))  # fmt: skip

        result = await request_callback(session, self.store, self.policy, self.centre, task)
        if result != "stored":
            await session.play("sound:goodbye")
        await session.hangup()


async def request_callback(
    session: CallSession,
    store: Store,
    policy: NumberPolicy,
    centre: Centre,
    task: Callable[[str], CallbackRequest],
) -> str:
    """A caller asks to be called back: confirm a number (theirs or one they type), store the
    task — only a number the centre's policy allows, at most ``requests_per_caller`` per
    caller number, the number's open task if it has one — and only then say thank you.

    A refused number is explained ("your call cannot be completed as dialled") and the caller
    may type another (three tries); a caller over the limit hears that the service is not
    available on their line. Returns ``stored``, ``refused``, ``limited`` or ``none``."""
    refused: set[str] = set()
    requested_by = session.caller_number.lstrip("+")
    requested_by = requested_by if requested_by.isdigit() else "anonymous"
    rules = centre.callbacks
    for _ in range(3):
        number = await confirm_number(session, refused)
        if number is None:
            return "none"
        cb = task(number)
        cb.requested_by = requested_by
        try:
            async with store.unit_of_work() as uow:
                cb, created = await tasks.create(
                    uow, cb, policy=policy,
                    limit=(rules.requests_per_caller, rules.requests_window),
                )  # fmt: skip
        except tasks.NumberRefused as exc:
            log.info("call %s: callback to %s refused: %s", session.id, number, exc.verdict.why)
            await _tell(store, "refused", session, cb, exc.verdict.reason)
            refused.add(number)
            await session.play("sound:cannot-complete-as-dialed")
            continue
        except tasks.TooManyRequests as exc:
            log.warning("call %s: %s", session.id, exc)
            await _tell(store, "limited", session, cb, "requests_per_caller")
            await session.play("sound:im-sorry")
            await session.play("sound:feature-not-avail-line")
            return "limited"
        log.info("call %s: callback %s for %s (%s)", session.id, cb.id, number,
                 "new" if created else "already open")  # fmt: skip
        await session.play("sound:auth-thankyou")  # the promise, after the record exists
        return "stored"
    return "refused"


async def _tell(
    store: Store, event: str, session: CallSession, cb: CallbackRequest, reason: str
) -> None:
    """``callbacks/refused`` or ``callbacks/limited``: a request that made no task, for the
    records and for CRMs (who asked, for which number, why)."""
    async with store.unit_of_work() as uow:
        uow.emit("callbacks", event, {"number": cb.number, "queue": cb.queue,
                                      "source": cb.source, "requested_by": cb.requested_by,
                                      "channel_id": session.id, "reason": reason})  # fmt: skip


async def confirm_number(session: CallSession, refused: set[str] | None = None) -> str | None:
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
    session: CallSession,
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
