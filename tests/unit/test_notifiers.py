"""Each capability publishes through its one notifier, and what the notifiers declare is what
the README's events table documents (for a CRM developer, that table is the contract)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from telephonist.acd.events import ACD
from telephonist.agi_handlers.events import AGI
from telephonist.callbacks.events import CALLBACKS, VOICEMAIL
from telephonist.core.calls import CALLS
from telephonist.dialer.events import DIALER
from telephonist.ivr.events import IVR

ROOT = Path(__file__).parents[2]
PRODUCT = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ].values()
)
"""The product's folders, as pyproject maps them into the one import name."""
NOTIFIERS = [ACD, AGI, CALLBACKS, VOICEMAIL, CALLS, DIALER, IVR]


def test_nothing_emits_an_event_but_a_notifier() -> None:
    direct = []
    for folder in PRODUCT:
        for path in (ROOT / folder).rglob("*.py"):
            if path.relative_to(ROOT).as_posix() in ("core/storage.py", "core/notify.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "emit"
                ):
                    direct.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert direct == []


def documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Events (MQTT)", 1)[1].split("\n## ", 1)[0]
    topics = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names = re.findall(r"`([a-z_/]+)`", line.split("|")[1])
        domain = names[0].split("/")[0]
        topics |= {n if "/" in n else f"{domain}/{n}" for n in names}
    return topics


def test_every_event_is_documented_and_every_documented_event_exists() -> None:
    declared = {t for n in NOTIFIERS for t in n.topics}
    assert documented() == declared
