"""The dialer's events (campaigns, calls, dispositions, contact lists, DNC): see README."""

from telephonist.core.notify import Notifier

DIALER = Notifier(
    "dialer",
    "dial", "attempt", "campaign", "disposition", "disposition_refused", "dnc_blocked",
    "contacts_imported", "contacts_deleted", "dnc_added", "dnc_removed", "lead_held",
    "lead_skipped", "returned",
)  # fmt: skip
