"""Campaign rules: calling windows in the contact's time zone, retries by outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from telephonist.dialer import rules

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 15:00 UTC
RETRY = json.dumps(rules.retry_delays("busy=300,no_answer=1800"))


def test_window_is_in_the_contacts_own_time() -> None:
    assert rules.in_window(NOW, "Europe/Paris", "09:00", "20:00", "mon-fri")  # 16:00
    assert not rules.in_window(NOW, "Asia/Tokyo", "09:00", "20:00", "mon-fri")  # 00:00 Tue
    assert not rules.in_window(NOW, "America/New_York", "09:00", "10:00", "mon-fri")  # 10:00
    assert not rules.in_window(NOW, "Europe/Paris", "09:00", "20:00", "sat,sun")
    with pytest.raises(rules.RuleError, match="unknown time zone"):
        rules.in_window(NOW, "Mars/Olympus", "09:00", "20:00", "mon-fri")


def test_retries_follow_the_outcome() -> None:
    assert rules.after_attempt("answered", 1, 3, RETRY, "US", NOW) == ("done", None)
    assert rules.after_attempt("busy", 1, 3, RETRY, "US", NOW) == (
        "retry", NOW + timedelta(seconds=300),
    )  # fmt: skip
    assert rules.after_attempt("no_answer", 2, 3, RETRY, "US", NOW) == (
        "retry", NOW + timedelta(seconds=1800),
    )  # fmt: skip
    assert rules.after_attempt("machine", 1, 3, RETRY, "US", NOW)[1] == NOW + timedelta(hours=2)
    assert rules.after_attempt("busy", 3, 3, RETRY, "US", NOW) == ("exhausted", None)
    # UK: an abandoned number is not called again within 72 hours.
    assert rules.after_attempt("abandoned", 1, 3, RETRY, "UK", NOW) == (
        "retry", NOW + timedelta(hours=72),
    )  # fmt: skip


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(rules.RuleError, match="--retry: 'fax=10' is not OUTCOME=SECONDS"):
        rules.retry_delays("fax=10")
    with pytest.raises(rules.RuleError, match="window_start: '25:00' is not HH:MM"):
        rules.in_window(NOW, "UTC", "25:00", "20:00", "mon")
