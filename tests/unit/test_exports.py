"""Files written for an admin (exports, rejects, pictures) never follow a planted link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telephonist.core.files import ExportError, open_export


def test_an_export_refuses_a_symbolic_link_and_writes_a_private_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "report.csv"
    link.symlink_to(victim)
    with pytest.raises(ExportError, match="symbolic link; refused"):
        open_export(link)
    assert victim.read_text() == "precious\n"
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(ExportError, match="not a regular file"):
        open_export(fifo)
    real = tmp_path / "real.csv"
    real.write_text("old, longer content\n")
    with open_export(real) as fh:
        fh.write("new\n")
    assert real.read_text() == "new\n"
    fresh = tmp_path / "fresh.bin"
    with open_export(fresh, "wb") as fb:
        fb.write(b"\x00")
    assert fresh.stat().st_mode & 0o777 == 0o600
