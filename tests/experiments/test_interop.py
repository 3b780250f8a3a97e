"""Interop: mesa.batch_run through the model's keyword parameters, and the EMA Workbench adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.run import run_one
from experiments.sweep import batch_run
from model.params import ConfigError, load_world
from model.results import series

WEEKS = 13
WORLD = load_world()


def test_mesa_batch_run_returns_rows_matching_run_one():
    df = batch_run({"scenario": "baseline", "weeks": WEEKS, "behaviour.site_entry_rate": [0.03, 0.08]},
                   seeds=[1, 2], data_collection_period=1)
    assert len(df) == 4 * (WEEKS + 1)
    assert {"RunId", "Step", "seed", "behaviour.site_entry_rate"} <= set(df.columns)
    # a price reporter for every market of the world (products and regions are data)
    assert {f"price_{r}_{p}" for r in WORLD.region_ids for p in WORLD.product_names} <= set(df.columns)
    row = df[(df["seed"] == 2) & (df["behaviour.site_entry_rate"] == 0.08) & (df["Step"] == WEEKS)].iloc[0]
    direct = run_one("baseline", 2, WEEKS, {"behaviour.site_entry_rate": 0.08})
    assert row["price_CN_Dy"] == pytest.approx(series(direct, "price", "CN", "Dy").iloc[-1], rel=1e-12)
    with pytest.raises(ConfigError, match="seeds"):
        batch_run({"scenario": "baseline", "seed": [1, 2]})


def test_ema_perform_experiments_returns_outcomes():
    ema = pytest.importorskip("ema_workbench")
    from experiments.ema import make_model

    model = make_model("baseline", weeks=WEEKS)
    names = {u.name for u in model.uncertainties}
    assert {"full_cost_markup", "wtp_share_of_magnet_value", "site_entry_rate", "KIA_levy_usd_per_kg"} <= names
    assert {"us_stockpile_days", "jp_reserve_weeks", "eneabba_status"} <= {lv.name for lv in model.levers}
    experiments, outcomes = ema.perform_experiments(model, scenarios=3, policies=2)
    assert len(experiments) == 6 and names <= set(experiments.columns)
    assert outcomes["peak_cn_dy_price"].shape == (6,) and np.isfinite(outcomes["peak_cn_dy_price"]).all()
    assert outcomes["price_ROW_Dy"].shape == (6, WEEKS + 1)
    # two policies with different levers: different ex-China stockpile buying, so different outcomes
    assert not np.allclose(outcomes["price_ROW_Dy"][0], outcomes["price_ROW_Dy"][3])


def test_ema_levers_reach_the_model_and_bad_ones_fail_early():
    ema = pytest.importorskip("ema_workbench")
    from experiments.ema import ModelFunction, make_model

    fn = ModelFunction("baseline", WEEKS)
    sc, overrides = fn.scenario_for({"policy:Stockpile:US:target_days": 90.0,
                                     "refiners.au_iluka_eneabba.status": "operating",
                                     "states.JP.reserve.max_weeks": 17.0})
    assert sc.timeline[-1]["type"] == "Stockpile" and sc.timeline[-1]["actor"] == "US"
    assert sc.with_overrides(overrides).load_world().state("JP").reserve.max_weeks == 17.0
    df = run_one(sc, 1, WEEKS, overrides)
    assert df.loc[(df["variable"] == "stockpile") & (df["region"] == "US"), "value"].max() > 0
    assert df.loc[(df["variable"] == "stockpile_bought") & (df["region"] == "US"), "value"].sum() > 0
    assert series(df, "capacity_online", "AU").iloc[0] > 0
    # every default uncertainty and lever maps onto the world or a policy (make_model checks both bounds)
    from experiments.ema import default_levers, default_uncertainties
    from experiments.sensitivity import load_spec

    spec = load_spec(Path(__file__).parents[2] / "experiments" / "specs" / "sensitivity_behaviour.toml")
    unc = default_uncertainties()
    assert {u.variable_name[0]: (u.lower_bound, u.upper_bound) for u in unc} == spec.parameters
    make_model("baseline", weeks=WEEKS, uncertainties=unc, levers=default_levers())
    with pytest.raises(ConfigError, match="XX"):
        make_model("baseline", weeks=WEEKS, uncertainties=[], levers=[
            ema.RealParameter("x", 6.0, 17.0, variable_name="states.XX.reserve.max_weeks")])
    with pytest.raises(ConfigError, match="no_such_rate"):
        make_model("baseline", weeks=WEEKS, levers=[],
                   uncertainties=[ema.RealParameter("x", 0.0, 1.0, variable_name="behaviour.no_such_rate")])
