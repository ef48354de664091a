"""Reports as files for the people who would rather look than read: XLSX workbooks
(openpyxl) and PNG charts (matplotlib, no display needed), as bytes: the CLI writes them
through :func:`telephonist.core.files.open_export` (never through a symbolic link), the
scheduled reports attach them to e-mails. Imported only when a file is asked for (matplotlib
takes a second to load)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: files only

import matplotlib.pyplot as plt
from openpyxl import Workbook


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return value


def xlsx_bytes(
    sheets: dict[str, list[dict[str, Any]]], notes: dict[str, str] | None = None
) -> bytes:
    """A workbook with one sheet per entry (header row, then the rows); ``notes`` go on a
    first sheet (the formula, the time zone, the period)."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "about"
    for key, value in (notes or {}).items():
        first.append([key, value])
    for title, rows in sheets.items():
        sheet = book.create_sheet(title[:31])
        if not rows:
            sheet.append(["(no rows)"])
            continue
        header = list(rows[0])
        sheet.append(header)
        for row in rows:
            sheet.append([_cell(row.get(k)) for k in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def queues_png(report: dict[str, Any], waits: list[tuple[int, int]]) -> bytes:
    """Calls per period (offered, answered, abandoned) with the service level on its own
    axis, and the distribution of waits (seconds, in 10-second bins)."""
    rows = report["rows"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8))
    labels = [f"{r['queue']}\n{r['period']}" for r in rows]
    x = range(len(rows))
    top.bar([i - 0.27 for i in x], [r["offered"] for r in rows], 0.27, label="offered")
    top.bar(list(x), [r["answered"] for r in rows], 0.27, label="answered")
    top.bar([i + 0.27 for i in x], [r["abandoned"] for r in rows], 0.27, label="abandoned")
    top.set_xticks(list(x), labels, fontsize=7, rotation=90 if len(rows) > 12 else 0)
    top.set_ylabel("calls")
    top.legend(loc="upper left")
    sl = top.twinx()
    sl.plot(list(x), [(r["service_level"] or 0) * 100 for r in rows], "k.-", label="SL %")
    sl.set_ylim(0, 105)
    sl.set_ylabel("service level %")
    top.set_title(f"Calls and service level ({report['time_zone']}); {report['formula']}",
                  fontsize=9)  # fmt: skip
    bottom.bar([w for w, _ in waits], [n for _, n in waits], width=9, align="edge")
    bottom.set_xlabel("wait (s)")
    bottom.set_ylabel("callers")
    bottom.set_title("Waits of the callers who left the queue", fontsize=9)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()


STATE_COLOURS = {"logged_in": "#d9d9d9", "paused": "#f0a030", "talk": "#2e8b57",
                 "wrap": "#4f81bd"}  # fmt: skip


def agents_png(
    rows: list[dict[str, Any]],
    time_zone: str,
    timeline: dict[str, list[tuple[str, float, float]]] | None = None,
    day: str = "",
) -> bytes:
    """Each agent's logged-in time split into talk, wrap-up, paused and available; with
    ``timeline`` (reports.agents.timeline), below it each agent's states over ``day``: a
    lane per agent, logged in (available) in grey, paused, talking and in wrap-up on top."""
    lanes = sorted(timeline) if timeline else []
    height = max(3, 0.35 * len(rows) + 1.5)
    if lanes:
        fig, (ax, states) = plt.subplots(
            2, 1, figsize=(10, height + max(3, 0.4 * len(lanes) + 1.5)),
            gridspec_kw={"height_ratios": [height, max(3, 0.4 * len(lanes) + 1.5)]},
        )  # fmt: skip
    else:
        fig, ax = plt.subplots(figsize=(10, height))
    names = [r["agent"] for r in rows]
    talk = [r["talk"] / 3600 for r in rows]
    wrap = [r["wrap"] / 3600 for r in rows]
    paused = [r["paused"] / 3600 for r in rows]
    free = [max(0.0, (r["logged_in"] - r["paused"] - r["talk"] - r["wrap"]) / 3600) for r in rows]
    left = [0.0] * len(rows)
    for values, label, colour in ((talk, "talk", "talk"), (wrap, "wrap-up", "wrap"),
                                  (paused, "paused", "paused"),
                                  (free, "available", "logged_in")):  # fmt: skip
        ax.barh(names, values, left=left, label=label, color=STATE_COLOURS[colour])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("hours")
    ax.set_title(f"Agents' time ({time_zone})", fontsize=9)
    ax.legend(loc="lower right")
    if lanes and timeline is not None:
        for y, agent in enumerate(lanes):
            for layer in ("logged_in", "paused", "talk", "wrap"):
                spans = [(a, b - a) for state, a, b in timeline[agent]
                         if state.split(":")[0] == layer]  # fmt: skip
                if spans:
                    states.broken_barh(spans, (y - 0.35, 0.7), color=STATE_COLOURS[layer],
                                       label=layer.replace("_", " "))  # fmt: skip
        handles, labels = states.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        states.legend(unique.values(), unique.keys(), loc="upper right", fontsize=7)
        states.set_yticks(range(len(lanes)), lanes)
        states.set_xlim(0, 24)
        states.set_xticks(range(0, 25, 2))
        states.set_xlabel(f"hour of {day} ({time_zone})")
        states.set_title("Agent states over the day", fontsize=9)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()
