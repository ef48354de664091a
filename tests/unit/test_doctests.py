"""The pure parsers document themselves with doctests; run them here."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("acd", "agi_handlers", "asterisk_conf", "bench", "callbacks", "cli", "core", "demo",
            "dialer", "ivr", "reports", "serve")  # fmt: skip
MODULES = sorted(
    "telephonist." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if ">>> " in path.read_text(encoding="utf-8")
)
"""Every module with an example in it (found, so a new one is never left out)."""


def test_the_examples_are_found() -> None:
    assert {
        "telephonist.core.cel",
        "telephonist.reports.periods",
        "telephonist.core.numbers",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
