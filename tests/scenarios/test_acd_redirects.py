"""Queue redirects with real callers: each one triggered by a real call, landing at its
destination (Asterisk's own events), stored with its reason and published on MQTT."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import QueueRedirect
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import MQTT_PORT, AmiWatch
from tests.scenarios.harness import (
    AgentPhone,
    Collector,
    Serve,
    dtmf_scenario,
    sipp_call,
    telephonist,
)

pytestmark = pytest.mark.pbx


async def dial(
    settings: Settings, tmp_path: Path, caller: str, digit: str, hold_ms: int, line: str = "203"
) -> None:
    """A caller on ``line`` (203: the redirect menu) who presses ``digit`` (none: straight
    in) and hangs up after ``hold_ms``."""
    scenario = dtmf_scenario(tmp_path / f"{caller}.xml", [(1000, digit)] if digit else [], hold_ms)
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, line, caller, scenario=str(scenario)
    )
    assert proc.returncode == 0, f"sipp failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


async def redirect_of(store: Store, caller: str, timeout: float = 15) -> QueueRedirect:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with store.sessions() as s:
            row = (
                await s.execute(
                    select(QueueRedirect).where(col(QueueRedirect.caller_number) == caller)
                )
            ).scalar_one_or_none()
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no queue redirect stored for {caller}")


def voicemail_for(caller: str):
    return lambda e: (
        e.get("Event") == "Newexten"
        and e.get("Application") == "VoiceMail"
        and e.get("CallerIDNum") == caller
    )


async def test_empty_queue_redirect(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    async with Collector(MQTT_PORT, "telephonist/testnode/acd/redirect", "t-acd") as mqtt:
        # The session's first call through serve: it stays on the line 10 s, as a real caller
        # would, so a machine slow to warm up (CI's, right after the sandbox was built: the
        # redirect came 5 s after the digit there, twice) still sees it reach voicemail.
        await dial(settings, tmp_path, "5570001", "1", 10000)
        await ami_watch.wait_for(voicemail_for("5570001"), what="VoiceMail after empty queue")
        row = await redirect_of(store, "5570001")
        assert (row.queue, row.reason, row.status, row.destination) == (
            "empty-q",
            "empty",
            "JOINEMPTY",
            "voicemail:100",
        )
        (msg,) = await mqtt.wait_for(lambda m: m[1]["data"]["caller_number"] == "5570001")
        assert msg[1]["data"]["reason"] == "empty" and msg[1]["data"]["queue"] == "empty-q"
    assert not [
        e for e in ami_watch.events
        if e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5570001"
    ]  # fmt: skip


async def test_full_queue_overflow(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    first = asyncio.create_task(dial(settings, tmp_path, "5570002", "2", 9000))
    await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "QueueCallerJoin"
            and e.get("Queue") == "tiny"
            and e.get("CallerIDNum") == "5570002"
        ),
        what="first caller waiting in tiny",
    )
    await dial(settings, tmp_path, "5570003", "2", 4000)
    await first
    await ami_watch.wait_for(voicemail_for("5570003"), what="VoiceMail after a full queue")
    row = await redirect_of(store, "5570003")
    assert (row.queue, row.reason, row.status, row.destination) == (
        "tiny",
        "overflow",
        "FULL",
        "voicemail:100",
    )


async def test_waited_too_long_overflows_to_another_queue(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "5570004", "3", 7000)
    join_short = await ami_watch.wait_for(
        lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Queue") == "short"
        and e.get("CallerIDNum") == "5570004", what="joined short",
    )  # fmt: skip
    join_sales = await ami_watch.wait_for(
        lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Queue") == "sales"
        and e.get("CallerIDNum") == "5570004", what="overflowed into sales",
    )  # fmt: skip
    waited = float(join_sales["Timestamp"]) - float(join_short["Timestamp"])
    assert 1.8 <= waited <= 4.0, waited  # max_wait: 2 s
    row = await redirect_of(store, "5570004")
    assert (row.queue, row.reason, row.status, row.destination) == (
        "short",
        "overflow",
        "TIMEOUT",
        "queue:sales",
    )


async def test_after_hours_redirect_and_queue_status(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "5570005", "4", 4000)
    await ami_watch.wait_for(voicemail_for("5570005"), what="VoiceMail after hours")
    row = await redirect_of(store, "5570005")
    assert (row.queue, row.reason, row.status) == ("closed-q", "after_hours", "")
    assert not [
        e for e in ami_watch.events
        if e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5570005"
    ]  # fmt: skip
    out = await asyncio.to_thread(cli, settings, "queue", "status")
    assert out.returncode == 0, out.stderr
    closed = next(line for line in out.stdout.splitlines() if "closed-q" in line)
    assert closed.split("│")[-2].strip() == "1"  # after_hours column


async def test_no_answer_redirect(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    carol = AgentPhone(25503, tmp_path, scenario="agent_never_answers.xml", calls=2)
    carol.start()
    try:
        login = await asyncio.to_thread(cli, settings, "agent", "login", "carol")
        assert login.returncode == 0, login.stderr
        await dial(settings, tmp_path, "5570006", "5", 15000)
        await ami_watch.wait_for(
            voicemail_for("5570006"), timeout=20, what="VoiceMail after no answer"
        )
    finally:
        carol.stop()
        await asyncio.to_thread(cli, settings, "agent", "logout", "carol")
    rings = [
        e for e in ami_watch.events
        if e.get("Event") == "AgentRingNoAnswer" and e.get("CallerIDNum") == "5570006"
    ]  # fmt: skip
    assert len(rings) == 2 and {e["MemberName"] for e in rings} == {"Carol"}
    row = await redirect_of(store, "5570006")
    assert (row.queue, row.reason, row.status, row.destination) == (
        "ringing-q",
        "no_answer",
        "CONTINUE",
        "voicemail:100",
    )


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return telephonist(settings.data_dir.parent / "telephonist.toml", *args)


async def test_max_wait_while_the_only_agent_is_busy(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """The caller at the head of the queue, while the only agent talks to someone else, is
    taken out at max_wait (3 s) — app_queue alone would keep them until its next ring cycle."""
    gina = AgentPhone(25507, tmp_path, calls=2)
    gina.start()
    try:
        login = await asyncio.to_thread(cli, settings, "agent", "login", "gina")
        assert login.returncode == 0, login.stderr
        first = asyncio.create_task(dial(settings, tmp_path, "5570007", "", 12000, line="303"))
        await ami_watch.wait_for(
            lambda e: e.get("Event") == "AgentConnect" and e.get("CallerIDNum") == "5570007",
            what="Gina talking to the first caller",
        )
        await dial(settings, tmp_path, "5570008", "", 8000, line="303")
        await first
    finally:
        gina.stop()
        await asyncio.to_thread(cli, settings, "agent", "logout", "gina")
    join = await ami_watch.wait_for(
        lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5570008",
        what="second caller joined",
    )
    vm = await ami_watch.wait_for(voicemail_for("5570008"), what="VoiceMail after max_wait")
    waited = float(vm["Timestamp"]) - float(join["Timestamp"])
    assert 2.8 <= waited <= 5.0, waited
    assert not [
        e for e in ami_watch.events
        if e.get("Event") in ("AgentCalled", "AgentConnect") and e.get("CallerIDNum") == "5570008"
    ]  # fmt: skip
    row = await redirect_of(store, "5570008")
    assert (row.queue, row.reason, row.status, row.destination) == (
        "busy-q",
        "overflow",
        "TIMEOUT",
        "voicemail:100",
    )


async def test_a_centre_without_ivr_menus_still_redirects_its_queue_callers(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """serve with a centre file that has no ``ivr:`` (no menus at all): line 307 goes
    straight to empty-q, nobody is logged in, and its ``empty`` redirect sends the caller to
    voicemail 100 — the ACD's own router, not one the IVR lends it (before: the redirect was
    stored as routed while the caller heard "all circuits busy")."""
    centre = settings.centre_file
    assert centre is not None
    no_ivr = centre.with_name("centre-no-ivr.yaml")
    no_ivr.write_text("".join(line for line in centre.read_text().splitlines(keepends=True)
                              if not line.startswith("ivr:")))  # fmt: skip
    serve.stop()
    await asyncio.to_thread(serve.start, env_extra={"TELEPHONIST_CENTRE_FILE": str(no_ivr)})
    try:
        await dial(settings, tmp_path, "5570009", "", 5000, line="307")
        await ami_watch.wait_for(voicemail_for("5570009"), what="VoiceMail after empty queue")
        row = await redirect_of(store, "5570009")
        assert (row.queue, row.reason, row.destination) == ("empty-q", "empty", "voicemail:100")
    finally:
        serve.stop()
        await asyncio.to_thread(serve.start)
