from __future__ import annotations

import pytest

from core.centre import CentreError, load_centre, parse_centre


def test_demo_centre_loads() -> None:
    centre = load_centre(None)
    assert [line.number for line in centre.lines] == ["100"]


def test_bad_number_names_file_line_and_field() -> None:
    text = (
        'name: x\nlines:\n  - number: "100"\n    name: ok\n  - number: "1,Hangup"\n    name: bad\n'
    )
    with pytest.raises(CentreError) as err:
        parse_centre(text, "centre.yaml")
    assert "centre.yaml:5: lines.1.number" in str(err.value)


def test_dialplan_injection_in_a_name_is_refused() -> None:
    text = 'lines:\n  - number: "200"\n    name: "x)\\nexten => 666"\n'
    with pytest.raises(CentreError, match="lines.0.name"):
        parse_centre(text, "c.yaml")


def test_duplicate_number() -> None:
    text = 'lines:\n  - {number: "1", name: a}\n  - {number: "1", name: b}\n'
    with pytest.raises(CentreError, match="defined twice"):
        parse_centre(text, "c.yaml")


def test_unknown_field_and_bad_yaml() -> None:
    with pytest.raises(CentreError, match="c.yaml:2: lines.0.nmber"):
        parse_centre('lines:\n  - {nmber: "1", name: a}\n', "c.yaml")
    with pytest.raises(CentreError, match="not valid YAML"):
        parse_centre("lines: [\n", "c.yaml")
