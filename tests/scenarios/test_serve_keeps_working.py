"""serve keeps working (issue 10): the faults a centre meets in a day, with the real PBX, real
SIP callers and the real broker. Each test asserts serve is alive, the calls were handled, and
nothing was lost or done twice."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.models import CallbackAttempt, CallbackRequest, OutboxEvent, as_utc
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import HTTP_PORT, AmiWatch, journey
from tests.scenarios.harness import (
    AmiCutter,
    Broker,
    Serve,
    dtmf_scenario,
    sipp_call,
    telephonist,
    until,
)

pytestmark = pytest.mark.pbx


async def dial(
    settings: Settings, tmp_path: Path, line: str, caller: str, keys: list[tuple[int, str]],
    hold_ms: int,
) -> None:  # fmt: skip
    scenario = dtmf_scenario(tmp_path / f"{caller}-{line}.xml", keys, hold_ms)
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, line, caller, scenario=str(scenario)
    )
    assert proc.returncode == 0, f"sipp failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


def alive(serve: Serve) -> None:
    assert serve.proc is not None and serve.proc.poll() is None, f"serve died:\n{serve.tail()}"


def rss_mb(serve: Serve) -> float:
    assert serve.proc is not None
    status = Path(f"/proc/{serve.proc.pid}/status").read_text()
    m = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert m is not None
    return int(m.group(1)) / 1024


def metric(name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/metrics", timeout=2) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    assert m is not None, f"{name} not in /metrics"
    return float(m.group(1))


async def test_a_callback_with_nobody_logged_in_survives_the_night_and_a_restart(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """The crash loop of issue 10: a callback for a queue nobody staffs (empty-q refuses
    callers when nobody is there). Before, the refused try reused its number and serve died
    ~16 s later, and at every restart."""
    # Line 203 (the ACD menu), 6: a callback in empty-q; 1 confirms the number.
    await dial(settings, tmp_path, "203", "5572001", [(1000, "6"), (1500, "1")], 8000)
    call, _ = await journey(store, "5572001")
    assert call.outcome == "routed:callback:empty-q"
    async with store.sessions() as s:
        (cb,) = (
            await s.execute(select(CallbackRequest).where(col(CallbackRequest.number) == "5572001"))
        ).scalars()
    await asyncio.sleep(18)  # past the moment serve used to die
    alive(serve)
    assert serve.health()["status"] == "ok"  # type: ignore[index]
    serve.stop()
    serve.start()  # and it starts again with the task stored
    await asyncio.sleep(3)
    alive(serve)
    async with store.sessions() as s:
        row = await s.get(CallbackRequest, cb.id)
        tries = (
            await s.execute(select(func.count()).where(col(CallbackAttempt.callback_id) == cb.id))
        ).scalar_one()
    assert row is not None and row.state == "pending"
    # Nobody could take it: no try was made at all (none refused, none counted).
    assert (row.tries, row.attempts, tries) == (0, 0, 0)
    assert not [
        e for e in ami_watch.events
        if e.get("Event") == "QueueCallerJoin"
        and e.get("Channel", "").startswith(f"Local/cb{cb.id}x")
    ]  # fmt: skip
    out = telephonist(serve.config, "callback", "cancel", str(cb.id))
    assert out.returncode == 0, out.stderr


async def test_bad_menu_files_are_refused_and_calls_go_on(
    serve: Serve, settings: Settings, store: Store, centre_dir: Path, tmp_path: Path
) -> None:
    menus = centre_dir / "menus.yaml"
    original = menus.read_bytes()
    bomb = "\n".join(
        ['x: &a ["x","x","x","x","x","x","x","x","x"]']
        + [
            f"{n}: &{n} [{','.join(['*' + p] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ]
    ).replace("x: &a", "a: &a")
    assert len(bomb) < 1024
    try:
        # One Latin-1 byte in a prompt name.
        menus.write_bytes(original.replace(b"greeting: [beep]", b"greeting: [b\xe9ep]", 1))
        await asyncio.sleep(2.5)  # the watcher looks every second
        alive(serve)
        assert serve.health()["status"] == "ok"  # type: ignore[index]
        out = telephonist(serve.config, "ivr", "reload")
        assert out.returncode != 0 and re.search(
            r"menus.yaml:\d+: not UTF-8", out.stdout + out.stderr
        )
        # The running version still answers: 7 plays a prompt, the call is stored.
        await dial(settings, tmp_path, "200", "5572002", [(1200, "7")], 4000)
        _, steps = await journey(store, "5572002")
        assert any(s.digit == "7" for s in steps), [s.detail for s in steps]
        # An alias bomb: refused in well under a second, memory flat, /healthz answering.
        before = rss_mb(serve)
        menus.write_text(bomb)
        started = time.monotonic()
        out = telephonist(serve.config, "ivr", "reload")
        assert out.returncode != 0 and "expands to more than" in out.stdout + out.stderr
        assert time.monotonic() - started < 5  # including the CLI's own start-up
        await asyncio.sleep(2.5)
        alive(serve)
        assert serve.health()["status"] == "ok"  # type: ignore[index]
        assert rss_mb(serve) - before < 50
        out = telephonist(serve.config, "ivr", "check", str(menus))
        assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
        assert re.search(r"menus.yaml:\d+: expands to more than", out.stdout + out.stderr)
    finally:
        menus.write_bytes(original)
    await asyncio.sleep(1.5)
    alive(serve)


async def test_with_serve_down_the_queues_redirects_still_apply(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """serve stopped: the dialplan fallback of a queue line applies the queue's redirects
    instead of answering the caller and hanging up in silence; the calls are recorded when
    serve is back."""
    serve.stop()
    # 307: empty-q, nobody logged in -> its empty redirect, mailbox 100.
    await dial(settings, tmp_path, "307", "5572003", [], 5000)
    await _voicemail(ami_watch, "5572003", "100", "the empty queue's voicemail")
    refused = [
        e for e in ami_watch.events
        if e.get("Event") == "Newexten" and e.get("CallerIDNum") == "5572003"
        and e.get("Extension") == "JOINEMPTY"
    ]  # fmt: skip
    assert refused, "the caller did not go through the queue's empty redirect"
    # 306: night-q, never open -> its after-hours redirect, mailbox 101.
    await dial(settings, tmp_path, "306", "5572004", [], 5000)
    await _voicemail(ami_watch, "5572004", "101", "the closed queue's voicemail")
    serve.start()
    from telephonist.core.models import Call

    async def recorded() -> list[Call]:
        async with store.sessions() as s:
            rows = await s.execute(
                select(Call).where(col(Call.caller_number).in_(("5572003", "5572004")))
            )
            return list(rows.scalars())

    calls = await until(lambda: _two(recorded()), what="the fallback calls recorded")
    assert sorted((c.line, c.route, c.outcome) for c in calls) == [
        ("empty-line", "fallback", "fallback:queue:empty-q"),
        ("night-line", "fallback", "fallback:queue:night-q"),
    ]
    # Asterisk's own records of both calls (its channel events, written while serve was
    # down, read once it was back): answered by the PBX, ended by the caller after ~5 s.
    pbx = await until(lambda: _two(_pbx_calls(store, *(c.channel_id for c in calls))),
                      what="the true records of the fallback calls")  # fmt: skip
    for record in pbx:
        assert record.answered_at is not None and record.hung_up_by == "caller"
        assert record.caller_number in {"5572003", "5572004"}
        assert record.hangup_source == record.channel  # the caller's own channel
        assert 4 <= (record.ended_at - record.started_at).total_seconds() <= 7


async def _pbx_calls(store: Store, *linkedids: str) -> list[Any]:
    from telephonist.core.models import PbxCall

    async with store.sessions() as s:
        rows = await s.execute(select(PbxCall).where(col(PbxCall.linkedid).in_(linkedids)))
        return list(rows.scalars())


async def _voicemail(ami_watch: AmiWatch, caller: str, box: str, what: str) -> None:
    vm = await ami_watch.wait_for(
        lambda e: e.get("Event") == "Newexten" and e.get("Application") == "VoiceMail"
        and e.get("CallerIDNum") == caller,
        what=what,
    )  # fmt: skip
    assert vm["AppData"].startswith(f"{box}@default")


async def _two(rows: Any) -> Any:
    found = await rows
    return found if len(found) == 2 else None


async def test_a_call_whose_end_serve_did_not_see_is_closed(
    serve: Serve, settings: Settings, store: Store, tmp_path: Path
) -> None:
    """serve killed in the middle of a call: when it is back, the call's record is closed
    (outcome lost), not left open for ever."""
    from telephonist.core.models import Call

    call = asyncio.create_task(dial(settings, tmp_path, "200", "5572100", [], 5000))

    async def opened() -> Call | None:
        async with store.sessions() as s:
            return (
                await s.execute(select(Call).where(col(Call.caller_number) == "5572100"))
            ).scalar_one_or_none()

    await until(opened, what="the call recorded")
    serve.kill()
    await call  # the caller hangs up while serve is dead
    serve.start()

    async def closed() -> Call | None:
        row = await opened()
        return row if row is not None and row.ended_at is not None else None

    row = await until(closed, timeout=30, what="the record closed")
    assert row.outcome == "lost"
    # Its true end came from Asterisk: when the caller hung up, not when serve found out.
    (record,) = await until(lambda: _pbx_calls(store, row.channel_id), what="the true record")
    assert record.caller_number == "5572100" and record.hung_up_by == "caller"
    assert as_utc(record.ended_at) < as_utc(row.ended_at)  # type: ignore[arg-type]
    assert 4 <= (as_utc(record.ended_at) - as_utc(record.started_at)).total_seconds() <= 7


async def test_queue_callers_hear_music_on_hold(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    # 304: cbq, nobody logged in, callers may wait.
    await dial(settings, tmp_path, "304", "5572005", [], 4000)
    start = await ami_watch.wait_for(
        lambda e: e.get("Event") == "MusicOnHoldStart" and e.get("CallerIDNum") == "5572005",
        what="hold music for the waiting caller",
    )
    assert start["Class"] == "default"


async def test_health_and_the_outbox_gauge_tell_the_truth_about_the_broker(
    serve: Serve, broker: Broker, settings: Settings, store: Store, tmp_path: Path
) -> None:
    broker.stop()
    try:
        started = time.monotonic()
        await until(lambda: _mqtt_down(serve), timeout=10, what="/healthz to show the broker down")
        noticed = time.monotonic() - started
        assert noticed < 8, noticed
        # Events made while the broker is away: three calls.
        for i in range(3):
            await dial(settings, tmp_path, "100", f"557201{i}", [], 1500)
        pending = await _pending(store)
        assert pending >= 3
        await until(
            lambda: _gauge_is(pending, store), timeout=8, what="the outbox gauge = unsent events"
        )
        alive(serve)
    finally:
        broker.start()
    serve.wait_healthy(20)
    await until(lambda: _all_sent(store), timeout=20, what="every event sent once back")
    await until(lambda: _gauge_is(0, store), timeout=5, what="the outbox gauge back to 0")


async def _mqtt_down(serve: Serve) -> bool:
    h = await asyncio.to_thread(serve.health)
    return h is not None and not h["components"]["mqtt"]["up"]


async def _pending(store: Store) -> int:
    async with store.sessions() as s:
        return int(
            (
                await s.execute(select(func.count()).where(col(OutboxEvent.sent_at).is_(None)))
            ).scalar_one()
        )


async def _gauge_is(expected: int, store: Store) -> bool:
    now = await _pending(store)
    gauge = await asyncio.to_thread(metric, "telephonist_outbox_pending")
    return now >= expected and gauge == now


async def _all_sent(store: Store) -> bool:
    return await _pending(store) == 0


async def test_a_large_import_while_calls_come_in(
    serve: Serve, settings: Settings, store: Store, tmp_path: Path
) -> None:
    """An admin imports 30,000 contacts while callers ring in: each call is answered at
    once and closed, the import commits in short batches (it used to hold the lock 54 s)."""
    from telephonist.bench.contacts_import import write_list
    from telephonist.core.models import Call

    big = tmp_path / "big.csv"
    await asyncio.to_thread(write_list, big, 30_000)
    proc = await asyncio.create_subprocess_exec(
        *telephonist_argv(serve), "contacts", "import", str(big), "--list", "during-calls",
        "--region", "FR",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    callers: list[str] = []
    while proc.returncode is None and len(callers) < 12:
        caller = f"55730{len(callers):02d}"
        callers.append(caller)
        await dial(settings, tmp_path, "100", caller, [], 1000)
        try:
            await asyncio.wait_for(proc.wait(), 0.2)
        except TimeoutError:
            pass
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "29400 contacts imported" in out.decode(), out.decode()
    assert len(callers) >= 3, "the import ended before calls could overlap it"
    async with store.sessions() as s:
        calls = list(
            (await s.execute(select(Call).where(col(Call.caller_number).in_(callers)))).scalars()
        )
    assert len(calls) == len(callers)
    for call in calls:
        assert call.outcome == "completed" and call.ended_at is not None, call
        assert call.answered_at is not None
        waited = (call.answered_at - call.started_at).total_seconds()
        assert waited < 2, f"{call.caller_number} answered {waited:.1f}s late"
    alive(serve)


def telephonist_argv(serve: Serve) -> list[str]:
    import sys

    return [sys.executable, "-m", "telephonist.cli.main", "--config", str(serve.config)]


async def test_asterisk_restarted_under_a_waiting_callback(
    serve: Serve, pbx: Sandbox, settings: Settings, store: Store, ami_watch: AmiWatch
) -> None:
    """The callback's placeholder dies with Asterisk: the try is judged lost (once), and the
    task is placed again with a new number, never two at a time."""
    out = telephonist(serve.config, "callback", "add", "5573100", "--queue", "cbq")
    assert out.returncode == 0, out.stderr
    cb_id = int(out.stdout.split()[1].rstrip(":"))
    await ami_watch.wait_for(lambda e: _placeholder_joined(e, cb_id, 1), what="try 1 waiting")
    pid = pbx._read_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await pbx.up()
    await asyncio.to_thread(serve.wait_healthy, 20)
    # The test's own AMI connection reconnects too and sees the second placeholder.
    await ami_watch.wait_for(
        lambda e: _placeholder_joined(e, cb_id, 2), timeout=90, what="try 2 waiting"
    )
    async with store.sessions() as s:
        cb = await s.get(CallbackRequest, cb_id)
        rows = list(
            (
                await s.execute(
                    select(CallbackAttempt)
                    .where(col(CallbackAttempt.callback_id) == cb_id)
                    .order_by(col(CallbackAttempt.attempt))
                )
            ).scalars()
        )
    assert cb is not None and (cb.state, cb.tries, cb.attempts) == ("queued", 2, 0)
    assert [(r.attempt, r.outcome) for r in rows] == [(1, "lost"), (2, "")]
    assert not [e for e in ami_watch.events if _placeholder_joined(e, cb_id, 3)]
    alive(serve)
    out = telephonist(serve.config, "callback", "cancel", str(cb_id))
    assert out.returncode == 0, out.stderr


async def test_serve_killed_between_storing_a_try_and_sending_it(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch
) -> None:
    """What serve leaves when it dies after storing a try and before its Originate: a queued
    task with no placeholder. The next serve finds it and places it once, as try 2."""
    from datetime import UTC, datetime, timedelta

    serve.stop()
    long_ago = datetime.now(UTC) - timedelta(seconds=60)
    async with store.unit_of_work() as uow:
        cb = CallbackRequest(number="5573200", queue="cbq", source="manual", state="queued",
                             tries=1, requested_at=long_ago)  # fmt: skip
        uow.session.add(cb)
        await uow.session.flush()
        assert cb.id is not None
        cb_id = cb.id
        uow.session.add(CallbackAttempt(callback_id=cb_id, attempt=1, started_at=long_ago))
    serve.start()
    await ami_watch.wait_for(
        lambda e: _placeholder_joined(e, cb_id, 2), timeout=40, what="the task placed again"
    )
    await asyncio.sleep(3)
    joined = [e for e in ami_watch.events if _placeholder_joined(e, cb_id, None)]
    assert len(joined) == 1, joined
    out = telephonist(serve.config, "callback", "cancel", str(cb_id))
    assert out.returncode == 0, out.stderr


def _placeholder_joined(e: dict[str, str], cb_id: int, attempt: int | None) -> bool:
    prefix = f"Local/cb{cb_id}x{'' if attempt is None else attempt}"
    return e.get("Event") == "QueueCallerJoin" and e.get("Channel", "").startswith(
        prefix if attempt is None else prefix + "@"
    )


async def test_ami_cut_in_the_middle_of_placing_callbacks(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch
) -> None:
    """Four callbacks due at once; the AMI connection is cut right after the second
    Originate reached Asterisk (its response lost). Each task is in the queue exactly once:
    the one whose outcome serve could not know is not placed again, the others are placed
    after the reconnect."""
    serve.stop()
    async with AmiCutter(25039, settings.pbx.ami_port) as cutter:
        # In a thread: the relay runs on this test's event loop, which must not be blocked.
        await asyncio.to_thread(serve.start, env_extra={"TELEPHONIST_PBX__AMI_PORT": "25039"})
        cutter.cut_after_originates = cutter.originates + 2
        ids = []
        for i in range(4):
            out = await asyncio.to_thread(
                telephonist, serve.config, "callback", "add", f"557330{i}", "--queue", "cbq"
            )
            assert out.returncode == 0, out.stderr
            ids.append(int(out.stdout.split()[1].rstrip(":")))
        for cb_id in ids:
            await ami_watch.wait_for(
                lambda e, cb_id=cb_id: _placeholder_joined(e, cb_id, None),
                timeout=60, what=f"callback {cb_id} waiting",
            )  # fmt: skip
        await asyncio.sleep(35)  # past a periodic reconcile: nothing is placed a second time
        assert cutter.cuts == 1
        for cb_id in ids:
            joined = [e for e in ami_watch.events if _placeholder_joined(e, cb_id, None)]
            assert len(joined) == 1, (cb_id, [e.get("Channel") for e in joined])
        async with store.sessions() as s:
            rows = list(
                (
                    await s.execute(select(CallbackRequest).where(col(CallbackRequest.id).in_(ids)))
                ).scalars()
            )
        assert all(r.state == "queued" for r in rows), [(r.id, r.state) for r in rows]
        alive(serve)
        for cb_id in ids:
            out = await asyncio.to_thread(
                telephonist, serve.config, "callback", "cancel", str(cb_id)
            )
            assert out.returncode == 0, out.stderr
        await asyncio.to_thread(serve.stop)
    serve.start()


async def test_logged_in_agents_are_back_in_their_queues_after_asterisk_restarts(
    serve: Serve, pbx: Sandbox, settings: Settings, ami: AmiClient
) -> None:
    """Asterisk forgets its dynamic queue members when it restarts; telephonist has the
    logins stored and puts the agents back (paused ones paused), with nobody re-logging."""

    async def members(queue: str) -> dict[str, str]:
        try:
            response = await ami.send({"Action": "QueueStatus", "Queue": queue}, as_list=True)
        except AmiError:
            return {}
        return {
            m.get("Location", ""): m.get("Paused", "")
            for m in response
            if m.get("Event") == "QueueMember"
        }

    out = telephonist(serve.config, "agent", "login", "hank")
    assert out.returncode == 0, out.stderr
    out = telephonist(serve.config, "agent", "pause", "hank", "--reason", "lunch")
    assert out.returncode == 0, out.stderr
    try:
        assert (await members("cbq")).get("PJSIP/2008") == "1"
        pid = pbx._read_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await pbx.up()
        await asyncio.to_thread(serve.wait_healthy, 20)
        back = await until(lambda: _member(members("cbq"), "PJSIP/2008"), timeout=20,
                           what="Hank back in cbq")  # fmt: skip
        assert back == "1"  # still paused
        assert (await members("missq")).get("PJSIP/2008") == "1"
    finally:
        out = telephonist(serve.config, "agent", "logout", "hank")
        assert out.returncode == 0, out.stderr


async def _member(found: Any, location: str) -> str | None:
    return (await found).get(location)
