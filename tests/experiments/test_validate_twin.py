"""Validation targets measured against the scenario's no-policy twin (issue 12 item 4-5): a policy's effect is
the metric of its run less the metric of its twin's run on the same seed, not a before/after drift."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from experiments import validate as v
from experiments.calibrate import _run_metrics
from experiments.run import run_one


def _finance(df: pd.DataFrame) -> float:
    """Every lender's money committed at the end (0 in a run without lenders)."""
    d = df[df["variable"] == "finance_committed"]
    return float(d[d["step"] == d["step"].max()]["value"].sum()) if len(d) else 0.0


PAIRED = v.Target("money committed, framework minus twin", "us_japan_framework", "test", 1.0, 1e4, _finance,
                  "M USD", paired=True)


def test_a_paired_target_reads_its_run_less_its_twins():
    runs = {"s": pd.DataFrame({"variable": ["finance_committed"], "step": [3], "value": [7.0]}),
            "s" + v.TWIN: pd.DataFrame({"variable": ["finance_committed"], "step": [3], "value": [2.0]})}
    t = dataclasses.replace(PAIRED, scenario="s")
    assert t.runs == ("s", "s" + v.TWIN)
    assert v.measure_runs(t, runs, None) == pytest.approx(5.0)
    assert v.measure_runs(dataclasses.replace(t, paired=False), runs, None) == pytest.approx(7.0)


def test_the_twin_is_the_scenario_without_its_policies_and_keeps_the_world():
    twin = v.scenario_for("us_japan_framework" + v.TWIN, "world_2024.toml")
    assert twin.world == "world_2024.toml" and twin.weeks == 312
    assert not {d["type"] for d in twin.timeline} & {"Financing", "Stockpile", "PermitStreamlining"}


def test_validate_and_calibrate_run_the_twin_and_report_the_difference():
    """The framework's lenders commit money; its twin has none: the target's value is the money itself."""
    table = v.validate([1], workers=1, targets=[PAIRED])
    row = table.iloc[0]
    assert row["seeds"] == 1 and row["pass"], table.to_dict("records")
    assert 100.0 < row["median"] < 3200.0  # within the two facilities' budgets (seed F5, F23)
    # a calibration's worker runs the twin beside the scenario for a paired target of the shipped list
    name = next(t.name for t in v.TARGETS if t.paired)
    _, values = _run_metrics((0, "us_japan_framework", 1, {}, None, (name,)))
    shipped = next(t for t in v.TARGETS if t.paired)
    alone = shipped.metric(run_one(v.scenario_for("us_japan_framework", None), 1))
    assert values[name] < 0 < alone  # a share falls; the share itself is positive
    assert values[name] == pytest.approx(alone - shipped.metric(run_one(
        v.scenario_for("us_japan_framework" + v.TWIN, None), 1)))
