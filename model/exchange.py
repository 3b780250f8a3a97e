"""The product exchanges: one call auction per product and region each week, on schedules.

Participants (refiners, buyers, traders, state agencies) are objects with two methods:

- ``orders(region, grid) -> list[OrderBlock]``: their schedules in that region's markets this week, one
  block per kind of order, each an array ``(products, participants, grid points)`` of quantities at the
  prices of ``grid`` (``(products, grid points)``), non-decreasing in price for a sell block and
  non-increasing for a buy block, or a schedule form that says how to work the array out (:class:`Offer`,
  :class:`Bid`, :class:`Restock`, :class:`Store`: the compiled kernel works out only the grid points the clearing reads,
  about 40 % of them, without the array calls of building whole schedules);
- ``settle(region, clearing)``: take their fills (``clearing.fills[block.name]``, ``(products,
  participants)``) at ``clearing.price``.

:meth:`Exchange.clear` clears every product of the region at once from the blocks of each side
(:func:`model.market.clear_blocks`). Regions are cleared one after another in the world's import order
(an exporting region first), so that what importers bought abroad this week is theirs to sell at home the
same week. The exchange is generic over products, stages and regions: it knows only names and arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from model import market
from model.arrays import bincount, where
from model.market import clear_blocks, monotone_rows, price_grid
from model.params import Behaviour


def landed(price: np.ndarray, export_cost: np.ndarray, import_margin: float) -> np.ndarray:
    """What a kg bought at ``price`` costs landed in the other region, where importers sell it: the price plus
    the export cost, plus the importers' margin. The one formula for an importing region's start, its cost of
    supply, the exchange's landed grid and the traders' landed cost (``price`` may be a grid: products x
    points, with ``export_cost`` as a column)."""
    return (price + export_cost) * (1.0 + import_margin)


def export_parity(price: np.ndarray, export_cost: np.ndarray, import_margin: float) -> np.ndarray:
    """What a kg is worth at home to a trader who sells it at ``price`` in the other region: the price less
    the trader's margin and the export cost, the inverse of :func:`landed` (landed(export_parity(p)) == p)."""
    return price / (1.0 + import_margin) - export_cost


def row_selector(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` (ascending indices) as a slice when they are consecutive, so that selecting them from a
    participant's arrays gives a view instead of a copy; else ``rows`` itself. Either selects the same rows."""
    if rows.size and rows[-1] - rows[0] + 1 == rows.size:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def take_rows(values: np.ndarray, at: slice | np.ndarray) -> np.ndarray:
    """``values[at]`` for ``at`` from :func:`row_selector`: a view for a slice; for indices, ``ndarray.take``,
    the same copy as indexing with them (the same values in the same order) in about a third of the time."""
    return values[at] if isinstance(at, slice) else values.take(at, axis=0)


_ROW_RANGES: dict[tuple[int, int], np.ndarray] = {}


def row_index(at: slice | np.ndarray) -> np.ndarray:
    """``at`` from :func:`row_selector` as row indices (intp, contiguous, read-only for a slice: kept per
    range), what the compiled settling reads (:func:`settle_kernel`)."""
    if isinstance(at, slice):
        key = (at.start, at.stop)
        rows = _ROW_RANGES.get(key)
        if rows is None:
            rows = _ROW_RANGES[key] = np.arange(at.start, at.stop, dtype=np.intp)
            rows.flags.writeable = False
        return rows
    return at if at.dtype == np.intp and at.flags.c_contiguous else np.ascontiguousarray(at, dtype=np.intp)


def settle_kernel():
    """The compiled kernel whose ``settle_*`` functions move a participant's books by its fills in one call
    (the same operations in the same order as its numpy ``settle``: the same bits), or None: without the
    kernel (or with the numpy references forced, ``model.market._auction = None``) the books settle in numpy."""
    return market._auction


class GroupSum:
    """Sums of the rows of per-participant arrays by group, for a fixed group of each row (``code``, ``groups``
    groups): ``GroupSum(code, groups)(values)`` is ``out = zeros((groups, n)); np.add.at(out, code, values)``,
    bit for bit, in a third of the time.

    Both add each group's rows one by one in row order, starting from 0.0: ``np.bincount`` with weights
    accumulates in the order of its input, and the flat index ``code x n + column`` lists the rows in order
    within each (group, column) bin. The index is worked out once per number of columns."""

    def __init__(self, code: np.ndarray, groups: int):
        self.code = np.asarray(code, dtype=np.intp)
        self.groups = int(groups)
        self._index: dict[int, np.ndarray] = {}

    def __call__(self, values: np.ndarray) -> np.ndarray:
        n = values.shape[1]
        index = self._index.get(n)
        if index is None:
            index = self._index[n] = (self.code[:, None] * n + np.arange(n)).ravel()
        return bincount(index, weights=values.ravel(), minlength=self.groups * n).reshape(self.groups, n)


class Side(Enum):
    BUY = "buy"
    SELL = "sell"


# The forms below are plain (not frozen) slotted dataclasses: a frozen one's __init__ sets each field through
# object.__setattr__, about 1 us a form, and some twenty are made a week. Nothing writes to them once made.
@dataclass(slots=True)
class Offer:
    """Schedules of sellers who offer the stock above what they keep: ``qty[k, i, g]`` is 0 where
    ``grid[k, g] < floor[k, i]``, else ``min(max(stock[k, i] - scale[k, i] x pw[k, g], 0), stock[k, i])``
    (``scale x pw``: the stock kept at the price). Arrays are ``(products, participants)`` but ``pw`` and
    ``grid`` (``(products, grid points)``), and are not changed afterwards (the exchange may work the
    quantities out after the participant's books moved on)."""

    grid: np.ndarray
    scale: np.ndarray
    pw: np.ndarray
    stock: np.ndarray
    floor: np.ndarray

    @property
    def n(self) -> int:
        return self.stock.shape[1]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        return (1, self.scale, self.pw, self.stock, self.floor)

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points); the kernel's order of operations."""
        qty = self.scale[:, :, None] * self.pw[:, None, :]
        stock = self.stock[:, :, None]
        np.subtract(stock, qty, out=qty)
        np.maximum(qty, 0.0, out=qty)
        np.minimum(qty, stock, out=qty)
        return where(self.grid[:, None, :] < self.floor[:, :, None], 0.0, qty)


@dataclass(slots=True)
class Bid:
    """Schedules of buyers who cover their need: ``qty[k, i, g]`` is 0 where ``active[k, i]`` is False
    (``None``: all are active) or ``grid[k, g] > wtp[k, i]`` (above the most it pays), else
    ``max(c x need[k, i] + need[k, i] - inv[k, i], 0)`` with the cover ``c = min(max(target[i] x cov[k, g],
    lo), hi)`` and the cover factor ``cov[k, g] = scale[k] x pw[k, g]`` (``pw``: the exchange's price powers,
    which do not change, so the kernel need not check them again). Arrays are ``(products, participants)``
    but ``target`` (participants), ``scale`` (products), ``pw`` and ``grid`` (``(products, grid points)``),
    and are not changed afterwards."""

    grid: np.ndarray
    target: np.ndarray
    scale: np.ndarray
    pw: np.ndarray
    need: np.ndarray
    inv: np.ndarray
    wtp: np.ndarray
    active: np.ndarray | None
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return self.target.shape[0]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        return (2, self.target, self.scale, self.pw, self.need, self.inv, self.wtp, self.active, self.lo, self.hi)

    @property
    def cov(self) -> np.ndarray:
        """The cover factor at each grid price (products x grid points): ``scale x pw``."""
        return self.scale[:, None] * self.pw

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points); the kernel's order of operations.

        A buyer uses one or a few of the world's products (a motor maker one magnet of ten); its rows of the
        others are 0 at every price (their most is 0, below the grid). Where most rows are such, only the
        (product, participant) pairs with a grid price at or below their most are worked out, and set into an
        array of zeros: each value the same arithmetic on the same numbers as over the whole array (bit for
        bit). Where most pairs bid (the oxide world), gathering them costs more than it saves."""
        grid, wtp, cov = self.grid, self.wtp, self.cov
        may = ~(grid[:, :1] > wtp)  # the grid rises: its first price is its lowest
        if self.active is not None:
            may &= self.active
        kk, ii = np.nonzero(may)
        n_p, n_g = grid.shape
        if 2 * kk.size > may.size:
            cover = self.target[None, :, None] * cov[:, None, :]
            cover = np.minimum(np.maximum(cover, self.lo), self.hi)
            n_t = self.need[:, :, None]
            qty = np.maximum(cover * n_t + n_t - self.inv[:, :, None], 0.0)
            off = grid[:, None, :] > wtp[:, :, None]
            if self.active is not None:
                off = off | ~self.active[:, :, None]
            return where(off, 0.0, qty)
        qty = self.target.take(ii)[:, None] * cov.take(kk, axis=0)
        np.maximum(qty, self.lo, out=qty)
        np.minimum(qty, self.hi, out=qty)
        n_k = self.need[kk, ii][:, None]
        qty *= n_k
        qty += n_k
        qty -= self.inv[kk, ii][:, None]
        np.maximum(qty, 0.0, out=qty)
        out = np.zeros((n_p, self.n, n_g))
        out[kk, ii] = where(grid.take(kk, axis=0) > wtp[kk, ii][:, None], 0.0, qty)
        return out


@dataclass(slots=True)
class Restock:
    """Bids of traders who buy here to sell elsewhere (importers, exporters; agents/trader.py): ``qty[k, i, g]``
    is ``max(sales + (working x a - stock) / weeks, 0)`` with the appetite ``a = min(landed_pow[k, g] x
    expect_pow[k, i], most)``; with ``now`` (the last prices where they sell; ``landed`` and ``use`` with it),
    the sum also has ``use x response x min(max(now / landed[k, g] - 1, 0), 1)``; with ``allow``, the bid is at
    most that. Arrays are ``(products, participants)`` but ``landed_pow`` and ``landed`` (``(products, grid
    points)``), and are not changed afterwards."""

    landed_pow: np.ndarray
    expect_pow: np.ndarray
    sales: np.ndarray
    working: np.ndarray
    stock: np.ndarray
    now: np.ndarray | None
    landed: np.ndarray | None
    use: np.ndarray | None
    allow: np.ndarray | None
    most: float
    weeks: float
    response: float

    @property
    def n(self) -> int:
        return self.sales.shape[1]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        return (3, self.landed_pow, self.expect_pow, self.sales, self.working, self.stock, self.now, self.landed,
                self.use, self.allow, self.most, self.weeks, self.response)

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points); the kernel's order of operations."""
        appetite = np.minimum(self.landed_pow[:, None, :] * self.expect_pow[:, :, None], self.most)
        want = self.sales[:, :, None] + (self.working[:, :, None] * appetite - self.stock[:, :, None]) / self.weeks
        if self.now is not None:  # the spread seen now draws purchases now
            margin = np.maximum(self.now[:, :, None] / self.landed[:, None, :] - 1.0, 0.0)
            want = want + self.use[:, :, None] * self.response * np.minimum(margin, 1.0)
        qty = np.maximum(want, 0.0)
        return qty if self.allow is None else np.minimum(qty, self.allow[:, :, None])


@dataclass(slots=True)
class ExportBids:
    """Exporters' bids at home (agents/trader.py), a :class:`Store`'s ``export_bids`` worked out where the
    kernel reads them: ``restock``'s quantities where the landed cost covers, ``where(landed[k, g] <=
    expect[k, j], restock qty[k, j, g], 0)``. ``landed`` is ``(products, grid points)``, ``expect``
    ``(products, exporters)``; not changed afterwards."""

    restock: Restock
    landed: np.ndarray
    expect: np.ndarray

    def args(self) -> tuple:
        """What the compiled kernel reads in a store's arguments (``model._auction.clear_blocks``)."""
        return (self.landed, self.expect, self.restock.args())

    def dense(self) -> np.ndarray:
        """The bids as an array (products, exporters, grid points); the kernel's order of operations."""
        return where(self.landed[:, None, :] <= self.expect[:, :, None], self.restock.dense(), 0.0)


@dataclass(slots=True)
class Store:
    """Schedules of stockholders (agents/trader.py), their offers or, with ``buy``, their bids: with the
    expected excess return of holding stock bought at each grid price, ``ret[k, g] = expected[k] / grid[k, g]
    - 1 - carry``, the speculative stock ``spec = room[k, i] x min(max(ret[k, g] / band, 0), 1)`` and the free
    stock ``free =
    stock[k, i] - kept[k, i] x pw[k, g]`` (``stock`` when ``kept`` is None), an offer is ``min(max(free -
    spec, 0), stock)``, 0 where ``grid[k, g] < floor[k, i]`` (when ``floor`` is given), and a bid is
    ``max(spec - max(free, 0), 0)``. Participants with ``export[i] >= 0`` (``export``: None if none) offer
    nothing and bid ``export_bids[:, export[i], :]``. Arrays are ``(products, participants)`` but ``expected``
    (products), ``pw`` and ``grid`` (``(products, grid points)``), ``export`` (participants) and ``export_bids``
    (products, exporters, grid points; or :class:`ExportBids`, worked out where read), and are not changed
    afterwards."""

    grid: np.ndarray
    expected: np.ndarray
    carry: float
    band: float
    room: np.ndarray
    stock: np.ndarray
    kept: np.ndarray | None
    pw: np.ndarray
    floor: np.ndarray | None
    export: np.ndarray | None
    export_bids: np.ndarray | ExportBids | None
    buy: bool

    @property
    def n(self) -> int:
        return self.room.shape[1]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        bids = self.export_bids
        return (4, self.expected, self.room, self.stock, self.kept, self.pw, self.floor, self.export,
                bids.args() if isinstance(bids, ExportBids) else bids, self.band, 1.0 if self.buy else 0.0,
                self.carry)

    @property
    def ret(self) -> np.ndarray:
        """The expected excess return of stock bought at each grid price (products x grid points)."""
        return self.expected[:, None] / self.grid - 1.0 - self.carry

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points); the kernel's order of operations."""
        spec = self.room[:, :, None] * np.minimum(np.maximum(self.ret[:, None, :] / self.band, 0.0), 1.0)
        stock = self.stock[:, :, None]
        free = stock if self.kept is None else stock - self.kept[:, :, None] * self.pw[:, None, :]
        if self.buy:
            qty = spec - np.maximum(free, 0.0)
            np.maximum(qty, 0.0, out=qty)
        else:
            qty = free - spec
            np.maximum(qty, 0.0, out=qty)
            np.minimum(qty, stock, out=qty)
            if self.floor is not None:
                qty = where(self.grid[:, None, :] < self.floor[:, :, None], 0.0, qty)
        if self.export is not None:
            ex = self.export >= 0
            if self.buy:
                bids = self.export_bids
                qty[:, ex, :] = (bids.dense() if isinstance(bids, ExportBids) else bids).take(self.export[ex], axis=1)
            else:
                qty[:, ex, :] = 0.0
        return qty


@dataclass(slots=True)
class Single:
    """Schedules of participants who each trade one product (magnet makers offer their own magnet):
    ``qty[i, g]`` (participants, grid points) of product ``product[i]`` (int64) at ``grid[product[i], g]``, 0
    of the others. Arrays are not changed afterwards."""

    qty: np.ndarray
    product: np.ndarray
    products: int

    @property
    def n(self) -> int:
        return self.qty.shape[0]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        return (6, self.qty, self.product)

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points)."""
        out = np.zeros((self.products, self.n, self.qty.shape[1]))
        out[self.product, np.arange(self.n), :] = self.qty
        return out


RAMP = 0.05  # stock agencies' orders phase in over 5 % of the price around a trigger (no cliff between grid points)


def _ramp(gap: np.ndarray, level: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """``clip(gap / (RAMP x level) + shift, 0, 1)``: how far an order has phased in. A trigger level near 0 (a
    ratio of 0 or a tiny reference) saturates the ramp; :meth:`Ramps.dense` works its ramps out under
    ``np.errstate(over="ignore", divide="ignore")``, so that it does so without warning about the overflow."""
    return np.minimum(np.maximum(gap / (RAMP * level) + shift, 0.0), 1.0)


@dataclass(slots=True)
class Ramps:
    """Schedules of stock agencies (agents/state.py), phased in over ramps of 5 % of the price (``ramp(gap,
    level, shift) = min(max(gap / (RAMP x level) + shift, 0), 1)``). Arrays are ``(products, participants)``
    but ``grid`` (``(products, grid points)``); ``None`` leaves a part out. With ``buy``: ``qty x ramp(level -
    p, level, 1) x (p <= level)`` (0 without ``qty``), at most ``cap / (p x kg)`` (with ``cap``), 0 where
    ``mask`` is True. Else the largest of the terms ``qty x (ramp(p - level, level) where mask, else 0)``
    (``mask`` None: everywhere), ``qty2 x ramp(p - level2, level2)``, ``qty3 x ramp(p - level3, level3)``,
    of those given (0 if none). ``level`` is always given; arrays are not changed afterwards."""

    grid: np.ndarray
    qty: np.ndarray | None
    level: np.ndarray
    mask: np.ndarray | None
    cap: np.ndarray | None
    qty2: np.ndarray | None
    level2: np.ndarray | None
    qty3: np.ndarray | None
    level3: np.ndarray | None
    buy: bool
    kg: float = 1000.0

    @property
    def n(self) -> int:
        return self.level.shape[1]

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``)."""
        return (5, self.qty, self.level, self.mask, self.cap, self.qty2, self.level2, self.qty3, self.level3,
                1.0 if self.buy else 0.0, self.kg, RAMP)

    def dense(self) -> np.ndarray:
        """The schedules as an array (products, participants, grid points), in the order of operations the
        agencies' schedules were worked out in (the kernel's)."""
        with np.errstate(over="ignore", divide="ignore"):  # ramps at a level near 0 saturate (see _ramp)
            return self._dense()

    def _dense(self) -> np.ndarray:
        grid = self.grid[:, None, :]
        n_p, n_g = self.grid.shape
        if self.buy:
            level = self.level[:, :, None]
            if self.qty is None:
                qty = np.zeros((n_p, self.n, n_g))
            else:
                qty = self.qty[:, :, None] * _ramp(level - grid, level, 1.0) * (grid <= level)
            if self.cap is not None:
                qty = np.minimum(qty, self.cap[:, :, None] / (self.grid * self.kg)[:, None, :])
            return qty if self.mask is None else where(self.mask[:, :, None], 0.0, qty)
        qty = None
        for a, level, mask in ((self.qty, self.level, self.mask), (self.qty2, self.level2, None),
                               (self.qty3, self.level3, None)):
            if a is None:
                continue
            ramp = _ramp(grid - level[:, :, None], level[:, :, None])
            term = a[:, :, None] * (ramp if mask is None else where(mask[:, :, None], ramp, 0.0))
            qty = term if qty is None else np.maximum(qty, term)
        return np.zeros((n_p, self.n, n_g)) if qty is None else qty


class OrderBlock:
    """Schedules of one kind of participant in one region: ``qty[k, i, g]`` is what participant ``i``
    sells (or buys) of product ``k`` at price ``grid[k, g]``. Given as the array ``qty`` or as a schedule
    form (:class:`Offer`, :class:`Bid`, :class:`Restock`, :class:`Store`), whose ``qty`` is worked out when first read: the compiled
    exchange works a form's quantities out itself, at the few grid points its clearing reads."""

    __slots__ = ("name", "side", "form", "_qty", "n")

    def __init__(self, name: str, side: Side, qty: np.ndarray | None = None,
                 form: Offer | Bid | Restock | Store | Ramps | Single | None = None):
        if (qty is None) == (form is None):
            raise ValueError("an order block is given by its quantities or by a schedule form, one of the two")
        self.name, self.side, self.form, self._qty = name, side, form, qty
        self.n = qty.shape[1] if form is None else form.n  # its participants (read several times a clearing)

    @property
    def qty(self) -> np.ndarray:
        if self._qty is None:
            self._qty = self.form.dense()
        return self._qty

    def args(self) -> tuple:
        """What the compiled kernel reads (``model._auction.clear_blocks``): the form's, or the array's."""
        return (0, self._qty) if self.form is None else self.form.args()


@dataclass(slots=True)
class RegionClearing:
    """This week's outcome in one region (arrays in product order)."""

    region: str
    price: np.ndarray  # nan where nothing traded
    paid: np.ndarray  # the price where something traded, 0 elsewhere (what fills are paid at)
    volume: np.ndarray
    supplied: np.ndarray
    demanded: np.ndarray
    bound: np.ndarray
    fills: dict[str, np.ndarray] = field(default_factory=dict)  # block name -> (products, participants)


class Exchange:
    """Each region's price grids and the weekly clearing of its products (see module docstring)."""

    def __init__(self, regions: tuple[str, ...], centre: dict[str, np.ndarray], behaviour: Behaviour,
                 export_cost: np.ndarray | None = None):
        b = behaviour
        self.regions = regions
        self.grid = {r: price_grid(centre[r], b.price_grid_low, b.price_grid_high, b.price_grid_points)
                     for r in regions}
        for g in self.grid.values():
            g.flags.writeable = False
        self.log_grid = {r: np.log(g) for r, g in self.grid.items()}
        self.grid_low = {r: g.min(axis=1) for r, g in self.grid.items()}  # each product's lowest grid price
        # the price part of participants' schedules, computed once: (p / ref)^-e = p^-e x ref^e
        cost = np.zeros(len(next(iter(centre.values())))) if export_cost is None else export_cost
        self.seller_pow = {r: g ** -b.seller_stock_elasticity for r, g in self.grid.items()}
        self.buyer_pow = {r: g ** -b.buyer_stock_elasticity for r, g in self.grid.items()}
        # what a kg bought in r at each grid price costs landed abroad (+ export cost, + the traders' margin)
        self.landed = {r: landed(g, cost[:, None], b.import_margin) for r, g in self.grid.items()}
        self.landed_pow = {r: x ** -b.seller_stock_elasticity for r, x in self.landed.items()}
        # where each market crossed its grid last week: the kernel looks there first (model.market.clear_blocks)
        self._hint = {r: np.full(g.shape[0], -1, dtype=np.int64) for r, g in self.grid.items()}
        # the arrays above never change: each is checked monotone once, the way the schedules read it (the grid
        # rising, price powers falling, landed costs rising), so the kernel need not read them every clearing
        self._checked = {}
        for r in regions:
            for a in (self.seller_pow[r], self.buyer_pow[r], self.landed[r], self.landed_pow[r]):
                a.flags.writeable = False
            ways = ((self.grid[r], 2), (self.seller_pow[r], -1), (self.buyer_pow[r], -1), (self.landed_pow[r], -1),
                    (self.landed[r], 1))
            self._checked[r] = tuple((a, way) for a, way in ways if monotone_rows(a, way))

    def clear(self, region: str, blocks: list[OrderBlock]) -> RegionClearing:
        grid = self.grid[region]
        n_p = grid.shape[0]
        sells = [b for b in blocks if b.side is Side.SELL and b.n]
        buys = [b for b in blocks if b.side is Side.BUY and b.n]
        res = clear_blocks(grid, sells, buys, self.log_grid[region], self._hint[region], self._checked[region])
        paid = where(np.isfinite(res.price), res.price, 0.0)
        out = RegionClearing(region, res.price, paid, res.volume, res.supplied, res.demanded, res.bound)
        for side_blocks, fills in ((sells, res.sell_fill), (buys, res.buy_fill)):
            at = 0
            for b in side_blocks:
                n = b.n
                out.fills[b.name] = fills[:, at:at + n]
                at += n
        for b in blocks:  # blocks with no participants still get an (empty) fill
            if b.name not in out.fills:
                out.fills[b.name] = np.zeros((n_p, 0))
        return out
