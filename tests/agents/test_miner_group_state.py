"""Unit tests of the documented rules of miners, armed groups and states (agents/miner.py,
agents/armed_group.py, agents/state.py)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.armed_group import Conflict
from agents.miner import MinerFleet
from model.model import RareEarthModel
from model.params import PRODUCTS, Region, load_world
from model.policies import Stockpile

WORLD = load_world("world_2024.toml")


@pytest.fixture
def model() -> RareEarthModel:
    return RareEarthModel("baseline", seed=1, weeks=10)


# ================================================================================================== miners
def test_fleet_draws_sites_around_the_world_means():
    fleet = MinerFleet(WORLD, np.random.default_rng(0))
    for spec in WORLD.miners:
        idx = np.flatnonzero(fleet.spec == WORLD.miners.index(spec))
        assert idx.size == spec.count
        if spec.count >= 100:
            assert fleet.capacity[idx].mean() == pytest.approx(spec.capacity_t_per_week, rel=0.1), spec.id
            assert fleet.cost[idx].mean() == pytest.approx(spec.unit_cost_usd_per_kg, rel=0.1), spec.id
        n_active = spec.count if spec.active_at_start is None else spec.active_at_start
        assert fleet.active[idx].sum() == n_active, spec.id
        if 0 < n_active < spec.count:  # the cheapest sites are the open ones
            assert fleet.cost[idx][fleet.active[idx]].max() <= fleet.cost[idx][~fleet.active[idx]].min()
    kachin = (fleet.country == "MM") & fleet.entry_exit
    assert kachin.sum() >= 300  # seed F11-F12: hundreds of small sites


def test_agents_one_per_site_and_kind(model):
    kinds = {type(a).__name__: 0 for a in model.agents}
    for a in model.agents:
        kinds[type(a).__name__] += 1
    assert kinds["Miner"] == model.fleet.n
    assert kinds["Refiner"] == len(WORLD.refiners) and kinds["Buyer"] == len(WORLD.buyers)
    assert kinds["State"] == len(WORLD.states) and kinds["ArmedGroup"] == len(WORLD.armed_groups)


def test_halted_sites_offer_nothing_and_quota_scales_china(model):
    f = model.fleet
    base = f.offered().copy()
    f.halted[:5] = True
    assert (f.offered()[:5] == 0).all()
    f.halted[:] = False
    f.quota_factor = 0.8
    cn = f.country == "CN"
    np.testing.assert_allclose(f.offered()[cn], base[cn] * 0.8)
    np.testing.assert_allclose(f.offered()[~cn], base[~cn])


def test_sites_enter_when_profitable_and_exit_when_not():
    fleet = MinerFleet(WORLD, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    small = np.flatnonzero(fleet.entry_exit)
    levies = np.zeros(fleet.n)
    fleet.netback_ema[:] = 1e6  # hugely profitable everywhere: dormant sites open at the entry rate
    dormant = int((~fleet.active[small]).sum())
    opened, closed = fleet.entry_exit_step(rng, 0.5, 0.5, levies)
    assert closed == 0 and 0.3 * dormant < opened < 0.7 * dormant
    fleet.netback_ema[:] = 0.0  # worthless: active sites close at the exit rate
    active = int(fleet.active[small].sum())
    opened, closed = fleet.entry_exit_step(rng, 0.5, 0.5, levies)
    assert opened == 0 and 0.3 * active < closed < 0.7 * active
    big = np.flatnonzero(~fleet.entry_exit)
    assert fleet.active[big].all()  # large mines never exit by this rule


# ============================================================================================ armed groups
def test_forced_fighting_halts_about_the_stated_share_and_blocks_roads(model):
    g = model.group_by_id["KIA"]
    g.forced_conflict = "fighting"
    g.act(np.random.default_rng(0))
    assert g.conflict == Conflict.FIGHTING
    halted = model.fleet.halted[g.sites].mean()
    assert halted == pytest.approx(g.spec.halt_share_fighting, abs=0.12)
    blocked = [f"fighting:{g.gid}" in model.routes.closures[e] for e in g.edges]
    assert any(blocked) or len(g.edges) < 3  # each road blocked with probability one half
    g.forced_conflict = "calm"
    g.act(np.random.default_rng(1))
    assert g.conflict == Conflict.CALM and not model.fleet.halted[g.sites].any()
    r = model.routes
    assert all(f"fighting:{g.gid}" not in r.closures[e] for e in g.edges)
    assert (r.edge_open[g.edges] == r.edge_open_default[g.edges]).all()  # roads back to their usual state


def test_levy_follows_the_ore_price_within_bounds(model):
    g = model.group_by_id["KIA"]
    g.ref_ore_price = 10.0
    model.ore_gate_price[:] = 1000.0  # a boom: the levy climbs towards 2 x base, never above
    for _ in range(60):
        g.act(np.random.default_rng(0))
    assert g.levy == pytest.approx(2 * g.base_levy, rel=1e-3)
    model.ore_gate_price[:] = 0.01  # a bust: towards 0.5 x base
    for _ in range(60):
        g.act(np.random.default_rng(0))
    assert g.levy == pytest.approx(0.5 * g.base_levy, rel=1e-3)


def test_levy_revenue_accumulates(model):
    g = model.group_by_id["NDAK"]
    g.collect(10.0)
    g.collect(5.0)
    assert g.revenue_usd == 15.0 and g.revenue_total_usd == 15.0


# ================================================================================================== states
def test_no_mandate_no_stock_orders(model):
    jp = model.state_by_id["JP"]
    bid, bq, ask, aq = jp.stock_orders(model.prices[Region.ROW], np.zeros(len(PRODUCTS)))
    assert not bq.any() and not aq.any()


def test_stockpile_agency_buys_below_its_trigger_and_releases_above_or_on_shortage(model):
    jp = model.state_by_id["JP"]
    Stockpile(start=model.start_date, actor="JP", target_days=70.0, fill_weeks=10.0).begin(model)
    ref = jp.stock_mandate["reference"]
    target = jp.consumption_per_week() * 10.0
    _, buy, _, ask = jp.stock_orders(ref * 0.9, np.zeros(len(PRODUCTS)))
    np.testing.assert_allclose(buy, target / 10.0)
    assert not ask.any()
    jp.stockpile = target.copy()
    _, buy, _, ask = jp.stock_orders(ref * 2.0, np.zeros(len(PRODUCTS)))  # above release_above_ratio
    assert not buy.any()
    np.testing.assert_allclose(ask, target / jp.stock_mandate["release_weeks"])
    _, buy, _, ask = jp.stock_orders(ref, np.full(len(PRODUCTS), 0.5))  # rapid response to shortages
    assert ask.all() and not buy.any()


def test_settle_stock_keeps_the_stockpile_and_budget_consistent(model):
    jp = model.state_by_id["JP"]
    Stockpile(start=model.start_date, actor="JP", budget_musd=1.0).begin(model)
    jp.settle_stock(np.array([1.0, 0.0, 0.0]), np.zeros(3), np.array([60.0, 225.0, 890.0]))
    assert jp.stockpile[0] == 1.0
    assert jp.stock_mandate["budget_left_usd"] == pytest.approx(1e6 - 60_000.0)
    jp.settle_stock(np.zeros(3), np.array([0.4, 0.0, 0.0]), np.array([60.0, 225.0, 890.0]))
    assert jp.stockpile[0] == pytest.approx(0.6)


def test_china_quota_leans_against_domestic_ndpr_prices(model):
    cn, b = model.state_by_id["CN"], model.behaviour
    model.price_memory[Region.CN][0] = model.long_memory[Region.CN][0] * (1 + 2 * b.china_quota_band)
    for _ in range(1000):
        cn.manage_quota()
    assert model.fleet.quota_factor == pytest.approx(b.china_quota_max)
    model.price_memory[Region.CN][0] = model.long_memory[Region.CN][0] * (1 - 2 * b.china_quota_band)
    cn.manage_quota()
    assert model.fleet.quota_factor == pytest.approx(b.china_quota_max - b.china_quota_step_per_week)
