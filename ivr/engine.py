"""The IVR state machine for one call: pure, no I/O, driven by events, answering commands.

Events in: the call starts, a digit arrives, the prompt finishes, the wait times out.
Commands out: play these prompts, stop the prompt (barge-in), wait N seconds for a digit,
record a journey step, route the caller (the last command: the caller leaves the menus).

States: ``playing`` (a greeting or re-prompt is playing; digits barge in), ``waiting`` (the
prompt is over, a timer runs), ``done``. Every transition is a :class:`Step` so the whole
journey can be stored and replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from telephonist.core.hours import is_open as hours_open
from telephonist.ivr.model import Action, Entry, IvrConfig, Menu

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class PlaybackDone:
    pass


@dataclass(frozen=True)
class Timeout:
    pass


Event = Digit | PlaybackDone | Timeout

# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    language: str


@dataclass(frozen=True)
class StopPlayback:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Step:
    """One line of the caller's journey."""

    menu: str
    event: Literal["enter", "digit", "input", "invalid", "timeout", "failure", "route", "closed"]
    digit: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Route:
    action: Action
    inputs: dict[str, str] = field(default_factory=dict)


Command = Play | StopPlayback | Wait | Step | Route


def is_open(config: IvrConfig, entry: Entry, now: datetime) -> bool:
    """Whether ``entry`` is open at ``now`` (any time zone; converted to the entry's)."""
    return hours_open(entry.hours, now, config.zone(entry).key, entry.holidays)


class IvrMachine:
    def __init__(
        self, config: IvrConfig, entry: Entry, extensions: frozenset[str] = frozenset()
    ) -> None:
        self.config = config
        self.entry = entry
        self.extensions = extensions if entry.direct_dial else frozenset()
        self.state: Literal["new", "playing", "waiting", "done"] = "new"
        self.menu_name = entry.menu
        self.stack: list[str] = []
        self.tries = 0
        self.buffer = ""
        self.dialling_extension = False
        self.inputs: dict[str, str] = {}

    @property
    def menu(self) -> Menu:
        return self.config.menus[self.menu_name]

    @property
    def language(self) -> str:
        return self.menu.language or self.config.language

    # -- entry points -------------------------------------------------------------------
    def start(self, now: datetime) -> list[Command]:
        if not is_open(self.config, self.entry, now):
            return self._route(self.entry.after_hours, [Step("", "closed", detail="after hours")])
        return self._enter(self.entry.menu)

    def enter(self, menu: str) -> list[Command]:
        """Start directly in ``menu`` (e.g. where a FastAGI route decided)."""
        return self._enter(menu)

    def handle(self, event: Event) -> list[Command]:
        if self.state == "done":
            return []
        if isinstance(event, PlaybackDone):
            if self.state != "playing":
                return []
            self.state = "waiting"
            return [Wait(self._wait_seconds())]
        if isinstance(event, Timeout):
            if self.state != "waiting":
                return []
            return self._timeout()
        out: list[Command] = []
        if self.state == "playing":
            out.append(StopPlayback())  # barge-in: the caller knows what they want
            self.state = "waiting"
        return out + self._digit(event.digit)

    # -- internals ----------------------------------------------------------------------
    def _wait_seconds(self) -> float:
        return self.menu.digit_timeout if self.buffer else self.menu.timeout

    def _enter(self, name: str) -> list[Command]:
        self.menu_name = name
        self.tries = 0
        self.buffer = ""
        self.dialling_extension = False
        self.state = "playing"
        return [Play(tuple(self.menu.greeting), self.language), Step(name, "enter")]

    def _replay(self, prefix: list[str]) -> list[Command]:
        self.buffer = ""
        self.dialling_extension = False
        self.state = "playing"
        return [Play(tuple(prefix + self.menu.greeting), self.language)]

    def _route(self, action: Action, steps: list[Command]) -> list[Command]:
        kind = action.kind
        if kind == "menu" and action.menu is not None:
            self.stack.append(self.menu_name)
            return steps + self._enter(action.menu)
        if kind == "back":
            return steps + self._enter(self.stack.pop() if self.stack else self.menu_name)
        if kind == "repeat":
            return steps + self._enter(self.menu_name)
        self.state = "done"
        return [
            *steps,
            Step(self.menu_name, "route", detail=action.describe()),
            Route(action, dict(self.inputs)),
        ]

    def _digit(self, d: str) -> list[Command]:
        menu = self.menu
        if menu.input is not None:
            spec = menu.input
            if spec.terminator and d == spec.terminator:
                if len(self.buffer) >= spec.min_digits:
                    return self._finish_input()
                return self._invalid(self.buffer + d)
            self.buffer += d
            if len(self.buffer) >= spec.max_digits:
                return self._finish_input()
            return [Wait(menu.digit_timeout)]
        if self.dialling_extension:
            self.buffer += d
            if self.buffer in self.extensions:
                ext = self.buffer
                return self._route(
                    Action(extension=ext), [Step(self.menu_name, "digit", ext, "direct dial")]
                )
            if any(e.startswith(self.buffer) for e in self.extensions):
                return [Wait(menu.digit_timeout)]
            return self._invalid(self.buffer)
        if self.menu_name == self.entry.menu and any(
            e.startswith(d) and len(e) > 1 for e in self.extensions
        ):
            # Could be the first digit of an extension: wait a moment for more.
            self.dialling_extension = True
            self.buffer = d
            return [Wait(menu.digit_timeout)]
        return self._option(d)

    def _option(self, d: str) -> list[Command]:
        action = self.menu.options.get(d)
        if action is None:
            return self._invalid(d)
        return self._route(action, [Step(self.menu_name, "digit", d, action.describe())])

    def _finish_input(self) -> list[Command]:
        spec = self.menu.input
        assert spec is not None
        self.inputs[spec.name] = self.buffer
        step = Step(self.menu_name, "input", self.buffer, spec.name)
        self.buffer = ""
        return self._route(spec.then, [step])

    def _timeout(self) -> list[Command]:
        if self.dialling_extension:
            first = self.buffer
            self.dialling_extension = False
            self.buffer = ""
            if len(first) == 1 and first in self.menu.options:
                return self._option(first)
            return self._invalid(first)
        spec = self.menu.input
        if spec is not None and self.buffer:
            if len(self.buffer) >= spec.min_digits:
                return self._finish_input()
            return self._invalid(self.buffer)
        return self._retry(Step(self.menu_name, "timeout"), self.menu.timeout_prompt)

    def _invalid(self, digits: str) -> list[Command]:
        return self._retry(Step(self.menu_name, "invalid", digits), self.menu.invalid_prompt)

    def _retry(self, step: Step, prompt: list[str]) -> list[Command]:
        self.tries += 1
        if self.tries > self.menu.retries:
            failure = Step(self.menu_name, "failure", detail=f"after {self.tries} tries")
            return self._route(self.menu.on_failure, [step, failure])
        return [step, *self._replay(prompt)]
