"""The wheel adds one import name, ``telephonist``, and works from where it is installed: the
CLI, the Asterisk templates, the migrations, the demo centre and the sipp scenarios travel
with it (pyproject's [tool.setuptools] package-dir mapping)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


PRODUCT = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ].values()
)
"""The product's folders, as pyproject maps them into the one import name."""


def test_the_wheel_installs_one_import_name_and_runs_from_its_own_files(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ beside pyproject.toml.
    source = tmp_path / "source"
    for name in PRODUCT:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("telephonist-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "telephonist",
        f"{wheel.name.split('-py')[0]}.dist-info",
    }
    for wanted in ("telephonist/asterisk_conf/templates/extensions.conf.j2",
                   "telephonist/core/migrations/env.py", "telephonist/demo/centre.yaml",
                   "telephonist/bench/sipp/customer.xml", "telephonist/cli/main.py"):  # fmt: skip
        assert wanted in names, wanted
    assert not [n for n in names if n.startswith("telephonist/tests")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Run from the unpacked wheel (first on the path): the modules, templates and
    # migrations must all come from there, and the CLI must start.
    probe = (
        "import telephonist.cli.main as m, telephonist.asterisk_conf.render as r, "
        "telephonist.core.storage as s, telephonist.core.centre as c; "
        "print(m.__file__); print(r.TEMPLATE_DIR); print(s.MIGRATIONS); "
        "print(c.Centre.__module__)"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], env={"PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    main, templates, migrations, module = ran.stdout.split()
    assert Path(main).is_relative_to(site) and Path(templates).is_relative_to(site)
    assert (Path(templates) / "extensions.conf.j2").is_file()
    assert (Path(migrations) / "versions").is_dir() and module == "telephonist.core.centre"
    helped = subprocess.run(
        [sys.executable, "-m", "telephonist.cli.main", "--help"], env={"PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr[-2000:]
