"""ACD benchmark: N agents on real SIP phones, callers arriving at a fixed rate for a fixed
time, through app_queue and telephonist's redirects and watcher.

Reports calls offered, answered by an agent, redirected (by reason), lost (offered minus the
others: must be 0), and the delay from each AMI queue event to the watcher's state change.
A command that prints numbers, not a test.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.bench.ivr import _pct, _wait_healthy
from telephonist.bench.simcall import dtmf_scenario
from telephonist.core.ami import AmiClient
from telephonist.core.http_client import api
from telephonist.core.models import QueueRedirect
from telephonist.core.settings import Settings, load_settings
from telephonist.ivr.definitions import load_definitions

AGENT_PORT = 29500
SIPP = Path(__file__).parent / "sipp"


def _centre(agents: int) -> str:
    lines = [
        "name: acd-bench",
        "lines:",
        '  - {number: "400", name: bench-queue, route: queue, queue: bench, answer: on_pickup}',
        "queues:",
        "  - name: bench",
        "    strategy: leastrecent",
        "    timeout: 10",
        "    retry: 1",
        "    maxlen: 30",
        "    max_wait: 20",
        "    refuse_join_when: [unavailable, invalid, unknown]",
        "    leave_when: []",
        "    redirects:",
        '      {overflow: "voicemail:100", empty: "voicemail:100", no_answer: "voicemail:100"}',
        'mailboxes: [{box: "100"}]',
        "agents:",
    ]
    for i in range(agents):
        ext = 3001 + i
        contact = f"sip:127.0.0.1:{AGENT_PORT}"  # one sipp answers for every agent
        lines.append(
            f'  - {{id: a{i}, extension: "{ext}", contact: "{contact}", skills: {{bench: 0}}}}'
        )
    return "\n".join(lines) + "\n"


def _config(work: Path, agents: int) -> Path:
    (work / "centre.yaml").write_text(_centre(agents))
    config = work / "telephonist.toml"
    config.write_text(
        f"""data_dir = "{work / "data"}"
centre_file = "{work / "centre.yaml"}"
log_level = "WARNING"
[pbx]
instance = "acdbench"
ami_port = 45038
ari_port = 48088
sip_port = 45060
rtp_start = 50000
rtp_end = 59999
[agi]
port = 44573
[http]
port = 48080
[mqtt]
node = "acdbench"
"""
    )
    return config


async def run(
    agents: int = 10, rate: float = 2.0, seconds: int = 30, talk_ms: int = 4000, out: Any = print
) -> dict[str, Any]:
    work = Path(tempfile.gettempdir()) / "telephonist-bench-acd"
    work.mkdir(parents=True, exist_ok=True)
    config = _config(work, agents)
    stale: Settings = load_settings(config)
    await Sandbox(stale, load_definitions(stale).centre).down()
    shutil.rmtree(work / "data", ignore_errors=True)
    settings = load_settings(config)
    sandbox = Sandbox(settings, load_definitions(settings).centre)
    await sandbox.up(log=out)
    uas = subprocess.Popen(
        [
            "sipp", "-sf", str(SIPP / "agent_answers.xml"),
            "-i", "127.0.0.1", "-p", str(AGENT_PORT), "-mp", str(AGENT_PORT + 20000), "-nostdin",
            "-max_socket", "5000",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    serve = subprocess.Popen(
        [sys.executable, "-m", "telephonist.cli.main", "--config", str(config), "serve"],
        stdout=(work / "serve.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    ami = AmiClient(
        settings.pbx.host, settings.pbx.ami_port, settings.pbx.ami_user, settings.ami_secret
    )
    connects: list[str] = []
    spans: list[tuple[float, int]] = []  # (+1 at connect, -1 at complete): calls in progress
    ami.on_event("AgentConnect", lambda e: connects.append(e.get("Uniqueid", "")))
    ami.on_event("AgentConnect", lambda e: spans.append((float(e.get("Timestamp", 0)), 1)))
    ami.on_event("AgentComplete", lambda e: spans.append((float(e.get("Timestamp", 0)), -1)))
    ami_task = asyncio.create_task(ami.run())
    from telephonist.core.storage import Store

    store = Store(settings.database_url)
    try:
        await _wait_healthy(settings)
        await ami.link.wait_up(10)
        for i in range(agents):
            await ami.send(
                {
                    "Action": "QueueAdd",
                    "Queue": "bench",
                    "Interface": f"PJSIP/{3001 + i}",
                    "MemberName": f"a{i}",
                },
                as_list=False,
            )
        calls = max(1, int(rate * seconds))
        scenario = dtmf_scenario(work / "caller.xml", [], talk_ms)
        out(
            f"ACD benchmark: {agents} agents, {rate:g} calls/s for {seconds}s "
            f"({calls} calls), talk {talk_ms / 1000:g}s"
        )
        cmd = [
            "sipp", f"127.0.0.1:{settings.pbx.sip_port}", "-sf", str(scenario), "-s", "400",
            "-key", "caller", "5599000", "-m", str(calls), "-r", str(rate), "-l", str(calls),
            "-i", "127.0.0.1",
            "-p", "29000", "-mp", "39000", "-timeout", f"{seconds + 120}s", "-nostdin",
        ]  # fmt: skip
        proc = await asyncio.to_thread(
            subprocess.run, cmd, capture_output=True, text=True, check=False
        )
        await asyncio.sleep(3)
        async with store.sessions() as s:
            rows = await s.execute(
                select(col(QueueRedirect.reason), func.count()).group_by(col(QueueRedirect.reason))
            )
            redirected = {reason: int(n) for reason, n in rows.all()}
        state = api(settings, "/acd/state?delays=1")
        delays = [float(x) for x in state.get("delays_ms", [])]
        answered = len(set(connects))
        busiest = current = 0
        for _, step in sorted(spans):
            current += step
            busiest = max(busiest, current)
        lost = calls - answered - sum(redirected.values())
        return {
            "offered": calls,
            "answered": answered,
            "redirected": redirected,
            "lost": lost,
            "max_simultaneous_agent_calls": busiest,
            "sipp_failed": _failed(proc.stdout),
            "state_delay_ms": {"p50": _pct(delays, 50), "p99": _pct(delays, 99), "n": len(delays)},
        }
    finally:
        ami_task.cancel()
        await asyncio.gather(ami_task, return_exceptions=True)
        await store.close()
        serve.terminate()
        serve.wait(15)
        uas.kill()
        uas.wait()
        await sandbox.down()


def _failed(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.strip().startswith("Failed call"):
            return int(line.split("|")[2].split()[0])
    return -1
