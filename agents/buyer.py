"""Buyers: magnet makers and OEMs by region and segment.

Each buyer turns its magnet demand (t/yr) into weekly element needs with its current content per kg
of magnet, and bids in its region's oxide market (China-domestic for Chinese buyers, ex-China otherwise).

Rules:
- **Quantity.** It bids for this week's need plus a quarter of the gap to its target cover
  (``target_cover_weeks`` of need); above target it bids less.
- **Forward look.** It reads its market's supply outlook (``RareEarthModel.supply_outlook``: ore
  arriving at the region's plants and quantity offered, each this fortnight over its half-year average)
  and counts ``buyer_forward_weeks`` of need x (outlook - 1) as already in (or out of) its stock, so a
  supply cut raises its bids before its shelves empty.
- **Price.** It bids what its market has paid over two years (its long memory), raised by
  ``buyer_urgency`` x the relative cover shortfall (lowered when overstocked, by at most a quarter of
  the urgency), never above its willingness to pay: the price at which the element would cost half
  the value of the magnet it goes into. Dy and Tb are a small share of a motor's cost, so that cap is
  high: short-run demand is inelastic (FACTS L5). Price then tracks the stocks-to-use ratio, the
  regularity of storable commodities.
- **Consumption and shortage.** It uses its need from inventory; what is missing is recorded as
  shortage (production not made, seed F17).
- **Thrifting** (documented rule, FACTS L5-L6). When the price of an element stays above
  ``thrift_trigger_ratio`` x the buyer's long memory of prices (two years), it cuts that element's content
  per magnet by ``thrift_rate_per_week`` of the base each week, down to ``min_content_frac`` of the base;
  shortages thrift the same way. When the price falls back below that memory, content recovers at a quarter
  of that speed. Over months, high prices therefore reduce demand; within weeks they do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.params import PRODUCTS, BuyerSpec, Region

if TYPE_CHECKING:
    from model.model import RareEarthModel

NP = len(PRODUCTS)
WTP_SHARE_OF_MAGNET_VALUE = 0.5
LONG_MEMORY_WEEKS = 104.0


class Buyer(mesa.Agent):
    def __init__(self, model: RareEarthModel, spec: BuyerSpec):
        super().__init__(model)
        self.spec = spec
        self.bid_id = spec.id
        self.state_id = spec.state
        self.segment = spec.segment
        self.region = model.world.state(spec.state).region
        self.base_content = np.array([spec.content_kg_per_kg.get(p, 0.0) for p in PRODUCTS])
        self.min_content = self.base_content * np.array([spec.min_content_frac.get(p, 1.0) for p in PRODUCTS])
        self.content = self.base_content.copy()
        self.magnet_t_per_week = spec.magnet_t_per_year / 52.0
        self.target_cover = spec.target_cover_weeks
        self.traceable_only = spec.traceable_only
        self.inventory = self.need() * self.target_cover
        self.ref_price = model.initial_prices[self.region].copy()
        self.long_price = self.ref_price.copy()
        self.wtp = np.where(self.base_content > 0,
                            WTP_SHARE_OF_MAGNET_VALUE * spec.value_usd_per_kg_magnet
                            / np.maximum(self.base_content, 1e-12), 0.0)
        self.bought = np.zeros(NP)
        self.paid = np.zeros(NP)
        self.consumed = np.zeros(NP)
        self.shortage = np.zeros(NP)
        self.bid_qty = np.zeros(NP)

    def need(self) -> np.ndarray:
        """Element oxide needed this week, t."""
        return self.magnet_t_per_week * self.model.demand_multiplier * self.content

    def target_weeks(self) -> float:
        """Weeks of need it wants on hand."""
        return self.target_cover

    def bid(self, urgency: float) -> tuple[np.ndarray, np.ndarray]:
        """Bid level (USD/kg) and quantity (t) per product for this week."""
        need = self.need()
        target = need * self.target_weeks()
        # forward look: read the market's supply outlook and count weeks of the change as already come
        outlook = self.model.supply_outlook(self.region)
        ahead = self.inventory + self.model.behaviour.buyer_forward_weeks * need * (outlook - 1.0)
        qty = np.maximum(need + 0.25 * (target - self.inventory), 0.0)
        gap = np.where(target > 0, (target - ahead) / np.maximum(target, 1e-12), 0.0)
        level = self.long_price * (1.0 + urgency * np.clip(gap, -0.25, 1.0))
        self.bid_qty = qty
        return np.minimum(level, self.wtp), qty

    def receive(self, qty: np.ndarray, cost: np.ndarray) -> None:
        self.bought = qty
        self.paid = cost
        self.inventory = self.inventory + qty

    def consume(self, prices: np.ndarray, memory_weeks: float, thrift_rate: float, trigger: float) -> None:
        need = self.need()
        used = np.minimum(need, self.inventory)
        self.inventory = self.inventory - used
        self.consumed = used
        self.shortage = need - used
        ok = np.isfinite(prices)
        a = 1.0 / memory_weeks
        self.ref_price = np.where(ok, (1 - a) * self.ref_price + a * prices, self.ref_price)
        b = 1.0 / LONG_MEMORY_WEEKS
        self.long_price = np.where(ok, (1 - b) * self.long_price + b * prices, self.long_price)
        short = self.shortage > 0.05 * need
        high = (self.ref_price > trigger * self.long_price) | short
        low = self.ref_price < self.long_price
        step = thrift_rate * self.base_content
        self.content = np.where(high, np.maximum(self.content - step, self.min_content), self.content)
        self.content = np.where(low & ~high, np.minimum(self.content + step / 4, self.base_content),
                                self.content)

    @property
    def is_china(self) -> bool:
        return self.region == Region.CN
