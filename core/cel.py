"""True call records from Asterisk's channel event log (CEL).

Why CEL, and not the CDR or the queue_log alone:
- the queue_log tells only what happened inside a queue (wait, agent, talk, who left first);
  calls that never reach a queue (a menu, voicemail, an outside number, a hang-up in the
  IVR) are not in it;
- Asterisk's CDR splits one call into several records (one per pair of parties that were
  bridged, forked again at each transfer), and says neither the hang-up cause's source nor
  which side hung up;
- CEL is one line per channel event, grouped by the call's ``linkedid``. The first channel's
  ``HANGUP`` event carries the Q.850 cause and the ``hangupsource`` (the channel, or
  ``dialplan/builtin``, that ended it), ``ANSWER`` the answer time, ``BRIDGE_ENTER`` and
  ``BRIDGE_EXIT`` who was talking to whom, and ``LINKEDID_END`` says the whole call is over.

Asterisk writes the events to a file (``cel_custom.conf``, one JSON object a line), which
:class:`CelIngester` reads like the queue_log (:mod:`telephonist.core.logtail`): events are
stored with the file position in one transaction; on ``LINKEDID_END`` the call's
:class:`~telephonist.core.models.PbxCall` is built from its stored events and they are
deleted, in the same transaction. So each call is recorded once, also when it ended while
serve was down (the lines wait in the file), and ``calls/recorded`` is published for it.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlmodel import col

from telephonist.core.calls import CALLS
from telephonist.core.logtail import LogIngester
from telephonist.core.models import CelEvent, PbxCall, as_utc, utcnow
from telephonist.core.storage import Store, UnitOfWork

log = logging.getLogger("telephonist.calls")

EVENTS = frozenset(
    {"CHAN_START", "ANSWER", "HANGUP", "BRIDGE_ENTER", "BRIDGE_EXIT", "LINKEDID_END"}
)

CAUSES = {
    0: "not given", 1: "unallocated number", 3: "no route", 16: "normal clearing",
    17: "user busy", 18: "no user responding", 19: "no answer", 21: "call rejected",
    22: "number changed", 27: "destination out of order", 28: "invalid number format",
    31: "normal, unspecified", 34: "no circuit available", 38: "network out of order",
    41: "temporary failure", 42: "switching equipment congestion", 127: "interworking",
}  # fmt: skip
"""Q.850 hang-up causes by number (the usual ones; others are shown as their number).
Asterisk gives 0 when a SIP caller ends the call with a plain BYE."""

STALE = timedelta(hours=12)
"""A call whose events stopped this long ago without LINKEDID_END (Asterisk was killed) is
recorded with what was seen, ``hung_up_by`` empty."""


def cause_text(cause: int) -> str:
    """The cause's name.

    >>> cause_text(16), cause_text(99)
    ('normal clearing', 'cause 99')
    """
    return CAUSES.get(cause, f"cause {cause}")


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One channel event as read from the file (a :class:`CelEvent` row has the same
    fields): a plain object, as building a SQLModel row per line cost more than all the
    SQL of a backlog."""

    linkedid: str
    uniqueid: str
    event: str
    at: datetime
    channel: str = ""
    caller_number: str = ""
    caller_name: str = ""
    exten: str = ""
    context: str = ""
    peer: str = ""
    extra: str = ""

    @classmethod
    def of(cls, row: CelEvent) -> ChannelEvent:
        return cls(**{f: getattr(row, f) for f in _FIELDS})

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS}


_FIELDS = [f.name for f in fields(ChannelEvent)]


def parse_line(line: str) -> ChannelEvent | None:
    """One line of the CEL file, or None if it is not one of the events read here.

    >>> e = parse_line('{"eventtype":"ANSWER","eventtime":"1796326720.700965","name":"A",'
    ...   '"num":"5550100","exten":"100","context":"from-callers","channame":"PJSIP/x-1",'
    ...   '"appname":"Answer","uniqueid":"t-1.0","linkedid":"t-1.0","peer":"","eventextra":""}')
    >>> (e.event, e.linkedid, e.caller_number, e.at.microsecond)
    ('ANSWER', 't-1.0', '5550100', 700965)
    >>> parse_line("not json") is None, parse_line('{"eventtype":"APP_START"}') is None
    (True, True)
    """
    try:
        raw = json.loads(line)
        event = str(raw["eventtype"])
        if event not in EVENTS:
            return None
        at = datetime.fromtimestamp(float(raw["eventtime"]), UTC)
        linkedid, uniqueid = str(raw["linkedid"]), str(raw["uniqueid"])
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    if not linkedid or not uniqueid:
        return None

    def text(key: str, size: int) -> str:
        return str(raw.get(key) or "")[:size]

    return ChannelEvent(
        linkedid=linkedid[:150], uniqueid=uniqueid[:150], event=event, at=at,
        channel=text("channame", 150), caller_number=text("num", 80),
        caller_name=text("name", 80), exten=text("exten", 80), context=text("context", 80),
        peer=text("peer", 150), extra=text("eventextra", 400),
    )  # fmt: skip


def _extra(event: ChannelEvent) -> dict[str, Any]:
    try:
        value = json.loads(event.extra) if event.extra else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class _Span:
    uniqueid: str
    start: datetime
    end: datetime | None = None


def build(linkedid: str, events: Sequence[ChannelEvent]) -> PbxCall:
    """The call record from all the channel events of one call, given in the order they came
    (the file's order; events of the same microsecond keep it).

    Talk is the time the first channel shared a bridge with another channel: per bridge, the
    first channel's stays intersected with the others' (a transfer or a second agent adds up).
    """
    events = sorted(events, key=lambda e: as_utc(e.at))  # stable: ties keep the file order
    starts = [e for e in events if e.event == "CHAN_START"]
    first_id = linkedid if any(e.uniqueid == linkedid for e in events) else (
        starts[0].uniqueid if starts else events[0].uniqueid)  # fmt: skip
    mine = [e for e in events if e.uniqueid == first_id]
    names = {e.uniqueid: e.channel for e in events if e.channel}
    end_all = as_utc(events[-1].at)
    hangup = next((e for e in mine if e.event == "HANGUP"), None)
    ended = as_utc(hangup.at) if hangup is not None else end_all
    answer = next((e for e in mine if e.event == "ANSWER"), None)
    head = mine[0] if mine else events[0]

    # Bridge stays per (bridge, channel); a stay still open ends with its channel.
    hung: dict[str, datetime] = {e.uniqueid: as_utc(e.at) for e in events if e.event == "HANGUP"}
    stays: dict[str, list[_Span]] = defaultdict(list)
    for e in events:
        bridge = str(_extra(e).get("bridge_id", ""))
        if not bridge:
            continue
        if e.event == "BRIDGE_ENTER":
            stays[bridge].append(_Span(e.uniqueid, as_utc(e.at)))
        elif e.event == "BRIDGE_EXIT":
            for span in reversed(stays[bridge]):
                if span.uniqueid == e.uniqueid and span.end is None:
                    span.end = as_utc(e.at)
                    break
    talk = timedelta()
    connected: datetime | None = None
    peer = ""
    for spans in stays.values():
        closed = [(x.uniqueid, x.start, x.end or hung.get(x.uniqueid, end_all)) for x in spans]
        others = [x for x in closed if x[0] != first_id]
        for _, o_start, o_end in (x for x in closed if x[0] == first_id):
            # the union of the others' stays inside this stay of the first channel
            cuts = sorted(
                (max(o_start, x_start), min(o_end, x_end), uid)
                for uid, x_start, x_end in others
                if x_start < o_end and x_end > o_start
            )
            cursor = o_start
            for lo, hi, uid in cuts:
                lo = max(lo, cursor)
                if hi > lo:
                    talk += hi - lo
                    cursor = hi
                    if connected is None or lo < connected:
                        connected = lo
                    peer = names.get(uid, "")

    extra = _extra(hangup) if hangup is not None else {}
    source = str(extra.get("hangupsource") or "")[:150]
    first_name = names.get(first_id, head.channel)
    if hangup is None:
        by = ""
    elif source and source == first_name:
        by = "caller"
    elif source and source in {n for u, n in names.items() if u != first_id}:
        by = "peer"
    else:
        by = "pbx"
    try:
        cause = int(extra.get("hangupcause") or 0)
    except (TypeError, ValueError):
        cause = 0
    start = next((e for e in mine if e.event == "CHAN_START"), head)
    return PbxCall(
        linkedid=linkedid, channel=first_name, caller_number=start.caller_number,
        caller_name=start.caller_name, exten=start.exten, context=start.context,
        started_at=as_utc(start.at), answered_at=as_utc(answer.at) if answer else None,
        connected_at=connected, ended_at=ended, talk=round(talk.total_seconds()), peer=peer,
        hangup_cause=cause, hangup_source=source, hung_up_by=by,
        dialstatus=str(extra.get("dialstatus") or "")[:20],
        channels=len({e.uniqueid for e in events}),
    )  # fmt: skip


def public(call: PbxCall) -> dict[str, object]:
    """The ``calls/recorded`` event's data."""
    return {
        "linkedid": call.linkedid, "channel": call.channel,
        "caller_number": call.caller_number, "caller_name": call.caller_name,
        "exten": call.exten, "context": call.context,
        "started_at": as_utc(call.started_at),
        "answered_at": as_utc(call.answered_at) if call.answered_at else None,
        "connected_at": as_utc(call.connected_at) if call.connected_at else None,
        "ended_at": as_utc(call.ended_at), "talk": call.talk, "peer": call.peer,
        "hangup_cause": call.hangup_cause, "hangup_cause_text": cause_text(call.hangup_cause),
        "hung_up_by": call.hung_up_by, "dialstatus": call.dialstatus,
    }  # fmt: skip


RECORD_CHUNK = 500
"""Calls looked up per query when many end at once (a backlog, the stale ones)."""


async def record_many(uow: UnitOfWork, ended: dict[str, list[ChannelEvent]]) -> dict[str, PbxCall]:
    """Record the calls that ended: for each linkedid, its events stored by earlier reads
    followed by ``ended[linkedid]`` (this read's, not stored). The stored events are
    deleted; a call already recorded is not recorded again. Three queries per
    :data:`RECORD_CHUNK` calls and one insert, whatever their events (three queries per
    call and an insert per event made a backlog cost 2 ms a line)."""
    ids = list(ended)
    stored: dict[str, list[ChannelEvent]] = defaultdict(list)
    known: set[str] = set()
    for i in range(0, len(ids), RECORD_CHUNK):
        chunk = ids[i : i + RECORD_CHUNK]
        rows = await uow.session.execute(
            select(CelEvent).where(col(CelEvent.linkedid).in_(chunk)).order_by(col(CelEvent.id))
        )
        for e in rows.scalars():
            stored[e.linkedid].append(ChannelEvent.of(e))
        await uow.session.execute(
            delete(CelEvent).where(col(CelEvent.linkedid).in_(chunk)),
            execution_options={"synchronize_session": False},
        )
        found = await uow.session.execute(
            select(col(PbxCall.linkedid)).where(col(PbxCall.linkedid).in_(chunk))
        )
        known.update(r[0] for r in found)
    calls: dict[str, PbxCall] = {}
    for linkedid in ids:
        events = stored.get(linkedid, []) + ended[linkedid]
        if not events or linkedid in known:
            continue
        call = build(linkedid, events)
        CALLS(uow, "recorded", public(call))
        calls[linkedid] = call
    if calls:  # one multi-row insert (the rows' ids are not needed here)
        await uow.session.execute(
            insert(PbxCall), [c.model_dump(exclude={"id"}) for c in calls.values()]
        )
    return calls


class CelIngester(LogIngester):
    what = "CEL file"

    def __init__(self, path: Path, store: Store, interval: float = 1.0) -> None:
        super().__init__(path, store, interval)
        self._stale_checked: datetime | None = None

    async def handle(self, uow: UnitOfWork, lines: list[str]) -> int:
        """A batch: the calls that end in it are recorded from their stored events and the
        batch's own (never stored); the other events are stored, in one multi-row insert."""
        events = [e for e in map(parse_line, lines) if e is not None]
        ended_events: dict[str, list[ChannelEvent]] = {
            e.linkedid: [] for e in events if e.event == "LINKEDID_END"
        }
        keep: list[dict[str, Any]] = []
        for e in events:
            if e.linkedid in ended_events:
                ended_events[e.linkedid].append(e)
            else:
                keep.append(e.row())
        if keep:
            await uow.session.execute(insert(CelEvent), keep)
        if ended_events:
            await record_many(uow, ended_events)
        now = utcnow()
        if self._stale_checked is None or now - self._stale_checked > timedelta(minutes=10):
            self._stale_checked = now
            await close_stale(uow, now - STALE)
        return len(events)


async def close_stale(uow: UnitOfWork, before: datetime) -> int:
    """Record the calls whose last event is older than ``before`` and never ended (Asterisk
    was stopped in the middle of them); returns how many."""
    rows = await uow.session.execute(
        select(col(CelEvent.linkedid))
        .group_by(col(CelEvent.linkedid))
        .having(func.max(col(CelEvent.at)) < before)
    )
    linkedids = [r[0] for r in rows]
    await record_many(uow, {linkedid: [] for linkedid in linkedids})
    if linkedids:
        log.warning("%d call(s) recorded without their end (no LINKEDID_END)", len(linkedids))
    return len(linkedids)


def sandbox_cel_log(rootfs: Path, instance: str) -> Path:
    return rootfs / "var/lib/telephonist" / instance / "log" / "cel.json"


__all__ = ["CAUSES", "CelIngester", "ChannelEvent", "build", "cause_text", "close_stale",
           "parse_line", "record_many", "sandbox_cel_log"]  # fmt: skip
