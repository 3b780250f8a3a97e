"""The compiled auction kernel (model/_auction.pyx) against the numpy reference, bit for bit.

The model clears through the kernel; its results must be the ones the numpy rules give, to the last bit,
so a run does not depend on whether the kernel was built. Books here are drawn to reach every branch: both
sides empty or one-sided, no crossing, ties within and across sides (price grids), zero and negative
quantities, and lengths across numpy's pairwise-summation blocks (8 and 128 values)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import exchange as model_exchange
from model import market
from model.market import _clear_numpy, clear, clear_unchecked

needs_kernel = pytest.mark.skipif(market.KERNEL != "compiled", reason="kernel not built (test_kernel_is_built fails)")


def assert_same_bits(a: market.Clearing, b: market.Clearing) -> None:
    for f in ("price", "volume", "best_ask", "best_bid", "offered", "demanded"):
        x, y = getattr(a, f), getattr(b, f)
        assert np.array(x).tobytes() == np.array(y).tobytes(), f"{f}: {x!r} != {y!r}"
    for f in ("ask_fill", "bid_fill"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype == np.float64 and x.shape == y.shape, f
        assert x.tobytes() == y.tobytes(), f"{f} differs at {np.flatnonzero(x != y)[:5]}"


def test_kernel_is_built():
    """`pip install -e .` (make's venv step) compiles the kernel; without it runs are about 1.5x slower."""
    assert market.KERNEL == "compiled", (
        "model._auction is not built: run `.venv/bin/pip install -e .` with a C compiler (gcc) present")


@st.composite
def big_books(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_a = int(draw(st.sampled_from([0, 1, 3, 7, 8, 9, 16, 40, 127, 128, 129, 300, 700])))
    n_b = int(draw(st.sampled_from([0, 1, 2, 5, 8, 70, 129])))
    grid = draw(st.booleans())  # few distinct prices: many ties within and across sides
    zeros = draw(st.sampled_from([0.0, 0.2, 0.6]))

    def side(n):
        p = rng.integers(0, 9, n) * 0.37 if grid else rng.random(n) * 100.0
        q = rng.random(n) * 10.0 ** rng.uniform(-3, 4, n)
        q[rng.random(n) < zeros] = 0.0
        q[rng.random(n) < 0.05] = -1.0
        return p.astype(float), q

    return (*side(n_a), *side(n_b))


@needs_kernel
@settings(max_examples=600, deadline=None)
@given(big_books())
def test_kernel_equals_numpy_reference(book):
    assert_same_bits(clear_unchecked(*book), _clear_numpy(*book))


@needs_kernel
def test_kernel_equals_reference_on_the_models_books(monkeypatch):
    """Every ore-pool book of a short run of a stressed scenario (seizures, closures, halts, sanctions),
    collected from the Python week of ore trade (the compiled one clears the same books inside C)."""
    from model.model import RareEarthModel

    books = []

    def record(*book):
        books.append(tuple(x.copy() for x in book))
        return _clear_numpy(*book)

    kernel = market._auction
    monkeypatch.setattr(market, "_auction", None)
    monkeypatch.setattr(market, "clear_unchecked", record)
    RareEarthModel("combined_2025", seed=3, weeks=80).run()
    assert len(books) > 80 * 3
    assert any(b[0].size > 100 for b in books)  # the large ore pools are among them
    for book in books:
        assert_same_bits(market.Clearing(*kernel.clear(*book, market._RTOL)), _clear_numpy(*book))


@needs_kernel
def test_kernel_reads_strided_views():
    """Any stride is read as it is (callers may hand it rows or columns of larger matrices)."""
    rng = np.random.default_rng(7)
    m = rng.random((6, 40)) * 10.0
    book = (m[0, ::2], m[1, ::2], m.T[:20, 2], m.T[:20, 3])  # asks and bids of 20 orders, strided
    assert not all(x.flags.c_contiguous for x in book)
    assert_same_bits(clear_unchecked(*book), _clear_numpy(*book))


@needs_kernel
def test_checked_clear_accepts_strided_views():
    """`clear` on non-contiguous input (the kernel reads any stride)."""
    ap = np.array([1.0, 9.0, 2.0, 9.0, 3.0, 9.0])[::2]
    c = clear(ap, [1.0, 1.0, 1.0], np.array([5.0, 0.0, 4.0, 0.0])[::2], [1.5, 1.5])
    assert c.volume == 3.0 and c.price == 3.5


# ------------------------------------------------------------------ schedule auctions (product exchanges)
def assert_same_curve_bits(a: market.CurveClearing, b: market.CurveClearing) -> None:
    for f in ("price", "volume", "sell_fill", "buy_fill", "supplied", "demanded", "bound"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape, f
        assert x.tobytes() == y.tobytes(), f"{f} differs at {np.flatnonzero(x.ravel() != y.ravel())[:5]}"


def curves_numpy(grid, supply, demand):
    return market._clear_curves_numpy(np.log(grid), supply, demand)


@st.composite
def curve_books(draw):
    """Markets with monotone schedules: crossings inside the grid, at either end and none at all (an empty
    side, all-zero schedules), participant counts across numpy's pairwise blocks (8 and 128 rows)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_m = int(draw(st.sampled_from([1, 2, 3, 5])))
    n_g = int(draw(st.sampled_from([1, 2, 3, 16, 64])))
    n_s = int(draw(st.sampled_from([0, 1, 2, 7, 8, 9, 20, 130])))
    n_b = int(draw(st.sampled_from([0, 1, 3, 8, 17, 129])))
    grid = np.exp(np.sort(rng.uniform(0.0, 6.0, (n_m, n_g)), axis=1)) * rng.uniform(0.5, 50.0, (n_m, 1))

    def side(n, up):
        step = rng.random((n_m, n, n_g)) * 10.0 ** rng.uniform(-3, 3, (n_m, n, 1))
        step[rng.random(step.shape) < draw(st.sampled_from([0.0, 0.5, 0.95]))] = 0.0
        q = np.cumsum(step, axis=2)
        return q if up else q[:, :, ::-1].copy()

    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))  # demand far below, near or far above supply
    s, d = side(n_s, True), side(n_b, False) * scale
    if draw(st.booleans()):  # participants outermost in memory, as blocks built from transposed rows are
        s, d = (np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2) for x in (s, d))
    return grid, s, d


@needs_kernel
@settings(max_examples=500, deadline=None)
@given(curve_books())
def test_curve_kernel_equals_numpy_reference(book):
    grid, s, d = book
    assert_same_curve_bits(market.clear_curves(grid, s, d), curves_numpy(grid, s, d))


def numpy_blocks(grid, sells, buys):
    """The exchange's numpy reference: the blocks' dense schedules concatenated, cleared in numpy."""
    kernel = market._auction
    try:
        market._auction = None
        return market.clear_blocks(grid, sells, buys, np.log(grid))
    finally:
        market._auction = kernel


@needs_kernel
def test_curve_kernel_equals_reference_on_the_models_exchanges(monkeypatch):
    """Every exchange of a short run of a stressed scenario (export controls, stockpiles, seizures), and of
    the magnet world (schedule forms with masks): the kernel on the blocks as given (forms worked out in C)
    against their dense schedules cleared in numpy."""
    from model.model import RareEarthModel

    books = []
    original = market.clear_blocks

    def record(grid, sells, buys, log_grid, hint=None, checked=None):
        out = original(grid, sells, buys, log_grid, hint, checked)
        books.append((grid, sells, buys, out))  # forms hold copies of the books they read
        return out

    monkeypatch.setattr(model_exchange, "clear_blocks", record)
    RareEarthModel("combined_2025", seed=3, weeks=60).run()
    assert len(books) == 60 * 2
    RareEarthModel("magnets_baseline", seed=2, weeks=30).run()
    assert any(sum(b.n for b in book[2]) >= 8 for book in books)  # pairwise blocks of fills are among them
    assert {type(b.form) for book in books for b in book[1] + book[2]} == {  # every block a form (arrays: below)
        model_exchange.Offer, model_exchange.Bid, model_exchange.Restock, model_exchange.Store,
        model_exchange.Ramps}  # the makers' magnets are an Offer since 79a067b; Single is no agent's now
    for grid, sells, buys, out in books:
        assert_same_curve_bits(out, numpy_blocks(grid, sells, buys))
    # the model's schedules are all sure to be monotone: every crossing is found by bisection (the fast path)
    assert all(market._auction.monotone_blocks(grid, [b.args() for b in sells], [b.args() for b in buys])
               for grid, sells, buys, _ in books)


@st.composite
def form_books(draw):
    """Order blocks of every kind (arrays, offers, bids with and without masks, restocking bids with and
    without arbitrage and caps, stockholders with and without importers and exporters (their bids an array or
    a restock), stock agencies' ramps with and without masks, caps and their second and third offers, one
    product per participant; transposed views as the participants pass them) with floors, most-paid prices
    and covers across the grid, zero and negative values, and signed zeros where a bound or a quantity ties."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_m = int(draw(st.sampled_from([1, 3, 10])))
    n_g = int(draw(st.sampled_from([1, 2, 16, 64])))
    grid = np.exp(np.sort(rng.uniform(0.0, 6.0, (n_m, n_g)), axis=1)) * rng.uniform(0.5, 50.0, (n_m, 1))
    ex = model_exchange

    def pn(n, lo=0.0, hi=100.0):  # (products, participants), often a transposed view
        x = rng.uniform(lo, hi, (n, n_m))
        x[rng.random(x.shape) < 0.2] = 0.0
        x[rng.random(x.shape) < 0.05] = -0.0
        return x.T if rng.random() < 0.7 else np.ascontiguousarray(x.T)

    def restock(n, landed):
        arb = rng.random() < 0.5
        return ex.Restock(
            landed ** -rng.uniform(0.5, 2.0), pn(n, 0.0, 50.0), pn(n, 0.0, 20.0), pn(n, 0.0, 80.0), pn(n, 0.0, 80.0),
            pn(n, 0.0, 2.0 * grid.max()) if arb else None, landed if arb else None, pn(n, 0.0, 5.0) if arb else None,
            pn(n, 0.0, 30.0) if rng.random() < 0.5 else None, float(rng.choice([1.0, 3.0, np.inf])),
            float(rng.choice([1.0, 6.0])), float(rng.choice([0.0, 10.0])))

    def block(side, kind):
        n = int(rng.choice([0, 1, 2, 9, 30]))
        if kind == "dense":
            q = np.cumsum(rng.random((n_m, n, n_g)), axis=2)
            return ex.OrderBlock(f"{side}{kind}", side, q if side is ex.Side.SELL else q[:, :, ::-1].copy())
        if kind == "offer":
            pw = grid ** -rng.uniform(0.5, 2.0)
            return ex.OrderBlock(f"{side}{kind}", side, form=ex.Offer(grid, pn(n, 0.0, 2e3), pw, pn(n),
                                                                      pn(n, 0.0, 2.0 * grid.max())))
        if kind == "restock":
            return ex.OrderBlock(f"{side}{kind}", side, form=restock(n, grid * rng.uniform(1.0, 1.3)))
        if kind == "store":
            imports, exports = rng.random() < 0.6, rng.random() < 0.5 and n > 0
            export = np.where(rng.random(n) < 0.3, -1, np.arange(n)).astype(np.int64) if exports else None
            bids = None
            if exports:  # as an array, or as exporters' restock bids where the landed cost is at most expected
                landed = grid * rng.uniform(1.0, 1.3)
                bids = (rng.uniform(0.0, 50.0, (n_m, n, n_g)) if rng.random() < 0.5 else
                        ex.ExportBids(restock(n, landed), landed, pn(n, 0.0, 1.5 * landed.max())))
            # the price expected at the horizon: returns across the grid, now and then a negative expectation
            # (its returns rise along the grid: not sure to be monotone, the kernel scans)
            expected = rng.uniform(0.0, 2.5, n_m) * grid[:, n_g // 2] * (-1.0 if rng.random() < 0.05 else 1.0)
            return ex.OrderBlock(f"{side}{kind}", side, form=ex.Store(
                grid, expected, float(rng.choice([0.0, 0.05])), float(rng.choice([0.3, 1.0])), pn(n, 0.0, 500.0),
                pn(n, 0.0, 300.0), pn(n, 0.0, 2e3) if imports else None, grid ** -rng.uniform(0.5, 2.0),
                np.where(rng.random((n_m, n)) < 0.5, pn(n, 0.0, 2.0 * grid.max()), -np.inf) if imports else None,
                export, bids, side is ex.Side.BUY))
        if kind == "single":  # each participant one product
            q = np.cumsum(rng.random((n, n_g)), axis=1)
            return ex.OrderBlock(f"{side}{kind}", side, form=ex.Single(
                q if side is ex.Side.SELL else q[:, ::-1].copy(), rng.integers(0, n_m, n).astype(np.int64), n_m))
        if kind == "ramps":  # a stock agency's: levels across the grid, at 0 and (rarely) below it
            def maybe(x):
                return x if rng.random() < 0.6 else None

            def level():
                x = pn(n, 0.0, 1.5 * grid.max())
                return -x if rng.random() < 0.05 else x

            buy = side is ex.Side.BUY
            mask = maybe(rng.random((n_m, n)) < 0.5)
            qty2, qty3 = maybe(pn(n, 0.0, 50.0)), maybe(pn(n, 0.0, 50.0))
            return ex.OrderBlock(f"{side}{kind}", side, form=ex.Ramps(
                grid, maybe(pn(n, 0.0, 50.0)), level(), mask, maybe(pn(n, 0.0, 1e6)) if buy else None,
                None if buy else qty2, None if buy or qty2 is None else level(), None if buy else qty3,
                None if buy or qty3 is None else level(), buy))
        active = rng.random((n_m, n)) < 0.4 if rng.random() < 0.5 else None
        return ex.OrderBlock(f"{side}{kind}", side, form=ex.Bid(
            grid, rng.uniform(0.5, 8.0, n), rng.uniform(1.0, 100.0, n_m), grid ** -rng.uniform(0.5, 2.0), pn(n, 0.0, 10.0), pn(n, 0.0, 50.0), pn(n, 0.0, 2.0 * grid.max()),
            active, float(rng.choice([0.0, 1.0])), float(rng.choice([4.0, 26.0, np.inf]))))

    sells = [block(ex.Side.SELL, k)
             for k in draw(st.lists(st.sampled_from(["dense", "offer", "store", "ramps", "single"]), max_size=3))]
    buys = [block(ex.Side.BUY, k)
            for k in draw(st.lists(st.sampled_from(["dense", "bid", "bid", "restock", "store", "ramps", "single"]),
                                  max_size=3))]
    return grid, [b for b in sells if b.n], [b for b in buys if b.n]


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(form_books())
def test_block_kernel_equals_numpy_reference(book):
    grid, sells, buys = book
    ref = numpy_blocks(grid, sells, buys)
    assert_same_curve_bits(market.clear_blocks(grid, sells, buys, np.log(grid)), ref)
    # where the kernel looks first (last week's crossing) changes nothing: hints anywhere, off the grid too
    n_m, n_g = grid.shape
    hint = np.random.default_rng(n_m * 100 + n_g).integers(-1, n_g + 1, n_m).astype(np.int64)
    assert_same_curve_bits(market.clear_blocks(grid, sells, buys, np.log(grid), hint), ref)
    crossed = hint.copy()  # the crossings it wrote, from which a second clearing starts
    assert_same_curve_bits(market.clear_blocks(grid, sells, buys, np.log(grid), crossed), ref)
    assert (crossed >= 0).all() and (crossed <= n_g).all()
    # arrays the caller checked once (the grid, the forms' grid arrays) change nothing either
    arrays = [grid] + [a for b in sells + buys for a in (getattr(b.form, "pw", None), getattr(b.form, "landed_pow", None))
                       if a is not None and a.shape == grid.shape]
    checked = tuple((a, way) for a in arrays for way in (-1, 1, 2) if market.monotone_rows(a, way))
    assert_same_curve_bits(market.clear_blocks(grid, sells, buys, np.log(grid), hint.copy(), checked[:32]), ref)


@needs_kernel
def test_monotone_rows():
    """What the exchange checks once of the arrays that do not change: each row finite and falling, rising or
    (a grid) rising strictly."""
    grid = np.exp(np.linspace(0.0, 3.0, 10)).reshape(2, 5)
    ok = market.monotone_rows
    assert ok(grid, 2) and ok(grid, 1) and not ok(grid, -1) and ok(grid ** -1.5, -1) and not ok(grid ** -1.5, 1)
    flat = np.ones((2, 5))
    assert ok(flat, 1) and ok(flat, -1) and not ok(flat, 2)
    bad = grid.copy()
    bad[1, 3] = np.nan
    assert not ok(bad, 1) and not ok(bad, 2)
    bad[1, 3] = np.inf
    assert not ok(bad, 1)
    assert ok(grid[:, ::-1], -1)  # a strided view, read as it is



@needs_kernel
def test_monotone_blocks_checks_a_shared_array_for_each_way_and_layout():
    """An array in several blocks (the sellers' price powers in offers and stores) is checked once for the way
    and the layout it was found monotone in; read another way (a restock's landed costs must rise) or through
    another view, it is checked again."""
    ex = model_exchange
    grid = np.exp(np.linspace(0.0, 3.0, 10)).reshape(2, 5)
    pw = grid ** -1.5  # falls along the grid
    ones = np.ones((2, 3))
    offer = ex.Offer(grid, ones, pw, ones, np.zeros((2, 3)))

    def restock(landed):
        return ex.Restock(pw, ones, ones, ones, ones, ones, landed, ones, None, 2.0, 6.0, 10.0)

    ok = market._auction.monotone_blocks
    assert ok(grid, [offer.args(), offer.args()], [restock(grid).args()])
    assert not ok(grid, [offer.args()], [restock(pw).args()])  # pw passed falling; landed must rise
    assert not ok(grid, [offer.args(), ex.Offer(grid, ones, pw[:, ::-1], ones, ones).args()], [])  # rising view
    bad = grid.copy()
    bad[1, 3] = np.nan
    assert not ok(bad, [offer.args()], []) and not ok(grid[:, ::-1].copy(), [offer.args()], [])


# ------------------------------------------------------------------------------ a week of ore trade
class _BothOreTrades:
    """Stands in for the kernel module: runs the compiled week of ore trade and the Python reference on
    the same input, keeps the first difference, and hands the model the kernel's result."""

    def __init__(self, kernel, model_box: list):
        self._kernel, self._box = kernel, model_box
        self.weeks, self.starts, self.diff = 0, 0, None

    def __getattr__(self, name):
        return getattr(self._kernel, name)

    def ore_trade(self, order, pool_ptr, pool_site, site_ask, offered, totals, captive, want, allowed, bid_price,
                  route, edge_ptr, edge_idx, edge_capacity, rtol):
        got = self._kernel.ore_trade(order, pool_ptr, pool_site, site_ask, offered, totals, captive, want, allowed,
                                     bid_price, route, edge_ptr, edge_idx, edge_capacity, rtol)
        if not self._box:  # the model's start (OreMarket.initial_feed), before the model can be handed over
            self.starts += 1
            return got
        ore = self._box[0].ore
        ref = ore._trade_python(order, site_ask, offered, totals, captive, want, allowed.view(bool), bid_price, route,
                                ore._route_tables(), market.clear_unchecked)
        for name, x, y in zip(("flow", "value", "site_sold", "traded", "traded_value", "best_bid"), got, ref,
                              strict=True):
            if self.diff is None and (x.shape != y.shape or x.tobytes() != y.tobytes()):
                self.diff = (int(self._box[0].steps), name)
        self.weeks += 1
        return got


@needs_kernel
@pytest.mark.parametrize("scenario,weeks", [("combined_2025", 120), ("northern_corridor", 200),
                                            ("election_reconnect", 120), ("myanmar_2025", 80)])
def test_ore_trade_kernel_equals_python_reference_every_week(monkeypatch, scenario, weeks):
    """Seizures (pools regrouped), road closures and new corridors (route tables rebuilt), import bans,
    sanctions and traceability (ore rules), halts and floods: every week's trade is the same to the bit."""
    from model.model import RareEarthModel

    box: list = []
    both = _BothOreTrades(market._auction, box)
    monkeypatch.setattr(market, "_auction", both)
    m = RareEarthModel(scenario, seed=2, weeks=weeks)
    box.append(m)
    m.run()
    assert both.weeks == weeks
    # the start's feed is the auction's own clearing, made again where a region starts exporting (the markets
    # are built twice, RareEarthModel._build_markets)
    assert both.starts == m.behaviour.start_orders * (2 if m.exporting_at_start else 1)
    assert both.diff is None, f"week {both.diff[0]}: {both.diff[1]} differs"


def _contract_arrays(m) -> list[np.ndarray]:
    """The books' arrays term contracts move (in place)."""
    bb, mb, rb, tb = m.buyer_book, m.maker_book, m.refiner_book, m.trader_book
    out = [bb.inventory, bb.contract_paid, rb.produced, rb.inventory, rb.contracted, tb.stock, tb.imported, tb.cost,
           tb.contracted]
    if mb.n:
        out += [mb.made, mb.stock, mb.contracted, mb.contract_revenue, mb.inventory, mb.contract_got, mb.contract_paid]
    return out


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "magnets_controls_2025", "magnets_2025", "combined_2025"])
def test_contract_kernel_equals_numpy_reference_every_week(monkeypatch, scenario):
    """Every week's term contracts of a run, delivered by the kernel and by its numpy reference from the same
    books: the same deliveries and the same books, bit for bit; each week also from books shaken to reach the
    edges (empty stocks and output, nothing imported, tiny and huge quantities)."""
    from model.model import RareEarthModel

    compiled = RareEarthModel._deliver_contracts_compiled
    rng = np.random.default_rng(7)
    calls = []

    def both(self, kernel, region, price, rows_b, rows_m, batch):
        arrays = _contract_arrays(self)
        start = [a.copy() for a in arrays]
        for shake in (True, False):
            if shake:
                for a in arrays:
                    u = rng.random(a.shape)
                    a[...] = np.where(u < 0.2, 0.0, np.where(u < 0.3, a * 1e-13, np.where(u < 0.4, a * 1e6, a)))
            given = [a.copy() for a in arrays]
            ref = self._deliver_contracts_numpy(region, price)
            after = [a.copy() for a in arrays]
            for a, x in zip(arrays, given, strict=True):
                a[...] = x
            got = compiled(self, kernel, region, price, rows_b, rows_m, batch)
            assert got.tobytes() == ref.tobytes(), f"week {self.steps} {region}: deliveries differ"
            for k, (a, x) in enumerate(zip(arrays, after, strict=True)):
                assert a.tobytes() == x.tobytes(), f"week {self.steps} {region}: array {k} differs"
            for a, x in zip(arrays, start, strict=True):
                a[...] = x
        calls.append(region)
        return compiled(self, kernel, region, price, rows_b, rows_m, batch)

    monkeypatch.setattr(RareEarthModel, "_deliver_contracts_compiled", both)
    RareEarthModel(scenario, seed=2, weeks=60).run()
    assert len(calls) >= 20


def _book_arrays(book) -> dict[str, np.ndarray]:
    """A book's writeable float arrays (its books of stock, sales, purchases, costs...), by attribute name."""
    return {k: v for k, v in vars(book).items()
            if isinstance(v, np.ndarray) and v.dtype == np.float64 and v.flags.writeable}


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "magnets_controls_2025", "combined_2025", "baseline"])
def test_settle_kernel_equals_numpy_reference_every_week(monkeypatch, scenario):
    """Every week's settling of the refiners', magnet makers', traders' and buyers' books (each book's
    ``settle``), by the kernel's ``settle_*`` and by the numpy lines they replace, from the same books and
    fills: the same books, bit for bit; each clearing also with fills, prices and books shaken to reach the
    edges (nothing filled, empty stocks, fills above the stock, tiny and huge quantities)."""
    import dataclasses
    import importlib

    from model.model import RareEarthModel

    rng = np.random.default_rng(11)
    calls = []
    modules = {}
    for path, cls in (("agents.refiner", "RefinerBook"), ("agents.magnet_maker", "MagnetMakerBook"),
                      ("agents.trader", "TraderBook"), ("agents.buyer", "BuyerBook")):
        mod = importlib.import_module(path)
        modules[getattr(mod, cls)] = mod

    def shaken(a: np.ndarray) -> np.ndarray:
        u = rng.random(a.shape)
        return np.where(u < 0.2, 0.0, np.where(u < 0.3, a * 1e-13, np.where(u < 0.4, a * 1e6 + 1.0, a)))

    def checked(cls, settle):
        mod = modules[cls]

        def both(self, region, clearing):
            arrays = _book_arrays(self)
            start = {k: a.copy() for k, a in arrays.items()}
            for shake in (True, False):
                res = clearing
                if shake:
                    for a in arrays.values():
                        a[...] = shaken(a)
                    res = dataclasses.replace(clearing, paid=shaken(clearing.paid),
                                              fills={k: shaken(f) for k, f in clearing.fills.items()})
                given = {k: a.copy() for k, a in arrays.items()}
                monkeypatch.setattr(mod, "settle_kernel", lambda: None)
                settle(self, region, res)  # the numpy reference
                monkeypatch.setattr(mod, "settle_kernel", model_exchange.settle_kernel)
                after = {k: a.copy() for k, a in arrays.items()}
                assert _book_arrays(self).keys() == arrays.keys()
                for k, a in arrays.items():
                    a[...] = given[k]
                settle(self, region, res)  # the kernel
                for k, a in arrays.items():
                    assert a.tobytes() == after[k].tobytes(), f"{cls.__name__} week {self.model.steps} {region}: {k}"
                for k, a in arrays.items():
                    a[...] = start[k]
            calls.append(cls)
            return settle(self, region, clearing)

        return both

    for cls in modules:
        monkeypatch.setattr(cls, "settle", checked(cls, cls.settle))
    RareEarthModel(scenario, seed=2, weeks=40).run()
    assert {c.__name__ for c in calls} >= ({"RefinerBook", "TraderBook", "BuyerBook"}
                                           | ({"MagnetMakerBook"} if "magnets" in scenario else set()))


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "magnets_controls_2025", "baseline"])
def test_thrift_kernel_equals_numpy_reference_every_week(monkeypatch, scenario):
    """Every week's thrifting of the buyers' and magnet makers' recipes (``model.substitution.thrift``), by the
    kernel's ``thrift`` and by its numpy reference ``thrift_numpy``, from the same recipes, prices and
    shortages: the same recipes and ceilings, bit for bit; each week also on inputs shaken to reach the edges
    (prices far above and below their memories, shortages everywhere or nowhere, recipes at their floor or
    ceiling, zeros, nan prices)."""
    from model import substitution
    from model.model import RareEarthModel

    rng = np.random.default_rng(7)
    kernel_thrift = substitution.thrift
    calls = []

    def shaken(a: np.ndarray) -> np.ndarray:
        u = rng.random(a.shape)
        return np.where(u < 0.1, 0.0, np.where(u < 0.2, a * 3.0, np.where(u < 0.3, a * 0.3,
                        np.where(u < 0.33, np.nan, np.where(u < 0.36, -0.0, a)))))

    def both(thrifted, base, floor, ceiling, recent, long, short, b):
        cases = [(thrifted, base, floor, ceiling, recent, long, short)]
        for _ in range(3):
            at_floor, at_ceiling = rng.random(base.shape) < 0.3, rng.random(base.shape) < 0.3
            cases.append((np.where(at_floor, floor, np.where(at_ceiling, ceiling, thrifted)), base, floor, shaken(ceiling),
                          shaken(recent), shaken(long), rng.random(short.shape) < rng.random()))
        for case in cases:
            got = kernel_thrift(*case, b)
            want = substitution.thrift_numpy(*case, b)
            for g, w in zip(got, want, strict=True):
                assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()
        calls.append(base.shape)
        return kernel_thrift(thrifted, base, floor, ceiling, recent, long, short, b)

    for path in ("agents.buyer", "agents.magnet_maker"):
        monkeypatch.setattr(f"{path}.thrift", both)
    m = RareEarthModel(scenario, seed=2, weeks=40)
    m.run()
    assert len(calls) == 40 * (2 if m.maker_book.n else 1)  # buyers, and magnet makers where the world has them


@needs_kernel
def test_thrift_kernel_refuses_arrays_of_other_shapes():
    from model.market import _auction

    a = np.ones((3, 4))
    short = np.zeros((3, 4), dtype=bool)
    with pytest.raises(ValueError):
        _auction.thrift(a, a, a, a, a, np.ones((3, 5)), short, 1.2, 0.01, 0.5)
    with pytest.raises(ValueError):
        _auction.thrift(a, a, a, a, a, a, np.zeros((2, 4), dtype=bool), 1.2, 0.01, 0.5)


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "myanmar_2025", "baseline"])
def test_entry_exit_kernel_equals_numpy_reference_every_week(monkeypatch, scenario):
    """Every week's small-site entry and exit (``MinerFleet.entry_exit_step``), by the kernel's ``entry_exit``
    and by its numpy reference ``_entry_exit_numpy``, from the same sites, netbacks, levies and draws: the same
    sites open and close (the same ``active`` and counts); each week also with netbacks, levies and draws
    shaken to reach the edges (unknown areas, margins of 0, every site opening or closing)."""
    from agents.miner import MinerFleet
    from model.model import RareEarthModel

    rng = np.random.default_rng(3)
    calls = []
    original = MinerFleet.entry_exit_step

    def shaken(a: np.ndarray) -> np.ndarray:
        v = rng.random(a.shape)
        return np.where(v < 0.1, np.nan, np.where(v < 0.2, 0.0, np.where(v < 0.3, a * 10.0, np.where(v < 0.4, -a, a))))

    def both(self, gen, entry_rate, exit_rate, levies):
        idx = self._entry_sites[0]
        start_active, start_ema = self.active.copy(), self.netback_ema
        for shake in (True, False):
            if shake:
                self.netback_ema = shaken(start_ema)
                lev, u, rates = shaken(levies), rng.random(idx.size), (rng.random(), rng.random())
            else:
                lev, u, rates = levies, np.random.default_rng(len(calls)).random(idx.size), (entry_rate, exit_rate)
            self.active[:] = start_active
            want = self._entry_exit_numpy(u, *rates, lev)
            want_active = self.active.copy()
            self.active[:] = start_active
            got = market._auction.entry_exit(self.netback_ema, idx, self._entry_sites[1], self._entry_sites[2], lev, u,
                                             self.active.view(np.uint8), *rates)
            assert got == want and self.active.tobytes() == want_active.tobytes()
            self.active[:] = start_active
            self.netback_ema = start_ema
        calls.append(idx.size)
        return original(self, gen, entry_rate, exit_rate, levies)

    monkeypatch.setattr(MinerFleet, "entry_exit_step", both)
    RareEarthModel(scenario, seed=2, weeks=40).run()
    assert len(calls) == 40 and calls[0] > 0


@needs_kernel
def test_entry_exit_kernel_refuses_bad_arrays():
    from model.market import _auction

    idx, node = np.array([0, 2], dtype=np.intp), np.array([0, 1], dtype=np.intp)
    ema, cost, lev, u = np.array([5.0, 1.0]), np.array([1.0, 1.0]), np.zeros(3), np.array([0.5, 0.5])
    active = np.zeros(3, dtype=np.uint8)
    assert _auction.entry_exit(ema, idx, cost, node, lev, u, active, 1.0, 1.0) == (1, 0)
    with pytest.raises(IndexError):
        _auction.entry_exit(ema, np.array([0, 3], dtype=np.intp), cost, node, lev, u, active, 1.0, 1.0)
    with pytest.raises(ValueError):
        _auction.entry_exit(ema, idx, cost, node, np.zeros(2), u, active, 1.0, 1.0)


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "combined_2025", "baseline"])
def test_signal_kernels_equal_numpy_references_every_week(monkeypatch, scenario):
    """Every week's price memories after each clearing (``MarketSignals.record_clearing``) and supply outlooks
    (``close_inflow_week``), by the kernel's ``record_clearing`` and ``inflow_outlook`` and by their numpy
    references, from the same signals: the same arrays, bit for bit; each week also on shaken prices, volumes
    and inflows (nothing traded, nan and infinite prices, zero and tiny memories)."""
    from model.model import RareEarthModel
    from model.signals import MarketSignals

    rng = np.random.default_rng(9)
    calls = []
    record, close = MarketSignals.record_clearing, MarketSignals.close_inflow_week
    fields = ("price", "volume", "traded", "memory", "recent", "long_memory")

    def shaken(a: np.ndarray) -> np.ndarray:
        u = rng.random(a.shape)
        return np.where(u < 0.1, np.nan, np.where(u < 0.15, np.inf, np.where(u < 0.25, 0.0, np.where(
            u < 0.3, -0.0, np.where(u < 0.4, a * 1e-12, a)))))

    def both_record(self, region, price, volume):
        start = {f: getattr(self, f)[region] for f in fields}
        for args in ((price, volume), (shaken(price), shaken(volume)), (price, np.zeros_like(volume))):
            self._record_clearing_numpy(region, *args)
            want = {f: getattr(self, f)[region] for f in fields}
            for f in fields:
                getattr(self, f)[region] = start[f]
            record(self, region, *args)  # the kernel
            for f in fields:
                got = getattr(self, f)[region]
                assert got.dtype == want[f].dtype and got.tobytes() == want[f].tobytes(), f
                getattr(self, f)[region] = start[f]
        calls.append("record")
        return record(self, region, price, volume)

    def both_close(self):
        b = self.behaviour
        for r in self.regions:
            x, s, lo = self._inflow_week[r], self._inflow_short[r], self._inflow_long[r]
            for args in ((x, s, lo), (shaken(x), shaken(s), shaken(lo))):
                want = self._inflow_outlook_numpy(*args, 1.0 / b.outlook_short_weeks, 1.0 / b.outlook_long_weeks)
                got = market._auction.inflow_outlook(*args, 1.0 / b.outlook_short_weeks, 1.0 / b.outlook_long_weeks)
                for g, w in zip(got, want, strict=True):
                    assert g.tobytes() == w.tobytes()
        calls.append("close")
        return close(self)

    monkeypatch.setattr(MarketSignals, "record_clearing", both_record)
    monkeypatch.setattr(MarketSignals, "close_inflow_week", both_close)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # the shaken inputs' inf - inf
        RareEarthModel(scenario, seed=2, weeks=30).run()
    assert calls.count("close") == 30 and calls.count("record") >= 30


@needs_kernel
def test_signal_kernels_refuse_bad_arrays():
    from model.market import _auction

    a = np.ones(3)
    with pytest.raises(ValueError):
        _auction.record_clearing(a, a, a, np.ones(4), a, a, 4.0, 4.0, 26.0)
    with pytest.raises(ValueError):
        _auction.inflow_outlook(a, np.ones(3, dtype=np.float32), a, 0.25, 0.05)


@needs_kernel
@pytest.mark.parametrize("scenario", ["magnets_baseline", "myanmar_2025", "announced_projects"])
def test_mine_kernel_equals_numpy_reference_every_week(monkeypatch, scenario):
    """Every week's mining (``MinerFleet.mine``), by the kernel's ``mine`` and by its numpy reference
    ``_mine_numpy``, from the same fleet: the same output, reserves and stocks, bit for bit; each week also with
    stocks, yards, capacities, quotas, halts and reserves shaken to reach the edges (full yards, nothing left,
    nan, -0.0)."""
    from agents.miner import MinerFleet
    from model.model import RareEarthModel

    rng = np.random.default_rng(13)
    calls = []
    original = MinerFleet.mine
    names = ("stock_max", "stock", "capacity", "_quota_mult", "remaining", "active", "halted", "residue_in")

    def shaken(a: np.ndarray) -> np.ndarray:
        if a.dtype == bool:
            return rng.random(a.shape) < 0.5
        u = rng.random(a.shape)
        return np.where(u < 0.05, np.nan, np.where(u < 0.15, 0.0, np.where(u < 0.2, -0.0, np.where(
            u < 0.3, a * 2.0 + 1.0, np.where(u < 0.35, np.inf, a)))))

    def both(self):
        start = {k: getattr(self, k).copy() for k in names}
        for shake in (False, True):
            if shake:
                for k in names:
                    setattr(self, k, shaken(start[k]))
            given = {k: getattr(self, k).copy() for k in names}
            stock = self._mine_numpy()
            want = (self.mined, self.remaining if self._finite_reserve else None, stock)
            for k in names:
                setattr(self, k, given[k].copy())
            cap = where(self.is_residue, self.residue_in, self.capacity) if self._any_residue else self.capacity
            got = market._auction.mine(self.stock_max, self.stock, cap, self.active, self.halted, self._quota_mult,
                                       self.remaining if self._finite_reserve else None)
            for g, w in zip(got, want, strict=True):
                assert (g is None) == (w is None)
                if g is not None:  # the same bits; of a nan made from the shaken nan and inf, only that it is one
                    nan = np.isnan(w)
                    assert np.array_equal(np.isnan(g), nan) and g[~nan].tobytes() == w[~nan].tobytes()
                    if not shake:
                        assert g.tobytes() == w.tobytes()
            for k in names:
                setattr(self, k, start[k].copy())
        calls.append(self.n)
        return original(self)

    from model.arrays import where

    monkeypatch.setattr(MinerFleet, "mine", both)
    with np.errstate(invalid="ignore"):
        RareEarthModel(scenario, seed=2, weeks=30).run()
    assert len(calls) == 30
