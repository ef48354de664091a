"""What the pacing policy sees, built from what the engine read (pure: no I/O, no clock).

The engine (``dialer/engine.py``) reads the queue's members from the ACD's live state and the
campaign's attempts of the last 24 hours from the database; these functions turn that into a
:class:`dialer.pacing.Observation`, the same type the simulator feeds the policies. Kept
apart so that what a policy is told about agents, calls in flight and the day's counters is
checked by unit tests, not only by a live campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from telephonist.acd.state import Member
from telephonist.core.models import as_utc
from telephonist.dialer import pacing

LINES_PER_AGENT = 4
"""Calls in flight at most per logged-in (not paused) agent."""


def pacing_lines(agents: int) -> int:
    """Calls in flight at most: 4 lines per logged-in agent (never more than that).

    >>> pacing_lines(3), pacing_lines(0)
    (12, 0)
    """
    return LINES_PER_AGENT * agents


def agent_state(m: Member, now: float, queue_wrapup: int) -> int:
    """One member as the policy counts them: AWAY (paused, unreachable), TALK (on a call or
    ringing), WRAP (in wrap-up after a queue call), else IDLE."""
    if m.paused or m.state in ("unavailable", "invalid"):
        return pacing.AWAY
    if m.in_call or m.state in ("in use", "busy", "ringing"):
        return pacing.TALK
    if m.wrapping_up(now, queue_wrapup):
        return pacing.WRAP
    return pacing.IDLE


def agents(
    members: Sequence[Member], now: float, queue_wrapup: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64]]:
    """(state, ms in that state) per member. A member in wrap-up counts from the end of their
    last call; others from their last change (0 if unknown)."""
    states = np.array([agent_state(m, now, queue_wrapup) for m in members], dtype=np.int8)
    elapsed = np.array(
        [
            now - m.last_call if s == pacing.WRAP else now - m.since if m.since else 0.0
            for m, s in zip(members, states, strict=True)
        ],
        dtype=np.float64,
    )
    return states, np.maximum(0, elapsed * 1000).astype(np.int64)


@dataclass(frozen=True)
class Flight:
    """An attempt with no outcome yet."""

    started_at: datetime
    answered_at: datetime | None = None
    connected_at: datetime | None = None


@dataclass(frozen=True)
class Day:
    """The campaign's counters over the last 24 hours."""

    dials: int = 0
    answered: int = 0
    abandoned: int = 0
    first: datetime | None = None
    """Its first call in that time: the policy's clock starts there."""


def observation(
    now: datetime,
    states: npt.NDArray[np.int8],
    elapsed_ms: npt.NDArray[np.int64],
    day: Day,
    flying: Sequence[Flight],
    finished: pacing.Finished | None = None,
) -> pacing.Observation:
    """The policy's view: calls ringing (not answered) with their ring time, live answers
    waiting for an agent (answered, not connected), lines free under :func:`pacing_lines`
    of the agents not away, and the day's counters. ``now_ms`` is the time into the
    campaign's day (since its first call of the last 24 h), as in the simulator."""
    ringing = [f for f in flying if f.answered_at is None]
    waiting = sum(1 for f in flying if f.answered_at is not None and f.connected_at is None)
    active = int(np.count_nonzero(states != pacing.AWAY))
    into_day = (now - as_utc(day.first)).total_seconds() if day.first is not None else 0.0
    return pacing.Observation(
        now_ms=max(0, int(into_day * 1000)),
        agent_state=states,
        agent_elapsed_ms=elapsed_ms,
        ringing_ms=np.array(
            [int((now - as_utc(f.started_at)).total_seconds() * 1000) for f in ringing],
            dtype=np.int64,
        ),
        waiting=waiting,
        lines_free=max(0, pacing_lines(active) - len(ringing) - waiting),
        dials_today=day.dials,
        live_today=day.answered,
        abandoned_today=day.abandoned,
        finished=finished or pacing.Finished(),
    )
