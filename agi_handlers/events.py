"""The FastAGI routes' events: see README, "Events"."""

from telephonist.core.notify import Notifier

AGI = Notifier("agi", "selftest")
