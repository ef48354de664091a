"""Callback rules on both databases, with Asterisk's side played by a recording fake AMI and
queue_log lines written to a file (the real-call proofs are in tests/scenarios/test_callbacks.py).

- missed calls: one task per number within the window; a served customer's task cancelled;
- placement: persist, then Originate; the customer's number only as validated digits;
- outcomes from the queue_log: retry after the delay, give up at the maximum;
- reconcile after a restart; named agents and promotion; the kept place in the queue.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from telephonist.acd.queue_log import QueueLogIngester
from telephonist.acd.redirects import Decision
from telephonist.acd.state import Member, WaitingCaller
from telephonist.acd.watcher import QueueWatcher
from telephonist.callbacks import tasks
from telephonist.callbacks.policy import NumberPolicy
from telephonist.callbacks.service import CallbackService
from telephonist.callbacks.voicemail import play_message
from telephonist.core.ami import AmiClient, AmiTimeout, AmiUnavailable
from telephonist.core.callcontrol import CallControl, Originate
from telephonist.core.centre import CallbackNumbers, Centre, Trunk
from telephonist.core.models import CallbackAttempt, CallbackRequest, VoicemailMessage
from telephonist.core.storage import Store

CENTRE = Centre.model_validate(
    {
        "queues": [{"name": "q"}],
        "agents": [{"id": "al", "name": "Al", "extension": "2001", "skills": {"q": 0}}],
        "trunks": [{"name": "t", "host": "127.0.0.1"}],
        "callbacks": {"trunk": "t", "max_attempts": 2, "retry_delay": 60, "promote_after": 300},
    }
)
POLICY = NumberPolicy(CallbackNumbers(prefixes=["555"]), "US")
"""The test numbers (555...) are the centre's own range; everything else is judged."""


class FakeAmi:
    """Records actions; answers CoreShowChannels with ``channels``; ``fail`` is raised by the
    next Originate."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        self.channels: list[str] = []
        self.link = SimpleNamespace(is_up=True)
        self.fail: Exception | None = None

    def on_event(self, *_: Any) -> None:
        pass

    def on_connect(self, *_: Any) -> None:
        pass

    async def send(self, action: dict[str, str], **_: Any) -> Any:
        self.sent.append(dict(action))
        if action["Action"] == "Originate" and self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        if action["Action"] == "CoreShowChannels":
            return [{"Event": "CoreShowChannel", "Channel": c} for c in self.channels]
        return {"Response": "Success"}

    def originates(self) -> list[dict[str, str]]:
        return [a for a in self.sent if a["Action"] == "Originate"]


@pytest.fixture
def rig(store: Store, tmp_path: Path) -> SimpleNamespace:
    ami = FakeAmi()
    log = tmp_path / "queue_log"
    log.write_text("")
    ingester = QueueLogIngester(log, store)
    watcher = QueueWatcher(cast(AmiClient, ami), store, CENTRE)
    # Somebody is logged in to q (a queue nobody staffs gets no try: see its own test).
    watcher.loaded = 1
    watcher.state.queues["q"].members["PJSIP/2002"] = Member("PJSIP/2002", "Bo", state="idle")
    service = CallbackService(store, cast(AmiClient, ami), CENTRE, watcher, ingester, policy=POLICY)
    return SimpleNamespace(ami=ami, log=log, ingester=ingester, watcher=watcher, service=service)


def write(log: Path, *lines: str) -> None:
    now = int(time.time())
    with log.open("a") as fh:
        for line in lines:
            fh.write(f"{now}|{line}\n")


async def get(store: Store, cb_id: int) -> CallbackRequest:
    async with store.sessions() as s:
        cb = await s.get(CallbackRequest, cb_id)
        assert cb is not None
        return cb


async def tries(store: Store, cb_id: int) -> list[CallbackAttempt]:
    async with store.sessions() as s:
        rows = await s.execute(
            select(CallbackAttempt)
            .where(col(CallbackAttempt.callback_id) == cb_id)
            .order_by(col(CallbackAttempt.attempt))
        )
        return list(rows.scalars())


async def due_now(store: Store, cb_id: int) -> None:
    """Skip the wait before the next try."""
    async with store.unit_of_work() as uow:
        row = await uow.session.get(CallbackRequest, cb_id)
        assert row is not None
        row.due_at = None


async def add(store: Store, **fields: Any) -> int:
    async with store.unit_of_work() as uow:
        cb, _ = await tasks.create(
            uow, CallbackRequest(queue="q", source="manual", **fields), policy=POLICY, merge=False
        )
        assert cb.id is not None
        return cb.id


async def test_missed_calls_one_task_per_number_within_the_window(store: Store) -> None:
    now = datetime.now(UTC)
    async with store.unit_of_work() as uow:
        one, created = await tasks.missed(
            uow,
            policy=POLICY,
            number="+5550100",
            queue="q",
            source="abandoned",
            window=3600,
            delay=120,
            now=now,
        )
        two, again = await tasks.missed(
            uow,
            policy=POLICY,
            number="5550100",
            queue="q",
            source="missed",
            window=3600,
            delay=120,
            now=now,
        )
    assert created and not again and one.id == two.id and two.merged == 1
    assert one.number == "5550100" and one.due_at == now + timedelta(seconds=120)
    later = now + timedelta(seconds=3601)  # past the window: a new need
    async with store.unit_of_work() as uow:
        three, created = await tasks.missed(
            uow,
            policy=POLICY,
            number="5550100",
            queue="q",
            source="abandoned",
            window=3600,
            delay=0,
            now=later,
        )
    assert created and three.id != one.id
    async with store.unit_of_work() as uow:
        with pytest.raises(tasks.CallbackError, match="characters other than digits"):
            await tasks.missed(uow, policy=POLICY, number="1;Hangup", queue="q",
                               source="missed", window=60, delay=0)  # fmt: skip


async def test_a_served_customer_cancels_automatic_tasks_only(store: Store) -> None:
    manual = await add(store, number="5550200")  # scheduled by someone: kept
    async with store.unit_of_work() as uow:
        merged, created = await tasks.missed(
            uow, policy=POLICY, number="5550200", queue="q", source="abandoned", window=60, delay=0
        )
        auto, _ = await tasks.missed(
            uow, policy=POLICY, number="5550201", queue="q", source="abandoned", window=60, delay=0
        )
    assert merged.id == manual and not created  # one task per number, whatever its source
    async with store.unit_of_work() as uow:
        assert await tasks.served(uow, POLICY.numbering, "5550200", "q by Al") == []
        cancelled = await tasks.served(uow, POLICY.numbering, "5550201", "q by Al")
    assert [c.id for c in cancelled] == [auto.id]
    assert (await get(store, manual)).state == "pending"
    closed = await get(store, cast(int, auto.id))
    assert (closed.state, closed.closed_reason) == ("cancelled", "customer served: q by Al")


async def test_placed_then_retried_after_the_delay_then_failed(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    cb_id = await add(store, number="+5550300")
    assert await rig.service.place_due() == 1
    (originate,) = rig.ami.originates()
    assert originate["Channel"] == f"Local/cb{cb_id}x1@telephonist-cb-queue/n"
    assert "TELEPHONIST_CB_NUMBER=5550300," in originate["Variable"]
    assert (await get(store, cb_id)).state == "queued"
    assert await rig.service.place_due() == 0  # never twice
    write(
        rig.log,
        f"ph-1|q|NONE|CALLBACKPLACED|{cb_id}|1",
        "ph-1|q|NONE|ENTERQUEUE||5550300|1",
        "ph-1|q|Al|CONNECT|3|agent-1|0",
        f"dial-1|q|NONE|CALLBACKDIAL|{cb_id}|1",
        f"dial-1|q|NONE|CALLBACKRESULT|{cb_id}|1|NOANSWER|",
    )
    await rig.ingester.ingest_once()
    cb = await get(store, cb_id)
    assert (cb.state, cb.attempts, cb.outcome) == ("pending", 1, "no_answer")
    assert cb.due_at is not None
    wait = (cb.due_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()
    assert 55 < wait <= 60
    (first,) = await tries(store, cb_id)
    assert (first.agent, first.outcome, first.dial_status) == ("Al", "no_answer", "NOANSWER")
    assert first.connected_at is not None
    assert await rig.service.place_due() == 0  # not before the delay
    async with store.unit_of_work() as uow:
        row = await uow.session.get(CallbackRequest, cb_id)
        assert row is not None
        row.due_at = datetime.now(UTC) - timedelta(seconds=1)
    assert await rig.service.place_due() == 1
    assert rig.ami.originates()[-1]["Channel"] == f"Local/cb{cb_id}x2@telephonist-cb-queue/n"
    write(rig.log, f"dial-2|q|NONE|CALLBACKRESULT|{cb_id}|2|BUSY|")
    await rig.ingester.ingest_once()
    cb = await get(store, cb_id)
    assert (cb.state, cb.attempts, cb.outcome) == ("failed", 2, "busy")
    # A late line about the first try changes nothing.
    write(rig.log, f"dial-1|q|NONE|CALLBACKRESULT|{cb_id}|1|ANSWER|30")
    await rig.ingester.ingest_once()
    assert (await get(store, cb_id)).state == "failed"


async def test_reconcile_after_restart(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    kept = await add(store, number="5550500")
    lost = await add(store, number="5550501")
    done = await add(store, number="5550502")
    await rig.service.place_due()
    # Asterisk still holds the first placeholder; the second is gone with no outcome; the
    # third finished while telephonist was down (its lines are in the queue_log).
    rig.ami.channels = [f"Local/cb{kept}x1@telephonist-cb-queue-00000001;2"]
    write(
        rig.log,
        f"d3|q|NONE|CALLBACKDIAL|{done}|1",
        f"d3|q|NONE|CALLBACKRESULT|{done}|1|ANSWER|42",
    )
    assert await rig.service.reconcile(grace=0) == 1
    assert (await get(store, kept)).state == "queued"
    back = await get(store, lost)
    assert (back.state, back.attempts, back.outcome) == ("pending", 0, "lost")
    finished = await get(store, done)
    assert (finished.state, finished.attempts) == ("done", 1)
    assert (await tries(store, done))[0].talk_seconds == 42


async def test_named_agent_when_free_then_anyone_after_promote_after(
    rig: SimpleNamespace,
) -> None:
    store: Store = rig.service.store
    cb_id = await add(store, number="5550600", agent="al", due_at=datetime.now(UTC))
    assert await rig.service.place_due() == 0  # Al is not logged in
    q = rig.watcher.state.queues["q"]
    q.members["PJSIP/2001"] = Member("PJSIP/2001", "Al", state="in use", in_call=True)
    assert await rig.service.place_due() == 0  # Al is on a call
    q.members["PJSIP/2001"] = Member("PJSIP/2001", "Al", state="idle")
    assert await rig.service.place_due() == 1
    (originate,) = rig.ami.originates()
    assert originate["Channel"] == f"Local/ag{cb_id}x1@telephonist-cb-queue/n"
    assert "TELEPHONIST_CB_AGENT_EXTEN=2001" in originate["Variable"]
    # Another task for Al while the first is with him waits; past promote_after it goes to
    # anyone in the queue.
    other = await add(store, number="5550601", agent="al", due_at=datetime.now(UTC))
    assert await rig.service.place_due() == 0
    async with store.unit_of_work() as uow:
        row = await uow.session.get(CallbackRequest, other)
        assert row is not None
        row.due_at = datetime.now(UTC) - timedelta(seconds=301)
    assert await rig.service.place_due() == 1
    assert rig.ami.originates()[-1]["Channel"] == f"Local/cb{other}x1@telephonist-cb-queue/n"


async def test_the_kept_place_is_behind_callers_who_joined_earlier(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    now = time.time()
    callers = rig.watcher.state.queues["q"].callers
    for i, joined in enumerate((now - 30, now - 20, now - 5)):
        callers[f"u{i}"] = WaitingCaller(f"u{i}", f"55507{i}", i + 1, joined, f"PJSIP/x-{i}")
    cb_id = await add(store, number="5550700", joined_at=datetime.fromtimestamp(now - 10, UTC))
    await rig.service.place_due()
    (originate,) = rig.ami.originates()
    assert "TELEPHONIST_CB_POSITION=3," in originate["Variable"]  # after the two earlier ones
    assert (await get(store, cb_id)).state == "queued"


async def test_sweep_hangs_up_the_placeholder_of_a_cancelled_task(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    cb_id = await add(store, number="5550800")
    await rig.service.place_due()
    channel = f"Local/cb{cb_id}x1@telephonist-cb-queue-00000009;2"
    rig.watcher.state.queues["q"].callers["ph"] = WaitingCaller("ph", "5550800", 1, 0, channel)
    assert await rig.service.sweep() == 0
    async with store.unit_of_work() as uow:
        row = await uow.session.get(CallbackRequest, cb_id)
        assert row is not None
        await tasks.close(uow, row, "cancelled", "admin")
    assert await rig.service.sweep() == 1
    assert rig.ami.sent[-1] == {"Action": "Hangup", "Channel": channel}


async def test_a_try_the_queue_refused_keeps_its_number_and_the_next_gets_a_new_one(
    rig: SimpleNamespace,
) -> None:
    """A refused try costs no attempt; the crash loop of issue 10: the retry reused
    attempt 1 and reading it back failed."""
    store: Store = rig.service.store
    cb_id = await add(store, number="5550410")
    await rig.service.place_due()
    write(rig.log, f"ph|q|NONE|CALLBACKUNPLACED|{cb_id}|1|JOINEMPTY")
    await rig.ingester.ingest_once()
    cb = await get(store, cb_id)
    assert (cb.state, cb.attempts, cb.outcome) == ("pending", 0, "not_placed:JOINEMPTY")
    await due_now(store, cb_id)
    assert await rig.service.place_due() == 1
    assert rig.ami.originates()[-1]["Channel"] == f"Local/cb{cb_id}x2@telephonist-cb-queue/n"
    write(
        rig.log, f"d|q|NONE|CALLBACKDIAL|{cb_id}|2", f"d|q|NONE|CALLBACKRESULT|{cb_id}|2|ANSWER|9"
    )
    await rig.ingester.ingest_once()
    cb = await get(store, cb_id)
    assert (cb.state, cb.attempts, cb.tries) == ("done", 1, 2)
    rows = await tries(store, cb_id)
    assert [(r.attempt, r.outcome) for r in rows] == [(1, "not_placed:JOINEMPTY"), (2, "answered")]


async def test_two_rows_for_one_try_are_refused_by_the_database(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    cb_id = await add(store, number="5550420")
    async with store.unit_of_work() as uow:
        uow.session.add(CallbackAttempt(callback_id=cb_id, attempt=1))
    with pytest.raises(IntegrityError):
        async with store.unit_of_work() as uow:
            uow.session.add(CallbackAttempt(callback_id=cb_id, attempt=1))


async def test_one_bad_task_fails_alone_and_the_others_are_placed(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    # Scheduled for an agent since removed from the centre file.
    bad = await add(store, number="5550430", agent="gone", due_at=datetime.now(UTC))
    good = await add(store, number="5550431")
    assert await rig.service.place_due() == 1
    failed = await get(store, bad)
    assert failed.state == "failed" and "'gone' is not in the centre" in failed.closed_reason
    assert (await get(store, good)).state == "queued"
    assert [o["Channel"] for o in rig.ami.originates()] == [
        f"Local/cb{good}x1@telephonist-cb-queue/n"
    ]


async def test_nobody_logged_in_means_no_try_until_somebody_is(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    rig.watcher.state.queues["q"].members.clear()
    cb_id = await add(store, number="5550440")
    for _ in range(3):
        assert await rig.service.place_due() == 0
    assert rig.ami.originates() == [] and await tries(store, cb_id) == []
    # Logged in but unavailable (phone not reachable): the queue would still refuse.
    rig.watcher.state.queues["q"].members["PJSIP/2002"] = Member("PJSIP/2002", "Bo",
                                                                 state="unavailable")  # fmt: skip
    assert await rig.service.place_due() == 0
    rig.watcher.state.queues["q"].members["PJSIP/2002"].state = "idle"
    assert await rig.service.place_due() == 1


async def test_an_originate_with_no_response_is_never_sent_twice(rig: SimpleNamespace) -> None:
    store: Store = rig.service.store
    cb_id = await add(store, number="5550450")
    rig.ami.fail = AmiTimeout("Originate: no response in 10s")
    assert await rig.service.place_due() == 0
    # The placeholder may exist: the try stays queued, nothing is placed again...
    assert (await get(store, cb_id)).state == "queued"
    assert await rig.service.place_due() == 0 and len(rig.ami.originates()) == 1
    # ...and it is not judged lost while it is young, even with no channel listed.
    assert await rig.service.reconcile() == 0
    # It did exist: kept.
    rig.ami.channels = [f"Local/cb{cb_id}x1@telephonist-cb-queue-0000000a;2"]
    assert await rig.service.reconcile(grace=0) == 0
    # It is gone with no outcome: put back, then tried again with a new number.
    rig.ami.channels = []
    assert await rig.service.reconcile(grace=0) == 1
    await due_now(store, cb_id)
    assert await rig.service.place_due() == 1
    assert rig.ami.originates()[-1]["Channel"] == f"Local/cb{cb_id}x2@telephonist-cb-queue/n"


async def test_an_originate_that_was_never_sent_is_not_placed_and_costs_nothing(
    rig: SimpleNamespace,
) -> None:
    store: Store = rig.service.store
    cb_id = await add(store, number="5550460")
    rig.ami.fail = AmiUnavailable("Originate: AMI not connected")
    assert await rig.service.place_due() == 0
    cb = await get(store, cb_id)
    assert (cb.state, cb.attempts, cb.tries, cb.outcome) == (
        "pending", 0, 1, "not_placed:originate",
    )  # fmt: skip


async def test_a_task_with_no_queue_goes_to_the_centres_callback_queue(
    store: Store, tmp_path: Path
) -> None:
    centre = CENTRE.model_copy(
        update={"callbacks": CENTRE.callbacks.model_copy(update={"queue": "q"})}
    )
    ami = FakeAmi()
    watcher = QueueWatcher(cast(AmiClient, ami), store, centre)
    watcher.loaded = 1
    watcher.state.queues["q"].members["PJSIP/2002"] = Member("PJSIP/2002", "Bo", state="idle")
    service = CallbackService(store, cast(AmiClient, ami), centre, watcher, None, policy=POLICY)
    async with store.unit_of_work() as uow:
        cb, _ = await tasks.create(
            uow, CallbackRequest(queue="", source="voicemail", number="5550470"), policy=POLICY
        )
    assert await service.place_due() == 1
    assert "TELEPHONIST_QUEUE=q," in ami.originates()[0]["Variable"]
    assert (await get(store, cb.id or 0)).queue == "q"


async def test_numbers_from_callers_are_judged_by_the_policy(store: Store) -> None:
    """Typed numbers and caller IDs: emergency, premium-rate and foreign numbers make no
    task (an admin may override all but emergency); a number with an open task gets it."""
    policy = NumberPolicy(CallbackNumbers(), "US")
    for number, why in (("112", "emergency"), ("911", "emergency"),
                        ("19005551234", "type:premium_rate"), ("+442071234567", "international"),
                        ("011442071234567", "international"), ("555", "short_code")):  # fmt: skip
        async with store.unit_of_work() as uow:
            with pytest.raises(tasks.NumberRefused) as refused:
                await tasks.create(uow, CallbackRequest(number=number, queue="q", source="ivr"),
                                   policy=policy)  # fmt: skip
            assert refused.value.verdict.reason == why, number
            with pytest.raises(tasks.NumberRefused):
                await tasks.missed(uow, policy=policy, number=number, queue="q",
                                   source="abandoned", window=60, delay=0)  # fmt: skip
    async with store.unit_of_work() as uow:
        with pytest.raises(tasks.NumberRefused):  # never, override or not
            await tasks.create(uow, CallbackRequest(number="911", queue="q", source="manual"),
                               policy=policy, override="admin x")  # fmt: skip
        forced, created = await tasks.create(
            uow, CallbackRequest(number="19005551234", queue="q", source="manual"),
            policy=policy, override="admin x",
        )  # fmt: skip
    assert created and forced.number == "+19005551234"  # stored as E.164
    async with store.sessions() as s:
        rows = (await s.execute(select(CallbackRequest))).scalars().all()
    assert [r.number for r in rows] == ["+19005551234"]  # nothing else was stored
    # Asking twice for one number: one task.
    async with store.unit_of_work() as uow:
        one, first = await tasks.create(
            uow, CallbackRequest(number="2125550101", queue="q", source="ivr",
                                 requested_by="2125550101"), policy=policy)  # fmt: skip
    async with store.unit_of_work() as uow:
        two, second = await tasks.create(
            uow, CallbackRequest(number="2125550101", queue="q", source="queue",
                                 requested_by="2125550101"), policy=policy)  # fmt: skip
    assert first and not second and two.id == one.id and two.merged == 1


async def test_a_caller_may_ask_for_so_many_callbacks_a_day(store: Store) -> None:
    policy = NumberPolicy(CallbackNumbers(), "US")
    now = datetime.now(UTC)

    async def ask(number: str, at: datetime) -> CallbackRequest:
        async with store.unit_of_work() as uow:
            cb, _ = await tasks.create(
                uow, CallbackRequest(number=number, queue="q", source="ivr",
                                     requested_by="3125550000"),
                policy=policy, limit=(3, 86400), now=at,
            )  # fmt: skip
            return cb

    for i in range(3):
        await ask(f"212555010{i}", now)
    with pytest.raises(tasks.TooManyRequests, match="requests_per_caller: 3"):
        await ask("2125550109", now)
    await ask("2125550109", now + timedelta(days=1, seconds=1))  # the next day: again


async def test_one_customer_is_one_task_however_the_number_is_written(store: Store) -> None:
    """0612345678 typed in the IVR, +33612345678 as a caller ID, 06 12 34 56 78 by an admin:
    one customer, one task, and the caller's requests counted under one key."""
    policy = NumberPolicy(CallbackNumbers(), "FR")
    ids, made = set(), []
    for number, source, caller in (("0612345678", "ivr", "0612345678"),
                                   ("+33612345678", "queue", "+33612345678"),
                                   ("06 12 34 56 78", "manual", ""),
                                   ("0033612345678", "ivr", "0033612345678")):  # fmt: skip
        async with store.unit_of_work() as uow:
            cb, created = await tasks.create(
                uow, CallbackRequest(number=number, queue="q", source=source,
                                     requested_by=caller),
                policy=policy, limit=(5, 86400),
            )  # fmt: skip
        ids.add(cb.id)
        made.append(created)
    assert made == [True, False, False, False] and len(ids) == 1
    async with store.sessions() as s:
        rows = (await s.execute(select(CallbackRequest))).scalars().all()
    assert [(r.number, r.requested_by, r.merged) for r in rows] == [
        ("+33612345678", "+33612345678", 3)
    ]
    # A missed call from the same customer's caller ID joins that task too...
    async with store.unit_of_work() as uow:
        cb, created = await tasks.missed(
            uow,
            policy=policy,
            number="+33 6 12 34 56 78",
            queue="q",
            source="abandoned",
            window=600,
            delay=0,
        )
    assert not created and cb.id in ids
    # ...and the customer served under any spelling cancels an automatic task of theirs.
    async with store.unit_of_work() as uow:
        auto, _ = await tasks.missed(uow, policy=policy, number="0145678901", queue="q",
                                     source="abandoned", window=600, delay=0)  # fmt: skip
        assert auto.number == "+33145678901"
        cancelled = await tasks.served(uow, policy.numbering, "+33145678901", "q by Al")
    assert [c.id for c in cancelled] == [auto.id]


async def test_a_redirect_to_nowhere_that_serves_is_a_missed_call(
    store: Store, rig: SimpleNamespace
) -> None:
    """The ACD's redirect hook: hang-up or an outside number -> a missed-call task (once per
    number); voicemail, another queue... serve the caller -> none; a refused number -> none."""
    cases = [("5550601", "hangup", True), ("5550602", "outside:0123@office", True),
             ("5550603", "voicemail:100", False), ("5550604", "queue:q", False),
             ("112", "hangup", False), ("5550601", "hangup", False)]  # fmt: skip
    for caller, destination, makes in cases:
        async with store.unit_of_work() as uow:
            before = (await uow.session.execute(select(func.count()).select_from(
                CallbackRequest))).scalar_one()  # fmt: skip
            decision = Decision("q", "overflow", "queue full", "FULL", destination)
            await rig.service.on_redirect(uow, decision, caller)
            after = (await uow.session.execute(select(func.count()).select_from(
                CallbackRequest))).scalar_one()  # fmt: skip
        assert after - before == (1 if makes else 0), (caller, destination)
    async with store.sessions() as s:
        (first,) = (await s.execute(select(CallbackRequest).where(
            col(CallbackRequest.number) == "5550601"))).scalars()  # fmt: skip
    assert (first.source, first.merged, first.note) == ("missed", 1, "overflow (queue full)")


async def test_a_voicemail_is_played_on_an_extension_through_call_control() -> None:
    """``voicemail play --on 2001``: the extension rings and plays the recording, by its path
    inside the sandbox's chroot, without the extension (Playback's form)."""
    sent: list[Originate] = []

    class Control:
        async def originate(self, call: Originate) -> None:
            sent.append(call)

    message = VoicemailMessage(
        mailbox="100", msg_id="m1", caller_number="5550100", duration=4,
        received_at=datetime.now(UTC),
        file="/c/rootfs-sid/var/lib/telephonist/t/spool/msg0001.wav",
    )  # fmt: skip
    await play_message(cast(CallControl, Control()), message, "2001", Path("/c/rootfs-sid"))
    (call,) = sent
    assert call.action() == {
        "Action": "Originate", "Channel": "PJSIP/2001", "Async": "true", "Timeout": "30000",
        "Application": "Playback", "Data": "/var/lib/telephonist/t/spool/msg0001",
        "CallerID": "Voicemail <100>",
    }  # fmt: skip


async def test_open_tasks_stored_under_another_spelling_are_renumbered_and_merged(
    store: Store, rig: SimpleNamespace
) -> None:
    """Tasks stored by an earlier version kept the digits as written; at start the service
    gives them the customer's key, and a second pending task of one customer joins the first."""
    now = datetime.now(UTC)
    async with store.unit_of_work() as uow:
        for number, state in (("2125550101", "queued"), ("12125550101", "pending"),
                              ("+12125550102", "pending"), ("5550100", "pending"),
                              ("2125550103", "done")):  # fmt: skip
            uow.session.add(CallbackRequest(number=number, queue="q", source="ivr", state=state,
                                            requested_at=now))  # fmt: skip
    assert await rig.service.renumber() == 2
    async with store.sessions() as s:
        rows = await s.execute(select(CallbackRequest).order_by(col(CallbackRequest.id)))
        got = [(r.number, r.state, r.merged) for r in rows.scalars()]
    assert got == [("+12125550101", "queued", 1), ("12125550101", "cancelled", 0),
                   ("+12125550102", "pending", 0), ("5550100", "pending", 0),
                   ("2125550103", "done", 0)]  # fmt: skip
    assert await rig.service.renumber() == 0  # done once


async def test_the_callback_trunk_is_sent_the_number_in_its_dial_format(
    store: Store, tmp_path: Path
) -> None:
    """The stored key is E.164; a trunk with ``dial_format: national`` and ``dial_prefix: 9``
    is sent 9 + the national number, the agent hears and sees the national number."""
    trunk = Trunk(name="t", host="127.0.0.1", dial_format="national", dial_prefix="9")
    centre = CENTRE.model_copy(update={"trunks": (trunk,)})
    ami = FakeAmi()
    watcher = QueueWatcher(cast(AmiClient, ami), store, centre)
    watcher.loaded = 1
    watcher.state.queues["q"].members["PJSIP/2002"] = Member("PJSIP/2002", "Bo", state="idle")
    policy = NumberPolicy(CallbackNumbers(), "US")
    service = CallbackService(store, cast(AmiClient, ami), centre, watcher, None, policy=policy)
    async with store.unit_of_work() as uow:
        cb, _ = await tasks.create(
            uow, CallbackRequest(number="(212) 555-0101", queue="q", source="manual"),
            policy=policy,
        )  # fmt: skip
    assert cb.number == "+12125550101"
    assert await service.place_due() == 1
    sent = ami.originates()[0]
    assert "TELEPHONIST_CB_NUMBER=92125550101," in sent["Variable"]
    assert "TELEPHONIST_CB_SAY=2125550101," in sent["Variable"]
    assert sent["CallerID"] == "Callback <2125550101>"


async def test_the_dialers_abandoned_calls_are_not_missed_calls(rig: SimpleNamespace) -> None:
    """A caller who hangs up in the queue after waiting is a missed call to call back; the
    dialer's own call (``dial-N``) that waited its 2 s and heard the campaign's message is
    not -- its caller ID is the campaign's number, and its lead is retried by disposition."""
    store: Store = rig.service.store
    write(
        rig.log,
        "1733500000.1|q|NONE|ENTERQUEUE||5550700|1",
        "1733500000.1|q|NONE|ABANDON|1|1|15",
        "dial-7|q|NONE|ENTERQUEUE||12125550100|1",
        "dial-7|q|NONE|ABANDON|1|1|15",  # as long as the other (a centre with min_wait 0)
        "dial-8|q|NONE|ENTERQUEUE||12125550100|1",
        "dial-8|q|Al|CONNECT|1|agent-2|0",
    )
    await rig.ingester.ingest_once()
    async with store.sessions() as s:
        numbers = [cb.number for cb in (await s.execute(select(CallbackRequest))).scalars()]
    assert numbers == ["5550700"]
