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

from model.params import PRODUCTS, REGIONS, BuyerSpec, Region

if TYPE_CHECKING:
    from model.model import RareEarthModel

NP = len(PRODUCTS)
WTP_SHARE_OF_MAGNET_VALUE = 0.5
LONG_MEMORY_WEEKS = 104.0


def _bid_rule(need, target, inventory, outlook, long_price, wtp, urgency: float, forward_weeks: float):
    """The bid rule (module docstring), on one buyer's row or on the whole book at once: (level, qty)."""
    # forward look: read the market's supply outlook and count weeks of the change as already come
    ahead = inventory + forward_weeks * need * (outlook - 1.0)
    qty = np.maximum(need + 0.25 * (target - inventory), 0.0)
    gap = np.where(target > 0, (target - ahead) / np.maximum(target, 1e-12), 0.0)
    level = long_price * (1.0 + urgency * np.minimum(np.maximum(gap, -0.25), 1.0))
    return np.minimum(level, wtp), qty


def _consume_rule(need, inventory, prices, ref_price, long_price, content, base_content, min_content,
                  memory_weeks: float, thrift_rate: float, trigger: float):
    """Consumption, price memories and thrifting (module docstring), on one row or the whole book.

    Returns the new (inventory, consumed, shortage, ref_price, long_price, content)."""
    used = np.minimum(need, inventory)
    inventory = inventory - used
    shortage = need - used
    ok = np.isfinite(prices)
    a = 1.0 / memory_weeks
    ref_price = np.where(ok, (1 - a) * ref_price + a * prices, ref_price)
    b = 1.0 / LONG_MEMORY_WEEKS
    long_price = np.where(ok, (1 - b) * long_price + b * prices, long_price)
    short = shortage > 0.05 * need
    high = (ref_price > trigger * long_price) | short
    low = ref_price < long_price
    step = thrift_rate * base_content
    content = np.where(high, np.maximum(content - step, min_content), content)
    content = np.where(low & ~high, np.minimum(content + step / 4, base_content), content)
    return inventory, used, shortage, ref_price, long_price, content


class BuyerBook:
    """Array-backed state of every buyer: one row per buyer, one column per product.

    ``Buyer`` agents are views into it (as ``Miner`` agents are into ``MinerFleet``), so the model can run
    the weekly bid and consumption rules on all buyers in a few array operations. The rules are written
    once (:func:`_bid_rule`, :func:`_consume_rule`) and applied to a row or to the whole book, so a
    buyer's own ``bid``/``consume`` and the book's give the same numbers. State arrays are replaced, never
    written in place, so an array read from a buyer earlier keeps its values (as before the book existed).
    """

    FIELDS = ("base_content", "min_content", "content", "inventory", "ref_price", "long_price", "wtp",
              "bought", "paid", "consumed", "shortage")
    SCALARS = ("magnet_t_per_week", "target_cover")

    def __init__(self) -> None:
        self.n = 0
        for f in self.FIELDS:
            setattr(self, f, np.zeros((0, NP)))
        for f in self.SCALARS:
            setattr(self, f, np.zeros(0))
        self.region: list[Region] = []
        self.region_code = np.zeros(0, dtype=int)  # index into REGIONS
        self.state_id: list[str] = []
        self._rows_cache: dict = {}
        self._need_key: tuple = ()
        self._need = np.zeros((0, NP))

    def add(self, region: Region, state_id: str, **values) -> int:
        """Append a buyer's row (every field of FIELDS and SCALARS); returns its index."""
        for f in self.FIELDS:
            setattr(self, f, np.vstack([getattr(self, f), np.asarray(values[f], dtype=float)[None, :]]))
        for f in self.SCALARS:
            setattr(self, f, np.append(getattr(self, f), float(values[f])))
        self.region.append(region)
        self.region_code = np.append(self.region_code, REGIONS.index(region))
        self.state_id.append(state_id)
        self._rows_cache.clear()
        self.n += 1
        return self.n - 1

    def set_row(self, field: str, i: int, value) -> None:
        """Replace one buyer's value of a field (copy on write: arrays handed out before keep theirs)."""
        arr = getattr(self, field).copy()
        arr[i] = value
        setattr(self, field, arr)

    def rows(self, *, region: Region | None = None, state_id: str | None = None) -> np.ndarray:
        """Row indices of the buyers in a region or of a state, in buyer order."""
        key = (region, state_id)
        if key not in self._rows_cache:
            self._rows_cache[key] = np.array(
                [i for i in range(self.n) if (region is None or self.region[i] == region)
                 and (state_id is None or self.state_id[i] == state_id)], dtype=int)
        return self._rows_cache[key]

    def state_codes(self) -> tuple[list[str], np.ndarray]:
        """The states the buyers belong to (sorted) and each buyer's index into that list (cached)."""
        key = ("state_codes", self.n)
        if key not in self._rows_cache:
            sids = sorted(set(self.state_id))
            self._rows_cache[key] = (sids, np.array([sids.index(s) for s in self.state_id], dtype=int))
        return self._rows_cache[key]

    def totals(self, values: np.ndarray, by: str) -> np.ndarray:
        """Sum of one row per buyer (``values``, n x products) by ``"region"`` (rows in REGIONS order) or
        ``"state"`` (rows in :meth:`state_codes` order), added buyer by buyer in buyer order."""
        if by == "region":
            out, code = np.zeros((len(REGIONS), NP)), self.region_code
        else:
            sids, code = self.state_codes()
            out = np.zeros((len(sids), NP))
        np.add.at(out, code, values)  # unbuffered, in index order: the same additions as a Python loop
        return out

    def need(self, demand_multiplier: float) -> np.ndarray:
        """Element oxide needed this week by every buyer (n x products), t."""
        k = self._need_key  # cached until content, demand or the multiplier change (arrays are replaced)
        if not (k and k[0] is self.magnet_t_per_week and k[1] is self.content and k[2] == demand_multiplier):
            self._need = (self.magnet_t_per_week * demand_multiplier)[:, None] * self.content
            self._need.flags.writeable = False
            self._need_key = (self.magnet_t_per_week, self.content, demand_multiplier)
        return self._need

    def need_of_state(self, state_id: str, demand_multiplier: float) -> np.ndarray:
        """A state's buyers' need this week, per product (summed in buyer order), t."""
        return self.need(demand_multiplier)[self.rows(state_id=state_id)].sum(axis=0) if self.n else np.zeros(NP)

    def by_region(self, vector_of_region: dict) -> np.ndarray:
        """A per-region vector (e.g. prices) spread to one row per buyer."""
        return np.array([vector_of_region[r] for r in REGIONS], dtype=float).reshape(-1, NP)[self.region_code]

    def bid(self, urgency: float, outlook: np.ndarray, forward_weeks: float, demand_multiplier: float):
        """Every buyer's bid level (USD/kg) and quantity (t), n x products; ``outlook`` one row per buyer."""
        need = self.need(demand_multiplier)
        target = need * self.target_cover[:, None]
        return _bid_rule(need, target, self.inventory, outlook, self.long_price, self.wtp, urgency,
                         forward_weeks)

    def receive(self, qty: np.ndarray, cost: np.ndarray) -> None:
        self.bought = qty
        self.paid = cost
        self.inventory = self.inventory + qty

    def consume(self, prices: np.ndarray, memory_weeks: float, thrift_rate: float, trigger: float,
                demand_multiplier: float) -> None:
        """Every buyer consumes (``prices`` one row per buyer: its market's clearing prices)."""
        (self.inventory, self.consumed, self.shortage, self.ref_price, self.long_price,
         self.content) = _consume_rule(self.need(demand_multiplier), self.inventory, prices, self.ref_price,
                                       self.long_price, self.content, self.base_content, self.min_content,
                                       memory_weeks, thrift_rate, trigger)


def _row_property(field: str, doc: str) -> property:
    def get(self: Buyer):
        return getattr(self._book, field)[self._i]

    def set_(self: Buyer, value) -> None:
        self._book.set_row(field, self._i, value)

    return property(get, set_, doc=doc)


class Buyer(mesa.Agent):
    """One buyer; its state lives in the model's :class:`BuyerBook` at row ``_i``."""

    base_content = _row_property("base_content", "oxide kg per kg magnet before thrifting")
    min_content = _row_property("min_content", "content floor after full thrifting")
    content = _row_property("content", "oxide kg per kg magnet now")
    inventory = _row_property("inventory", "t of each oxide on hand")
    ref_price = _row_property("ref_price", "short price memory, USD/kg")
    long_price = _row_property("long_price", "two-year price memory, USD/kg")
    wtp = _row_property("wtp", "willingness to pay, USD/kg")
    bought = _row_property("bought", "t bought this week")
    paid = _row_property("paid", "USD/kg x t paid this week")
    consumed = _row_property("consumed", "t used this week")
    shortage = _row_property("shortage", "t of need not met this week")
    magnet_t_per_week = _row_property("magnet_t_per_week", "magnet demand, t/week")
    target_cover = _row_property("target_cover", "weeks of need it wants on hand")

    def __init__(self, model: RareEarthModel, spec: BuyerSpec):
        super().__init__(model)
        self.spec = spec
        self.bid_id = spec.id
        self.state_id = spec.state
        self.segment = spec.segment
        self.region = model.world.state(spec.state).region
        if getattr(model, "buyer_book", None) is None:
            model.buyer_book = BuyerBook()
        self._book = model.buyer_book
        base = np.array([spec.content_kg_per_kg.get(p, 0.0) for p in PRODUCTS])
        magnet = spec.magnet_t_per_year / 52.0
        ref = model.initial_prices[self.region].copy()
        self._i = self._book.add(
            self.region, self.state_id,
            base_content=base,
            min_content=base * np.array([spec.min_content_frac.get(p, 1.0) for p in PRODUCTS]),
            content=base.copy(),
            inventory=magnet * model.demand_multiplier * base * spec.target_cover_weeks,  # need x cover
            ref_price=ref, long_price=ref.copy(),
            wtp=np.where(base > 0, WTP_SHARE_OF_MAGNET_VALUE * spec.value_usd_per_kg_magnet
                         / np.maximum(base, 1e-12), 0.0),
            bought=np.zeros(NP), paid=np.zeros(NP), consumed=np.zeros(NP), shortage=np.zeros(NP),
            magnet_t_per_week=magnet, target_cover=spec.target_cover_weeks)

    def need(self) -> np.ndarray:
        """Element oxide needed this week, t."""
        return self.magnet_t_per_week * self.model.demand_multiplier * self.content

    def bid(self, urgency: float) -> tuple[np.ndarray, np.ndarray]:
        """Bid level (USD/kg) and quantity (t) per product for this week."""
        need = self.need()
        return _bid_rule(need, need * self.target_cover, self.inventory, self.model.supply_outlook(self.region),
                         self.long_price, self.wtp, urgency, self.model.behaviour.buyer_forward_weeks)

    def consume(self, prices: np.ndarray, memory_weeks: float, thrift_rate: float, trigger: float) -> None:
        (self.inventory, self.consumed, self.shortage, self.ref_price, self.long_price,
         self.content) = _consume_rule(self.need(), self.inventory, prices, self.ref_price, self.long_price,
                                       self.content, self.base_content, self.min_content, memory_weeks,
                                       thrift_rate, trigger)

    @property
    def is_china(self) -> bool:
        return self.region == Region.CN
