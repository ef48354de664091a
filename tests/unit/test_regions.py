"""A region (the country of numbers written without +CC) is checked up front, everywhere
one is given: a wrong one would silently make every national number invalid."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from telephonist.cli.main import app
from telephonist.core.centre import CallbackNumbers
from telephonist.core.settings import SettingsError, load_settings


def config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'data_dir = "d"\n[pbx]\ncache_dir = "{tmp_path}/none"\n{extra}')
    return cfg


def test_an_unknown_region_is_refused_in_settings_and_the_centre(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="'XX' is not a country code"):
        load_settings(config(tmp_path, '[dialer]\nregion = "XX"\n'))
    assert load_settings(config(tmp_path, '[dialer]\nregion = "FR"\n')).dialer.region == "FR"
    with pytest.raises(ValueError, match="'QQ' is not a country code"):
        CallbackNumbers(countries=["QQ"])


def test_dnc_takes_a_region_and_one_customer_is_one_entry(tmp_path: Path) -> None:
    cfg = str(config(tmp_path))  # dialer.region: US
    run = CliRunner().invoke
    bad = run(app, ["--config", cfg, "dnc", "add", "0612345678", "--region", "XX"])
    assert bad.exit_code == 2 and "--region: 'XX' is not a country code" in bad.output
    added = run(app, ["--config", cfg, "dnc", "add", "06 12 34 56 78",
                      "--region", "FR"])  # fmt: skip
    assert added.exit_code == 0 and "1 added" in added.output, added.output
    for number, region in (("+33612345678", []), ("0612345678", ["--region", "fr"])):
        listed = run(app, ["--config", cfg, "dnc", "check", number, *region])
        assert listed.exit_code == 0 and "on the do-not-call list" in listed.output, number
    # Read as a US number, 0612345678 is not this customer (nor a valid number).
    assert run(app, ["--config", cfg, "dnc", "check", "0612345678"]).exit_code != 0
