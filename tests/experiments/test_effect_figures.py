"""Figures of effects (issue 13 item 3): outcome by lever level with intervals, levels in numeric order,
policy-minus-twin paths whose band says what it spans, and policy start/end markers on time axes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
import pytest

from experiments import figures as F
from experiments.compare import (
    level_order,
    lever_effects,
    natural_key,
    paired_paths,
    timeline_events,
)
from experiments.run import run_one
from experiments.sweep import load_sweep, sweep
from model.results import COLUMNS
from model.scenario import load_scenario

WEEKS = 8
LEVER = "policy.Stockpile[US].target_days"
SCENARIO = """name = "stock"
start = 2025-01-06
weeks = 12
seeds = [1, 2]

[[timeline]]
type = "Stockpile"
actor = "US"
start = 2025-01-20
end = 2025-02-17
target_days = 60.0
budget_musd = 1000.0
"""


@pytest.fixture(scope="module")
def lever_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lever_sweep")
    (root / "stock.toml").write_text(SCENARIO)
    (root / "s.toml").write_text(f'name = "lev"\nscenario = "stock.toml"\nweeks = {WEEKS}\nseeds = [1, 2]\n'
                                 f'[grid]\n"{LEVER}" = [120, 0, 30]\n')
    sweep(root / "s.toml", root / "out", workers=1, progress=False)
    return root / "out"


def test_levels_sort_in_numeric_order():
    assert level_order([120, 0, 60, 30]) == [0, 30, 60, 120]
    assert level_order(["sp120", "sp0", "sp60", "sp30"]) == ["sp0", "sp30", "sp60", "sp120"]
    assert level_order([True, False]) == [False, True]
    assert sorted(["b2", "a10", "a9"], key=natural_key) == ["a9", "a10", "b2"]


def test_lever_effects_pair_levels_on_seeds(lever_sweep):
    df = load_sweep(lever_sweep, variables=["price", "shortage", "china_refined_share"])
    table = lever_effects(df, LEVER)
    assert list(dict.fromkeys(table["level"])) == [0, 30, 120]  # numeric order, not the spec's
    assert table.attrs["reference"] == 0
    ref = table[table["level"] == 0]
    assert (ref["effect"] == 0).all() and (ref["effect_low"] == 0).all() and (ref["effect_high"] == 0).all()
    row = table[(table["level"] == 120) & (table["outcome"] == "mean_price_ROW_Dy")].iloc[0]
    assert row["n_runs"] == 2 and row["n_pairs"] == 2
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert row["effect_low"] <= row["effect"] <= row["effect_high"]
    with pytest.raises(Exception, match="not a varied parameter"):
        lever_effects(df, "policy.Stockpile[JP].target_days")


def test_make_figures_draws_the_lever_response_with_its_table(lever_sweep):
    paths = F.make_figures(lever_sweep, formats=("png",))
    names = {p.name for p in paths}
    assert "lever_Stockpile_US_target_days.png" in names
    csv = lever_sweep / "figures" / "stock" / "lever_Stockpile_US_target_days.csv"
    assert list(pd.read_csv(csv)["level"].drop_duplicates()) == [0, 30, 120]
    df = load_sweep(lever_sweep, variables=["price", "shortage"])
    fig = F.lever_response(lever_effects(df, LEVER), ["peak_price_ROW_Dy", "mean_shortage_Dy"])
    ax = fig.axes[0]
    assert "95% bootstrap interval over seeds" in fig.get_suptitle().replace("\n", " ")
    assert [round(x) for x in ax.lines[0].get_xdata()] == [0, 30, 120]
    assert ax.get_ylabel() == "USD/kg" and "Dy ex-China price, peak" in ax.get_title().replace("\n", " ")


def test_paired_paths_band_says_what_it_spans_and_events_are_marked(tmp_path):
    p = tmp_path / "stock.toml"
    p.write_text(SCENARIO)
    sc = load_scenario(p)
    policy = {s: run_one(sc, s, WEEKS) for s in (1, 2)}
    twin = {s: run_one(sc, s, WEEKS, {"policy.Stockpile[US].enabled": False}) for s in (1, 2)}
    paths = paired_paths(policy, twin)
    first = paths[(paths["seed"] == 1) & (paths["region"] == "ROW") & (paths["product"] == "Dy")]
    assert first["value"].iloc[:3].isna().all()  # 4-week means: none before the 4th week
    def dy(t):
        return t[(t["variable"] == "price") & (t["region"] == "ROW") & (t["product"] == "Dy")]["value"]

    by_hand = dy(policy[1]).iloc[-4:].mean() - dy(twin[1]).iloc[-4:].mean()
    assert first["value"].iloc[-1] == pytest.approx(by_hand) and by_hand != 0  # the stockpile moved the price
    events = timeline_events(sc)
    assert events == [(dt.date(2025, 1, 20), "Stockpile US starts"), (dt.date(2025, 2, 17), "Stockpile US ends")]
    fig = F.paired_difference(paths, events=events)
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "p10–p90 over 2 seeds of the paired difference" in legend
    ax = fig.axes[0]
    def day(x) -> dt.date:
        return mdates.num2date(x).date() if isinstance(x, float) else pd.Timestamp(x).date()

    marked = sorted(day(ln.get_xdata()[0]) for ln in ax.lines if ln.get_linestyle() == ":")
    assert marked == [dt.date(2025, 1, 20), dt.date(2025, 2, 17)]
    assert "Stockpile US starts" in [t.get_text().strip() for t in ax.texts]


def test_comparison_panels_follow_numeric_order(tmp_path, monkeypatch):
    base = run_one("baseline", 1, 4)
    root = tmp_path / "results"
    for name in ("sp120", "sp0", "sp60", "sp30"):
        (root / name).mkdir(parents=True)
        base.assign(scenario=name)[COLUMNS].to_parquet(root / name / "results.parquet", index=False)
    seen = []

    def spy(tables, *args, **kwargs):
        seen.append(list(tables))
        return F.Figure()

    monkeypatch.setattr(F, "scenario_comparison", spy)
    F.make_figures(root, formats=("png",), kinds=["price_paths"])
    assert seen and all(order == ["sp0", "sp30", "sp60", "sp120"] for order in seen)


def test_lever_figures_say_when_the_interval_spans_posterior_draws(lever_sweep, tmp_path, monkeypatch):
    """Under ``ree sweep --posterior`` each level's runs are seeds x drawn parameter sets and the interval
    resamples them all; the figure's title says so (and says seeds alone otherwise)."""
    df = load_sweep(lever_sweep, variables=["price", "shortage"])
    titles = []
    real = F.lever_response
    monkeypatch.setattr(F, "lever_response", lambda *a, **k: titles.append(k["title"]) or real(*a, **k))
    F.lever_figures(df, [LEVER], tmp_path / "plain", title="stock", formats=("png",))
    codes = {r: i % 2 for i, r in enumerate(df["run_id"].unique())}
    F.lever_figures(df.assign(draw=df["run_id"].map(codes)), [LEVER], tmp_path / "drawn", title="stock",
                    formats=("png",))
    assert titles[0].endswith("bootstrap interval over seeds")
    assert titles[1].endswith("bootstrap interval over seeds and posterior draws")
