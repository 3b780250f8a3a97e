"""Paired effects with intervals (issue 13 item 3): a policy against its no-policy twin over common seeds,
outcomes on 4-week means, percentile-bootstrap intervals from their own seeded Generator, and the number of
seeds needed for a given half-width."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.compare import (
    bootstrap_ci,
    effect_table,
    format_effects,
    paired_effects,
    run_outcomes,
    seeds_needed,
)
from model.policies import parse_item as parse

SCENARIO = """name = "stock"
start = 2025-01-06
weeks = 12
seeds = [1, 2]

[[timeline]]
type = "Stockpile"
actor = "US"
start = 2025-01-06
target_days = 120.0
budget_musd = 1000.0
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("effects") / "stock.toml"
    p.write_text(SCENARIO)
    return p


def test_a_constant_difference_has_a_zero_width_interval_at_that_value():
    lo, hi = bootstrap_ci(np.full(7, 3.25), np.random.default_rng(0))
    assert lo == hi == pytest.approx(3.25)
    twin = pd.DataFrame({"x": [1.0, 5.0, 2.0], "y": [0.0, 0.0, 0.0]}, index=pd.Index([1, 2, 3], name="seed"))
    table = effect_table(twin + 5.0, twin)
    assert table.loc["x", ["effect", "ci_low", "ci_high", "sd"]].tolist() == pytest.approx([5.0, 5.0, 5.0, 0.0])
    assert table.loc["x", "seeds_needed"] == 2  # no spread: the minimum that can show one
    assert table.loc["y", "seeds_needed"] == -1  # the twin is zero: no relative target


def test_the_bootstrap_is_seeded_and_leaves_the_global_stream_alone():
    d = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking that nothing draws from it
    a = bootstrap_ci(d, np.random.default_rng(42))
    b = bootstrap_ci(d, np.random.default_rng(42))
    assert a == b
    assert a[0] < d.mean() < a[1] and d.min() <= a[0] and a[1] <= d.max()
    assert bootstrap_ci(d, np.random.default_rng(43)) != a
    assert (np.random.get_state()[1] == state).all()  # noqa: NPY002
    wide = bootstrap_ci(d, np.random.default_rng(42), level=0.99)
    assert wide[0] <= a[0] and wide[1] >= a[1]


def test_only_common_seeds_are_paired():
    p = pd.DataFrame({"x": [10.0, 20.0, 30.0]}, index=[1, 2, 3])
    t = pd.DataFrame({"x": [9.0, 18.0, 100.0]}, index=[2, 3, 4])
    row = effect_table(p, t).loc["x"]
    assert row["n_seeds"] == 2 and row["effect"] == pytest.approx((20 - 9 + 30 - 18) / 2)
    with pytest.raises(Exception, match="no common seeds"):
        effect_table(p, t.set_axis([7, 8, 9]))


def test_seeds_needed_is_the_normal_formula():
    assert seeds_needed(10.0, 2.0) == 97  # ceil((1.96 * 10 / 2)^2) = ceil(96.04)
    assert seeds_needed(10.0, 2.0, level=0.9) == 68  # ceil((1.645 * 5)^2) = ceil(67.6)
    assert seeds_needed(1.0, 1.96) == 2  # one seed by the formula, two to see any spread
    assert seeds_needed(3.0, 0.0) == -1


def test_outcomes_use_4_week_means_not_single_week_extremes():
    weeks = 12
    rows = []
    for step in range(weeks):
        price = 100.0 + (80.0 if step == 6 else 0.0)  # a one-week spike
        for region in ("CN", "ROW"):
            rows.append({"run_id": "r", "scenario": "s", "seed": 1, "step": step, "date": dt.date(2025, 1, 6),
                         "variable": "price", "region": region, "product": "Dy", "value": price})
        rows.append({"run_id": "r", "scenario": "s", "seed": 1, "step": step, "date": dt.date(2025, 1, 6),
                     "variable": "shortage", "region": "US", "product": "Dy", "value": 8.0 if step == 3 else 0.0})
    out = run_outcomes(pd.DataFrame(rows))
    assert out["peak_price_ROW_Dy"] == pytest.approx(120.0)  # (3 x 100 + 180) / 4, not 180
    assert out["mean_price_ROW_Dy"] == pytest.approx(100.0 + 80.0 / weeks)
    assert out["mean_shortage_Dy"] == pytest.approx(8.0 / weeks)  # weeks without a shortage row count as 0
    assert out["peak_shortage_Dy"] == pytest.approx(2.0)


def test_paired_effects_of_a_policy_against_its_twin(scenario_file):
    table = paired_effects(scenario_file, without="Stockpile[US]", seeds=[1, 2], weeks=12)
    assert table.attrs["twin"] == "stock without Stockpile[US]" and table.attrs["seeds"] == [1, 2]
    again = paired_effects(scenario_file, without="Stockpile[US]", seeds=[1, 2], weeks=12)
    pd.testing.assert_frame_equal(table, again)  # runs and bootstrap are seeded
    assert (table["ci_low"] <= table["effect"] + 1e-12).all() and (table["effect"] <= table["ci_high"] + 1e-12).all()
    row = table.loc["mean_price_ROW_Dy"]
    assert row["effect"] == pytest.approx(row["policy"] - row["twin"])
    assert row["effect"] > 0  # an agency buying toward 120 days of use raises the price it buys in
    assert row["label"] == "Dy ex-China price, mean" and row["unit"] == "USD/kg"
    text = format_effects(table)
    assert text.startswith("stock minus stock without Stockpile[US]: paired differences over seeds 1..2 (2 seeds)")


def test_cli_compare_alone_is_against_the_no_policy_twin(scenario_file):
    """A policy scenario alone is compared with its no-policy twin (every policy out, events kept); a
    scenario without policies has none and says so."""
    ok = CliRunner().invoke(app, ["compare", str(scenario_file), "--seeds", "2", "--weeks", "8"])
    assert ok.exit_code == 0, ok.output
    assert "minus stock without its policies" in ok.output
    same = CliRunner().invoke(app, ["compare", str(scenario_file), "--without", "policies", "--seeds", "2",
                                    "--weeks", "8"])
    assert same.output == ok.output
    bad = CliRunner().invoke(app, ["compare", "baseline", "--seeds", "1", "--weeks", "4"])
    assert bad.exit_code == 2 and "no policy in its timeline" in bad.output, bad.output


def test_no_policy_twin_keeps_the_events():
    from experiments.levers import without_policies
    from model.scenario import load_scenario

    sc = load_scenario("combined_2025")
    twin = without_policies(sc)
    kinds = [parse(d).kind for d in twin.timeline]
    assert kinds and set(kinds) == {"event"}
    assert len(twin.timeline) == sum(parse(d).kind == "event" for d in sc.timeline)


def test_cli_compare_without_and_its_errors(scenario_file):
    ok = CliRunner().invoke(app, ["compare", str(scenario_file), "--without", "Stockpile[US]", "--seeds", "2",
                                  "--weeks", "8"])
    assert ok.exit_code == 0, ok.output
    assert "95% interval" in ok.output and "seeds needed" in ok.output
    assert "Dy ex-China price, peak 4-week mean (USD/kg)" in ok.output
    for args, says in [(["--without", "Stockpile[JP]"], ["without 'Stockpile[JP]'", "Stockpile[US]"]),
                       (["--without", "Stockpile"], ["Type[actor]", "Stockpile[US]"]),
                       (["baseline", "--without", "Stockpile[US]"], ["--without", "give no second scenario"]),
                       (["baseline", "--precision", "0"], ["--precision 0.0"])]:
        bad = CliRunner().invoke(app, ["compare", str(scenario_file), *args, "--seeds", "1", "--weeks", "4"])
        assert bad.exit_code == 2 and "Traceback" not in bad.output, bad.output
        for s in says:
            assert s in bad.output, bad.output


def _rows(step: int, variable: str, region: str, product: str, value: float) -> dict:
    return {"run_id": "r", "scenario": "s", "seed": 1, "step": step, "date": dt.date(2025, 1, 6),
            "variable": variable, "region": region, "product": product, "value": value}


def test_the_heavy_refining_share_and_the_money_are_outcomes():
    """China's share of the Dy and Tb refined over the run (tonnes added over weeks, not a mean of weekly
    shares), and every lender's money at the end; a run without lenders (a twin) has none, so the paired
    effect on the money is the money."""
    rows = [_rows(0, "refined_output", "CN", "Dy", 9.0), _rows(0, "refined_output", "ROW", "Dy", 1.0),
            _rows(1, "refined_output", "CN", "Dy", 6.0), _rows(1, "refined_output", "ROW", "Tb", 4.0),
            _rows(1, "refined_output", "ROW", "NdPr", 500.0),  # not a heavy rare earth
            _rows(0, "finance_committed", "US EXIM", "", 100.0), _rows(1, "finance_committed", "US EXIM", "", 240.0),
            _rows(1, "finance_committed", "JBIC/JICA", "", 60.0), _rows(1, "finance_stranded", "US EXIM", "", 0.0)]
    out = run_outcomes(pd.DataFrame(rows))
    assert out["china_heavy_refined_share"] == pytest.approx(15.0 / 20.0)
    assert out["china_magnet_ree_refined_share"] == pytest.approx(15.0 / 520.0)  # NdPr counts here
    assert out["finance_committed"] == pytest.approx(300.0)  # the last week's, over lenders
    twin = run_outcomes(pd.DataFrame([r for r in rows if not r["variable"].startswith("finance")]))
    assert twin["finance_committed"] == 0.0 and twin["finance_spent"] == 0.0
    seeds = pd.Index([1], name="seed")
    table = effect_table(pd.DataFrame([out], index=seeds), pd.DataFrame([twin], index=seeds))
    assert table.loc["finance_committed", "effect"] == pytest.approx(300.0)


def test_outcomes_zero_in_both_runs_are_named_once_not_listed():
    """No one short in either run, no money stranded: one line names them instead of a table of zeros."""
    seeds = pd.Index([1, 2], name="seed")
    p = pd.DataFrame({"mean_shortage_Dy": [0.0, 0.0], "peak_shortage_Dy": [0.0, 0.0],
                      "mean_shortage_Tb": [0.0, 0.0], "peak_shortage_Tb": [0.0, 0.0],
                      "finance_stranded": [0.0, 0.0], "mean_price_ROW_Dy": [250.0, 260.0]}, index=seeds)
    t = p.copy()
    t["mean_price_ROW_Dy"] = [240.0, 250.0]
    table = effect_table(p, t)
    table["label"] = ["Dy shortage, mean", "Dy shortage, peak 4-week mean", "Tb shortage, mean",
                      "Tb shortage, peak 4-week mean", "financing stranded, all lenders, at the end",
                      "Dy ex-China price, mean"]
    table["unit"] = ["t/week"] * 4 + ["M USD", "USD/kg"]
    table.attrs.update(seeds=[1, 2], weeks=10)
    text = format_effects(table)
    assert "Dy ex-China price, mean (USD/kg)" in text and "shortage, mean (t/week)" not in text
    assert text.splitlines()[-1] == ("zero in both on every seed (not listed above): Dy, Tb shortage, mean and "
                                     "peak 4-week mean; financing stranded, all lenders, at the end")
    t.loc[2, "mean_shortage_Tb"] = 0.5  # short in one twin run: a row of its own
    again = effect_table(p, t)
    again["label"], again["unit"] = table["label"], table["unit"]
    again.attrs.update(seeds=[1, 2], weeks=10)
    text = format_effects(again)
    assert "Tb shortage, mean (t/week)" in text
    assert text.splitlines()[-1].endswith("Dy shortage, mean; Dy, Tb shortage, peak 4-week mean; "
                                          "financing stranded, all lenders, at the end")
