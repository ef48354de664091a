"""Pacing policies and the seeded simulator (pure: no PBX)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from telephonist.dialer import pacing
from telephonist.dialer.pacing import IDLE, TALK, Observation
from telephonist.dialer.sim import SCENARIOS, Leads, simulate

SHORT_S1 = replace(SCENARIOS["S1"], hours=0.5)


def obs(idle: int, talking: int, ringing: list[int], lines_free: int, **kw: int) -> Observation:
    states = np.array([IDLE] * idle + [TALK] * talking, dtype=np.int8)
    return Observation(
        now_ms=kw.get("now_ms", 600_000),
        agent_state=states,
        agent_elapsed_ms=np.full(len(states), 30_000, dtype=np.int64),
        ringing_ms=np.array(ringing, dtype=np.int64),
        waiting=kw.get("waiting", 0),
        lines_free=lines_free,
        dials_today=kw.get("dials", 1000),
        live_today=kw.get("live", 200),
        abandoned_today=kw.get("abandoned", 0),
    )


def test_same_seed_same_day_byte_for_byte() -> None:
    a = simulate(SHORT_S1, "predictive", 3).summary()
    b = simulate(SHORT_S1, "predictive", 3).summary()
    c = simulate(SHORT_S1, "predictive", 4).summary()
    for day in (a, b):
        day.pop("decision_p50_us")
        day.pop("decision_p99_us")
    assert a == b
    assert c["log_digest"] != a["log_digest"]


def test_the_calls_are_drawn_from_the_seed_alone() -> None:
    """Every policy faces the same pre-drawn calls: they depend on the seed, never on who
    dials them (policies never see or touch them)."""
    a, b, c = Leads(7), Leads(7), Leads(8)
    for leads in (a, b, c):
        leads.ensure(1000)
    for field in ("outcome", "ring", "busy_ms", "talk", "wrap", "amd", "machine_ring"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not np.array_equal(a.outcome, c.outcome)


def test_predictive_dials_more_and_keeps_agents_busier_than_progressive() -> None:
    prog = simulate(SHORT_S1, "progressive", 1)
    pred = simulate(SHORT_S1, "predictive", 1)
    assert pred.dials > prog.dials > 0
    assert pred.occupancy > prog.occupancy


def test_progressive_and_ratio() -> None:
    o = obs(idle=3, talking=2, ringing=[1000], lines_free=19)
    assert pacing.Progressive().decide(o) == 2
    assert pacing.FixedRatio(3).decide(o) == 8
    assert pacing.Progressive().decide(obs(idle=0, talking=5, ringing=[], lines_free=20)) == 0


def test_predictive_dials_more_with_idle_agents_and_stops_without_lines() -> None:
    p = pacing.Predictive()
    idle = p.decide(obs(idle=5, talking=0, ringing=[], lines_free=20))
    busy = pacing.Predictive().decide(obs(idle=0, talking=5, ringing=[2000] * 8, lines_free=12))
    assert idle > 5 > busy >= 0
    assert pacing.Predictive().decide(obs(idle=5, talking=0, ringing=[], lines_free=0)) == 0


def test_predictive_backs_off_when_the_day_is_near_the_cap() -> None:
    relaxed = pacing.Predictive().decide(obs(idle=10, talking=40, ringing=[], lines_free=200))
    tight = pacing.Predictive().decide(
        obs(idle=10, talking=40, ringing=[], lines_free=200, live=2000, abandoned=62)
    )
    assert tight < relaxed


def test_amd_that_leaves_no_room_under_the_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no room under the 3% abandon cap"):
        pacing.Predictive(amd_false_positive=0.03)
    pacing.Predictive(amd_false_positive=0.01)  # 1%: room left


def test_simulate_cli_json_and_errors() -> None:
    cmd = [sys.executable, "-m", "telephonist.cli.main", "dialer", "simulate", "--scenario", "S1",
           "--policy", "progressive", "--seeds", "0-1", "--hours", "0.25", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    days = json.loads(out.stdout)
    assert [d["seed"] for d in days] == [0, 1]
    assert {"occupancy", "abandon_rate", "dials", "connects"} <= set(days[0])
    bad = subprocess.run([*cmd[:6], "S9"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--scenario: 'S9' is not one of S1" in bad.stderr


def test_a_falling_answer_rate_leaves_less_of_the_day_to_spend() -> None:
    """Two days at the same hour with the same live answers so far: one steady, one whose
    answers came early and have nearly stopped (a list drifting down, agents at lunch). What
    is left of the day is projected at the slower of the day's and the last half hour's rate,
    so the falling day may abandon a smaller share of its coming answers."""
    steady, falling = pacing.Predictive(), pacing.Predictive()
    hour = 3_600_000
    for minute in range(0, 181):
        t = minute * 60_000
        steady_live = 600 * minute // 180  # 200 an hour all along
        falling_live = min(600, 300 * minute // 60) if minute <= 120 else 600  # none after 2 h
        steady._target(obs(10, 40, [], 10, now_ms=t, live=steady_live, abandoned=0))
        falling._target(obs(10, 40, [], 10, now_ms=t, live=falling_live, abandoned=0))
    at = 3 * hour + 1_000
    s = steady._target(obs(10, 40, [], 10, now_ms=at, live=600, abandoned=12))
    f = falling._target(obs(10, 40, [], 10, now_ms=at, live=600, abandoned=12))
    assert f < s


@pytest.mark.parametrize(("p_live", "agents"), [(0.6, 16), (0.5, 12), (0.8, 4)])
def test_a_list_that_answers_far_better_than_the_prior_is_not_a_burst_of_abandons(
    p_live: float, agents: int
) -> None:
    """The prior answer rate is 20 %; a list of warm leads answers at 50-80 %. The first
        calls for an idle team are placed as if the rate could be several times the prior, so the
        campaign's first minutes stay under the cap -- without that weighing of the estimate's
        error, these days abandoned 12-22 of their first 40 live answers (seeds 0-7, 5-minute
        days). Once the outcomes are in, the team is kept busy: never less than progressive does
    (the policy never places fewer calls than there are free agents with nothing in flight)."""
    sc = replace(SCENARIOS["LIVE"], p_live=p_live, agents=agents, hours=5 / 60)
    for seed in range(4):
        day = simulate(sc, "predictive", seed)
        assert day.live >= 25 and day.abandoned / day.live < 0.03, (seed, day.summary())
        progressive = simulate(sc, "progressive", seed).occupancy
        if agents >= 12:
            assert day.occupancy > progressive, (seed, day.occupancy, progressive)
        else:  # 4 agents, 4 in 5 answering: one call per free agent is about all there is
            assert day.occupancy >= 0.98 * progressive, (seed, day.occupancy, progressive)


def test_the_first_calls_of_a_list_are_one_per_free_agent_then_the_rate_is_weighed() -> None:
    """16 idle agents and nothing known of the list yet: one call per agent (at the prior's
    20 % the plan would be some 80 calls), also while those calls ring. After a few outcomes,
    the estimate is weighed with its error: more than one call per agent, far fewer than the
    prior's plan."""
    p = pacing.Predictive()
    first = p.decide(obs(idle=16, talking=0, ringing=[], lines_free=64, now_ms=1_000, dials=0,
                         live=0))  # fmt: skip
    assert first == 16
    ringing = p.decide(obs(idle=16, talking=0, ringing=[950] * 16, lines_free=48, now_ms=1_960,
                           dials=16, live=0))  # fmt: skip
    assert ringing == 0  # still nothing known: no call beyond one per agent
    unanswered = pacing.Finished(outcomes=[(pacing.NO_ANSWER, 20_000)] * 4)
    p.decide(replace(obs(idle=0, talking=0, ringing=[], lines_free=0, now_ms=2_000, live=0),
                     finished=unanswered))  # fmt: skip
    later = p.decide(obs(idle=16, talking=0, ringing=[], lines_free=64, now_ms=3_000, dials=4,
                         live=0))  # fmt: skip
    assert 16 < later < 60, later


def test_a_talk_longer_than_every_one_seen_is_not_counted_as_over() -> None:
    """Every talk remembered lasted 8 s; 8 agents have been talking for 9 s. They are not taken
    as certainly free (as the bare empirical distribution would): the policy places few calls
    for them, not the 8 or more it places for 8 idle agents."""
    p = pacing.Predictive()
    seen = pacing.Finished(outcomes=[(pacing.LIVE, 3_000)] * 200, talks=[8_000] * 2_000,
                           wraps=[3_000] * 2_000)  # fmt: skip
    p.decide(replace(obs(idle=0, talking=0, ringing=[], lines_free=0), finished=seen))
    busy = obs(idle=0, talking=8, ringing=[], lines_free=32, live=200)
    busy.agent_elapsed_ms[:] = 9_000
    idle = obs(idle=8, talking=0, ringing=[], lines_free=32, live=200)
    assert p.decide(busy) <= 3 < 8 <= p.decide(idle)
