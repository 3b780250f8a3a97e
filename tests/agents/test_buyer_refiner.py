"""Unit tests of the documented rules of buyers and refiners (agents/buyer.py, agents/refiner.py).

Each test builds the baseline model (week 0), sets one agent's state by hand and checks one rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import PRODUCTS, Region

DY = PRODUCTS.index("Dy")


@pytest.fixture
def model() -> RareEarthModel:
    return RareEarthModel("baseline", seed=1, weeks=10)


def _buyer(model, region=Region.ROW):
    return next(b for b in model.buyers if b.region == region and b.base_content[DY] > 0)


# ================================================================================================== buyers
def test_buyer_consumes_from_inventory_and_records_the_shortfall(model):
    b = _buyer(model)
    need = b.need()
    b.inventory = need * np.array([2.0, 0.25, 0.0])
    b.consume(model.prices[b.region], 8.0, 0.0, 1.3)
    np.testing.assert_allclose(b.consumed, need * np.array([1.0, 0.25, 0.0]))
    np.testing.assert_allclose(b.shortage, need * np.array([0.0, 0.75, 1.0]))
    np.testing.assert_allclose(b.inventory, need * np.array([1.0, 0.0, 0.0]))


def test_buyer_thrifts_when_prices_stay_high_and_recovers_slowly(model):
    b = _buyer(model)
    b.inventory = b.need() * 100  # no shortage: only the price rule acts
    high = b.long_price * 3.0
    b.ref_price = high.copy()
    rate = 0.01
    b.consume(high, 8.0, rate, 1.3)
    np.testing.assert_allclose(b.content, np.maximum(b.base_content * (1 - rate), b.min_content))
    for _ in range(500):
        b.consume(high, 8.0, rate, 1.3)
    np.testing.assert_allclose(b.content, b.min_content)  # never below the floor
    low = b.long_price * 0.2
    b.ref_price = low.copy()
    b.inventory = b.need() * 100
    before = b.content.copy()
    b.consume(low, 8.0, rate, 1.3)
    up = b.content - before
    np.testing.assert_allclose(up[b.base_content > b.min_content],
                               (rate * b.base_content / 4)[b.base_content > b.min_content])


def test_buyer_bids_higher_and_more_when_short_but_never_above_willingness_to_pay(model):
    b = _buyer(model)
    b.inventory = b.need() * b.target_cover
    level_ok, qty_ok = b.bid(2.0)
    b.inventory = np.zeros(len(PRODUCTS))
    level_short, qty_short = b.bid(2.0)
    assert (level_short >= level_ok).all() and level_short[DY] > level_ok[DY]
    assert (qty_short > qty_ok).all()
    level_panic, _ = b.bid(1e6)
    assert (level_panic <= b.wtp + 1e-9).all()


# ================================================================================================ refiners
def _plant(model, rid="cn_ganzhou"):
    return model.refiner_by_id[rid]


def test_refiner_processes_at_most_planned_output_and_separates_only_its_oxides(model):
    r = _plant(model, "my_lynas")  # separates NdPr only
    r.feed_reo, r.feed_el = 1000.0, np.array([200.0, 10.0, 2.0])
    r.inventory = np.zeros(len(PRODUCTS))
    out = r.process()
    x = r.capacity_t_per_week * r.utilisation
    assert r.processed == pytest.approx(x)
    np.testing.assert_allclose(out, np.array([200.0, 0.0, 0.0]) * x / 1000.0 * r.recovery)
    assert r.feed_reo == pytest.approx(1000.0 - x)
    np.testing.assert_allclose(r.feed_el, np.array([200.0, 10.0, 2.0]) * (1 - x / 1000.0))


def test_refiner_is_limited_by_feed(model):
    r = _plant(model)
    r.feed_reo, r.feed_el = 5.0, np.array([1.0, 0.2, 0.05])
    r.process()
    assert r.processed == pytest.approx(5.0) and r.feed_reo == 0.0 and not r.feed_el.any()


def test_export_split_respects_the_export_cap(model):
    cn, row = _plant(model), _plant(model, "my_lynas")
    cn.inventory = np.array([100.0, 10.0, 2.0])
    split = cn.offer_split(np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(split[Region.ROW], cn.inventory * cn.export_share * np.array([1.0, 0.0, 0.5]))
    np.testing.assert_allclose(split[Region.ROW] + split[Region.CN], cn.inventory)
    row.inventory = np.array([50.0, 0.0, 0.0])
    assert row.offer_split(np.zeros(3))[Region.ROW][0] == 50.0  # an ex-China plant is not controlled


def _after(model, r, inventory):
    r.inventory = np.asarray(inventory, dtype=float)
    b = model.behaviour
    zero = {reg: np.zeros(len(PRODUCTS)) for reg in Region}
    prices = {reg: model.prices[reg].copy() for reg in Region}
    r.after_market(zero, prices, b.seller_markup_rate, b.seller_target_cover_weeks, model.export_cost,
                   np.ones(len(PRODUCTS)), b.export_share_sensitivity, b.seller_reservation_ratio)
    return {reg: a.copy() for reg, a in r.ask.items()}


def test_seller_asks_more_when_short_and_never_below_its_reservation(model):
    r = _plant(model)
    weekly = r.sales_ema.copy()
    short = _after(model, r, weekly * 0.5)
    r.sales_ema = weekly.copy()
    glut = _after(model, r, weekly * 50)
    for reg in short:
        assert (short[reg] > glut[reg]).all()
        floor = model.behaviour.seller_reservation_ratio * model.long_memory[reg]
        assert (glut[reg] >= floor - 1e-9).all()


def test_utilisation_falls_when_oxide_piles_up(model):
    r = _plant(model)
    u = r.utilisation
    r.inventory = r.sales_ema * 30
    r.adapt(model.prices[Region.CN])
    assert r.utilisation < u
    r.inventory = np.zeros(len(PRODUCTS))
    u = r.utilisation
    r.adapt(model.prices[Region.CN])
    assert r.utilisation > u


def test_pipeline_brings_capacity_online_after_the_lead_time(model):
    r = _plant(model, "th_udon_thani")
    assert r.status == "planned" and r.capacity_t_per_week == 0.0
    assert r.start_building(3, financed_by="test")
    assert not r.start_building(3)  # only planned plants start
    assert [r.advance_pipeline() for _ in range(3)] == [False, False, True]
    assert r.status == "operating" and r.capacity_t_per_week == r.nameplate_t_per_week
