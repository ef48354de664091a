"""``telephonist report``: the numbers that run the centre (reports/)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlmodel import col

from telephonist.cli.common import state, with_store
from telephonist.core.centre import Centre
from telephonist.core.files import ExportError, open_export
from telephonist.core.models import Campaign
from telephonist.core.numbers import Numbering
from telephonist.dialer import campaigns as campaign_service
from telephonist.reports import abandoned, agents, calls, csat, facts, fcr, kpi, lines
from telephonist.reports import campaigns as campaign_report
from telephonist.reports.kpi import ReportError

app = typer.Typer(
    help="Reports: queues (service level, waits, abandons, handle time), the abandoned calls."
)

FROM_HELP = "First day, YYYY-MM-DD in the centre's time zone (default: today)"
TO_HELP = "Last day, YYYY-MM-DD (default: the first day)"
From = Annotated[str | None, typer.Option("--from", help=FROM_HELP)]
To = Annotated[str | None, typer.Option("--to", help=TO_HELP)]
Queues = Annotated[list[str] | None, typer.Option("--queue", help="Only this queue (repeatable)")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
Csv = Annotated[Path | None, typer.Option("--csv", help="Write the rows to a CSV file")]
Interval = Annotated[str, typer.Option(help="15, 30, 60 (minutes), day, week, month or total")]


def _day(text: str | None, option: str, default: date) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{option}: {text!r} is not a day (YYYY-MM-DD)") from None


def _span(centre: Centre, from_: str | None, to: str | None, interval: str = "day") -> kpi.Period:
    """``--from`` (default: today in the centre's zone) to ``--to`` (default: ``--from``)."""
    first = _day(from_, "--from", datetime.now(ZoneInfo(centre.timezone)).date())
    return kpi.Period(first, _day(to, "--to", first), interval)


@app.command("queues")
def queues(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    interval: Interval = "day",
    queue: Queues = None,
    formula: Annotated[
        str | None,
        typer.Option(help="Service level over: answered, offered or abandoned_after"),
    ] = None,
    include_short: Annotated[
        bool, typer.Option("--include-short", help="Count short abandons in the service level")
    ] = False,
    json_: Json = False,
    csv_file: Csv = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Write a workbook")] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Chart: calls and SL per period, the waits")
    ] = None,
) -> None:
    """Per queue and period: offered, answered, abandoned (short ones apart), service level
    (its formula is printed), average speed of answer, longest and 90th-percentile wait,
    average abandon time, handle time; and the period's redirects and callbacks."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> dict[str, Any]:
        period = _span(centre, from_, to, interval)
        result = await kpi.queues(store, centre, period, only=tuple(queue or ()),
                                  formula=formula, include_short=include_short)  # fmt: skip
        if png is not None:
            result["waits"] = await kpi.wait_distribution(store, centre, period,
                                                          only=tuple(queue or ()))  # fmt: skip
        return result

    report = with_store(ctx, go, ReportError, ExportError)
    if xlsx is not None or png is not None:
        from telephonist.reports import export  # matplotlib: loaded only when a file is asked

        notes = {"formula": report["formula"], "time zone": report["time_zone"]}
        totals = [{"queue": q, **t} for q, t in report["totals"].items()]
        _files(
            xlsx,
            lambda: export.xlsx_bytes({"queues": report["rows"], "totals": totals}, notes),
            png,
            lambda: export.queues_png(report, report["waits"]),
        )
        return
    if csv_file is not None:
        _write_csv(csv_file, report["rows"])
        return
    if json_:
        typer.echo(json.dumps(report, indent=1))
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"Queues ({report['time_zone']})", caption=report["formula"])
    columns = [("queue", "queue"), ("period", "period"), ("offered", "offered"),
               ("answered", "answ"), ("abandoned", "aband"), ("short_abandoned", "short"),
               ("timeout", "t/o"), ("left_with_key", "key"), ("service_level", "SL"),
               ("asa", "ASA"), ("max_wait", "max"), ("p90_wait", "p90"),
               ("avg_abandon_time", "aband t"), ("aht", "AHT")]  # fmt: skip
    for _, title in columns:
        table.add_column(title, justify="left" if title in ("queue", "period") else "right")
    for row in report["rows"]:
        cells = []
        for key, _ in columns:
            value = row[key]
            if key == "service_level" and value is not None:
                cells.append(f"{value:.1%}")
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*cells)
    console.print(table)
    for name, total in report["totals"].items():
        redirects = ", ".join(f"{k} {v}" for k, v in sorted(total["redirects"].items()))
        console.print(
            f"{name}: redirects {redirects or 'none'}; callbacks requested "
            f"{total['callbacks_requested']}, completed {total['callbacks_completed']}; "
            f"voicemails {total['voicemails']}"
        )


@app.command("abandoned")
def abandoned_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    queue: Queues = None,
    include_short: Annotated[
        bool, typer.Option("--include-short", help="List short abandons too")
    ] = False,
    json_: Json = False,
    csv_file: Csv = None,
) -> None:
    """Every caller who hung up waiting (or whom a redirect hung up on): when, where, after how
    long, in which place — and what became of them: their callback task and its state, how
    long until they were called back, whether they called again and were answered."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        period = _span(centre, from_, to)
        return await abandoned.abandoned(store, centre, period, only=tuple(queue or ()),
                                         include_short=include_short)  # fmt: skip

    rows = with_store(ctx, go, ReportError)
    if csv_file is not None:
        _write_csv(csv_file, rows)
        return
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Abandoned calls ({centre.timezone})")
    keys = ["time", "queue", "caller", "how", "wait", "position", "callback", "callback_state",
            "called_back_after", "answered_again"]  # fmt: skip
    for key in keys:
        table.add_column(key.replace("_", " "))
    for row in rows:
        table.add_row(*("" if row[k] is None else str(row[k]) for k in keys))
    Console().print(table)


def _files(
    xlsx: Path | None, workbook: Callable[[], bytes], png: Path | None, chart: Callable[[], bytes]
) -> None:
    try:
        for path, make in ((xlsx, workbook), (png, chart)):
            if path is not None:
                with open_export(path, "wb") as fh:
                    fh.write(make())
                typer.echo(f"-> {path}")
    except ExportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        with open_export(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["time"])
            writer.writeheader()
            writer.writerows(rows)
    except ExportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(rows)} rows -> {path}")


@app.command("agents")
def agents_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    agent: Annotated[list[str] | None, typer.Option(help="Only this agent (repeatable)")] = None,
    interval: Interval = "total",
    json_: Json = False,
    csv_file: Csv = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Write a workbook")] = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Chart: each agent's time, states over the day")
    ] = None,
) -> None:
    """Per agent (and period with --interval): logged-in and paused time (by reason), calls
    answered, rings not answered, talk, wrap-up, average handle time, occupancy, outbound
    dials and dispositions."""
    centre = state(ctx).centre()
    states: dict[str, list[tuple[str, float, float]]] = {}
    totals: list[dict[str, Any]] = []

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        period = _span(centre, from_, to, interval)
        only = tuple(agent or ())
        if png is not None:  # each agent's whole period, and the last day's states
            states.update(await agents.timeline(store, centre, period.last, only=only))
            whole = kpi.Period(period.first, period.last, "total")
            totals.extend(await agents.agents(store, centre, whole, only=only))
        return await agents.agents(store, centre, period, only=only)

    rows = with_store(ctx, go, ReportError)
    if xlsx is not None or png is not None:
        from telephonist.reports import export

        last = _span(centre, from_, to).last.isoformat()
        _files(xlsx, lambda: export.xlsx_bytes({"agents": rows}, {"time zone": centre.timezone}),
               png, lambda: export.agents_png(totals, centre.timezone, states, last))  # fmt: skip
        return
    if csv_file is not None:
        flat = [{**r, "paused_by_reason": json.dumps(r["paused_by_reason"]),
                 "dispositions": json.dumps(r["dispositions"])} for r in rows]  # fmt: skip
        _write_csv(csv_file, flat)
        return
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Agents ({centre.timezone})")
    keys = ["agent", "period", "logged_in", "paused", "answered", "rings_unanswered", "talk",
            "wrap", "aht", "occupancy", "outbound_dials"]  # fmt: skip
    if interval == "total":
        keys.remove("period")
    for key in keys:
        table.add_column(key.replace("_", " "), justify="left" if key == "agent" else "right")
    for row in rows:
        cells = [_hms(row[k]) if k in ("logged_in", "paused", "talk", "wrap") else
                 f"{row[k]:.1%}" if k == "occupancy" and row[k] is not None else
                 "" if row[k] is None else str(row[k]) for k in keys]  # fmt: skip
        table.add_row(*cells)
    Console().print(table)


@app.command("fcr")
def fcr_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    queue: Queues = None,
    days: Annotated[
        int | None, typer.Option(help="Called again within this many days (reports.fcr_days)")
    ] = None,
    json_: Json = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the repeat callers to a CSV file")
    ] = None,
) -> None:
    """First-contact resolution: the share of answered callers who did not call again within
    the days, and the repeat callers."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> dict[str, Any]:
        period = _span(centre, from_, to)
        return await fcr.fcr(store, centre, period, only=tuple(queue or ()), days=days)

    result = with_store(ctx, go, ReportError)
    if csv_file is not None:
        _write_csv(csv_file, result["repeat_callers"])
        return
    if json_:
        typer.echo(json.dumps(result, indent=1))
        return
    share = "n/a" if result["fcr"] is None else f"{result['fcr']:.1%}"
    typer.echo(
        f"first-contact resolution ({result['days']} days): {share} — "
        f"{result['resolved']} of {result['answered']} answered callers did not call again"
    )
    table = Table(title="Repeat callers")
    for key in ("time", "queue", "caller", "agent", "called_again"):
        table.add_column(key.replace("_", " "))
    for row in result["repeat_callers"]:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)


@app.command("csat")
def csat_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    queue: Queues = None,
    by: Annotated[str, typer.Option(help="queue or agent")] = "queue",
    json_: Json = False,
) -> None:
    """Post-call survey scores: asked, answered, response rate, average, CSAT % (4 and 5)."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        period = _span(centre, from_, to)
        return await csat.csat(store, centre, period, only=tuple(queue or ()), by=by)

    rows = with_store(ctx, go, ReportError)
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"CSAT by {by} ({centre.timezone})")
    for key in (by, "answered", "asked", "answers", "average", "CSAT %", "1-5"):
        table.add_column(key)
    for r in rows:
        share = "" if r["csat"] is None else f"{r['csat']:.0%}"
        table.add_row(str(r[by]), str(r["answered"]), str(r["asked"]), str(r["answers"]),
                      "" if r["average"] is None else str(r["average"]), share,
                      " ".join(str(v) for v in r["scores"].values()))  # fmt: skip
    Console().print(table)


@app.command("calls")
def calls_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    line: Annotated[str | None, typer.Option(help="Only this line")] = None,
    json_: Json = False,
    csv_file: Csv = None,
) -> None:
    """Every call as Asterisk recorded it (answer and end times, hang-up cause, who hung up),
    with what telephonist did with it and its queue visit (wait, agent, talk, wrap-up, survey
    score)."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        period = _span(centre, from_, to)
        return await calls.calls(store, centre, period, line=line)

    rows = with_store(ctx, go, ReportError)
    if csv_file is not None:
        _write_csv(csv_file, rows)
        return
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Calls ({centre.timezone})")
    keys = ["time", "line", "caller", "outcome", "queue", "wait", "agent", "talk", "duration",
            "hangup", "hung_up_by"]  # fmt: skip
    for key in keys:
        table.add_column(key.replace("_", " "))
    for row in rows:
        table.add_row(*("" if row[k] is None else str(row[k]) for k in keys))
    Console().print(table)


@app.command("lines")
def lines_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    interval: Interval = "total",
    line: Annotated[
        list[str] | None, typer.Option("--line", help="Only this line (repeatable)")
    ] = None,
    json_: Json = False,
    csv_file: Csv = None,
) -> None:
    """Per line and period: calls, answered, where they went (queue, voicemail, callback,
    outside, redirected, hung up in the menus, fallback while serve was down...), average
    time in the menus and average call duration."""
    centre = state(ctx).centre()

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        period = _span(centre, from_, to, interval)
        return await lines.lines(store, centre, period, only=tuple(line or ()))

    rows = with_store(ctx, go, ReportError)
    if csv_file is not None:
        _write_csv(csv_file, [{**r, "ended": " ".join(f"{k}={v}" for k, v in r["ended"].items())}
                              for r in rows])  # fmt: skip
        return
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Lines ({centre.timezone})")
    for key in ("line", "period", "calls", "answered", "ended", "in menus", "duration"):
        table.add_column(key)
    for r in rows:
        ended = ", ".join(f"{k} {v}" for k, v in r["ended"].items())
        table.add_row(r["line"], r["period"], str(r["calls"]), str(r["answered"]), ended,
                      str(r["avg_in_menus"] or ""), str(r["avg_duration"] or ""))  # fmt: skip
    Console().print(table)


@app.command("campaigns")
def campaigns_(
    ctx: typer.Context,
    from_: From = None,
    to: To = None,
    interval: Annotated[
        str | None,
        typer.Option(help="15, 30, 60, day, week, month or total: per period (with --from/--to)"),
    ] = None,
    campaign: Annotated[
        list[str] | None, typer.Option("--campaign", help="Only this campaign (repeatable)")
    ] = None,
    json_: Json = False,
    csv_file: Csv = None,
) -> None:
    """Every campaign now: dials, connects, abandon rate over its jurisdiction's period, talk,
    agent time, occupancy, outcomes and leads (the figures of `campaign stats`). With --from,
    --to or --interval: per campaign and period, dials, each outcome, the period's abandon
    rate, talk and average talk, dispositions."""
    centre = state(ctx).centre()
    per_period = from_ is not None or to is not None or interval is not None

    async def go(store: Any, centre_: Any) -> list[dict[str, Any]]:
        if per_period:
            period = _span(centre, from_, to, interval or "total")
            return await campaign_report.campaigns(store, centre, period,
                                                   only=tuple(campaign or ()))  # fmt: skip
        async with store.sessions() as s:
            names = list((await s.execute(select(col(Campaign.name)))).scalars())
        for name in campaign or ():
            if name not in names:
                raise ReportError(f"--campaign: no campaign {name!r}")
        wanted = sorted(n for n in names if not campaign or n in campaign)
        return [await campaign_service.stats(store, name) for name in wanted]

    rows = with_store(ctx, go, ReportError)
    if csv_file is not None:
        _write_csv(csv_file, [{k: json.dumps(v) if isinstance(v, dict) else v
                               for k, v in r.items()} for r in rows])  # fmt: skip
        return
    if json_:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title=f"Campaigns ({centre.timezone})" if per_period else "Campaigns")
    keys = (["campaign", "period", "dials", "answered", "abandoned", "abandon_rate", "machine",
             "no_answer", "busy", "talk", "avg_talk"] if per_period else
            ["campaign", "state", "mode", "dials", "connects", "abandoned", "abandon_rate",
             "talk_seconds", "occupancy"])  # fmt: skip
    for key in keys:
        table.add_column(key.replace("_", " "))
    for row in rows:
        table.add_row(*("" if row[k] is None else str(row[k]) for k in keys))
    Console().print(table)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@app.command("bench")
def bench_(
    calls: Annotated[
        int, typer.Option(min=1000, help="Queue visits in the synthetic year")
    ] = 1_000_000,
    db: Annotated[list[str] | None, typer.Option(help="sqlite and/or postgres")] = None,
) -> None:
    """Time every report for a month and a year of synthetic calls (prints numbers)."""
    from telephonist.bench.report import main

    dbs = tuple(db or ("sqlite", "postgres"))
    for name in dbs:
        if name not in ("sqlite", "postgres"):
            typer.echo(f"error: --db: {name!r} is not sqlite or postgres", err=True)
            raise typer.Exit(2)
    main(calls, dbs)


@app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Build the queue visits again from the stored queue_log (after an upgrade, or a change
    of the centre's time zone)."""
    st = state(ctx)
    centre, numbering = st.centre(), Numbering(st.settings().dialer.region)
    n = with_store(ctx, lambda store, _: facts.rebuild(store, centre, numbering), ReportError)
    typer.echo(f"{n} queue visits")
