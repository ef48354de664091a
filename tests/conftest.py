"""Shared fixtures. Real components (Asterisk, sipp, Mosquitto, PostgreSQL) are never
skipped: if one cannot start, the test fails and says why."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TELEPHONIST_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("TELEPHONIST_"):
            monkeypatch.delenv(key)
