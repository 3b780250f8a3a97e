"""Public market signals: what every agent can read about the markets, published once a week.

One :class:`MarketSignals` per model holds, per region and product (arrays in the world's product order):

- ``price``: the last clearing price (carried over a week in which nothing traded);
- ``traded``: whether the market traded last week, and ``volume`` (t/week);
- ``memory``: the expected price, an exponential average of clearing prices over
  ``behaviour.price_memory_weeks`` (refiners value ore by it);
- ``recent``: what buyers expect to pay, an average over ``behaviour.buyer_price_memory_weeks``;
- ``long_memory``: what buyers are used to paying, over ``behaviour.long_memory_weeks`` (thrifting; sellers
  split their joint cost by it);
- ``normal``: the **cost of supply**, the output-weighted reservation price of the region's producers (their
  full cost allocated to products by value, see :mod:`agents.refiner`; each weighted by its smoothed output,
  ``sales_ema``, which counts output sold, stocked or shipped alike); in an importing region, weighted
  with what importing costs (the exporting region's cost plus the export cost and a margin) by the share
  of its use it imports (``RareEarthModel._cost_of_supply``). State stock agencies buy below it and release above
  it, and China's quotas lean against deviations from it (or, for the groups in
  ``behaviour.china_quota_at_2024_markup``, from the price's markup over it at the start, ``start_markup``).
  It is a cost, not a price memory, so it does not
  ratchet (traders, who expect prices to revert to ``long_memory``, are the slower anchor);
- ``outlook(region)``: the supply outlook, oxide contained in the ore mined for the region (each mine's
  output, attributed to the regions its ore has recently gone to, so that ore waiting at a closed border
  still counts; recycled scrap included) and in its imports, over the last ``outlook_short_weeks`` against
  the last ``outlook_long_weeks``; 1 = normal, below 1 = less is coming (a halt of mining, a ban on exports).

Memories use the weight ``1/span`` per week. Only the model writes signals (stage 4: ore mined for each
region; stage 5: magnets made and oxide recycled; stage 6: prices, the cost of supply and the close of the
outlook's week); agents read them.
"""

from __future__ import annotations

import numpy as np

from model import market
from model.arrays import count_nonzero, where
from model.params import Behaviour


class MarketSignals:
    """Price memories, the cost of supply and the supply outlook of every region (see module docstring)."""

    def __init__(self, regions: tuple[str, ...], initial_prices: dict[str, np.ndarray], behaviour: Behaviour):
        self.regions = regions
        self.behaviour = behaviour
        n = len(next(iter(initial_prices.values())))
        self.price = {r: initial_prices[r].copy() for r in regions}
        self.memory = {r: initial_prices[r].copy() for r in regions}
        self.recent = {r: initial_prices[r].copy() for r in regions}
        self.long_memory = {r: initial_prices[r].copy() for r in regions}
        self.normal = {r: initial_prices[r].copy() for r in regions}
        self.start_markup = {r: np.ones(n) for r in regions}  # price / cost of supply at the start (the model fixes it)
        self.volume = {r: np.zeros(n) for r in regions}
        self.traded = {r: np.zeros(n, dtype=bool) for r in regions}
        self._inflow_week = {r: np.zeros(n) for r in regions}
        self._inflow_short = {r: np.zeros(n) for r in regions}
        self._inflow_long = {r: np.zeros(n) for r in regions}
        self._primed = {r: False for r in regions}
        self._outlook = {r: np.ones(n) for r in regions}

    # -- written by the model ----------------------------------------------------------------------------
    def add_inflow(self, region: str, oxide_t: np.ndarray) -> None:
        """Oxide contained in supply on its way to ``region`` this week (t per product)."""
        self._inflow_week[region] = self._inflow_week[region] + oxide_t

    def close_inflow_week(self) -> None:
        """Fold this week's arrivals into the outlook (stage 4, after the ore markets)."""
        b = self.behaviour
        a_s, a_l = 1.0 / b.outlook_short_weeks, 1.0 / b.outlook_long_weeks
        for r in self.regions:
            x = self._inflow_week[r]
            if not self._primed[r]:
                if not count_nonzero(x):
                    continue
                self._inflow_short[r], self._inflow_long[r] = x.copy(), x.copy()
                self._primed[r] = True
            kernel = market._auction
            self._inflow_short[r], self._inflow_long[r], self._outlook[r] = (
                self._inflow_outlook_numpy(x, self._inflow_short[r], self._inflow_long[r], a_s, a_l) if kernel is None
                else kernel.inflow_outlook(x, self._inflow_short[r], self._inflow_long[r], a_s, a_l))
            self._inflow_week[r] = np.zeros(x.shape)

    @staticmethod
    def _inflow_outlook_numpy(x: np.ndarray, short: np.ndarray, long: np.ndarray, a_s: float,
                              a_l: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A region's short and long inflow memories and its outlook after the week's arrivals ``x``: the
        compiled kernel's reference (``model._auction.inflow_outlook``) and the path without it."""
        short = short + a_s * (x - short)
        long = long + a_l * (x - long)
        ok = long > 1e-9
        return short, long, np.minimum(where(ok, short / where(ok, long, 1.0), 1.0), 1.5)

    def record_clearing(self, region: str, price: np.ndarray, volume: np.ndarray) -> None:
        """A region's clearing prices of this week (nan where nothing traded): prices and memories move."""
        b = self.behaviour
        kernel = market._auction
        if kernel is not None:  # _record_clearing_numpy in one pass
            (self.price[region], self.volume[region], self.traded[region], self.memory[region], self.recent[region],
             self.long_memory[region]) = kernel.record_clearing(
                price, volume, self.price[region], self.memory[region], self.recent[region], self.long_memory[region],
                b.price_memory_weeks, b.buyer_price_memory_weeks, b.long_memory_weeks)
            return
        self._record_clearing_numpy(region, price, volume)

    def _record_clearing_numpy(self, region: str, price: np.ndarray, volume: np.ndarray) -> None:
        """:meth:`record_clearing` in numpy: the compiled kernel's reference (``model._auction.record_clearing``)
        and the path without it."""
        b = self.behaviour
        ok = np.isfinite(price) & (volume > 0)
        every = bool(ok.all())  # the usual week: every product traded, nothing is carried over
        p = price.copy() if every else where(ok, price, self.price[region])
        self.price[region] = p
        self.volume[region] = volume.copy() if every else where(ok, volume, 0.0)
        self.traded[region] = ok
        for mem, span in ((self.memory, b.price_memory_weeks), (self.recent, b.buyer_price_memory_weeks),
                          (self.long_memory, b.long_memory_weeks)):
            old = mem[region]
            new = old + (p - old) / span
            mem[region] = new if every else where(ok, new, old)

    def set_normal(self, region: str, cost: np.ndarray) -> None:
        self.normal[region] = cost

    def fix_start_markup(self) -> None:
        """Remember each region's price over its cost of supply at the start (``start_markup``), the ratio
        at which the starting market is at rest, for rules that act on departures from it."""
        self.start_markup = {r: np.where(self.normal[r] > 0, self.price[r] / np.where(self.normal[r] > 0,
                                                                                        self.normal[r], 1.0), 1.0)
                             for r in self.price}

    # -- read by agents ---------------------------------------------------------------------------------
    def outlook(self, region: str) -> np.ndarray:
        """Supply outlook per product (1 = normal; at most 1.5)."""
        return self._outlook[region]
