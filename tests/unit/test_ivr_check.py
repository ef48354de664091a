"""`telephonist ivr check`: every problem with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from telephonist.cli.main import app
from telephonist.core.centre import parse_centre
from telephonist.ivr.loader import IvrError, parse_menus

CENTRE = parse_centre(
    """
queues: [{name: support}, {name: sales}]
extensions: [{number: "1001", contact: "sip:127.0.0.1:5070"}]
mailboxes: [{box: "100"}]
trunks: [{name: office, host: 127.0.0.1}]
""",
    "centre.yaml",
)
GOOD = """\
entries:
  - {number: "200", name: main-line, menu: main}
menus:
  main:
    greeting: hello
    options:
      "1": {menu: sales}
      "2": {queue: support}
  sales:
    greeting: [beep]
    options:
      "1": {queue: sales}
      "*": back
"""


DEFAULT_PROMPTS = {"goodbye", "invalid", "please-try-again", "please-try-call-later"}


def problems(text: str, prompts: set[str] | None = None) -> list[str]:
    with pytest.raises(IvrError) as err:
        parse_menus(text, "menus.yaml", CENTRE, prompts)
    return err.value.problems


def test_good_file_passes() -> None:
    menus = parse_menus(GOOD, "menus.yaml", CENTRE, {"hello", "beep"} | DEFAULT_PROMPTS)
    assert set(menus.config.menus) == {"main", "sales"}


def test_unknown_menu_names_line_and_field() -> None:
    text = GOOD.replace('"1": {menu: sales}', '"1": {menu: salse}')
    assert problems(text)[0] == "menus.yaml:7: menus.main.options.1: unknown menu 'salse'"


def test_duplicate_digit() -> None:
    text = GOOD.replace(
        '      "2": {queue: support}\n', '      "2": {queue: support}\n      "2": {queue: sales}\n'
    )
    (p,) = problems(text)
    assert p.startswith("menus.yaml:9: duplicate key '2' (first at line 8)")


def test_missing_prompt_file() -> None:
    found = problems(GOOD, prompts={"beep"} | DEFAULT_PROMPTS)
    assert found == ["menus.yaml:5: menus.main.greeting: no prompt file 'hello'"]


def test_unreachable_menu() -> None:
    text = GOOD + "  orphan:\n    greeting: beep\n    options: {'1': {queue: sales}}\n"
    assert "menus.yaml:14: menus.orphan: unreachable (no entry or option leads here)" in problems(
        text
    )


def test_loop_with_no_way_out() -> None:
    text = GOOD.replace('"1": {queue: sales}', '"1": {menu: main}').replace(
        '"2": {queue: support}', '"2": repeat'
    )
    found = problems(text)
    assert any(p.startswith("menus.yaml:4: menus.main: loop with no way out") for p in found)
    assert any(p.startswith("menus.yaml:9: menus.sales: loop with no way out") for p in found)


def test_unknown_destinations_and_bad_values() -> None:
    extra = (
        '"2": {queue: billing}\n      "3": {voicemail: "999"}\n      "4": {extension: "12"}'
        '\n      "5": {transfer: {number: "1;Hangup", trunk: office}}'
    )
    text = GOOD.replace('"2": {queue: support}', extra)
    found = "\n".join(problems(text))
    assert "menus.main.options.5.transfer.number" in found  # dialplan syntax in a number: refused
    text = GOOD.replace(
        '"2": {queue: support}',
        '"2": {queue: billing}\n      "3": {voicemail: "999"}\n      "4": {extension: "12"}',
    )
    found = "\n".join(problems(text))
    assert "menus.yaml:8: menus.main.options.2: unknown queue 'billing'" in found
    assert "menus.yaml:9: menus.main.options.3: unknown mailbox '999'" in found
    assert "menus.yaml:10: menus.main.options.4: unknown extension '12'" in found


def test_bad_option_key_and_action() -> None:
    text = GOOD.replace('"2": {queue: support}', '"22": {queue: support}')
    assert "options are single keys" in problems(text)[0]
    text = GOOD.replace('"2": {queue: support}', '"2": {queue: support, menu: sales}')
    assert "menus.yaml:8: menus.main.options.2: an action has exactly one of" in problems(text)[0]


def test_bad_hours_and_time_zone() -> None:
    text = GOOD.replace("menu: main}", 'menu: main, timezone: Mars/Base, hours: {mon-fry: "8-18"}}')
    found = "\n".join(problems(text))
    assert "menus.yaml:2: entries.0.timezone: unknown time zone 'Mars/Base'" in found
    assert "entries.0.hours" in found and "mon-fry" in found


def test_cli_check_reports_every_problem(tmp_path: Path) -> None:
    centre = tmp_path / "centre.yaml"
    centre.write_text("queues: [{name: support}, {name: sales}]\nivr: menus.yaml\n")
    menus = tmp_path / "menus.yaml"
    menus.write_text(GOOD.replace("{menu: sales}", "{menu: nowhere}"))
    cfg = tmp_path / "t.toml"
    cfg.write_text(
        f'data_dir = "d"\ncentre_file = "{centre}"\n[pbx]\ncache_dir = "{tmp_path}/none"\n'
    )
    result = CliRunner().invoke(app, ["--config", str(cfg), "ivr", "check", str(menus)])
    assert result.exit_code == 1
    assert "menus.yaml:7: menus.main.options.1: unknown menu 'nowhere'" in result.output
    assert "menus.sales: unreachable" in result.output
    menus.write_text(GOOD)
    result = CliRunner().invoke(app, ["--config", str(cfg), "ivr", "check", str(menus)])
    assert result.exit_code == 0, result.output
    assert "OK (1 entries, 2 menus)" in result.output
    assert "prompt files were not checked" in result.output
    result = CliRunner().invoke(
        app, ["--config", str(cfg), "ivr", "graph", "main-line", "-o", str(tmp_path / "g.dot")]
    )
    assert result.exit_code == 0, result.output
    dot = (tmp_path / "g.dot").read_text()
    assert '"menu:main" -> "menu:sales" [label="option 1"]' in dot
    assert "option 2 -> queue: support" in result.output
    # --out never writes through a symbolic link planted where the picture goes.
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = tmp_path / "planted.dot"
    planted.symlink_to(victim)
    result = CliRunner().invoke(
        app, ["--config", str(cfg), "ivr", "graph", "main-line", "-o", str(planted)]
    )
    assert result.exit_code == 2 and "symbolic link; refused" in result.output, result.output
    assert victim.read_text() == "precious\n"
