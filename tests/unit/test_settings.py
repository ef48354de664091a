from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from telephonist.cli.main import app
from telephonist.core.settings import SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "telephonist.toml"
    path.write_text(text)
    return path


def test_defaults_then_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path, 'data_dir = "data"\n[pbx]\nami_port = 16000\nari_port = 16001\n')
    monkeypatch.setenv("TELEPHONIST_PBX__ARI_PORT", "17001")
    s = load_settings(cfg)
    assert s.pbx.sip_port == 15060  # default
    assert s.pbx.ami_port == 16000  # file
    assert s.pbx.ari_port == 17001  # environment beats file
    assert s.data_dir == tmp_path / "data"  # relative to the config file


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'data_dir = "d"\n[pbx]\nami_prot = 1\n')
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    assert "pbx.ami_prot" in str(err.value)
    assert "unknown setting" in str(err.value)
    assert str(cfg) in str(err.value)


def test_bad_value_is_named_with_its_variable(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'data_dir = "d"\n[pbx]\nami_port = 99999\n')
    with pytest.raises(SettingsError) as err:
        load_settings(cfg)
    message = str(err.value)
    assert "pbx.ami_port" in message and "TELEPHONIST_PBX__AMI_PORT" in message
    assert "99999" in message


def test_unknown_environment_variable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEPHONIST_PBX__AMIPORT", "1")
    with pytest.raises(SettingsError, match="TELEPHONIST_PBX__AMIPORT: unknown setting 'amiport'"):
        load_settings(data_dir=tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[pbx\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_generated_once_alphanumeric_and_private(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path)
    again = load_settings(data_dir=tmp_path)
    assert first.ami_secret == again.ami_secret
    assert first.ari_secret == again.ari_secret
    assert first.ami_secret != first.ari_secret
    assert first.ari_secret.isalnum() and len(first.ari_secret) >= 32
    mode = stat.S_IMODE((tmp_path / "secrets.toml").stat().st_mode)
    assert mode == 0o600
    other = load_settings(data_dir=tmp_path / "elsewhere")
    assert other.ami_secret != first.ami_secret  # never a shared default


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    cfg = write(
        tmp_path, 'data_dir = "d"\n[pbx]\nami_secret = "s3cretvalue"\n[mqtt]\npassword = "pw"\n'
    )
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["pbx"]["ami_secret"] == "********"
    assert shown["mqtt"]["password"] == "********"
    assert "s3cretvalue" not in result.output
    assert shown["pbx"]["ami_port"] == 15038


def test_cli_bad_settings_exit_2_with_message(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[http]\nport = "eighty"\n')
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 2
    assert "http.port" in result.output


def test_storage_url_driver_checked(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="storage.url"):
        load_settings(data_dir=tmp_path, storage={"url": "mysql://x"})


def test_the_data_folder_database_and_secrets_are_private(tmp_path: Path) -> None:
    import asyncio
    import os

    from telephonist.core.storage import Store

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # made by an older version, readable by all
    s = load_settings(write(tmp_path, 'data_dir = "data"\n'))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secrets.toml").stat().st_mode) == 0o600

    async def touch_db() -> None:
        store = Store(s.database_url)
        await store.migrate()
        await store.close()

    asyncio.run(touch_db())
    for name in ("telephonist.db", "telephonist.db-wal", "telephonist.db-shm"):
        if (data / name).exists():
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_a_secrets_file_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    elsewhere = tmp_path / "planted.toml"
    elsewhere.write_text('ami_secret = "chosen-by-somebody-else"\n')
    (data / "secrets.toml").symlink_to(elsewhere)
    with pytest.raises(SettingsError, match="secrets.toml: cannot be read safely"):
        load_settings(write(tmp_path, 'data_dir = "data"\n'))


def test_database_passwords_are_never_printed(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        'data_dir = "data"\n[storage]\nurl = "postgresql+asyncpg://tel:s3cret@127.0.0.1:1/x"\n',
    )
    shown = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "s3cret" not in shown.output and "tel:***@127.0.0.1" in shown.output
