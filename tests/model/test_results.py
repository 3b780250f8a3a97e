"""Issue 2, item 6: results declared once and collected as a tidy long table; a DataCollector view.

``mesa.batch_run`` is tested elsewhere (experiments).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.model import RareEarthModel, reporter_name
from model.results import COLUMNS, OUTPUTS, series
from tests.conftest import build_scenario

DOCUMENTED = ["run_id", "scenario", "seed", "step", "date", "variable", "region", "product", "value"]
WEEKS = 110  # combined_2025 to Feb 2026: seizures, halt, licences, floor, financing, stockpile, election


@pytest.fixture(scope="module")
def combined():
    m = RareEarthModel("combined_2025", seed=1, weeks=WEEKS, run_id="combined-test")
    m.run()
    return m, m.results()


def test_columns_exactly_as_documented(combined):
    _, df = combined
    assert COLUMNS == DOCUMENTED
    assert list(df.columns) == DOCUMENTED
    assert pd.api.types.is_integer_dtype(df["seed"]) and pd.api.types.is_integer_dtype(df["step"])
    assert pd.api.types.is_datetime64_any_dtype(df["date"])
    assert pd.api.types.is_float_dtype(df["value"])
    for col in ("run_id", "scenario", "variable", "region", "product"):
        assert pd.api.types.is_string_dtype(df[col]), col
    assert (df["run_id"] == "combined-test").all() and (df["scenario"] == "combined_2025").all()
    assert (df["seed"] == 1).all()


def test_tidy_one_row_per_key(combined):
    _, df = combined
    dup = df.duplicated(["step", "variable", "region", "product"])
    assert not dup.any(), df[dup].head()


def test_dates_follow_steps(combined):
    m, df = combined
    expect = pd.Timestamp(m.start_date) + pd.to_timedelta(df["step"] * 7, unit="D")
    assert (df["date"] == expect).all()
    assert sorted(df["step"].unique()) == list(range(WEEKS + 1))


MAGNET_STAGE = {"magnet_output", "magnet_capacity", "china_magnet_share", "inventory_makers", "recycled", "disposed", "units_short",
                "element_exports",
                "contract_volume", "contract_price", "average_price",  # the magnet world also has term contracts
                "end_use_refused"}  # and end-user licence rules (magnets_2025)
DEMAND_GROWTH = {"demand_index", "need"}  # runs whose demand grows (a demand path)


FINANCE = {"finance_committed", "finance_spent", "finance_stranded"}  # recorded once a lender funds a project


def test_every_declared_output_appears(combined):
    """Every output appears in combined_2025 (on the magnet world, end-user rules from Dec 2025), except those
    of growing demand, which appear in a run on a demand path (and only there), and lenders' money, which
    appears once a facility funds a project; the magnet stage's outputs appear only in a world with one."""
    _, df = combined
    missing = sorted(set(OUTPUTS) - DEMAND_GROWTH - FINANCE - set(df["variable"].unique()))
    assert not missing, f"declared outputs never recorded in combined_2025: {missing}"
    assert set(df["variable"].unique()) <= set(OUTPUTS) - DEMAND_GROWTH
    oxide = "world_2024.toml"  # a world without a magnet stage, whatever the scenarios' own
    funded = set(RareEarthModel(build_scenario("northern_corridor", world=oxide), seed=1, weeks=24).run()
                 .results()["variable"].unique())
    assert FINANCE <= funded, sorted(FINANCE - funded)  # once a lender funds something (week 21 there)
    assert not funded & MAGNET_STAGE, sorted(funded & MAGNET_STAGE)  # the oxide world has no magnet stage
    grows = set(RareEarthModel(build_scenario("demand_growth_aps", world=oxide), seed=1, weeks=3).run()
                .results()["variable"].unique())
    assert DEMAND_GROWTH <= grows <= set(OUTPUTS) - MAGNET_STAGE, sorted(DEMAND_GROWTH - grows)


def test_outputs_declare_unit_and_label():
    for name, out in OUTPUTS.items():
        assert out.name == name and out.unit and out.label, name


def test_outputs_the_issue_requires_are_recorded_every_week(combined):
    """Price and volume per product x region, shortage per buyer state, China's share, Myanmar ore flow by
    route, levy revenue, inventories, capacity online by country: every step from 0 (flows from 1)."""
    m, df = combined
    steps = set(range(WEEKS + 1))
    for reg in m.regions:
        for p in m.products:
            for var in ("price", "volume", "inventory_refiners", "inventory_buyers"):
                assert set(series(df, var, reg, p).index) == steps, (var, reg, p)
    for sid in ("CN", "US", "JP", "EU"):
        assert set(series(df, "shortage", sid, "Dy").index) == steps, sid
    assert set(series(df, "capacity_online", "CN").index) == steps
    assert set(series(df, "levy_revenue", "KIA").index) == steps
    assert set(series(df, "china_refined_share").index) >= steps - {0}
    flow = df[df["variable"] == "myanmar_ore_flow"]
    assert {"pianma", "lweje"} <= set(flow["region"]), set(flow["region"])


def test_market_core_outputs_are_recorded_every_week(combined):
    """China's exports by product and destination, the share of requested exports allowed, stockholders'
    and state reserves' stocks and orders, ore stocks by location and the cost of supply: every week."""
    m, df = combined
    steps = set(range(WEEKS + 1))
    for dest in m.import_destinations():
        for p in m.products:
            assert set(series(df, "exports", dest, p).index) == steps, (dest, p)
            assert set(series(df, "export_allowed", dest, p).index) == steps, (dest, p)
    for reg in m.regions:
        for p in m.products:
            for var in ("trader_stock", "trader_bought", "trader_sold", "cost_of_supply"):
                assert set(series(df, var, reg, p).index) == steps, (var, reg, p)
    for sid in ("CN", "JP"):  # standing reserves (FACTS P5, E5)
        for var in ("stockpile", "stockpile_bought", "stockpile_released"):
            assert set(series(df, var, sid, "Dy").index) == steps, (var, sid)
    for area in ("pangwa", "momauk", "kanpaiti", "baotou"):
        assert set(series(df, "ore_stock", area).index) == steps, area
    # the licences of 4 Apr 2025 cut China's Dy exports, and the allowed share reflects it
    exp = df[(df["variable"] == "exports") & (df["product"] == "Dy")].groupby("date")["value"].sum()
    before = exp[(exp.index >= "2025-01-01") & (exp.index < "2025-04-01")].mean()
    during = exp[(exp.index >= "2025-06-01") & (exp.index < "2025-12-01")].mean()
    assert 0 < during < 0.6 * before, (before, during)
    allowed = series(df, "export_allowed", "", "Dy")
    dates = df.drop_duplicates("step").set_index("step")["date"]
    assert allowed[dates.reindex(allowed.index) < "2025-04-01"].eq(1.0).all()
    april = dates.reindex(allowed.index).between("2025-06-01", "2025-12-01", inclusive="left")  # the April rules
    assert april.sum() > 20 and allowed[april].max() < 1.0


def test_datacollector_has_one_row_per_step_and_matches_the_table(combined):
    m, df = combined
    mv = m.datacollector.get_model_vars_dataframe()
    assert len(mv) == WEEKS + 1
    for reg in m.regions:
        for p in m.products:
            col = reporter_name("price", reg, p)
            assert col in mv.columns, col
            np.testing.assert_array_equal(mv[col].to_numpy(), series(df, "price", reg, p).to_numpy(), err_msg=col)
            col = reporter_name("volume", reg, p)
            np.testing.assert_array_equal(mv[col].to_numpy(), series(df, "volume", reg, p).to_numpy(), err_msg=col)
    share = series(df, "china_refined_share").reindex(range(WEEKS + 1))
    np.testing.assert_array_equal(mv["china_refined_share"].to_numpy()[1:], share.to_numpy()[1:])


def test_latest_reads_the_last_recorded_value(combined):
    m, df = combined
    assert m.latest("price", "ROW", "Tb") == series(df, "price", "ROW", "Tb").iloc[-1]
    assert np.isnan(m.latest("price", "MARS", "Tb"))
