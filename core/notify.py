"""Each capability's one notifier: the events it publishes, declared in one place.

An event is written to the outbox in the transaction of the change it reports
(:meth:`telephonist.core.storage.UnitOfWork.emit`) and published on MQTT as
``<prefix>/<node>/<domain>/<event>``. Nothing calls ``emit`` directly: each capability
declares its :class:`Notifier` — its domain and the names of its events — in its own
``events.py`` and publishes through it, so what a CRM can subscribe to is listed in one module
per capability (and checked against the README's table by a test), and a misspelt event name
fails at once instead of publishing to a topic nobody reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telephonist.core.storage import UnitOfWork


class Notifier:
    """``notify(uow, name, data)`` publishes ``<domain>/<name>`` with the change in ``uow``.

    >>> n = Notifier("demo", "started")
    >>> n.topics
    ['demo/started']
    >>> n(None, "strated", {})  # type: ignore[arg-type]
    Traceback (most recent call last):
    ...
    ValueError: demo/strated is not an event of demo (started)
    """

    def __init__(self, domain: str, *names: str) -> None:
        self.domain = domain
        self.names = frozenset(names)

    @property
    def topics(self) -> list[str]:
        return [f"{self.domain}/{n}" for n in sorted(self.names)]

    def __call__(self, uow: UnitOfWork, name: str, data: Mapping[str, Any]) -> None:
        if name not in self.names:
            raise ValueError(
                f"{self.domain}/{name} is not an event of {self.domain} "
                f"({', '.join(sorted(self.names))})"
            )
        uow.emit(self.domain, name, dict(data))
