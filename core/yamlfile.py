"""YAML definition files with errors that name the file, the line and the field.

Used by every file an admin writes (centre, menus). Duplicate keys are errors (plain YAML
keeps the last one silently: a menu with two "1:" options would lose one without a word).

A definition file cannot hurt the process that reads it: it must be UTF-8, at most
:data:`MAX_BYTES`, at most :data:`MAX_DEPTH` levels deep, with at most :data:`MAX_ALIASES`
aliases and :data:`MAX_NODES` values once aliases are expanded. The limits are checked on the
parsed node graph *before* any Python object is built, so an alias bomb (a few hundred bytes
that expand to billions of values) is refused in milliseconds with bounded memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

LINES = "__lines__"
LINE = "__line__"

MAX_BYTES = 2 * 1024 * 1024
"""A definition file larger than this is refused (the largest real centre is ~100 KB)."""
MAX_DEPTH = 40
MAX_ALIASES = 200
MAX_NODES = 100_000


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


def read_definition(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's text, refused with ``file:line`` if it is too large or not UTF-8.

    Raises DefinitionError (and OSError if it cannot be read).
    """
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DefinitionError([f"{path}: larger than {max_bytes} bytes; refused"])
    return decode_utf8(data, str(path))


def decode_utf8(data: bytes, source: str) -> str:
    r"""Decode UTF-8, naming the line and column of the first bad byte.

    >>> try:
    ...     decode_utf8("a: 1\nname: caf\xe9".encode("latin-1"), "m.yaml")
    ... except DefinitionError as exc:
    ...     print(exc)
    m.yaml:2: not UTF-8 (byte 0xe9 at column 10); save the file as UTF-8
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DefinitionError(
            [
                f"{source}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x} at column {column});"
                " save the file as UTF-8"
            ]
        ) from None


def _check_graph(root: yaml.Node, source: str) -> None:
    """Refuse node graphs that are too deep, use too many aliases or expand too far.

    Aliases make the graph a DAG: a node reached twice is shared. Its expanded size is
    computed once per node (memoised), so the check itself is linear in the file.
    """
    size: dict[int, int] = {}
    shared: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        where = f"{source}:{node.start_mark.line + 1}"
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise DefinitionError(
                    [f"{where}: expands to more than {MAX_NODES} values (aliases); refused"]
                )
            size[key] = total
            continue
        if key in size or key in on_path:
            shared.add(key)
            if len(shared) > MAX_ALIASES:
                raise DefinitionError([f"{where}: more than {MAX_ALIASES} aliases; refused"])
            if key in on_path:
                raise DefinitionError([f"{where}: an alias refers to itself; refused"])
            continue
        if depth > MAX_DEPTH:
            raise DefinitionError([f"{where}: nested deeper than {MAX_DEPTH} levels; refused"])
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _load_checked(text: str, source: str) -> Any:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_raw(text: str, source: str) -> dict[str, Any]:
    """Parse YAML keeping line numbers; raises DefinitionError."""
    if len(text) > MAX_BYTES:
        raise DefinitionError([f"{source}: larger than {MAX_BYTES} characters; refused"])
    try:
        raw = _load_checked(text, source)
    except RecursionError:
        raise DefinitionError([f"{source}: nested too deeply; refused"]) from None
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
