"""Connection state shared by the supervised adapters (AMI, ARI, MQTT).

Each adapter owns one :class:`Link`: it records transitions, logs each one once, exposes an
awaitable connected state and feeds the ``telephonist_connection_up`` gauge.
"""

from __future__ import annotations

import asyncio
import logging

from telephonist.core import metrics


class Link:
    def __init__(self, name: str) -> None:
        self.name = name
        self.log = logging.getLogger(f"telephonist.{name}")
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self.last_error: str | None = None
        self.connects = 0
        metrics.CONNECTION_UP.labels(name).set(0)

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    def up(self, detail: str = "") -> None:
        if not self._up.is_set():
            self.connects += 1
            self.log.info("%s connected%s", self.name, f" ({detail})" if detail else "")
        self.last_error = None
        self._down.clear()
        self._up.set()
        metrics.CONNECTION_UP.labels(self.name).set(1)

    def down(self, error: BaseException | str | None = None) -> None:
        text = _describe(error) if error is not None else None
        if self._up.is_set():
            self.log.warning("%s disconnected%s", self.name, f": {text}" if text else "")
        elif text and text != self.last_error:
            # Logged once per distinct reason, not on every retry.
            self.log.warning("%s unavailable: %s", self.name, text)
        self.last_error = text
        self._up.clear()
        self._down.set()
        metrics.CONNECTION_UP.labels(self.name).set(0)

    async def wait_up(self, timeout: float | None = None) -> None:
        """Return when connected; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._up.wait()

    async def wait_down(self) -> None:
        await self._down.wait()


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if str(error) else text
