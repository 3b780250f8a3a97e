"""The start of a run and the accuracy of the clearing: a world begins at rest at its starting prices, and
the price grid is fine enough that a clearing price does not depend on it by more than the weekly moves the
model is judged on (FACTS P1: 1-3 % in an ordinary week)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.run import _with_overrides
from model.model import RareEarthModel
from tests.conftest import build_scenario

# the oxide world's baseline: the tests of its start that the magnet world, the default, has its own of
OXIDE_BASELINE = build_scenario("baseline", world="world_2024.toml")


def _weekly_prices(scenario, weeks: int, seed: int = 1) -> np.ndarray:
    """Every region's prices (weeks x regions*products) after each of the first ``weeks`` weeks."""
    m = RareEarthModel(scenario, seed=seed)
    out = []
    for _ in range(weeks):
        m.step()
        out.append(np.concatenate([m.signals.price[r] for r in m.regions]))
    return np.array(out)


def test_an_importing_region_starts_at_the_importers_landed_cost():
    """Ex-China buyers are served by importers, who sell what they bring in at its landed cost (source price +
    export cost + their margin) and keep every tonne below it: that is where the region starts (the oxide world,
    whose ex-China region imports every product; a product a region starts exporting: the next test)."""
    m = RareEarthModel(OXIDE_BASELINE, seed=1)
    w = m.world
    for r in m.regions:
        base = np.array([w.product(p).price_2024_usd_per_kg for p in m.products])
        if w.region(r).imports_from:
            want = (base + m.export_cost) * (1.0 + m.behaviour.import_margin)
        else:
            want = base
        np.testing.assert_allclose(m.initial_prices[r], want, rtol=1e-12)


def test_a_region_whose_plants_make_more_than_its_users_take_starts_at_export_parity():
    """In the magnet world ex-China plants make more NdPr than ex-China makers and users take (Lynas sells into
    China too), and the route back (``row_exporters``) carries the surplus: ex-China NdPr starts where those
    exporters buy it, China's price less their margin and the export cost, and every other ex-China product at
    the importers' landed cost. Started at the landed cost, ex-China NdPr slid ~10 % in twelve calm weeks to
    reach export parity. The oxide world's ex-China region imports all three oxides: nothing starts there."""
    m = RareEarthModel("magnets_baseline", seed=1)
    assert set(m.exporting_at_start) == {"ROW"}
    mask = m.exporting_at_start["ROW"]
    assert [p for p, x in zip(m.products, mask, strict=True) if x] == ["NdPr"]
    k = m.products.index("NdPr")
    rb = m.refiner_book
    made = rb.sales_ema[rb.at_region["ROW"], k].sum()
    assert made > 1.2 * m.need_of_region("ROW")[k]  # a clear surplus, not a rounding
    base = np.array([m.world.product(p).price_2024_usd_per_kg for p in m.products])
    margin = m.behaviour.import_margin
    want = np.where(mask, base / (1.0 + margin) - m.export_cost, (base + m.export_cost) * (1.0 + margin))
    np.testing.assert_allclose(m.initial_prices["ROW"], want, rtol=1e-12)
    assert RareEarthModel(OXIDE_BASELINE, seed=1).exporting_at_start == {}


def test_the_route_back_starts_with_its_working_stock_and_sells_from_the_first_weeks():
    """At rest the exporters hold their working stock of what their region starts exporting (the oxide on its
    way back) and nothing else, and sell into China within the first month. Started empty, they bought for nine
    weeks before they sold a tonne, and ex-China NdPr sagged meanwhile. Seed 1 of the calm magnet world."""
    m = RareEarthModel("magnets_baseline", seed=1)
    tb = m.trader_book
    rows = np.flatnonzero(tb.exporter)
    assert rows.size
    k = m.products.index("NdPr")
    np.testing.assert_allclose(tb.stock[rows, k], tb.export_working[rows, k])
    others = np.delete(tb.stock[rows], k, axis=1)
    assert not others.any()
    sold = 0.0
    for _ in range(4):
        m.step()
        sold += tb.exported[rows, k].sum()
    assert sold > 0.25 * 4 * (m.refiner_book.sales_ema[m.refiner_book.at_region["ROW"], k].sum()
                              - m.need_of_region("ROW")[k])


@pytest.mark.parametrize("seed", [1, 2])
def test_the_magnet_world_first_week_moves_no_price_more_than_an_ordinary_week(seed):
    """Week 1 of the calm magnet world moves no price, in either region, by more than an ordinary week does
    (FACTS P1: 1-3 %; < 2.5 % here). Sm fell 3.6 % in week 1 while the co-products' separation costs were set
    5 % under their 2024 prices, and ex-China NdPr 2.8 % while it started at import parity."""
    m = RareEarthModel("magnets_baseline", seed=seed)
    p0 = np.concatenate([m.initial_prices[r] for r in m.regions])
    first = _weekly_prices("magnets_baseline", 1, seed=seed)[0]
    moves = np.abs(first / p0 - 1.0)
    assert moves.max() < 0.025, dict(zip([f"{r}:{p}" for r in m.regions for p in m.products], moves.round(4),
                                         strict=True))


def test_plants_start_with_the_oxide_stock_they_keep_at_the_starting_prices():
    """A plant's stock at the start is what its own rule keeps at its region's starting price: less than its
    target cover where that price is above its reservation (China's plants, ~10 % below the 2024 prices)."""
    m = RareEarthModel("baseline", seed=1)
    rb, b = m.refiner_book, m.behaviour
    running = rb.inventory.sum(axis=1) > 0
    assert running.sum() >= 5
    cn = np.array([m.regions[c] == "CN" for c in rb.region_code]) & running
    cover = rb.inventory[cn].sum() / (rb.sales_ema[cn].sum() * b.seller_target_cover_weeks)
    assert 0.75 < cover < 0.95, cover  # they keep less than their target cover at prices above their reservation


@pytest.mark.parametrize("seed", [1, 2])
def test_the_first_week_clears_near_the_starting_prices(seed):
    """Week 1 of the calm baseline moves no price by more than an ordinary week does (FACTS P1). Started at the
    target cover and at the source price + export cost abroad, China's plants offered ~14 % of their stock in
    week 1 and every Chinese price fell ~4.4 % in one week (ex-China Dy rose ~3 % as the grid interpolated it).
    The oxide world, under 1.5 %; the magnet world's test is below (under 2.5 %: ex-China NdPr, which starts at
    export parity, moves ~2.2 % in week 1 to where the route back sells its surplus)."""
    m = RareEarthModel(OXIDE_BASELINE, seed=seed)
    p0 = np.concatenate([m.initial_prices[r] for r in m.regions])
    first = _weekly_prices(OXIDE_BASELINE, 1, seed=seed)[0]
    moves = np.abs(first / p0 - 1.0)
    assert moves.max() < 0.015, dict(zip([f"{r}:{p}" for r in m.regions for p in m.products], moves.round(4), strict=True))


def test_clearing_prices_do_not_depend_on_the_grid():
    """The clearing price between two grid points is interpolated, so a kinked schedule (an importer's floor, a
    buyer's most) puts it off the true crossing by up to about one grid step. With the shipped grid (400
    points, 1.4 % apart) a quarter of the baseline stays within 1.5 % of a grid four times finer; with 64
    points (9 % apart, the grid of before) it strays ~4 %."""
    fine = _weekly_prices(_with_overrides("baseline", {"behaviour.price_grid_points": 1600}), 13)
    shipped = _weekly_prices("baseline", 13)
    coarse = _weekly_prices(_with_overrides("baseline", {"behaviour.price_grid_points": 64}), 13)
    assert np.max(np.abs(shipped / fine - 1.0)) < 0.015
    assert np.max(np.abs(coarse / fine - 1.0)) > 0.03


# -- what is not yet at rest at the start (README, Known limits) -------------------------------------------------
MARKUP = {"behaviour.china_quota_at_2024_markup": ["light", "heavy"]}


def _quota_range(scenario, weeks: int = 26) -> tuple[float, float]:
    """Least and largest of China's light and heavy quota factors over the first ``weeks`` calm weeks."""
    m = RareEarthModel(scenario, seed=1)
    seen = []
    for _ in range(weeks):
        m.step()
        seen += [m.fleet.quota_factor["light"], m.fleet.quota_factor["heavy"]]
    return min(seen), max(seen)


@pytest.mark.parametrize("world", ["baseline", "magnets_baseline"])
def test_quotas_centred_on_the_2024_markup_rest_at_the_start(world):
    """With the band centred on the 2024 price's markup over the cost of supply, China's quotas do not move in
    the first half year of a calm run: the starting market is where the rule wants it."""
    lo, hi = _quota_range(_with_overrides(world, MARKUP))
    assert 0.999 <= lo <= hi <= 1.001, (lo, hi)


@pytest.mark.xfail(strict=True, reason="known gap (README Known limits): the 2024 prices sit 9-12 % above "
                   "China's cost of supply, at the top of the quota band, and the cost-centred rule raises the "
                   "light quota ~5 % in the first calm weeks")
@pytest.mark.parametrize("world", ["baseline", "magnets_baseline"])
def test_quotas_rest_at_the_start(world):
    lo, hi = _quota_range(_with_overrides(world, None))
    assert 0.99 <= lo <= hi <= 1.01, (lo, hi)


def _oxide_balance(scenario, weeks: int = 20) -> dict[str, tuple[float, float]]:
    """Per magnet element, the world's oxide made from the ore and scrap plants receive (t/week, weeks 2 to
    ``weeks``: the lasting flow, not what plants make by running down their opening feed) against the
    makers' use net of the swarf they recycle."""
    m = RareEarthModel(scenario, seed=1)
    rb, mb = m.refiner_book, m.maker_book
    prev = rb.feed_el.copy()
    made, net = [], []
    for w in range(weeks):
        m.step()
        received = rb.feed_el - prev + rb.used  # elements of the ore that came in this week
        prev = rb.feed_el.copy()
        if w:
            made.append((received * rb.recovery[:, None] * rb.separates).sum(axis=0))
            net.append((mb.used - mb.recycled).sum(axis=0))
    made, net = np.mean(made, axis=0), np.mean(net, axis=0)
    return {p: (float(made[m.products.index(p)]), float(net[m.products.index(p)])) for p in ("NdPr", "Dy", "Tb")}


@pytest.fixture(scope="module")
def magnet_balance():
    return _oxide_balance(_with_overrides("magnets_baseline", None))


@pytest.mark.parametrize("element", ["NdPr", "Dy", "Tb"])
def test_the_magnet_world_starts_with_its_magnet_oxides_balanced(magnet_balance, element):
    """The buyers' magnet tonnage (NdPr) and the magnets' Dy and Tb bill of materials were scaled so that 2024
    demand uses what the ore the plants receive yields. Scaled instead to what the plants made in the first
    weeks, which included their opening feed stocks run down, the makers used ~10 % more NdPr than the ore
    gave, and China's NdPr rose ~20 % in a calm 2025-26."""
    made, used = magnet_balance[element]
    assert used == pytest.approx(made, rel=0.03)


def _opening(overrides) -> dict:
    """The default world's first 40 calm weeks: ex-China importers' NdPr imports (t/week) and Baotou's feed."""
    m = RareEarthModel(_with_overrides("baseline", overrides), seed=1)
    tb, rb, k = m.trader_book, m.refiner_book, m.products.index("NdPr")
    baotou = rb.index["cn_baotou"]
    imports, feed = [], [rb.feed_reo[baotou]]
    for _ in range(40):
        m.step()
        imports.append(tb.imported[:, k].sum())
        feed.append(rb.feed_reo[baotou])
    return {"imports": np.array(imports), "feed": np.array(feed)}


OPENING_GAP = "known gap (README Known limits, 'A calm run does not start fully at rest')"


def _gap_and_mend(why: str, mend: str) -> list:
    """The default rule, a strict known gap (``why``), and the option that mends it (test id ``mend``)."""
    return [pytest.param(False, marks=pytest.mark.xfail(strict=True, reason=f"{OPENING_GAP}: {why}"), id="default"),
            pytest.param(True, id=mend)]


@pytest.mark.parametrize("option", _gap_and_mend("without contracts, importers start with sales of their state's "
                                                 "whole use and import ~30 % more NdPr in weeks 1-4 than from "
                                                 "week 25", "net_of_home_output"))
def test_importers_start_at_the_imports_they_keep_to(option):
    got = _opening({"behaviour.importers_start_net_of_home_output": option})["imports"]
    assert got[:4].mean() == pytest.approx(got[24:32].mean(), rel=0.1)


@pytest.mark.parametrize("option", _gap_and_mend("Baotou plans its capacity (5,400 t a week) on 4,805 t of ore and "
                                                 "runs its feed dry by week ~31", "within_feed"))
def test_plants_keep_their_feed_at_its_target(option):
    feed = _opening({"behaviour.plants_process_within_feed": option})["feed"]
    assert 0.9 * feed[0] <= feed.min() <= feed.max() <= 1.15 * feed[0], (feed.min(), feed.max())
