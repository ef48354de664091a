"""Callbacks and voicemail with real calls: sipp callers, agents' phones and customers behind a
trunk (bench/sipp/customer.xml: numbers ending in 9 never answer), against the sandbox PBX.

What is asserted is what Asterisk did (its AMI events) and what telephonist stored."""

from __future__ import annotations

import asyncio
import email
import wave
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.bench.simcall import audio_scenario
from telephonist.callbacks.tasks import OPEN
from telephonist.core.ami import AmiClient
from telephonist.core.models import CallbackAttempt, CallbackRequest, VoicemailMessage
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import MQTT_PORT, SMTP_PORT, AmiWatch
from tests.scenarios.harness import (
    AgentPhone,
    Collector,
    Serve,
    SmtpSink,
    dtmf_scenario,
    sipp_call,
    telephonist,
    until,
)

pytestmark = pytest.mark.pbx

CUSTOMERS = 25410  # the "customers" trunk in tests/scenarios/centre/centre.yaml
HANK = 25508


@pytest.fixture(autouse=True)
async def _no_task_left_open(settings: Settings, store: Store) -> AsyncIterator[None]:
    """Whatever a test leaves open (it failed half-way) is cancelled, and Hank logged out,
    so that the next test starts with an empty cbq instead of failing for this one."""
    yield
    async with store.sessions() as s:
        rows = await s.execute(
            select(col(CallbackRequest.id)).where(col(CallbackRequest.state).in_(OPEN))
        )
        left = [str(i) for i in rows.scalars()]
    for cb_id in left:
        cli(settings, "callback", "cancel", cb_id, "--reason", "left open by a test")
    config = settings.data_dir.parent / "telephonist.toml"
    await asyncio.to_thread(telephonist, config, "agent", "logout", "hank")


def cli(settings: Settings, *args: str) -> str:
    out = telephonist(settings.data_dir.parent / "telephonist.toml", *args)
    assert out.returncode == 0, f"telephonist {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


async def call(
    settings: Settings,
    tmp_path: Path,
    line: str,
    caller: str,
    keys: list[tuple[int, str]],
    hold_ms: int,
    *,
    pbx_hangs_up: bool = False,
    timeout: int = 40,
) -> None:
    scenario = dtmf_scenario(
        tmp_path / f"{caller}-{line}.xml", keys, hold_ms, pbx_must_hang_up=pbx_hangs_up
    )
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, line, caller, scenario=str(scenario), timeout=timeout
    )
    assert proc.returncode == 0, f"sipp failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"


async def callbacks_for(store: Store, number: str) -> list[CallbackRequest]:
    async with store.sessions() as s:
        rows = await s.execute(
            select(CallbackRequest)
            .where(col(CallbackRequest.number) == number)
            .order_by(col(CallbackRequest.id))
        )
        return list(rows.scalars())


async def attempts_of(store: Store, cb_id: int) -> list[CallbackAttempt]:
    async with store.sessions() as s:
        rows = await s.execute(
            select(CallbackAttempt)
            .where(col(CallbackAttempt.callback_id) == cb_id)
            .order_by(col(CallbackAttempt.attempt))
        )
        return list(rows.scalars())


def joins(ami_watch: AmiWatch, queue: str) -> list[dict[str, str]]:
    return [
        e
        for e in ami_watch.events
        if e.get("Event") == "QueueCallerJoin" and e.get("Queue") == queue
    ]


def dials_to(ami_watch: AmiWatch, number: str) -> list[dict[str, str]]:
    return [
        e
        for e in ami_watch.events
        if e.get("Event") == "DialBegin" and e.get("DialString") == f"{number}@customers"
    ]


async def test_press_for_callback_keeps_the_callers_place(
    serve: Serve, settings: Settings, store: Store, ami: AmiClient, ami_watch: AmiWatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    customers = AgentPhone(CUSTOMERS, tmp_path, scenario="customer.xml", calls=1, timeout=150)
    hank = AgentPhone(HANK, tmp_path, calls=3, timeout=150)
    customers.start()
    try:
        # First: a caller who joined before (stays ahead of the callback). Callers hold on
        # for long and the test ends their talk with Hank itself: no race with slow machines.
        first = asyncio.create_task(
            call(settings, tmp_path, "304", "5571000", [], 90000, timeout=120)
        )
        await ami_watch.wait_for(
            lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5571000",
            what="the first caller waiting",
        )
        # The caller who asks for a callback: 1 in the queue, then 1 to confirm their number.
        await call(
            settings, tmp_path, "304", "5571001", [(2000, "1"), (2500, "1")], 20000,
            pbx_hangs_up=True,
        )  # fmt: skip
        (cb,) = await callbacks_for(store, "5571001")
        assert (cb.source, cb.queue) == ("queue", "cbq")
        assert cb.joined_at is not None and cb.requested_at > cb.joined_at
        placeholder = await ami_watch.wait_for(
            lambda e: (
                e.get("Event") == "QueueCallerJoin"
                and e.get("Channel", "").startswith(f"Local/cb{cb.id}x1@")
            ),
            what="the callback's placeholder in the queue",
        )
        assert not first.done(), "the first caller left before the callback was queued"
        assert placeholder["Position"] == "2"  # behind the caller who joined before
        last = asyncio.create_task(
            call(settings, tmp_path, "304", "5571002", [], 90000, timeout=120)
        )
        await ami_watch.wait_for(
            lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5571002",
            what="a caller who joined after",
        )
        hank.start()
        cli(settings, "agent", "login", "hank")
        await _talk_and_hang_up(ami, ami_watch, "5571000")
        await first
        await until(lambda: _state(store, cb.id, "done"), timeout=40, what="the callback done")
        await _talk_and_hang_up(ami, ami_watch, "5571002")
        await last
    finally:
        hank.stop()
        customers.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "hank")  # fmt: skip
    connects = [
        e.get("Channel", "")
        for e in ami_watch.events
        if e.get("Event") == "AgentConnect" and e.get("Queue") == "cbq"
    ]
    order = [
        "first" if c.startswith("PJSIP/") and _caller(ami_watch, c) == "5571000"
        else "callback" if c.startswith(f"Local/cb{cb.id}x1@")
        else "last" if _caller(ami_watch, c) == "5571002"
        else c
        for c in connects
    ]  # fmt: skip
    assert order == ["first", "callback", "last"], connects
    # The agent was connected first; only then was the customer dialled, and they talked.
    mine = f"Local/cb{cb.id}x1@"
    agent_answered = next(
        e for e in ami_watch.events
        if e.get("Event") == "AgentConnect" and e.get("Channel", "").startswith(mine)
    )  # fmt: skip
    (dial,) = dials_to(ami_watch, "5571001")
    assert float(dial["Timestamp"]) > float(agent_answered["Timestamp"])
    end = await ami_watch.wait_for(
        lambda e: e.get("Event") == "DialEnd" and e.get("DestChannel") == dial["DestChannel"],
        what="the customer's leg answered",
    )
    assert end["DialStatus"] == "ANSWER"
    bridged = {
        e.get("BridgeUniqueid")
        for e in ami_watch.events
        if e.get("Event") == "BridgeEnter" and e.get("Channel") == dial["DestChannel"]
    }
    assert len(bridged) == 1 and None not in bridged  # the customer joined a bridge
    (attempt,) = await attempts_of(store, cb.id)  # type: ignore[arg-type]
    assert attempt.outcome == "answered" and attempt.agent == "Hank"
    assert attempt.connected_at is not None and attempt.talk_seconds >= 2


async def test_missed_calls_make_one_task_cancelled_when_the_customer_is_served(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    # Twice: waits 3 s in a queue nobody answers, and hangs up (abandoned; min_wait: 1 s).
    for _ in range(2):
        await call(settings, tmp_path, "305", "5571003", [], 3000)
    await until(
        lambda: _merged(store, "5571003", 1), what="the second missed call merged into the first"
    )
    (cb,) = await callbacks_for(store, "5571003")
    assert (cb.source, cb.state, cb.queue) == ("abandoned", "pending", "missq")
    abandons = [
        e for e in ami_watch.events
        if e.get("Event") == "QueueCallerAbandon" and e.get("CallerIDNum") == "5571003"
    ]  # fmt: skip
    assert len(abandons) == 2
    listed = cli(settings, "callback", "list", "--number", "5571003")
    assert "abandoned" in listed and "pending" in listed
    # The customer calls again and Hank answers: the task is no longer needed.
    hank = AgentPhone(HANK, tmp_path, calls=1)
    hank.start()
    try:
        cli(settings, "agent", "login", "hank")
        await call(settings, tmp_path, "305", "5571003", [], 6000)
        await until(lambda: _state(store, cb.id, "cancelled"), what="the task cancelled")
    finally:
        hank.stop()
        cli(settings, "agent", "logout", "hank")
    (cb,) = await callbacks_for(store, "5571003")
    assert cb.closed_reason.startswith("customer served: missq by Hank")
    assert not dials_to(ami_watch, "5571003")


async def test_no_answer_is_retried_after_the_delay_up_to_the_maximum(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    customers = AgentPhone(CUSTOMERS, tmp_path, scenario="customer.xml", calls=2, timeout=120)
    hank = AgentPhone(HANK, tmp_path, calls=2, timeout=120)
    customers.start()
    hank.start()
    try:
        cli(settings, "agent", "login", "hank")
        out = cli(settings, "callback", "add", "5571009", "--queue", "cbq", "--note", "quote")
        cb_id = int(out.split()[1].rstrip(":"))
        await until(lambda: _state(store, cb_id, "failed"), timeout=150, what="the task failed")
    finally:
        hank.stop()
        customers.stop()
        cli(settings, "agent", "logout", "hank")
    tries = await attempts_of(store, cb_id)
    assert [(a.attempt, a.outcome, a.dial_status) for a in tries] == [
        (1, "no_answer", "NOANSWER"),
        (2, "no_answer", "NOANSWER"),
    ]
    assert tries[0].ended_at is not None
    gap = (tries[1].started_at - tries[0].ended_at).total_seconds()
    assert 4.5 <= gap <= 9, gap  # retry_delay: 5 s
    dials = dials_to(ami_watch, "5571009")
    assert len(dials) == 2  # the maximum (max_attempts: 2), and no more
    await asyncio.sleep(7)  # past another retry delay: still no third call
    assert len(dials_to(ami_watch, "5571009")) == 2
    assert "failed" in cli(settings, "callback", "list", "--state", "failed")


async def test_voicemail_is_stored_published_emailed_and_called_back(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    scenario = audio_scenario(tmp_path / "speaker.xml", seconds=6, hold_ms=6500)
    async with (
        SmtpSink(SMTP_PORT) as sink,
        Collector(MQTT_PORT, "telephonist/testnode/voicemail/new", "t-vm") as mqtt,
    ):
        proc = await asyncio.to_thread(
            sipp_call, settings.pbx.sip_port, "306", "5571004", scenario=str(scenario)
        )
        assert proc.returncode == 0, proc.stdout[-1500:]
        (msg,) = await mqtt.wait_for(lambda m: m[1]["data"]["caller_number"] == "5571004")
        (raw,) = await sink.wait_for(1)
    async with store.sessions() as s:
        (vm,) = (
            await s.execute(
                select(VoicemailMessage).where(col(VoicemailMessage.caller_number) == "5571004")
            )
        ).scalars()
    with wave.open(vm.file, "rb") as w:
        recorded = w.getnframes() / w.getframerate()
    assert vm.mailbox == "101" and vm.duration == round(recorded)
    assert 4 <= vm.duration <= 7  # 6 s spoken, after the tone
    assert msg[1]["data"]["duration"] == vm.duration and msg[1]["data"]["mailbox"] == "101"
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert mail["To"] == "night@example.test" and "5571004" in mail["Subject"]
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "audio/wav"
    recording = await asyncio.to_thread(Path(vm.file).read_bytes)
    assert attachment.get_content() == recording
    # The caller's number is known: a callback task, in the mailbox's queue.
    (cb,) = await callbacks_for(store, "5571004")
    assert (cb.source, cb.queue, vm.callback_id) == ("voicemail", "cbq", cb.id)
    cli(settings, "callback", "cancel", str(cb.id), "--reason", "test done")
    assert "5571004" in cli(settings, "voicemail", "list")
    cli(settings, "voicemail", "export", str(vm.id), str(tmp_path))
    exported = await asyncio.to_thread((tmp_path / f"voicemail-{vm.id}.wav").read_bytes)
    assert exported == recording
    # Never through a symbolic link planted where the copy goes.
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "planted.wav").symlink_to(victim)
    out = telephonist(settings.data_dir.parent / "telephonist.toml", "voicemail", "export",
                      str(vm.id), str(tmp_path / "planted.wav"))  # fmt: skip
    assert out.returncode != 0 and "symbolic link; refused" in out.stderr, out.stderr
    assert victim.read_text() == "precious\n"
    cli(settings, "voicemail", "done", str(vm.id))
    assert "5571004" not in cli(settings, "voicemail", "list")


async def test_serve_killed_before_the_callback_it_happens_exactly_once(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    await call(
        settings, tmp_path, "304", "5571005", [(2000, "1"), (2500, "1")], 20000, pbx_hangs_up=True
    )
    (cb,) = await callbacks_for(store, "5571005")
    await ami_watch.wait_for(
        lambda e: (
            e.get("Event") == "QueueCallerJoin"
            and e.get("Channel", "").startswith(f"Local/cb{cb.id}x1@")
        ),
        what="the placeholder waiting",
    )
    serve.kill()  # the callback is stored and waiting; telephonist dies
    customers = AgentPhone(CUSTOMERS, tmp_path, scenario="customer.xml", calls=1, timeout=120)
    hank = AgentPhone(HANK, tmp_path, calls=1, timeout=120)
    customers.start()
    hank.start()
    try:
        cli(settings, "agent", "login", "hank")  # an agent arrives while telephonist is down
        dial = await ami_watch.wait_for(
            lambda e: e.get("Event") == "DialBegin" and e.get("DialString") == "5571005@customers",
            timeout=20,
            what="the customer dialled (by Asterisk alone)",
        )
        await ami_watch.wait_for(
            lambda e: e.get("Event") == "Hangup" and e.get("Channel") == dial["DestChannel"],
            what="the callback over",
        )
        assert (await callbacks_for(store, "5571005"))[0].state == "queued"  # nobody to tell
        serve.start()
        await until(lambda: _state(store, cb.id, "done"), what="the outcome learnt after restart")
        await asyncio.sleep(3)  # time for a wrong second placement to show
    finally:
        hank.stop()
        customers.stop()
        cli(settings, "agent", "logout", "hank")
    assert len(dials_to(ami_watch, "5571005")) == 1
    (attempt,) = await attempts_of(store, cb.id)  # type: ignore[arg-type]
    assert attempt.outcome == "answered" and attempt.agent == "Hank"
    (cb,) = await callbacks_for(store, "5571005")
    assert (cb.state, cb.attempts) == ("done", 1)


async def _state(store: Store, cb_id: int | None, state: str) -> bool:
    async with store.sessions() as s:
        cb = await s.get(CallbackRequest, cb_id)
        return cb is not None and cb.state == state


async def _merged(store: Store, number: str, merged: int) -> bool:
    rows = await callbacks_for(store, number)
    return len(rows) == 1 and rows[0].merged == merged


async def _talk_and_hang_up(ami: AmiClient, ami_watch: AmiWatch, caller: str) -> None:
    """Wait until the caller is connected to an agent, let them talk 2 s, hang the caller up."""
    connect = await ami_watch.wait_for(
        lambda e: e.get("Event") == "AgentConnect" and e.get("CallerIDNum") == caller,
        timeout=60,
        what=f"{caller} connected to an agent",
    )
    await asyncio.sleep(2)
    await ami.send({"Action": "Hangup", "Channel": connect["Channel"]})


def _caller(ami_watch: AmiWatch, channel: str) -> str:
    return next(
        (
            e.get("CallerIDNum", "")
            for e in ami_watch.events
            if e.get("Event") == "QueueCallerJoin" and e.get("Channel") == channel
        ),
        "",
    )
