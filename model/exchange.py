"""The product exchanges: one call auction per product and region each week, on schedules.

Participants (refiners, buyers, traders, state agencies) are objects with two methods:

- ``orders(region, grid) -> list[OrderBlock]``: their schedules in that region's markets this week, one
  block per kind of order, each an array ``(products, participants, grid points)`` of quantities at the
  prices of ``grid`` (``(products, grid points)``), non-decreasing in price for a sell block and
  non-increasing for a buy block;
- ``settle(region, clearing)``: take their fills (``clearing.fills[block.name]``, ``(products,
  participants)``) at ``clearing.price``.

:meth:`Exchange.clear` concatenates the blocks of each side and clears every product of the region at once
with :func:`model.market.clear_curves`. Regions are cleared one after another in the world's import order
(an exporting region first), so that what importers bought abroad this week is theirs to sell at home the
same week. The exchange is generic over products, stages and regions: it knows only names and arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from model.market import clear_curves, price_grid
from model.params import Behaviour


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
        return np.bincount(index, weights=values.ravel(), minlength=self.groups * n).reshape(self.groups, n)


class Side(Enum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class OrderBlock:
    """Schedules of one kind of participant in one region: ``qty[k, i, g]`` is what participant ``i``
    sells (or buys) of product ``k`` at price ``grid[k, g]``."""

    name: str
    side: Side
    qty: np.ndarray


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
        self.landed = {r: (g + cost[:, None]) * (1.0 + b.import_margin) for r, g in self.grid.items()}
        self.landed_pow = {r: x ** -b.seller_stock_elasticity for r, x in self.landed.items()}

    def clear(self, region: str, blocks: list[OrderBlock]) -> RegionClearing:
        grid = self.grid[region]
        n_p, n_g = grid.shape
        sells = [b for b in blocks if b.side is Side.SELL and b.qty.shape[1]]
        buys = [b for b in blocks if b.side is Side.BUY and b.qty.shape[1]]
        empty = np.zeros((n_p, 0, n_g))
        supply = np.concatenate([b.qty for b in sells], axis=1) if sells else empty
        demand = np.concatenate([b.qty for b in buys], axis=1) if buys else empty
        res = clear_curves(grid, supply, demand, self.log_grid[region])
        paid = np.where(np.isfinite(res.price), res.price, 0.0)
        out = RegionClearing(region, res.price, paid, res.volume, res.supplied, res.demanded, res.bound)
        for side_blocks, fills in ((sells, res.sell_fill), (buys, res.buy_fill)):
            at = 0
            for b in side_blocks:
                n = b.qty.shape[1]
                out.fills[b.name] = fills[:, at:at + n]
                at += n
        for b in blocks:  # blocks with no participants still get an (empty) fill
            if b.name not in out.fills:
                out.fills[b.name] = np.zeros((n_p, 0))
        return out
