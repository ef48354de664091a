"""A scripted day of real calls for the reports: sipp callers into line 308 (queue report-q),
Rita's phone (a sipp UAS) answering after known ring times and hanging up after known talk
times, callers hanging up at known waits (one a short abandon), one caller calling twice, two
post-call surveys (one answered). The KPIs telephonist reports are then checked against the
script, and a second, independent way: straight from Asterisk's queue_log file."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from telephonist.acd.queue_log import sandbox_queue_log
from telephonist.core.settings import Settings
from tests.scenarios.conftest import AmiWatch
from tests.scenarios.harness import AgentPhone, Serve, dtmf_scenario, sipp_call, telephonist

pytestmark = pytest.mark.pbx

QUEUE = "report-q"
# (caller, Rita's ring ms (None: she never answers), her talk ms before she hangs up, the
#  caller's keys after being answered by the PBX, how long the caller stays at most (ms)).
SCRIPT: list[tuple[str, int | None, int, list[tuple[int, str]], int]] = [
    ("5591001", 2000, 3000, [(6800, "5")], 20000),  # answered, rates the call 5
    ("5591002", None, 0, [], 3000),  # hangs up after 3 s: a short abandon
    ("5591003", None, 0, [], 12000),  # hangs up after 12 s: abandoned
    ("5591004", 1000, 4000, [], 20000),  # answered, asked, presses nothing
    ("5591001", 1000, 2000, [(4800, "3")], 20000),  # calls again, rates 3
]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return telephonist(settings.data_dir.parent / "telephonist.toml", *args)


def from_queue_log(path: Path, callids: set[str]) -> dict[str, Any]:
    """The same figures computed from app_queue's own file, with nothing of telephonist's."""
    enter, connect, complete, abandon, survey = {}, {}, {}, {}, {}
    for line in path.read_text().splitlines():
        _t, callid, queue, _agent, event, *data = line.split("|") + [""] * 5
        if queue != QUEUE or callid not in callids:
            continue
        if event == "ENTERQUEUE":
            enter[callid] = data[1]
        elif event == "CONNECT":
            connect[callid] = int(data[0])
        elif event in ("COMPLETECALLER", "COMPLETEAGENT"):
            complete[callid] = (int(data[1]), event)
        elif event == "ABANDON":
            abandon[callid] = int(data[2])
        elif event == "SURVEY":
            survey[callid] = data[0]
    waits = list(connect.values())
    return {
        "offered": len(enter), "answered": len(connect),
        "abandoned": sum(w >= 5 for w in abandon.values()),
        "short_abandoned": sum(w < 5 for w in abandon.values()),
        "answered_within_sl": sum(w <= 10 for w in waits),
        "asa": round(statistics.mean(waits), 1) if waits else None,
        "max_wait": max([*waits, *abandon.values()]),
        "avg_abandon_time": round(statistics.mean([w for w in abandon.values() if w >= 5]), 1),
        "avg_talk": round(statistics.mean(t for t, _ in complete.values()), 1),
        "talk_total": sum(t for t, _ in complete.values()),
        "ended_by_agent": sum(e == "COMPLETEAGENT" for _, e in complete.values()),
        "scores": sorted(int(s) for s in survey.values() if s),
        "asked": len(survey),
        "callers": enter,
        "abandon_waits": abandon,
    }  # fmt: skip


async def test_a_scripted_day_reports_what_happened_to_the_second(
    serve: Serve, settings: Settings, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    answered = [(ring, talk) for _, ring, talk, _, _ in SCRIPT]
    rows = [f"0;{ring};{talk}" if ring is not None else "3;0;0" for ring, talk in answered]
    inf = tmp_path / "rita.csv"
    inf.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    rita = AgentPhone(25510, tmp_path, scenario="callee.xml", calls=len(SCRIPT), timeout=180,
                      extra=("-inf", str(inf)))  # fmt: skip
    rita.start()
    day = datetime.now(UTC).date()
    try:
        login = await asyncio.to_thread(cli, settings, "agent", "login", "rita")
        assert login.returncode == 0, login.stderr
        await ami_watch.wait_for(
            lambda e: e.get("Event") == "QueueMemberAdded" and e.get("Queue") == QUEUE,
            what="Rita in report-q",
        )
        for n, (caller, _ring, _talk, keys, stay) in enumerate(SCRIPT):
            scenario = dtmf_scenario(tmp_path / f"caller{n}.xml", keys, stay)
            done = await asyncio.to_thread(
                sipp_call, settings.pbx.sip_port, "308", caller, scenario=str(scenario), timeout=60
            )
            assert done.returncode == 0, done.stdout[-1500:]
            await asyncio.sleep(1.5)  # the queue_log line of the call's end, then the next
    finally:
        await asyncio.to_thread(cli, settings, "agent", "logout", "rita")
        rita.stop()
    callids = {
        e["Uniqueid"] for e in ami_watch.events
        if e.get("Event") == "QueueCallerJoin" and e.get("Queue") == QUEUE
    }  # fmt: skip
    assert len(callids) == len(SCRIPT)
    rootfs = settings.pbx.cache_dir / f"rootfs-{settings.pbx.debian_suite}"
    truth = from_queue_log(sandbox_queue_log(rootfs, settings.pbx.instance), callids)
    # The script itself, read back from Asterisk's file (the sipp timings land within a second).
    assert (truth["offered"], truth["answered"], truth["abandoned"], truth["short_abandoned"]) == (
        5, 3, 1, 1)  # fmt: skip
    short, long = sorted(truth["abandon_waits"].values())
    assert 2 <= short <= 3 and 11 <= long <= 12
    assert truth["ended_by_agent"] == 3 and truth["scores"] == [3, 5] and truth["asked"] == 3

    # telephonist's own reports must give exactly the figures of the file.
    span = ["--from", str(day), "--to", str(day + timedelta(days=1)), "--queue", QUEUE]
    await asyncio.sleep(2)  # the last lines ingested
    got = await asyncio.to_thread(cli, settings, "report", "queues", *span, "--interval", "total",
                                  "--json")  # fmt: skip
    assert got.returncode == 0, got.stderr
    (row,) = json.loads(got.stdout)["rows"]
    for key in ("offered", "answered", "abandoned", "short_abandoned", "answered_within_sl",
                "asa", "max_wait", "avg_abandon_time", "avg_talk"):  # fmt: skip
        assert row[key] == truth[key], (key, row[key], truth[key])
    assert row["service_level"] == 1.0  # every answer within 10 s (rings of 2 and 1 s)

    listed = await asyncio.to_thread(cli, settings, "report", "abandoned", *span,
                                     "--include-short", "--json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    abandoned = json.loads(listed.stdout)
    assert [(r["caller"], r["how"]) for r in abandoned] == [
        ("5591002", "short_abandon"), ("5591003", "abandoned")]  # fmt: skip
    assert sorted(r["wait"] for r in abandoned) == sorted(truth["abandon_waits"].values())

    fcr = await asyncio.to_thread(cli, settings, "report", "fcr", *span, "--json")
    assert fcr.returncode == 0, fcr.stderr
    resolution = json.loads(fcr.stdout)
    assert (resolution["answered"], resolution["resolved"]) == (3, 2)
    assert [r["caller"] for r in resolution["repeat_callers"]] == ["5591001"]

    scores = await asyncio.to_thread(cli, settings, "report", "csat", *span, "--json")
    assert scores.returncode == 0, scores.stderr
    (csat,) = json.loads(scores.stdout)
    assert (csat["asked"], csat["answers"], csat["average"], csat["csat"]) == (3, 2, 4.0, 0.5)
    assert csat["scores"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}

    agents = await asyncio.to_thread(cli, settings, "report", "agents", "--from", str(day),
                                     "--to", str(day + timedelta(days=1)), "--agent", "rita",
                                     "--json")  # fmt: skip
    assert agents.returncode == 0, agents.stderr
    (rita_row,) = json.loads(agents.stdout)
    assert rita_row["answered"] == 3 and rita_row["talk"] == truth["talk_total"]
    assert rita_row["logged_in"] > 0

    # The call list: each call as Asterisk recorded it (its channel events), once.
    listed = await asyncio.to_thread(cli, settings, "report", "calls", "--from", str(day),
                                     "--to", str(day + timedelta(days=1)), "--json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    mine = [r for r in json.loads(listed.stdout) if r["call"] in callids]
    assert [(r["caller"], r["source"]) for r in mine] == [(c, "pbx") for c, *_ in SCRIPT]
    for r, (_caller, ring, talk, _keys, stay) in zip(mine, SCRIPT, strict=True):
        assert r["answered"] is not None, r  # the line answers before the queue
        if ring is None:  # the caller gave up waiting: Asterisk names the caller's channel
            assert (r["hung_up_by"], r["queue_outcome"]) == ("caller", "abandoned"), r
            assert abs(r["duration"] - stay / 1000) <= 1, r
        else:  # Rita hung up first (Asterisk names her channel); talk as the queue_log says
            assert (r["hung_up_by"], r["ended_by"], r["hangup"]) == (
                "peer", "agent", "normal clearing"), r  # fmt: skip
            assert r["peer"].startswith("PJSIP/") and abs(r["talk"] - talk / 1000) <= 1, r
            assert r["duration"] >= (ring + talk) / 1000, r
