"""``ree validate --posterior``: the targets under parameter uncertainty, every seed run under parameter sets
drawn by weight from a posterior that ``ree calibrate`` wrote."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from experiments import validate as v
from experiments.cli import app
from model.params import ConfigError

KEY = "behaviour.full_cost_markup"


def _posterior(tmp_path, rows, name="posterior.csv"):
    path = tmp_path / name
    path.write_text(f"{KEY},weight,distance\n" + "".join(f"{x},{w},0.0\n" for x, w in rows))
    return path


def test_draws_follow_the_weights_and_the_seed(tmp_path):
    path = _posterior(tmp_path, [(0.6, 0.0), (0.9, 1.0)])
    assert v.posterior_draws(path, 5) == [{KEY: 0.9}] * 5, "a zero weight is never drawn"
    even = _posterior(tmp_path, [(0.6, 1.0), (0.9, 1.0)], "even.csv")
    a, b = v.posterior_draws(even, 40, seed=1), v.posterior_draws(even, 40, seed=1)
    assert a == b and {d[KEY] for d in a} == {0.6, 0.9}
    assert v.posterior_draws(even, 40, seed=2) != a


@pytest.mark.parametrize("text, says", [
    (None, "file not found"),
    ("weight,distance\n1.0,0.0\n", "no parameter columns before a 'weight' column"),
    (f"{KEY},weight\n0.7,-1.0\n", "weights must be non-negative"),
    (f"{KEY},weight\nhigh,1.0\n", f"column '{KEY}' holds a value that is not a number"),
])
def test_a_bad_posterior_is_refused_naming_the_option(tmp_path, text, says):
    path = tmp_path / "p.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=f"--posterior .*{says}"):
        v.posterior_draws(path, 3)


def test_every_seed_runs_under_every_draw_and_the_table_says_how_many_draws_pass():
    def start_cost(df):  # the cost of supply at the start scales with 1 + full_cost_markup
        return float(v.series(df, "cost_of_supply", "CN", "NdPr").iloc[0])

    draws = [{KEY: 0.6}, {KEY: 0.9}]
    low = v.validate([1], workers=1, targets=[v.Target("cost", "baseline", "test", 0.0, 1e9, start_cost)],
                     overrides={KEY: 0.6})["median"].iloc[0]
    high = v.validate([1], workers=1, targets=[v.Target("cost", "baseline", "test", 0.0, 1e9, start_cost)],
                      overrides={KEY: 0.9})["median"].iloc[0]
    assert high > low
    band = v.Target("cost", "baseline", "test", 0.0, (low + high) / 2, start_cost)
    row = v.validate([1, 2], workers=1, targets=[band], draws=draws).iloc[0]
    assert row["draws"] == 2 and row["seeds"] == 2
    # seed 2 starts from slightly other auction orders (OreMarket.initial_feed), within ~0.2 % of seed 1
    assert row["p10"] == pytest.approx(low, rel=5e-3) and row["p90"] == pytest.approx(high, rel=5e-3), \
        "the spread spans the draws (p10-p90 over draws x seeds)"
    assert row["pass_share"] == 0.5, "the low-markup draw passes, the high one does not"
    assert "(50% of draws)" in v.to_markdown(v.validate([1], workers=1, targets=[band], draws=draws)
                                             .rename(columns={"pass": "pass_"}))


def test_the_command_refuses_a_missing_posterior(tmp_path):
    res = CliRunner().invoke(app, ["validate", "--seeds", "1", "--posterior", str(tmp_path / "nope.csv"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "--posterior" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists(), "nothing written before the runs"


def test_an_integer_field_is_drawn_as_the_calibration_ran_it(tmp_path):
    """posterior.csv holds a particle's unrounded value; the calibration ran it rounded (calibrate._point)."""
    path = tmp_path / "p.csv"
    path.write_text(f"miners.mm_pangwa.count,{KEY},weight\n371.6,0.7,1.0\n")
    [draw] = v.posterior_draws(path, 1)
    assert draw == {"miners.mm_pangwa.count": 372, KEY: 0.7} and isinstance(draw["miners.mm_pangwa.count"], int)
