"""The ACD's events (queues, agents, redirects): see README, "Events"."""

from telephonist.core.notify import Notifier

ACD = Notifier("acd", "redirect", "state", "agent", "queue_log")
