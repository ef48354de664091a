"""The callbacks' rules without a database or a PBX (callbacks/rules.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telephonist.callbacks.rules import NOT_PLACED_RETRY, AfterTry, after_try, kept_place

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_tries_until_answered_or_out_of_attempts() -> None:
    def after(outcome: str, attempts: int, counted: bool = True) -> AfterTry:
        return after_try(outcome, attempts=attempts, counted=counted, max_attempts=3,
                         retry_delay=600, now=NOW)  # fmt: skip

    assert after("answered", 3).state == "done"  # even on the last try
    busy = after("busy", 1)
    assert (busy.state, busy.due_at, busy.retry) == ("pending", NOW + timedelta(minutes=10), True)
    assert after("no_answer", 2).state == "pending"
    failed = after("no_answer", 3)
    assert (failed.state, failed.reason) == ("failed", "3 attempts, last: no_answer")
    # A try that never dialled the customer (the queue refused the placeholder) does not
    # count and comes back soon, even past the maximum.
    refused = after("not_placed:JOINEMPTY", 3, counted=False)
    assert (refused.state, refused.retry) == ("pending", False)
    assert refused.due_at == NOW + timedelta(seconds=NOT_PLACED_RETRY)


def test_the_kept_place_is_between_earlier_and_later_callers() -> None:
    def at(s: float) -> datetime:
        return datetime.fromtimestamp(s, UTC)

    waiting = [("PJSIP/a-1", 10.0), ("PJSIP/b-2", 20.0), ("PJSIP/c-3", 30.0)]
    assert kept_place(at(5), waiting, {}) == 1  # before everyone: first
    assert kept_place(at(25), waiting, {}) == 3  # after a and b
    assert kept_place(at(35), waiting, {}) == 0  # after everyone: the end
    assert kept_place(at(25), [], {}) == 0  # nobody waiting
    # Another callback's placeholder joined late (at 40) but keeps its customer's place (1).
    with_cb = [*waiting, ("Local/cb9x2@telephonist-cb-queue-0001;1", 40.0)]
    assert kept_place(at(25), with_cb, {"Local/cb9x2@": at(1)}) == 4
    assert kept_place(at(25), with_cb, {}) == 3
