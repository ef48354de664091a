"""Supervision of serve's background loops: one failing loop is restarted, never the end of
the process.

Each loop (the menu watcher, the queue watcher, the callback service, the dialer, the outbox
publisher, HTTP, FastAGI...) runs under its own guard. An unexpected error is logged with its
traceback (once per distinct error: a loop failing the same way every few seconds writes one
traceback, then one line per restart), counted in ``telephonist_loop_failures_total``, shown
in ``/healthz`` (which loop, since when, the last error) and the loop is started again after a
capped, jittered back-off. The other loops, and the calls in progress, go on.

Cancellation (SIGTERM, the end of serve) is never caught: it ends every loop at once. A
clean-up that fails while a cancellation goes through (aiomqtt's disconnect timing out, a
TaskGroup child failing as it is cancelled) replaces the CancelledError by its own error; a loop
that then went round again could never be stopped. So the supervisor marks the stop before it
cancels its loops, every retry waits through :func:`retry_after`, which ends the loop instead
once the stop is marked, and the guard does the same with an error that arrives then.

(Not ``Task.cancelling()``: on Python 3.11 a TaskGroup whose child fails while the group is
already exiting cancels its parent and never uncancels it, so a loop that merely lost its
broker would look cancelled for ever.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from telephonist.core import metrics
from telephonist.core.backoff import Backoff

log = logging.getLogger("telephonist.loops")

LoopFactory = Callable[[], Awaitable[Any]]


_STOPPING: ContextVar[asyncio.Event | None] = ContextVar("telephonist_stopping", default=None)
"""Set by :meth:`Supervisor.run` before its loops start: every task they create inherits it."""


def stopping() -> bool:
    """Whether the supervisor this task runs under is stopping (serve is shutting down)."""
    event = _STOPPING.get()
    return event is not None and event.is_set()


async def retry_after(delay: float) -> None:
    """A reconnect or retry loop's wait before its next attempt; raises CancelledError instead
    once serve is stopping (the error the loop just caught may have replaced the cancel)."""
    if stopping():
        raise asyncio.CancelledError
    await asyncio.sleep(delay)


@dataclass
class LoopHealth:
    """What ``/healthz`` says of one loop."""

    name: str
    running: bool = False
    failures: int = 0
    failing_since: float | None = None
    """Wall-clock time of the first failure of the current run of failures."""
    last_error: str | None = None
    last_failure: float | None = None
    healthy_after: float = 30.0
    _last_logged: str | None = field(default=None, repr=False)

    @property
    def degraded(self) -> bool:
        """Not running, or failed less than ``healthy_after`` seconds ago."""
        if not self.running:
            return self.failures > 0
        return self.last_failure is not None and time.time() - self.last_failure < (
            self.healthy_after
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "degraded": self.degraded,
            "failures": self.failures,
            "since": _iso(self.failing_since) if self.degraded else None,
            "last_error": self.last_error,
            "last_failure": _iso(self.last_failure),
        }


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Supervisor:
    """Runs named loops, each restarted on error. ``run()`` until cancelled."""

    def __init__(
        self, *, base: float = 0.5, cap: float = 30.0, healthy_after: float = 30.0
    ) -> None:
        self._loops: list[tuple[LoopHealth, LoopFactory]] = []
        self._base, self._cap = base, cap
        self.healthy_after = healthy_after

    def add(self, name: str, factory: LoopFactory) -> LoopHealth:
        """Supervise ``factory()`` (called again for each restart) under ``name``."""
        health = LoopHealth(name, healthy_after=self.healthy_after)
        self._loops.append((health, factory))
        metrics.LOOP_UP.labels(name).set(0)
        metrics.LOOP_FAILURES.labels(name)  # exported as 0 from the start
        return health

    @property
    def loops(self) -> list[LoopHealth]:
        return [h for h, _ in self._loops]

    async def run(self) -> None:
        stop = asyncio.Event()
        token = _STOPPING.set(stop)
        try:
            async with asyncio.TaskGroup() as tg:
                for health, factory in self._loops:
                    tg.create_task(self._guard(health, factory), name=f"loop-{health.name}")
                try:
                    await asyncio.Event().wait()  # the cancel arrives here, before the loops'
                except asyncio.CancelledError:
                    stop.set()
                    raise
        finally:
            _STOPPING.reset(token)

    async def _guard(self, health: LoopHealth, factory: LoopFactory) -> None:
        backoff = Backoff(base=self._base, cap=self._cap)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            health.running = True
            metrics.LOOP_UP.labels(health.name).set(1)
            try:
                await factory()
                error: BaseException = RuntimeError("the loop returned")
            except asyncio.CancelledError:
                health.running = False
                metrics.LOOP_UP.labels(health.name).set(0)
                raise
            except Exception as exc:  # the loop's own error: it is restarted, serve goes on
                if stopping():  # a clean-up's error that replaced the cancellation
                    health.running = False
                    metrics.LOOP_UP.labels(health.name).set(0)
                    log.debug("loop %s: %r while being cancelled", health.name, exc)
                    raise asyncio.CancelledError from exc
                error = exc
            health.running = False
            metrics.LOOP_UP.labels(health.name).set(0)
            metrics.LOOP_FAILURES.labels(health.name).inc()
            now = time.time()
            if loop.time() - started >= health.healthy_after:
                backoff.reset()  # it had run well for a while: a new run of failures
                health.failing_since = None
            if health.failing_since is None:
                health.failing_since = now
            health.failures += 1
            health.last_failure = now
            text = _describe(error)
            delay = backoff.next()
            if text != health._last_logged:
                log.error("loop %s failed; restarting in %.1fs", health.name, delay, exc_info=error)
                health._last_logged = text
            else:
                log.warning(
                    "loop %s failed again (%d failures): %s; restarting in %.1fs",
                    health.name, health.failures, text, delay,
                )  # fmt: skip
            health.last_error = text
            await asyncio.sleep(delay)


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return _describe(error.exceptions[0])
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
