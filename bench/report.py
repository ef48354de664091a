"""``make bench-report``: the reports on a synthetic year (prints numbers).

A year of a centre (``calls`` queue visits over 5 queues and 40 agents, business hours,
about 85 % answered, 10 % abandoned, the rest timed out or left for a callback; callers drawn
from a population so that some call again; a login and two pauses per agent per working day;
the queue_log lines the visits come from) is written in bulk to a new SQLite database and a
new PostgreSQL database, then each report is timed for one month and for the whole year. The
process's resident memory is read after each report: it must stay flat in the number of calls
(the aggregates run in SQL).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from sqlalchemy import insert, text

from telephonist.core.centre import Centre
from telephonist.core.hours import local_place
from telephonist.core.models import AgentLogin, AgentPause, QueueCall, QueueLogEntry
from telephonist.core.storage import Store
from telephonist.reports import abandoned, agents, fcr, kpi

YEAR = 2025
QUEUES = ("support", "sales", "billing", "tech", "vip")
AGENTS = tuple(f"a{i:02d}" for i in range(40))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def centre() -> Centre:
    return Centre.model_validate({
        "timezone": "Europe/Paris",
        "queues": [{"name": q, "service_level": 20, "wrapup": 10} for q in QUEUES],
        "agents": [{"id": a, "name": a.upper(), "extension": f"{3000 + i}",
                    "skills": {q: 0 for q in QUEUES}} for i, a in enumerate(AGENTS)],
    })  # fmt: skip


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def synthetic(calls: int, seed: int = 0) -> dict[str, Any]:
    """Column arrays for ``calls`` visits over the year (numpy, deterministic)."""
    rng = np.random.default_rng(seed)
    zone = ZoneInfo("Europe/Paris")
    start = datetime(YEAR, 1, 1, tzinfo=zone)
    workdays = [d for d in range(365) if (start + timedelta(days=d)).weekday() < 5]
    day = rng.choice(workdays, calls)
    second = rng.integers(8 * 3600, 19 * 3600, calls)
    order = np.lexsort((second, day))
    day, second = day[order], second[order]
    outcome = rng.choice(["answered", "abandoned", "timeout", "key"], calls,
                         p=[0.85, 0.10, 0.03, 0.02])  # fmt: skip
    wait = np.minimum(rng.exponential(25, calls), 600).astype(int)
    talk = np.where(outcome == "answered", rng.lognormal(5.2, 0.6, calls).astype(int), 0)
    caller = rng.integers(0, max(1, calls // 5), calls)
    # Each visit's caller's next visit (queue_calls.next_at, as reports/facts.py keeps it).
    at = day.astype(np.int64) * 86400 + second
    by_caller = np.lexsort((at, caller))
    following = np.full(calls, -1)
    same = (caller[by_caller][1:] == caller[by_caller][:-1]) & (
        at[by_caller][1:] > at[by_caller][:-1]
    )
    following[by_caller[:-1][same]] = by_caller[1:][same]
    return {
        "day": day, "second": second, "outcome": outcome, "wait": wait, "talk": talk,
        "queue": rng.choice(QUEUES, calls, p=[0.4, 0.25, 0.15, 0.15, 0.05]),
        "agent": rng.choice(AGENTS, calls),
        "caller": caller, "next": following,
        "position": rng.integers(1, 8, calls),
        "start": start,
    }  # fmt: skip


async def fill(store: Store, data: dict[str, Any], chunk: int = 20000) -> None:
    start: datetime = data["start"]
    zone = start.tzinfo
    assert isinstance(zone, ZoneInfo)
    n = len(data["day"])
    for lo in range(0, n, chunk):
        visits, lines = [], []
        for i in range(lo, min(n, lo + chunk)):
            entered = (
                start + timedelta(days=int(data["day"][i]), seconds=int(data["second"][i]))
            ).astimezone(UTC)
            local_day, minute, week = local_place(entered, zone)
            outcome, wait = str(data["outcome"][i]), int(data["wait"][i])
            answered = outcome == "answered"
            agent = str(data["agent"][i]).upper() if answered else ""
            callid = f"y{i}"
            queue = str(data["queue"][i])
            left = entered + timedelta(seconds=wait)
            ended = left + timedelta(seconds=int(data["talk"][i])) if answered else left
            caller = f"+3361{int(data['caller'][i]):07d}"
            j = int(data["next"][i])
            next_at = None if j < 0 else (
                start + timedelta(days=int(data["day"][j]), seconds=int(data["second"][j]))
            ).astimezone(UTC)  # fmt: skip
            visits.append({
                "callid": callid, "queue": queue, "kind": "inbound", "caller": caller,
                "entered_at": entered, "local_day": local_day, "local_minute": minute,
                "local_week": week, "position": int(data["position"][i]), "outcome": outcome,
                "agent": agent, "wait": wait, "left_position": 0 if answered else 1,
                "answered_at": left if answered else None, "ended_at": ended,
                "talk": int(data["talk"][i]), "ended_by": "caller" if answered else "",
                "wrap": 10 if answered else 0, "next_at": next_at,
            })  # fmt: skip
            base = {"callid": callid, "queue": queue, "data4": "", "data5": ""}
            lines.append({**base, "time": entered, "agent": "NONE", "event": "ENTERQUEUE",
                          "data1": "", "data2": caller, "data3": "1"})  # fmt: skip
            if answered:
                lines.append(
                    {
                        **base,
                        "time": left,
                        "agent": agent,
                        "event": "CONNECT",
                        "data1": str(wait),
                        "data2": "",
                        "data3": "1",
                    }
                )
                lines.append(
                    {
                        **base,
                        "time": ended,
                        "agent": agent,
                        "event": "COMPLETECALLER",
                        "data1": str(wait),
                        "data2": str(data["talk"][i]),
                        "data3": "1",
                    }
                )
            else:
                lines.append(
                    {
                        **base,
                        "time": left,
                        "agent": "NONE",
                        "event": "ABANDON",
                        "data1": "1",
                        "data2": "1",
                        "data3": str(wait),
                    }
                )
            if i % 10 == 0:
                lines.append({**base, "time": entered, "agent": agent or "A00",
                              "event": "RINGNOANSWER", "data1": "15000", "data2": "",
                              "data3": ""})  # fmt: skip
        async with store.unit_of_work() as uow:
            await uow.session.execute(insert(QueueCall), visits)
            await uow.session.execute(insert(QueueLogEntry), lines)
    logins, pauses = [], []
    for d in range(365):
        day0 = start + timedelta(days=d)
        if day0.weekday() >= 5:
            continue
        for a in AGENTS:
            t_in = (day0 + timedelta(hours=8)).astimezone(UTC)
            logins.append(
                {
                    "agent": a,
                    "queues": ",".join(QUEUES),
                    "logged_in_at": t_in,
                    "logged_out_at": t_in + timedelta(hours=9),
                }
            )
            for h, reason in ((12, "lunch"), (16, "break")):
                p = (day0 + timedelta(hours=h)).astimezone(UTC)
                pauses.append(
                    {
                        "agent": a,
                        "reason": reason,
                        "started_at": p,
                        "ended_at": p + timedelta(minutes=30 if h == 12 else 10),
                    }
                )
    async with store.unit_of_work() as uow:
        await uow.session.execute(insert(AgentLogin), logins)
        await uow.session.execute(insert(AgentPause), pauses)


@dataclass
class Timing:
    db: str
    report: str
    span: str
    seconds: float
    rss_mb: float


async def time_reports(store: Store, db: str) -> list[Timing]:
    c = centre()
    spans = {"month": kpi.Period(date(YEAR, 6, 1), date(YEAR, 6, 30), "day"),
             "year": kpi.Period(date(YEAR, 1, 1), date(YEAR, 12, 31), "month")}  # fmt: skip
    reports = {
        "queues": lambda p: kpi.queues(store, c, p),
        "queues/15min": lambda p: kpi.queues(store, c, kpi.Period(p.first, p.last, "15")),
        "agents": lambda p: agents.agents(store, c, p),
        "fcr": lambda p: fcr.fcr(store, c, p),
        "abandoned": lambda p: abandoned.abandoned(store, c, p),
    }
    out = []
    for name, run in reports.items():
        for span, period in spans.items():
            t = time.perf_counter()
            await run(period)
            out.append(Timing(db, name, span, time.perf_counter() - t, rss_mb()))
    return out


async def bench(calls: int, dbs: tuple[str, ...], work: Path) -> list[Timing]:
    data = synthetic(calls)
    timings: list[Timing] = []
    for db in dbs:
        if db == "sqlite":
            store = Store(f"sqlite+aiosqlite:///{work / 'year.db'}")
            await store.migrate()
            t = time.perf_counter()
            await fill(store, data)
            print(f"sqlite: {calls} visits written in {time.perf_counter() - t:.1f}s")
            timings += await time_reports(store, db)
            await store.close()
            continue
        name = f"telephonist_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        store = Store(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        try:
            await store.migrate()
            t = time.perf_counter()
            await fill(store, data)
            async with store.sessions() as s:
                await s.execute(text("ANALYZE"))
            print(f"postgres: {calls} visits written in {time.perf_counter() - t:.1f}s")
            timings += await time_reports(store, db)
        finally:
            await store.close()
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()
    return timings


def main(calls: int = 1_000_000, dbs: tuple[str, ...] = ("sqlite", "postgres")) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        before = rss_mb()
        timings = asyncio.run(bench(calls, dbs, Path(tmp)))
    print(f"\n{calls} calls over {YEAR} (5 queues, 40 agents); RSS before: {before:.0f} MB")
    print(f"{'database':<10} {'report':<14} {'span':<6} {'seconds':>8} {'RSS MB':>8}")
    for t in timings:
        print(f"{t.db:<10} {t.report:<14} {t.span:<6} {t.seconds:>8.3f} {t.rss_mb:>8.0f}")
