"""``telephonist ivr``: check, list, show and draw the menus; reload them in a running serve."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import typer

from telephonist.cli.common import errors, state
from telephonist.core.centre import load_centre
from telephonist.core.files import ExportError, open_export
from telephonist.core.http_client import ApiError, api, url
from telephonist.ivr.definitions import available_prompts
from telephonist.ivr.graph import to_dot, to_text
from telephonist.ivr.loader import IvrError, MenuSet, load_menus

app = typer.Typer(help="IVR menus: check, list, show, graph, reload.")


def _menus(ctx: typer.Context, file: Path | None = None) -> MenuSet:
    settings = state(ctx).settings()
    with errors():
        centre = load_centre(settings.centre_file)
        path = file or centre.ivr
        if path is None:
            typer.secho("error: the centre has no menu file (ivr: in the centre file)", err=True)
            raise typer.Exit(2)
        return load_menus(path, centre, available_prompts(settings))


@app.command()
def check(ctx: typer.Context, file: Path = typer.Argument(..., help="The menu file")) -> None:
    """Check a menu file: every problem with file, line and field. Exit 1 if any."""
    settings = state(ctx).settings()
    with errors():
        centre = load_centre(settings.centre_file)
    prompts = available_prompts(settings)
    try:
        menus = load_menus(file, centre, prompts)
    except IvrError as exc:
        for problem in exc.problems:
            typer.echo(problem)
        typer.secho(f"{len(exc.problems)} problem(s) in {file}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    c = menus.config
    typer.echo(f"{file}: OK ({len(c.entries)} entries, {len(c.menus)} menus)")
    if prompts is None:
        typer.echo("note: prompt files were not checked (sandbox not built, or set pbx.sounds_dir)")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The entries (numbers) and menus of the centre's menu file."""
    c = _menus(ctx).config
    typer.echo("entries:")
    for e in c.entries:
        hours = "always open" if e.hours is None else json.dumps(e.hours)
        tz = e.timezone or c.timezone
        typer.echo(f"  {e.number:>6}  {e.name:<20} -> menu {e.menu}  ({hours}, tz {tz})")
    typer.echo("menus:")
    for name, m in c.menus.items():
        kind = f"input {m.input.name}" if m.input else "options " + "".join(sorted(m.options))
        typer.echo(f"  {name:<20} {kind}")


@app.command()
def show(ctx: typer.Context, name: str) -> None:
    """One menu, as its tree of options."""
    c = _menus(ctx).config
    if name not in c.menus:
        typer.secho(f"error: no menu {name!r} (menus: {', '.join(c.menus)})", err=True)
        raise typer.Exit(2)
    typer.echo(to_text(c, name))


@app.command()
def graph(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A menu or an entry name"),
    out: Path = typer.Option(None, "--out", "-o", help="Write a picture: .png, .svg or .dot"),
) -> None:
    """Draw the menu tree as text, and with --out as a Graphviz picture."""
    c = _menus(ctx).config
    entry = c.entry(name)
    root = entry.menu if entry is not None else name
    if root not in c.menus:
        typer.secho(f"error: no menu or entry {name!r}", err=True)
        raise typer.Exit(2)
    typer.echo(to_text(c, root))
    if out is None:
        return
    dot = to_dot(c, root)
    fmt = out.suffix.lstrip(".").lower()
    if fmt == "dot":
        data = dot.encode()
    elif fmt in ("png", "svg"):
        if shutil.which("dot") is None:
            typer.secho(
                "error: Graphviz 'dot' is not installed (apt-get install graphviz)", err=True
            )
            raise typer.Exit(2)
        # Drawn to a pipe and written by us: never through a link planted at --out.
        data = subprocess.run(
            ["dot", f"-T{fmt}"], input=dot.encode(), capture_output=True, check=True
        ).stdout
    else:
        typer.secho("error: --out must end in .png, .svg or .dot", err=True)
        raise typer.Exit(2)
    try:
        with open_export(out, "wb") as fh:
            fh.write(data)
    except ExportError as exc:
        typer.secho(f"error: --out {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out}")


@app.command()
def reload(ctx: typer.Context) -> None:
    """Make a running `serve` load the menu file again (calls in a menu finish on theirs)."""
    s = state(ctx).settings()
    try:
        body = api(s, "/ivr/reload", method="POST", timeout=10)
        typer.echo(f"menus reloaded: version {body['version']} from {body['source']}")
    except ApiError as exc:
        if exc.status != 422:
            typer.secho(f"error: serve refused the reload: {exc}", err=True)
            raise typer.Exit(2) from None
        for problem in exc.body.get("problems", []):
            typer.echo(problem)
        typer.secho(
            f"refused: {exc.body.get('error')}; still running version {exc.body.get('running')}",
            err=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.secho(
            f"error: telephonist serve is not answering at {url(s, '/ivr/reload')}: {exc}",
            err=True,
        )
        raise typer.Exit(2) from None


@app.command()
def bench(
    max_rate: int = typer.Option(400, help="Stop stepping at this many calls per second"),
) -> None:
    """Benchmark the IVR against the same menu in plain dialplan (sandbox PBX, sipp)."""
    import asyncio

    from telephonist.asterisk_conf.sandbox import SandboxError
    from telephonist.bench.ivr import RATES, run

    rates = tuple(r for r in RATES if r <= max_rate)
    typer.echo("IVR benchmark: answer, prompt, one digit, prompt, hang up (sipp, RFC 4733)")
    with errors(SandboxError, RuntimeError):
        r = asyncio.run(run(out=typer.echo, rates=rates))
    best = r["max_rate"]
    typer.echo("")
    typer.echo(
        f"highest rate with zero failures: telephonist {best['telephonist']} calls/s, "
        f"plain dialplan {best['dialplan']} calls/s, ratio {r['ratio']:.2f}"
    )
    t, d = r["telephonist_ms"], r["dialplan_ms"]
    typer.echo(
        f"digit -> next prompt at {r['latency_rate']} calls/s: "
        f"telephonist p50 {t['p50']:.1f} ms p99 {t['p99']:.1f} ms (n={t['n']}); "
        f"dialplan p50 {d['p50']:.1f} ms p99 {d['p99']:.1f} ms (n={d['n']})"
    )
    typer.echo(f"CPU seconds during the latency run: {r['cpu_seconds']}")
