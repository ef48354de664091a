"""Campaigns as a service (dialer/campaigns.py), against the real databases: what the
``campaign`` commands call. Bad input names the option and stores nothing; each change is
stored with its event; a stopped campaign stays stopped; the next lead and the numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.centre import Centre
from telephonist.core.models import AgentLogin, Campaign, DialAttempt, OutboxEvent, QueueCall
from telephonist.core.storage import Store
from telephonist.dialer import campaigns
from telephonist.dialer.contacts import import_file
from telephonist.dialer.rules import RuleError

CENTRE = Centre.model_validate(
    {"queues": [{"name": "outq"}], "trunks": [{"name": "t", "host": "127.0.0.1"}]}
)
SPEC = campaigns.CampaignSpec(name="spring", list_name="leads", queue="outq", trunk="t",
                              caller_id="+1 212 555 0100", message="custom/abandon-notice",
                              mode="progressive", window="00:00-23:59", days="mon-sun")  # fmt: skip


async def events(store: Store) -> list[dict[str, object]]:
    async with store.sessions() as s:
        rows = (await s.execute(select(OutboxEvent).order_by(col(OutboxEvent.id)))).scalars()
        return [json.loads(r.payload)["data"] for r in rows if r.topic.endswith("/dialer/campaign")]


async def test_a_campaign_is_checked_created_started_and_stopped_for_good(
    store: Store, tmp_path: Path
) -> None:
    for bad, option in ((replace(SPEC, mode="robot"), "--mode"),
                        (replace(SPEC, queue="nope"), "--queue"),
                        (replace(SPEC, trunk="nope"), "--trunk"),
                        (replace(SPEC, window="9-5"), "--window"),
                        (replace(SPEC, caller_id="1;Dial"), "--caller-id"),
                        (replace(SPEC, caller_id=""), "--caller-id: a campaign must present"),
                        (replace(SPEC, caller_id="555-0100"), "'555-0100' is not a valid"),
                        (replace(SPEC, caller_id="+1 900 555 0100"), "premium-rate"),
                        (replace(SPEC, message=""), "--message: a US campaign must tell"),
                        (replace(SPEC, message_text="x" * 201), "--message-text"),
                        (replace(SPEC, message="", message_text="A $(rm)"), "--message-text"),
                        (replace(SPEC, ring_seconds=5), "--ring-seconds"),
                        (replace(SPEC, name="a b"), "NAME"),
                        (SPEC, "--list")):  # no contact list yet  # fmt: skip
        with pytest.raises(RuleError, match=option):
            await campaigns.create(store, CENTRE, bad)
    async with store.sessions() as s:
        assert (await s.execute(select(Campaign))).first() is None  # nothing stored
    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\nAnn,+1 212 555 0101\nBob,+1 212 555 0102\n")
    await import_file(store, leads, "leads", region="US")
    c = await campaigns.create(store, CENTRE, SPEC)
    assert (c.state, c.mode, c.abandon_cap) == ("paused", "progressive", 0.03)
    assert c.caller_id == "12125550100"  # E.164 digits, whatever way it was written
    with pytest.raises(RuleError, match="exists already"):
        await campaigns.create(store, CENTRE, SPEC)
    c, added = await campaigns.set_state(store, "spring", "running")
    assert (c.state, added) == ("running", 2)
    c, added = await campaigns.set_state(store, "spring", "running")  # again: nothing new
    assert added == 0
    due = await campaigns.next_lead(store, c)
    assert due is not None and due.name in ("Ann", "Bob") and due.tries == 1
    await campaigns.set_state(store, "spring", "stopped")
    with pytest.raises(RuleError, match="stopped for good"):
        await campaigns.set_state(store, "spring", "running")
    with pytest.raises(RuleError, match="no campaign"):
        await campaigns.set_state(store, "autumn", "paused")
    assert [(e["state"], e.get("leads_added")) for e in await events(store)] == [
        ("paused", None),
        ("running", 2),
        ("running", 0),
        ("stopped", 0),
    ]


async def test_the_numbers_of_a_campaign(store: Store, tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\nAnn,+1 212 555 0101\n")
    await import_file(store, leads, "leads", region="US")
    c = await campaigns.create(store, CENTRE, SPEC)
    now = datetime.now(UTC)
    async with store.unit_of_work() as uow:
        for i, outcome in enumerate(["answered"] * 30 + ["abandoned", "busy", "no_answer", ""]):
            uow.session.add(DialAttempt(campaign_id=c.id or 0, lead_id=1, number="+12125550101",
                                        attempt=i + 1, outcome=outcome,
                                        started_at=now - timedelta(minutes=i)))  # fmt: skip
    async with store.unit_of_work() as uow:
        first = (
            (await uow.session.execute(select(DialAttempt).order_by(col(DialAttempt.id))))
            .scalars()
            .first()
        )
        assert first is not None
        # Its answered call talked 90 s in the queue; an agent logged in an hour ago.
        uow.session.add(
            QueueCall(
                callid=f"dial-{first.id}",
                queue="outq",
                kind="outbound",
                entered_at=now,
                local_day="x",
                outcome="answered",
                talk=90,
            )
        )
        uow.session.add(
            QueueCall(
                callid="c1",
                queue="outq",
                kind="inbound",
                entered_at=now,
                local_day="x",
                outcome="answered",
                talk=500,
            )
        )  # not the campaign's
        uow.session.add(
            AgentLogin(agent="al", queues="inq,outq", logged_in_at=now - timedelta(hours=1))
        )
        uow.session.add(AgentLogin(agent="bo", queues="inq", logged_in_at=now - timedelta(hours=1)))
    got = await campaigns.stats(store, "spring", now)
    # Agent time counts from the campaign's first call (33 minutes before now), not the login.
    assert got["talk_seconds"] == 90 and round(got["agent_seconds"]) == 33 * 60
    assert got["occupancy"] == round(90 / got["agent_seconds"], 4)
    assert (got["dials"], got["connects"], got["abandoned"]) == (34, 30, 1)
    assert got["abandon_rate"] == round(1 / 31, 4)  # over live answers: 30 + the abandoned one
    assert got["outcomes"]["in progress"] == 1 and got["state"] == "paused"
    (listed,) = await campaigns.listing(store)
    assert (listed["campaign"], listed["state"], listed["mode"], listed["list"]) == (
        "spring", "paused", "progressive", "leads")  # fmt: skip


async def test_a_campaign_per_period(store: Store, tmp_path: Path) -> None:
    """Per hour in the centre's zone: 09:00 (Paris) has 3 dials (2 answered, one talked 90 s,
    the other 30 s; 1 abandoned), 10:00 has a busy one; the lead's disposition counts once."""
    from datetime import date

    from telephonist.core.models import CampaignLead
    from telephonist.reports import campaigns as report
    from telephonist.reports.kpi import Period, ReportError

    centre = CENTRE.model_copy(update={"timezone": "Europe/Paris"})
    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\nAnn,+1 212 555 0101\n")
    await import_file(store, leads, "leads", region="US")
    c = await campaigns.create(store, CENTRE, SPEC)
    nine = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    async with store.unit_of_work() as uow:
        lead = CampaignLead(campaign_id=c.id or 0, contact_id=1, state="done", disposition="sale")
        uow.session.add(lead)
        await uow.session.flush()
        for i, (minutes, outcome, talk) in enumerate(
            ((5, "answered", 90), (20, "answered", 30), (40, "abandoned", None), (70, "busy", None))
        ):
            uow.session.add(DialAttempt(id=100 + i, campaign_id=c.id or 0, lead_id=lead.id or 0,
                                        number="+12125550101", attempt=i + 1, outcome=outcome,
                                        started_at=nine + timedelta(minutes=minutes)))  # fmt: skip
            if talk is not None:
                uow.session.add(QueueCall(callid=f"dial-{100 + i}", queue="outq", kind="outbound",
                                          entered_at=nine, local_day="2026-12-03",
                                          outcome="answered", talk=talk))  # fmt: skip
    day = Period(date(2026, 12, 3), date(2026, 12, 3), "60")
    rows = await report.campaigns(store, centre, day)
    assert [(r["campaign"], r["period"], r["dials"], r["answered"], r["abandoned"], r["busy"],
             r["abandon_rate"], r["talk"], r["avg_talk"]) for r in rows] == [
        ("spring", "2026-12-03 09:00", 3, 2, 1, 0, round(1 / 3, 4), 120, 60.0),
        ("spring", "2026-12-03 10:00", 1, 0, 0, 1, None, 0, None),
    ]  # fmt: skip
    assert rows[0]["dispositions"] == {"sale": 1} and rows[1]["dispositions"] == {"sale": 1}
    (whole,) = await report.campaigns(store, centre, Period(day.first, day.last, "total"),
                                      only=("spring",))  # fmt: skip
    assert (whole["dials"], whole["talk"]) == (4, 120)
    assert await report.campaigns(store, centre, Period(date(2026, 12, 4), date(2026, 12, 4))) == []
    with pytest.raises(ReportError, match="--campaign: no campaign 'autumn'"):
        await report.campaigns(store, centre, day, only=("autumn",))


async def test_preview_holds_the_lead_for_the_agent(store: Store, tmp_path: Path) -> None:
    """Two agents asking at the same moment get different leads; asking again gives the same
    one; a skipped lead is never due again; a hold that runs out frees the lead; only a
    logged-in agent who is not paused may take one."""
    import asyncio

    from telephonist.core.models import AgentPause, CampaignLead
    from telephonist.dialer.engine import due_leads

    centre = Centre.model_validate({
        "queues": [{"name": "outq"}], "trunks": [{"name": "t", "host": "127.0.0.1"}],
        "agents": [{"id": a, "extension": f"20{n}", "skills": {"outq": 0}}
                   for n, a in enumerate(("al", "bo", "cy", "di"), start=10)],
    })  # fmt: skip
    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\nAnn,+1 212 555 0101\nBob,+1 212 555 0102\nCat,+1 212 555 0103\n")
    await import_file(store, leads, "leads", region="US")
    await campaigns.create(store, centre, replace(SPEC, mode="preview"))
    with pytest.raises(RuleError, match="paused: start it first"):
        await campaigns.claim_next(store, centre, "spring", "al")
    c, _ = await campaigns.set_state(store, "spring", "running")
    with pytest.raises(RuleError, match="al is not logged in to outq"):
        await campaigns.claim_next(store, centre, "spring", "al")
    now = datetime.now(UTC)
    async with store.unit_of_work() as uow:
        for a in ("al", "bo", "cy"):
            uow.session.add(AgentLogin(agent=a, queues="inq,outq", logged_in_at=now))
        uow.session.add(AgentPause(agent="cy", reason="break", started_at=now))
    with pytest.raises(RuleError, match="cy is paused"):
        await campaigns.claim_next(store, centre, "spring", "cy")
    with pytest.raises(RuleError, match="no agent 'zed'"):
        await campaigns.claim_next(store, centre, "spring", "zed")
    first, second = await asyncio.gather(
        campaigns.claim_next(store, centre, "spring", "al", now=now),
        campaigns.claim_next(store, centre, "spring", "bo", now=now),
    )
    assert first is not None and second is not None and first.lead_id != second.lead_id
    again = await campaigns.claim_next(store, centre, "spring", "al", now=now)
    assert again is not None and again.lead_id == first.lead_id  # the one al holds
    held = {first.lead_id, second.lead_id}
    assert {lead for lead, _ in await due_leads(store, c, now, 5)}.isdisjoint(held)
    # al skips his: never due again, in any hour.
    with pytest.raises(RuleError, match="--reason"):
        await campaigns.skip_held(store, "spring", "al", "  ")
    assert await campaigns.skip_held(store, "spring", "al", "wrong person") == first.lead_id
    with pytest.raises(RuleError, match="al holds no lead"):
        await campaigns.skip_held(store, "spring", "al", "again")
    later = now + timedelta(seconds=campaigns.HOLD_SECONDS + 1)
    due_later = {lead for lead, _ in await due_leads(store, c, later, 5)}
    assert first.lead_id not in due_later
    assert second.lead_id in due_later  # bo's hold ran out: free again
    third = await campaigns.claim_next(store, centre, "spring", "al", now=now)
    assert third is not None and third.lead_id not in held
    assert await campaigns.claim_next(store, centre, "spring", "al", now=now) == third
    async with store.sessions() as s:
        rows = {r.id: r for r in (await s.execute(select(CampaignLead))).scalars()}
    assert (rows[first.lead_id].state, rows[first.lead_id].skip_reason) == (
        "skipped",
        "wrong person",
    )
    assert (rows[second.lead_id].state, rows[second.lead_id].held_by) == ("held", "bo")
    with pytest.raises(RuleError, match="--hold"):
        await campaigns.claim_next(store, centre, "spring", "al", hold=5)
