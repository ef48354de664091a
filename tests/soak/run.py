"""``make soak``: serve under mixed traffic for a bounded time while faults are injected on a
schedule; prints what happened to every call, callback and event (numbers, not a verdict
hidden in a test). Not part of ``make test``.

Traffic (real SIP callers from sipp, real agent phones, the real broker):
- IVR callers on line 200 pressing 7 (a prompt, then goodbye), one every 4 s;
- queue callers on line 301 (rr-q), answered by two agents' phones, one every 6 s;
- callbacks (``callback add``) in cbq, taken by Hank and answered by a customer behind the
  trunk, one every 40 s.

Faults, at fractions of the run: Asterisk killed and started again (15 %), the broker stopped
for a minute (30 %, shorter in short runs), serve killed and restarted (50 %), a 50,000-row
contact import (65 %), the menu file replaced by a Latin-1 one for 20 s (80 %).

At the end (after the last calls have settled) it prints calls offered, handled, stranded (a
call record never closed, a callback left open) and with no record (placed while serve was
down: the dialplan fallback took them), events stored vs published (lost, doubled), rows
doubled, and the longest time /healthz was not 200. Exit 1 if anything was stranded, lost or
doubled.

    python -m tests.soak.run --minutes 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.bench.contacts_import import write_list
from telephonist.core.models import Call, CallbackAttempt, CallbackRequest, OutboxEvent
from telephonist.core.settings import load_settings
from telephonist.core.storage import Store
from telephonist.ivr.definitions import load_definitions
from tests.scenarios.harness import (
    AgentPhone,
    Broker,
    Collector,
    Serve,
    dtmf_scenario,
    sipp_call,
    telephonist,
)

PORTS = {"ami": 35038, "ari": 38088, "sip": 35060, "agi": 34573, "http": 38080, "mqtt": 38830}
CENTRE = Path(__file__).parents[1] / "scenarios" / "centre"
DAVE, ERIN, HANK, CUSTOMERS = 25504, 25505, 25508, 25410


@dataclass
class Tally:
    offered: dict[str, list[str]] = field(default_factory=lambda: {"ivr": [], "queue": []})
    sipp_failed: int = 0
    callbacks: list[int] = field(default_factory=list)
    health: list[tuple[float, bool]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    serve_down: list[tuple[float, float]] = field(default_factory=list)


def prepare(work: Path) -> Path:
    """A fresh work folder with the centre and the config; returns the config file."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return config(work)


def config(work: Path) -> Path:
    shutil.copytree(CENTRE, work / "centre")
    path = work / "telephonist.toml"
    path.write_text(
        f"""
data_dir = "{work / "data"}"
centre_file = "{work / "centre" / "centre.yaml"}"
[pbx]
instance = "soak"
ami_port = {PORTS["ami"]}
ari_port = {PORTS["ari"]}
sip_port = {PORTS["sip"]}
rtp_start = 33000
rtp_end = 33999
[agi]
port = {PORTS["agi"]}
[http]
port = {PORTS["http"]}
[mqtt]
port = {PORTS["mqtt"]}
node = "soak"
"""
    )
    return path


async def caller(
    kind: str, line: str, keys: list[tuple[int, str]], hold: int, every: float,
    until: float, tally: Tally, sip: int, work: Path,
) -> None:  # fmt: skip
    n = 0
    async with asyncio.TaskGroup() as calls:  # owns every call, waits for the last ones
        while time.monotonic() < until:
            number = f"55{'8' if kind == 'ivr' else '9'}{n:05d}"
            n += 1
            tally.offered[kind].append(number)
            scenario = dtmf_scenario(work / f"{kind}-{number}.xml", keys, hold)
            calls.create_task(_one_call(sip, line, number, scenario, tally), name=number)
            await asyncio.sleep(every)


async def _one_call(sip: int, line: str, number: str, scenario: Path, tally: Tally) -> None:
    proc = await asyncio.to_thread(sipp_call, sip, line, number, scenario=str(scenario))
    if proc.returncode != 0:
        tally.sipp_failed += 1


async def callbacks(conf: Path, every: float, until: float, tally: Tally) -> None:
    n = 0
    while time.monotonic() < until:
        out = await asyncio.to_thread(
            telephonist, conf, "callback", "add", f"5577{n:04d}", "--queue", "cbq"
        )
        n += 1
        if out.returncode == 0:
            tally.callbacks.append(int(out.stdout.split()[1].rstrip(":")))
        await asyncio.sleep(every)


async def health(serve: Serve, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        h = await asyncio.to_thread(serve.health)
        tally.health.append((time.monotonic(), h is not None and h["status"] == "ok"))
        await asyncio.sleep(0.5)


async def faults(
    minutes: float, start: float, pbx: Sandbox, broker: Broker, serve: Serve, conf: Path,
    work: Path, tally: Tally,
) -> None:  # fmt: skip
    total = minutes * 60

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, start + fraction * total - time.monotonic()))

    await at(0.15)
    tally.faults.append((time.monotonic(), "Asterisk killed and started again"))
    pid = pbx._read_pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    await pbx.up(log=lambda _m: None)
    await at(0.30)
    outage = min(60.0, total * 0.1)
    tally.faults.append((time.monotonic(), f"broker stopped for {outage:.0f} s"))
    broker.stop()
    await asyncio.sleep(outage)
    broker.start()
    await at(0.50)
    tally.faults.append((time.monotonic(), "serve killed and restarted"))
    down = time.monotonic()
    serve.kill()
    await asyncio.sleep(3)
    await asyncio.to_thread(serve.start)
    tally.serve_down.append((down, time.monotonic()))
    await at(0.65)
    tally.faults.append((time.monotonic(), "50,000-row contact import"))
    big = work / "big.csv"
    await asyncio.to_thread(write_list, big, 50_000)
    await asyncio.to_thread(
        telephonist, conf, "contacts", "import", str(big), "--list", "soak", "--region", "FR"
    )
    await at(0.80)
    tally.faults.append((time.monotonic(), "menu file not UTF-8 for 20 s"))
    menus = work / "centre" / "menus.yaml"
    good = menus.read_bytes()
    menus.write_bytes(good.replace(b"greeting: [beep]", b"greeting: [b\xe9ep]", 1))
    await asyncio.sleep(20)
    menus.write_bytes(good)


async def settle(store: Store, tally: Tally, timeout: float) -> None:
    """Wait (bounded) for the last callbacks to finish and the outbox to drain."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with store.sessions() as s:
            open_ = (
                await s.execute(
                    select(func.count())
                    .select_from(CallbackRequest)
                    .where(col(CallbackRequest.id).in_(tally.callbacks))
                    .where(col(CallbackRequest.state).in_(("pending", "queued", "connected")))
                )
            ).scalar_one()
        if open_ == 0 and await store.count_pending() == 0:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(3)  # the last events reach the collector


def longest_outage(samples: list[tuple[float, bool]]) -> float:
    longest, since = 0.0, None
    for t, ok in samples:
        if not ok and since is None:
            since = t
        elif ok and since is not None:
            longest, since = max(longest, t - since), None
    if since is not None and samples:
        longest = max(longest, samples[-1][0] - since)
    return longest


async def report(store: Store, tally: Tally, events: Collector, first_event: int) -> int:
    async with store.sessions() as s:
        numbers = tally.offered["ivr"] + tally.offered["queue"]
        calls = list(
            (await s.execute(select(Call).where(col(Call.caller_number).in_(numbers)))).scalars()
        )
        cbs = list(
            (
                await s.execute(
                    select(CallbackRequest).where(col(CallbackRequest.id).in_(tally.callbacks))
                )
            ).scalars()
        )
        tries_doubled = (
            await s.execute(
                select(func.count())
                .select_from(CallbackAttempt)
                .group_by(col(CallbackAttempt.callback_id), col(CallbackAttempt.attempt))
                .having(func.count() > 1)
            )
        ).all()
        stored = list(
            (
                await s.execute(
                    select(col(OutboxEvent.id)).where(col(OutboxEvent.id) >= first_event)
                )
            ).scalars()
        )
    by_number: dict[str, list[Call]] = {}
    for c in calls:
        by_number.setdefault(c.caller_number, []).append(c)
    handled = sum(1 for n in numbers if any(c.ended_at is not None for c in by_number.get(n, [])))
    stranded_calls = sum(1 for c in calls if c.ended_at is None)
    no_record = sum(1 for n in numbers if n not in by_number)
    doubled_calls = sum(1 for v in by_number.values() if len(v) > 1)
    open_cbs = [cb.id for cb in cbs if cb.state not in ("done", "failed", "cancelled")]
    seqs = [m[1]["seq"] for m in events.messages]
    published = set(seqs)
    lost = len(set(stored) - published)
    doubled_events = len(seqs) - len(published)
    serve_down = sum(b - a for a, b in tally.serve_down)
    lines = [
        ("calls offered (IVR / queue)", f"{len(numbers)} ({len(tally.offered['ivr'])} / "
                                        f"{len(tally.offered['queue'])})"),
        ("calls handled (record closed)", str(handled)),
        ("calls stranded (record never closed)", str(stranded_calls)),
        ("calls with no record (serve down)", str(no_record)),
        ("sipp calls that failed", str(tally.sipp_failed)),
        ("callbacks added / done / failed / open",
         f"{len(cbs)} / {sum(c.state == 'done' for c in cbs)} / "
         f"{sum(c.state == 'failed' for c in cbs)} / {len(open_cbs)}"),
        ("events stored / published", f"{len(stored)} / {len(published & set(stored))}"),
        ("events lost", str(lost)),
        ("events delivered twice (dropped by seq)", str(doubled_events)),
        ("rows doubled (calls, callback tries)", f"{doubled_calls}, {len(tries_doubled)}"),
        ("longest /healthz not 200", f"{longest_outage(tally.health):.1f} s"),
        ("serve was down (killed on purpose)", f"{serve_down:.1f} s"),
    ]  # fmt: skip
    for t, what in tally.faults:
        print(f"  fault at +{t - tally.health[0][0]:.0f} s: {what}")
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    bad = stranded_calls + len(open_cbs) + lost + doubled_calls + len(tries_doubled)
    print("target (0 stranded, 0 lost, 0 doubled):", "met" if bad == 0 else "MISSED")
    return 0 if bad == 0 else 1


async def main(minutes: float) -> int:
    work = Path("/tmp/telephonist-soak")
    conf = await asyncio.to_thread(prepare, work)
    settings = load_settings(conf)
    pbx = Sandbox(settings, load_definitions(settings).centre)
    await pbx.down()
    paths = pbx.paths()
    pbx.host_path(paths.log).joinpath("queue_log").unlink(missing_ok=True)
    await pbx.up(log=lambda _m: None)
    broker = Broker(PORTS["mqtt"], work / "mosquitto")
    broker.start()
    serve = Serve(conf, PORTS["http"], work / "serve.log")
    phones = [AgentPhone(p, work, calls=100_000, timeout=0) for p in (DAVE, ERIN, HANK)] + [
        AgentPhone(CUSTOMERS, work, scenario="customer.xml", calls=100_000, timeout=0)
    ]
    store = Store(settings.database_url)
    tally = Tally()
    try:
        serve.start()
        for p in phones:
            p.start()
        for agent in ("dave", "erin", "hank"):
            telephonist(conf, "agent", "login", agent)
        async with store.sessions() as s:
            first_event = int((await s.execute(select(func.max(OutboxEvent.id)))).scalar() or 0) + 1
        async with Collector(PORTS["mqtt"], "telephonist/soak/#", "soak-collector") as events:
            start = time.monotonic()
            until = start + minutes * 60
            sip = PORTS["sip"]
            async with asyncio.TaskGroup() as tg:
                tg.create_task(health(serve, until + 40, tally))
                tg.create_task(
                    caller("ivr", "200", [(1200, "7")], 4000, 4, until, tally, sip, work)
                )
                tg.create_task(caller("queue", "301", [], 5000, 6, until, tally, sip, work))
                tg.create_task(callbacks(conf, 40, until, tally))
                tg.create_task(faults(minutes, start, pbx, broker, serve, conf, work, tally))
            print(f"soak over after {time.monotonic() - start:.0f} s (traffic {minutes} min)")
            await settle(store, tally, 90)
            code = await report(store, tally, events, first_event)
    finally:
        for p in phones:
            p.stop()
        await store.close()
        if serve.proc is not None:
            serve.stop()
        broker.stop()
        await pbx.down()
    print(f"serve's log: {work / 'serve.log'}")
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    sys.exit(asyncio.run(main(parser.parse_args().minutes)))
