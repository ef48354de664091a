"""Load a menu file and check it: every problem with its file, line and field.

Checks beyond the schema: unknown menus, queues, extensions, mailboxes and trunks; prompt
files that Asterisk does not have; menus no entry reaches; and loops with no way out (menus
from which no digit leads anywhere but to other menus of the loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephonist.core.centre import Centre, Line
from telephonist.core.yamlfile import DefinitionError, line_of, load_raw, read_definition, validate
from telephonist.ivr.model import TERMINAL, Action, IvrConfig, Menu


class IvrError(DefinitionError):
    """The menu file has problems; ``problems`` lists them, each with file:line: field."""


@dataclass(frozen=True)
class MenuSet:
    """One loaded, checked version of the menus. Calls keep the version they started on."""

    config: IvrConfig
    version: int
    source: str


def _where(source: str, raw: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    line = line_of(raw, loc)
    return f"{source}:{line}" if line else source


def check(
    config: IvrConfig,
    raw: dict[str, Any],
    source: str,
    centre: Centre,
    prompts: set[str] | None,
) -> list[str]:
    """Semantic problems of a schema-valid config (empty list: fine)."""
    problems: list[str] = []
    menus = config.menus

    def where(*loc: int | str) -> str:
        return _where(source, raw, loc)

    def check_action(action: Action, loc: tuple[int | str, ...]) -> None:
        kind = action.kind
        if kind == "menu" and action.menu not in menus:
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown menu {action.menu!r}"
            )
        elif kind == "queue" and action.queue not in centre.queue_names:
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown queue {action.queue!r}"
            )
        elif (
            kind == "callback"
            and action.callback
            and action.callback.queue not in centre.queue_names
        ):
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown queue {action.callback.queue!r}"
            )
        elif kind == "extension" and action.extension not in {e.number for e in centre.extensions}:
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown extension {action.extension!r}"
            )
        elif kind == "voicemail" and action.voicemail not in {m.box for m in centre.mailboxes}:
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown mailbox {action.voicemail!r}"
            )
        elif (
            kind == "transfer"
            and action.transfer
            and action.transfer.trunk not in {t.name for t in centre.trunks}
        ):
            problems.append(
                f"{where(*loc)}: {'.'.join(map(str, loc))}: unknown trunk {action.transfer.trunk!r}"
            )
        elif kind == "play" and prompts is not None:
            for p in action.play or []:
                if p not in prompts:
                    problems.append(
                        f"{where(*loc)}: {'.'.join(map(str, loc))}: no prompt file {p!r}"
                    )

    for i, entry in enumerate(config.entries):
        if entry.menu not in menus:
            problems.append(
                f"{where('entries', i, 'menu')}: entries.{i}.menu: unknown menu {entry.menu!r}"
            )
        check_action(entry.after_hours, ("entries", i, "after_hours"))
    for key in ("vip_destination", "vip_otherwise"):
        action = getattr(config, key)
        if action is not None:
            check_action(action, (key,))

    for name, menu in menus.items():
        base = ("menus", name)
        for d, action in menu.options.items():
            check_action(action, (*base, "options", d))
        if menu.input is not None:
            check_action(menu.input.then, (*base, "input", "then"))
        check_action(menu.on_failure, (*base, "on_failure"))
        if prompts is not None:
            for field in ("greeting", "invalid_prompt", "timeout_prompt"):
                for p in getattr(menu, field):
                    if p not in prompts:
                        problems.append(
                            f"{where(*base, field)}: menus.{name}.{field}: no prompt file {p!r}"
                        )

    reachable = _reachable(config)
    for name in menus:
        if name not in reachable:
            problems.append(
                f"{where('menus', name)}: menus.{name}: unreachable (no entry or option leads here)"
            )

    for name in sorted(_trapped(menus)):
        problems.append(
            f"{where('menus', name)}: menus.{name}: loop with no way out (every option leads "
            "only to other menus of the loop; give one a queue, mailbox, callback or other exit)"
        )
    return problems


def _targets(menu: Menu) -> list[str]:
    return [a.menu for _, a in menu.actions() if a.kind == "menu" and a.menu]


def _reachable(config: IvrConfig) -> set[str]:
    seen: set[str] = set()
    todo = [e.menu for e in config.entries]
    for action in (config.vip_destination, config.vip_otherwise):
        if action is not None and action.menu:
            todo.append(action.menu)
    while todo:
        name = todo.pop()
        if name in seen or name not in config.menus:
            continue
        seen.add(name)
        todo.extend(_targets(config.menus[name]))
    return seen


def _trapped(menus: dict[str, Menu]) -> set[str]:
    """Menus from which no option or input (a choice the caller makes) leads to an exit."""
    exits: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, menu in menus.items():
            if name in exits:
                continue
            choices = list(menu.options.values()) + ([menu.input.then] if menu.input else [])
            for a in choices:
                if a.kind in TERMINAL or (a.kind == "menu" and a.menu in exits):
                    exits.add(name)
                    changed = True
                    break
    # back/repeat are not exits by themselves; a menu with only those is trapped too.
    return {name for name in menus if name not in exits}


def parse_menus(
    text: str, source: str, centre: Centre, prompts: set[str] | None = None, version: int = 1
) -> MenuSet:
    """Parse and check; raises IvrError listing every problem."""
    try:
        raw = load_raw(text, source)
        config = validate(IvrConfig, raw, source)
    except DefinitionError as exc:
        raise IvrError(exc.problems) from None
    problems = check(config, raw, source, centre, prompts)
    if problems:
        raise IvrError(problems)
    return MenuSet(config=config, version=version, source=source)


def load_menus(
    path: Path, centre: Centre, prompts: set[str] | None = None, version: int = 1
) -> MenuSet:
    try:
        text = read_definition(path)
    except OSError as exc:
        raise IvrError([f"{path}: cannot read: {exc.strerror}"]) from None
    except DefinitionError as exc:
        raise IvrError(exc.problems) from None
    return parse_menus(text, str(path), centre, prompts, version)


def entry_lines(menus: MenuSet) -> list[Line]:
    """The IVR entries as dialplan lines (route ``ivr``)."""
    return [
        Line(number=e.number, name=e.name, route="ivr", fallback=e.fallback)
        for e in menus.config.entries
    ]
