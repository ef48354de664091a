"""Deciding what happens to a caller a queue cannot serve (pure: no I/O).

app_queue tells why ``Queue()`` returned in ``QUEUESTATUS``; each status is one of the
redirect reasons a contact centre configures per queue. After hours is decided before the
caller joins, from the queue's opening hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telephonist.core.centre import Queue
from telephonist.core.hours import is_open

STATUS_REASONS: dict[str, tuple[str, str]] = {
    "FULL": ("overflow", "queue full"),
    "TIMEOUT": ("overflow", "waited too long"),
    "JOINEMPTY": ("empty", "no agent available on arrival"),
    "JOINUNAVAIL": ("empty", "no agent available on arrival"),
    "LEAVEEMPTY": ("empty", "no agent available while waiting"),
    "LEAVEUNAVAIL": ("empty", "no agent available while waiting"),
    "CONTINUE": ("no_answer", "agents rang, none answered"),
}


@dataclass(frozen=True)
class Decision:
    queue: str
    reason: str
    detail: str
    status: str
    destination: str | None
    """``voicemail:100``... or None: nothing configured (the caller hears a message)."""


def decide(queue: Queue, status: str) -> Decision:
    """Why the caller left ``queue`` and where they go.

    >>> q = Queue(name="sales", redirects={"overflow": "voicemail:100"})
    >>> decide(q, "TIMEOUT").destination, decide(q, "TIMEOUT").reason
    ('voicemail:100', 'overflow')
    >>> decide(q, "JOINEMPTY").destination is None
    True
    """
    reason, detail = STATUS_REASONS.get(status, ("no_answer", f"left the queue ({status or '?'})"))
    destination = getattr(queue.redirects, reason)
    return Decision(queue.name, reason, detail, status, destination)


def after_hours(queue: Queue, now: datetime, default_tz: str = "UTC") -> Decision | None:
    """A Decision if ``queue`` is closed at ``now``, else None."""
    if is_open(queue.hours, now, queue.timezone or default_tz, queue.holidays):
        return None
    return Decision(
        queue.name, "after_hours", "outside opening hours", "", queue.redirects.after_hours
    )
