"""The centre's definitions: what callers can dial and what exists to route them to.

- ``lines``: numbers callers dial, each handed to a telephonist route (Stasis argument), with
  the fallback the dialplan uses when telephonist is not there to take the call;
- ``queues``, ``extensions`` (agents' and staff phones), ``mailboxes``, ``trunks``: the
  destinations menus and queues can send a caller to (rendered into the Asterisk config);
- ``ivr``: the menu file (see ``ivr/``), whose entry points become lines too.

Everything here ends up in dialplan or config files, so every field is validated against a
strict pattern: nothing that could inject dialplan syntax gets through.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.yamlfile import DefinitionError, load_raw, validate

DIGITS = r"^[0-9]{1,20}$"
DIALSTRING = r"^\+?[0-9]{1,20}$"
NAME = r"^[a-z][a-z0-9_-]{0,39}$"
LABEL = r"^[A-Za-z0-9 .'_-]{0,60}$"
FALLBACK = r"^(hangup|busy|playback|queue:[a-z][a-z0-9_-]{0,39}|voicemail:[0-9]{1,20})$"


class CentreError(DefinitionError):
    """A bad centre definition: the message names the file, line and field."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Def):
    """One number callers dial (a DID or an internal number)."""

    number: str = Field(pattern=r"^[0-9*#+]{1,32}$")
    name: str = Field(pattern=NAME)
    route: str = Field(default="demo", pattern=NAME)
    """Which telephonist controller takes the call (passed to Stasis as its first argument)."""
    fallback: str = Field(default="playback", pattern=FALLBACK)
    """What the dialplan does when telephonist is down: ``playback`` (a message), ``busy``,
    ``hangup``, ``queue:<name>`` or ``voicemail:<box>``."""


class Queue(_Def):
    name: str = Field(pattern=NAME)
    strategy: Literal[
        "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom"
    ] = "ringall"
    timeout: int = Field(default=15, ge=1, le=600)
    """Seconds an agent's phone rings before the next try."""
    wrapup: int = Field(default=0, ge=0, le=3600)
    maxlen: int = Field(default=0, ge=0)
    """0: no limit."""


class Extension(_Def):
    """A phone telephonist can ring (an agent's or a member of staff's)."""

    number: str = Field(pattern=r"^[0-9]{2,8}$")
    name: str = Field(default="", pattern=LABEL)
    contact: str | None = Field(default=None, pattern=r"^sip:[A-Za-z0-9.-]+:[0-9]{1,5}$")
    """A fixed SIP address (no registration), e.g. a desk phone or a test agent."""


class Mailbox(_Def):
    box: str = Field(pattern=DIGITS)
    name: str = Field(default="", pattern=LABEL)
    email: str | None = Field(default=None, pattern=r"^[^\s,|<>\"]+@[^\s,|<>\"]+$")


class Trunk(_Def):
    """An outside line: a SIP peer the centre sends outside numbers to."""

    name: str = Field(pattern=NAME)
    host: str = Field(pattern=r"^[A-Za-z0-9.-]+$")
    port: int = Field(default=5060, ge=1, le=65535)


class Centre(_Def):
    name: str = Field(default="demo", pattern=NAME)
    lines: tuple[Line, ...] = ()
    queues: tuple[Queue, ...] = ()
    extensions: tuple[Extension, ...] = ()
    mailboxes: tuple[Mailbox, ...] = ()
    trunks: tuple[Trunk, ...] = ()
    ivr: Path | None = None
    """The menu file (relative to this file)."""

    @model_validator(mode="after")
    def _consistent(self) -> Centre:
        _unique("lines", [x.number for x in self.lines], "number")
        _unique("lines", [x.name for x in self.lines], "name")
        _unique("queues", [x.name for x in self.queues], "name")
        _unique("extensions", [x.number for x in self.extensions], "number")
        _unique("mailboxes", [x.box for x in self.mailboxes], "box")
        _unique("trunks", [x.name for x in self.trunks], "name")
        for i, line in enumerate(self.lines):
            kind, _, target = line.fallback.partition(":")
            if kind == "queue" and target not in self.queue_names:
                raise ValueError(f"lines.{i}.fallback: no queue named {target!r}")
            if kind == "voicemail" and target not in {m.box for m in self.mailboxes}:
                raise ValueError(f"lines.{i}.fallback: no mailbox {target!r}")
        return self

    @property
    def queue_names(self) -> set[str]:
        return {q.name for q in self.queues}

    def with_lines(self, extra: list[Line]) -> Centre:
        return self.model_copy(update={"lines": (*self.lines, *extra)})


def _unique(section: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{section}.{i}.{field}: {value!r} is defined twice")
        seen.add(value)


def parse_centre(text: str, source: str) -> Centre:
    """Parse a centre definition; errors name ``source``, the line and the field."""
    try:
        return validate(Centre, load_raw(text, source), source)
    except DefinitionError as exc:
        raise CentreError(exc.problems) from None


def load_centre(path: Path | None) -> Centre:
    """Load the centre file, or the shipped demo centre when ``path`` is None. A relative
    ``ivr`` path is made absolute against the file's folder."""
    if path is None:
        demo = resources.files("demo")
        centre = parse_centre(demo.joinpath("centre.yaml").read_text(), "demo/centre.yaml")
        base = Path(str(demo))
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise CentreError([f"{path}: cannot read: {exc.strerror}"]) from None
        centre = parse_centre(text, str(path))
        base = path.parent
    if centre.ivr is not None and not centre.ivr.is_absolute():
        centre = centre.model_copy(update={"ivr": (base / centre.ivr).resolve()})
    return centre
