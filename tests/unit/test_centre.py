from __future__ import annotations

import pytest

from telephonist.core.centre import CentreError, load_centre, parse_centre


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


def test_disposition_keys_default_and_hostile_ones_refused() -> None:
    assert parse_centre("name: x\n", "c.yaml").dispositions["9"] == "dnc"
    own = parse_centre('dispositions: {"1": sale, "5": voicemail-left}\n', "c.yaml")
    assert own.dispositions == {"1": "sale", "5": "voicemail-left"}
    with pytest.raises(CentreError, match="c.yaml:1: dispositions.*not one digit"):
        parse_centre('dispositions: {"12": sale}\n', "c.yaml")
    with pytest.raises(CentreError, match="not a disposition code"):
        parse_centre('dispositions: {"1": "x,1,Dial(PJSIP/y)"}\n', "c.yaml")
