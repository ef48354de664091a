"""A short live campaign on the sandbox PBX: contacts imported from a file, a DNC number, a
contact outside its calling window, customers behind a trunk (core/sipp/customer.xml: ...8
busy, ...9 never answers, others answer) and an agent's phone. The stored attempts must match
what Asterisk did."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.models import CampaignLead, DialAttempt
from core.settings import Settings
from core.storage import Store
from tests.scenarios.conftest import AmiWatch
from tests.scenarios.harness import AgentPhone, Serve, telephonist

pytestmark = pytest.mark.pbx


def zone_at(hour_from: int, hour_to: int) -> str:
    """A fixed-offset zone whose local hour now is in [hour_from, hour_to)."""
    now = datetime.now(UTC)
    for offset in range(-12, 15):
        if hour_from <= (now + timedelta(hours=offset)).hour < hour_to:
            # Etc/GMT-3 is UTC+3 (the POSIX sign is inverted).
            return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}" if offset else "UTC"
    raise AssertionError("no zone found")


def cli(settings: Settings, *args: str) -> str:
    out = telephonist(settings.data_dir.parent / "telephonist.toml", *args)
    assert out.returncode == 0, f"telephonist {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


async def test_live_campaign_attempts_match_asterisk(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    inside, outside = zone_at(11, 17), zone_at(1, 6)
    contacts = tmp_path / "leads.csv"
    with contacts.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "phone", "tz"])
        w.writerow(["Answers One", "+1 212 555 0101", inside])
        w.writerow(["Answers Two", "+1 212 555 0102", inside])
        w.writerow(["Busy Line", "+1 212 555 0108", inside])
        w.writerow(["Never Answers", "+1 212 555 0109", inside])
        w.writerow(["On DNC", "+1 212 555 0103", inside])
        w.writerow(["Asleep", "+1 212 555 0104", outside])  # 01:00-06:00 where they live
        w.writerow(["Hostile", "+1 212 555 0105;Dial(PJSIP/x)", inside])
    out = cli(settings, "contacts", "import", str(contacts), "--list", "live1", "--region", "US")
    assert "6 contacts imported, 0 merged into existing ones, 1 rejected" in out
    cli(settings, "dnc", "add", "(212) 555-0103")
    cli(
        settings, "campaign", "create", "live1", "--list", "live1", "--queue", "outq",
        "--trunk", "customers", "--mode", "progressive", "--window", "09:00-20:00",
        "--days", "mon-sun", "--max-attempts", "1", "--ring-seconds", "15",
    )  # fmt: skip
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=4, timeout=120)
    ivan = AgentPhone(25509, tmp_path, calls=2, timeout=120)
    customers.start()
    ivan.start()
    try:
        cli(settings, "agent", "login", "ivan")
        cli(settings, "campaign", "start", "live1")

        async def settled() -> bool:
            async with store.sessions() as s:
                states = [lead.state for lead in (await s.execute(select(CampaignLead))).scalars()]
            return sorted(states) == ["dnc", "done", "done", "exhausted", "exhausted", "new"]

        deadline = asyncio.get_running_loop().time() + 90
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, "the campaign did not finish"
            await asyncio.sleep(0.5)
        cli(settings, "campaign", "stop", "live1")
    finally:
        ivan.stop()
        customers.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    async with store.sessions() as s:
        attempts = {a.number: a for a in (await s.execute(select(DialAttempt))).scalars()}
    assert set(attempts) == {"+12125550101", "+12125550102", "+12125550108", "+12125550109"}
    # What Asterisk did, attempt by attempt (the channel's unique id is dial-<attempt id>).
    channels = {
        e["Uniqueid"]: e["Channel"]
        for e in ami_watch.events
        if e.get("Event") == "Newchannel" and e.get("Uniqueid", "").startswith("dial-")
    }
    assert sorted(channels.values()) == sorted(
        f"PJSIP/customers-{c.split('-')[-1]}" for c in channels.values()
    )  # PJSIP channels to the customers trunk only
    assert len(channels) == 4  # nobody else was called: not the DNC number, not the sleeper
    for number in ("+12125550101", "+12125550102"):
        a = attempts[number]
        connect = [
            e for e in ami_watch.events
            if e.get("Event") == "AgentConnect" and e.get("Uniqueid") == f"dial-{a.id}"
        ]  # fmt: skip
        assert len(connect) == 1 and connect[0]["MemberName"] == "Ivan"
        assert (a.outcome, a.agent) == ("answered", "Ivan")
        assert a.answered_at is not None and a.connected_at is not None
    for number, outcome, causes in (
        ("+12125550108", "busy", {"17"}),
        ("+12125550109", "no_answer", {"18", "19", "16"}),
    ):
        a = attempts[number]
        (resp,) = [
            e for e in ami_watch.events
            if e.get("Event") == "OriginateResponse" and e.get("Uniqueid") == f"dial-{a.id}"
        ]  # fmt: skip
        (hangup,) = [
            e for e in ami_watch.events
            if e.get("Event") == "Hangup" and e.get("Uniqueid") == f"dial-{a.id}"
        ]  # fmt: skip
        assert resp["Response"] == "Failure" and hangup["Cause"] in causes, (resp, hangup)
        assert a.outcome == outcome, (a, resp, hangup)
    stats = json.loads(cli(settings, "campaign", "stats", "live1", "--json"))
    assert (stats["dials"], stats["connects"], stats["abandoned"]) == (4, 2, 0)
    assert stats["talk_seconds"] >= 4 and stats["occupancy"] > 0


async def test_preview_the_agent_sees_the_lead_then_is_connected_first(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    contacts = tmp_path / "preview.csv"
    contacts.write_text(
        f"name,phone,tz,company\nPat Preview,+1 212 555 0111,{zone_at(11, 17)},ACME\n"
    )
    cli(settings, "contacts", "import", str(contacts), "--list", "prev1", "--region", "US")
    cli(
        settings, "campaign", "create", "prev1", "--list", "prev1", "--queue", "outq",
        "--trunk", "customers", "--mode", "preview", "--days", "mon-sun",
    )  # fmt: skip
    cli(settings, "campaign", "start", "prev1")
    await asyncio.sleep(2.5)  # the engine does not dial preview campaigns by itself
    assert not [e for e in ami_watch.events if e.get("DialString") == "12125550111@customers"]
    shown = cli(settings, "campaign", "next", "prev1")
    assert "Pat Preview +12125550111" in shown and "ACME" in shown
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=1, timeout=60)
    ivan = AgentPhone(25509, tmp_path, calls=1, timeout=60)
    customers.start()
    ivan.start()
    try:
        placed = cli(settings, "campaign", "next", "prev1", "--call", "--agent", "ivan")
        attempt_id = int(placed.split("attempt ")[1].split(":")[0])
        dial = await ami_watch.wait_for(
            lambda e: (
                e.get("Event") == "DialBegin" and e.get("DialString") == "12125550111@customers"
            ),
            what="the lead dialled",
        )
        agent_up = next(
            e for e in ami_watch.events
            if e.get("Event") == "Newstate" and e.get("Channel", "").startswith("PJSIP/2009-")
            and e.get("ChannelStateDesc") == "Up"
        )  # fmt: skip
        assert float(agent_up["Timestamp"]) <= float(dial["Timestamp"])  # the agent first
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            async with store.sessions() as s:
                attempt = await s.get(DialAttempt, attempt_id)
            if attempt is not None and attempt.outcome:
                break
            assert loop.time() < deadline, "no outcome stored for the preview call"
            await asyncio.sleep(0.3)
    finally:
        ivan.stop()
        customers.stop()
        cli(settings, "campaign", "stop", "prev1")
    assert (attempt.outcome, attempt.agent, attempt.reason) == (
        "answered",
        "ivan",
        "preview ANSWER",
    )
