"""IVR benchmark: telephonist's IVR against the same menu in plain dialplan, in one run.

Both menus: answer, play a prompt, take one digit (real RFC 4733 from sipp), play the next
prompt and hang up. The call rate steps up until a call fails or is left unhandled (sipp
counts a call as failed if the PBX has not hung up within 5 s of the digit; telephonist's
calls must also be in the database as routed). Then, at half the best rate, the time from the
digit to the start of the next prompt: for telephonist from ARI (Asterisk's DTMF timestamp to
the playback started), for the dialplan from AMI (DTMFEnd to the Playback step).

This is a command that prints numbers, not a test: the machine is shared and noisy, so
compare the two ratios measured in one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.bench.simcall import dtmf_scenario
from telephonist.core.ami import AmiClient
from telephonist.core.http_client import api
from telephonist.core.models import Call
from telephonist.core.settings import Settings, load_settings
from telephonist.core.storage import Store
from telephonist.ivr.definitions import load_definitions

RATES = (10, 20, 30, 40, 50, 60, 80, 100, 130, 160, 200, 250, 300, 350, 400)
STEP_SECONDS = 10  # long enough that a backlog cannot drain inside a step

CENTRE = """\
name: bench
ivr: menus.yaml
queues: [{name: bench}]
"""
MENUS = """\
entries:
  - {number: "300", name: bench-line, menu: bench}
menus:
  bench:
    greeting: [beep]
    timeout: 5
    retries: 0
    options:
      "1": {play: [beep]}
    on_failure: hangup
"""
# The equivalent menu in plain dialplan (added to the shipped extensions.conf).
PLAIN = """\
{% include "shipped/extensions.conf.j2" %}

[from-callers]
exten => 301,1,Goto(bench-plain,301,1)

[bench-plain]
exten => 301,1,Answer()
 same => n,Read(DIGIT,beep,1,,1,5)
 same => n,GotoIf($["${DIGIT}" = "1"]?one)
 same => n,Hangup()
 same => n(one),Playback(beep)
 same => n,Hangup()
"""


@dataclass
class StepResult:
    rate: int
    calls: int
    ok: int
    handled: int

    @property
    def clean(self) -> bool:
        return self.ok == self.calls and self.handled == self.calls


def _config(work: Path) -> Path:
    (work / "centre").mkdir(parents=True, exist_ok=True)
    (work / "centre" / "centre.yaml").write_text(CENTRE)
    (work / "centre" / "menus.yaml").write_text(MENUS)
    (work / "templates").mkdir(exist_ok=True)
    (work / "templates" / "extensions.conf.j2").write_text(PLAIN)
    config = work / "telephonist.toml"
    config.write_text(
        f"""data_dir = "{work / "data"}"
centre_file = "{work / "centre" / "centre.yaml"}"
templates_override_dir = "{work / "templates"}"
log_level = "WARNING"
[pbx]
instance = "bench"
ami_port = 35038
ari_port = 38088
sip_port = 35060
rtp_start = 40000
rtp_end = 49999
[agi]
port = 34573
[http]
port = 38080
[mqtt]
node = "bench"
"""
    )
    return config


def _sipp(
    sip_port: int, number: str, caller: str, rate: int, calls: int, scenario: Path, port: int
) -> subprocess.CompletedProcess[str]:
    cmd = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-s", number, "-key", "caller",
        caller, "-m", str(calls), "-r", str(rate), "-i", "127.0.0.1", "-p", str(port),
        "-mp", str(port + 10000), "-timeout", f"{STEP_SECONDS + 30}s", "-timeout_error",
        "-nostdin", "-max_socket", "10000",
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=STEP_SECONDS + 60
    )


def _successful(proc: subprocess.CompletedProcess[str]) -> int:
    for line in proc.stdout.splitlines():
        if line.strip().startswith("Successful call"):
            return int(line.split("|")[2].split()[0])
    return 0


async def _handled(store: Store, caller: str) -> int:
    async with store.sessions() as s:
        result = await s.execute(
            select(func.count()).where(
                col(Call.caller_number) == caller, col(Call.outcome) == "routed:play:beep"
            )
        )
        return int(result.scalar_one())


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().split(") ", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(out: Any = print, rates: tuple[int, ...] = RATES) -> dict[str, Any]:
    # A fixed folder: a bench interrupted earlier left its PID file here, so its PBX is found
    # and stopped instead of blocking the ports.
    work = Path(tempfile.gettempdir()) / "telephonist-bench-ivr"
    config = _config(work)
    stale: Settings = load_settings(config)
    await Sandbox(stale, load_definitions(stale).centre).down()  # left by an interrupted run
    shutil.rmtree(work / "data", ignore_errors=True)  # counts are per run
    settings: Settings = load_settings(config)
    definitions = load_definitions(settings)
    sandbox = Sandbox(settings, definitions.centre)
    # answer, press 1 after the greeting started; failed unless the PBX hangs up within 5 s
    scenario = dtmf_scenario(work / "bench.xml", [(600, "1")], 5000, pbx_must_hang_up=True)
    await sandbox.up(log=out)
    serve = subprocess.Popen(
        [sys.executable, "-m", "telephonist.cli.main", "--config", str(config), "serve"],
        stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    store = Store(settings.database_url)
    ami = AmiClient(
        settings.pbx.host, settings.pbx.ami_port, settings.pbx.ami_user, settings.ami_secret
    )
    ami_events: list[dict[str, str]] = []
    ami.on_event("DTMFEnd", lambda e: ami_events.append(dict(e)))
    ami.on_event(
        "Newexten",
        lambda e: ami_events.append(dict(e)) if e.get("Application") == "Playback" else None,
    )
    ami_task = asyncio.create_task(ami.run())
    results: dict[str, Any] = {}
    try:
        await _wait_healthy(settings)
        await ami.link.wait_up(10)
        port = 27000
        best: dict[str, int] = {}
        for label, number in (("telephonist", "300"), ("dialplan", "301")):
            best[label] = 0
            for rate in rates:
                calls = max(20, rate * STEP_SECONDS)
                caller = f"9{len(best)}{rate:04d}"
                port += 10
                proc = await asyncio.to_thread(
                    _sipp, settings.pbx.sip_port, number, caller, rate, calls, scenario, port
                )
                ok = _successful(proc)
                handled = ok
                if label == "telephonist":
                    # the last calls' records are written just after the PBX hung up
                    for _ in range(30):
                        handled = await _handled(store, caller)
                        if handled >= ok:
                            break
                        await asyncio.sleep(0.2)
                step = StepResult(rate, calls, ok, handled)
                out(f"  {label:<11} {rate:>4} calls/s: {ok}/{calls} successful, {handled} handled")
                if not step.clean:
                    break
                best[label] = rate
                await asyncio.sleep(2)  # let the last calls clear
        results["max_rate"] = best
        ratio = best["telephonist"] / best["dialplan"] if best["dialplan"] else float("nan")
        results["ratio"] = ratio
        # Latency at half telephonist's best rate (both menus at that rate).
        half = max(5, best["telephonist"] // 2)
        _latency_reset(settings)
        ami_events.clear()
        cpu_before = {"serve": _cpu(serve.pid), "asterisk": _cpu(sandbox._read_pid() or 0)}
        for label, number in (("telephonist", "300"), ("dialplan", "301")):
            port += 10
            await asyncio.to_thread(
                _sipp, settings.pbx.sip_port, number, f"8{label[0]}", half, half * 6, scenario, port
            )
        cpu_after = {"serve": _cpu(serve.pid), "asterisk": _cpu(sandbox._read_pid() or 0)}
        ivr_ms = _latency_samples(settings)
        plain_ms = _plain_latencies(ami_events)
        results["latency_rate"] = half
        results["telephonist_ms"] = {
            "p50": _pct(ivr_ms, 50),
            "p99": _pct(ivr_ms, 99),
            "n": len(ivr_ms),
        }
        results["dialplan_ms"] = {
            "p50": _pct(plain_ms, 50),
            "p99": _pct(plain_ms, 99),
            "n": len(plain_ms),
        }
        results["cpu_seconds"] = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after}
        if ivr_ms:
            results["telephonist_ms"]["mean"] = statistics.fmean(ivr_ms)
    finally:
        ami_task.cancel()
        await asyncio.gather(ami_task, return_exceptions=True)
        await store.close()
        serve.terminate()
        serve.wait(15)
        await sandbox.down()
        shutil.rmtree(work / "data", ignore_errors=True)
    return results


async def _wait_healthy(settings: Settings, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://{settings.http.host}:{settings.http.port}/healthz"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if json.loads(r.read())["status"] == "ok":
                    return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"telephonist serve did not become healthy at {url}")


def _latency_reset(settings: Settings) -> None:
    api(settings, "/ivr/latency/reset", method="POST")


def _latency_samples(settings: Settings) -> list[float]:
    return [float(x) for x in api(settings, "/ivr/latency")["ms"]]


def _plain_latencies(events: list[dict[str, str]]) -> list[float]:
    """DTMFEnd -> the next Playback step on the same channel, in the bench-plain context."""
    last_digit: dict[str, float] = {}
    out = []
    for ev in events:
        channel, ts = ev.get("Channel", ""), float(ev.get("Timestamp", "0") or 0)
        if ev.get("Event") == "DTMFEnd" and ev.get("Direction") == "Received":
            last_digit[channel] = ts
        elif ev.get("Event") == "Newexten" and ev.get("Context") == "bench-plain":
            if channel in last_digit:
                out.append((ts - last_digit.pop(channel)) * 1000)
    return out
