"""Dispositions on both storage backends: what each code does to the lead, and what is refused
(nothing stored changes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import Campaign, CampaignLead, DialAttempt, DncEntry, as_utc
from telephonist.core.storage import Store
from telephonist.dialer.dispositions import DispositionError, latest_attempt_of, set_disposition

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


async def _call(store: Store, number: str, agent: str, connected: datetime | None) -> int:
    async with store.unit_of_work() as uow:
        c = (
            await uow.session.execute(select(Campaign).where(col(Campaign.name) == "c1"))
        ).scalar_one_or_none()
        if c is None:
            c = Campaign(name="c1", list_name="l", queue="q", trunk="t",
                         retry=json.dumps({"callback": 1800}))  # fmt: skip
            uow.session.add(c)
            await uow.session.flush()
        lead = CampaignLead(campaign_id=c.id or 0, contact_id=1, state="done", attempts=1)
        uow.session.add(lead)
        await uow.session.flush()
        a = DialAttempt(campaign_id=c.id or 0, lead_id=lead.id or 0, number=number, attempt=1,
                        agent=agent, connected_at=connected, outcome="answered")  # fmt: skip
        uow.session.add(a)
        await uow.session.flush()
        assert a.id is not None
        return a.id


async def _lead(store: Store, attempt_id: int) -> CampaignLead:
    async with store.sessions() as s:
        a = await s.get(DialAttempt, attempt_id)
        assert a is not None
        lead = await s.get(CampaignLead, a.lead_id)
        assert lead is not None
        return lead


async def test_each_code_acts_on_the_lead(store: Store) -> None:
    sale = await _call(store, "+12125550101", "Ivan", NOW)
    later = await _call(store, "+12125550102", "Ivan", NOW)
    stop = await _call(store, "+12125550103", "Ivan", NOW)
    async with store.unit_of_work() as uow:
        await set_disposition(uow, sale, "sale", by="ivan", now=NOW)
        await set_disposition(uow, later, "callback", by="ivan", now=NOW)
        await set_disposition(uow, stop, "dnc", by="crm", now=NOW)
    lead = await _lead(store, sale)
    assert (lead.disposition, lead.state, lead.next_at) == ("sale", "done", None)
    lead = await _lead(store, later)
    assert (lead.disposition, lead.state) == ("callback", "retry")
    assert lead.next_at is not None and as_utc(lead.next_at) == NOW + timedelta(seconds=1800)
    lead = await _lead(store, stop)
    assert (lead.disposition, lead.state) == ("dnc", "dnc")
    async with store.sessions() as s:
        (entry,) = (await s.execute(select(DncEntry))).scalars()
    assert (entry.number, entry.source) == ("+12125550103", "disposition by crm")
    async with store.unit_of_work() as uow:  # said twice: still one DNC entry
        await set_disposition(uow, stop, "dnc", by="crm", now=NOW)
    async with store.sessions() as s:
        assert len(list((await s.execute(select(DncEntry))).scalars())) == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("Dial(PJSIP/x)", "is not a disposition code"),
        ("sale\r\nAction: Originate", "is not a disposition code"),
        ("", "is not a disposition code"),
    ],
)
async def test_hostile_codes_are_refused_and_nothing_changes(
    store: Store, code: str, message: str
) -> None:
    attempt = await _call(store, "+12125550104", "Ivan", NOW)
    async with store.unit_of_work() as uow:
        await set_disposition(uow, attempt, "sale", by="ivan", now=NOW)
    with pytest.raises(DispositionError, match=message):
        async with store.unit_of_work() as uow:
            await set_disposition(uow, attempt, code, by="ami", now=NOW)
    assert (await _lead(store, attempt)).disposition == "sale"


async def test_unknown_attempt_is_refused(store: Store) -> None:
    with pytest.raises(DispositionError, match="no dial attempt 999"):
        async with store.unit_of_work() as uow:
            await set_disposition(uow, 999, "sale", by="ami", now=NOW)


async def test_the_agents_latest_call_within_the_hour(store: Store) -> None:
    await _call(store, "+12125550105", "Ivan", NOW - timedelta(minutes=30))
    newest = await _call(store, "+12125550106", "Ivan", NOW - timedelta(minutes=2))
    await _call(store, "+12125550107", "Gina", NOW - timedelta(minutes=1))  # someone else's
    await _call(store, "+12125550108", "Ivan", None)  # never connected
    async with store.unit_of_work() as uow:
        found = await latest_attempt_of(uow, ("ivan", "Ivan"), timedelta(hours=1), now=NOW)
        assert found is not None and found.id == newest
        assert await latest_attempt_of(uow, ("ivan",), timedelta(hours=1), now=NOW) is None
        old = await latest_attempt_of(
            uow, ("Ivan",), timedelta(minutes=1), now=NOW + timedelta(minutes=5)
        )
        assert old is None
