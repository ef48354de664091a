"""``telephonist dialer simulate`` and ``make bench-dialer``: policies against the seeded
call model of ``../shared/DIALER-BENCH.md`` (see ``dialer/sim.py``). Commands that print
numbers, not tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from telephonist.dialer.pacing import POLICIES
from telephonist.dialer.sim import HOUR, SCENARIOS, simulate

CAP = 0.03


def parse_seeds(text: str) -> list[int]:
    """``0-9``, ``3``, ``0,2,5-7``.

    >>> parse_seeds("0-3,7")
    [0, 1, 2, 3, 7]
    >>> parse_seeds("x")
    Traceback (most recent call last):
    ...
    ValueError: --seeds: 'x' is not like 0-9 or 0,2,5
    """
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ValueError(f"--seeds: {text!r} is not like 0-9 or 0,2,5") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds: {text!r} is not like 0-9 or 0,2,5")
    return seeds


def _day(job: tuple[str, str, int, float | None]) -> dict[str, Any]:
    scenario, policy, seed, hours = job
    sc = SCENARIOS[scenario]
    if hours is not None:
        sc = replace(sc, hours=hours)
    return simulate(sc, policy, seed).summary()


def run_days(
    jobs: list[tuple[str, str, int, float | None]], workers: int | None = None
) -> list[dict[str, Any]]:
    """Seed-days in parallel (each is deterministic: the order of completion does not matter)."""
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [_day(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_day, jobs))


def table(days: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (scenario, policy): the figures DIALER-BENCH.md asks for, over the seed-days."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in days:
        groups.setdefault((d["scenario"], d["policy"]), []).append(d)
    rows = []
    for (scenario, policy), ds in groups.items():

        def mean(key: str, ds: list[dict[str, Any]] = ds) -> float:
            return float(np.mean([d[key] for d in ds]))

        rows.append(
            {
                "scenario": scenario,
                "policy": policy,
                "days": len(ds),
                "occupancy": round(mean("occupancy"), 4),
                "abandon_mean": round(mean("abandon_rate"), 4),
                "abandon_worst": round(max(d["abandon_rate"] for d in ds), 4),
                "worst_seed": max(ds, key=lambda d: d["abandon_rate"])["seed"],
                "occupancy_worst": round(min(d["occupancy"] for d in ds), 4),
                "days_over_cap": sum(d["abandon_rate"] > CAP for d in ds),
                "talk_min_per_agent_hour": round(mean("talk_min_per_agent_hour"), 2),
                "connects_per_agent_hour": round(mean("connects_per_agent_hour"), 2),
                "dials_per_agent_hour": round(mean("dials_per_agent_hour"), 2),
                "agent_wait_mean_s": round(mean("agent_wait_mean_s"), 2),
                "agent_wait_p90_s": round(mean("agent_wait_p90_s"), 2),
                "decision_p50_us": round(mean("decision_p50_us"), 1),
                "decision_p99_us": round(max(d["decision_p99_us"] for d in ds), 1),
            }
        )
    by = {(r["scenario"], r["policy"]): r for r in rows}
    for r in rows:  # the ratios to the oracle and to progressive
        oracle, prog = by.get((r["scenario"], "oracle")), by.get((r["scenario"], "progressive"))
        if oracle:
            r["occ_vs_oracle"] = round(r["occupancy"] / oracle["occupancy"], 3)
        if oracle and prog and oracle["occupancy"] > prog["occupancy"]:
            gain = (r["occupancy"] - prog["occupancy"]) / (oracle["occupancy"] - prog["occupancy"])
            r["G"] = round(gain, 3)
        if prog:
            r["talk_vs_progressive"] = round(r["occupancy"] / prog["occupancy"], 3)
    return rows


COLUMNS = (
    ("scenario", 8), ("policy", 11), ("days", 4), ("occupancy", 9), ("abandon_mean", 12),
    ("abandon_worst", 13), ("worst_seed", 10), ("days_over_cap", 13), ("occupancy_worst", 15),
    ("G", 6), ("talk_vs_progressive", 19),
    ("connects_per_agent_hour", 23), ("dials_per_agent_hour", 20), ("agent_wait_mean_s", 17),
    ("agent_wait_p90_s", 16), ("decision_p50_us", 15), ("decision_p99_us", 15),
)  # fmt: skip


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["  ".join(name.rjust(width) for name, width in COLUMNS)]
    for r in rows:
        lines.append("  ".join(str(r.get(name, "")).rjust(width) for name, width in COLUMNS))
    return "\n".join(lines)


def bench(seeds: list[int], out: Callable[[str], object] = print) -> list[dict[str, Any]]:
    """Every scenario and policy over ``seeds``; S5 (500 agents) for decision latency over a
    one-hour day with the adaptive policies."""
    jobs: list[tuple[str, str, int, float | None]] = [
        (sc, pol, seed, None)
        for sc in ("S1", "S2", "S3", "S4")
        for pol in POLICIES
        for seed in seeds
    ]
    jobs += [("S5", pol, seeds[0], 1.0) for pol in ("progressive", "predictive", "oracle")]
    out(f"simulating {len(jobs)} seed-days on {min(len(jobs), os.cpu_count() or 1)} processes...")
    rows = table(run_days(jobs))
    out(render(rows))
    return rows


__all__ = ["HOUR", "bench", "parse_seeds", "render", "run_days", "table"]
