"""The callbacks' rules, as pure functions (no database, no telephony): what a task does after
a try, and where a customer's kept place is in the queue now. ``callbacks/service.py`` applies
them; ``tests/unit/test_callback_rules.py`` checks them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

NOT_PLACED_RETRY = 15
"""Seconds before a placeholder the queue refused (nobody logged in...) tries again."""


@dataclass(frozen=True)
class AfterTry:
    state: str
    """``done``, ``failed`` (both closing the task) or ``pending`` (tried again at ``due_at``)."""
    due_at: datetime | None = None
    reason: str = ""
    """Why a task closes (kept with it)."""
    retry: bool = False
    """A counted try that failed: the customer will be dialled again (``callbacks/retry``)."""


def after_try(
    outcome: str,
    *,
    attempts: int,
    counted: bool,
    max_attempts: int,
    retry_delay: int,
    now: datetime,
) -> AfterTry:
    """What the task does once a try ended with ``outcome``; ``attempts`` already counts
    this try if it dialled the customer (``counted``).

    >>> from datetime import UTC
    >>> t = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    >>> after_try("answered", attempts=1, counted=True, max_attempts=3, retry_delay=60, now=t)
    AfterTry(state='done', due_at=None, reason='customer answered', retry=False)
    >>> after_try("busy", attempts=3, counted=True, max_attempts=3, retry_delay=60, now=t).reason
    '3 attempts, last: busy'
    """
    if outcome == "answered":
        return AfterTry("done", reason="customer answered")
    if not counted:
        # The customer was not called: the try keeps its own number and does not count.
        return AfterTry("pending", due_at=now + timedelta(seconds=NOT_PLACED_RETRY))
    if attempts >= max_attempts:
        return AfterTry("failed", reason=f"{attempts} attempts, last: {outcome}")
    return AfterTry("pending", due_at=now + timedelta(seconds=retry_delay), retry=True)


def kept_place(
    joined: datetime | None,
    waiting: Iterable[tuple[str, float]],
    kept: Mapping[str, datetime],
) -> int:
    """The position (1 = first) a customer who joined at ``joined`` takes in a queue where
    ``waiting`` callers are (channel, epoch seconds they joined): behind everyone who joined
    before them, ahead of everyone after. A waiting placeholder of another callback counts
    with its own kept time (``kept``: channel prefix -> time). 0: at the end.

    >>> from datetime import UTC
    >>> at = lambda s: datetime.fromtimestamp(s, UTC)
    >>> kept_place(at(100), [("PJSIP/a-1", 50.0), ("PJSIP/b-2", 150.0)], {})
    2
    >>> kept_place(at(100), [("PJSIP/a-1", 50.0), ("Local/cb7x1@q-1;1", 160.0)],
    ...            {"Local/cb7x1@": at(20)})
    0
    >>> kept_place(None, [("PJSIP/a-1", 50.0)], {})
    0
    """
    if joined is None:
        return 0
    callers = list(waiting)
    ahead = 0
    for channel, joined_at in callers:
        theirs = next((t for prefix, t in kept.items() if channel.startswith(prefix)), None)
        at = theirs.timestamp() if theirs is not None else joined_at
        if at <= joined.timestamp():
            ahead += 1
    return ahead + 1 if ahead < len(callers) else 0
