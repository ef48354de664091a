"""The IVR with real callers: sipp dials, presses real RFC 4733 digits, and each test checks
where Asterisk really took the call (AMI events) and the journey telephonist stored."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import CallbackRequest, IvrStep
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import AmiWatch, journey
from tests.scenarios.harness import Serve, dtmf_scenario, sipp_call, telephonist

pytestmark = pytest.mark.pbx


async def dial(
    settings: Settings,
    tmp_path: Path,
    number: str,
    caller: str,
    keys: list[tuple[int, str]],
    hold_ms: int = 3000,
) -> None:
    scenario = dtmf_scenario(tmp_path / f"{caller}.xml", keys, hold_ms)
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, number, caller, scenario=str(scenario)
    )
    assert proc.returncode == 0, f"sipp failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


def events_of(steps: list, kind: str) -> list:
    return [s for s in steps if s.event == kind]


def joined(queue: str, caller: str):
    return lambda e: (
        e.get("Event") == "QueueCallerJoin"
        and e.get("Queue") == queue
        and e.get("CallerIDNum") == caller
    )


async def test_digit_to_queue(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560002", [(1200, "2")])
    await ami_watch.wait_for(joined("support", "5560002"), what="QueueCallerJoin support")
    call, steps = await journey(store, "5560002")
    assert call.outcome == "routed:queue:support"
    assert [(s.menu, s.event, s.digit) for s in steps] == [
        ("main", "enter", ""),
        ("main", "digit", "2"),
        ("main", "route", ""),
    ]


async def test_submenu_then_back_then_queue(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    # 1 (sales; waits 1.5 s for a possible extension 1001 first), * (back), 2 (support)
    await dial(settings, tmp_path, "200", "5560001", [(1200, "1"), (2500, "*"), (1000, "2")])
    await ami_watch.wait_for(joined("support", "5560001"), what="QueueCallerJoin support")
    _, steps = await journey(store, "5560001")
    assert [(s.menu, s.event) for s in steps if s.event in ("enter", "digit")] == [
        ("main", "enter"),
        ("main", "digit"),
        ("sales", "enter"),
        ("sales", "digit"),
        ("main", "enter"),
        ("main", "digit"),
    ]


async def test_digit_to_voicemail(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560003", [(1200, "3")])
    ev = await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "Newexten"
            and e.get("Application") == "VoiceMail"
            and e.get("CallerIDNum") == "5560003"
        ),
        what="VoiceMail",
    )
    assert ev["AppData"] == "100@default,u"
    call, _ = await journey(store, "5560003")
    assert call.outcome == "routed:voicemail:100"


async def test_digit_to_outside_number_through_trunk(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560005", [(1200, "5")], hold_ms=2000)
    ev = await ami_watch.wait_for(
        lambda e: e.get("Event") == "DialBegin" and e.get("CallerIDNum") == "5560005",
        what="DialBegin",
    )
    assert ev["DialString"] == "0123456789@office"
    assert ev["DestChannel"].startswith("PJSIP/office-")


async def test_digit_to_extension_and_direct_dial(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560006", [(1200, "6")], hold_ms=2000)
    await dial(settings, tmp_path, "200", "5560016", [(1200, "1001")], hold_ms=2000)
    for caller in ("5560006", "5560016"):
        ev = await ami_watch.wait_for(
            lambda e, c=caller: e.get("Event") == "DialBegin" and e.get("CallerIDNum") == c,
            what=f"DialBegin from {caller}",
        )
        assert ev["DestChannel"].startswith("PJSIP/1001-")
    _, steps = await journey(store, "5560016")
    assert [(s.event, s.digit, s.detail) for s in steps if s.event == "digit"] == [
        ("digit", "1001", "direct dial")
    ]


async def test_play_and_hang_up(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    # hold 8 s: the PBX must hang up first (the scenario would hang up itself otherwise)
    await dial(settings, tmp_path, "200", "5560007", [(1200, "7")], hold_ms=8000)
    ev = await ami_watch.wait_for(
        lambda e: e.get("Event") == "Hangup" and e.get("CallerIDNum") == "5560007", what="Hangup"
    )
    assert ev["Cause"] == "16"  # normal clearing, by telephonist
    call, _ = await journey(store, "5560007")
    assert call.outcome == "routed:play:beep"


async def test_invalid_digits_then_final_destination(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560009", [(1200, "9"), (900, "9"), (900, "9")])
    await ami_watch.wait_for(joined("sales", "5560009"), what="QueueCallerJoin sales (on_failure)")
    _, steps = await journey(store, "5560009")
    assert [s.event for s in steps] == [
        "enter",
        "invalid",
        "invalid",
        "invalid",
        "failure",
        "route",
    ]
    assert [s.digit for s in events_of(steps, "invalid")] == ["9", "9", "9"]


async def test_no_input_times_out_to_final_destination(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560010", [], hold_ms=12000)
    await ami_watch.wait_for(joined("sales", "5560010"), timeout=20, what="QueueCallerJoin sales")
    _, steps = await journey(store, "5560010")
    assert [s.event for s in steps] == [
        "enter",
        "timeout",
        "timeout",
        "timeout",
        "failure",
        "route",
    ]


async def test_multi_digit_input_is_stored_and_passed_on(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560008", [(1200, "8"), (800, "4711#")])
    await ami_watch.wait_for(joined("support", "5560008"), what="QueueCallerJoin support")
    ev = await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "VarSet"
            and e.get("Variable") == "TELEPHONIST_INPUT_ORDER_NUMBER"
            and e.get("CallerIDNum") == "5560008"
        ),
        what="VarSet TELEPHONIST_INPUT_ORDER_NUMBER",
    )
    assert ev["Value"] == "4711"
    _, steps = await journey(store, "5560008")
    assert [(s.menu, s.digit, s.detail) for s in events_of(steps, "input")] == [
        ("order", "4711", "order_number")
    ]


async def test_after_hours(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "201", "5560011", [], hold_ms=2500)
    ev = await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "Newexten"
            and e.get("Application") == "VoiceMail"
            and e.get("CallerIDNum") == "5560011"
        ),
        what="VoiceMail after hours",
    )
    assert ev["AppData"] == "100@default,u"
    _, steps = await journey(store, "5560011")
    assert [s.event for s in steps] == ["closed", "route"]


async def test_fastagi_decides_the_route(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "202", "5557777", [], hold_ms=4000)  # a VIP
    await ami_watch.wait_for(joined("vip", "5557777"), what="QueueCallerJoin vip")
    await dial(settings, tmp_path, "202", "5560012", [(2500, "2")], hold_ms=3000)  # not a VIP
    await ami_watch.wait_for(joined("support", "5560012"), what="QueueCallerJoin support")
    # The FastAGI route's answer, as the IVR recorded it when the call came back.
    call, vip = await journey(store, "5557777")
    assert [(s.seq, s.detail) for s in vip if s.event == "route"] == [
        (4, "agi:vip-lookup"),
        (5, "agi decided queue:vip"),
        (6, "queue:vip"),
    ]
    assert call.outcome == "routed:queue:vip"
    async with store.sessions() as db:
        resumed = (
            (
                await db.execute(
                    select(IvrStep)
                    .where(col(IvrStep.detail).like("agi decided%"))
                    .order_by(col(IvrStep.id))
                )
            )
            .scalars()
            .all()
        )
    assert [r.detail for r in resumed][-2:] == ["agi decided queue:vip", "agi decided menu:main"]


async def test_callback_request_is_stored(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    # 4: callback; the IVR reads back the caller's number; 1 confirms.
    await dial(settings, tmp_path, "200", "5560004", [(1200, "4"), (1500, "1")], hold_ms=10000)
    async with store.sessions() as s:
        rows = (
            (
                await s.execute(
                    select(CallbackRequest).where(col(CallbackRequest.number) == "5560004")
                )
            )
            .scalars()
            .all()
        )
    assert [(r.queue, r.source, r.line) for r in rows] == [("support", "ivr", "main-line")]
    assert rows[0].state in ("pending", "queued")  # queued: already waiting for an agent
    call, _ = await journey(store, "5560004")
    assert call.outcome == "routed:callback:support"
    # Nobody takes it in this test: cancelled, its placeholder leaves the support queue.
    placeholder = await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "QueueCallerJoin"
            and e.get("Channel", "").startswith(f"Local/cb{rows[0].id}x1@")
        ),
        what="the callback waiting in support",
    )
    out = telephonist(
        settings.data_dir.parent / "telephonist.toml", "callback", "cancel", str(rows[0].id)
    )
    assert out.returncode == 0, out.stderr
    await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "QueueCallerAbandon" and e.get("Uniqueid") == placeholder["Uniqueid"]
        ),
        what="the cancelled callback's placeholder gone",
    )


async def test_reload_while_a_call_is_inside(
    serve: Serve,
    settings: Settings,
    store: Store,
    ami_watch: AmiWatch,
    centre_dir: Path,
    tmp_path: Path,
) -> None:
    menus = centre_dir / "menus.yaml"
    original = menus.read_text()
    # The first caller waits in the menu (time-out raised to 8 s) while the menus change.
    menus.write_text(original.replace("    timeout: 2\n", "    timeout: 8\n", 1))
    await _reload(settings)
    first = asyncio.create_task(dial(settings, tmp_path, "200", "5560020", [(5000, "2")]))
    try:
        await asyncio.sleep(2.0)
        menus.write_text(original.replace('"2": {queue: support}', '"2": {queue: sales}'))
        await _reload(settings)
        await dial(settings, tmp_path, "200", "5560021", [(1200, "2")])
        await first
    finally:
        menus.write_text(original)
        await _reload(settings)
    await ami_watch.wait_for(joined("support", "5560020"), what="old version: support")
    await ami_watch.wait_for(joined("sales", "5560021"), what="new version: sales")
    _, old = await journey(store, "5560020")
    _, new = await journey(store, "5560021")
    assert {s.version for s in old} == {min(s.version for s in old)}
    # (the file watcher and the explicit reload may each have made a version)
    assert min(s.version for s in new) > max(s.version for s in old)


async def test_invalid_menu_file_is_refused_and_running_version_stays(
    serve: Serve,
    settings: Settings,
    store: Store,
    ami_watch: AmiWatch,
    centre_dir: Path,
    tmp_path: Path,
) -> None:
    menus = centre_dir / "menus.yaml"
    original = menus.read_text()
    menus.write_text(original.replace('"2": {queue: support}', '"2": {queue: nowhere}'))
    try:
        result = await asyncio.to_thread(_cli, settings, "ivr", "reload")
        assert result.returncode == 1
        assert "unknown queue 'nowhere'" in result.stdout
    finally:
        menus.write_text(original)
    await dial(settings, tmp_path, "200", "5560022", [(1200, "2")])
    await ami_watch.wait_for(joined("support", "5560022"), what="still the running version")


async def test_serve_down_ivr_line_goes_to_its_fallback_queue(
    pbx: object, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await dial(settings, tmp_path, "200", "5560030", [], hold_ms=2000)
    await ami_watch.wait_for(joined("support", "5560030"), what="fallback queue support")


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return telephonist(settings.data_dir.parent / "telephonist.toml", *args)


async def _reload(settings: Settings) -> None:
    result = await asyncio.to_thread(_cli, settings, "ivr", "reload")
    assert result.returncode == 0, result.stdout + result.stderr
