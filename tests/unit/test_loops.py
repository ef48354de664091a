"""serve's loop supervision: one failing loop is restarted, the others go on, cancellation
ends everything (pure asyncio, no I/O)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core import metrics
from core.loops import Supervisor


def failures(name: str) -> float:
    value = metrics.REGISTRY.get_sample_value("telephonist_loop_failures_total", {"loop": name})
    return value or 0.0


async def test_a_failing_loop_is_restarted_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup = Supervisor(base=0.01, cap=0.02, healthy_after=60)
    starts = {"bad": 0, "good": 0}
    ticks = 0

    async def bad() -> None:
        starts["bad"] += 1
        await asyncio.sleep(0)
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
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert starts["bad"] >= 5 and starts["good"] == 1 and ticks > 10
    assert failures("bad-test") - before == starts["bad"]
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
