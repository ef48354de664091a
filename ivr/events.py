"""The IVR's events: see README, "Events"."""

from telephonist.core.notify import Notifier

IVR = Notifier("ivr", "step")
