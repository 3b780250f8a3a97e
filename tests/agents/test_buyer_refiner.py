"""Unit tests of the documented rules of refiners, buyers and traders (agents/refiner.py, agents/buyer.py,
agents/trader.py): each rule on a live model, with the state it reads set by hand."""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from tests.conftest import build_scenario

# the oxide world, whatever the default: its buyers buy oxides (jp_ev, eu_ev buy Dy), its refiners have no
# separation costs, its importers trade its three products (NdPr, Dy, Tb)
OXIDE = "world_2024.toml"


@pytest.fixture
def model() -> RareEarthModel:
    m = RareEarthModel(build_scenario("baseline", world=OXIDE), seed=1, weeks=10)
    m.run(2)
    return m


def _k(m, product: str) -> int:
    return m.products.index(product)


# ================================================================================================ refiners
def test_reservations_add_up_to_full_cost_whatever_the_price_level(model):
    """Joint products: the full cost of a kg of feed is split by value, so at the reservation prices the
    plant's output mix is worth exactly its full cost; doubling every remembered price changes nothing."""
    book = model.refiner_book
    book.update_cost_basis()
    lm = np.array([model.signals.long_memory[r] for r in model.regions])[book.region_code]
    res = book.reservation(lm)
    full = book.cash_cost * (1 + model.behaviour.full_cost_markup)
    run = book.capacity > 0
    np.testing.assert_allclose((book.mix * res).sum(axis=1)[run], full[run], rtol=1e-9)
    np.testing.assert_allclose(book.reservation(2 * lm)[run], res[run], rtol=1e-9)
    # relative reservations follow relative remembered prices: Dy gets more of the cost if Dy was dearer
    dearer = lm.copy()
    dearer[:, _k(model, "Dy")] *= 2
    g = book.index["cn_ganzhou"]
    assert book.reservation(dearer)[g, _k(model, "Dy")] > res[g, _k(model, "Dy")]
    assert book.reservation(dearer)[g, _k(model, "NdPr")] < res[g, _k(model, "NdPr")]


def test_reservations_rise_with_the_cost_of_ore(model):
    book = model.refiner_book
    g = book.index["cn_ganzhou"]
    book.update_cost_basis()
    lm = np.array([model.signals.long_memory[r] for r in model.regions])[book.region_code]
    before = book.reservation(lm)[g].copy()
    book.feed_cost[g] *= 1.5  # ore delivered at half as much again
    book.update_cost_basis()
    after = book.reservation(lm)[g]
    ore = (book.feed_cost[g] / 1.5) / book.feed_reo[g]
    expect = (book.cash_cost[g]) / (ore + book.unit_cost()[g])
    np.testing.assert_allclose(after / before, expect, rtol=1e-9)
    assert (after > before)[book.separates[g]].all()


def _offers(model, region="CN"):
    blocks = model.refiner_book.orders(region, model.exchange.grid[region])
    return blocks[0].qty  # products x plants x grid points


def test_sellers_offer_more_at_higher_prices_and_nothing_below_cash_cost(model):
    book = model.refiner_book
    book.prepare_week()
    q = _offers(model)
    assert (np.diff(q, axis=2) >= -1e-12).all()  # a supply schedule
    grid = model.exchange.grid["CN"]
    rows = book.rows_of_region["CN"]
    floor = book.reserve_price[rows] / (1 + model.behaviour.full_cost_markup)
    below = grid[:, None, :] < floor.T[:, :, None]
    assert not q[below].any()
    assert (q <= book.inventory[rows].T[:, :, None] + 1e-9).all()  # never more than it holds


def test_a_seller_with_more_stock_offers_more_and_less_is_offered_when_less_is_coming(model):
    book = model.refiner_book
    book.prepare_week()
    base = _offers(model).sum(axis=1)
    book.inventory = book.inventory * 1.5
    more = _offers(model).sum(axis=1)
    assert (more >= base - 1e-9).all() and (more > base).any()
    book.inventory = book.inventory / 1.5
    model.signals._outlook["CN"] = np.full(len(model.products), 0.5)  # half as much ore being mined for China
    scarce = _offers(model).sum(axis=1)
    assert (scarce <= base + 1e-9).all() and (scarce < base).any()


def test_processing_is_limited_by_feed_and_plan_and_separates_only_its_products(model):
    book = model.refiner_book
    lynas = book.index["my_lynas"]
    book.feed_reo[lynas] = 10.0
    book.feed_el[lynas] = np.array([2.3, 0.04, 0.01])
    out = book.process()
    assert book.processed[lynas] == pytest.approx(10.0)  # all its feed: the plan is larger
    np.testing.assert_allclose(out[lynas], np.array([2.3, 0.0, 0.0]) * book.recovery[lynas])  # NdPr only
    g = book.index["cn_ganzhou"]
    assert book.processed[g] <= book.planned()[g] + 1e-9


def test_utilisation_runs_while_output_pays_and_slows_when_it_does_not(model):
    book = model.refiner_book
    g = book.index["cn_ganzhou"]
    book.utilisation[g] = 0.8
    book.adapt()
    assert book.utilisation[g] == pytest.approx(0.8 + model.behaviour.utilisation_step)
    book.cash_cost[g] = 1e6  # output now worth less than its cash cost
    book.adapt()
    assert book.utilisation[g] == pytest.approx(0.8)
    book.cash_cost[g] = 1.0
    book.inventory[g] *= 100  # stock far beyond what it wants to hold
    book.adapt()
    assert book.utilisation[g] == pytest.approx(0.8 - model.behaviour.utilisation_step)


def test_a_price_spike_makes_a_plant_sell_its_stock_not_make_less(model):
    """Prices 5x its reservation: the stock a plant wants to *offer from* falls as (p / reservation)^-e, but its
    output is not cut while its stock is within its usual cover (``seller_target_cover_weeks`` of sales): two
    weeks' stock is not overstock in a spike (it read as overstock, and China's heavy separators slowed down
    after the 2025 halt, Lynas under the licences). Three times its usual cover still is."""
    book, b = model.refiner_book, model.behaviour
    g = book.index["cn_ganzhou"]
    cn = model.regions.index("CN")
    assert book.region_code[g] == cn
    model.signals.price["CN"] = model.signals.price["CN"] * 5.0
    book.reserve_price[g] = model.signals.price["CN"] / 5.0
    book.cash_cost[g] = 1.0  # paying
    book.sales_ema[g] = np.where(book.separates[g] > 0, 10.0, 0.0)
    book.inventory[g] = book.sales_ema[g] * 2.0  # two weeks of sales
    book.utilisation[g] = 0.8
    book.adapt()
    assert book.utilisation[g] == pytest.approx(0.8 + b.utilisation_step)
    book.inventory[g] = book.sales_ema[g] * 3.0 * b.seller_target_cover_weeks * b.overstock_ratio
    book.adapt()
    assert book.utilisation[g] == pytest.approx(0.8)


def test_a_plant_short_of_feed_bids_a_larger_share_of_its_netback(model):
    book = model.refiner_book
    g = book.index["cn_ganzhou"]
    normal = book.bid_share()[g]
    assert normal == pytest.approx(model.behaviour.ore_bid_share, rel=0.05)
    book.feed_reo[g] = 0.0
    assert book.bid_share()[g] == pytest.approx(model.behaviour.ore_bid_share * (1 + model.behaviour.ore_bid_urgency))


def test_pipeline_brings_capacity_online_after_permits_and_construction(model):
    plant = model.refiner_by_id["th_udon_thani"]
    assert plant.status == "planned" and plant.capacity_t_per_week == 0
    assert plant.start_project(2, 3, financed_by="test")
    assert not plant.start_project(2, 3)  # only a planned plant starts
    assert plant.status == "permitting" and plant.build_weeks_left == 5
    model.run(2)
    assert plant.status == "building" and plant.capacity_t_per_week == 0
    model.run(2)
    assert plant.status == "building" and plant.build_weeks_left == 1
    model.run(1)
    assert plant.status == "operating" and plant.capacity_t_per_week == plant.nameplate_t_per_week
    assert any("comes online" in e.text for e in model.events)


# ================================================================================================== buyers
def test_buyers_consume_from_stock_and_record_the_shortfall(model):
    book = model.buyer_book
    i = book.ids.index("jp_ev")
    need = book.need(model.demand_multiplier)[i].copy()
    book.inventory[i] = need * 0.25
    book.consume(model.demand_multiplier)
    np.testing.assert_allclose(book.consumed[i], need * 0.25)
    np.testing.assert_allclose(book.shortage[i], need * 0.75)
    assert (book.inventory[i] == 0).all()


def test_one_budget_per_magnet_sets_each_elements_cap(model):
    book = model.buyer_book
    rows = np.array([book.ids.index("jp_ev")])
    usual = model.signals.long_memory["ROW"][None, :]
    wtp = book.willingness_to_pay(rows, usual)[0]
    c = book.content[rows[0]]
    k = _k(model, "Dy")
    others = (c * usual[0]).sum() - c[k] * usual[0, k]
    assert wtp[k] == pytest.approx((book.budget[rows[0]] - others) / c[k])
    dearer = usual.copy()
    dearer[0, _k(model, "NdPr")] *= 1.5  # NdPr usually costs more: less budget left for Dy
    assert book.willingness_to_pay(rows, dearer)[0, k] < wtp[k]


def _bids(model, region="ROW"):
    return model.buyer_book.orders(region, model.exchange.grid[region])[0].qty


def test_buyers_want_less_at_higher_prices_nothing_above_their_cap_and_more_when_less_is_coming(model):
    q = _bids(model)
    assert (np.diff(q, axis=2) <= 1e-12).all()  # a demand schedule
    book = model.buyer_book
    rows = book.rows_of_region["ROW"]
    grid = model.exchange.grid["ROW"]
    assert not q[grid[:, None, :] > book.wtp[rows].T[:, :, None]].any()
    model.signals._outlook["ROW"] = np.full(len(model.products), 0.3)  # a ban on exports to them
    assert (_bids(model) >= q - 1e-12).all() and (_bids(model) > q).any()


def test_buyers_thrift_when_prices_stay_high_and_part_of_it_stays(model):
    book = model.buyer_book
    i = book.ids.index("eu_ev")
    k = _k(model, "Dy")
    base = book.base_content[i, k]
    model.signals.recent["ROW"][k] = 3 * model.signals.long_memory["ROW"][k]
    for _ in range(40):
        book.inventory = book.inventory + book.need(model.demand_multiplier)  # no shortage: prices alone
        book.consume(model.demand_multiplier)
    thrifted = book.thrifted[i, k]  # thrifting alone (the Dy/Tb split moves content too)
    assert thrifted == pytest.approx(base * (1 - 40 * model.behaviour.thrift_rate_per_week), rel=1e-6)
    model.signals.recent["ROW"][k] = 0.5 * model.signals.long_memory["ROW"][k]
    for _ in range(400):
        book.inventory = book.inventory + book.need(model.demand_multiplier)
        book.consume(model.demand_multiplier)
    back = book.thrifted[i, k]
    assert thrifted < back < base  # it recovers, but redesigned motors stay redesigned
    lost = base - thrifted
    assert back == pytest.approx(base - model.behaviour.thrift_irreversible_share * lost, rel=1e-6)


# ================================================================================================= traders
def _trader_blocks(model, region):
    return {b.name: b.qty for b in model.trader_book.orders(region, model.exchange.grid[region])}


def test_stockholders_buy_in_gluts_and_sell_in_spikes(model):
    tb = model.trader_book
    i = tb.ids.index("cn_stockholders")
    grid = model.exchange.grid["CN"]
    normal = model.signals.long_memory["CN"]
    blocks = _trader_blocks(model, "CN")
    buy = blocks["traders_buy"][:, tb.rows_home["CN"].tolist().index(i), :]
    cheap = grid < 0.8 * normal[:, None]
    dear = grid > normal[:, None]
    assert (buy[cheap] > 0).all() and not buy[dear].any()  # buys only well below what is normal
    tb.stock[i] = tb.room[i]  # a full store
    sell = _trader_blocks(model, "CN")["traders_sell"][:, tb.rows_home["CN"].tolist().index(i), :]
    assert (sell[dear] > 0).all()  # sells it when prices are above normal


def test_importers_buy_abroad_within_their_destinations_allowance(model):
    tb = model.trader_book
    rows = tb.rows_import["CN"]
    free = _trader_blocks(model, "CN")["importers"]
    assert (free.max(axis=2) > 0).all()  # every importer wants every product while trade is free
    jp = [tb.state_id[i] for i in rows].index("JP")
    model.rules.limit_exports("JP", np.array([np.inf, 0.5, 0.0]))
    capped = _trader_blocks(model, "CN")["importers"]
    assert capped[1, jp].max() <= 0.5 + 1e-12 and not capped[2, jp].any()
    np.testing.assert_allclose(capped[0, jp], free[0, jp])  # NdPr is not limited
    other = [j for j in range(rows.size) if j != jp]
    np.testing.assert_allclose(capped[:, other], free[:, other])


@pytest.mark.parametrize("response", [0.0, 10.0])
def test_a_wide_spread_draws_importers_and_exporters_at_once_by_the_arbitrage_response(response):
    """behaviour.arbitrage_response (magnet world, which has the route back): with the last ex-China NdPr price
    30 % above what China's NdPr lands at there, importers bid response x weekly use x spread more in China
    at each price; with China's 30 % above what ex-China NdPr lands at in China, exporters bid so much more at
    home, where their own rule lets them bid; other products' bids do not move, and with 0 nothing does."""
    m = RareEarthModel("magnets_baseline", seed=1, weeks=10, **{"behaviour.arbitrage_response": response})
    m.run(2)
    tb = m.trader_book
    k = m.products.index("NdPr")
    others = np.arange(len(m.products)) != k
    for sells_in, buys_in, block, rows, working in (
            ("ROW", "CN", "importers", tb.rows_import["CN"], tb.working),
            ("CN", "ROW", "traders_buy", tb.rows_home["ROW"], tb.export_working)):
        before = _trader_blocks(m, buys_in)[block].copy()
        saved = float(m.signals.price[sells_in][k])
        m.signals.price[sells_in][k] = 1.3 * tb._landed(m.signals.price[buys_in])[k]
        after = _trader_blocks(m, buys_in)[block]
        now = m.signals.price[sells_in][k]
        m.signals.price[sells_in][k] = saved
        traders = np.flatnonzero(tb.exporter[rows]) if block == "traders_buy" else np.arange(rows.size)
        assert traders.size
        landed = m.exchange.landed[buys_in][k]  # landed cost of each grid price of the market it buys in
        spread_now, spread_before = (np.minimum(np.maximum(x / landed - 1.0, 0.0), 1.0) for x in (now, saved))
        use = working[rows[traders], k] / tb.working_weeks[rows[traders]]
        want = response * use[:, None] * (spread_now - spread_before)[None, :]
        # where the trader bids at all, the spread adds exactly that; where its restocking alone bids nothing
        # (an exporter where landing does not pay; an importer whose stock covers its sales there), at most that
        bids = before[k][traders] > 0
        diff = (after[k] - before[k])[traders]
        np.testing.assert_allclose(diff[bids], want[bids], rtol=1e-9, atol=1e-9)
        assert (diff[~bids] >= -1e-9).all() and (diff[~bids] <= want[~bids] + 1e-9).all()
        np.testing.assert_array_equal(after[others][:, traders], before[others][:, traders])
        assert ((after[k] - before[k])[traders].max() > 0) == (response > 0)
    # magnets are not shipped on a spread: a wide NdFeB spread leaves importers' magnet bids as they were
    j = m.products.index("NdFeB")
    before = _trader_blocks(m, "CN")["importers"].copy()
    m.signals.price["ROW"][j] = 1.5 * tb._landed(m.signals.price["CN"])[j]
    np.testing.assert_array_equal(_trader_blocks(m, "CN")["importers"], before)


def test_importers_do_not_sell_below_what_replacing_the_stock_costs(model):
    tb = model.trader_book
    grid = model.exchange.grid["ROW"]
    sell = _trader_blocks(model, "ROW")["traders_sell"]
    floor = tb.landed_cost("ROW") * (1 - 2 * model.behaviour.import_margin)
    imp = tb.imports[tb.rows_home["ROW"]]
    below = (grid < floor[:, None])[:, None, :] & imp[None, :, None]
    assert not sell[np.broadcast_to(below, sell.shape)].any()
