"""The live queue state from AMI messages (recorded shapes, no Asterisk)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from telephonist.acd.redirects import after_hours, decide
from telephonist.acd.state import CentreState
from telephonist.core.centre import Queue
from telephonist.core.destinations import Destination


def test_callers_join_leave_and_are_renumbered() -> None:
    s = CentreState(["sales"])
    for i, uid in enumerate(("a", "b", "c"), start=1):
        s.apply(
            {
                "Event": "QueueCallerJoin",
                "Queue": "sales",
                "Uniqueid": uid,
                "Position": str(i),
                "CallerIDNum": f"55{i}",
            },
            100.0,
        )
    change = s.apply({"Event": "QueueCallerLeave", "Queue": "sales", "Uniqueid": "a"}, 110.0)
    assert change is not None and change.kind == "caller_left"
    assert {c.uniqueid: c.position for c in s.queues["sales"].callers.values()} == {"b": 1, "c": 2}
    change = s.apply({"Event": "QueueCallerAbandon", "Queue": "sales", "Uniqueid": "c"}, 120.0)
    assert change is not None and change.kind == "caller_abandoned"
    assert s.queues["sales"].abandoned == 1
    assert s.apply({"Event": "QueueCallerJoin", "Queue": "other", "Uniqueid": "x"}, 1.0) is None


def test_queue_status_entry_keeps_the_real_wait() -> None:
    s = CentreState(["sales"])
    s.apply(
        {"Event": "QueueEntry", "Queue": "sales", "Uniqueid": "a", "Position": "1", "Wait": "42"},
        1000.0,
    )
    assert s.queues["sales"].callers["a"].joined_at == 958.0


def test_members_pause_and_no_change_is_not_published() -> None:
    s = CentreState(["sales"])
    added = {
        "Event": "QueueMemberAdded",
        "Queue": "sales",
        "Interface": "PJSIP/2001",
        "MemberName": "Alice",
        "Status": "1",
    }
    assert s.apply(added, 0) is not None
    assert s.apply({**added, "Event": "QueueMemberStatus"}, 0) is None  # nothing changed
    change = s.apply(
        {**added, "Event": "QueueMemberPause", "Paused": "1", "PausedReason": "lunch"}, 0
    )
    assert change is not None and change.data["paused"] is True and change.data["reason"] == "lunch"
    assert s.queues["sales"].members["PJSIP/2001"].state == "idle"
    assert (
        s.apply({"Event": "QueueMemberRemoved", "Queue": "sales", "Interface": "PJSIP/2001"}, 0)
        is not None
    )
    assert s.queues["sales"].members == {}


def test_redirect_decisions() -> None:
    q = Queue.model_validate(
        {"name": "support", "redirects": {"overflow": "queue:sales", "empty": "voicemail:100"}}
    )
    assert (decide(q, "FULL").reason, decide(q, "FULL").destination) == ("overflow", "queue:sales")
    assert decide(q, "LEAVEEMPTY").detail == "no agent available while waiting"
    assert decide(q, "CONTINUE").destination is None  # no_answer not configured
    assert str(Destination.parse("voicemail:100")) == "voicemail:100"


def test_after_hours_in_the_queue_time_zone() -> None:
    q = Queue.model_validate(
        {
            "name": "support", "timezone": "Europe/Paris", "hours": {"mon-fri": "08:00-18:00"},
            "holidays": [date(2026, 12, 25)], "redirects": {"after_hours": "voicemail:100"},
        }
    )  # fmt: skip
    assert after_hours(q, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) is None  # Monday 11:00 Paris
    late = after_hours(q, datetime(2026, 11, 23, 17, 30, tzinfo=UTC))  # 18:30 Paris
    assert late is not None and late.destination == "voicemail:100"
    assert after_hours(q, datetime(2026, 12, 25, 10, 0, tzinfo=UTC)) is not None


def test_wrap_up_after_a_call_from_agent_complete_or_last_call() -> None:
    s = CentreState(["outq"])
    member = {"Queue": "outq", "Interface": "PJSIP/2009", "MemberName": "Ivan", "Status": "1"}
    s.apply({"Event": "QueueMemberStatus", **member, "InCall": "1"}, 100.0)
    ivan = s.queues["outq"].members["PJSIP/2009"]
    assert not ivan.wrapping_up(100.0, 5)  # talking is not wrap-up
    s.apply({"Event": "AgentComplete", **member, "TalkTime": "30"}, 130.0)
    s.apply({"Event": "QueueMemberStatus", **member, "InCall": "0", "LastCall": "129"}, 130.2)
    assert ivan.last_call == 130.0  # the later of the two clocks
    assert ivan.wrapping_up(134.9, 5) and not ivan.wrapping_up(135.1, 5)
    assert not ivan.wrapping_up(131.0, 0)  # the queue has no wrap-up
    # A member's own wrap-up time wins over the queue's; after a reconnect, LastCall says it.
    s.reset()
    s.apply(
        {"Event": "QueueMember", **member, "InCall": "0", "LastCall": "200", "Wrapuptime": "20"},
        205.0,
    )
    ivan = s.queues["outq"].members["PJSIP/2009"]
    assert ivan.wrapping_up(219.0, 5) and not ivan.wrapping_up(221.0, 5)
