"""A real SIP call reaches the Stasis app of a running ``serve``, and the system records it;
Asterisk restarts, the broker goes away, telephonist stops: each time, what the system does
is checked in the database, on MQTT and in Asterisk's own AMI events."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.core.ami import AmiClient
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import MQTT_PORT, call_by_caller
from tests.scenarios.harness import Broker, Collector, Serve, sipp_call

pytestmark = pytest.mark.pbx


async def place_call(settings: Settings, caller: str, **kw: object) -> None:
    proc = await asyncio.to_thread(sipp_call, settings.pbx.sip_port, "100", caller, **kw)  # type: ignore[arg-type]
    assert proc.returncode == 0, (
        f"sipp failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )


async def test_call_is_recorded_and_announced(
    serve: Serve, settings: Settings, store: Store
) -> None:
    async with Collector(MQTT_PORT, "telephonist/testnode/calls/#", "t-recorded") as mqtt:
        await place_call(settings, "5551001")
        call = await call_by_caller(store, "5551001")
        assert call.line == "demo" and call.route == "demo" and call.dialed == "100"
        assert call.answered_at is not None
        assert call.outcome == "completed"
        await mqtt.wait_for(
            lambda m: m[0].endswith("/ended") and m[1]["data"].get("channel_id") == call.channel_id
        )
        # Asterisk's own record of the call (CEL) follows, keyed by the call's linked id.
        recorded = await mqtt.wait_for(
            lambda m: m[0].endswith("/recorded") and m[1]["data"]["linkedid"] == call.channel_id
        )
        assert [m[1]["data"]["caller_number"] for m in recorded] == ["5551001"]
        ours = [m for m in mqtt.messages if m[1]["data"].get("channel_id") == call.channel_id]
        assert [t for t, _ in ours] == [
            "telephonist/testnode/calls/started",
            "telephonist/testnode/calls/ended",
        ]
        started = ours[0][1]
        assert started["schema"] == 1 and started["event"] == "calls.started"
        assert started["data"]["caller_number"] == "5551001"
        assert ours[1][1]["seq"] > started["seq"]
    metrics = serve.health()
    assert metrics is not None and metrics["status"] == "ok"


async def test_serve_survives_asterisk_restart(
    serve: Serve, pbx: Sandbox, settings: Settings, store: Store
) -> None:
    pid = pbx._read_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # no goodbye: a crash
    for _ in range(100):
        h = serve.health()
        if h is not None and not h["components"]["ari"]["up"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("serve did not notice that Asterisk died")
    restarted = time.monotonic()
    await pbx.up()
    took = await asyncio.to_thread(serve.wait_healthy, 10)  # the brief's limit
    assert serve.proc is not None and serve.proc.poll() is None  # same process, not restarted
    health = serve.health()
    assert health is not None
    assert health["components"]["ari"]["connects"] >= 2
    assert health["components"]["ami"]["connects"] >= 2
    await place_call(settings, "5551002")
    call = await call_by_caller(store, "5551002")
    assert call.outcome == "completed"
    assert time.monotonic() - restarted < 60
    print(f"serve healthy again {took:.2f}s after Asterisk was back")


async def test_broker_outage_loses_no_event_and_keeps_order(
    serve: Serve, broker: Broker, settings: Settings, store: Store
) -> None:
    async with Collector(MQTT_PORT, "telephonist/testnode/#", "t-outage") as mqtt:
        broker.stop()
        callers = ["5552001", "5552002", "5552003"]
        for caller in callers:
            await place_call(settings, caller)
        calls = [await call_by_caller(store, c) for c in callers]
        assert await store.count_pending() >= 6  # all waiting in the outbox
        broker.start()
        ids = {c.channel_id for c in calls}

        def done(_m: object) -> bool:
            got = [m for m in mqtt.messages if m[1]["data"].get("channel_id") in ids]
            return len(got) >= 6

        await mqtt.wait_for(done, timeout=30)
        ours = [m for m in mqtt.messages if m[1]["data"].get("channel_id") in ids]
        seqs = [m[1]["seq"] for m in ours]
        assert len(set(seqs)) == 6, "each event exactly once"
        assert seqs == sorted(seqs), f"events out of order: {seqs}"
        for call in calls:
            kinds = [m[1]["event"] for m in ours if m[1]["data"]["channel_id"] == call.channel_id]
            assert kinds == ["calls.started", "calls.ended"]
    for _ in range(50):
        if await store.count_pending() == 0:
            break
        await asyncio.sleep(0.1)
    assert await store.count_pending() == 0


async def test_fastagi_round_trip_with_real_asterisk(serve: Serve, ami: AmiClient) -> None:
    async with Collector(MQTT_PORT, "telephonist/testnode/agi/selftest", "t-agi") as mqtt:
        await ami.send(
            {
                "Action": "Originate",
                "Channel": "Local/agi@telephonist-selftest",
                "Application": "Wait",
                "Data": "1",
                "Async": "true",
            }
        )
        found = await mqtt.wait_for(lambda m: True, timeout=15)
    data = found[0][1]["data"]
    # The channel name came back from Asterisk over FastAGI (GET VARIABLE), and SET VARIABLE
    # was accepted: a real exchange, both ways.
    assert data["channel"].startswith("Local/agi@telephonist-selftest-")
    assert data["set_variable_ok"] is True
    assert data["uniqueid"]


async def test_without_serve_the_caller_gets_the_fallback(
    pbx: Sandbox, settings: Settings, ami: AmiClient
) -> None:
    seen: list[dict[str, str]] = []
    ami.on_event("Newexten", lambda e: seen.append(dict(e)))
    await place_call(settings, "5553001")  # the PBX answers, plays, and hangs up
    for _ in range(50):
        if any(e.get("AppData") == "ss-noservice" for e in seen):
            break
        await asyncio.sleep(0.1)
    apps = [
        (e.get("Application"), e.get("AppData")) for e in seen if e.get("Context") == "from-callers"
    ]
    assert ("Stasis", "telephonist,demo,demo") in apps
    assert ("Playback", "ss-noservice") in apps, apps


def test_the_modules_the_centre_needs_are_running(pbx: Sandbox) -> None:
    """app_amd (amd.conf) and the channel-event log (cel.conf, cel_custom.conf) load: without
    their configuration Asterisk declines them silently."""
    for module in ("app_amd.so", "cel_custom.so", "app_queue.so", "res_ari.so"):
        shown = pbx.cli(f"module show like {module}")
        assert "Running" in shown and "Not Running" not in shown, shown
    assert "cel.json: Logging CEL records" in pbx.log_file.read_text(errors="replace")
