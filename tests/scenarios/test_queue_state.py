"""The live queue state: a caller waiting in app_queue is seen, telephonist is restarted
while they wait, app_queue keeps the call, and the state is right again after reconnect."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.http_client import api
from telephonist.core.models import QueueLogEntry
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import MQTT_PORT, AmiWatch
from tests.scenarios.harness import Collector, Serve, dtmf_scenario, sipp_call

pytestmark = pytest.mark.pbx


def live(settings: Settings) -> dict:
    return api(settings, "/acd/state", timeout=2)


async def wait_until(predicate, timeout: float = 15):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


def waiting(settings: Settings, queue: str, caller: str) -> dict | None:
    try:
        state = live(settings)
    except OSError:
        return None
    return next(
        (c for c in state["queues"][queue]["callers"] if c["caller_number"] == caller), None
    )


async def test_waiting_caller_survives_a_serve_restart(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, store: Store, tmp_path: Path
) -> None:
    async with Collector(MQTT_PORT, "telephonist/testnode/acd/state", "t-state") as mqtt:
        # Line 200, 2: the support queue (nobody answers); the caller waits 14 s, hangs up.
        scenario = dtmf_scenario(tmp_path / "waiter.xml", [(1200, "2")], 14000)
        call = asyncio.create_task(
            asyncio.to_thread(
                sipp_call, settings.pbx.sip_port, "200", "5590001", scenario=str(scenario)
            )
        )
        first = await wait_until(lambda: waiting(settings, "support", "5590001"))
        assert first["position"] == 1
        await mqtt.wait_for(
            lambda m: (
                m[1]["data"].get("kind") == "caller_joined"
                and m[1]["data"].get("caller_number") == "5590001"
            )
        )
        loads = live(settings)["loaded"]

        assert serve.stop() == 0  # telephonist goes away; app_queue keeps the caller
        serve.start()
        again = await wait_until(lambda: waiting(settings, "support", "5590001"))
        assert again["uniqueid"] == first["uniqueid"]
        assert abs(again["joined_at"] - first["joined_at"]) < 2.0  # the real wait, not restarted
        assert live(settings)["loaded"] >= 1 and loads >= 1

        proc = await call
        assert proc.returncode == 0, proc.stdout[-1500:]
        await wait_until(lambda: waiting(settings, "support", "5590001") is None)
        await mqtt.wait_for(
            lambda m: m[1]["data"].get("kind") in ("caller_abandoned", "caller_left")
        )
    assert any(
        e.get("Event") == "QueueCallerAbandon" and e.get("CallerIDNum") == "5590001"
        for e in ami_watch.events
    )

    # queue_log: app_queue's own record of the call, ingested into the database.
    uniqueid = again["uniqueid"]

    async def logged() -> list[str]:
        async with store.sessions() as s:
            rows = await s.execute(
                select(col(QueueLogEntry.event)).where(col(QueueLogEntry.callid) == uniqueid)
            )
            return [r[0] for r in rows.all()]

    for _ in range(50):
        events = await logged()
        if "ABANDON" in events:
            break
        await asyncio.sleep(0.2)
    assert events[:1] == ["ENTERQUEUE"] and "ABANDON" in events, events
