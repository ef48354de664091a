"""The pure parsers document themselves with doctests; run them here."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "telephonist.agi_handlers.protocol",
    "telephonist.core.ami",
    "telephonist.core.backoff",
    "telephonist.core.settings",
    "telephonist.acd.redirects",
    "telephonist.acd.queue_log",
    "telephonist.callbacks.tasks",
    "telephonist.callbacks.voicemail",
    "telephonist.bench.dialer",
    "telephonist.dialer.contacts",
    "telephonist.dialer.rules",
    "telephonist.dialer.observe",
    "telephonist.dialer.dispositions",
    "telephonist.core.yamlfile",
    "telephonist.core.hours",
    "telephonist.core.callcontrol",
    "telephonist.core.numbers",
    "telephonist.core.notify",
    "telephonist.reports.mail",
    "telephonist.reports.kpi",
    "telephonist.core.destinations",
    "telephonist.serve.http",
    "telephonist.callbacks.policy",
    "telephonist.callbacks.rules",
    "telephonist.asterisk_conf.render",
    "telephonist.asterisk_conf.sandbox",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
