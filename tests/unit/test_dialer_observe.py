"""What the pacing policy is told (dialer/observe.py): agents, calls in flight, lines, the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from telephonist.acd.state import Member
from telephonist.dialer import observe, pacing

NOW = datetime(2026, 12, 3, 15, 0, 0, tzinfo=UTC)
T = NOW.timestamp()


def test_each_member_is_counted_in_the_state_a_policy_needs() -> None:
    members = [
        Member("PJSIP/1", "idle", state="not in use", since=T - 12),
        Member("PJSIP/2", "talking", state="in use", in_call=True, since=T - 40),
        Member("PJSIP/3", "ringing", state="ringing", since=T - 3),
        Member("PJSIP/4", "wrap", state="not in use", last_call=T - 2, since=T - 2),
        Member("PJSIP/5", "own wrap", state="not in use", last_call=T - 8, wrapup=10),
        Member("PJSIP/6", "wrap over", state="not in use", last_call=T - 6, since=T - 6),
        Member("PJSIP/7", "paused", state="not in use", paused=True, since=T - 100),
        Member("PJSIP/8", "phone gone", state="unavailable"),
        Member("PJSIP/9", "never seen", state="not in use"),
    ]
    states, elapsed = observe.agents(members, T, queue_wrapup=5)
    assert [int(s) for s in states] == [
        pacing.IDLE, pacing.TALK, pacing.TALK, pacing.WRAP, pacing.WRAP, pacing.IDLE,
        pacing.AWAY, pacing.AWAY, pacing.IDLE,
    ]  # fmt: skip
    # Wrap-up counts from the end of the call; the rest from their last change; unknown: 0.
    assert list(elapsed) == [12000, 40000, 3000, 2000, 8000, 6000, 100000, 0, 0]
    assert states.dtype == np.int8 and elapsed.dtype == np.int64


def test_calls_in_flight_lines_and_the_day() -> None:
    states = np.array([pacing.IDLE, pacing.TALK, pacing.AWAY], dtype=np.int8)
    elapsed = np.zeros(3, dtype=np.int64)
    flying = [
        observe.Flight(NOW - timedelta(seconds=7)),  # ringing 7 s
        observe.Flight(NOW - timedelta(seconds=1, milliseconds=500)),  # ringing 1.5 s
        observe.Flight(NOW - timedelta(seconds=20), answered_at=NOW - timedelta(seconds=1)),
        observe.Flight(
            NOW - timedelta(seconds=30),
            answered_at=NOW - timedelta(seconds=9),
            connected_at=NOW - timedelta(seconds=8),
        ),
    ]
    # A naive time (SQLite gives them back naive) is UTC.
    first = (NOW - timedelta(hours=2)).replace(tzinfo=None)
    day = observe.Day(dials=40, answered=12, abandoned=1, first=first)
    finished = pacing.Finished(talks=[60000])
    obs = observe.observation(NOW, states, elapsed, day, flying, finished)
    assert list(obs.ringing_ms) == [7000, 1500]
    assert obs.waiting == 1  # answered, no agent yet; the connected one is talking
    # Two agents not away: 8 lines, 3 of them in use (2 ringing, 1 waiting).
    assert obs.lines_free == 8 - 3
    assert obs.now_ms == 2 * 3600 * 1000
    assert (obs.dials_today, obs.live_today, obs.abandoned_today) == (40, 12, 1)
    assert obs.finished is finished


def test_no_agent_means_no_line_and_a_fresh_day_starts_at_zero() -> None:
    states = np.array([pacing.AWAY, pacing.AWAY], dtype=np.int8)
    obs = observe.observation(
        NOW, states, np.zeros(2, dtype=np.int64), observe.Day(),
        [observe.Flight(NOW - timedelta(seconds=2))],
    )  # fmt: skip
    # Everyone paused and a call still ringing: nothing may be launched, never a negative.
    assert obs.lines_free == 0 and obs.now_ms == 0 and obs.finished.talks == []
    assert pacing.Progressive().decide(obs) == 0
