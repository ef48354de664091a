"""True call records from Asterisk's channel events (core/cel.py), on both databases.

``data/cel_queue_calls.json`` is what the sandbox Asterisk wrote for three calls into a
queue (tests/scenarios/test_reports_day.py): one answered by agent 2010 who hung up first
(the caller then rated the call), one abandoned after 3 s, one abandoned after 12 s.
"""

from __future__ import annotations

import json
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.core import cel
from telephonist.core.models import CelEvent, OutboxEvent, PbxCall, utcnow
from telephonist.core.storage import Store

SAMPLE = Path(__file__).parent / "data" / "cel_queue_calls.json"


def _t(stamp: str) -> datetime:
    return datetime.fromtimestamp(float(stamp), UTC)


def _sample_now() -> bytes:
    """The sample's lines moved to end a minute ago (their order, gaps and every other field
    kept): calls seen today are not taken for calls cut off long ago (``cel.STALE``)."""
    lines = [json.loads(x) for x in SAMPLE.read_bytes().splitlines()]
    shift = time.time() - 60 - max(float(x["eventtime"]) for x in lines)
    for x in lines:
        x["eventtime"] = f"{float(x['eventtime']) + shift:.6f}"
    return b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in lines)


async def _records(store: Store) -> dict[str, PbxCall]:
    async with store.sessions() as s:
        return {p.linkedid: p for p in (await s.execute(select(PbxCall))).scalars()}


async def test_each_call_recorded_once_across_restarts_and_half_lines(
    store: Store, tmp_path: Path
) -> None:
    data = _sample_now()
    path = tmp_path / "cel.json"
    cut = data.index(b'"HANGUP"') + 20  # inside the first call's first HANGUP line
    path.write_bytes(data[:cut])
    assert await cel.CelIngester(path, store).ingest_once() == 8  # the half line waits
    assert await _records(store) == {}  # no call has ended yet
    with path.open("ab") as fh:
        fh.write(data[cut:])
        fh.write(b"not json\n")
    assert await cel.CelIngester(path, store).ingest_once() == 15  # a new reader: a restart
    assert await cel.CelIngester(path, store).ingest_once() == 0

    lines = [json.loads(x) for x in data.splitlines()]
    ids = list(dict.fromkeys(x["linkedid"] for x in lines))
    assert len(ids) == 3
    rec = await _records(store)
    assert set(rec) == set(ids)

    def at(linkedid: str, event: str, channel_suffix: str = "") -> datetime:
        return next(
            _t(x["eventtime"]) for x in lines
            if x["linkedid"] == linkedid and x["eventtype"] == event
            and x["uniqueid"] == linkedid and x["channame"].endswith(channel_suffix)
        )  # fmt: skip

    answered = rec[ids[0]]
    assert answered.channel == "PJSIP/anonymous-00000000"
    assert answered.caller_number == lines[0]["num"] != ""
    assert answered.exten == "308" and answered.context == "from-callers"
    assert _aware(answered.answered_at) == at(ids[0], "ANSWER")
    assert _aware(answered.ended_at) == at(ids[0], "HANGUP")  # after the survey
    assert answered.talk == 3 and answered.peer == "PJSIP/2010-00000001"
    assert (answered.hung_up_by, answered.hangup_source) == ("peer", "PJSIP/2010-00000001")
    assert (answered.hangup_cause, answered.dialstatus, answered.channels) == (16, "ANSWER", 2)
    assert _aware(answered.connected_at) is not None
    assert (_aware(answered.ended_at) - _aware(answered.started_at)).total_seconds() > 9

    for linkedid, waited in ((ids[1], 3), (ids[2], 12)):
        gone = rec[linkedid]
        assert gone.hung_up_by == "caller" and gone.hangup_source == gone.channel
        assert gone.talk == 0 and gone.connected_at is None and gone.peer == ""
        assert gone.dialstatus == "CANCEL"
        assert round((_aware(gone.ended_at) - _aware(gone.started_at)).total_seconds()) == waited

    async with store.sessions() as s:
        left = (await s.execute(select(func.count()).select_from(CelEvent))).scalar_one()
        topics = [
            o.topic for o in (await s.execute(select(OutboxEvent))).scalars()
            if o.topic.endswith("/calls/recorded")
        ]  # fmt: skip
    assert left == 0  # the events of ended calls are gone with their record built
    assert len(topics) == 3  # announced once each


def _aware(t: datetime | None) -> datetime:
    assert t is not None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _line(event: str, at: float, channel: str, uniqueid: str, linkedid: str, **more: str) -> str:
    return json.dumps({
        "eventtype": event, "eventtime": f"{at:.6f}", "name": "", "num": "5550123",
        "exten": "200", "context": "from-callers", "channame": channel, "appname": "",
        "uniqueid": uniqueid, "linkedid": linkedid, "peer": more.get("peer", ""),
        "eventextra": more.get("extra", ""),
    })  # fmt: skip


def test_a_parsed_event_has_the_fields_of_a_stored_one() -> None:
    """``ChannelEvent`` (a line as read) and ``CelEvent`` (a stored row) are one record in
    two forms: a field added to one and not the other would be lost on the way."""
    assert [f.name for f in fields(cel.ChannelEvent)] == [
        c for c in CelEvent.model_fields if c != "id"
    ]


def test_hung_up_by_telephonist_and_talk_over_a_transfer() -> None:
    t0 = 1_796_000_000.0
    caller, a1, a2 = "PJSIP/c-1", "PJSIP/a-2", "PJSIP/b-3"
    b1 = json.dumps({"bridge_id": "b1"})
    raw = [
        _line("CHAN_START", t0, caller, "L", "L"),
        _line("ANSWER", t0 + 1, caller, "L", "L"),
        _line("CHAN_START", t0 + 2, a1, "U2", "L"),
        _line("BRIDGE_ENTER", t0 + 5, caller, "L", "L", extra=b1),
        _line("BRIDGE_ENTER", t0 + 6, a1, "U2", "L", extra=b1),  # talk 6..20 with a1
        _line("BRIDGE_ENTER", t0 + 15, a2, "U3", "L", extra=b1),  # a2 joins 15..30
        _line("BRIDGE_EXIT", t0 + 20, a1, "U2", "L", extra=b1),
        _line("HANGUP", t0 + 20, a1, "U2", "L", extra='{"hangupcause":16,"hangupsource":""}'),
        _line("BRIDGE_EXIT", t0 + 30, a2, "U3", "L", extra=b1),
        _line("BRIDGE_EXIT", t0 + 30, caller, "L", "L", extra=b1),
        _line("HANGUP", t0 + 31, caller, "L", "L",
              extra='{"hangupcause":16,"hangupsource":"dialplan/builtin","dialstatus":""}'),
        _line("LINKEDID_END", t0 + 31, caller, "L", "L"),
    ]  # fmt: skip
    events = [e for e in (cel.parse_line(x) for x in raw) if e is not None]
    assert len(events) == len(raw)
    call = cel.build("L", events)
    assert call.talk == 24  # 6..30: the overlap of a1 and a2 counted once
    assert call.peer == "PJSIP/b-3" and call.hung_up_by == "pbx"
    assert _aware(call.connected_at) == _t(f"{t0 + 6}")
    assert _aware(call.answered_at) == _t(f"{t0 + 1}") and call.channels == 3
    assert cel.cause_text(call.hangup_cause) == "normal clearing"


async def test_calls_that_never_ended_are_recorded_when_stale(store: Store) -> None:
    old = utcnow() - cel.STALE - timedelta(minutes=1)
    async with store.unit_of_work() as uow:
        uow.session.add(CelEvent(linkedid="old", uniqueid="old", event="CHAN_START", at=old,
                                 channel="PJSIP/x-1", caller_number="5550999"))  # fmt: skip
        uow.session.add(CelEvent(linkedid="new", uniqueid="new", event="CHAN_START",
                                 at=utcnow(), channel="PJSIP/x-2"))  # fmt: skip
    async with store.unit_of_work() as uow:
        assert await cel.close_stale(uow, utcnow() - cel.STALE) == 1
    async with store.unit_of_work() as uow:
        assert await cel.close_stale(uow, utcnow() - cel.STALE) == 0
    rec = await _records(store)
    assert list(rec) == ["old"] and rec["old"].hung_up_by == ""
    assert rec["old"].caller_number == "5550999"
    async with store.sessions() as s:
        still = (await s.execute(select(col(CelEvent.linkedid)))).scalars().all()
    assert still == ["new"]  # a call in progress is left alone
    async with store.sessions() as s:
        n = (
            await s.execute(select(func.count()).where(col(PbxCall.linkedid) == "old"))
        ).scalar_one()
    assert n == 1


async def test_a_backlog_batch_costs_a_few_statements_not_some_per_line(
    store: Store, tmp_path: Path
) -> None:
    """A first start beside months of CEL: a batch of 500 lines (120 calls that end in it,
    20 that go on) is one insert of the 20 events kept, three queries for the 120 calls and
    one insert of their records, not a statement or more per line (1,128 statements, 2 ms
    a line, before). Each record's ``calls/recorded`` event is still written with it."""
    from sqlalchemy import event

    from telephonist.core import logtail

    t0 = time.time() - 3600
    lines = []
    for i in range(140):
        names = ("CHAN_START", "ANSWER", "HANGUP", "LINKEDID_END") if i < 120 else ("CHAN_START",)
        for k, name in enumerate(names):
            lines.append(_line(name, t0 + i + k / 10, f"PJSIP/c-{i}", f"u{i}", f"u{i}",
                               extra='{"hangupcause":16}' if name == "HANGUP" else ""))  # fmt: skip
    assert len(lines) == logtail.BATCH
    path = tmp_path / "cel.json"
    path.write_text("\n".join(lines) + "\n")
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
        if not statement.startswith("INSERT INTO outbox"):
            statements.append(statement.split(" (")[0])

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await cel.CelIngester(path, store).ingest_once() == 500
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) <= 12, statements
    rec = await _records(store)
    assert len(rec) == 120 and rec["u7"].hangup_cause == 16 and rec["u7"].channel == "PJSIP/c-7"
    async with store.sessions() as s:
        left = (await s.execute(select(col(CelEvent.linkedid)))).scalars().all()
        announced = (
            await s.execute(
                select(func.count()).where(col(OutboxEvent.topic).endswith("/calls/recorded"))
            )
        ).scalar_one()
    assert sorted(left) == sorted(f"u{i}" for i in range(120, 140)) and announced == 120
