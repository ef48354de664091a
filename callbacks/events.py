"""Callbacks' and voicemail's events: see README, "Events"."""

from telephonist.core.notify import Notifier

CALLBACKS = Notifier(
    "callbacks",
    "requested", "refused", "limited", "created", "merged", "placed", "connected", "attempt",
    "retry", "done", "failed", "cancelled",
)  # fmt: skip
VOICEMAIL = Notifier("voicemail", "new", "emailed", "done")
