"""A seeded discrete-event simulation of an outbound campaign day (``../shared/DIALER-BENCH.md``).

Every policy faces identical, pre-drawn calls: the k-th call launched in a day gets the k-th
pre-drawn lead (its outcome draw, ring, talk and wrap-up times), from numpy ``PCG64`` streams
spawned per attribute from the scenario seed. Time is in integer milliseconds; events are
ordered by (time, priority, sequence), so the same seed gives a byte-identical event log
(:attr:`DayResult.log_digest`).

The call model: live answers with probability p (p may drift over the day), answering
machines 0.25 (S4: 0.30), busy/failed 0.15, no answer otherwise (the dialer gives up at 20 s,
after the 15 s minimum ring; a person who would answer later is a no answer too). Live and
machine ring times are lognormal (median 9.5 s);
busy/failed end after a lognormal 3 s. Machines are recognised and never reach an agent; with
AMD on (S4), 1% of live people are misclassed as machines — they are hung up on and count as
abandoned. Talk time: 30% short (mean 25 s), 70% long (mean 180 s), lognormal; wrap-up
lognormal with mean 15 s. A live answer with no free agent within 2.0 s hears the recorded
message and is abandoned. At most 4 lines per logged-in agent.

Occupancy = talk time / logged-in agent time (agents away at lunch are not logged in).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from telephonist.dialer import pacing, rules
from telephonist.dialer.pacing import AWAY, IDLE, TALK, WRAP, Finished, Model, Observation

SECOND = 1000
HOUR = 3600 * SECOND
TICK_MS = 1000
"""How often the policy is asked (every policy: the same)."""
ABANDON_MS = int(rules.hold_seconds("US") * SECOND)
"""How long an answered person waits for an agent: as long as the PBX holds them (1.5 s)."""
NO_ANSWER_MS = 20 * SECOND
LINES_PER_AGENT = 4
RING_MEDIAN_MS = 9500.0
RING_SIGMA = 0.45
BUSY_MEDIAN_MS = 3000.0
TALK_SHORT = (0.30, 25.0, 0.5)  # share, mean seconds, sigma
TALK_LONG = (0.70, 180.0, 0.6)
WRAP_MEAN, WRAP_SIGMA = 15.0, 0.4


@dataclass(frozen=True)
class Scenario:
    name: str
    agents: int
    p_live: float
    p_live_end: float | None = None
    """The answer rate at the end of the day (linear drift from ``p_live``)."""
    machine: float = 0.25
    busy: float = 0.15
    amd: bool = False
    amd_false_positive: float = 0.0
    lunch_agents: int = 0
    """Agents away from 12:00 to 13:00 (the day starts at 08:00)."""
    talk_after_noon: float = 1.0
    hours: float = 8.0
    talk_scale: float = 1.0
    """Talk times multiplied by this (a live run on the sandbox PBX is minutes, not hours)."""
    wrap_ms: int | None = None
    """A fixed wrap-up (app_queue's ``wrapuptime``) instead of the lognormal one."""

    def p_at(self, t_ms: int) -> float:
        if self.p_live_end is None:
            return self.p_live
        frac = min(1.0, max(0.0, t_ms / (self.hours * HOUR)))
        return self.p_live + (self.p_live_end - self.p_live) * frac


SCENARIOS = {
    "S1": Scenario("S1", agents=5, p_live=0.10),
    "S2": Scenario("S2", agents=50, p_live=0.20),
    "S3": Scenario(
        "S3", agents=50, p_live=0.30, p_live_end=0.12, lunch_agents=15, talk_after_noon=1.3
    ),
    "S4": Scenario("S4", agents=20, p_live=0.15, machine=0.30, amd=True, amd_false_positive=0.01),
    "S5": Scenario("S5", agents=500, p_live=0.20),
    # What a live run on the sandbox PBX can reproduce (bench/dialer_live.py): a few minutes, talk
    # times a tenth of the model's, app_queue's fixed wrap-up; no answering machines.
    "LIVE": Scenario(
        "LIVE", agents=8, p_live=0.30, machine=0.0, hours=5 / 60, talk_scale=0.1, wrap_ms=3000
    ),
}


def _lognormal_mean(rng: np.random.Generator, mean: float, sigma: float, n: int) -> Any:
    return rng.lognormal(math.log(mean) - sigma * sigma / 2, sigma, n)


class Leads:
    """The pre-drawn calls of one seed-day (more are drawn, identically, if a day needs them)."""

    def __init__(self, seed: int, block: int = 50_000) -> None:
        streams = np.random.SeedSequence(seed).spawn(7)
        self._rngs = [np.random.Generator(np.random.PCG64(s)) for s in streams]
        self.block = block
        self.outcome = np.empty(0)
        self.ring = np.empty(0, dtype=np.int64)
        self.busy_ms = np.empty(0, dtype=np.int64)
        self.talk = np.empty(0)
        self.wrap = np.empty(0, dtype=np.int64)
        self.amd = np.empty(0)
        self.machine_ring = np.empty(0, dtype=np.int64)

    def ensure(self, n: int) -> None:
        while len(self.outcome) < n:
            b = self.block
            r = self._rngs
            short = r[3].random(b) < TALK_SHORT[0]
            talk = np.where(
                short,
                _lognormal_mean(r[3], TALK_SHORT[1], TALK_SHORT[2], b),
                _lognormal_mean(r[3], TALK_LONG[1], TALK_LONG[2], b),
            )
            self.outcome = np.concatenate([self.outcome, r[0].random(b)])
            ring = r[1].lognormal(math.log(RING_MEDIAN_MS), RING_SIGMA, b)
            self.ring = np.concatenate([self.ring, np.maximum(1000, ring).astype(np.int64)])
            busy = r[2].lognormal(math.log(BUSY_MEDIAN_MS), 0.5, b)
            self.busy_ms = np.concatenate([self.busy_ms, np.maximum(300, busy).astype(np.int64)])
            self.talk = np.concatenate([self.talk, talk])
            wrap = _lognormal_mean(r[4], WRAP_MEAN, WRAP_SIGMA, b) * SECOND
            self.wrap = np.concatenate([self.wrap, wrap.astype(np.int64)])
            self.amd = np.concatenate([self.amd, r[5].random(b)])
            mring = r[6].lognormal(math.log(RING_MEDIAN_MS), RING_SIGMA, b)
            self.machine_ring = np.concatenate(
                [self.machine_ring, np.maximum(1000, mring).astype(np.int64)]
            )


def true_model(sc: Scenario) -> Model:
    """What the oracle is told: the scenario's answer rate and distributions."""

    def ring_cdf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 1e-9)) - math.log(RING_MEDIAN_MS)) / RING_SIGMA
        return pacing._Phi(z)

    def lognormal_cdf(mean_s: float, sigma: float, scale: float = 1.0) -> Callable[[Any], Any]:
        mu = math.log(mean_s * scale * SECOND) - sigma * sigma / 2

        def cdf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            with np.errstate(divide="ignore"):
                return pacing._Phi((np.log(np.maximum(x, 1e-9)) - mu) / sigma)

        return cdf

    short = lognormal_cdf(*TALK_SHORT[1:], sc.talk_scale)
    long_ = lognormal_cdf(*TALK_LONG[1:], sc.talk_scale)

    def fixed_wrap(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return (np.asarray(x) >= (sc.wrap_ms or 0)).astype(np.float64)

    def talk_cdf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return TALK_SHORT[0] * short(x) + TALK_LONG[0] * long_(x)

    return Model(
        p_live=lambda t: sc.p_at(t) * (1 - (sc.amd_false_positive if sc.amd else 0.0)),
        ring_live=ring_cdf,
        talk=talk_cdf,
        wrap=lognormal_cdf(WRAP_MEAN, WRAP_SIGMA) if sc.wrap_ms is None else fixed_wrap,
        p_machine=sc.machine,
        p_busy=sc.busy,
    )


@dataclass
class DayResult:
    scenario: str
    policy: str
    seed: int
    dials: int
    live: int
    connects: int
    abandoned: int
    amd_false_positives: int
    talk_ms: int
    logged_in_ms: int
    agent_waits_ms: list[int]
    decision_us: list[float]
    log_digest: str

    @property
    def occupancy(self) -> float:
        return self.talk_ms / self.logged_in_ms if self.logged_in_ms else 0.0

    @property
    def abandon_rate(self) -> float:
        """Abandoned live answers / live answers, people AMD hung up on counted in both (an
        abandoned live call for the FTC; Ofcom counts AMD false positives as abandoned calls
        in the same way): in this model the US and UK rates are this one figure, over a day."""
        return (self.abandoned + self.amd_false_positives) / self.live if self.live else 0.0

    def summary(self) -> dict[str, Any]:
        hours = self.logged_in_ms / HOUR
        waits = np.asarray(self.agent_waits_ms or [0]) / SECOND
        lat = np.asarray(self.decision_us or [0.0])
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "occupancy": round(self.occupancy, 4),
            "abandon_rate": round(self.abandon_rate, 4),
            "dials": self.dials,
            "connects": self.connects,
            "live": self.live,
            "abandoned": self.abandoned,
            "talk_min_per_agent_hour": round(self.talk_ms / 60_000 / hours, 2) if hours else 0,
            "connects_per_agent_hour": round(self.connects / hours, 2) if hours else 0,
            "dials_per_agent_hour": round(self.dials / hours, 2) if hours else 0,
            "agent_wait_mean_s": round(float(waits.mean()), 2),
            "agent_wait_p90_s": round(float(np.percentile(waits, 90)), 2),
            "decision_p50_us": round(float(np.percentile(lat, 50)), 1),
            "decision_p99_us": round(float(np.percentile(lat, 99)), 1),
            "log_digest": self.log_digest,
        }


# Event kinds, in the priority order of simultaneous events.
_RING_END, _AGENT_FREE, _ABANDON, _LUNCH, _TICK = range(5)


def simulate(sc: Scenario, policy_name: str, seed: int) -> DayResult:
    """One 8-hour day of scenario ``sc`` under ``policy_name`` with pre-drawn leads ``seed``."""
    policy = pacing.make_policy(
        policy_name,
        true_model(sc) if policy_name == "oracle" else None,
        amd_false_positive=sc.amd_false_positive if sc.amd else 0.0,
    )
    leads = Leads(seed)
    n = sc.agents
    state = np.full(n, IDLE, dtype=np.int8)
    since = np.zeros(n, dtype=np.int64)
    on_lunch = np.zeros(n, dtype=bool)
    lunch_due = np.zeros(n, dtype=bool)
    talk_end_wrap: dict[int, int] = {}
    events: list[tuple[int, int, int, int, int]] = []
    seq = 0
    digest = hashlib.sha256()
    ringing: dict[int, int] = {}  # call index -> launch time
    waiting: deque[tuple[int, int]] = deque()  # (call, answered at)
    settled: set[int] = set()
    finished = Finished()
    dials = live = connects = abandoned = fps = 0
    talk_ms = 0
    waits: list[int] = []
    decision_us: list[float] = []
    end = int(sc.hours * HOUR)
    lunch_start, lunch_end = 4 * HOUR, 5 * HOUR

    def push(t: int, kind: int, data: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, kind, seq, kind, data))

    def connect(call: int, now: int) -> bool:
        nonlocal connects, talk_ms
        idle = np.nonzero((state == IDLE) & ~on_lunch)[0]
        if idle.size == 0:
            return False
        agent = int(idle[np.argmax(now - since[idle])])  # the longest idle
        waits.append(int(now - since[agent]))
        talk = leads.talk[call] * (sc.talk_after_noon if now >= lunch_start else 1.0)
        t_ms = int(talk * sc.talk_scale * SECOND)
        state[agent], since[agent] = TALK, now
        talk_end_wrap[agent] = int(leads.wrap[call]) if sc.wrap_ms is None else sc.wrap_ms
        connects += 1
        talk_ms += min(t_ms, max(0, end - now))
        finished.talks.append(t_ms)
        push(now + t_ms, _AGENT_FREE, agent)
        return True

    push(0, _TICK, 0)
    if sc.lunch_agents:
        push(lunch_start, _LUNCH, 1)
        push(lunch_end, _LUNCH, 0)
    logged_ms = 0
    last_t = 0
    while events:
        t, _, _, kind, data = heapq.heappop(events)
        if t > end:
            break
        logged_ms += int(np.count_nonzero(~on_lunch)) * (t - last_t)
        last_t = t
        digest.update(f"{t},{kind},{data};".encode())
        if kind == _RING_END:
            call = data
            launched = ringing.pop(call)
            u = leads.outcome[call]
            p = sc.p_at(launched)
            if t - launched >= NO_ANSWER_MS:
                # The dialer gave up first: a person who would have answered later is missed.
                finished.outcomes.append((pacing.NO_ANSWER, t - launched))
            elif u < p:
                if sc.amd and leads.amd[call] < sc.amd_false_positive:
                    # Hung up on as a machine: an abandon the dialer cannot see.
                    live += 1
                    fps += 1
                    finished.outcomes.append((pacing.MACHINE, t - launched))
                    continue
                live += 1
                finished.outcomes.append((pacing.LIVE, t - launched))
                if not connect(call, t):
                    waiting.append((call, t))
                    push(t + ABANDON_MS, _ABANDON, call)
            elif u < p + sc.machine:
                finished.outcomes.append((pacing.MACHINE, t - launched))
            elif u < p + sc.machine + sc.busy:
                finished.outcomes.append((pacing.BUSY, t - launched))
            else:
                finished.outcomes.append((pacing.NO_ANSWER, t - launched))
        elif kind == _AGENT_FREE:
            agent = data
            if state[agent] == TALK:
                state[agent], since[agent] = WRAP, t
                push(t + talk_end_wrap[agent], _AGENT_FREE, agent)
                continue
            finished.wraps.append(int(t - since[agent]))
            state[agent], since[agent] = IDLE, t
            if lunch_due[agent]:
                lunch_due[agent], on_lunch[agent] = False, True
                state[agent] = AWAY
                continue
            while waiting:
                call, _answered = waiting.popleft()
                if call in settled:
                    continue
                if connect(call, t):
                    settled.add(call)  # connected: its abandon check is void
                    break
        elif kind == _ABANDON:
            call = data
            if call in settled:
                continue
            settled.add(call)
            if any(c == call for c, _ in waiting):
                waiting = deque((c, a) for c, a in waiting if c != call)
                abandoned += 1
        elif kind == _LUNCH:
            if data == 1:
                # The first lunch_agents agents go when their current call is over.
                for agent in range(sc.lunch_agents):
                    if state[agent] == IDLE:
                        on_lunch[agent], state[agent] = True, AWAY
                    else:
                        lunch_due[agent] = True
            else:
                for agent in range(sc.lunch_agents):
                    lunch_due[agent] = False
                    if on_lunch[agent]:
                        on_lunch[agent] = False
                        state[agent], since[agent] = IDLE, t
        elif kind == _TICK:
            active = int(np.count_nonzero(~on_lunch))
            in_flight = len(ringing) + len(waiting)
            obs = Observation(
                now_ms=t,
                agent_state=np.where(on_lunch, AWAY, state).astype(np.int8),
                agent_elapsed_ms=t - since,
                ringing_ms=t - np.fromiter(ringing.values(), dtype=np.int64, count=len(ringing)),
                waiting=len(waiting),
                lines_free=max(0, LINES_PER_AGENT * active - in_flight),
                dials_today=dials,
                live_today=live - fps,  # what the dialer knows
                abandoned_today=abandoned,
                finished=finished,
            )
            started = time.perf_counter()
            want = policy.decide(obs)
            decision_us.append((time.perf_counter() - started) * 1e6)
            finished = Finished()
            for _ in range(max(0, min(want, obs.lines_free))):
                call = dials
                dials += 1
                leads.ensure(dials)
                ringing[call] = t
                u = leads.outcome[call]
                p = sc.p_at(t)
                if u < p:
                    ring = int(leads.ring[call])
                elif u < p + sc.machine:
                    ring = int(leads.machine_ring[call])
                elif u < p + sc.machine + sc.busy:
                    ring = int(leads.busy_ms[call])
                else:
                    ring = NO_ANSWER_MS
                push(t + min(ring, NO_ANSWER_MS), _RING_END, call)
            push(t + TICK_MS, _TICK, 0)
    logged_ms += int(np.count_nonzero(~on_lunch)) * (end - last_t)
    return DayResult(
        scenario=sc.name, policy=policy.name, seed=seed, dials=dials, live=live,
        connects=connects, abandoned=abandoned, amd_false_positives=fps, talk_ms=talk_ms,
        logged_in_ms=logged_ms, agent_waits_ms=waits, decision_us=decision_us,
        log_digest=digest.hexdigest()[:16],
    )  # fmt: skip
