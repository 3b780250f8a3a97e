"""Magnet capacity that answers the market (agents/magnet_maker.py: Pipeline, Expansion): a plant coming online
ramps up instead of waiting for sales it cannot have, and makers add lines ahead of growing demand where new
lines pay their capital charge, so that demand growth (FACTS B6, R6) reaches the oxides instead of piling up
in the magnet price."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.validate import scenario_on_world
from model.model import RareEarthModel
from model.params import MagnetMakerSpec

WORLD = "world_2024_magnets.toml"


def growth_run(**behaviour) -> RareEarthModel:
    """The announced-projects scenario (demand on the IEA APS path, FACTS B6) on the magnet world, to 2030."""
    sc = scenario_on_world("announced_projects", WORLD)
    over = {f"behaviour.{k}": v for k, v in behaviour.items()}
    return RareEarthModel(sc.model_copy(update={"overrides": {**sc.overrides, **over}}), seed=1).run()


@pytest.fixture(scope="module")
def growing():
    return growth_run()


@pytest.fixture(scope="module")
def frozen():
    return growth_run(maker_expansion_step=0.0)


def four_week_price(m: RareEarthModel, region: str, product: str) -> pd.Series:
    df = m.results()
    d = df[(df.variable == "price") & (df.region == region) & (df["product"] == product)]
    return d.set_index("date")["value"].rolling(4).mean().dropna()


def test_a_magnet_plant_coming_online_ramps_up_and_sells():
    """MP's Fort Worth plant comes online on 15 Jan 2025 (FACTS R4). With no sales of its own yet it used to plan
    nothing, so it never made a magnet; it now plans ``maker_ramp_up_share`` of capacity and its sales memory
    then follows what it sells."""
    m = RareEarthModel("magnets_baseline", seed=1, weeks=80)
    mb = m.maker_book
    i = mb.ids.index("us_mp_fort_worth")
    made = sold = 0.0
    for w in range(80):
        m.step()
        if mb.capacity[i] > 0 and w < 60:
            assert mb.sales_ema[i] > 0, "it expects to sell from the week it comes online"
        if w >= 60:
            made += mb.made[i]
            sold += mb.sold[i] + mb.contracted[i]
    assert mb.capacity[i] == mb.nameplate[i] > 0
    assert made > 0 and sold > 0, "an operating plant makes and sells magnets"


def test_the_sales_trend_projects_a_steady_growth():
    """Exponential memories of spans S and L lag a steady growth by about S and L weeks; their log ratio over
    L - S is the weekly growth, and the projection to the lead time lands near the true sales then."""
    m = RareEarthModel("magnets_baseline", seed=1, weeks=2)
    mb = m.maker_book
    b = m.behaviour
    r = 0.05 / 52  # 5 %/yr (FACTS B6)
    s = ema = long = 100.0
    for _ in range(600):
        s *= 1 + r
        ema += (s - ema) / b.sales_memory_weeks
        long += (s - long) / b.maker_expansion_trend_weeks
    mb.sales_ema = np.full(mb.n, ema)
    mb.sales_long = np.full(mb.n, long)
    truth = s * (1 + r) ** b.maker_expansion_lead_weeks
    assert mb.projected_sales() == pytest.approx(np.full(mb.n, truth), rel=0.01)
    mb.sales_long = mb.sales_ema.copy()  # flat: no trend, no growth
    assert mb.projected_sales() == pytest.approx(mb.sales_ema, rel=1e-12)


def test_what_new_lines_cost_comes_from_the_data():
    spec = dict(id="x", name="x", country="US", makes="NdFeB", capacity_t_per_week=135.0, processing_cost_usd_per_kg=20.0)
    assert MagnetMakerSpec(**spec).expansion_capex() is None, "no capex stated: it does not expand"
    # MP's 10X: US$1B for 135 t a week (FACTS E1) is ~US$142 per kg a year of capacity
    assert MagnetMakerSpec(**spec, capex_musd=1000.0).expansion_capex() == pytest.approx(1000e6 / (135 * 52 * 1000))
    assert MagnetMakerSpec(**spec, capex_musd=1000.0, expansion_capex_usd_per_kg_year=12.0).expansion_capex() == 12.0


def test_makers_add_lines_ahead_of_growing_demand_where_new_lines_pay(growing):
    """Chinese NdFeB makers, whose new lines are cheap, order them before their sales reach capacity; ex-China
    NdFeB plants, whose lines cost as a new plant's do, do not expand at these prices."""
    mb = growing.maker_book
    cn = mb.ids.index("cn_ndfeb")
    assert mb.capacity[cn] > 1.15 * 6300.0, "China's NdFeB capacity grows with demand (5 %/yr to 2030)"
    orders = [e.text for e in growing.events if "NdFeB" in e.text and "new lines ordered" in e.text]
    assert orders and all(t.startswith("Chinese") for t in orders), orders
    for k in ("jp_ndfeb", "vn_ndfeb", "oth_ndfeb", "us_mp_10x"):
        assert mb.capacity[mb.ids.index(k)] == mb.nameplate[mb.ids.index(k)]
        assert mb.nameplate[mb.ids.index(k)] == pytest.approx(next(s.capacity_t_per_week for s in mb.specs if s.id == k))
    df = growing.results()
    cap = df[(df.variable == "magnet_capacity") & (df.region == "CN") & (df["product"] == "NdFeB")]
    cap = cap.set_index("date")["value"]
    assert cap.iloc[0] == 6300.0 and cap.iloc[-1] == pytest.approx(mb.capacity[cn]), "the capacity output"
    assert cap.is_monotonic_increasing


def test_with_capacity_answering_growth_the_oxides_take_it_not_the_magnet_price(growing, frozen):
    """Against its no-expansion twin (same seed): without new lines, NdFeB more than doubles by 2030 while NdPr
    falls (makers capped, their oxide demand stalls); with them, China's magnet price stays within 25 % of its
    2024 level (it follows the cost of the NdPr it contains, which rises) and NdPr ends above its twin's."""
    grown, fixed = four_week_price(growing, "CN", "NdFeB"), four_week_price(frozen, "CN", "NdFeB")
    start = grown.iloc[0]
    assert grown.max() < 1.25 * start
    assert fixed.max() > 2.0 * start
    nd_grown, nd_fixed = four_week_price(growing, "CN", "NdPr"), four_week_price(frozen, "CN", "NdPr")
    assert nd_grown.iloc[-1] > 1.3 * nd_fixed.iloc[-1]


def test_no_expansion_in_a_stationary_world():
    """With flat demand the sales trend is flat and no plant has sales pressing on its capacity, so nothing is
    ordered in ten years and every plant ends at its nameplate (the building ones included)."""
    m = RareEarthModel("magnets_baseline", seed=2).run()
    assert not [e for e in m.events if "new lines" in e.text]
    mb = m.maker_book
    assert np.array_equal(mb.nameplate, np.array([s.capacity_t_per_week for s in mb.specs]))
