"""Definition files cannot hurt the process that reads them: not UTF-8, alias bombs, too deep,
too big are refused with file:line, quickly and with bounded memory."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from telephonist.core.centre import CentreError, load_centre
from telephonist.core.yamlfile import MAX_BYTES, DefinitionError, load_raw, read_definition

BOMB = "\n".join(
    [
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        *(
            f"{n}: &{n} [{','.join(['*' + p] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_an_alias_bomb_is_refused_at_once_in_little_memory() -> None:
    assert len(BOMB) < 1024
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(DefinitionError, match=r"^menus.yaml:\d+: expands to more than"):
        load_raw(BOMB, "menus.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20 * 1024 * 1024


def test_aliases_within_the_limits_still_work() -> None:
    raw = load_raw("base: &h {mon-fri: '08:00-18:00'}\nq1: {hours: *h}\nq2: {hours: *h}\n", "c")
    assert raw["q2"]["hours"]["mon-fri"] == "08:00-18:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "[" * 60 + "]" * 60, r"^f.yaml:1: nested deeper than 40 levels"),
        ("[" * 5000 + "]" * 5000, r"^f.yaml: nested too deeply"),
        ("a: &x [*x]", r"^f.yaml:1: "),  # a recursive alias: refused, whatever PyYAML says
    ],
)
def test_too_deep_or_self_referring_is_refused(text: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        load_raw(text, "f.yaml")


def test_not_utf8_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "centre.yaml"
    path.write_bytes("name: demo\nqueues:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CentreError) as info:
        load_centre(path)
    assert info.value.problems == [
        f"{path}:3: not UTF-8 (byte 0xe9 at column 14); save the file as UTF-8"
    ]


def test_a_file_too_large_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "menus.yaml"
    path.write_bytes(b"# " + b"x" * (MAX_BYTES + 10))
    with pytest.raises(DefinitionError, match=f"larger than {MAX_BYTES} bytes"):
        read_definition(path)
