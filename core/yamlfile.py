"""YAML definition files with errors that name the file, the line and the field.

Used by every file an admin writes (centre, menus). Duplicate keys are errors (plain YAML
keeps the last one silently: a menu with two "1:" options would lose one without a word).
"""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

LINES = "__lines__"
LINE = "__line__"


class DefinitionError(Exception):
    """A bad definition file. ``problems`` lists ``file:line: field: message`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineLoader(yaml.SafeLoader):
    pass


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKey(
                problem=f"duplicate key {key!r} (first at line {seen[key]})",
                problem_mark=key_node.start_mark,
            )
        seen[key] = line
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINES] = {str(k): v for k, v in seen.items()}
    mapping[LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strip_lines(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: strip_lines(v) for k, v in data.items() if k not in (LINES, LINE)}
    if isinstance(data, list):
        return [strip_lines(v) for v in data]
    return data


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest mapping key or list item on the path ``loc``."""
    line = data.get(LINE) if isinstance(data, dict) else None
    node = data
    for part in loc:
        if isinstance(node, dict):
            line = node.get(LINES, {}).get(str(part), line)
            node = node.get(part, node.get(str(part)))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = node.get(LINE, line)
        else:
            break
    return line


def load_raw(text: str, source: str) -> dict[str, Any]:
    """Parse YAML keeping line numbers; raises DefinitionError."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        what = "" if isinstance(exc, _DuplicateKey) else "not valid YAML: "
        raise DefinitionError([f"{where}: {what}{exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([f"{source}: not valid YAML: {exc}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DefinitionError([f"{source}:1: the file must be a mapping of keys to values"])
    return raw


def validate(model: type[M], raw: dict[str, Any], source: str) -> M:
    """Validate ``raw`` into ``model``; errors name the file, line and field."""
    try:
        return model.model_validate(strip_lines(raw))
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            field = ".".join(str(p) for p in loc) or "(top)"
            line = line_of(raw, loc)
            where = f"{source}:{line}" if line else source
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {field}: {msg} (got {_short(e.get('input'))})")
        raise DefinitionError(problems) from None


def _short(value: Any) -> str:
    text = repr(strip_lines(value))
    return text if len(text) <= 60 else text[:57] + "..."
