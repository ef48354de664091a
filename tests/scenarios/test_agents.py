"""Agents with real SIP phones (sipp UAS): login, pause with a reason, and a paused agent
gets no call while the other one answers it."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import AgentLogin, AgentPause
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import AmiWatch
from tests.scenarios.harness import AgentPhone, Serve, dtmf_scenario, sipp_call, telephonist

pytestmark = pytest.mark.pbx


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return telephonist(settings.data_dir.parent / "telephonist.toml", *args)


async def agent(settings: Settings, *args: str) -> str:
    result = await asyncio.to_thread(cli, settings, "agent", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_paused_agent_gets_no_call_the_other_answers(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    alice, bob = AgentPhone(25501, tmp_path), AgentPhone(25502, tmp_path)
    alice.start()
    bob.start()
    try:
        assert "alice logged in to sales, support" in await agent(settings, "login", "alice")
        await agent(settings, "login", "bob")
        added = await ami_watch.wait_for(
            lambda e: e.get("Event") == "QueueMemberAdded" and e.get("MemberName") == "Alice"
            and e.get("Queue") == "support", what="Alice added to support",
        )  # fmt: skip
        assert added["Penalty"] == "1" and added["Interface"] == "PJSIP/2001"
        await agent(settings, "pause", "alice", "--reason", "lunch")
        paused = await ami_watch.wait_for(
            lambda e: e.get("Event") == "QueueMemberPause" and e.get("MemberName") == "Alice",
            what="Alice paused",
        )
        assert paused["Paused"] == "1" and paused["PausedReason"] == "lunch"
        listing = await agent(settings, "list")
        alice_row = next(line for line in listing.splitlines() if "alice" in line)
        assert "yes: lunch" in alice_row and "sales (0)" in alice_row

        # A caller: line 200, 1 (sales menu), 1 (sales queue); talks 4 s, hangs up.
        scenario = dtmf_scenario(tmp_path / "caller.xml", [(1200, "1"), (2200, "1")], 9000)
        proc = await asyncio.to_thread(
            sipp_call, settings.pbx.sip_port, "200", "5580001", scenario=str(scenario)
        )
        assert proc.returncode == 0, proc.stdout[-1500:]
        connect = await ami_watch.wait_for(
            lambda e: e.get("Event") == "AgentConnect" and e.get("CallerIDNum") == "5580001",
            what="an agent answered",
        )
        assert connect["MemberName"] == "Bob" and connect["Queue"] == "sales"
        assert await asyncio.to_thread(bob.wait) == 0  # Bob's phone took the call and hung up clean
        called = [
            e.get("MemberName") for e in ami_watch.events
            if e.get("Event") == "AgentCalled" and e.get("CallerIDNum") == "5580001"
        ]  # fmt: skip
        assert called and set(called) == {"Bob"}  # Alice, paused, was never rung

        out = await agent(settings, "unpause", "alice")
        assert out.startswith("alice unpaused after")
    finally:
        alice.stop()
        bob.stop()
        for name in ("alice", "bob"):
            await asyncio.to_thread(cli, settings, "agent", "logout", name)
    async with store.sessions() as s:
        pauses = (
            (await s.execute(select(AgentPause).where(col(AgentPause.agent) == "alice")))
            .scalars()
            .all()
        )
        logins = (await s.execute(select(AgentLogin).order_by(col(AgentLogin.id)))).scalars().all()
    assert [(p.reason, p.seconds is not None and p.seconds > 0) for p in pauses] == [
        ("lunch", True)
    ]
    assert [(x.agent, x.queues, x.logged_out_at is not None) for x in logins[-2:]] == [
        ("alice", "sales,support", True),
        ("bob", "sales", True),
    ]


async def test_unknown_agent_and_bad_reason_are_clear_errors(
    settings: Settings, pbx: object
) -> None:
    result = await asyncio.to_thread(cli, settings, "agent", "login", "mallory")
    assert (
        result.returncode == 2
        and "no agent 'mallory' (agents: alice, bob, carol, dave, erin, frank, gina"
        in result.stderr
    )
    result = await asyncio.to_thread(
        cli, settings, "agent", "pause", "alice", "--reason", "x\r\nAction: Logoff"
    )
    assert result.returncode == 2 and "pause reason" in result.stderr


async def test_answer_on_pickup_caller_is_answered_only_when_the_agent_answers(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    bob = AgentPhone(25502, tmp_path)
    bob.start()
    try:
        await agent(settings, "login", "bob")
        # Line 300 goes straight to the sales queue, answer: on_pickup.
        scenario = dtmf_scenario(tmp_path / "pickup.xml", [], 3000)
        proc = await asyncio.to_thread(
            sipp_call, settings.pbx.sip_port, "300", "5580002", scenario=str(scenario)
        )
        assert proc.returncode == 0, proc.stdout[-1500:]
        assert await asyncio.to_thread(bob.wait) == 0
    finally:
        bob.stop()
        await asyncio.to_thread(cli, settings, "agent", "logout", "bob")

    def ts(pred):
        found = [float(e["Timestamp"]) for e in ami_watch.events if pred(e)]
        assert found, "event not seen"
        return found[0]

    joined = ts(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5580002")
    caller_up = ts(
        lambda e: e.get("Event") == "Newstate" and e.get("ChannelStateDesc") == "Up"
        and e.get("CallerIDNum") == "5580002" and e.get("Channel", "").startswith("PJSIP/anonymous")
    )  # fmt: skip
    agent_up = ts(
        lambda e: e.get("Event") == "Newstate" and e.get("ChannelStateDesc") == "Up"
        and e.get("Channel", "").startswith("PJSIP/2002-")
    )  # fmt: skip
    assert caller_up >= agent_up, "the caller was answered before the agent picked up"
    assert (
        caller_up - joined >= 0.4
    )  # the agent's phone rang ~0.5 s first: the caller heard ringing


async def call_queue_line(
    settings: Settings, tmp_path: Path, number: str, caller: str, talk_ms: int
) -> None:
    scenario = dtmf_scenario(tmp_path / f"{caller}.xml", [], talk_ms)
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, number, caller, scenario=str(scenario)
    )
    assert proc.returncode == 0, proc.stdout[-1500:]


async def test_calls_are_distributed_by_the_strategy(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    dave = AgentPhone(25504, tmp_path, calls=2)
    erin = AgentPhone(25505, tmp_path, calls=2)
    dave.start()
    erin.start()
    try:
        for name in ("dave", "erin"):
            await agent(settings, "login", name)
        # rrmemory: the second call goes to the agent after the one who took the first.
        await call_queue_line(settings, tmp_path, "301", "5581001", 3000)
        await call_queue_line(settings, tmp_path, "301", "5581002", 3000)
    finally:
        dave.stop()
        erin.stop()
        for name in ("dave", "erin"):
            await asyncio.to_thread(cli, settings, "agent", "logout", name)
    took = {
        e.get("CallerIDNum"): e.get("MemberName") for e in ami_watch.events
        if e.get("Event") == "AgentConnect" and e.get("Queue") == "rr-q"
    }  # fmt: skip
    assert set(took) == {"5581001", "5581002"}
    assert set(took.values()) == {"Dave", "Erin"}, took


async def test_wrap_up_time_is_honoured(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    frank = AgentPhone(25506, tmp_path, calls=2)
    frank.start()
    try:
        await agent(settings, "login", "frank")
        await call_queue_line(settings, tmp_path, "302", "5582001", 3000)
        await call_queue_line(settings, tmp_path, "302", "5582002", 9000)
    finally:
        frank.stop()
        await asyncio.to_thread(cli, settings, "agent", "logout", "frank")

    def ts(event: str, caller: str) -> float:
        return next(
            float(e["Timestamp"]) for e in ami_watch.events
            if e.get("Event") == event and e.get("CallerIDNum") == caller
        )  # fmt: skip

    rest = ts("AgentCalled", "5582002") - ts("AgentComplete", "5582001")
    # app_queue keeps the last call's time in whole seconds, so a 4 s wrap-up can be up to
    # a second shorter; without wrap-up Frank would be rung a fraction of a second later.
    assert rest >= 2.9, f"Frank was rung {rest:.1f}s after his last call (wrap-up: 4 s)"
