"""Magnet capacity that answers the market (agents/magnet_maker.py: Pipeline, Expansion; model/projects.py): a
planned magnet plant is a project that sponsors, lenders and policies decide; a plant coming online ramps up
instead of waiting for sales it cannot have; and makers add lines ahead of growing demand where new lines pay
their capital charge, so that demand growth (FACTS B6, R6) reaches the oxides instead of piling up in the
magnet price."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from experiments.validate import scenario_on_world
from model.model import RareEarthModel
from model.params import MagnetMakerSpec
from model.policies import ProjectFinance
from model.projects import appraise_magnet_plant, find_project
from model.scenario import Scenario

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
    assert mb.capacity[cn] > 1.15 * 5720.0, "China's NdFeB capacity grows with demand (5 %/yr to 2030)"
    orders = [e.text for e in growing.events if "NdFeB" in e.text and "new lines ordered" in e.text]
    assert orders and all(t.startswith("Chinese") for t in orders), orders
    for k in ("jp_ndfeb", "vn_ndfeb", "oth_ndfeb", "us_mp_10x"):
        assert mb.capacity[mb.ids.index(k)] == mb.nameplate[mb.ids.index(k)]
        assert mb.nameplate[mb.ids.index(k)] == pytest.approx(next(s.capacity_t_per_week for s in mb.specs if s.id == k))
    df = growing.results()
    cap = df[(df.variable == "magnet_capacity") & (df.region == "CN") & (df["product"] == "NdFeB")]
    cap = cap.set_index("date")["value"]
    assert cap.iloc[0] == 5720.0 and cap.iloc[-1] == pytest.approx(mb.capacity[cn]), "the capacity output"
    assert cap.is_monotonic_increasing


def test_with_capacity_answering_growth_the_oxides_take_it_not_the_magnet_price(growing, frozen):
    """Against its no-expansion twin (same seed): without new lines, NdFeB nearly doubles by 2030 (x1.95, seed 1)
    while NdPr falls (makers capped, their oxide demand stalls); with them, China's magnet price stays within 25 % of its
    2024 level (it follows the cost of the NdPr it contains, which rises) and NdPr ends above its twin's (by 30 %,
    seed 1)."""
    grown, fixed = four_week_price(growing, "CN", "NdFeB"), four_week_price(frozen, "CN", "NdFeB")
    start = grown.iloc[0]
    assert grown.max() < 1.25 * start
    assert fixed.max() > 1.75 * start
    nd_grown, nd_fixed = four_week_price(growing, "CN", "NdPr"), four_week_price(frozen, "CN", "NdPr")
    assert nd_grown.iloc[-1] > 1.2 * nd_fixed.iloc[-1]


def test_no_expansion_in_a_stationary_world():
    """With flat demand the sales trend is flat and no plant has sales pressing on its capacity, so nothing is
    ordered in ten years and every plant ends at its nameplate (the building ones included)."""
    m = RareEarthModel("magnets_baseline", seed=2).run()
    assert not [e for e in m.events if "new lines" in e.text]
    mb = m.maker_book
    assert np.array_equal(mb.nameplate, np.array([s.capacity_t_per_week for s in mb.specs]))


# ====================================================================================== magnet plant projects
def test_a_lender_funds_a_planned_magnet_plant_through_its_permits_and_construction():
    """ProjectFinance on USA Rare Earth's planned Stillwater plant (a short pipeline here): it leaves "planned"
    the week it begins, the money is committed and disbursed, it comes online after permits and construction,
    not before, and then makes and sells magnets."""
    start = dt.date(2024, 1, 1)
    pid = "us_usar_stillwater"
    sc = Scenario(name="fund", world=WORLD, start=start, weeks=60, seeds=[1],
                  overrides={"projects.statuses": ["operating", "building", "planned"],
                             f"magnet_makers.{pid}.permit_weeks": 3, f"magnet_makers.{pid}.lead_time_weeks": 5})
    fund = ProjectFinance(start=start + dt.timedelta(weeks=2), actor="US", lender="US EXIM", project=pid,
                          share_of_capex=0.8, concessional_rate=0.03)
    m = RareEarthModel(sc, seed=1, policies=[fund])
    p = find_project(m, pid)
    assert p.kind == "magnet" and p.status == "planned"
    m.run(2)
    assert p.status == "permitting" and p.agent.status == "permitting"
    assert m.finance.by_lender()["US EXIM"][0] == pytest.approx(0.8 * p.spec.capex_musd)
    seen = []
    while p.status != "operating" and m.steps < 30:
        m.run(1)
        seen.append(p.status)
    # as a refinery's pipeline (tests/model/test_projects.py): the first permit week counts the week it begins
    # and the last turns to building, so 3 permit weeks show one week of permitting, then 5 of construction
    assert seen == ["permitting"] + ["building"] * 5 + ["operating"], seen
    mb = m.maker_book
    i = mb.ids.index(pid)
    assert mb.capacity[i] == p.spec.capacity_t_per_week
    m.run(20)
    assert mb.sales_ema[i] > 0 and m.finance.by_lender()["US EXIM"][1] == pytest.approx(0.8 * p.spec.capex_musd)


def test_a_magnet_plant_is_appraised_on_its_market_and_started_privately_only_if_it_pays():
    """Its margin: nameplate x the expansion utilisation x (the magnet price its market expects - the oxides at
    what that market paid - processing). Stillwater's does not cover its capital charge at 2024 prices, so
    its private sponsor leaves it planned in a calm year (BuildProjects or a lender can still start it)."""
    sc = Scenario(name="calm", world=WORLD, weeks=60, seeds=[1],
                  overrides={"projects.statuses": ["operating", "building", "planned"]})
    m = RareEarthModel(sc, seed=1)
    mb = m.maker_book
    i = mb.ids.index("us_usar_stillwater")
    a = appraise_magnet_plant(m, i)
    cash = mb.base_recipe[i] / mb.yield_[i] @ m.signals.long_memory["ROW"] + mb.processing_cost[i]
    price = m.signals.memory["ROW"][mb.makes[i]]
    q = mb.nameplate[i] * m.behaviour.maker_expansion_utilisation
    assert a.margin_musd == pytest.approx(q * (price - cash) * 52 * 1000 / 1e6)
    p = find_project(m, "us_usar_stillwater")
    assert 0 < a.margin_musd < m.state_by_id["US"].capital_charge_musd(p)
    m.run()
    assert p.status == "planned"
