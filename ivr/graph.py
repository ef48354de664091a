"""Draw the menu tree: as indented text for the terminal, and as Graphviz DOT (then PNG/SVG
with ``dot``), because scenario designers think in diagrams."""

from __future__ import annotations

from telephonist.ivr.model import Action, IvrConfig


def _label(action: Action) -> str:
    return action.describe().replace(":", ": ", 1)


def to_text(config: IvrConfig, root: str) -> str:
    """An indented tree from ``root`` (a menu); a menu seen before is shown as a reference."""
    lines: list[str] = []
    seen: set[str] = set()

    def walk(name: str, indent: str) -> None:
        menu = config.menus[name]
        lines.append(f"{indent}[{name}] greeting: {', '.join(menu.greeting)}")
        if name in seen:
            lines[-1] += "  (see above)"
            return
        seen.add(name)
        for label, action in menu.actions():
            lines.append(f"{indent}  {label} -> {_label(action)}")
            if action.kind == "menu" and action.menu in config.menus:
                walk(action.menu, indent + "      ")
        lines.append(
            f"{indent}  (time-out {menu.timeout:g}s, {menu.retries} retries, "
            f"invalid: {', '.join(menu.invalid_prompt)})"
        )

    walk(root, "")
    return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(config: IvrConfig, root: str) -> str:
    """Graphviz DOT of every menu reachable from ``root`` and where each option leads."""
    out = [
        "digraph ivr {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    seen: set[str] = set()
    todo = [root]
    dest_id = 0
    while todo:
        name = todo.pop()
        if name in seen or name not in config.menus:
            continue
        seen.add(name)
        menu = config.menus[name]
        out.append(
            f"  {_q('menu:' + name)} [shape=box, style=rounded, "
            f"label={_q(name + chr(10) + ', '.join(menu.greeting))}];"
        )
        for label, action in menu.actions():
            if action.kind == "menu" and action.menu:
                out.append(
                    f"  {_q('menu:' + name)} -> {_q('menu:' + action.menu)} [label={_q(label)}];"
                )
                todo.append(action.menu)
            elif action.kind in ("back", "repeat"):
                text = _q(f"{label} ({action.kind})")
                me = _q("menu:" + name)
                out.append(f"  {me} -> {me} [label={text}, style=dashed];")
            else:
                dest_id += 1
                node = f"dest{dest_id}"
                shape = "ellipse" if action.kind != "hangup" else "octagon"
                out.append(f"  {node} [shape={shape}, label={_q(_label(action))}];")
                style = ", style=dotted" if label == "on failure" else ""
                out.append(f"  {_q('menu:' + name)} -> {node} [label={_q(label)}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"
