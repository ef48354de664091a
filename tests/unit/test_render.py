from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from telephonist.asterisk_conf.render import CONFIG_FILES, AsteriskPaths, RenderError, render_all
from telephonist.cli.main import app
from telephonist.core.centre import load_centre
from telephonist.core.settings import load_settings

EXPECTED = {
    "asterisk.conf",
    "modules.conf",
    "manager.conf",
    "http.conf",
    "ari.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "voicemail.conf",
    "rtp.conf",
    "logger.conf",
}


def render(tmp_path: Path, **overrides: Any) -> dict[str, str]:
    settings = load_settings(data_dir=tmp_path, **overrides)
    return render_all(settings, load_centre(None), AsteriskPaths(etc="/etc/asterisk"))


def test_every_template_renders_with_settings(tmp_path: Path) -> None:
    assert EXPECTED <= set(CONFIG_FILES)
    files = render(tmp_path, pbx={"ami_port": 16038, "ari_port": 16088})
    settings = load_settings(data_dir=tmp_path)
    assert "port = 16038" in files["manager.conf"]
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]
    assert f"secret = {settings.ami_secret}" in files["manager.conf"]
    # The CRMs' login: its own generated secret, UserEvents only.
    crm = files["manager.conf"].split(f"[{settings.pbx.crm_ami_user}]")[1]
    assert f"secret = {settings.crm_ami_secret}" in crm and settings.crm_ami_secret != ""
    assert "read = user\nwrite = user\n" in crm
    assert "command" not in files["manager.conf"].split("write =")[1].splitlines()[0]
    assert "bindport = 16088" in files["http.conf"]
    assert f"password = {settings.ari_secret}" in files["ari.conf"]
    assert "bind = 127.0.0.1:15060" in files["pjsip.conf"]
    assert "astetcdir => /etc/asterisk" in files["asterisk.conf"]
    assert "noload => res_resolver_unbound.so" in files["modules.conf"]
    assert "queue_log = yes" in files["logger.conf"]


def test_demo_line_goes_to_stasis_with_fallback(tmp_path: Path) -> None:
    ext = render(tmp_path)["extensions.conf"]
    assert "exten => 100,1,NoOp(telephonist line demo)" in ext
    assert "Stasis(${TELEPHONIST_APP},demo,demo)" in ext
    assert '"${STASISSTATUS}" = "FAILED"' in ext
    assert "same => n(fallback)" in ext


def test_override_folder_replaces_a_template(tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "rtp.conf.j2").write_text(
        "[general]\nrtpstart = {{ settings.pbx.rtp_start }}\n; mine\n"
    )
    files = render(tmp_path, templates_override_dir=override)
    assert files["rtp.conf"].endswith("; mine\n")
    assert "rtpend" not in files["rtp.conf"]


def test_undefined_variable_names_template_and_line(tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "queues.conf.j2").write_text("[general]\n; ok\nstrategy = {{ settings.no_such }}\n")
    with pytest.raises(RenderError) as err:
        render(tmp_path, templates_override_dir=override)
    assert "queues.conf.j2:3" in str(err.value)
    assert "no_such" in str(err.value)


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "rtp.conf.j2").write_text("[general]\n{% if %}\n")
    with pytest.raises(RenderError, match=r"rtp.conf.j2:2: template syntax error"):
        render(tmp_path, templates_override_dir=override)


def test_pbx_render_command_writes_the_set(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('data_dir = "d"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["--config", str(cfg), "pbx", "render", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == set(CONFIG_FILES)


def test_pbx_render_broken_template_is_a_clear_error(tmp_path: Path) -> None:
    override = tmp_path / "ov"
    override.mkdir()
    (override / "http.conf.j2").write_text("bindport = {{ nothing_here }}\n")
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'data_dir = "d"\ntemplates_override_dir = "{override}"\n')
    result = CliRunner().invoke(app, ["--config", str(cfg), "pbx", "render", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "http.conf.j2:1" in result.output and "nothing_here" in result.output


def test_override_can_extend_the_shipped_template(tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "extensions.conf.j2").write_text(
        '{% include "shipped/extensions.conf.j2" %}\n[my-context]\nexten => 1,1,Hangup()\n'
    )
    ext = render(tmp_path, templates_override_dir=override)["extensions.conf"]
    assert "[from-callers]" in ext and ext.rstrip().endswith("exten => 1,1,Hangup()")
