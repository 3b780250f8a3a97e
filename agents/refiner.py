"""Refiners: separation plants that buy ore, separate it into oxides and sell them.

Rules (rates in :class:`model.params.Behaviour`):
- **Ore bids.** A plant values a tonne of ore REO at its *netback*: the oxides it can separate from the
  ore's basket, times recovery, at the prices it expects (an average of recent clearing prices in the
  markets it sells to, or a guaranteed floor), less its processing cost. It bids ``ore_bid_share`` x
  netback, minus the route cost to reach the mine, for the feed it wants (planned processing plus a
  quarter of the gap to ``feed_target_weeks`` of feed). The share is calibrated to seed F14 (ore sold at
  ~US$14.5/kg against ~US$31/kg of oxide in it); scarce ore is rationed by the auction.
- **Processing.** It processes ``utilisation`` x capacity, limited by feed. ``utilisation`` falls when
  its oxide inventory (value-weighted weeks of sales) is above target and rises when below: a plant
  sitting on unsold oxide stops buying ore.
- **Selling** (coverage rule, as in GCMat): it asks what its market has paid over two years, marked up
  by ``seller_markup_rate`` x the relative cover shortfall (x ``seller_markup_cap`` when short, so an
  empty shelf asks up to rate x cap more; at most ``seller_markup_rate`` less when overstocked): a
  seller running short asks more and one sitting on stock undercuts. Cover looks ahead: stock plus
  ``seller_forward_weeks`` of expected sales x (supply outlook - 1), where the outlook is the market's
  public supply signal (``RareEarthModel.supply_outlook``), so plants raise asks when ore stops
  arriving, before shelves are empty (seed F16). It offers its inventory as a short ladder around that
  level.
- **Home or export.** A Chinese plant splits its offers between the China-domestic and the ex-China
  market by a replicator rule: the export share grows with the ratio of the ex-China price (net of export
  cost) to the domestic price, so the two prices are arbitraged while exports are free. Export controls
  cap what may be offered abroad (policies set the cap; the plant never knows a policy by name).
- **Reservation.** It never asks less than ``seller_reservation_ratio`` x the two-year average price of
  its market: oxides keep, so a plant stores a glut rather than dump it (and cuts its ore purchases).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.params import PRODUCTS, RefinerSpec, Region

if TYPE_CHECKING:
    from model.model import RareEarthModel

NP = len(PRODUCTS)


class Refiner(mesa.Agent):
    """A separation plant (operating or a planned project in the investment pipeline)."""

    feed_target_weeks = 4.0
    sales_memory_weeks = 8.0

    def __init__(self, model: RareEarthModel, spec: RefinerSpec):
        super().__init__(model)
        self.spec = spec
        self.rid = spec.id
        self.country = spec.country
        self.node = spec.node
        self.home_region = model.world.state(spec.country).region
        self.processing_cost = spec.processing_cost_usd_per_kg
        self.recovery = spec.recovery
        self.separates = np.array([p in spec.separates for p in PRODUCTS], dtype=bool)
        self.nameplate_t_per_week = spec.capacity_t_per_week
        # pipeline state: "operating", "planned", "building"
        self.status = spec.status
        self.build_weeks_left = 0
        if spec.status == "building":
            weeks = (spec.online_date - model.start_date).days // 7
            if weeks <= 0:
                self.status = "operating"  # finished before the run starts
            else:
                self.build_weeks_left = weeks
        self.financed_by = ""
        self.capacity_t_per_week = spec.capacity_t_per_week if self.status == "operating" else 0.0
        self.feed_reo = 0.0
        self.feed_el = np.zeros(NP)  # t of each oxide contained in the feed
        self.inventory = np.zeros(NP)
        self.sales_ema = np.zeros(NP)
        prices = model.initial_prices
        self.ask = {r: prices[r].copy() for r in model.regions_for(self)}
        self.export_share = np.full(NP, 0.5 if self.home_region == Region.CN else 0.0)
        self.bid_factor = model.behaviour.ore_bid_share
        self.utilisation = 0.9  # China's plants have ~10 % spare separation capacity
        self.processed = 0.0
        self.produced = np.zeros(NP)
        self.sold = {r: np.zeros(NP) for r in Region}
        self.ore_bought = 0.0
        if self.capacity_t_per_week > 0:
            self._seed_stocks(model)

    def _seed_stocks(self, model: RareEarthModel) -> None:
        """Start in steady state: feed and oxide stocks at target cover for expected output."""
        cap = self.capacity_t_per_week * self.utilisation
        basket = model.typical_basket(self)
        self.feed_reo = cap * self.feed_target_weeks
        self.feed_el = basket * self.feed_reo
        weekly = basket * cap * self.recovery * self.separates
        self.sales_ema = weekly.copy()
        self.inventory = weekly * model.world.behaviour.seller_target_cover_weeks

    # -- ore side -----------------------------------------------------------------------------------------
    def expected_price(self, model: RareEarthModel) -> np.ndarray:
        """Expected realised oxide price (USD/kg) over the markets this plant sells to (a price floor
        covering its country lifts it). See :func:`expected_prices`."""
        return expected_prices([self], model)[0]

    def unit_cost(self) -> float:
        """Processing cost per kg ore REO, with any audit cost its state requires."""
        return self.processing_cost + self.model.rules.audit_cost.get(self.country, 0.0)

    def netback(self, basket: np.ndarray, prices: np.ndarray) -> float:
        """Value of one kg of ore REO to this plant, USD/kg."""
        return float((basket * self.separates * prices).sum() * self.recovery - self.unit_cost())

    def ore_wanted(self) -> float:
        """Ore it bids for this week: planned processing plus a quarter of the gap to its feed target."""
        planned = self.capacity_t_per_week * self.utilisation
        return max(0.0, planned + 0.25 * (planned * self.feed_target_weeks - self.feed_reo))

    def receive_ore(self, tonnes: float, basket: np.ndarray) -> None:
        self.feed_reo += tonnes
        self.feed_el += basket * tonnes
        self.ore_bought += tonnes

    # -- processing ----------------------------------------------------------------------------------------
    def process(self) -> np.ndarray:
        """Separate this week's feed; returns oxide produced per product (t)."""
        x = min(self.capacity_t_per_week * self.utilisation, self.feed_reo)
        self.processed = x
        if x <= 0 or self.feed_reo <= 0:
            self.produced = np.zeros(NP)
            return self.produced
        share = x / self.feed_reo
        used_el = self.feed_el * share
        self.feed_el -= used_el
        self.feed_reo -= x
        if self.feed_reo < 1e-9:
            self.feed_reo, self.feed_el[:] = 0.0, 0.0
        self.produced = used_el * self.recovery * self.separates
        self.inventory += self.produced
        return self.produced

    # -- selling -------------------------------------------------------------------------------------------
    def offer_split(self, export_cap: np.ndarray) -> dict[Region, np.ndarray]:
        """Quantity offered per market this week (t), after the export cap (share of exports allowed)."""
        if self.home_region != Region.CN:
            return {Region.ROW: self.inventory.copy(), Region.CN: np.zeros(NP)}
        exp = self.inventory * self.export_share * export_cap
        return {Region.ROW: exp, Region.CN: self.inventory - exp}

    def after_market(self, sold: dict[Region, np.ndarray], prices: dict[Region, np.ndarray],
                     rate: float, target_cover: float, export_cost: np.ndarray, export_cap: np.ndarray,
                     sensitivity: float, reservation: float) -> None:
        """Book this week's sales, then set next week's asks and export share (see :func:`after_market_all`)."""
        after_market_all([self], [sold], prices, rate, target_cover, export_cost, export_cap, sensitivity,
                         reservation)

    def adapt(self, prices: np.ndarray) -> None:
        """Weekly adjustment of utilisation to oxide cover (value-weighted weeks of sales on hand)."""
        if self.capacity_t_per_week <= 0:
            return
        # value of stock and of sales at these prices (three products: plain floats, added in product
        # order, as numpy adds a short array)
        value_stock = value_sales = 0.0
        for p, sep, inv, ema in zip(prices.tolist(), self.separates.tolist(), self.inventory.tolist(),
                                    self.sales_ema.tolist(), strict=True):
            weight = p * sep
            value_stock += inv * weight
            value_sales += ema * weight
        target = self.model.world.behaviour.seller_target_cover_weeks
        cover = value_stock / max(value_sales, 1e-9)
        self.utilisation = min(max(self.utilisation + 0.02 * (target - cover) / target, 0.3), 1.0)


    # -- investment pipeline -------------------------------------------------------------------------------
    def start_building(self, lead_time_weeks: int, financed_by: str = "") -> bool:
        if self.status != "planned":
            return False
        self.status = "building"
        self.build_weeks_left = max(0, int(lead_time_weeks))
        self.financed_by = financed_by
        return True

    def advance_pipeline(self) -> bool:
        """Count down construction; returns True in the week the plant comes online."""
        if self.status != "building":
            return False
        self.build_weeks_left -= 1
        if self.build_weeks_left <= 0:
            self.status = "operating"
            self.capacity_t_per_week = self.nameplate_t_per_week
            self.utilisation = 0.5  # ramp-up
            return True
        return False


def after_market_all(refiners: list[Refiner], sold: list[dict[Region, np.ndarray]],
                     prices: dict[Region, np.ndarray], rate: float, target_cover: float,
                     export_cost: np.ndarray, export_cap: np.ndarray, sensitivity: float,
                     reservation: float) -> None:
    """The selling rules (module docstring) for several plants at once, one row per plant.

    ``sold[i]`` is what ``refiners[i]`` sold this week per market. Each plant books its sales, then sets its
    asks for next week from its forward cover and its export share from the home/export price ratio. The
    arithmetic is elementwise, so a plant's numbers do not depend on which other plants are in the batch.
    """
    if not refiners:
        return
    model = refiners[0].model
    b = model.behaviour
    n = len(refiners)
    for r, s in zip(refiners, sold, strict=True):
        for reg, q in s.items():
            r.sold[reg] = q
    total = np.zeros((n, NP))
    for reg in sold[0]:  # every plant's sales dict lists the markets in the same order
        total = total + np.array([s[reg] for s in sold]).reshape(n, NP)
    inventory = np.maximum(np.array([r.inventory for r in refiners]).reshape(n, NP) - total, 0.0)
    a = 1.0 / np.array([r.sales_memory_weeks for r in refiners])[:, None]
    sales_ema = (1 - a) * np.array([r.sales_ema for r in refiners]).reshape(n, NP) + a * total
    expected = np.maximum(sales_ema, 1e-9)
    # forward cover: stock plus what the published supply outlook of its market adds or removes
    # over the next seller_forward_weeks, in weeks of sales; when ore stops arriving in its region,
    # a plant asks more at once, before its shelves empty (seed F16)
    outlook = {reg: model.supply_outlook(reg) for reg in {r.home_region for r in refiners}}
    outlook_rows = np.array([outlook[r.home_region] for r in refiners]).reshape(n, NP)
    ahead = inventory + b.seller_forward_weeks * sales_ema * (outlook_rows - 1.0)
    cover = np.maximum(ahead, 0.0) / expected
    # stocks-to-use: ask the two-year price marked up by the relative cover shortfall
    markup = 1.0 + rate * np.minimum(np.maximum((target_cover - cover) / target_cover, -1.0), 1.0) * np.where(
        cover < target_cover, b.seller_markup_cap, 1.0)
    asks = {}
    for reg in {reg for r in refiners for reg in r.ask}:
        lm = model.long_memory[reg]
        # it holds stock rather than sell far below what the market has paid over two years
        asks[reg] = np.maximum(lm * markup, reservation * lm)
    home_cn = [i for i, r in enumerate(refiners) if r.home_region == Region.CN]
    if home_cn:
        cn, row = prices[Region.CN], prices[Region.ROW]
        ok = np.isfinite(cn) & np.isfinite(row) & (export_cap > 0)
        ratio = np.where(ok, (row - export_cost) / np.where(ok, cn, 1.0), 1.0)
        ratio = np.minimum(np.maximum(ratio, 0.5), 2.0)
        s = np.array([refiners[i].export_share for i in home_cn]).reshape(len(home_cn), NP)
        w = s * ratio**sensitivity
        s_new = w / (w + (1 - s))
        share = np.minimum(np.maximum(0.8 * s + 0.2 * s_new, 0.02), 0.98)
        for j, i in enumerate(home_cn):
            refiners[i].export_share = share[j]
    for i, r in enumerate(refiners):
        r.inventory = inventory[i]
        r.sales_ema = sales_ema[i]
        for reg in r.ask:
            r.ask[reg] = asks[reg][i]


def expected_prices(refiners: list[Refiner], model: RareEarthModel) -> np.ndarray:
    """Each plant's expected realised oxide price (USD/kg), one row per plant.

    A Chinese plant expects the domestic price and the ex-China price net of export cost, weighted by
    the share of its offers it sends abroad (times the share allowed out); any other plant the ex-China
    price. Prices are the markets' recent averages (``price_memory``); a price floor covering the plant
    (its state's, or an offtake guarantee) lifts them.
    """
    n = len(refiners)
    out = np.empty((n, NP))
    cn = model.price_memory[Region.CN]
    home_cn = [i for i, r in enumerate(refiners) if r.home_region == Region.CN]
    if home_cn:
        row = model.price_memory[Region.ROW] - model.export_cost
        s = np.array([refiners[i].export_share for i in home_cn]).reshape(len(home_cn), NP)
        s = s * model.rules.export_cap_fraction()
        out[home_cn] = (1 - s) * cn + s * np.maximum(row, 0.0)
    other = [i for i in range(n) if refiners[i].home_region != Region.CN]
    if other:
        out[other] = model.price_memory[Region.ROW]
    for i, r in enumerate(refiners if model.rules.any_floor() else ()):
        floor = model.rules.floor_for(r.country, r.rid)
        if floor is not None:
            out[i] = np.maximum(out[i], floor)
    return out
