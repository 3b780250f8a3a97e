"""Refiners: separation plants that buy ore, separate it into oxides and sell them in their home market.

Rules (rates in :class:`model.params.Behaviour`; ``b.x`` below):

- **Cost.** A plant tracks the average delivered cost of the ore in its feed stock (gate price, transport,
  border fees and levies on the way; captive ore at its mine's cash cost and levy). Its *cash cost* per kg of
  feed is that plus processing (and any audit cost its state requires) plus separating the oxides the feed
  yields (each product's ``separation_cost_usd_per_kg``, where the world states one); its *full cost* is the
  cash cost x ``1 + b.full_cost_markup`` (taxes, capital charge and overheads, calibrated so that 2024
  average prices, FACTS P2, are the full cost of the marginal plant at 2024 ore prices), separation charged
  at cost (:meth:`RefinerBook.full_cost`).
- **Reservation price** (joint products, FACTS L6). A kg of feed yields a fixed mix of oxides, so cost can
  only be split among them: by their value at the prices its market has paid over ``b.long_memory_weeks``
  (the relative-sales-value method). Reservation of product ``k`` = full cost x price_k / value of the mix at
  those prices. At the reservation prices the mix is worth exactly its full cost: the level of prices is
  anchored in cost, and two years of price history only decide how the cost is shared between elements.
- **Selling** (supply of stock). A plant wants ``b.seller_target_cover_weeks`` of expected sales in stock at
  its reservation price (expected sales: its output over ``b.sales_memory_weeks``, what it has to sell; a
  memory of its own sales would make it hold back after a week of good sales and dump after a poor one, a
  sawtooth wherever its stock rule's gain, cover x (p / reservation)^-e / memory, exceeds 1) and less when prices are higher: stock kept at price ``p`` = target x
  ``(p / reservation)^-b.seller_stock_elasticity``; it offers the rest. It never sells below its cash cost
  (it stores oxide and cuts its ore purchases instead), nor below a product's ``separation_cost_usd_per_kg``. When the supply outlook of its market falls, it wants
  more stock (target x (1 + ``b.seller_outlook_response`` x (1 - outlook))), so a plant asks more as soon as
  less ore is being mined for its market, before its shelves are empty (seed F16).
- **Ore.** It wants its planned processing plus a quarter of the gap to ``b.feed_target_weeks`` of feed and
  bids ``b.ore_bid_share`` x its netback (the expected value of the ore's oxides less processing; a price
  floor covering it lifts the prices) minus the route cost to reach the ore (seed F14), raised by
  ``b.ore_bid_urgency`` x its feed shortfall: a plant short of feed pays more.
- **Processing** at ``utilisation`` x capacity, limited by feed. Utilisation (``b.utilisation_step`` a week) rises
  while the oxides of a kg of feed are worth more than its cash cost at this week's prices, and falls while
  they are worth less or while unsold oxide piles up beyond ``b.overstock_ratio`` x the stock it wants (a
  joint-product plant runs for the valuable element even when another piles up). Co-product stock beyond
  ``b.co_product_disposal_weeks`` of its output is disposed of (La/Ce; FACTS L6).
- **Pipeline** (:mod:`model.projects`). A planned plant is permitted and then built once its sponsor or a
  lender decides; it comes online after its permitting and construction at half utilisation.
- **Exit.** An operating plant that for ``b.plant_exit_weeks`` weeks in a row has had no feed (processed
  under 1 % of its capacity) or whose output is worth less than its cash cost at the prices it expects
  (floors included) is closed by its owner: capacity 0 for good; it sells the oxide it still holds. Plants
  under China's separation quotas do not exit (the state allocates their quotas, FACTS P6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import add_reduce as _sum
from model.arrays import count_nonzero, flatnonzero, where
from model.exchange import (
    GroupSum,
    Offer,
    OrderBlock,
    RegionClearing,
    Side,
    row_index,
    row_selector,
    settle_kernel,
    take_rows,
)
from model.params import RefinerSpec
from model.projects import Pipeline, PipelinePlant

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0


class RefinerBook:
    """Array-backed state of every plant, one row each (``Refiner`` agents are views into it)."""

    def __init__(self, model: RareEarthModel, specs: list[RefinerSpec]):
        self.model = model
        products = model.products
        n, n_p = len(specs), len(products)
        self.n = n
        self.specs = list(specs)
        self.ids = [s.id for s in specs]
        self.index = {rid: i for i, rid in enumerate(self.ids)}
        self.country = [s.country for s in specs]
        self.countries = sorted(set(self.country))
        self.country_code = np.array([self.countries.index(c) for c in self.country], dtype=int)
        self.sum_by_country = GroupSum(self.country_code, len(self.countries))  # rows added by country, in order
        self.node = [s.node for s in specs]
        self.region = [model.region_of_state(s.country) for s in specs]
        self.region_code = np.array([model.regions.index(r) for r in self.region], dtype=int)
        self.processing_cost = np.array([s.processing_cost_usd_per_kg for s in specs], dtype=float)
        self.recovery = np.array([s.recovery for s in specs], dtype=float)
        self.separates = np.array([[p in s.separates for p in products] for s in specs], dtype=bool).reshape(n, n_p)
        self.ores = [set(s.ores) for s in specs]  # ore types each plant can process (empty: any)
        self.quota_group = [s.quota for s in specs]  # China's separation quota that caps it ("" none)
        self.quota_mult = np.ones(n)
        self._quota_masks: dict[str, np.ndarray] = {}  # quota group -> its plants (set_quota_factor)
        self.nameplate = np.array([s.capacity_t_per_week for s in specs], dtype=float)
        self.pipeline = Pipeline([s.status for s in specs],
                                 [(s.online_date - model.start_date).days // 7 if s.online_date else 0 for s in specs])
        self.status = self.pipeline.status  # the same list: planned, permitting, building, operating, cancelled
        self.financed_by = self.pipeline.financed_by
        self.capacity = where(np.array([s == "operating" for s in self.status]), self.nameplate, 0.0)
        self.utilisation = np.ones(n)  # plants whose output pays its cash cost run flat out (see adapt)
        self.feed_reo = np.zeros(n)
        self.feed_el = np.zeros((n, n_p))  # t of each product contained in the feed
        self.feed_cost = np.zeros(n)  # USD/kg x t: delivered cost of the feed on hand
        self.cash_cost = np.zeros(n)  # last known cash cost per kg feed (used when the feed runs out)
        self.separating = np.zeros(n)  # the part of it that pays for separating the oxides (USD/kg feed)
        self.mix = np.zeros((n, n_p))  # oxide per t of feed (last known when the feed runs out)
        self.inventory = np.zeros((n, n_p))
        self.sales_ema = np.zeros((n, n_p))
        self.sold = np.zeros((n, n_p))
        self.contracted = np.zeros((n, n_p))  # delivered under term contracts this week (t)
        self.revenue = np.zeros((n, n_p))  # USD this week
        self.produced = np.zeros((n, n_p))
        self.used = np.zeros((n, n_p))  # element content of the feed processed this week (t)
        self.processed = np.zeros(n)
        self.throughput = np.zeros(n)  # recent processing (t/week), what its feed target is measured against
        self.losing_weeks = np.zeros(n, dtype=int)  # weeks in a row without feed or a cash margin (exit)
        self.ore_bought = np.zeros(n)
        self.ore_received = np.zeros(n)  # recent ore receipts (t REO/week, EMA): plants_process_within_feed
        self.want = np.zeros(n)
        self.reserve_price = np.zeros((n, n_p))  # this week's reservation prices (USD/kg), as offered
        self._terms_key: tuple | None = None  # (reservations, expected sales, outlooks, terms): offer_terms
        sep = np.array([model.world.product(p).separation_cost_usd_per_kg for p in products], dtype=float)
        self.separation_floor = sep if sep.any() else None  # the least a plant sells each product for (USD/kg)
        # what separating a kg of each oxide costs beyond cracking the feed (``processing_cost``): part of a
        # plant's cash cost for every kg it separates, sold or disposed of (a co-product in surplus trades
        # at it, FACTS L6); zero for the products of a world that does not state it
        self.separation_cost = sep
        disp = np.array([model.world.product(p).disposable for p in products], dtype=float)
        self.disposable = disp if disp.any() else None  # co-products a plant may dispose of
        self.rows_of_region = {r: np.flatnonzero(self.region_code == j) for j, r in enumerate(model.regions)}
        self.at_region = {r: row_selector(rows) for r, rows in self.rows_of_region.items()}  # slices if consecutive
        self.sum_by_region = GroupSum(self.region_code, len(model.regions))  # rows added by region, in order

    # -- start in steady state ------------------------------------------------------------------------------
    def seed_stocks(self, typical_basket: np.ndarray, feed_cost: np.ndarray, throughput: np.ndarray) -> None:
        """Start in steady state: feed and oxide stocks at target cover for the plant's expected throughput;
        ``typical_basket`` (plants x products) is the mix of the ore it can expect, ``feed_cost`` its
        delivered cost (USD/kg)."""
        b = self.model.behaviour
        run = (self.capacity > 0) & (throughput > 0)
        x = where(run, np.minimum(throughput, self.capacity), 0.0)
        self.throughput = x
        self.ore_received = x.copy()  # at rest: it receives what it processes
        self.feed_reo = x * b.feed_target_weeks
        self.feed_el = typical_basket * self.feed_reo[:, None]
        self.feed_cost = feed_cost * self.feed_reo
        self.mix = typical_basket * self.recovery[:, None] * self.separates
        self.separating = self.mix @ self.separation_cost
        self.cash_cost = feed_cost + self.processing_cost + self.separating
        weekly = self.mix * x[:, None]
        self.sales_ema = weekly.copy()
        self.inventory = weekly * b.seller_target_cover_weeks

    def start_at_rest(self, prices: dict[str, np.ndarray]) -> None:
        """Hold, at the start, the oxide stock each plant keeps at its region's starting price (``prices``):
        its target cover, less where the price is above its reservation (:meth:`offer_terms`). Started at
        the target cover instead, a plant whose reservation is below the 2024 price (China's, ~10 % below)
        offered all the difference in the first week and every price stepped down ~4 % in one week."""
        self.prepare_week()
        _, scale = self.offer_terms()
        p0 = np.array([prices[r] for r in self.model.regions]).take(self.region_code, axis=0)
        keep = scale * p0 ** -self.model.behaviour.seller_stock_elasticity
        self.inventory = where(self.inventory > 0, keep, 0.0)

    # -- costs and reservation prices ----------------------------------------------------------------------
    def unit_cost(self) -> np.ndarray:
        """Processing cost per kg feed, with any audit cost its state requires (USD/kg)."""
        audit = self.model.rules.audit_cost
        if not audit:
            return self.processing_cost
        return self.processing_cost + np.array([audit.get(c, 0.0) for c in self.country])

    def update_cost_basis(self) -> None:
        """Cash cost per kg of feed (ore, processing and the separation of the oxides it yields) and the oxide
        mix of a kg of feed, from the feed on hand (last known values when the feed is empty)."""
        has = self.feed_reo > 1e-9
        safe = where(has, self.feed_reo, 1.0)
        ore = self.feed_cost / safe
        mix = self.feed_el / safe[:, None] * self.recovery[:, None] * self.separates
        self.mix = where(has[:, None], mix, self.mix)
        self.separating = self.mix @ self.separation_cost
        self.cash_cost = where(has, ore + self.unit_cost() + self.separating, self.cash_cost)

    def full_cost(self) -> np.ndarray:
        """Full cost per kg of feed (USD/kg): the cash cost x (1 + ``full_cost_markup``: taxes, capital
        charge, overheads), except the separation of its oxides, which is charged at cost. The markup was
        calibrated on plants that crack and separate the magnet oxides (the default world), and a co-product
        in surplus trades at its incremental separation cost (FACTS L6): separating it carries no overhead."""
        m = self.model.behaviour.full_cost_markup
        return (self.cash_cost - self.separating) * (1.0 + m) + self.separating

    def reservation(self, shares: np.ndarray) -> np.ndarray:
        """Each plant's reservation price per product (USD/kg): its full cost split by value at the prices
        ``shares`` (plants x products; the market's two-year memory). A plant's reservations, weighted by its
        output mix, add up to its full cost per kg of feed."""
        full = self.full_cost()
        value = _sum(self.mix * shares, axis=1)
        ok = value > 1e-12
        kappa = where(ok, full / where(ok, value, 1.0), 1.0)
        return kappa[:, None] * shares

    def expected_prices(self) -> np.ndarray:
        """Expected price of each plant's products (plants x products): its market's price memory, lifted
        by any price floor that covers the plant."""
        sig = self.model.signals
        return self.lifted_by_floors(np.array([sig.memory[r] for r in self.model.regions]).take(self.region_code, axis=0))

    def floors(self) -> list[tuple[int, np.ndarray]]:
        """The plants a price floor or an offtake guarantee covers this week, in row order, each with its floor
        (USD/kg per product); none when no floor is in force."""
        rules = self.model.rules
        if not rules.any_floor():
            return []
        return [(i, f) for i in range(self.n) if (f := rules.floor_for(self.country[i], self.ids[i])) is not None]

    def lifted_by_floors(self, prices: np.ndarray) -> np.ndarray:
        """``prices`` (plants x products) where a price floor or an offtake guarantee covers a plant: at least
        the floor, which is what the plant is paid (the state pays the gap on its sales)."""
        covered = self.floors()
        if not covered:
            return prices
        out = prices.copy()
        for i, floor in covered:
            out[i] = np.maximum(out[i], floor)
        return out

    # -- ore ---------------------------------------------------------------------------------------------
    def set_quota_factor(self, group: str, factor: float) -> None:
        """China's separation quota for ``group``: the plants it caps may process capacity x ``factor``."""
        # the plants of each group found once (the list is fixed); factor where a plant is in the group, else its
        # multiplier: the array the loop over the plants built, value for value
        mask = self._quota_masks.get(group)
        if mask is None:
            mask = self._quota_masks[group] = np.array([g == group for g in self.quota_group], dtype=bool)
        self.quota_mult = where(mask, float(factor), self.quota_mult)

    def planned(self) -> np.ndarray:
        """What each plant plans to process this week (t REO): capacity x utilisation x its quota."""
        return self.capacity * self.utilisation * self.quota_mult

    def begin_ore_week(self) -> None:
        """What each plant wants to buy this week: planned processing plus a quarter of the gap to its
        feed target (nothing when it is not operating)."""
        b = self.model.behaviour
        planned = self.planned()
        self.want = where(self.capacity > 0,
                             np.maximum(planned + 0.25 * (planned * b.feed_target_weeks - self.feed_reo), 0.0), 0.0)
        self.ore_bought = np.zeros(self.n)

    def bid_share(self) -> np.ndarray:
        """Share of its netback each plant bids for ore: ``ore_bid_share`` raised by its feed shortfall
        (feed on hand against ``feed_target_weeks`` of what it has recently processed)."""
        b = self.model.behaviour
        target = self.throughput * b.feed_target_weeks
        short = where(target > 0, np.minimum(np.maximum(1.0 - self.feed_reo / np.maximum(target, 1e-12), 0.0), 1.0), 0.0)
        return b.ore_bid_share * (1.0 + b.ore_bid_urgency * short)

    def netbacks(self, baskets: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Value of a kg of each ore (columns; ``baskets`` ores x products) to each plant (rows), at
        ``prices`` (plants x products): its oxides x recovery, each less its separation cost, less processing
        (USD/kg REO)."""
        value = np.einsum("ok,ik->io", baskets, self.separates * (prices - self.separation_cost))
        return value * self.recovery[:, None] - self.unit_cost()[:, None]

    def receive_flows(self, flow: np.ndarray, pool_basket: np.ndarray, value: np.ndarray) -> None:
        """The week's ore deliveries: ``flow`` (pools x plants, t REO) of ore with ``pool_basket`` (pools x
        products) at ``value`` (delivered cost x t)."""
        got = _sum(flow, axis=0)
        self.feed_reo = self.feed_reo + got
        self.feed_el = self.feed_el + flow.T @ pool_basket
        self.feed_cost = self.feed_cost + _sum(value, axis=0)
        self.ore_bought = got
        self.want = self.want - got

    # -- processing ----------------------------------------------------------------------------------------
    def process(self) -> np.ndarray:
        """Separate this week's feed; returns oxide produced (plants x products, t)."""
        b = self.model.behaviour
        plan = self.planned()
        if b.plants_process_within_feed:  # what keeps the feed near target: receipts + a share of the gap
            span = b.sales_memory_weeks
            self.ore_received = self.ore_received + (self.ore_bought - self.ore_received) / span
            before = self.feed_reo - self.ore_bought  # the feed before this week's deliveries
            plan = np.minimum(plan, np.maximum(self.ore_received + (before - b.feed_target_weeks * self.throughput)
                                               / span, 0.0))
        x = np.minimum(plan, self.feed_reo)
        x = where(self.feed_reo > 0, x, 0.0)
        share = where(self.feed_reo > 0, x / where(self.feed_reo > 0, self.feed_reo, 1.0), 0.0)
        used = self.feed_el * share[:, None]
        self.used = used  # the elements of the feed processed this week (t; the unseparated ones leave as residue)
        self.feed_el = self.feed_el - used
        self.feed_cost = self.feed_cost * (1.0 - share)
        self.feed_reo = self.feed_reo - x
        empty = self.feed_reo < 1e-9
        if count_nonzero(empty):
            self.feed_reo[empty] = 0.0
            self.feed_el[empty] = 0.0
            self.feed_cost[empty] = 0.0
        self.processed = x
        self.throughput = self.throughput + (x - self.throughput) / b.sales_memory_weeks
        self.produced = used * self.recovery[:, None] * self.separates
        self.inventory = self.inventory + self.produced
        return self.produced

    # -- selling (a participant of the exchange) -------------------------------------------------------------
    def prepare_week(self) -> None:
        """This week's cost basis and reservation prices (before the exchanges; the cost of supply reads them)."""
        self.update_cost_basis()
        sig = self.model.signals
        shares = np.array([sig.long_memory[r] for r in self.model.regions]).take(self.region_code, axis=0)
        self.reserve_price = self.selling_under_floors(self.reservation(shares))

    def selling_under_floors(self, res: np.ndarray) -> np.ndarray:
        """Reservation prices (plants x products) where a price floor or an offtake guarantee covers a plant:
        a product whose floor pays at least the plant's reservation is sold at the market, since the state
        pays the gap between the market's price and the floor (FACTS E1: DoD pays MP the difference to
        US$110/kg NdPr), so its reservation is at most the market's last price. Holding out for its
        reservation instead, a floored plant whose reservation is above the market sold nothing, its stock
        piled up and it slowed down while the floor paid its cash cost. A floor below the reservation leaves
        it: what the plant is paid below the reservation does not cover it."""
        covered = self.floors()
        if not covered:
            return res
        sig, regions = self.model.signals, self.model.regions
        out = res.copy()
        for i, floor in covered:
            market = sig.price[regions[self.region_code[i]]]
            out[i] = where(floor >= res[i], np.fmin(res[i], market), res[i])  # fmin: a market with no price yet leaves it
        return out

    def offer_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """Each plant's floor (the least it sells each product for: its cash cost's share, or the product's
        separation cost) and the scale of the stock it keeps at a price, keep x reservation^e (plants x
        products; read-only): stock kept at price p is keep x (p / reservation)^-e = scale x p^-e.

        They read the plant's reservation prices, expected sales and its region's supply outlook, none of
        which the exchanges change before the week's last clearing, so they are worked out once for every
        plant and kept until one of them is replaced (they are only ever replaced), instead of once per
        region: each value the same arithmetic on the same numbers (the same bits)."""
        sig = self.model.signals
        outlooks = [sig.outlook(r) for r in self.model.regions]
        key = self._terms_key
        if (key is not None and key[0] is self.reserve_price and key[1] is self.sales_ema
                and all(a is o for a, o in zip(key[2], outlooks, strict=True))):
            return key[3]
        b = self.model.behaviour
        res = self.reserve_price
        if self.separation_floor is None:
            floor = res / (1.0 + b.full_cost_markup)
        else:  # the cash share of the full cost (separation carries no markup: full_cost)
            full = self.full_cost()
            floor = np.maximum(res * (self.cash_cost / np.maximum(full, 1e-12))[:, None], self.separation_floor)
        outlook = np.array(outlooks).reshape(len(outlooks), -1).take(self.region_code, axis=0)  # its region's
        keep = b.seller_target_cover_weeks * self.sales_ema * np.maximum(
            1.0 + b.seller_outlook_response * (1.0 - outlook), 0.25)
        scale = keep * np.maximum(res, 1e-12) ** b.seller_stock_elasticity
        floor.flags.writeable = scale.flags.writeable = False
        self._terms_key = (self.reserve_price, self.sales_ema, outlooks, (floor, scale))
        return floor, scale

    def orders(self, region: str, grid: np.ndarray) -> list[OrderBlock]:
        at = self.at_region[region]
        floor, scale = self.offer_terms()
        # min(max(inventory - kept, 0), inventory), 0 below the floor; stock kept at p: scale x p^-e (the grid
        # part precomputed). The inventory is copied: the exchange may read it after settling.
        return [OrderBlock("refiners", Side.SELL, form=Offer(grid, take_rows(scale, at).T, self.model.exchange.seller_pow[region],
                                                           take_rows(self.inventory, at).T.copy(), take_rows(floor, at).T))]

    def settle(self, region: str, clearing: RegionClearing) -> None:
        at = self.at_region[region]
        kernel = settle_kernel()
        if kernel is not None:  # the lines below in one call
            kernel.settle_sold(row_index(at), clearing.fills["refiners"], clearing.paid, KG_PER_T, self.inventory,
                               self.sold, self.revenue)
            return
        sold = clearing.fills["refiners"].T
        self.inventory[at] = np.maximum(take_rows(self.inventory, at) - sold, 0.0)
        self.sold[at] = sold
        self.revenue[at] = sold * clearing.paid * KG_PER_T

    def deliver_contracts(self, rows: np.ndarray, want: np.ndarray) -> np.ndarray:
        """The plants of ``rows`` deliver ``want`` (t per product) under term contracts from this week's output,
        pro rata to what each made; returns what they delivered (t per product)."""
        inv = self.inventory.take(rows, axis=0)
        made = np.minimum(self.produced.take(rows, axis=0), inv)  # contracts take this week's output; stock stays for spot
        held = _sum(made, axis=0)
        give = np.minimum(np.maximum(want, 0.0), held)
        share = where(held > 1e-12, give / np.maximum(held, 1e-12), 0.0)
        out = made * share[None, :]
        self.inventory[rows] = np.maximum(inv - out, 0.0)
        self.contracted[rows] = self.contracted.take(rows, axis=0) + out
        return give

    def end_exchange_week(self) -> None:
        # expected sales are its output (module docstring): its own sales would feed back into the stock it keeps
        a = 1.0 / self.model.behaviour.sales_memory_weeks
        self.sales_ema = self.sales_ema + a * (self.produced - self.sales_ema)

    def adapt(self) -> np.ndarray | None:
        """Utilisation (joint products): a plant runs harder while the oxides of a kg of feed are worth more
        than its cash cost at this week's prices (lifted by any floor that covers it), and slows down while
        they are worth less or while its oxide stock (value-weighted) exceeds ``b.overstock_ratio`` x the
        stock it wants at these prices, or x its usual cover (``b.seller_target_cover_weeks`` of sales) where
        that is more. Prices above its reservation make a plant sell its stock down (its offers), not make
        less: measured against the stock it wants at the price alone, which falls as (price / reservation)^-e,
        a few weeks' stock read as overstock in a spike, and China's heavy separators slowed down for ~10 weeks
        after the 2025 halt, Lynas under the April 2025 licences, and Ganzhou to its minimum while Dy ran to
        ~50x its reservation (magnet world, demand growth, heavy separators held flat)."""
        b = self.model.behaviour
        sig = self.model.signals
        prices = np.array([sig.price[r] for r in self.model.regions]).take(self.region_code, axis=0)
        res = where(self.reserve_price > 0, self.reserve_price, prices)
        want_cover = b.seller_target_cover_weeks * (prices / np.maximum(res, 1e-12)) ** (-b.seller_stock_elasticity)
        w = prices * self.separates * self.sales_ema
        wsum = _sum(w, axis=1)
        target = where(wsum > 0, _sum(want_cover * w, axis=1) / np.maximum(wsum, 1e-12), b.seller_target_cover_weeks)
        target = np.maximum(target, b.seller_target_cover_weeks)
        cover = _sum(self.inventory * prices * self.separates, axis=1) / np.maximum(wsum, 1e-9)
        # a plant covered by a floor is paid at least the floor on what it sells (FACTS E1)
        paying = _sum(self.mix * self.lifted_by_floors(prices), axis=1) > self.cash_cost
        ok = paying & (cover <= b.overstock_ratio * target)
        new = np.minimum(np.maximum(self.utilisation + where(ok, b.utilisation_step, -b.utilisation_step), b.utilisation_min), 1.0)
        self.utilisation = where(self.capacity > 0, new, self.utilisation)
        # exit clock: no feed, or output worth less than its cash cost at the prices it expects
        covers = _sum(self.mix * self.expected_prices(), axis=1) > self.cash_cost
        fed = self.processed > 0.01 * self.capacity
        losing = (self.capacity > 0) & ~(covers & fed)
        self.losing_weeks = where(losing, self.losing_weeks + 1, 0)
        return self.dispose()

    def close_losers(self) -> list[int]:
        """Plants whose owners shut them this week (module docstring, Exit); returns their rows."""
        weeks = self.model.behaviour.plant_exit_weeks
        due = flatnonzero((self.losing_weeks >= weeks) & (self.capacity > 0)).tolist()
        out = [i for i in due if not self.quota_group[i] and self.pipeline.close(i)]
        for i in out:
            self.capacity[i] = 0.0
            self.losing_weeks[i] = 0
        return out

    def dispose(self) -> np.ndarray | None:
        """Co-products nobody buys (La and Ce from hard rock, FACTS L6) cannot pile up for ever: stock of a
        ``disposable`` product beyond ``b.co_product_disposal_weeks`` of a plant's output is disposed of (tailings, a state stockpile of
        low-value oxide). Returns what was disposed per product (t), or None when nothing was."""
        if self.disposable is None:
            return None
        weeks = self.model.behaviour.co_product_disposal_weeks
        over = np.maximum(self.inventory - weeks * self.throughput[:, None] * self.mix, 0.0) * self.disposable
        if not count_nonzero(over):
            return None
        self.inventory = self.inventory - over
        return _sum(over, axis=0)

    def begin_week(self) -> None:
        self.sold = np.zeros(self.sold.shape)
        if count_nonzero(self.contracted):
            self.contracted = np.zeros(self.contracted.shape)
        self.revenue = np.zeros(self.revenue.shape)

    # -- investment pipeline ------------------------------------------------------------------------------
    def advance_pipeline(self) -> list[int]:
        """Count permitting and construction down; returns the plants that come online this week."""
        if not self.pipeline.any_live():
            return []
        online = self.pipeline.advance()
        for i in online:
            self.capacity[i] = self.nameplate[i]
            self.utilisation[i] = 0.5  # ramp-up
        return online


class Refiner(PipelinePlant, mesa.Agent):
    """One separation plant; its state lives in the model's :class:`RefinerBook` at row ``i`` (its project
    phases: :class:`model.projects.PipelinePlant`)."""

    def __init__(self, model: RareEarthModel, book: RefinerBook, i: int):
        super().__init__(model)
        self._book = book
        self.i = i
        self.spec = book.specs[i]
        self.rid = self.spec.id
        self.country = self.spec.country
        self.node = self.spec.node
        self.home_region = book.region[i]

    @property
    def status(self) -> str:
        return self._book.status[self.i]

    @property
    def capacity_t_per_week(self) -> float:
        return float(self._book.capacity[self.i])

    @property
    def nameplate_t_per_week(self) -> float:
        return float(self._book.nameplate[self.i])

    @property
    def utilisation(self) -> float:
        return float(self._book.utilisation[self.i])

    @property
    def inventory(self) -> np.ndarray:
        return self._book.inventory[self.i].copy()

    @property
    def feed_reo(self) -> float:
        return float(self._book.feed_reo[self.i])

    @property
    def feed_el(self) -> np.ndarray:
        return self._book.feed_el[self.i].copy()

    @property
    def separates(self) -> np.ndarray:
        return self._book.separates[self.i]

    @property
    def recovery(self) -> float:
        return float(self._book.recovery[self.i])

    @property
    def processed(self) -> float:
        return float(self._book.processed[self.i])

    @property
    def produced(self) -> np.ndarray:
        return self._book.produced[self.i].copy()

    @property
    def financed_by(self) -> str:
        return self._book.financed_by[self.i]

    @property
    def build_weeks_left(self) -> int:
        """Weeks of permitting and construction left (0 unless it is on its way)."""
        return self._book.pipeline.weeks_left(self.i)

    def cash_cost(self) -> float:
        """Cash cost per kg of feed (ore delivered + processing + audit), USD/kg."""
        return float(self._book.cash_cost[self.i])

    def reservation(self) -> np.ndarray:
        """Reservation price per product at its market's expected prices (USD/kg)."""
        b = self._book
        b.update_cost_basis()
        shares = self.model.signals.long_memory[self.home_region]
        return b.reservation(np.broadcast_to(shares, (b.n, shares.size)))[self.i]

