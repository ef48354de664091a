"""A live dialer run on the sandbox PBX, checked against the simulator (``dialer/sim.py``).

The called parties are one sipp UAS (``bench/sipp/callee.xml``) behind a trunk: the k-th call
it receives takes the k-th line of an injection file written here from the simulator's
pre-drawn leads for the same seed (:func:`write_injection`): outcome, ring time, talk time —
exactly what the k-th call launched in the simulated day gets. The agents are auto-answer
headsets (``bench/sipp/agent_autoanswer.xml``) in a queue whose app_queue ``wrapuptime`` is the
scenario's fixed wrap-up. The campaign is paced by the dialer in ``serve``, as in production.

:func:`measure` reads what happened from the stored attempts over the run's window, with the
simulator's definitions (a call counts as live once answered within the window; talk time is
clipped to the window; occupancy = talk / logged-in agent time). :func:`compare` puts the live
figures beside the simulator's for the same seed-day and parameters, and its mean and spread
over several seed-days, and says whether they agree within the stated tolerance
(:data:`TOLERANCE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import Campaign, DialAttempt, as_utc
from telephonist.core.storage import Store
from telephonist.dialer.sim import NO_ANSWER_MS, SECOND, Leads, Scenario, simulate

LIVE, BUSY, NO_ANSWER = 0, 2, 3
"""Outcome codes in the injection file (field0), as ``bench/sipp/callee.xml`` reads them."""

TOLERANCE = {"occupancy": 0.06, "abandon_rate": 0.03, "dials": 0.15}
"""Live minus the simulator's same seed-day (the same leads, call by call), at most this much:
occupancy and abandon rate in absolute terms, dials relative. Measured in two 5-minute runs
(LIVE, seed 0): live 307 and 305 dials, 87 live answers, 0 abandoned, occupancy 0.399 and
0.402, against the simulator's 307 dials, 85 live answers, 0 abandoned, 0.385. What a live run
adds is the PBX's timing (call set-up, the queue's 1-second retry, talk times the queue_log
stores in whole seconds); the simulator's spread between seed-days is about 0.03 in
occupancy, so ±0.06 is two of those. The abandon rate counts a handful of calls in a 5-minute
run: ±3 points is about two calls, a coarse check that the live dialer does not overdial where
the simulator does not."""


def callee_rows(sc: Scenario, seed: int, n: int) -> list[tuple[int, int, int]]:
    """(outcome, ring ms, talk ms) of the first ``n`` calls of seed-day ``seed``."""
    if sc.machine or sc.amd or sc.p_live_end is not None:
        raise ValueError(f"scenario {sc.name}: a live run has no machines, AMD or drift")
    leads = Leads(seed)
    leads.ensure(n)
    p = sc.p_live
    rows = []
    for k in range(n):
        u = float(leads.outcome[k])
        if u < p and int(leads.ring[k]) < NO_ANSWER_MS:
            talk = int(float(leads.talk[k]) * sc.talk_scale * SECOND)
            rows.append((LIVE, int(leads.ring[k]), max(1, talk)))
        elif u < p + sc.busy:
            rows.append((BUSY, int(leads.busy_ms[k]), 0))
        else:
            rows.append((NO_ANSWER, 0, 0))
    return rows


def write_injection(path: Path, sc: Scenario, seed: int, n: int) -> Path:
    """sipp's injection file (-inf): one line per call, taken in order."""
    lines = ["SEQUENTIAL"] + [f"{o};{r};{t}" for o, r, t in callee_rows(sc, seed, n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_contacts(path: Path, n: int) -> Path:
    """A contact list of ``n`` distinct valid US numbers (+1 212 200-0000 upwards)."""
    lines = ["name,phone"] + [f"Lead {k},+1212{2_000_000 + k:07d}" for k in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Figures:
    dials: int
    live: int
    abandoned: int
    talk_ms: int
    agent_ms: int

    @property
    def occupancy(self) -> float:
        return self.talk_ms / self.agent_ms if self.agent_ms else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    def row(self) -> dict[str, Any]:
        return {
            "dials": self.dials,
            "live": self.live,
            "abandoned": self.abandoned,
            "occupancy": round(self.occupancy, 4),
            "abandon_rate": round(self.abandon_rate, 4),
        }


async def measure(
    store: Store, campaign: str, start: datetime, end: datetime, agents: int
) -> Figures:
    """The live run's figures over [start, end), from the stored attempts."""
    async with store.sessions() as s:
        c = (await s.execute(select(Campaign).where(col(Campaign.name) == campaign))).scalar_one()
        attempts = list(
            (
                await s.execute(select(DialAttempt).where(col(DialAttempt.campaign_id) == c.id))
            ).scalars()
        )
    dials = live = abandoned = 0
    talk = timedelta()
    for a in attempts:
        if not start <= as_utc(a.started_at) < end:
            continue
        dials += 1
        if a.answered_at is None or as_utc(a.answered_at) >= end:
            continue
        live += 1
        abandoned += a.outcome == "abandoned"
        if a.connected_at is not None:
            talk_end = min(as_utc(a.ended_at) if a.ended_at else end, end)
            talk += max(timedelta(), talk_end - max(as_utc(a.connected_at), start))
    agent_ms = int(agents * (end - start).total_seconds() * 1000)
    return Figures(dials, live, abandoned, int(talk.total_seconds() * 1000), agent_ms)


def simulated(sc: Scenario, policy: str, seeds: list[int]) -> list[Figures]:
    out = []
    for seed in seeds:
        d = simulate(sc, policy, seed)
        out.append(Figures(d.dials, d.live, d.abandoned, d.talk_ms, d.logged_in_ms))
    return out


def compare(live: Figures, same_seed: Figures, sims: list[Figures]) -> dict[str, Any]:
    """The live figures beside the simulator's for the same seed-day (the same leads, call by
    call) and its mean and spread over several seed-days; whether they agree (:data:`TOLERANCE`
    against the same seed-day)."""
    report: dict[str, Any] = {"live": live.row(), "sim_same_seed": same_seed.row(), "checks": {}}
    for name in NAMES:
        values = np.array([f.row()[name] for f in sims], dtype=np.float64)
        report.setdefault("sim_mean", {})[name] = round(float(values.mean()), 4)
        report.setdefault("sim_sd", {})[name] = round(float(values.std()), 4)
    for name, tol in TOLERANCE.items():
        expected = same_seed.row()[name]
        diff = live.row()[name] - expected
        bound = tol * expected if name == "dials" else tol
        report["checks"][name] = {"diff": round(diff, 4), "tolerance": round(bound, 4),
                                  "ok": abs(diff) <= bound}  # fmt: skip
    report["agree"] = all(check["ok"] for check in report["checks"].values())
    return report


NAMES = ("dials", "live", "abandoned", "occupancy", "abandon_rate")


def render(report: dict[str, Any], label: str = "") -> str:
    lines = [f"live run vs simulator {label}".rstrip(),
             f"{'':>14}" + "".join(f"{n:>14}" for n in NAMES)]  # fmt: skip
    for key, title in (("live", "live"), ("sim_same_seed", "sim same seed"),
                       ("sim_mean", "sim mean"), ("sim_sd", "sim sd")):  # fmt: skip
        lines.append(f"{title:>14}" + "".join(f"{report[key][n]:>14}" for n in NAMES))
    for name, check in report["checks"].items():
        verdict = "ok" if check["ok"] else "DISAGREE"
        lines.append(f"{name}: live - same seed = {check['diff']:+.4f} "
                     f"(tolerance ±{check['tolerance']}) {verdict}")  # fmt: skip
    return "\n".join(lines)
