"""Live state of the queues: who is waiting, which agent is doing what (pure: no I/O).

Built from app_queue's own view: ``QueueStatus`` on every (re)connect gives the full picture
(``QueueParams``, ``QueueMember``, ``QueueEntry``), then AMI events keep it current. The
watcher (``acd/watcher.py``) feeds messages in and publishes what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from telephonist.acd.agents import DEVICE_STATES


@dataclass
class WaitingCaller:
    uniqueid: str
    caller_number: str
    position: int
    joined_at: float
    """Seconds since the epoch (Asterisk's clock)."""
    channel: str = ""


@dataclass
class Member:
    interface: str
    name: str
    paused: bool = False
    reason: str = ""
    state: str = "unknown"
    in_call: bool = False
    calls_taken: int = 0
    since: float = 0.0
    """When the member's state, call or pause last changed (seconds since the epoch)."""
    last_call: float = 0.0
    """When the member's last queue call ended (seconds since the epoch; 0: none yet)."""
    wrapup: int = 0
    """The member's own wrap-up time in seconds (0: the queue's applies)."""

    def wrapping_up(self, now: float, queue_wrapup: int) -> bool:
        """In wrap-up after a call: app_queue offers no call to the member until it ends."""
        wrap = self.wrapup or queue_wrapup
        return wrap > 0 and self.last_call > 0 and not self.in_call and now - self.last_call < wrap


@dataclass
class QueueState:
    name: str
    callers: dict[str, WaitingCaller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    completed: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class Change:
    """What one event changed, as published on MQTT (``acd/state``)."""

    queue: str
    kind: str
    data: dict[str, object]


class CentreState:
    def __init__(self, queues: list[str]) -> None:
        self.queues: dict[str, QueueState] = {q: QueueState(q) for q in queues}

    def reset(self) -> None:
        """Forget everything (before loading a fresh QueueStatus after a reconnect)."""
        self.queues = {name: QueueState(name) for name in self.queues}

    def snapshot(self) -> dict[str, object]:
        return {
            name: {
                "callers": [
                    asdict(c) for c in sorted(q.callers.values(), key=lambda c: c.position)
                ],
                "members": [asdict(m) for m in q.members.values()],
                "completed": q.completed,
                "abandoned": q.abandoned,
            }
            for name, q in self.queues.items()
        }

    def apply(self, ev: Mapping[str, str], now: float) -> Change | None:
        """Apply one AMI message (an event or a QueueStatus item); the change, if any."""
        kind = ev.get("Event", "")
        queue = self.queues.get(ev.get("Queue", ""))
        if queue is None:
            return None
        if kind in ("QueueCallerJoin", "QueueEntry"):
            uid = ev.get("Uniqueid", "")
            wait = float(ev.get("Wait", 0) or 0)
            queue.callers[uid] = WaitingCaller(
                uid, ev.get("CallerIDNum", ""), int(ev.get("Position", 0) or 0), now - wait,
                ev.get("Channel", ""),
            )  # fmt: skip
            return Change(
                queue.name,
                "caller_joined",
                {"uniqueid": uid, "caller_number": ev.get("CallerIDNum", "")},
            )
        if kind in ("QueueCallerLeave", "QueueCallerAbandon"):
            uid = ev.get("Uniqueid", "")
            if kind == "QueueCallerAbandon":
                queue.abandoned += 1
            left = queue.callers.pop(uid, None)
            for other in queue.callers.values():  # app_queue renumbers the others
                if left is not None and other.position > left.position:
                    other.position -= 1
            what = "caller_abandoned" if kind == "QueueCallerAbandon" else "caller_left"
            return (
                Change(queue.name, what, {"uniqueid": uid})
                if left or what == "caller_abandoned"
                else None
            )
        if kind == "AgentComplete":
            queue.completed += 1
            member = queue.members.get(ev.get("Interface", ""))
            if member is not None:
                member.last_call = max(member.last_call, now)
            return Change(queue.name, "call_completed", {"member": ev.get("MemberName", "")})
        if kind in (
            "QueueMember", "QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause",
            "QueueMemberPenalty", "QueueMemberRinginuse",
        ):  # fmt: skip
            iface = ev.get("Interface") or ev.get("Location", "")
            member = queue.members.get(iface) or Member(
                iface, ev.get("MemberName") or ev.get("Name", "")
            )
            before = asdict(member)
            member.name = ev.get("MemberName") or ev.get("Name") or member.name
            member.paused = ev.get("Paused", "0") == "1"
            member.reason = ev.get("PausedReason", "") if member.paused else ""
            member.state = DEVICE_STATES.get(ev.get("Status", "0"), "unknown")
            member.in_call = ev.get("InCall", "0") == "1"
            member.calls_taken = int(ev.get("CallsTaken", 0) or 0)
            member.last_call = max(member.last_call, float(ev.get("LastCall", 0) or 0))
            member.wrapup = int(ev.get("Wrapuptime", 0) or 0)
            queue.members[iface] = member
            if asdict(member) == before:
                return None
            if (member.state, member.in_call, member.paused) != (
                before["state"],
                before["in_call"],
                before["paused"],
            ):
                member.since = now
            return Change(queue.name, "member", asdict(member))
        if kind == "QueueMemberRemoved":
            iface = ev.get("Interface", "")
            if queue.members.pop(iface, None) is None:
                return None
            return Change(queue.name, "member_removed", {"interface": iface})
        return None
