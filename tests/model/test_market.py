"""Tests for model.market: hand-worked books plus hypothesis properties of the call auction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from model import market
from model.market import Clearing, clear, clear_curves, price_grid


@pytest.fixture(scope="module", autouse=True, params=["compiled", "numpy"])
def implementation(request):
    """Every test here runs on both implementations of the rules: the compiled kernel and the numpy
    reference (the fallback without a compiler)."""
    if request.param == "compiled" and market._auction is None:
        pytest.skip("kernel not built (tests/model/test_auction_kernel.py::test_kernel_is_built fails)")
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "numpy":
            mp.setattr(market, "_auction", None)
        yield request.param

# ---------------------------------------------------------------- helpers


def assert_no_trade(c: Clearing, n_ask: int, n_bid: int) -> None:
    assert math.isnan(c.price)
    assert c.volume == 0.0
    assert c.ask_fill.shape == (n_ask,)
    assert c.bid_fill.shape == (n_bid,)
    assert not c.ask_fill.any()
    assert not c.bid_fill.any()


def oracle(ap, aq, bp, bq):
    """Brute-force rules 1-3 with plain Python loops: (volume, price)."""
    asks = [(p, q) for p, q in zip(ap, aq, strict=True) if q > 0]
    bids = [(p, q) for p, q in zip(bp, bq, strict=True) if q > 0]
    cands = sorted({p for p, _ in asks} | {p for p, _ in bids})
    rows = []
    for c in cands:
        s = sum(q for p, q in asks if p <= c)
        d = sum(q for p, q in bids if p >= c)
        rows.append((c, s, d, min(s, d)))
    vol = max((r[3] for r in rows), default=0.0)
    if vol <= 0:
        return 0.0, math.nan
    best = [r for r in rows if r[3] == vol]
    imb = min(abs(r[1] - r[2]) for r in best)
    kept = [r[0] for r in best if abs(r[1] - r[2]) == imb]
    return vol, 0.5 * (min(kept) + max(kept))


# ---------------------------------------------------------------- empty / no trade


def test_empty_ask_side():
    c = clear([], [], [10.0, 12.0], [3.0, 4.0])
    assert_no_trade(c, 0, 2)
    assert math.isnan(c.best_ask)
    assert c.best_bid == 12.0
    assert c.offered == 0.0
    assert c.demanded == 7.0


def test_empty_bid_side():
    c = clear([5.0, 6.0], [1.0, 2.0], [], [])
    assert_no_trade(c, 2, 0)
    assert c.best_ask == 5.0
    assert math.isnan(c.best_bid)
    assert c.offered == 3.0
    assert c.demanded == 0.0


def test_both_sides_empty():
    c = clear([], [], [], [])
    assert_no_trade(c, 0, 0)
    assert math.isnan(c.best_ask) and math.isnan(c.best_bid)
    assert c.offered == 0.0 and c.demanded == 0.0


def test_side_with_only_zero_quantities_is_empty():
    c = clear([5.0], [0.0], [9.0], [4.0])
    assert_no_trade(c, 1, 1)
    assert math.isnan(c.best_ask)
    assert c.best_bid == 9.0


def test_no_crossing_no_trade_but_quotes_reported():
    c = clear([10.0, 11.0], [5.0, 5.0], [9.0, 8.5], [5.0, 5.0])
    assert_no_trade(c, 2, 2)
    assert c.best_ask == 10.0
    assert c.best_bid == 9.0
    assert c.offered == 10.0
    assert c.demanded == 10.0


# ---------------------------------------------------------------- hand-worked books


def test_single_ask_single_bid_midpoint():
    c = clear([10.0], [3.0], [20.0], [3.0])
    assert c.price == 15.0
    assert c.volume == 3.0
    np.testing.assert_array_equal(c.ask_fill, [3.0])
    np.testing.assert_array_equal(c.bid_fill, [3.0])


def test_one_seller_several_buyers():
    # Candidates 4, 5, 7, 8: S = 0, 10, 10, 10; D = 18, 12, 12, 6; min = 0, 10, 10, 6.
    # V = 10 at p = 5 and p = 7, both with |S - D| = 2 -> price = (5 + 7) / 2 = 6.
    c = clear([5.0], [10.0], [8.0, 7.0, 4.0], [6.0, 6.0, 6.0])
    assert c.price == 6.0
    assert c.volume == 10.0
    np.testing.assert_allclose(c.ask_fill, [10.0])
    np.testing.assert_allclose(c.bid_fill, [6.0, 4.0, 0.0])
    assert c.best_ask == 5.0 and c.best_bid == 8.0
    assert c.offered == 10.0 and c.demanded == 18.0


def test_exact_tie_at_margin_split_pro_rata():
    # Candidates 10, 12: S = 16, 16; D = 8, 8 -> V = 8, both kept -> price 11.
    c = clear([10.0, 10.0], [4.0, 12.0], [12.0], [8.0])
    assert c.price == 11.0
    assert c.volume == 8.0
    np.testing.assert_allclose(c.ask_fill, [2.0, 6.0])
    np.testing.assert_allclose(c.bid_fill, [8.0])


def test_bid_side_marginal_level_pro_rata_and_inner_level_full():
    # Ask 10 @ 5. Bids 4 @ 9 (inner level), 3 @ 7 and 9 @ 7 (marginal level), 5 @ 6.
    # Candidates 5, 6, 7, 9: S = 10 throughout; D = 21, 21, 16, 4 -> V = 10 at 5, 6, 7;
    # |S - D| = 11, 11, 6 -> keep 7 only -> price 7. Marginal level gets 6 of 12 -> half each.
    c = clear([5.0], [10.0], [9.0, 7.0, 6.0, 7.0], [4.0, 3.0, 5.0, 9.0])
    assert c.price == 7.0
    assert c.volume == 10.0
    np.testing.assert_allclose(c.bid_fill, [4.0, 1.5, 0.0, 4.5])
    np.testing.assert_allclose(c.ask_fill, [10.0])


def test_imbalance_rule_selects_inner_price():
    # Asks 5 @ 1, 5 @ 2; bids 5 @ 3, 2 @ 1.5. Candidates 1, 1.5, 2, 3:
    # S = 5, 5, 10, 10; D = 7, 7, 5, 5; min = 5 everywhere (all achieve V);
    # |S - D| = 2, 2, 5, 5 -> keep 1 and 1.5 -> price 1.25 (without the filter it would be 2).
    c = clear([1.0, 2.0], [5.0, 5.0], [3.0, 1.5], [5.0, 2.0])
    assert c.price == 1.25
    assert c.volume == 5.0
    np.testing.assert_allclose(c.ask_fill, [5.0, 0.0])
    np.testing.assert_allclose(c.bid_fill, [5.0, 0.0])


def test_bid_equals_ask_trades_at_that_price():
    c = clear([10.0], [5.0], [10.0], [3.0])
    assert c.price == 10.0
    assert c.volume == 3.0
    np.testing.assert_allclose(c.ask_fill, [3.0])
    np.testing.assert_allclose(c.bid_fill, [3.0])


def test_multi_level_both_sides():
    # Asks 2 @ 1, 3 @ 2, 4 @ 3; bids 3 @ 4, 2 @ 2.5, 5 @ 1.
    # Candidates 1, 2, 2.5, 3, 4: S = 2, 5, 5, 9, 9; D = 10, 5, 5, 3, 3;
    # min = 2, 5, 5, 3, 3 -> V = 5 at 2 and 2.5 (|S - D| = 0 both) -> price 2.25.
    c = clear([3.0, 1.0, 2.0], [4.0, 2.0, 3.0], [1.0, 4.0, 2.5], [5.0, 3.0, 2.0])
    assert c.price == 2.25
    assert c.volume == 5.0
    np.testing.assert_allclose(c.ask_fill, [0.0, 2.0, 3.0])
    np.testing.assert_allclose(c.bid_fill, [0.0, 3.0, 2.0])


def test_zero_and_negative_quantities_ignored():
    base = clear([5.0], [10.0], [8.0, 7.0], [6.0, 6.0])
    c = clear([5.0, 1.0, 2.0], [10.0, 0.0, -3.0], [8.0, 100.0, 7.0, 50.0], [6.0, -1.0, 6.0, 0.0])
    assert c.price == base.price == 6.0
    assert c.volume == base.volume == 10.0
    np.testing.assert_allclose(c.ask_fill, [10.0, 0.0, 0.0])
    np.testing.assert_allclose(c.bid_fill, [6.0, 0.0, 4.0, 0.0])
    # Ignored orders do not count towards quotes or totals either.
    assert c.best_ask == 5.0
    assert c.best_bid == 8.0
    assert c.offered == 10.0
    assert c.demanded == 12.0


def test_accepts_lists_and_integer_arrays_and_zero_price():
    c = clear(np.array([0, 2]), np.array([1, 1]), (3,), [2])
    # Candidates 0, 2, 3: S = 1, 2, 2; D = 2, 2, 2 -> V = 2 at 2 and 3 (|S - D| = 0) -> 2.5.
    assert c.volume == 2.0
    assert c.price == 2.5
    assert c.ask_fill.dtype == np.float64
    np.testing.assert_allclose(c.ask_fill, [1.0, 1.0])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 2.0], [1.0], [3.0], [1.0]), "mismatched lengths.*ask"),
        (([1.0], [1.0], [3.0], [1.0, 2.0]), "mismatched lengths.*bid"),
        (([-1.0], [1.0], [3.0], [1.0]), "negative ask price"),
        (([1.0], [1.0], [-3.0], [1.0]), "negative bid price"),
        (([math.nan], [1.0], [3.0], [1.0]), "non-finite ask price"),
        (([1.0], [1.0], [math.inf], [1.0]), "non-finite bid price"),
        (([1.0], [math.nan], [3.0], [1.0]), "nan ask quantity"),
        (([1.0], [1.0], [3.0], [math.nan]), "nan bid quantity"),
        (([1.0], [math.inf], [3.0], [1.0]), "infinite ask quantity"),
        (([[1.0]], [[1.0]], [3.0], [1.0]), "1-D"),
    ],
)
def test_invalid_inputs_raise(args, match):
    with pytest.raises(ValueError, match=match):
        clear(*args)


def test_negative_price_rejected_even_on_ignored_order():
    with pytest.raises(ValueError, match="negative ask price"):
        clear([1.0, -2.0], [1.0, 0.0], [3.0], [1.0])


# ---------------------------------------------------------------- properties

GRID = [0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0]
prices_st = st.one_of(st.sampled_from(GRID), st.floats(0.0, 20.0, allow_nan=False))
qty_st = st.one_of(
    st.just(0.0),
    st.floats(-5.0, 0.0, allow_nan=False),
    st.floats(1e-3, 100.0, allow_nan=False),
)
int_qty_st = st.integers(-2, 20).map(float)  # integer quantities: sums are exact in float


@st.composite
def books(draw, qty=qty_st):
    na = draw(st.integers(0, 12))
    nb = draw(st.integers(0, 12))
    ap = np.array(draw(st.lists(prices_st, min_size=na, max_size=na)), dtype=float)
    aq = np.array(draw(st.lists(qty, min_size=na, max_size=na)), dtype=float)
    bp = np.array(draw(st.lists(prices_st, min_size=nb, max_size=nb)), dtype=float)
    bq = np.array(draw(st.lists(qty, min_size=nb, max_size=nb)), dtype=float)
    return ap, aq, bp, bq


@settings(max_examples=400, deadline=None)
@given(books())
def test_property_invariants(book):
    ap, aq, bp, bq = book
    c = clear(ap, aq, bp, bq)
    scale = max(1.0, c.offered, c.demanded)
    tol = 1e-9 * scale

    assert c.ask_fill.shape == ap.shape and c.bid_fill.shape == bp.shape
    assert c.volume >= 0.0
    assert c.ask_fill.sum() == pytest.approx(c.volume, abs=tol)
    assert c.bid_fill.sum() == pytest.approx(c.volume, abs=tol)
    assert np.all(c.ask_fill >= 0.0) and np.all(c.bid_fill >= 0.0)
    assert np.all(c.ask_fill <= np.maximum(aq, 0.0))
    assert np.all(c.bid_fill <= np.maximum(bq, 0.0))

    vol, _ = oracle(ap, aq, bp, bq)
    assert c.volume == pytest.approx(vol, abs=tol)

    if c.volume == 0.0:
        assert math.isnan(c.price)
        assert not c.ask_fill.any() and not c.bid_fill.any()
    else:
        assert math.isfinite(c.price)
        assert c.best_ask <= c.price <= c.best_bid
        assert np.all(ap[c.ask_fill > 0] <= c.price)
        assert np.all(bp[c.bid_fill > 0] >= c.price)


@settings(max_examples=300, deadline=None)
@given(books(qty=int_qty_st))
def test_property_price_matches_bruteforce_rule(book):
    ap, aq, bp, bq = book
    c = clear(ap, aq, bp, bq)
    vol, price = oracle(ap, aq, bp, bq)
    assert c.volume == vol
    if math.isnan(price):
        assert math.isnan(c.price)
    else:
        assert c.price == price


@settings(max_examples=300, deadline=None)
@given(books(), st.randoms(use_true_random=False))
def test_property_order_independence(book, rnd):
    ap, aq, bp, bq = book
    pa = np.array(rnd.sample(range(ap.size), ap.size), dtype=int)
    pb = np.array(rnd.sample(range(bp.size), bp.size), dtype=int)
    c = clear(ap, aq, bp, bq)
    cp = clear(ap[pa], aq[pa], bp[pb], bq[pb])
    tol = 1e-9 * max(1.0, c.offered, c.demanded)
    if math.isnan(c.price):
        assert math.isnan(cp.price)
    else:
        assert cp.price == pytest.approx(c.price, rel=1e-12, abs=1e-12)
    assert cp.volume == pytest.approx(c.volume, abs=tol)
    # permuted fill j belongs to original order pa[j]
    np.testing.assert_allclose(cp.ask_fill, c.ask_fill[pa], atol=tol)
    np.testing.assert_allclose(cp.bid_fill, c.bid_fill[pb], atol=tol)


# ------------------------------------------------------------------------ schedule auctions (exchanges)
GRID = np.array([[1.0, 2.0, 4.0]])


def curves(supply, demand, grid=GRID):
    """Clear one market from lists of seller and buyer schedules on ``grid``."""
    s = np.array(supply, dtype=float).reshape(1, -1, grid.shape[1])
    d = np.array(demand, dtype=float).reshape(1, -1, grid.shape[1])
    return clear_curves(grid, s, d)


def test_curves_cross_on_a_grid_point():
    r = curves([[0, 10, 20]], [[20, 10, 0]])
    assert r.price[0] == pytest.approx(2.0)
    assert r.volume[0] == pytest.approx(10.0)
    assert r.sell_fill[0, 0] == pytest.approx(10.0) and r.buy_fill[0, 0] == pytest.approx(10.0)
    assert r.bound[0] == 0


def test_curves_cross_between_grid_points_by_log_price_interpolation():
    # excess demand 5 at price 2 and -15 at price 4: a quarter of the way in log price, 2 ** 1.25
    r = curves([[0, 10, 20]], [[30, 15, 5]])
    assert r.price[0] == pytest.approx(2.0 ** 1.25)
    assert r.volume[0] == pytest.approx(12.5)


def test_curves_fill_each_participant_its_schedule_at_the_price():
    r = curves([[0, 4, 8], [0, 6, 12]], [[30, 15, 5], [0, 0, 0]])
    t = 0.25  # as above: supply 10 -> 20, demand 15 -> 5 between the 2nd and 3rd grid points
    assert r.sell_fill[0].tolist() == pytest.approx([4 + t * 4, 6 + t * 6])
    assert r.buy_fill[0].tolist() == pytest.approx([12.5, 0.0])


def test_curves_demand_beyond_the_grid_is_rationed_at_the_top():
    r = curves([[1, 2, 3]], [[10, 10, 10], [30, 30, 30]])
    assert r.price[0] == 4.0 and r.bound[0] == 1
    assert r.volume[0] == pytest.approx(3.0)
    assert r.buy_fill[0].tolist() == pytest.approx([0.75, 2.25])  # pro rata to what each wants
    assert r.demanded[0] == pytest.approx(40.0)


def test_curves_supply_beyond_the_grid_is_rationed_at_the_bottom():
    r = curves([[10, 10, 10], [30, 30, 30]], [[4, 2, 1]])
    assert r.price[0] == 1.0 and r.bound[0] == -1
    assert r.sell_fill[0].tolist() == pytest.approx([1.0, 3.0])


@pytest.mark.parametrize("supply,demand", [([[0, 0, 0]], [[5, 5, 5]]), ([[5, 5, 5]], [[0, 0, 0]]),
                                           ([[0, 0, 0]], [[0, 0, 0]])])
def test_curves_nothing_to_trade_gives_no_price(supply, demand):
    r = curves(supply, demand)
    assert np.isnan(r.price[0]) and r.volume[0] == 0.0
    assert not r.sell_fill.any() and not r.buy_fill.any()


def test_curves_clear_several_markets_independently():
    grid = np.array([[1.0, 2.0, 4.0], [10.0, 20.0, 40.0]])
    s = np.array([[[0, 10, 20]], [[0, 10, 20]]], dtype=float)
    d = np.array([[[20, 10, 0]], [[30, 15, 5]]], dtype=float)
    r = clear_curves(grid, s, d)
    assert r.price.tolist() == pytest.approx([2.0, 20.0 * 2.0 ** 0.25])


def test_price_grid_is_log_spaced_around_each_centre():
    g = price_grid(np.array([10.0, 100.0]), 0.5, 2.0, 3)
    np.testing.assert_allclose(g, [[5.0, 10.0, 20.0], [50.0, 100.0, 200.0]])


@st.composite
def schedules(draw):
    """One market: a few sellers and buyers with monotone schedules on a fixed grid."""
    n_g = draw(st.integers(3, 12))
    grid = np.exp(np.linspace(0.0, 3.0, n_g))[None, :]
    q = st.floats(0.0, 50.0, allow_nan=False)
    ns, nb = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    s = np.cumsum(np.array(draw(st.lists(q, min_size=ns * n_g, max_size=ns * n_g))).reshape(ns, n_g), axis=1)
    d = np.cumsum(np.array(draw(st.lists(q, min_size=nb * n_g, max_size=nb * n_g))).reshape(nb, n_g), axis=1)[:, ::-1]
    return grid, s[None], d[None]


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_curves_property_fills_balance_and_stay_within_schedules(book):
    grid, s, d = book
    r = clear_curves(grid, s, d)
    tol = 1e-9 * max(1.0, s.sum(), d.sum())
    assert r.sell_fill.sum() == pytest.approx(r.volume[0], abs=tol)
    assert r.buy_fill.sum() == pytest.approx(r.volume[0], abs=tol)
    assert (r.sell_fill >= -tol).all() and (r.buy_fill >= -tol).all()
    assert (r.sell_fill[0] <= s[0].max(axis=1) + tol).all() and (r.buy_fill[0] <= d[0].max(axis=1) + tol).all()
    if r.volume[0] > 0:
        assert grid[0, 0] <= r.price[0] <= grid[0, -1] * (1 + 1e-12)
    else:
        assert np.isnan(r.price[0])


@settings(max_examples=300, deadline=None)
@given(schedules(), st.floats(0.5, 40.0))
def test_curves_property_more_demand_never_lowers_the_price(book, extra):
    grid, s, d = book
    base = clear_curves(grid, s, d)
    more = clear_curves(grid, s, np.concatenate([d, np.full((1, 1, grid.shape[1]), extra)], axis=1))
    if base.volume[0] > 0 and more.volume[0] > 0:
        assert more.price[0] >= base.price[0] * (1 - 1e-12)
    assert more.volume[0] >= base.volume[0] - 1e-9 * max(1.0, base.volume[0])


@settings(max_examples=300, deadline=None)
@given(schedules(), st.floats(1e-7, 1e-4))
def test_curves_property_price_is_continuous_in_the_schedules(book, eps):
    """A small change in one buyer's schedule moves the price within the grid segment it was in (unless
    excess demand is zero, to within the change, over a stretch of the grid, where any price on it clears:
    a change of eps x the buyer's schedule can then move the crossing to the stretch's other end)."""
    grid, s, d = book
    excess = d[0].sum(axis=0) - s[0].sum(axis=0)
    flat = 2.0 * eps * float(d[0, 0].max()) + 1e-9
    assume(not ((np.abs(excess[1:]) < flat) & (np.abs(excess[:-1]) < flat)).any())
    base = clear_curves(grid, s, d)
    d2 = d.copy()
    d2[0, 0] = d2[0, 0] * (1 + eps)
    moved = clear_curves(grid, s, d2)
    if base.volume[0] > 1e-6 and moved.volume[0] > 1e-6 and base.bound[0] == 0 == moved.bound[0]:
        step = np.log(grid[0, 1] / grid[0, 0])
        assert abs(np.log(moved.price[0] / base.price[0])) <= step + 1e-12  # within the segment it was in


# ------------------------------------------------------------------------------- GroupSum (model.exchange)
def test_group_sum_is_np_add_at_bit_for_bit():
    """The participants' totals by group (GroupSum) add each group's rows in row order from 0.0, as
    np.add.at into zeros does: the same bits, signed zeros, nan and inf included, with empty groups and rows."""
    from model.exchange import GroupSum

    rng = np.random.default_rng(11)
    for _ in range(500):
        n, groups, cols = int(rng.integers(0, 40)), int(rng.integers(1, 12)), int(rng.integers(1, 21))
        code = rng.integers(0, groups, n)
        values = rng.standard_normal((n, cols)) * 10.0 ** rng.integers(-8, 9, (n, cols))
        values[rng.random((n, cols)) < 0.3] = 0.0
        values[rng.random((n, cols)) < 0.1] = -0.0
        values[rng.random((n, cols)) < 0.02] = np.inf
        values[rng.random((n, cols)) < 0.02] = np.nan
        expect = np.zeros((groups, cols))
        np.add.at(expect, code, values)
        got = GroupSum(code, groups)(values)
        assert got.shape == expect.shape
        assert np.array_equal(got.view(np.int64), expect.view(np.int64))
        # the index kept for this width serves a transposed (non-contiguous) input too
        assert np.array_equal(GroupSum(code, groups)(np.ascontiguousarray(values.T).T).view(np.int64),
                              expect.view(np.int64))
