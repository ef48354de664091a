"""serve's loop supervision: one failing loop is restarted, the others go on, cancellation
ends everything (pure asyncio, no I/O)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from telephonist.core import metrics
from telephonist.core.backoff import Backoff
from telephonist.core.events import OutboxPublisher
from telephonist.core.loops import Supervisor
from telephonist.core.settings import MqttSettings
from telephonist.core.storage import Store


def failures(name: str) -> float:
    value = metrics.REGISTRY.get_sample_value("telephonist_loop_failures_total", {"loop": name})
    return value or 0.0


async def test_a_failing_loop_is_restarted_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = Supervisor(base=0.01, cap=0.02, healthy_after=60)
    starts = {"bad": 0, "good": 0}
    raised = 0
    ticks = 0

    async def bad() -> None:
        nonlocal raised
        starts["bad"] += 1
        await asyncio.sleep(0)  # the cancel may arrive here: that start is not a failure
        raised += 1
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    async def good() -> None:
        nonlocal ticks
        starts["good"] += 1
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    before = failures("bad-test")
    sup.add("bad-test", bad)
    sup.add("good-test", good)
    with caplog.at_level(logging.WARNING, logger="telephonist.loops"):
        task = asyncio.create_task(sup.run())
        # Until enough restarts and ticks are seen (a loaded machine is slower), 5 s at most.
        for _ in range(500):
            await asyncio.sleep(0.01)
            if raised >= 5 and ticks > 10:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert starts["bad"] >= 5 and starts["good"] == 1 and ticks > 10
    # Every raise is counted once; a run cut short by the cancel is not a failure.
    assert failures("bad-test") - before == raised >= 5 and starts["bad"] - raised in (0, 1)
    health = {h.name: h for h in sup.loops}
    assert health["bad-test"].degraded and not health["good-test"].degraded
    shown = health["bad-test"].as_dict()
    assert shown["since"] and "UnicodeDecodeError" in shown["last_error"]
    # The traceback is logged once; the repeats are one line each.
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert sum("failed again" in r.getMessage() for r in caplog.records) >= 3


async def test_a_loop_that_returns_is_started_again() -> None:
    sup = Supervisor(base=0.01, cap=0.01)
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    sup.add("returns-test", once)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert runs >= 3
    assert sup.loops[0].last_error == "RuntimeError: the loop returned"


async def test_cancellation_is_never_taken_for_a_failure() -> None:
    sup = Supervisor(base=0.01, cap=0.01)
    cancelled = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    sup.add("cancel-test", waits)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set() and sup.loops[0].failures == 0 and not sup.loops[0].degraded


async def test_a_loop_whose_clean_up_fails_on_cancel_still_ends() -> None:
    """A client's clean-up that fails while a cancellation goes through (aiomqtt's disconnect
    timing out, a TaskGroup child failing as it is cancelled) replaces the CancelledError by
    its own error; the loop must still end instead of restarting, or serve never stops."""
    sup = Supervisor(base=0.01, cap=0.01)
    starts = 0

    async def cleanup_fails() -> None:
        nonlocal starts
        starts += 1
        try:
            await asyncio.Event().wait()
        finally:
            raise OSError("connection reset while closing")

    sup.add("cleanup-test", cleanup_fails)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.02)
    task.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert starts == 1


async def test_the_outbox_publisher_ends_when_the_broker_disconnect_fails_on_cancel(
    tmp_path: Path,
) -> None:
    """The hang seen in scenario teardowns: SIGTERM, then aiomqtt's ``__aexit__`` raised
    MqttError (no DISCONNECT acknowledgement in time); the publisher took it for a broker
    failure and reconnected forever."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.migrate()
    publisher = OutboxPublisher(store, MqttSettings())
    connects = 0

    class Client:
        async def __aenter__(self) -> Client:
            nonlocal connects
            connects += 1
            return self

        async def __aexit__(self, *exc: object) -> None:
            raise aiomqtt.MqttError("Operation timed out")

        @property
        def messages(self) -> Any:
            async def forever() -> Any:
                await asyncio.Event().wait()
                yield None

            return forever()

    publisher._client = Client  # type: ignore[assignment,method-assign]
    sup = Supervisor()
    sup.add("mqtt-cancel-test", publisher.run)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.1)
    task.cancel()
    try:
        async with asyncio.timeout(2):
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert connects == 1


async def test_a_publisher_that_loses_its_broker_connects_again(tmp_path: Path) -> None:
    """The broker drops the connection (the watcher task fails while the publisher's task
    group is already exiting): the publisher must reconnect, not take itself for cancelled.
    (On Python 3.11 that TaskGroup leaves its parent's cancel count at 1.)"""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.migrate()
    publisher = OutboxPublisher(store, MqttSettings())
    publisher._backoff = Backoff(base=0.01, cap=0.02)
    connects = 0

    class Client:
        async def __aenter__(self) -> Client:
            nonlocal connects
            connects += 1
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        @property
        def messages(self) -> Any:
            async def dropped() -> Any:
                await asyncio.sleep(0.02)
                raise aiomqtt.MqttError("Disconnected during message iteration")
                yield None

            return dropped()

    publisher._client = Client  # type: ignore[assignment,method-assign]
    sup = Supervisor()
    health = sup.add("mqtt-reconnect-test", publisher.run)
    task = asyncio.create_task(sup.run())
    try:
        await asyncio.sleep(0.5)
        assert connects >= 3 and health.running and health.failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
