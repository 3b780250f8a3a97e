"""Seeded regression baseline: every shipped scenario, seeds 1-2, against ``tests/golden/<scenario>.json``.

The summaries (:mod:`experiments.golden`: per recorded series its week count, mean, last 4-week mean and
largest 4-week mean) are computed from the session's cached runs (``run_cached`` in ``tests/conftest.py``;
most of these runs are shared with the scenario and calibration tests), and must match the files to a
relative 1e-6 (absolute 1e-9 near zero). After an intended change of the model's behaviour, regenerate the
files with ``make golden`` (``python -m experiments.golden --update``) and commit their diff with the change.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from experiments import golden
from experiments.run import run_one
from model.scenario import list_scenarios

SCENARIOS = list_scenarios()
SHOWN = 20  # differences printed on failure


@pytest.fixture(scope="module")
def golden_runs(run_cached):
    """Every (shipped scenario, golden seed) run, split between the xdist workers."""
    run_cached.prefetch([{"scenario": sc, "seed": s} for sc in SCENARIOS for s in golden.SEEDS])
    return run_cached


def _failure(lines: list[str], scenario: str) -> str:
    more = f"\n  ... and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    return (f"{len(lines)} difference(s) from the golden summary:\n  " + "\n  ".join(lines[:SHOWN]) + more
            + f"\n{golden.regenerate_hint(scenario)}")


@pytest.mark.parametrize("seed", golden.SEEDS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_matches_golden_summary(golden_runs, scenario, seed):
    if golden.load(scenario) is None:
        pytest.fail(f"no golden file {golden.golden_path(scenario)} for the shipped scenario {scenario!r}; "
                    f"{golden.regenerate_hint(scenario)}", pytrace=False)
    summary = golden.summarise(golden_runs(scenario, seed).df)
    lines = golden.compare(scenario, {seed: summary})
    if lines:
        pytest.fail(_failure(lines, scenario), pytrace=False)


def test_golden_folder_has_every_shipped_scenario_and_seed_and_nothing_else():
    """A new shipped scenario without golden data (or a file left from a removed one) is caught here."""
    problems = golden.audit()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_cached_run_summarises_like_run_one(golden_runs):
    """The test reads the session cache (Parquet round trip: the date column's unit changes); the files are
    written from ``run_one``. Both tables hold the same values and give the same summary."""
    fresh = run_one("china_controls_2025", 1)
    cached = golden_runs("china_controls_2025", 1).df
    pd.testing.assert_frame_equal(fresh.drop(columns="date"), cached.drop(columns="date"), check_dtype=False)
    assert golden.summarise(fresh) == golden.summarise(cached)


def test_missing_file_or_scenario_names_the_regeneration_command(tmp_path):
    summary = {"rows": 2, "steps": 1, "series": {"price/CN/Dy": {"last4": 1.0, "max4": 1.0, "mean": 1.0, "n": 1}}}
    # no file for the scenario
    (line,) = golden.compare("new_scenario", {1: summary}, folder=tmp_path)
    assert "no golden file" in line and golden.COMMAND in line and "--scenario new_scenario" in line
    # a shipped scenario the folder has no file for, and a file for a scenario not shipped
    shutil.copy(golden.golden_path("baseline"), tmp_path / "baseline.json")
    shutil.copy(golden.golden_path("baseline"), tmp_path / "retired.json")
    problems = golden.audit(tmp_path, scenarios=["baseline", "new_scenario"])
    assert len(problems) == 2, problems
    assert "new_scenario: shipped scenario without a golden file" in problems[0]
    assert golden.MODULE_COMMAND in problems[0] and "--scenario new_scenario" in problems[0]
    assert "retired: golden file" in problems[1] and "not shipped" in problems[1]
    # a seed missing from a file
    (tmp_path / "retired.json").unlink()
    golden.write("baseline", {1: summary}, tmp_path)
    (line,) = golden.audit(tmp_path, scenarios=["baseline"], seeds=[1, 2])
    assert "seeds [2] missing" in line and golden.COMMAND in line
    (line,) = golden.compare("baseline", {2: summary}, folder=tmp_path)
    assert "seed 2: not in" in line and golden.COMMAND in line


def test_differences_name_scenario_seed_series_statistic_and_values(tmp_path):
    old = {"rows": 4, "steps": 2, "series": {
        "price/CN/Dy": {"last4": 300.0, "max4": 310.0, "mean": 290.0, "n": 2},
        "shortage/JP/Dy": {"last4": 0.0, "max4": 0.0, "mean": 0.0, "n": 2},
        "exports/US": {"last4": 1.0, "max4": 1.0, "mean": 1.0, "n": 2}}}
    golden.write("toy", {1: old}, tmp_path)
    new = json.loads(json.dumps(old))
    new["series"]["price/CN/Dy"]["mean"] = 290.0 * (1 + 1e-7)  # within tolerance
    new["series"]["price/CN/Dy"]["last4"] = 301.0
    new["series"]["shortage/JP/Dy"]["mean"] = 5e-10  # near zero: within the absolute tolerance
    new["series"]["shortage/JP/Dy"]["max4"] = 1e-6
    del new["series"]["exports/US"]
    new["series"]["price/CN/Ho"] = {"last4": 1.0, "max4": 1.0, "mean": 1.0, "n": 2}
    new["rows"] = 5
    lines = golden.compare("toy", {1: new}, folder=tmp_path)
    assert lines == [
        "toy seed 1 rows: golden 4, now 5",
        "toy seed 1 exports/US: in the golden file, no longer recorded",
        "toy seed 1 price/CN/Ho: recorded now, not in the golden file",
        "toy seed 1 price/CN/Dy last4: golden 300.0, now 301.0 (+3.33e-03 relative)",
        "toy seed 1 shortage/JP/Dy max4: golden 0.0, now 1e-06",
    ]


def test_summary_statistics_by_hand():
    rows = [(s, "price", "CN", "Dy", v) for s, v in enumerate([1.0, 2.0, 3.0, 10.0, 4.0, 1.0])]
    rows += [(s, "myanmar_ore_to_china", "", "", v) for s, v in [(1, 2.0), (2, 4.0)]]
    df = pd.DataFrame(rows, columns=["step", "variable", "region", "product", "value"]).sample(frac=1, random_state=0)
    s = golden.summarise(df)
    assert s["rows"] == 8 and s["steps"] == 6
    assert s["series"] == {
        "myanmar_ore_to_china": {"last4": 3.0, "max4": 3.0, "mean": 3.0, "n": 2},
        "price/CN/Dy": {"last4": 4.5, "max4": 4.75, "mean": 3.5, "n": 6},
    }


def test_ree_golden_checks_one_scenario_and_rejects_an_unknown_one():
    from typer.testing import CliRunner

    from experiments.cli import app

    ok = CliRunner().invoke(app, ["golden", "--scenario", "china_controls_2025", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok: 1 scenario(s) x seeds [1, 2]")
    bad = CliRunner().invoke(app, ["golden", "--scenario", "nope"])
    assert bad.exit_code == 2 and "not a shipped scenario" in bad.output
