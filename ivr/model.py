"""IVR menu definitions: the YAML a scenario designer writes, validated and checked.

A menu file has ``entries`` (numbers callers dial, with business hours, holidays, a time zone
and an after-hours destination) and ``menus`` (greeting, digit options, time-outs, retries,
what happens after the last retry, or multi-digit input). See ``demo/menus.yaml``.

An *action* is written as one key: ``{menu: sales}``, ``{queue: support}``,
``{extension: "1001"}``, ``{voicemail: "100"}``, ``{callback: {queue: support}}``,
``{transfer: {number: "0123456789", trunk: office}}``, ``{play: [goodbye]}`` (then hang up),
``{agi: vip-lookup}``, or the words ``back``, ``repeat``, ``hangup``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telephonist.core.hours import check_hours, check_timezone

NAME = r"^[a-z][a-z0-9_-]{0,39}$"
PROMPT = r"^[a-z0-9][a-z0-9_/-]{0,79}$"
DIGIT_KEYS = set("0123456789*#")

ActionKind = Literal[
    "menu", "back", "repeat", "hangup", "queue", "extension", "voicemail",
    "callback", "transfer", "play", "agi",
]  # fmt: skip
TERMINAL: frozenset[str] = frozenset(
    {"queue", "extension", "voicemail", "callback", "transfer", "play", "agi", "hangup"}
)
"""Actions that take the caller out of the menus."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _prompts(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class CallbackSpec(_Def):
    queue: str = Field(pattern=NAME)
    """The queue whose agents will call back (the callback keeps its place there)."""


class TransferSpec(_Def):
    number: str = Field(pattern=r"^\+?[0-9]{1,20}$")
    trunk: str = Field(pattern=NAME)


class Action(_Def):
    """Exactly one of the fields is set."""

    menu: str | None = Field(default=None, pattern=NAME)
    back: bool = False
    repeat: bool = False
    hangup: bool = False
    queue: str | None = Field(default=None, pattern=NAME)
    extension: str | None = Field(default=None, pattern=r"^[0-9]{2,8}$")
    voicemail: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    callback: CallbackSpec | None = None
    transfer: TransferSpec | None = None
    play: list[str] | None = None
    agi: str | None = Field(default=None, pattern=NAME)

    @model_validator(mode="before")
    @classmethod
    def _word(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value in ("back", "repeat", "hangup"):
                return {value: True}
            raise ValueError(f"unknown action {value!r} (back, repeat, hangup or a mapping)")
        if isinstance(value, dict) and "play" in value:
            value = {**value, "play": _prompts(value["play"])}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        set_ = [k for k in self.model_fields_set if getattr(self, k) not in (None, False)]
        if len(set_) != 1:
            names = ", ".join(ActionKind.__args__)  # type: ignore[attr-defined]
            raise ValueError(f"an action has exactly one of: {names}")
        return self

    @field_validator("play")
    @classmethod
    def _prompt_names(cls, v: list[str] | None) -> list[str] | None:
        for p in v or []:
            if not re.match(PROMPT, p):
                raise ValueError(f"prompt {p!r}: lower-case sound name like 'goodbye'")
        return v

    @property
    def kind(self) -> str:
        for k in ActionKind.__args__:  # type: ignore[attr-defined]
            if getattr(self, k) not in (None, False):
                return str(k)
        raise AssertionError("validated action has a kind")

    def describe(self) -> str:
        kind = self.kind
        value = getattr(self, kind)
        if kind in ("back", "repeat", "hangup"):
            return kind
        if isinstance(value, BaseModel):
            inner = ",".join(str(v) for v in value.model_dump().values())
            return f"{kind}:{inner}"
        if isinstance(value, list):
            return f"{kind}:{'+'.join(value)}"
        return f"{kind}:{value}"


class InputSpec(_Def):
    """Multi-digit input ("enter your order number and press #")."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    """Stored with the call under this name, and set on the channel as TELEPHONIST_INPUT_<NAME>."""
    min_digits: int = Field(default=1, ge=1, le=32)
    max_digits: int = Field(default=16, ge=1, le=32)
    terminator: Literal["#", "*", ""] = "#"
    then: Action

    @model_validator(mode="after")
    def _range(self) -> InputSpec:
        if self.max_digits < self.min_digits:
            raise ValueError("max_digits must be at least min_digits")
        return self


class Menu(_Def):
    greeting: list[str] = Field(min_length=1)
    options: dict[str, Action] = Field(default_factory=dict)
    input: InputSpec | None = None
    timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds to wait for a first digit after the greeting."""
    digit_timeout: float = Field(default=3.0, gt=0, le=30)
    """Seconds between digits of multi-digit input or a direct-dialled extension."""
    retries: int = Field(default=2, ge=0, le=10)
    """How many more times the menu is offered after an invalid digit or silence."""
    invalid_prompt: list[str] = Field(default_factory=lambda: ["invalid"])
    timeout_prompt: list[str] = Field(default_factory=lambda: ["please-try-again"])
    on_failure: Action = Field(default_factory=lambda: Action(play=["goodbye"]))
    """After the last retry. Never leaves the caller in silence."""
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}(_[A-Z]{2})?$")

    _norm = field_validator("greeting", "invalid_prompt", "timeout_prompt", mode="before")(
        classmethod(lambda cls, v: _prompts(v))
    )

    @field_validator("greeting", "invalid_prompt", "timeout_prompt")
    @classmethod
    def _prompt_names(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.match(PROMPT, p):
                raise ValueError(f"prompt {p!r}: lower-case sound name like 'goodbye'")
        return v

    @field_validator("options", mode="before")
    @classmethod
    def _digit_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for key, action in v.items():
                k = str(key)
                if k not in DIGIT_KEYS:
                    raise ValueError(f"option {k!r}: options are single keys 0-9, * or #")
                out[k] = action
            return out
        return v

    @model_validator(mode="after")
    def _options_or_input(self) -> Menu:
        if self.input is not None and self.options:
            raise ValueError("a menu has either options or input, not both")
        if self.input is None and not self.options:
            raise ValueError("a menu needs options (digit: action) or input")
        return self

    def actions(self) -> list[tuple[str, Action]]:
        """Every (label, action) of the menu, for checks and graphs."""
        out = [(f"option {d}", a) for d, a in self.options.items()]
        if self.input is not None:
            out.append((f"input {self.input.name}", self.input.then))
        out.append(("on failure", self.on_failure))
        return out


class Entry(_Def):
    """A number callers dial that starts in a menu."""

    number: str = Field(pattern=r"^[0-9*#+]{1,32}$")
    name: str = Field(pattern=NAME)
    menu: str = Field(pattern=NAME)
    timezone: str | None = None
    hours: dict[str, str] | None = None
    """Omitted: always open."""
    holidays: list[date] = Field(default_factory=list)
    after_hours: Action = Field(default_factory=lambda: Action(play=["please-try-call-later"]))
    direct_dial: bool = False
    """Callers may dial an extension number at the first menu (FreePBX's "direct dial")."""
    fallback: str = "playback"
    """When telephonist is down: see core.centre.Line.fallback."""

    _tz = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))
    _hours = field_validator("hours")(classmethod(lambda cls, v: check_hours(v)))


class IvrConfig(_Def):
    timezone: str = "UTC"
    language: str = Field(default="en", pattern=r"^[a-z]{2}(_[A-Z]{2})?$")
    entries: list[Entry] = Field(default_factory=list)
    menus: dict[str, Menu] = Field(default_factory=dict)
    vip_numbers: list[str] = Field(default_factory=list)
    """Callers the sample FastAGI route ``vip-lookup`` recognises."""
    vip_destination: Action | None = None
    """Where ``vip-lookup`` sends a recognised caller."""
    vip_otherwise: Action | None = None
    """Where ``vip-lookup`` sends everybody else."""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v) or v

    @field_validator("menus", mode="before")
    @classmethod
    def _menu_names(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for name in v:
                if not isinstance(name, str) or not re.match(NAME, name):
                    raise ValueError(f"menu name {name!r}: lower-case letters, digits, - and _")
        return v

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def zone(self, entry: Entry) -> ZoneInfo:
        return ZoneInfo(entry.timezone or self.timezone)
