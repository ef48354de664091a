"""Queue reports from a scripted queue_log (both databases): the lines go through the real
ingester with the visit builder as a hook, then the KPIs are asserted to the second."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.acd.queue_log import QueueLogIngester, parse_line
from telephonist.core.centre import Centre
from telephonist.core.models import (
    AgentLogin,
    AgentPause,
    Call,
    CallbackAttempt,
    CallbackRequest,
    CampaignLead,
    DialAttempt,
    PbxCall,
    QueueCall,
    QueueLogEntry,
    QueueRedirect,
    VoicemailMessage,
    as_utc,
)
from telephonist.core.settings import load_settings
from telephonist.core.storage import Store
from telephonist.reports import abandoned, agents, calls, csat, facts, fcr, kpi, lines

CENTRE = Centre.model_validate(
    {
        "timezone": "Europe/Paris",
        "queues": [
            {"name": "support", "service_level": 20, "wrapup": 5},
            {"name": "sales", "service_level": 30},
        ],
        "lines": [
            {"number": "100", "name": "main", "route": "ivr"},
            {"number": "199", "name": "night", "route": "ivr"},
        ],
        "agents": [
            {"id": "alice", "name": "Alice", "extension": "2001", "skills": {"support": 0}},
            {"id": "bob", "name": "Bob", "extension": "2002", "skills": {"support": 0}},
            {"id": "carol", "name": "Carol", "extension": "2003", "skills": {"sales": 0}},
        ],
    }
)
# 2026-12-03, Paris (UTC+1): 09:00 local is 08:00 UTC.
T0 = int(datetime(2026, 12, 3, 8, 0, tzinfo=UTC).timestamp())


def at(minutes: float) -> int:
    return int(T0 + minutes * 60)


LINES = [
    # c1: answered after 10 s, talks 120 s, the caller hangs up.
    (at(0), "c1", "support", "NONE", "ENTERQUEUE", "", "5550001", "1"),
    (at(0) + 10, "c1", "support", "Alice", "CONNECT", "10", "a1", "4"),
    (at(0) + 130, "c1", "support", "Alice", "COMPLETECALLER", "10", "120", "1"),
    # c2: answered after 30 s (outside SL), talks 60 s, the agent hangs up.
    (at(5), "c2", "support", "NONE", "ENTERQUEUE", "", "5550002", "1"),
    (at(5) + 30, "c2", "support", "Bob", "CONNECT", "30", "b1", "8"),
    (at(5) + 90, "c2", "support", "Bob", "COMPLETEAGENT", "30", "60", "1"),
    # c3: a short abandon (3 s).
    (at(10), "c3", "support", "NONE", "ENTERQUEUE", "", "5550003", "1"),
    (at(10) + 3, "c3", "support", "NONE", "ABANDON", "1", "1", "3"),
    # c4: abandons after 45 s, second in line.
    (at(20), "c4", "support", "NONE", "ENTERQUEUE", "", "5550004", "2"),
    (at(20) + 45, "c4", "support", "NONE", "ABANDON", "2", "2", "45"),
    # c5: waited too long (60 s): overflow.
    (at(40), "c5", "support", "NONE", "ENTERQUEUE", "", "5550005", "1"),
    (at(41), "c5", "support", "NONE", "EXITWITHTIMEOUT", "1", "1", "60"),
    # c6: pressed 1 for a callback after 12 s (10:05).
    (at(65), "c6", "support", "NONE", "ENTERQUEUE", "", "5550006", "1"),
    (at(65) + 12, "c6", "support", "NONE", "EXITWITHKEY", "1", "1", "1", "12"),
    # A callback's placeholder and a dialer call: not offered calls of the queue.
    (at(70), "cb9", "support", "NONE", "CALLBACKPLACED", "9", "1"),
    (at(70), "cb9", "support", "NONE", "ENTERQUEUE", "", "5550009", "1"),
    (at(70) + 5, "cb9", "support", "Alice", "CONNECT", "5", "a2", "2"),
    (at(71), "dial-5", "support", "NONE", "ENTERQUEUE", "", "", "1"),
    # c7: still waiting at the end of the log.
    (at(90), "c7", "support", "NONE", "ENTERQUEUE", "", "5550007", "1"),
    # c8 in sales: answered after 25 s (inside its 30 s), talks 200 s.
    (at(120), "c8", "sales", "NONE", "ENTERQUEUE", "", "5550008", "1"),
    (at(120) + 25, "c8", "sales", "Carol", "CONNECT", "25", "c1", "3"),
    (at(120) + 225, "c8", "sales", "Carol", "COMPLETECALLER", "25", "200", "1"),
    # The next day, 00:30 Paris (23:30 UTC the day before would still be the 3rd in UTC).
    (at(15 * 60 + 30), "c10", "support", "NONE", "ENTERQUEUE", "", "5550010", "1"),
]


async def ingest(store: Store, tmp_path: Path, extra: tuple[tuple[object, ...], ...] = ()) -> None:
    path = tmp_path / "queue_log"
    path.write_text("".join("|".join(map(str, line)) + "\n" for line in [*LINES, *extra]))
    ingester = QueueLogIngester(path, store)
    ingester.hooks.append(facts.QueueCallBuilder(CENTRE))
    await ingester.ingest_once()


async def test_each_visit_is_one_row_exactly_once(store: Store, tmp_path: Path) -> None:
    await ingest(store, tmp_path)
    async with store.sessions() as s:
        rows = {r.callid: r for r in (await s.execute(select(QueueCall))).scalars()}
    assert {k: rows[k].kind for k in ("c1", "cb9", "dial-5")} == {
        "c1": "inbound", "cb9": "callback", "dial-5": "outbound"}  # fmt: skip
    c1, c4, c6, c7 = rows["c1"], rows["c4"], rows["c6"], rows["c7"]
    assert (c1.outcome, c1.agent, c1.wait, c1.talk, c1.ended_by, c1.wrap) == (
        "answered", "Alice", 10, 120, "caller", 5)  # fmt: skip
    assert (c4.outcome, c4.wait, c4.left_position, c4.position) == ("abandoned", 45, 2, 2)
    assert (c6.outcome, c6.wait) == ("key", 12) and c7.outcome == "waiting"
    assert (c1.local_day, c1.local_minute, c1.local_week) == ("2026-12-03", 540, "2026-W49")
    assert rows["c10"].local_day == "2026-12-04" and rows["c10"].local_minute == 30
    # A redirect stored before its local time was (an older version): placed by the rebuild.
    async with store.unit_of_work() as uow:
        uow.session.add(QueueRedirect(at=datetime(2026, 12, 3, 23, 30, tzinfo=UTC),
                                      queue="support", reason="after_hours"))  # fmt: skip
    # The rebuild (after an upgrade, or a new time zone) gives the same rows, once each.
    assert await facts.rebuild(store, CENTRE) == len(rows)
    async with store.sessions() as s:
        (redirect,) = (await s.execute(select(QueueRedirect))).scalars()
    assert (redirect.local_day, redirect.local_minute) == ("2026-12-04", 30)
    async with store.sessions() as s:
        again = {r.callid: r for r in (await s.execute(select(QueueCall))).scalars()}
    assert {k: (v.outcome, v.wait, v.talk) for k, v in again.items()} == {
        k: (v.outcome, v.wait, v.talk) for k, v in rows.items()}  # fmt: skip


async def test_the_queue_report_of_a_day(store: Store, tmp_path: Path) -> None:
    await ingest(store, tmp_path)
    day = date(2026, 12, 3)
    async with store.unit_of_work() as uow:
        when = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
        # 09:30 UTC is 10:30 in Paris: as the ACD stores it.
        for reason, caller in (("empty", "5550010"), ("after_hours", "5550011")):
            uow.session.add(QueueRedirect(at=when, queue="support", reason=reason,
                                          local_day="2026-12-03", local_minute=630,
                                          local_week="2026-W49", caller_number=caller,
                                          destination="voicemail:100"))  # fmt: skip
        # 5550010 left a message in 100 (counted); 5550011 hung up, wrote to 101 instead.
        for n, (box, caller) in enumerate((("100", "5550010"), ("101", "5550011"))):
            uow.session.add(VoicemailMessage(mailbox=box, msg_id=f"m{n}", caller_number=caller,
                                             received_at=when + timedelta(minutes=2)))  # fmt: skip
        uow.session.add(QueueRedirect(at=when, queue="sales", reason="after_hours",
                                      local_day="2026-12-03", local_minute=1200,
                                      local_week="2026-W49"))  # fmt: skip
        uow.session.add(
            CallbackRequest(
                number="5550006",
                queue="support",
                source="queue",
                requested_at=when,
                state="done",
                closed_at=when,
            )
        )
    got = await kpi.queues(store, CENTRE, kpi.Period(day, day, "day"))
    support = next(r for r in got["rows"] if r["queue"] == "support")
    assert support == {
        "queue": "support", "period": "2026-12-03", "offered": 7, "answered": 2,
        "abandoned": 1, "short_abandoned": 1, "timeout": 1, "empty": 0, "left_with_key": 1,
        "answered_within_sl": 1, "service_level": 0.5, "asa": 20.0, "max_wait": 60,
        "p90_wait": 60, "avg_abandon_time": 45.0, "avg_talk": 90.0, "avg_wrap": 5.0,
        "aht": 95.0,
        "redirects": {"empty": 1, "after_hours": 1},
        "callbacks_requested": 1, "callbacks_completed": 1, "voicemails": 1,
    }  # fmt: skip
    sales = next(r for r in got["rows"] if r["queue"] == "sales")
    assert (sales["offered"], sales["service_level"], sales["aht"]) == (1, 1.0, 200.0)
    assert got["formula"].startswith("answered: answered within T / answered")
    assert got["totals"]["support"] == {
        "redirects": {"empty": 1, "after_hours": 1},
        "callbacks_requested": 1,
        "callbacks_completed": 1,
        "voicemails": 1,
    }
    # The other formulas: over answered + abandoned (short ones out), or abandoned after T.
    for formula, expected in (("offered", round(1 / 3, 4)), ("abandoned_after", round(1 / 3, 4))):
        row = (await kpi.queues(store, CENTRE, kpi.Period(day, day, "day"), formula=formula,
                                only=("support",)))["rows"][0]  # fmt: skip
        assert row["service_level"] == expected, formula
    with_short = await kpi.queues(store, CENTRE, kpi.Period(day, day), formula="offered",
                                  include_short=True, only=("support",))  # fmt: skip
    assert with_short["rows"][0]["service_level"] == round(1 / 4, 4)
    # Per hour: 09:00 holds c1-c5, 10:00 c6 and c7.
    hourly = await kpi.queues(store, CENTRE, kpi.Period(day, day, "60"), only=("support",))
    assert [(r["period"], r["offered"], r["redirects"], r["callbacks_requested"],
             r["voicemails"]) for r in hourly["rows"]] == [
        ("2026-12-03 09:00", 5, {}, 0, 0),
        ("2026-12-03 10:00", 2, {"empty": 1, "after_hours": 1}, 1, 1),
    ]  # fmt: skip
    # Per interval the 90th percentile comes from a window (cume_dist), per day from a
    # histogram: both give the nearest rank of the waits of the callers who left.
    async with store.sessions() as s:
        visits = list((await s.execute(select(QueueCall))).scalars())
    for row in hourly["rows"]:
        waits = [v.wait for v in visits if v.queue == "support" and v.kind == "inbound"
                 and v.outcome != "waiting"
                 and f"{v.local_day} {v.local_minute // 60:02d}:00" == row["period"]]  # fmt: skip
        assert row["p90_wait"] == kpi.nearest_rank([(w, 1) for w in waits], 0.9), row
    quarter = await kpi.queues(store, CENTRE, kpi.Period(day, day, "15"), only=("support",))
    assert [r["p90_wait"] for r in quarter["rows"]][:1] == [30]  # 09:00-09:15: c1 10 s, c2 30 s
    # A period with redirects only (sales at 20:00, after hours) is a row of its own.
    evening = await kpi.queues(store, CENTRE, kpi.Period(day, day, "60"), only=("sales",))
    assert [(r["period"], r["offered"], r["asa"], r["redirects"]) for r in evening["rows"]] == [
        ("2026-12-03 11:00", 1, 25.0, {}),
        ("2026-12-03 20:00", 0, None, {"after_hours": 1}),
    ]
    # The next day holds the 00:30 caller; a week holds both days.
    week = await kpi.queues(store, CENTRE, kpi.Period(day, date(2026, 12, 4), "week"),
                            only=("support",))  # fmt: skip
    assert [(r["period"], r["offered"]) for r in week["rows"]] == [("2026-W49", 8)]


async def test_bad_report_parameters_name_the_option(store: Store) -> None:
    with pytest.raises(kpi.ReportError, match="--from"):
        kpi.Period(date(2026, 12, 4), date(2026, 12, 3))
    with pytest.raises(kpi.ReportError, match="--interval"):
        kpi.Period(date(2026, 12, 3), date(2026, 12, 3), "7")
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3))
    with pytest.raises(kpi.ReportError, match="--queue: no queue 'nope'"):
        await kpi.queues(store, CENTRE, day, only=("nope",))
    with pytest.raises(kpi.ReportError, match="--formula"):
        await kpi.queues(store, CENTRE, day, formula="magic")
    assert not (await kpi.queues(store, CENTRE, day))["rows"]  # an empty day: no rows
    async with store.sessions() as s:
        assert (await s.execute(select(col(QueueCall.id)))).first() is None


def test_the_report_command_prints_exports_and_refuses_bad_input(tmp_path: Path) -> None:
    """As an admin runs it: a day's queue report as JSON and CSV from a queue_log stored by the
    real ingester; bad parameters give one clear line and exit 2, never a traceback."""
    (tmp_path / "centre.yaml").write_text(
        "timezone: Europe/Paris\nqueues:\n  - {name: support, service_level: 20, wrapup: 5}\n"
        "  - {name: sales, service_level: 30}\n"
        "agents:\n  - {id: alice, name: Alice, extension: '2001', skills: {support: 0}}\n"
    )
    config = tmp_path / "t.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\ncentre_file = "centre.yaml"\n')
    base = [sys.executable, "-m", "telephonist.cli.main", "--config", str(config), "report"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60,
                              check=False, env={**os.environ, "COLUMNS": "200"})  # fmt: skip

    first = run("queues", "--from", "2026-12-03")  # creates the database
    assert first.returncode == 0, first.stderr
    settings = load_settings(config)
    store = Store(settings.database_url)

    async def fill() -> None:
        await store.migrate()
        await ingest(store, tmp_path)
        await store.close()

    asyncio.run(fill())
    shown = run("queues", "--from", "2026-12-03", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert [(r["queue"], r["offered"], r["service_level"]) for r in report["rows"]] == [
        ("sales", 1, 1.0), ("support", 7, 0.5)]  # fmt: skip
    table = run("queues", "--from", "2026-12-03", "--queue", "support")
    assert table.returncode == 0 and "50.0%" in table.stdout and "answered within T" in table.stdout
    out = tmp_path / "day.csv"
    exported = run("queues", "--from", "2026-12-03", "--interval", "60", "--csv", str(out))
    assert exported.returncode == 0, exported.stderr
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["queue"], r["period"], r["offered"]) for r in rows][:2] == [
        ("sales", "2026-12-03 11:00", "1"), ("support", "2026-12-03 09:00", "5")]  # fmt: skip
    book, chart = tmp_path / "day.xlsx", tmp_path / "day.png"
    files = run("queues", "--from", "2026-12-03", "--xlsx", str(book), "--png", str(chart))
    assert files.returncode == 0, files.stderr
    sheet = openpyxl.load_workbook(book)["queues"]
    cells = list(sheet.iter_rows(values_only=True))
    header = cells[0]
    support = dict(zip(header, next(r for r in cells[1:] if r[0] == "support"), strict=True))
    assert (support["offered"], support["answered"], support["service_level"]) == (7, 2, 0.5)
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000  # a drawn chart, not empty
    people = tmp_path / "agents.png"
    drawn = run("agents", "--from", "2026-12-03", "--png", str(people))
    assert drawn.returncode == 0 and people.stat().st_size > 5_000, drawn.stderr
    (tmp_path / "link.xlsx").symlink_to(tmp_path / "elsewhere.xlsx")
    refused = run("queues", "--xlsx", str(tmp_path / "link.xlsx"))
    assert refused.returncode == 2 and "symbolic link" in refused.stderr
    assert not (tmp_path / "elsewhere.xlsx").exists()
    listed = run("abandoned", "--from", "2026-12-03", "--json", "--include-short")
    assert listed.returncode == 0, listed.stderr
    assert [(r["caller"], r["how"], r["wait"]) for r in json.loads(listed.stdout)] == [
        ("5550003", "short_abandon", 3), ("5550004", "abandoned", 45)]  # fmt: skip
    by_agent = run("agents", "--from", "2026-12-03", "--json")
    assert by_agent.returncode == 0, by_agent.stderr
    assert [(r["agent"], r["answered"], r["talk"]) for r in json.loads(by_agent.stdout)] == [
        ("alice", 2, 120)]  # fmt: skip
    resolved = run("fcr", "--from", "2026-12-03")
    assert resolved.returncode == 0 and "100.0%" in resolved.stdout, resolved.stderr
    bad_days = run("fcr", "--days", "400")
    assert bad_days.returncode == 2 and "--days: 400 is not 1 to 90" in bad_days.stderr
    for empty in (
        run("campaigns", "--json"),
        run("campaigns", "--from", "2026-12-03", "--interval", "60", "--json"),
        run("calls", "--from", "2026-12-03", "--json"),
        run("lines", "--from", "2026-12-03", "--json"),
    ):
        assert empty.returncode == 0 and json.loads(empty.stdout) == [], empty.stderr
    bad_agent = run("agents", "--agent", "dave")
    assert bad_agent.returncode == 2 and "--agent: no agent 'dave'" in bad_agent.stderr
    bad_queue = run("abandoned", "--queue", "nope")
    assert bad_queue.returncode == 2 and "--queue: no queue 'nope'" in bad_queue.stderr
    for args, message in (
        (("--from", "2026-12-04", "--to", "2026-12-03"), "--from: 2026-12-04 is after --to"),
        (("--queue", "nope"), "--queue: no queue 'nope'"),
        (("--interval", "7"), "--interval: '7' is not one of"),
        (("--from", "03/12/2026"), "--from: '03/12/2026' is not a day"),
        (("--formula", "magic"), "--formula: 'magic' is not one of"),
    ):
        bad = run("queues", *args)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    for command, args, message in (
        ("agents", ("--interval", "7"), "--interval: '7' is not one of"),
        ("lines", ("--line", "nope"), "--line: no line 'nope'"),
        ("campaigns", ("--campaign", "autumn"), "--campaign: no campaign 'autumn'"),
        ("campaigns", ("--interval", "9"), "--interval: '9' is not one of"),
        ("lines", ("--interval", "45"), "--interval: '45' is not one of"),
        ("calls", ("--from", "2026-12-05", "--to", "2026-12-04"), "--from: 2026-12-05 is after"),
    ):
        bad = run(command, *args)
        assert bad.returncode == 2 and message in bad.stderr, (command, args, bad.stderr)
        assert "Traceback" not in bad.stderr
    hourly = run("agents", "--from", "2026-12-03", "--interval", "60", "--json")
    assert hourly.returncode == 0, hourly.stderr
    assert {r["period"] for r in json.loads(hourly.stdout)} >= {"2026-12-03 09:00"}


async def test_the_abandoned_list_says_what_became_of_each_caller(
    store: Store, tmp_path: Path
) -> None:
    """c4 hung up after 45 s (second in line): their missed-call task was placed and answered
    10 minutes later, and they called again at 12:00 and were answered. c3's short abandon is
    listed only when asked for. A caller a redirect hung up on is listed with its reason."""
    again = ((at(180), "c11", "support", "NONE", "ENTERQUEUE", "", "5550004", "1"),
             (at(180) + 4, "c11", "support", "Bob", "CONNECT", "4", "b2", "2"))  # fmt: skip
    await ingest(store, tmp_path, again)
    left = datetime.fromtimestamp(at(20) + 45, UTC)
    async with store.unit_of_work() as uow:
        task = CallbackRequest(number="5550004", queue="support", source="abandoned",
                               requested_at=left, state="done", closed_at=left)  # fmt: skip
        uow.session.add(task)
        uow.session.add(
            CallbackRequest(
                number="5550004",
                queue="support",
                source="ivr",
                requested_at=datetime(2026, 11, 1, tzinfo=UTC),
                state="done",
                closed_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        await uow.session.flush()
        uow.session.add(
            CallbackAttempt(
                callback_id=task.id or 0,
                attempt=1,
                outcome="no_answer",
                started_at=left,
                connected_at=left,
            )
        )
        uow.session.add(
            CallbackAttempt(
                callback_id=task.id or 0,
                attempt=2,
                outcome="answered",
                started_at=left,
                connected_at=left + timedelta(minutes=10),
            )
        )
        uow.session.add(
            QueueRedirect(
                at=datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
                queue="support",
                reason="after_hours",
                destination="hangup",
                caller_number="5550012",
            )
        )
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3))
    rows = await abandoned.abandoned(store, CENTRE, day)
    assert rows == [
        {"time": "2026-12-03 09:20:45", "queue": "support", "caller": "5550004",
         "how": "abandoned", "wait": 45, "position": 2, "callback": task.id,
         "callback_state": "done", "callback_source": "abandoned", "called_back_after": 600,
         "answered_again": "2026-12-03 12:00:00"},
        {"time": "2026-12-03 18:00:00", "queue": "support", "caller": "5550012",
         "how": "hangup:after_hours", "wait": None, "position": None, "callback": None,
         "callback_state": None, "callback_source": None, "called_back_after": None,
         "answered_again": None},
    ]  # fmt: skip
    with_short = await abandoned.abandoned(store, CENTRE, day, include_short=True)
    assert [(r["caller"], r["how"]) for r in with_short][:2] == [
        ("5550003", "short_abandon"), ("5550004", "abandoned")]  # fmt: skip
    assert await abandoned.abandoned(store, CENTRE, day, only=("sales",)) == []


async def test_what_each_agent_did(store: Store, tmp_path: Path) -> None:
    rings = ((at(3), "c2x", "support", "Bob", "RINGNOANSWER", "15000"),
             (at(4), "c2y", "support", "Bob", "RINGNOANSWER", "15000"))  # fmt: skip
    await ingest(store, tmp_path, rings)
    utc = lambda h, m=0: datetime(2026, 12, 3, h, m, tzinfo=UTC)  # noqa: E731
    async with store.unit_of_work() as uow:
        uow.session.add(
            AgentLogin(agent="alice", queues="support", logged_in_at=utc(8), logged_out_at=utc(12))
        )
        # Bob logged in the evening before (Paris midnight is 23:00 UTC) and is still in.
        uow.session.add(
            AgentLogin(
                agent="bob", queues="support", logged_in_at=datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
            )
        )
        uow.session.add(
            AgentPause(
                agent="alice",
                reason="lunch",
                started_at=utc(10),
                ended_at=utc(10, 30),
                seconds=1800,
            )
        )
        uow.session.add(
            AgentPause(
                agent="alice", reason="break", started_at=utc(11), ended_at=utc(11, 10), seconds=600
            )
        )
        lead = CampaignLead(campaign_id=1, contact_id=1, state="done", disposition="sale")
        uow.session.add(lead)
        await uow.session.flush()
        uow.session.add(
            DialAttempt(
                campaign_id=1,
                lead_id=lead.id or 0,
                number="+12125550101",
                attempt=1,
                started_at=utc(11),
                outcome="answered",
                agent="Carol",
            )
        )
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3))
    rows = {r["agent"]: r for r in await agents.agents(store, CENTRE, day, now=utc(12))}
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    assert (alice["logged_in"], alice["paused"]) == (14400.0, 2400.0)
    assert alice["paused_by_reason"] == {"lunch": 1800.0, "break": 600.0}
    # c1 (inbound: 120 s talk, 5 s wrap-up) and the callback cb9 (answered, not ended yet).
    assert (alice["answered"], alice["answered_inbound"], alice["talk"], alice["wrap"]) == (
        2, 1, 120, 5)  # fmt: skip
    assert alice["aht"] == 125.0 and alice["occupancy"] == round(125 / 12000, 4)
    assert (bob["logged_in"], bob["rings_unanswered"], bob["answered"], bob["aht"]) == (
        13 * 3600.0, 2, 1, 65.0)  # fmt: skip
    assert (carol["outbound_dials"], carol["dispositions"], carol["occupancy"]) == (
        1,
        {"sale": 1},
        None,
    )  # fmt: skip  (never logged in: no occupancy)
    # Per hour (Paris): Alice logged in 09:00-13:00, lunch 11:00-11:30, a break at 12:00;
    # c1 answered in the 09:00 hour; Bob's two rings not answered at 09:03 and 09:04.
    hourly = await agents.agents(store, CENTRE, kpi.Period(day.first, day.last, "60"),
                                 only=("alice", "bob"), now=utc(12))  # fmt: skip
    by = {(r["agent"], r["period"]): r for r in hourly}
    assert [(p, by[("alice", p)]["logged_in"], by[("alice", p)]["paused"])
            for p in sorted(p for a, p in by if a == "alice")] == [
        ("2026-12-03 09:00", 3600.0, 0.0), ("2026-12-03 10:00", 3600.0, 0.0),
        ("2026-12-03 11:00", 3600.0, 1800.0), ("2026-12-03 12:00", 3600.0, 600.0)]  # fmt: skip
    assert by[("alice", "2026-12-03 09:00")]["talk"] == 120
    assert by[("bob", "2026-12-03 09:00")]["rings_unanswered"] == 2
    assert by[("alice", "2026-12-03 11:00")]["paused_by_reason"] == {"lunch": 1800.0}
    # Bob since 21:00 the evening before: the day's hours from 00:00 are his.
    assert sum(r["logged_in"] for r in hourly if r["agent"] == "bob") == 13 * 3600.0
    assert min(p for a, p in by if a == "bob") == "2026-12-03 00:00"
    assert await agents.agents(store, CENTRE, kpi.Period(day.first, day.last, "week"),
                               only=("alice",), now=utc(12)) == [
        {**alice, "period": "2026-W49"}]  # the same figures for the week  # fmt: skip
    with pytest.raises(kpi.ReportError, match="--agent: no agent 'dave'"):
        await agents.agents(store, CENTRE, day, only=("dave",))


async def test_first_contact_resolution_and_the_repeat_callers(
    store: Store, tmp_path: Path
) -> None:
    """Answered on the 3rd: 5550001 (c1), 5550002 (c2), 5550008 (c8). 5550001 calls again the
    same day (and hangs up); 5550002 eight days later: inside a 10-day window, not a 7-day one."""
    again = (
        (at(240), "c12", "support", "NONE", "ENTERQUEUE", "", "5550001", "1"),
        (at(240) + 30, "c12", "support", "NONE", "ABANDON", "1", "1", "30"),
        (at(8 * 24 * 60), "c13", "sales", "NONE", "ENTERQUEUE", "", "5550002", "1"),
    )
    await ingest(store, tmp_path, again)
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3))
    week = await fcr.fcr(store, CENTRE, day)
    assert (week["days"], week["answered"], week["resolved"], week["fcr"]) == (
        7, 3, 2, round(2 / 3, 4))  # fmt: skip
    assert week["repeat_callers"] == [{"time": "2026-12-03 09:00:00", "queue": "support",
                                       "caller": "5550001", "agent": "Alice",
                                       "called_again": 1}]  # fmt: skip
    ten = await fcr.fcr(store, CENTRE, day, days=10)
    assert [r["caller"] for r in ten["repeat_callers"]] == ["5550001", "5550002"]
    sales = await fcr.fcr(store, CENTRE, day, only=("sales",))
    assert (sales["answered"], sales["fcr"]) == (1, 1.0)
    with pytest.raises(kpi.ReportError, match="--days"):
        await fcr.fcr(store, CENTRE, day, days=365)


async def test_repeat_calls_are_linked_whatever_order_the_lines_come_in(
    store: Store, tmp_path: Path
) -> None:
    """The call again (c13, eight days later) is built before the first calls (a rebuild, or
    a queue_log merged late): every visit still knows its caller's next visit; an anonymous
    caller is nobody's repeat and is left out."""
    again = (
        (at(8 * 24 * 60), "c13", "sales", "NONE", "ENTERQUEUE", "", "5550002", "1"),
        (at(60), "c14", "support", "NONE", "ENTERQUEUE", "", "anonymous", "1"),
        (at(60) + 5, "c14", "support", "ALICE", "CONNECT", "5", "c14-1", "1"),
        (at(70), "c15", "support", "NONE", "ENTERQUEUE", "", "anonymous", "1"),
    )
    builder = facts.QueueCallBuilder(CENTRE)

    def entries(lines: Any) -> list[QueueLogEntry]:
        return [e for e in (parse_line("|".join(map(str, x))) for x in lines) if e is not None]

    for lines_ in (again, LINES):  # stored (for the rebuild below) and built, late ones first
        async with store.unit_of_work() as uow:
            batch = entries(lines_)
            uow.session.add_all(batch)
            await builder.apply(uow.session, batch)
    async with store.sessions() as s:
        rows = {r.callid: r for r in (await s.execute(select(QueueCall))).scalars()}
    assert rows["c14"].caller == "" and rows["c14"].next_at is None
    assert rows["c2"].next_at is not None
    assert as_utc(rows["c2"].next_at) == datetime.fromtimestamp(at(8 * 24 * 60), UTC)
    ten = await fcr.fcr(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3)), days=10)
    assert "5550002" in [r["caller"] for r in ten["repeat_callers"]]
    assert "" not in [r["caller"] for r in ten["repeat_callers"]]
    in_order = await fcr.fcr(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3)))
    assert await facts.rebuild(store, CENTRE) == len(rows)  # again from the stored lines
    assert await fcr.fcr(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3))) == (
        in_order)  # fmt: skip


async def test_survey_scores_by_queue_and_agent(store: Store, tmp_path: Path) -> None:
    """c2's agent hung up first and the caller pressed 4; c1 was asked and pressed nothing
    valid (an empty SURVEY line); c8 was never asked."""
    surveys = ((at(5) + 95, "c2", "support", "Bob", "SURVEY", "4"),
               (at(0) + 140, "c1", "support", "Alice", "SURVEY", ""))  # fmt: skip
    await ingest(store, tmp_path, surveys)
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3))
    rows = {r["queue"]: r for r in await csat.csat(store, CENTRE, day)}
    assert rows["support"] == {"queue": "support", "answered": 2, "asked": 2, "answers": 1,
                               "response_rate": 0.5, "average": 4.0, "csat": 1.0,
                               "scores": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}  # fmt: skip
    assert (rows["sales"]["asked"], rows["sales"]["csat"]) == (0, None)
    agents_ = {r["agent"]: r for r in await csat.csat(store, CENTRE, day, by="agent")}
    assert (agents_["Bob"]["average"], agents_["Alice"]["answers"]) == (4.0, 0)
    with pytest.raises(kpi.ReportError, match="--by"):
        await csat.csat(store, CENTRE, day, by="moon")


async def test_the_call_list_joins_each_call_to_its_queue_visit(
    store: Store, tmp_path: Path
) -> None:
    await ingest(store, tmp_path)
    async with store.unit_of_work() as uow:
        for channel, caller, minutes in (("c1", "5550001", 0), ("c4", "5550004", 20),
                                         ("ivr-only", "5550099", 30)):  # fmt: skip
            uow.session.add(
                Call(
                    channel_id=channel,
                    line="main",
                    route="queue",
                    caller_number=caller,
                    outcome="done",
                    started_at=datetime.fromtimestamp(at(minutes), UTC),
                )
            )
        # Asterisk's own records (core/cel.py): the first call, and an outbound call that
        # never reached telephonist; the others have none yet.
        t0 = datetime.fromtimestamp(at(0), UTC)
        uow.session.add(
            PbxCall(
                linkedid="c1",
                channel="PJSIP/trunk-1",
                caller_number="5550001",
                exten="100",
                started_at=t0,
                answered_at=t0 + timedelta(seconds=1),
                connected_at=t0 + timedelta(seconds=10),
                ended_at=t0 + timedelta(seconds=131),
                talk=121,
                hangup_cause=16,
                hung_up_by="caller",
                peer="PJSIP/alice-2",
            )
        )
        uow.session.add(
            PbxCall(
                linkedid="out-1",
                channel="PJSIP/trunk-9",
                caller_number="0612345678",
                started_at=t0 + timedelta(minutes=40),
                ended_at=t0 + timedelta(minutes=40, seconds=20),
                hangup_cause=17,
                hung_up_by="peer",
                dialstatus="BUSY",
            )
        )
    rows = await calls.calls(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3)))
    assert [(r["time"], r["caller"], r["queue"], r["wait"], r["queue_outcome"], r["agent"],
             r["talk"], r["ended_by"]) for r in rows] == [
        ("2026-12-03 09:00:00", "5550001", "support", 10, "answered", "Alice", 120, "caller"),
        ("2026-12-03 09:20:00", "5550004", "support", 45, "abandoned", "", 0, ""),
        ("2026-12-03 09:30:00", "5550099", None, None, None, None, None, None),
        ("2026-12-03 09:40:00", "0612345678", None, None, None, None, 0, None),
    ]  # fmt: skip
    assert [(r["source"], r["answered"], r["ended"], r["duration"], r["hangup"], r["hung_up_by"])
            for r in rows] == [
        ("pbx", "2026-12-03 09:00:01", "2026-12-03 09:02:11", 131, "normal clearing", "caller"),
        ("telephonist", None, None, None, None, None),
        ("telephonist", None, None, None, None, None),
        ("pbx", None, "2026-12-03 09:40:20", 20, "user busy", "peer"),
    ]  # fmt: skip
    assert rows[0]["line"] == "main" and rows[3]["line"] is None  # only telephonist knows lines
    with pytest.raises(kpi.ReportError, match="--line: no line 'nope'"):
        await calls.calls(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3)),
                          line="nope")  # fmt: skip


async def test_lines_count_calls_by_how_they_ended_per_interval(store: Store) -> None:
    async with store.unit_of_work() as uow:
        base = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 09:00 in Paris
        for n, (line, outcome, answered, minutes, menus) in enumerate((
            ("main", "routed:queue:support", True, 0, 20),
            ("main", "routed:voicemail:100", True, 5, 30),
            ("main", "caller_hangup", True, 20, 7), ("main", "queued:support", True, 50, 1),
            ("main", "redirected:after_hours:voicemail:100", True, 61, 1),
            ("night", "fallback:playback", False, 1, 0), ("night", None, False, 2, None),
        )):  # fmt: skip
            started = base + timedelta(minutes=minutes)
            uow.session.add(
                Call(
                    channel_id=f"l{n}",
                    line=line,
                    route="ivr",
                    outcome=outcome,
                    started_at=started,
                    answered_at=started if answered else None,
                    ended_at=None if menus is None else started + timedelta(seconds=menus),
                )
            )
        # Asterisk's record of the first call: 95 s from ring to hang-up.
        started = base
        uow.session.add(PbxCall(linkedid="l0", started_at=started,
                                ended_at=started + timedelta(seconds=95)))  # fmt: skip
    day = kpi.Period(date(2026, 12, 3), date(2026, 12, 3), "total")
    rows = await lines.lines(store, CENTRE, day)
    assert [(r["line"], r["period"], r["calls"], r["answered"], r["ended"]) for r in rows] == [
        ("main", "total", 5, 5, {"caller_hangup": 1, "queue": 2, "redirected": 1, "voicemail": 1}),
        ("night", "total", 2, 0, {"fallback": 1, "open": 1}),
    ]  # fmt: skip
    assert (rows[0]["avg_in_menus"], rows[0]["avg_duration"]) == (11.8, 95.0)
    assert (rows[1]["avg_in_menus"], rows[1]["avg_duration"]) == (0.0, None)
    quarter = await lines.lines(store, CENTRE, kpi.Period(day.first, day.last, "15"),
                                only=("main",))  # fmt: skip
    assert [(r["period"], r["calls"], r["ended"]) for r in quarter] == [
        ("2026-12-03 09:00", 2, {"queue": 1, "voicemail": 1}),  # local time, 15-minute slots
        ("2026-12-03 09:15", 1, {"caller_hangup": 1}),
        ("2026-12-03 09:45", 1, {"queue": 1}),
        ("2026-12-03 10:00", 1, {"redirected": 1}),
    ]  # fmt: skip
    hourly = await lines.lines(store, CENTRE, kpi.Period(day.first, day.last, "60"))
    assert [(r["line"], r["period"], r["calls"]) for r in hourly] == [
        ("main", "2026-12-03 09:00", 4), ("main", "2026-12-03 10:00", 1),
        ("night", "2026-12-03 09:00", 2)]  # fmt: skip
    for interval, label in (("day", "2026-12-03"), ("week", "2026-W49"), ("month", "2026-12")):
        got = await lines.lines(store, CENTRE, kpi.Period(day.first, day.last, interval))
        assert [(r["period"], r["calls"]) for r in got] == [(label, 5), (label, 2)]
    nothing = await lines.lines(store, CENTRE, kpi.Period(date(2026, 12, 4), date(2026, 12, 4)))
    assert nothing == []
    with pytest.raises(kpi.ReportError, match="--line: no line 'nope'"):
        await lines.lines(store, CENTRE, day, only=("nope",))


async def test_agent_states_over_a_day(store: Store, tmp_path: Path) -> None:
    """Alice: logged in 09:00-16:00 (Paris), lunch 12:00-12:30, c1 answered 09:00:10 for
    120 s then 5 s of wrap-up, and a call answered after 10:00 that has not ended; Bob still
    logged in since 16:00. It is 16:30: what is still going on is drawn until now."""
    await ingest(store, tmp_path)
    utc = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    async with store.unit_of_work() as uow:
        uow.session.add(AgentLogin(agent="alice", queues="support", logged_in_at=utc,
                                   logged_out_at=utc + timedelta(hours=7)))  # fmt: skip
        lunch = utc + timedelta(hours=3)
        uow.session.add(AgentPause(agent="alice", reason="lunch", started_at=lunch,
                                   ended_at=lunch + timedelta(minutes=30)))  # fmt: skip
        uow.session.add(AgentLogin(agent="bob", queues="support",
                                   logged_in_at=utc + timedelta(hours=7)))  # fmt: skip
    now = utc + timedelta(hours=7, minutes=30)
    states = await agents.timeline(store, CENTRE, date(2026, 12, 3), only=("alice", "bob"),
                                   now=now)  # fmt: skip
    alice = {(state, round(a, 4), round(b, 4)) for state, a, b in states["alice"]}
    (still,) = [x for x in alice if x[0] == "talk" and x[1] > 10]
    assert still[0] == "talk" and still[2] == 16.5
    assert alice - {still} == {
        ("logged_in", 9.0, 16.0), ("paused:lunch", 12.0, 12.5),
        ("talk", round(9 + 10 / 3600, 4), round(9 + 130 / 3600, 4)),
        ("wrap", round(9 + 130 / 3600, 4), round(9 + 135 / 3600, 4)),
    }  # fmt: skip
    assert [(s, a, b) for s, a, b in states["bob"] if s == "logged_in"] == [
        ("logged_in", 16.0, 16.5)]  # still logged in: until now  # fmt: skip
    from telephonist.reports import export

    rows = await agents.agents(store, CENTRE, kpi.Period(date(2026, 12, 3), date(2026, 12, 3)),
                               only=("alice", "bob"), now=now)  # fmt: skip
    with_states = export.agents_png(rows, CENTRE.timezone, states, "2026-12-03")
    without = export.agents_png(rows, CENTRE.timezone)
    assert with_states[:8] == b"\x89PNG\r\n\x1a\n" and len(with_states) > len(without)
    with pytest.raises(kpi.ReportError, match="--agent: no agent 'dave'"):
        await agents.timeline(store, CENTRE, date(2026, 12, 3), only=("dave",))
