"""A short live campaign on the sandbox PBX: contacts imported from a file, a DNC number, a
contact outside its calling window, customers behind a trunk (bench/sipp/customer.xml: ...8
busy, ...9 never answers, others answer) and an agent's phone. The stored attempts must match
what Asterisk did."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.acd.agents import interface
from telephonist.asterisk_conf.render import agent_password
from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.bench import dialer_live as live
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.centre import load_centre
from telephonist.core.models import (
    Call,
    Campaign,
    CampaignLead,
    DialAttempt,
    DncEntry,
    OutboxEvent,
    as_utc,
)
from telephonist.core.settings import Settings
from telephonist.core.speech import custom_sounds
from telephonist.core.storage import Store
from telephonist.dialer.sim import SCENARIOS
from tests.scenarios.conftest import AmiWatch
from tests.scenarios.harness import AgentPhone, Serve, dtmf_scenario, sipp_call, telephonist, until

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
        "--days", "mon-sun",
        "--message-text", "Example Test Centre", "--max-attempts", "1", "--ring-seconds", "15",
    )  # fmt: skip
    # The abandoned-call message was spoken into a sound Asterisk plays, kept with the campaign.
    async with store.sessions() as s:
        made = (await s.execute(select(Campaign).where(col(Campaign.name) == "live1"))).scalar_one()
    assert made.message.startswith("custom/telephonist-abandon-live1-")
    assert (
        "Example Test Centre" in made.message_text and "2 1 2, 5 5 5, 0 1 0 0" in made.message_text
    )
    sounds = custom_sounds(settings)
    assert sounds is not None
    assert (sounds.parent / f"{made.message}.wav").stat().st_size > 8000  # over half a second
    seen = tmp_path / "customers-messages.log"  # every SIP message the called parties got
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=4, timeout=120,
                           extra=("-trace_msg", "-message_file", str(seen)))  # fmt: skip
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

        await until(settled, 90, "the campaign finished", every=0.5)
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
        # The 2-second clock (an absolute time-out on the customer's channel) was stopped when
        # Ivan answered: the customer talked until they hung up (3 s after answering).
        uid = f"dial-{a.id}"
        (up,) = [e for e in ami_watch.events if e.get("Event") == "Newstate"
                 and e.get("Uniqueid") == uid and e.get("ChannelStateDesc") == "Up"]  # fmt: skip
        (gone,) = [e for e in ami_watch.events
                   if e.get("Event") == "Hangup" and e.get("Uniqueid") == uid]  # fmt: skip
        assert _ts(gone) - _ts(up) >= 2.5, (up, gone)
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
    # The lead that never answers rang its full 15 s (the minimum ring) before the PBX gave up.
    never = attempts["+12125550109"]
    (rang,) = [e for e in ami_watch.events if e.get("Event") == "Newchannel"
               and e.get("Uniqueid") == f"dial-{never.id}"]  # fmt: skip
    (gave_up,) = [e for e in ami_watch.events if e.get("Event") == "Hangup"
                  and e.get("Uniqueid") == f"dial-{never.id}"]  # fmt: skip
    assert 15.0 <= float(gave_up["Timestamp"]) - float(rang["Timestamp"]) < 20.0
    # Every called party saw the campaign's caller ID (dialer.caller_id, +1 212 555 0100).
    invites = invites_seen(seen)
    assert sorted(invites) == ["12125550101", "12125550102", "12125550108", "12125550109"]
    assert all(presented == "12125550100" for presented in invites.values()), invites
    stats = json.loads(cli(settings, "campaign", "stats", "live1", "--json"))
    assert (stats["dials"], stats["connects"], stats["abandoned"]) == (4, 2, 0)
    assert stats["talk_seconds"] >= 4 and stats["occupancy"] > 0
    # Dispositions. Ivan keys *71 on his phone: his latest call was a sale. A CRM, with its own
    # AMI login (UserEvents only), says the other one asked not to be called again.
    answered = sorted((attempts["+12125550101"], attempts["+12125550102"]),
                      key=lambda a: a.connected_at or datetime.min)  # fmt: skip
    other, latest = answered
    proc = await asyncio.to_thread(
        sipp_call, settings.pbx.sip_port, "*71", "2009", scenario="agent_call_auth.xml",
        auth=("2009", agent_password(settings.ami_secret, "2009")),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:]
    crm = AmiClient(settings.pbx.host, settings.pbx.ami_port, settings.pbx.crm_ami_user,
                    settings.crm_ami_secret, events="off")  # fmt: skip
    task = asyncio.create_task(crm.run())
    try:
        await crm.link.wait_up(10)
        for attempt_id, code in ((other.id, "dnc"), (latest.id, "Dial(PJSIP/x)")):
            await crm.send({"Action": "UserEvent", "UserEvent": "TelephonistDisposition",
                            "Attempt": str(attempt_id), "Code": code})  # fmt: skip
        with pytest.raises(AmiError):  # the CRM login may do nothing else
            await crm.send({"Action": "Originate", "Channel": "PJSIP/2009",
                            "Application": "Wait", "Data": "1"})  # fmt: skip
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def dispositions() -> tuple[str, str, str]:
        async with store.sessions() as s:
            mine = await s.get(CampaignLead, latest.lead_id)
            theirs = await s.get(CampaignLead, other.lead_id)
            listed = (
                await s.execute(select(DncEntry).where(col(DncEntry.number) == other.number))
            ).scalar_one_or_none()
        assert mine is not None and theirs is not None
        return mine.disposition, theirs.disposition, listed.source if listed else ""

    async def stored() -> bool:
        return await dispositions() == ("sale", "dnc", "disposition by ami")

    await until(stored, 10, "Ivan's sale, the CRM's dnc and its DNC entry stored")
    thanked = [e for e in ami_watch.events if e.get("Event") == "Newexten"
               and e.get("AppData", "").startswith("auth-thankyou")]  # fmt: skip
    assert thanked, "Ivan did not hear the confirmation"


def invites_seen(log: Path) -> dict[str, str]:
    """The INVITEs in a sipp ``-trace_msg`` file: number called -> the caller ID presented (the
    user of P-Asserted-Identity when sent, else of From)."""
    out: dict[str, str] = {}
    for block in log.read_text(errors="replace").split("message received")[1:]:
        lines = block.splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        if " bytes :" in first:
            lines = lines[lines.index(first) + 1 :]
        request = next((ln.strip() for ln in lines if ln.strip()), "")
        if not request.startswith("INVITE sip:"):
            continue
        called = request.split("sip:", 1)[1].split("@", 1)[0]
        headers = {}
        for ln in lines:
            name, sep, value = ln.strip().partition(":")
            if sep and name.lower() in ("from", "p-asserted-identity"):
                headers[name.lower()] = value
        shown = headers.get("p-asserted-identity") or headers.get("from", "")
        out[called] = shown.split("sip:", 1)[1].split("@", 1)[0] if "sip:" in shown else shown
    return out


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
        "--message-text", "Example Test Centre",
    )  # fmt: skip
    cli(settings, "campaign", "start", "prev1")
    await asyncio.sleep(2.5)  # the engine does not dial preview campaigns by itself
    assert not [e for e in ami_watch.events if e.get("DialString") == "12125550111@customers"]
    shown = cli(settings, "campaign", "next", "prev1")
    assert "Pat Preview +12125550111" in shown and "ACME" in shown
    seen = tmp_path / "preview-messages.log"
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=1, timeout=60,
                           extra=("-trace_msg", "-message_file", str(seen)))  # fmt: skip
    ivan = AgentPhone(25509, tmp_path, calls=1, timeout=60)
    customers.start()
    ivan.start()
    try:
        refused = telephonist(settings.data_dir.parent / "telephonist.toml",
                              "campaign", "next", "prev1", "--agent", "ivan")  # fmt: skip
        assert refused.returncode == 2 and "ivan is not logged in to outq" in refused.stderr
        cli(settings, "agent", "login", "ivan")
        held = cli(settings, "campaign", "next", "prev1", "--agent", "ivan")
        assert "Pat Preview +12125550111" in held and "held for ivan" in held
        placed = cli(settings, "campaign", "next", "prev1", "--call", "--agent", "ivan")
        assert "Pat Preview" in placed  # the lead he holds, not another
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

        async def outcome() -> DialAttempt | None:
            async with store.sessions() as s:
                attempt = await s.get(DialAttempt, attempt_id)
            return attempt if attempt is not None and attempt.outcome else None

        attempt = await until(outcome, 20, "an outcome stored for the preview call")
    finally:
        ivan.stop()
        customers.stop()
        cli(settings, "campaign", "stop", "prev1")
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    assert (attempt.outcome, attempt.agent, attempt.reason) == (
        "answered",
        "ivan",
        "preview ANSWER",
    )
    # Pat saw the campaign's number, not their own (the agent's phone showed Pat's).
    assert invites_seen(seen) == {"12125550111": "12125550100"}


def sim_campaign(settings: Settings, tmp_path: Path, name: str, n: int) -> None:
    """A list ``name`` of ``n`` generated US leads and a predictive campaign ``name`` over it
    to simq (the simulated agents) through the callees trunk, in calling hours all day: one
    attempt each, 20 s of ring, a spoken message."""
    live.write_contacts(tmp_path / f"{name}.csv", n)
    cli(settings, "contacts", "import", str(tmp_path / f"{name}.csv"), "--list", name,
        "--region", "US")  # fmt: skip
    cli(
        settings, "campaign", "create", name, "--list", name, "--queue", "simq",
        "--trunk", "callees", "--mode", "predictive", "--window", "00:00-23:59",
        "--days", "mon-sun",
        "--message-text", "Example Test Centre", "--max-attempts", "1", "--ring-seconds", "20",
    )  # fmt: skip


@contextlib.asynccontextmanager
async def sim_team(
    settings: Settings, ami: AmiClient, tmp_path: Path, inf: Path, n: int, agents: int,
    campaign: str,
) -> AsyncIterator[list[str]]:  # fmt: skip
    """The callees (answering as the injection file ``inf`` says) and the auto-answer headsets
    up, agents sim1..sim<agents> of the centre file logged in, ``campaign`` started; yields
    the team's queue member interfaces (as the ACD names them). On the way out every call
    still up is hung up (sipp would not say goodbye once stopped), the phones stop and the
    agents log out."""
    callees = AgentPhone(25420, tmp_path, scenario="callee.xml", calls=n, timeout=0,
                         extra=("-inf", str(inf), "-l", "1000"))  # fmt: skip
    headsets = AgentPhone(25600, tmp_path, scenario="agent_autoanswer.xml", calls=n, timeout=0,
                          extra=("-l", "100"))  # fmt: skip
    team = [f"sim{i}" for i in range(1, agents + 1)]
    centre = load_centre(settings.centre_file)
    members = [interface(agent) for agent in map(centre.agent, team) if agent is not None]
    assert len(members) == agents, f"the centre file has {len(members)} of {team}"
    callees.start()
    headsets.start()
    try:
        for agent in team:
            cli(settings, "agent", "login", agent)
        cli(settings, "campaign", "start", campaign)
        yield members
    finally:
        lines = "|".join(["PJSIP/callees", *members])
        await ami.send({"Action": "Hangup", "Channel": f"/^({lines})-/"})
        callees.stop()
        headsets.stop()
        for agent in team:
            await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                    "agent", "logout", agent)  # fmt: skip


async def test_live_run_agrees_with_the_simulator(
    serve: Serve, settings: Settings, store: Store, ami: AmiClient, tmp_path: Path
) -> None:
    """A predictive campaign on the sandbox PBX: simulated called parties answer, ring, are
    busy or never answer as the simulator's pre-drawn leads of seed 0 say, and 8 simulated
    agents (auto-answer, 3 s wrap-up) take the calls. Its dials, abandon rate and occupancy
    must agree with the simulator's for the same seed-day and parameters (bench/dialer_live.py
    states the tolerance).
    ``LIVE_RUN_MINUTES`` sets the length (``make bench-dialer-live`` runs 10)."""
    minutes = float(os.environ.get("LIVE_RUN_MINUTES", "5"))
    sc = replace(SCENARIOS["LIVE"], hours=minutes / 60)
    n = int(minutes * 60 * 3) + 200  # more than the dialer can place (under 2 calls a second)
    sim_campaign(settings, tmp_path, "simrun", n)
    inf = live.write_injection(tmp_path / "callees.csv", sc, 0, n)
    async with sim_team(settings, ami, tmp_path, inf, n, sc.agents, "simrun"):

        async def first_call() -> datetime | None:  # this campaign's (not another's)
            async with store.sessions() as s:
                return (
                    await s.execute(
                        select(func.min(col(DialAttempt.started_at)))
                        .join(Campaign, col(Campaign.id) == col(DialAttempt.campaign_id))
                        .where(col(Campaign.name) == "simrun")
                    )
                ).scalar_one()

        start = as_utc(await until(first_call, 10, "the campaign's first call"))
        end = start + timedelta(minutes=minutes)
        await asyncio.sleep((end - datetime.now(UTC)).total_seconds())
        cli(settings, "campaign", "pause", "simrun")
        await asyncio.sleep(25)  # calls answered before the end get their outcome
        stats = json.loads(cli(settings, "campaign", "stats", "simrun", "--json"))
        cli(settings, "campaign", "stop", "simrun")
    measured = await live.measure(store, "simrun", start, end, sc.agents)
    sims = live.simulated(sc, "predictive", list(range(10)))
    report = live.compare(measured, sims[0], sims)  # the callees followed seed 0's leads
    print("\n" + live.render(report, f"(LIVE, {minutes:g} min, predictive, seed 0)"))
    print("campaign stats:", json.dumps({k: stats[k] for k in
          ("dials", "connects", "abandoned", "abandon_rate", "occupancy")}))  # fmt: skip
    # What `campaign stats` shows is what was stored (it counts the whole run, drain included).
    assert stats["dials"] >= measured.dials and stats["connects"] + stats["abandoned"] >= (
        measured.live
    )
    assert measured.live >= 20, report  # the run did place and connect calls
    assert report["agree"], live.render(report)


async def test_asterisk_restarted_while_a_campaign_call_rings(
    serve: Serve, pbx: Sandbox, settings: Settings, store: Store, ami_watch: AmiWatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The call dies with Asterisk and its outcome never comes: the attempt is closed as
    lost once its ring time is over, its lead is not left dialing, and nobody is called
    twice meanwhile."""
    contacts = tmp_path / "restart.csv"
    contacts.write_text(f"name,phone,tz\nRings Long,+1 212 555 0119,{zone_at(11, 17)}\n")
    cli(settings, "contacts", "import", str(contacts), "--list", "restart1", "--region", "US")
    cli(
        settings, "campaign", "create", "restart1", "--list", "restart1", "--queue", "outq",
        "--trunk", "customers", "--mode", "progressive", "--window", "09:00-20:00",
        "--days", "mon-sun",
        "--message-text", "Example Test Centre", "--max-attempts", "3", "--ring-seconds", "15",
    )  # fmt: skip
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=2, timeout=120)
    ivan = AgentPhone(25509, tmp_path, calls=1, timeout=120)
    customers.start()
    ivan.start()
    try:
        cli(settings, "agent", "login", "ivan")
        cli(settings, "campaign", "start", "restart1")
        ringing = await ami_watch.wait_for(
            lambda e: e.get("Event") == "Newchannel" and e.get("Uniqueid", "").startswith("dial-")
            and e.get("Channel", "").startswith("PJSIP/customers-"),
            timeout=30, what="the campaign's call ringing",
        )  # fmt: skip
        attempt_id = int(ringing["Uniqueid"][5:])
        pid = pbx._read_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await pbx.up()  # serve puts Ivan back in outq (test_serve_keeps_working.py)

        async def closed() -> DialAttempt | None:
            async with store.sessions() as s:
                a = await s.get(DialAttempt, attempt_id)
            return a if a is not None and a.outcome else None

        attempt = await until(closed, 80, "the lost attempt closed", every=0.5)
        cli(settings, "campaign", "stop", "restart1")
    finally:
        ivan.stop()
        customers.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    assert (attempt.outcome, attempt.reason) == ("failed", "lost: no outcome")
    async with store.sessions() as s:
        lead = await s.get(CampaignLead, attempt.lead_id)
        tries = list(
            (
                await s.execute(
                    select(DialAttempt).where(col(DialAttempt.lead_id) == attempt.lead_id)
                )
            ).scalars()
        )
    assert lead is not None and lead.state != "dialing"
    assert len(tries) == 1  # not called a second time while the first call's fate was unknown


AMD_CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Called parties with a voice: a number ending in 1 is a person ("Hello?" then silence),
     one ending in 2 an answering machine (a long greeting). Both answer after a second of
     ringing and wait for the PBX to hang up. -->
<scenario name="amd-callee">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="INVITE sip:[0-9]*2@" search_in="msg" check_it="false" assign_to="machine"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <nop next="machine" test="machine"/>
  <nop><action><exec play_pcap_audio="PERSON"/></action></nop>
  <nop next="wait"/>
  <label id="machine"/>
  <nop><action><exec play_pcap_audio="MACHINE"/></action></nop>
  <label id="wait"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""


async def test_amd_tells_people_from_machines_on_real_audio(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """An --amd campaign calls a person (espeak-ng "Hello?", then silence) and an answering
    machine (a long spoken greeting), real RTP audio from sipp: app_amd's verdicts are stored
    on the attempts with their causes; the machine is hung up and never reaches the agent,
    the person does."""
    from telephonist.bench import rtp

    scenario = tmp_path / "amd_callee.xml"
    scenario.write_text(
        AMD_CALLEE.replace("PERSON", str(rtp.person(tmp_path / "person.pcap"))).replace(
            "MACHINE", str(rtp.machine(tmp_path / "machine.pcap"))
        )
    )
    progressive_campaign(settings, tmp_path, "amd1",
                         {"A Person": "+1 212 555 0201", "A Machine": "+1 212 555 0202"},
                         "--amd")  # fmt: skip
    ring_talk = tmp_path / "ivan.csv"
    ring_talk.write_text("SEQUENTIAL\n0;500;3000\n0;500;3000\n")
    customers = AgentPhone(25410, tmp_path, scenario=str(scenario), calls=2, timeout=90)
    ivan = AgentPhone(25509, tmp_path, scenario="callee.xml", calls=2, timeout=90,
                      extra=("-inf", str(ring_talk)))  # fmt: skip
    customers.start()
    ivan.start()
    try:
        cli(settings, "agent", "login", "ivan")
        cli(settings, "campaign", "start", "amd1")

        async def decided() -> list[DialAttempt] | None:
            async with store.sessions() as s:
                c = (
                    await s.execute(select(Campaign).where(col(Campaign.name) == "amd1"))
                ).scalar_one()
                rows = list(
                    (
                        await s.execute(
                            select(DialAttempt).where(col(DialAttempt.campaign_id) == c.id)
                        )
                    ).scalars()
                )
            done = [a for a in rows if a.outcome]
            return rows if len(done) == 2 else None  # fmt: skip

        attempts = await until(decided, 90, "both calls decided", every=0.5)
        cli(settings, "campaign", "stop", "amd1")
    finally:
        ivan.stop()
        customers.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    by_number = {a.number: a for a in attempts}
    person, machine = by_number["+12125550201"], by_number["+12125550202"]
    assert (machine.amd_status, machine.outcome) == ("MACHINE", "machine"), machine
    assert machine.amd_cause.split("-")[0] in {"LONGGREETING", "MAXWORDS", "MAXWORDLENGTH"}
    assert person.amd_status == "HUMAN" and person.amd_cause.startswith("HUMAN"), person
    assert (person.outcome, person.agent) == ("answered", "Ivan")
    # Asterisk's own account: AMD set AMDSTATUS on each channel; only the person's reached Ivan.
    statuses = {
        e["Uniqueid"]: e["Value"] for e in ami_watch.events
        if e.get("Event") == "VarSet" and e.get("Variable") == "AMDSTATUS"
        and e.get("Uniqueid", "").startswith("dial-")
    }  # fmt: skip
    assert statuses == {f"dial-{person.id}": "HUMAN", f"dial-{machine.id}": "MACHINE"}
    connected = {e["Uniqueid"] for e in ami_watch.events if e.get("Event") == "AgentConnect"}
    assert f"dial-{person.id}" in connected and f"dial-{machine.id}" not in connected
    stats = json.loads(cli(settings, "campaign", "stats", "amd1", "--json"))
    assert stats["amd_verdicts"] == {"HUMAN": 1, "MACHINE": 1}


def progressive_campaign(
    settings: Settings, tmp_path: Path, name: str, leads: dict[str, str], *extra: str
) -> None:
    """A list ``name`` of these leads (name: phone), in calling hours all day, and a progressive
    campaign ``name`` over it to the queue outq: one attempt each, 15 s of ring, a spoken
    message."""
    contacts = tmp_path / f"{name}.csv"
    inside = zone_at(0, 24)
    rows = "".join(f"{lead},{phone},{inside}\n" for lead, phone in leads.items())
    contacts.write_text("name,phone,tz\n" + rows)
    cli(settings, "contacts", "import", str(contacts), "--list", name, "--region", "US")
    cli(
        settings, "campaign", "create", name, "--list", name, "--queue", "outq",
        "--trunk", "customers", "--mode", "progressive", "--window", "00:00-23:59",
        "--days", "mon-sun",
        "--message-text", "Example Test Centre", "--max-attempts", "1", "--ring-seconds", "15",
        *extra,
    )  # fmt: skip


def _ts(event: dict[str, str]) -> float:
    return float(event["Timestamp"])


async def test_an_answer_no_agent_takes_hears_the_message_within_two_seconds(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """More live answers than the agents can take: Ivan is logged in and ready, but his phone
    rings without being picked up. Each answered call waits its 2 seconds for an agent, then
    hears the campaign's spoken message and is hung up, stored as abandoned with the seconds
    from the answer to the message -- and Asterisk's own events (the answer, the Playback of
    that sound on that channel) say the same."""
    progressive_campaign(settings, tmp_path, "aband1",
                         {"First Caller": "+1 212 555 0121", "Second Caller": "+1 212 555 0122"},
                         "--caller-id", "+1 212 555 0123")  # fmt: skip
    async with store.sessions() as s:
        c = (await s.execute(select(Campaign).where(col(Campaign.name) == "aband1"))).scalar_one()
    customers = AgentPhone(25410, tmp_path, scenario="customer.xml", calls=2, timeout=90)
    ivan = AgentPhone(25509, tmp_path, scenario="agent_never_answers.xml", calls=2, timeout=90)
    customers.start()
    ivan.start()
    try:
        cli(settings, "agent", "login", "ivan")
        cli(settings, "campaign", "start", "aband1")

        async def decided() -> list[DialAttempt] | None:
            async with store.sessions() as s:
                rows = list(
                    (
                        await s.execute(
                            select(DialAttempt).where(col(DialAttempt.campaign_id) == c.id)
                        )
                    ).scalars()
                )
            return rows if len(rows) == 2 and all(a.outcome for a in rows) else None

        attempts = await until(decided, 90, "both calls decided", every=0.5)
        cli(settings, "campaign", "stop", "aband1")
    finally:
        ivan.stop()
        customers.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    for a in attempts:
        uid = f"dial-{a.id}"
        assert (a.outcome, a.reason, a.hold_from) == ("abandoned", "queue TIMEOUT", "answer"), a
        assert a.message_after is not None and 0 < a.message_after <= 2.0, a
        # Asterisk's account: the call was answered, Ivan's phone was offered it (an agent was
        # there), nobody took it, and the campaign's message started within 2 s of the answer.
        (up,) = [e for e in ami_watch.events if e.get("Event") == "Newstate"
                 and e.get("Uniqueid") == uid and e.get("ChannelStateDesc") == "Up"]  # fmt: skip
        (played,) = [e for e in ami_watch.events if e.get("Event") == "Newexten"
                     and e.get("Uniqueid") == uid
                     and e.get("Application") == "Playback"]  # fmt: skip
        assert played["AppData"] == c.message
        assert 0 < _ts(played) - _ts(up) <= 2.0, (up, played)
        assert abs((_ts(played) - _ts(up)) - a.message_after) < 0.25
        assert any(e.get("Event") == "AgentCalled" and e.get("Uniqueid") == uid
                   for e in ami_watch.events)  # fmt: skip
        assert not any(e.get("Event") == "AgentConnect" and e.get("Uniqueid") == uid
                       for e in ami_watch.events)  # fmt: skip
    stats = json.loads(cli(settings, "campaign", "stats", "aband1", "--json"))
    assert (stats["abandoned"], stats["abandoned_heard_message"], stats["message_late"]) == (
        2,
        2,
        0,
    )
    assert 0 < stats["message_after_max_seconds"] <= 2.0


async def test_a_team_break_abandons_only_the_calls_in_flight_and_the_day_stays_under_the_cap(
    serve: Serve,
    settings: Settings,
    store: Store,
    ami: AmiClient,
    ami_watch: AmiWatch,
    tmp_path: Path,
) -> None:
    """A predictive campaign with 8 agents (auto-answer headsets) calling a list where every
    lead answers, after 2-4 s, and talks 2 s or more (6 s on average). A supervisor pauses
    the whole queue from the PBX (AMI QueuePause) while calls ring: the answers that come in
    then find no agent (more live answers than agents can take), wait, hear the campaign's
    message and are hung up. The team comes back 10 s later and the campaign goes on for 4
    minutes. Every abandoned call heard the message within 2 s of its answer -- stored, and
    by Asterisk's own events -- none was abandoned outside the break, and the campaign's
    abandon rate at the end is under its cap."""
    team = 8
    n = 900  # more than the run can place
    sim_campaign(settings, tmp_path, "brk", n)
    rng = np.random.default_rng(14)
    rings = rng.uniform(2_000, 4_000, n).astype(int)
    talks = (2_000 + rng.exponential(4_000, n)).astype(int)
    inf = tmp_path / "answer-all.csv"
    script = "".join(f"{live.LIVE};{r};{t}\n" for r, t in zip(rings, talks, strict=True))
    inf.write_text("SEQUENTIAL\n" + script)

    async def attempts() -> list[DialAttempt]:
        async with store.sessions() as s:
            return list(
                (
                    await s.execute(
                        select(DialAttempt)
                        .join(Campaign, col(Campaign.id) == col(DialAttempt.campaign_id))
                        .where(col(Campaign.name) == "brk")
                    )
                ).scalars()
            )

    async def just_launched() -> list[DialAttempt] | None:
        """The calls ringing, when two or three are and two were placed in the last second
        (the break's abandons are forced: more would leave the short run no room under
        its cap)."""
        now = datetime.now(UTC)
        rows = [a for a in await attempts() if a.outcome == "" and a.answered_at is None]
        fresh = [a for a in rows if (now - as_utc(a.started_at)).total_seconds() < 1.0]
        return rows if len(fresh) >= 2 and len(rows) <= 3 else None

    async def queue_paused(members: list[str], paused: bool) -> None:
        """Every member of simq paused (or back) at once, as a supervisor's panel does."""
        replies = await asyncio.gather(*(
            ami.send({"Action": "QueuePause", "Queue": "simq", "Interface": member,
                      "Paused": "true" if paused else "false", "Reason": "briefing"})
            for member in members
        ))  # fmt: skip
        assert all(r.get("Response") == "Success" for r in replies), replies

    async with sim_team(settings, ami, tmp_path, inf, n, team, "brk") as members:
        await asyncio.sleep(25)  # the pacing learns the list and the team is busy
        ringing = await until(just_launched, 60, "two calls just launched", every=0.1)
        break_from = datetime.now(UTC)
        await queue_paused(members, True)
        await asyncio.sleep(10)
        break_to = datetime.now(UTC)
        await queue_paused(members, False)
        await asyncio.sleep(240)
        cli(settings, "campaign", "pause", "brk")
        await asyncio.sleep(20)  # the calls up now end and get their outcome
        stats = json.loads(cli(settings, "campaign", "stats", "brk", "--json"))
        cli(settings, "campaign", "stop", "brk")
    rows = await attempts()
    abandoned = sorted((a for a in rows if a.outcome == "abandoned"), key=lambda a: a.id or 0)
    answered = [a for a in rows if a.outcome == "answered"]
    print(f"\nteam break: {len(rows)} dials, {len(answered)} connected, {len(abandoned)} "
          f"abandoned, rate {stats['abandon_rate']:.2%} (cap {stats['abandon_cap']:.0%}); "
          f"break {break_from:%H:%M:%S.%f}-{break_to:%H:%M:%S.%f}")  # fmt: skip
    for a in abandoned:
        print(f"  abandoned: attempt {a.id} started {a.started_at:%H:%M:%S.%f} answered "
              f"{a.answered_at:%H:%M:%S.%f}, message after {a.message_after} s")  # fmt: skip
    # The calls ringing when the team went were all abandoned, and the campaign went on. The
    # snapshot is up to a second old (an answer is stored from the queue_log): a call Asterisk
    # had answered before the pause took an agent, rightly (seen: answered 0.17 s before it).
    final = {a.id: a for a in rows}
    in_flight = [
        final[a.id] for a in ringing
        if (at := final[a.id].answered_at) is None or as_utc(at) > break_from
    ]  # fmt: skip
    assert len(in_flight) >= 2, [(a.id, a.answered_at) for a in ringing]
    assert {a.id for a in in_flight} <= {a.id for a in abandoned}, [a.id for a in in_flight]
    assert len(answered) >= 80, stats
    for a in abandoned:
        assert a.answered_at is not None
        # Abandoned because of the break: answered while the team was away.
        assert break_from <= as_utc(a.answered_at) <= break_to + timedelta(seconds=1), a
        assert a.message_after is not None and 0 < a.message_after <= 2.0, a
        uid = f"dial-{a.id}"
        (up,) = [e for e in ami_watch.events if e.get("Event") == "Newstate"
                 and e.get("Uniqueid") == uid and e.get("ChannelStateDesc") == "Up"]  # fmt: skip
        (played,) = [e for e in ami_watch.events if e.get("Event") == "Newexten"
                     and e.get("Uniqueid") == uid
                     and e.get("Application") == "Playback"]  # fmt: skip
        assert 0 < _ts(played) - _ts(up) <= 2.0, (up, played)
        assert abs((_ts(played) - _ts(up)) - a.message_after) < 0.25
    # No connected call heard the message; `campaign stats` shows what was stored.
    played_on = {
        e.get("Uniqueid")
        for e in ami_watch.events
        if e.get("Event") == "Newexten" and e.get("Application") == "Playback"
    }
    assert not played_on & {f"dial-{a.id}" for a in answered}
    assert (stats["abandoned"], stats["connects"]) == (len(abandoned), len(answered))
    assert (stats["abandoned_heard_message"], stats["message_late"]) == (len(abandoned), 0)
    assert stats["abandon_rate"] == round(len(abandoned) / (len(abandoned) + len(answered)), 4)
    assert stats["abandon_rate"] < stats["abandon_cap"], stats


async def test_calling_back_a_campaigns_number_reaches_its_queue_or_its_message(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """People call back the number the dialer showed them: with Ivan logged in they reach the
    campaign's queue and Ivan; with nobody logged in they hear the campaign's message. A
    number that is no line and no campaign's is still refused."""
    contacts = tmp_path / "ret.csv"
    contacts.write_text(f"name,phone,tz\nSomeone,+1 212 555 0131,{zone_at(0, 24)}\n")
    cli(settings, "contacts", "import", str(contacts), "--list", "ret1", "--region", "US")
    cli(
        settings, "campaign", "create", "ret1", "--list", "ret1", "--queue", "outq",
        "--trunk", "customers", "--mode", "preview", "--caller-id", "(212) 555-0177",
        "--message-text", "Example Test Centre",
    )  # fmt: skip
    port = settings.pbx.sip_port
    # Nobody logged in to outq: the message, then the PBX hangs up.
    nobody = await asyncio.to_thread(sipp_call, port, "12125550177", "5550131", timeout=30)
    assert nobody.returncode == 0, nobody.stdout[-1500:]
    ivan = AgentPhone(25509, tmp_path, calls=1, timeout=60)
    ivan.start()
    try:
        cli(settings, "agent", "login", "ivan")
        # The same number as a trunk may send it (national, no country code): Ivan answers.
        talks = dtmf_scenario(tmp_path / "talks.xml", [], 4000)  # hangs up after 4 s
        taken = await asyncio.to_thread(sipp_call, port, "2125550177", "5550132",
                                        scenario=str(talks), timeout=30)  # fmt: skip
        assert taken.returncode == 0, taken.stdout[-1500:]
    finally:
        ivan.stop()
        await asyncio.to_thread(telephonist, settings.data_dir.parent / "telephonist.toml",
                                "agent", "logout", "ivan")  # fmt: skip
    refused = await asyncio.to_thread(sipp_call, port, "12125550199", "5550133", timeout=20)
    assert refused.returncode != 0  # no line, no campaign: not answered
    async with store.sessions() as s:
        rows = {
            r.caller_number: r
            for r in (
                await s.execute(select(Call).where(col(Call.line) == "campaign-return"))
            ).scalars()
        }
        events = [
            json.loads(o.payload)["data"]
            for o in (
                await s.execute(
                    select(OutboxEvent).where(col(OutboxEvent.topic).like("%/dialer/returned"))
                )
            ).scalars()
        ]
    assert rows["5550131"].outcome == "campaign-message:ret1"
    assert rows["5550132"].outcome == "queued:outq"
    assert "5550133" not in rows
    assert sorted((e["caller"], e["to"]) for e in events if e["campaign"] == "ret1") == [
        ("5550131", "message"),
        ("5550132", "queue"),
    ]
    # Asterisk's account: the second caller joined outq and Ivan took the call.
    joined = [e for e in ami_watch.events if e.get("Event") == "QueueCallerJoin"
              and e.get("Queue") == "outq" and e.get("CallerIDNum") == "5550132"]  # fmt: skip
    assert len(joined) == 1
    assert any(e.get("Event") == "AgentConnect" and e.get("Uniqueid") == joined[0]["Uniqueid"]
               and e.get("MemberName") == "Ivan" for e in ami_watch.events)  # fmt: skip
    assert not any(e.get("Event") == "QueueCallerJoin" and e.get("CallerIDNum") == "5550131"
                   for e in ami_watch.events)  # fmt: skip
    # The first caller heard the whole message: the PBX kept their line up for its length.
    async with store.sessions() as s:
        made = (await s.execute(select(Campaign).where(col(Campaign.name) == "ret1"))).scalar_one()
    sounds = custom_sounds(settings)
    assert sounds is not None
    with wave.open(str(sounds.parent / f"{made.message}.wav")) as w:
        message_seconds = w.getnframes() / w.getframerate()
    assert message_seconds > 2
    (first,) = {e["Uniqueid"] for e in ami_watch.events if e.get("Event") == "Newchannel"
                and e.get("CallerIDNum") == "5550131"}  # fmt: skip
    opened = [_ts(e) for e in ami_watch.events
              if e.get("Event") == "Newchannel" and e.get("Uniqueid") == first]  # fmt: skip
    closed = [_ts(e) for e in ami_watch.events
              if e.get("Event") == "Hangup" and e.get("Uniqueid") == first]  # fmt: skip
    assert closed[0] - opened[0] >= message_seconds - 0.3, (opened, closed, message_seconds)
