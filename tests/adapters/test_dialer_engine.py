"""The dialer's view of a campaign queue (no Asterisk: the watcher's state is set by hand, the
store is real): agents in wrap-up are not idle, and finished calls teach the policy their talk
and wrap-up times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telephonist.acd.state import CentreState
from telephonist.core.models import Campaign, CampaignLead, DialAttempt, QueueLogEntry
from telephonist.core.storage import Store
from telephonist.dialer import pacing
from telephonist.dialer.engine import DialerService


class _Ami:
    """Records the actions sent; CoreShowChannels lists ``channels`` (Uniqueids)."""

    def __init__(self) -> None:
        self.channels: list[str] = []

    def on_event(self, name: str, handler: Any) -> None:
        pass

    def on_connect(self, handler: Any) -> None:
        pass

    async def send(self, action: dict[str, str], **_: Any) -> Any:
        assert action["Action"] == "CoreShowChannels"
        return [{"Event": "CoreShowChannel", "Uniqueid": u} for u in self.channels]


class _Watcher:
    def __init__(self) -> None:
        self.state = CentreState(["outq"])


async def test_wrap_up_agents_are_seen_in_wrap_up_and_calls_teach_the_policy(
    store: Store,
) -> None:
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    t = now.timestamp()
    watcher = _Watcher()
    for iface, extra in (
        ("PJSIP/1", {"Status": "1"}),  # idle, no call yet
        ("PJSIP/2", {"Status": "2", "InCall": "1"}),  # talking
        ("PJSIP/3", {"Status": "1", "LastCall": str(int(t) - 2)}),  # 2 s into a 5 s wrap-up
        ("PJSIP/4", {"Status": "1", "LastCall": str(int(t) - 9)}),  # wrap-up over
        ("PJSIP/5", {"Status": "1", "Paused": "1"}),  # paused
    ):
        watcher.state.apply(
            {"Event": "QueueMember", "Queue": "outq", "Interface": iface, **extra}, t - 60
        )
    engine = DialerService(store, _Ami(), watcher, None, wrapups={"outq": 5})  # type: ignore[arg-type]
    async with store.unit_of_work() as uow:
        c = Campaign(name="c1", list_name="l", queue="outq", trunk="t", state="running")
        uow.session.add(c)
        await uow.session.flush()
        lead = CampaignLead(campaign_id=c.id or 0, contact_id=1, state="dialing", attempts=1)
        uow.session.add(lead)
        await uow.session.flush()
        a = DialAttempt(campaign_id=c.id or 0, lead_id=lead.id or 0, number="+1", attempt=1,
                        started_at=now, connected_at=now, outcome="answered")  # fmt: skip
        uow.session.add(a)
        await uow.session.flush()
        entry = QueueLogEntry(time=now, callid=f"dial-{a.id}", queue="outq", agent="Ivan",
                              event="COMPLETECALLER", data1="1", data2="42")  # fmt: skip
        await engine.on_queue_log(uow, [entry])
    obs = await engine.observe(c, now)
    assert obs.agent_state.tolist() == [
        pacing.IDLE, pacing.TALK, pacing.WRAP, pacing.IDLE, pacing.AWAY,
    ]  # fmt: skip
    assert obs.agent_elapsed_ms[2] == 2000  # since the call ended, not since the last event
    assert obs.finished.talks == [42_500] and obs.finished.wraps == [5_000]
    assert obs.lines_free == 4 * 4  # four agents not paused


async def test_reconcile_closes_lost_attempts_and_keeps_live_ones(store: Store) -> None:
    """Asterisk restarted mid-campaign, or the outcome came while the link was down: no lead
    stays ``dialing`` past its ring time; a call still up is left alone."""
    from datetime import timedelta

    ami = _Ami()
    engine = DialerService(store, ami, _Watcher(), None)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    async with store.unit_of_work() as uow:
        c = Campaign(name="c2", list_name="l", queue="outq", trunk="t", state="running",
                     ring_seconds=20, max_attempts=3)  # fmt: skip
        uow.session.add(c)
        await uow.session.flush()
        ids = []
        for age in (60, 60, 5):  # lost, still talking, just placed
            lead = CampaignLead(campaign_id=c.id or 0, contact_id=1, state="dialing", attempts=1)
            uow.session.add(lead)
            await uow.session.flush()
            a = DialAttempt(campaign_id=c.id or 0, lead_id=lead.id or 0, number="+1",
                            attempt=1, started_at=now - timedelta(seconds=age))  # fmt: skip
            uow.session.add(a)
            await uow.session.flush()
            ids.append((a.id, lead.id))
    ami.channels = [f"dial-{ids[1][0]}"]
    assert await engine.reconcile() == 1
    async with store.sessions() as s:
        lost = await s.get(DialAttempt, ids[0][0])
        lost_lead = await s.get(CampaignLead, ids[0][1])
        talking = await s.get(DialAttempt, ids[1][0])
        young = await s.get(DialAttempt, ids[2][0])
    assert lost is not None and (lost.outcome, lost.reason) == ("failed", "lost: no outcome")
    assert lost_lead is not None and lost_lead.state != "dialing"
    assert talking is not None and talking.outcome == ""
    assert young is not None and young.outcome == ""
    assert await engine.reconcile() == 0  # nothing done twice


async def test_amd_verdicts_are_stored_and_a_wrong_machine_verdict_is_measured(
    store: Store,
) -> None:
    """Lead 1: the first try was classed MACHINE (a long greeting) and hung up; the second
    reached an agent -- a person answers there, so that verdict counts as measured wrong.
    Lead 2: HUMAN, then the agent took it. The queue_log lines are the dialplan's."""
    from telephonist.dialer import campaigns

    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    engine = DialerService(store, _Ami(), _Watcher(), None, wrapups={})  # type: ignore[arg-type]
    async with store.unit_of_work() as uow:
        c = Campaign(name="amd", list_name="l", queue="outq", trunk="t", state="running",
                     amd=True, amd_false_positive=0.01)  # fmt: skip
        uow.session.add(c)
        await uow.session.flush()
        tries = []
        for lead_no, attempt in ((1, 1), (1, 2), (2, 1)):
            a = DialAttempt(campaign_id=c.id or 0, lead_id=lead_no, number="+1", attempt=attempt,
                            started_at=now)  # fmt: skip
            uow.session.add(a)
            await uow.session.flush()
            tries.append(f"dial-{a.id}")

        def line(callid: str, event: str, *data: str) -> QueueLogEntry:
            d = [*data, "", "", ""]
            return QueueLogEntry(time=now, callid=callid, queue="outq", agent="NONE",
                                 event=event, data1=d[0], data2=d[1], data3=d[2])  # fmt: skip

        first, second, other = tries
        await engine.on_queue_log(uow, [
            line(first, "DIALERANSWER", first[5:]),
            line(first, "DIALERAMD", first[5:], "MACHINE", "LONGGREETING-1600-1500"),
            line(first, "DIALERMACHINE", first[5:], "LONGGREETING-1600-1500"),
            line(second, "DIALERANSWER", second[5:]),
            line(second, "DIALERAMD", second[5:], "NOTSURE", "TOOLONG-5000"),
            line(second, "CONNECT", "1"),
            line(other, "DIALERANSWER", other[5:]),
            line(other, "DIALERAMD", other[5:], "HUMAN", "HUMAN-300-800"),
            line(other, "CONNECT", "1"),
        ])  # fmt: skip
    async with store.sessions() as s:
        from sqlalchemy import select

        rows = {a.id: a for a in (await s.execute(select(DialAttempt))).scalars()}
    got = {f"dial-{k}": (a.amd_status, a.amd_cause, a.outcome) for k, a in rows.items()}
    assert got == {
        first: ("MACHINE", "LONGGREETING-1600-1500", "machine"),
        second: ("NOTSURE", "TOOLONG-5000", "answered"),
        other: ("HUMAN", "HUMAN-300-800", "answered"),
    }
    stats = await campaigns.stats(store, "amd", now)
    assert stats["amd_verdicts"] == {"MACHINE": 1, "NOTSURE": 1, "HUMAN": 1}
    assert (stats["amd_machine_then_person"], stats["amd_false_positive_measured"]) == (1, 1.0)


async def test_an_abandoned_call_keeps_the_seconds_to_its_message(store: Store) -> None:
    """The dialplan writes the 2-second clock and the message's start to the millisecond: the
    attempt keeps the answer to the millisecond and the seconds to the message; campaign stats
    shows the slowest and counts those later than the rule (none here, one too late below).
    A line written by an older dialplan (no clock) still ends the attempt as abandoned."""
    from sqlalchemy import select

    from telephonist.dialer import campaigns

    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    t0 = now.timestamp()
    engine = DialerService(store, _Ami(), _Watcher(), None, wrapups={})  # type: ignore[arg-type]
    async with store.unit_of_work() as uow:
        c = Campaign(name="ab", list_name="l", queue="outq", trunk="t", state="running")
        uow.session.add(c)
        await uow.session.flush()
        ids = []
        for lead_no in (1, 2, 3):
            a = DialAttempt(campaign_id=c.id or 0, lead_id=lead_no, number="+1", attempt=1,
                            started_at=now)  # fmt: skip
            uow.session.add(a)
            await uow.session.flush()
            ids.append(f"dial-{a.id}")

        def line(callid: str, event: str, *data: str) -> QueueLogEntry:
            d = [*data, "", "", "", "", ""]
            return QueueLogEntry(time=now, callid=callid, queue="outq", agent="NONE", event=event,
                                 data1=d[0], data2=d[1], data3=d[2], data4=d[3],
                                 data5=d[4])  # fmt: skip

        quick, late, old = ids
        await engine.on_queue_log(uow, [
            line(quick, "DIALERANSWER", quick[5:], f"{t0 + 0.125:.3f}"),
            line(quick, "DIALERABANDON", quick[5:], "TIMEOUT", "answer", f"{t0 + 0.125:.3f}",
                 f"{t0 + 2.083:.3f}"),
            line(late, "DIALERANSWER", late[5:], f"{t0:.3f}"),
            line(late, "DIALERABANDON", late[5:], "TIMEOUT", "amd", f"{t0 + 3.000:.3f}",
                 f"{t0 + 5.500:.3f}"),
            line(old, "DIALERANSWER", old[5:]),
            line(old, "DIALERABANDON", old[5:], "TIMEOUT"),
        ])  # fmt: skip
    async with store.sessions() as s:
        rows = {f"dial-{a.id}": a for a in (await s.execute(select(DialAttempt))).scalars()}
    answered = rows[quick].answered_at
    assert answered is not None
    assert abs(answered.timestamp() - (t0 + 0.125)) < 0.002
    got = {k: (a.outcome, a.hold_from, a.message_after) for k, a in rows.items()}
    assert got == {
        quick: ("abandoned", "answer", 1.958),
        late: ("abandoned", "amd", 2.5),
        old: ("abandoned", "answer", None),
    }
    stats = await campaigns.stats(store, "ab", now)
    heard = (stats["abandoned"], stats["abandoned_heard_message"], stats["message_late"])
    assert heard == (3, 2, 1)
    assert stats["message_after_max_seconds"] == 2.5 and stats["message_within_seconds"] == 2
