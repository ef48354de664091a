"""The live run's pure parts: the called parties' script from the pre-drawn leads, and the
comparison with the simulator (the run itself is tests/scenarios/test_dialer.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from telephonist.bench import dialer_live as live
from telephonist.dialer.sim import NO_ANSWER_MS, SCENARIOS


def test_callee_rows_are_the_simulators_leads_call_by_call(tmp_path: Path) -> None:
    sc = SCENARIOS["LIVE"]
    rows = live.callee_rows(sc, 0, 3000)
    assert rows == live.callee_rows(sc, 0, 3000)  # the same seed, the same calls
    assert rows != live.callee_rows(sc, 1, 3000)
    outcomes = [o for o, _, _ in rows]
    assert set(outcomes) == {live.LIVE, live.BUSY, live.NO_ANSWER}
    share = outcomes.count(live.LIVE) / len(rows)
    assert 0.25 < share < 0.31  # p = 0.3, less those who would answer after the 20 s ring
    assert all(0 < ring < NO_ANSWER_MS and talk > 0 for o, ring, talk in rows if o == live.LIVE)
    path = live.write_injection(tmp_path / "inf.csv", sc, 0, 5)
    lines = path.read_text().splitlines()
    assert lines[0] == "SEQUENTIAL" and lines[1:] == [f"{o};{r};{t}" for o, r, t in rows[:5]]


def test_a_scenario_the_callees_cannot_play_is_refused() -> None:
    with pytest.raises(ValueError, match="no machines"):
        live.callee_rows(SCENARIOS["S2"], 0, 10)
    with pytest.raises(ValueError, match="drift"):
        live.callee_rows(replace(SCENARIOS["LIVE"], p_live_end=0.1), 0, 10)


def test_compare_says_when_live_and_simulator_disagree() -> None:
    sims = [
        live.Figures(300, 80, 1, 960_000, 2_400_000),
        live.Figures(280, 76, 0, 1_000_000, 2_400_000),
    ]
    close = live.compare(live.Figures(310, 82, 1, 990_000, 2_400_000), sims[0], sims)
    assert close["agree"] and close["sim_mean"]["dials"] == 290
    idle = live.compare(live.Figures(300, 80, 1, 700_000, 2_400_000), sims[0], sims)
    assert not idle["agree"] and not idle["checks"]["occupancy"]["ok"]  # 0.29 against 0.40
    assert "DISAGREE" in live.render(idle)
    overdial = live.compare(live.Figures(400, 80, 1, 960_000, 2_400_000), sims[0], sims)
    assert not overdial["checks"]["dials"]["ok"]
