"""The centre's definitions: what the callers can dial and where telephonist takes them.

This file grows with each capability (queues, agents, menus, mailboxes). For now it names the
entry lines: a number callers dial, the route (Stasis argument) that handles it, and the
fallback the dialplan uses when telephonist is not there to take the call.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DIGITS = r"^[0-9*#+]{1,32}$"
NAME = r"^[a-z][a-z0-9_-]{0,39}$"


class CentreError(Exception):
    """A bad definition: the message names the file, line and field."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Def):
    """One number callers dial (a DID or an internal number)."""

    number: str = Field(pattern=DIGITS)
    name: str = Field(pattern=NAME)
    route: str = Field(default="demo", pattern=NAME)
    """Which telephonist controller takes the call (passed to Stasis as its first argument)."""
    answer: Literal["immediate", "on_pickup"] = "immediate"
    fallback: Literal["hangup", "busy", "playback"] = "playback"
    """What the dialplan does when the Stasis app is not registered (telephonist down)."""


class Centre(_Def):
    name: str = "demo"
    lines: tuple[Line, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Centre:
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            if line.number in seen:
                raise ValueError(f"lines.{i}.number: {line.number} is defined twice")
            seen.add(line.number)
        return self


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping key (for error messages)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if hasattr(k, "value")}
    mapping["__lines__"] = lines
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(data: object) -> object:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in ("__lines__", "__line__")}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _line_of(data: object, loc: tuple[int | str, ...]) -> int | None:
    line = None
    node = data
    for part in loc:
        if isinstance(node, dict):
            line = node.get("__lines__", {}).get(part, node.get("__line__", line))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = node.get("__line__", line)
        else:
            break
    return line


def parse_centre(text: str, source: str) -> Centre:
    """Parse a centre definition; errors name ``source``, the line and the field."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise CentreError(f"{source}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CentreError(f"{source}:1: the file must be a mapping (name:, lines:)")
    try:
        return Centre.model_validate(_strip(raw))
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            field = ".".join(str(p) for p in loc) or "(top)"
            line = _line_of(raw, loc)
            where = f"{source}:{line}" if line else source
            msgs.append(f"{where}: {field}: {e['msg']} (got {e.get('input')!r})")
        raise CentreError("\n".join(msgs)) from None


def load_centre(path: Path | None) -> Centre:
    """Load the centre file, or the shipped demo centre when ``path`` is None."""
    if path is None:
        text = resources.files("demo").joinpath("centre.yaml").read_text()
        return parse_centre(text, "demo/centre.yaml")
    try:
        text = path.read_text()
    except OSError as exc:
        raise CentreError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_centre(text, str(path))
