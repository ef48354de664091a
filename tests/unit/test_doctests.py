"""The pure parsers document themselves with doctests; run them here."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "agi_handlers.protocol",
    "core.ami",
    "core.backoff",
    "core.settings",
    "acd.redirects",
    "acd.queue_log",
    "callbacks.tasks",
    "callbacks.voicemail",
    "bench.dialer",
    "dialer.contacts",
    "dialer.rules",
    "dialer.dispositions",
    "core.yamlfile",
    "core.hours",
    "core.callcontrol",
    "core.numbers",
    "core.destinations",
    "serve.http",
    "callbacks.policy",
    "callbacks.rules",
    "asterisk_conf.render",
    "asterisk_conf.sandbox",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
