"""Magnet makers: plants that turn element oxides into magnets (NdFeB, SmCo) and sell them to OEMs.

A maker buys oxides in its region's exchanges and sells one magnet product there. It is the link that makes
the demand for oxides a *derived* demand: an OEM buys magnets for what a magnet is worth in its motor; a
maker pays for an element what a magnet leaves after the maker's other costs. Rules (``b.x`` =
:class:`~model.params.Behaviour`; ``spec.x`` = :class:`~model.params.MagnetMakerSpec`):

- **Recipe and yield.** A kg of magnet contains the product's ``bill_of_materials`` (oxide kg per kg,
  thrifted as below); making it takes that / ``spec.material_yield`` of each oxide, and the rest is swarf
  (FACTS R1: 25-30 % of output).
- **Recycling.** ``spec.swarf_recovery`` of the elements in swarf comes back as oxide to the maker's stock,
  spread over about ``b.recycling_weeks`` (FACTS R1: swarf recycling is a fifth of China's Dy supply), but
  only while the elements of a kg of swarf are worth more, at the prices the market is used to, than
  ``b.recycling_cost_usd_per_kg``: recycling answers price within months; below that the swarf waits.
- **Production** (make to stock). It plans its expected sales plus the gap to ``b.maker_magnet_cover_weeks`` of
  them in magnet stock closed over ``b.maker_restock_weeks``, within capacity, and makes what its oxide stock
  allows (the scarcest element binds).
- **Its own books.** A plant remembers what it paid for each oxide (contracts and spot, volume-weighted,
  over ``b.long_memory_weeks``) and what its magnets fetched (over ``b.price_memory_weeks``). Costs and
  values come from these, not from its region's spot quotes: under licences most volume moves under contract
  near China's price (FACTS P4), and a spot quote on a few tonnes would otherwise feed back into every
  plant's costs and bids (spot magnet quote -> element bids -> element quote -> magnet cost -> ...).
- **Selling magnets** (as a refiner sells oxide). Its reservation price is its full cost: the oxides of a kg
  of magnet at the prices it is used to paying plus processing, x (1 + ``b.maker_full_cost_markup``).
  It keeps ``b.maker_magnet_cover_weeks`` of sales in stock at that price, less at higher prices
  (``(p / reservation)^-b.seller_stock_elasticity``), more when the magnet supply outlook falls, and never
  sells below its cash cost.
- **Buying oxides** (as a buyer does, with a budget the magnet sets). It wants ``b.maker_target_cover_weeks``
  of its oxide use in stock at the price it expects, ``(p / expected)^-b.buyer_stock_elasticity`` times that
  at other prices (within ``b.buyer_min_cover_weeks`` and ``b.buyer_max_cover_weeks``), more when the supply
  outlook falls. The most it pays for an element is what its magnets fetch (its own sales' memory) less
  processing and the other elements at what it pays for them, per kg of the element:
  Dy and Tb are a small part of a magnet's cost, so their demand is inelastic (FACTS L5).
- **Thrifting** (FACTS L5-L6): when an element's recent price exceeds ``b.thrift_trigger_ratio`` x its long
  memory, or the element ran short, the recipe's content of it falls by ``b.thrift_rate_per_week`` of the
  base a week down to ``min_content_frac``; it recovers at a quarter of that speed up to a ceiling lowered
  by ``b.thrift_irreversible_share`` of each cut.
- **Dy or Tb** (:mod:`model.substitution`): what thrifting leaves of the recipe's coercivity is split between
  Dy and Tb by their price against 2024, moving slowly.
- **Pipeline** (:mod:`model.projects`): a planned plant is a project, decided by its sponsor on its appraisal
  (:func:`model.projects.appraise_magnet_plant`), by a lender or by a policy, then permitted and built as a
  refinery is; a plant that is building at the start comes online on its ``online_date`` (MP's 10X plant,
  FACTS E1/R4). A plant coming online expects to sell ``b.maker_ramp_up_share`` of its capacity (ramp-up) until its own sales say more.
- **Expansion** (brownfield; a supply curve for magnets). A plant reads its sales trend: its sales memory
  against a long one (span ``b.maker_expansion_trend_weeks``), whose gap is the growth of the weeks between
  their spans (an adaptive trend forecast, as the TREND function of system dynamics), and projects its sales
  to when new lines would run (``b.maker_expansion_lead_weeks`` ahead). An operating plant orders
  ``b.maker_expansion_step`` x its capacity of new lines (one order at a time) after
  ``b.maker_expansion_signal_weeks`` weeks running in which

  1. its projected sales are at least ``b.maker_expansion_utilisation`` of its capacity (lines on order
     included), and
  2. its magnets' margin over cash cost (its own sales' memory less its cash cost) pays the capital charge of
     new lines run at that share: ``spec.expansion_capex()`` (USD per kg a year of capacity) x
     (``b.private_cost_of_capital`` + 1 / ``b.project_life_years``) / ``b.maker_expansion_utilisation``.

  What new lines cost is what sets who expands: Chinese makers add lines cheaply to plants and supply chains
  that exist, while an ex-China line costs as a new plant does (MP's 10X: ~US$1B for ~7,000 t/yr, FACTS E1).
  With stationary demand the trend is flat and a plant with spare capacity orders nothing. Without expansion,
  growing demand (FACTS B6, R6) meets a fixed magnet capacity, and the magnet price, not the oxides', takes
  all of the growth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import add_reduce as _sum
from model.arrays import count_nonzero, flatnonzero, where
from model.exchange import (
    Bid,
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
from model.params import MagnetMakerSpec
from model.projects import Pipeline, PipelinePlant
from model.substitution import CoercivitySubstitution, most_paid_per_kg, thrift

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0


def _remember(memory: np.ndarray, usd: np.ndarray, tonnes: np.ndarray, span: float) -> np.ndarray:
    """A price memory moved 1/``span`` of the way to this week's average price (``usd`` / ``tonnes``, in
    USD/kg) where something traded; unchanged where nothing did."""
    return where(tonnes > 1e-12, memory + (usd / KG_PER_T / np.maximum(tonnes, 1e-12) - memory) / span, memory)


class MagnetMakerBook:
    """Array-backed state of every magnet plant, one row each (``MagnetMaker`` agents are views into it)."""

    def __init__(self, model: RareEarthModel, specs: list[MagnetMakerSpec]):
        self.model = model
        w = model.world
        products = model.products
        n, n_p = len(specs), len(products)
        self.n = n
        self.specs = list(specs)
        self.ids = [s.id for s in specs]
        self.country = [s.country for s in specs]
        self.region = [model.region_of_state(s.country) for s in specs]
        self.region_code = np.array([model.regions.index(r) for r in self.region], dtype=int)
        self.makes = np.array([products.index(s.makes) for s in specs], dtype=int)
        bom = [w.product(s.makes) for s in specs]
        self.base_recipe = np.array([[b.bill_of_materials.get(p, 0.0) for p in products] for b in bom],
                                    dtype=float).reshape(n, n_p)
        self.min_recipe = self.base_recipe * np.array([[b.min_content_frac.get(p, 1.0) for p in products]
                                                       for b in bom], dtype=float).reshape(n, n_p)
        self.recipe = self.base_recipe.copy()  # thrifted, then Dy/Tb re-split (model/substitution.py)
        self.thrifted = self.recipe  # the recipe thrifting alone makes
        self._per_kg_key: tuple | None = None  # (recipe, input per kg): see input_per_kg()
        self._need_key: tuple | None = None  # (plan, recipe, need): see need()
        self._uses = np.zeros((n, n_p), dtype=bool)  # input_per_kg() > 0, set with it
        self._bids_for = self._uses  # the oxides of those it bids for (no magnet), set with it
        self._region_fixed: dict[str, tuple] = {}  # region -> its grid and the plants' fixed arrays (orders)
        self._most_paid_key: tuple | None = None  # (input per kg, paid memory, sale memory, most paid)
        self._own_cells: tuple | None = None  # (makes, each plant's own-magnet cell): see by_product()
        self._contract_groups: dict[int, tuple] = {}  # id(rows) -> (rows, plants of each product, products)
        self.ceiling = self.base_recipe.copy()
        self.yield_ = np.array([s.material_yield for s in specs], dtype=float)
        self.recovery = np.array([s.swarf_recovery for s in specs], dtype=float)
        self._swarf_share = ((1.0 - self.yield_) * self.recovery)[:, None]  # recoverable oxide per kg put in
        self.processing_cost = np.array([s.processing_cost_usd_per_kg for s in specs], dtype=float)
        self.nameplate = np.array([s.capacity_t_per_week for s in specs], dtype=float)
        self.pipeline = Pipeline([s.status for s in specs],
                                 [(s.online_date - model.start_date).days // 7 if s.online_date else 0 for s in specs])
        self.status = self.pipeline.status  # the same list: planned, permitting, building, operating, cancelled
        self.capacity = where(np.array([st == "operating" for st in self.status], dtype=bool), self.nameplate, 0.0)
        self.ordered = np.zeros(n)  # t a week of new lines on order (Expansion)
        self.order_left = np.zeros(n, dtype=int)  # weeks until they come online
        self.pressed_weeks = np.zeros(n, dtype=int)  # weeks running with sales pressing on capacity at a margin
        self.rows_of_region = {r: np.flatnonzero(self.region_code == j) for j, r in enumerate(model.regions)}
        self.substitution = CoercivitySubstitution(products, self.base_recipe, self.per_plant(model.initial_prices),
                                                   model.behaviour)
        self.rows_of_country = {c: np.flatnonzero(np.array(self.country) == c) for c in sorted(set(self.country))}
        self.country_code = np.array([list(self.rows_of_country).index(c) for c in self.country], dtype=int)
        self.sum_by_country = GroupSum(self.country_code, len(self.rows_of_country))  # rows added by country
        self.at_region = {r: row_selector(rows) for r, rows in self.rows_of_region.items()}
        self.sum_by_region = GroupSum(self.region_code, len(model.regions))  # rows added by region, in order
        self.magnet_mask = np.array([w.product(p).stage == "magnet" for p in products], dtype=bool)
        # steady start: each plant runs at the share of capacity that the world's demand for its magnet fills
        b = model.behaviour
        demand = model.buyer_book.need(model.demand_multiplier).sum(axis=0)
        cap_by_product = np.zeros(n_p)
        np.add.at(cap_by_product, self.makes, self.capacity)
        fill = where(cap_by_product > 0, np.minimum(demand / np.maximum(cap_by_product, 1e-12), 1.0), 0.0)
        self.sales_ema = self.capacity * fill[self.makes]
        self.stock = self.sales_ema * b.maker_magnet_cover_weeks  # magnets, t
        self.sales_long = self.sales_ema.copy()  # the long sales memory the sales trend is read against (Expansion)
        capex = np.array([np.nan if (c := s.expansion_capex()) is None else c for s in specs], dtype=float)
        # the capital charge of new lines per kg they make (Expansion; nan: the plant does not expand)
        self.expansion_charge = capex * (b.private_cost_of_capital + 1.0 / b.project_life_years) / b.maker_expansion_utilisation
        # oxides, t: a plant makes (stage 5) before it buys (stage 6), so it enters a week holding its cover
        # plus the week's use it bought last week (a buyer, who consumes after buying, holds its cover)
        self.inventory = self.use_per_week(self.sales_ema) * (b.maker_target_cover_weeks + 1.0)
        # swarf on its way back at the steady flow (FACTS R1: recycling is a standing flow, not a start-up):
        # a week adds its inflow and returns 1 / recycling_weeks of what waits, so (recycling_weeks - 1) weeks
        # of inflow waiting at the start return exactly the inflow each week
        inflow = self.use_per_week(self.sales_ema) * ((1.0 - self.yield_) * self.recovery)[:, None]
        self.swarf = inflow * max(b.recycling_weeks - 1.0, 0.0)  # recoverable oxide waiting in swarf, t
        self.made = np.zeros(n)
        self.planned_out = self.sales_ema.copy()
        self.used = np.zeros((n, n_p))
        self.recycled = np.zeros((n, n_p))
        self.bought = np.zeros((n, n_p))
        self.paid = np.zeros((n, n_p))
        self.contract_paid = np.zeros((n, n_p))  # USD paid under term contracts this week
        self.sold = np.zeros(n)
        self.contracted = np.zeros(n)  # magnets delivered under term contracts this week (t)
        self.revenue = np.zeros(n)
        self.short_of = np.zeros((n, n_p), dtype=bool)
        self.oxide_short = np.zeros((n, n_p))  # oxide the week's plan needed beyond the plant's stock (t)
        self.reserve_price = np.zeros(n)
        self.wtp = np.zeros((n, n_p))
        self.contract_got = np.zeros((n, n_p))  # oxides received under term contracts this week (t)
        self.contract_revenue = np.zeros(n)  # USD from magnets delivered under term contracts this week
        # what each plant pays for oxides (contracts and spot, volume-weighted; long memory) and what its
        # magnets fetch (contracts and spot; price memory): its own books, not the region's spot quotes
        self.paid_memory = self.per_plant(model.signals.long_memory)
        self.sale_memory = self.per_plant(model.signals.memory)[np.arange(n), self.makes]

    # -- recipe and costs -------------------------------------------------------------------------------
    def input_per_kg(self) -> np.ndarray:
        """Oxide (kg) each plant puts into a kg of finished magnet (plants x products; read-only).

        Asked for many times a week; kept until the recipe array is replaced (it is only ever replaced,
        never written in place; the yields are fixed)."""
        key = self._per_kg_key
        if key is not None and key[0] is self.recipe:
            return key[1]
        per_kg = self.recipe / self.yield_[:, None]
        per_kg.flags.writeable = False
        self._per_kg_key = (self.recipe, per_kg)
        self._uses = per_kg > 0  # the oxides each plant's recipe holds now (an oxide thrifted to 0 drops out)
        self._bids_for = self._uses & ~self.magnet_mask  # what it bids for: those, never a magnet
        return per_kg

    def use_per_week(self, output: np.ndarray) -> np.ndarray:
        """Oxide each plant uses to make ``output`` t of magnets (plants x products, t)."""
        return output[:, None] * self.input_per_kg()

    def need(self) -> np.ndarray:
        """Oxide each plant needs this week for its planned output (plants x products, t; read-only).

        Asked for by the exchanges, the contracts and the states several times a week; kept until the plan
        or the recipe is replaced (as :meth:`input_per_kg`)."""
        key = self._need_key
        if key is not None and key[0] is self.planned_out and key[1] is self.recipe:
            return key[2]
        need = self.use_per_week(self.planned_out)
        need.flags.writeable = False
        self._need_key = (self.planned_out, self.recipe, need)
        return need

    def per_plant(self, by_region: dict[str, np.ndarray]) -> np.ndarray:
        """A per-region price signal (e.g. ``signals.recent``) as each plant's row (plants x products)."""
        return np.array([by_region[r] for r in self.model.regions]).reshape(-1, len(self.model.products)).take(
            self.region_code, axis=0)

    def by_product(self, values: np.ndarray) -> np.ndarray:
        """A per-plant quantity of each plant's own magnet as a plants x products array (0 elsewhere)."""
        n_p = len(self.model.products)
        cells = self._own_cells
        if cells is None or cells[0] is not self.makes:  # each plant's (row, its magnet) as a flat index, once
            cells = self._own_cells = (self.makes, np.arange(self.n) * n_p + self.makes)
        out = np.zeros((self.n, n_p))
        out.put(cells[1], values)  # out[np.arange(n), makes] = values, without the two-array fancy index
        return out

    def usual_prices(self) -> np.ndarray:
        """The prices each plant is used to paying for its oxides (plants x products): its own volume-weighted
        price, contracts and spot together, over ``behaviour.long_memory_weeks``. Under licences most of a
        plant's oxide comes under contract near China's price and only its last tonnes at the thin spot
        quote, so its costs follow what it pays, not the quote."""
        return self.paid_memory

    def cash_cost(self) -> np.ndarray:
        """Cash cost of a kg of magnet at the prices the market is used to (USD/kg)."""
        return _sum(self.input_per_kg() * self.usual_prices(), axis=1) + self.processing_cost

    def most_paid(self) -> np.ndarray:
        """The most each plant pays for each oxide (plants x products; 0 for an oxide it does not use): what its
        magnets fetch less processing and the other oxides at what it pays for them, per kg of the oxide.

        It reads only the plant's own books and recipe, not its region's market, so it is worked out once for
        every plant and kept until the recipe or a price memory is replaced (they are only ever replaced)
        instead of once per region; each row the same arithmetic on the same numbers (the same bits)."""
        per_kg = self.input_per_kg()
        key = self._most_paid_key
        if key is not None and key[0] is per_kg and key[1] is self.paid_memory and key[2] is self.sale_memory:
            return key[3]
        wtp = most_paid_per_kg(per_kg, self.paid_memory, self.sale_memory[:, None] - self.processing_cost[:, None])
        wtp.flags.writeable = False
        self._most_paid_key = (per_kg, self.paid_memory, self.sale_memory, wtp)
        return wtp

    def need_of(self, rows: np.ndarray) -> np.ndarray:
        return self.need().take(rows, axis=0).sum(axis=0)

    # -- stage 5: make magnets ------------------------------------------------------------------------------
    def plan(self) -> None:
        b = self.model.behaviour
        target = b.maker_magnet_cover_weeks * self.sales_ema
        self.planned_out = np.minimum(np.maximum(self.sales_ema + (target - self.stock) / b.maker_restock_weeks, 0.0),
                                      self.capacity)

    def make(self) -> np.ndarray:
        """Make this week's magnets from oxide stock and recycle swarf; returns magnets made by plant (t)."""
        b = self.model.behaviour
        self.plan()
        per_kg = self.input_per_kg()
        has = self._uses
        room = np.divide(self.inventory, per_kg, out=np.full(per_kg.shape, np.inf), where=has).min(axis=1)
        made = np.minimum(self.planned_out, where(np.isfinite(room), room, 0.0))
        made = np.maximum(made, 0.0)
        used = made[:, None] * per_kg
        want = self.planned_out[:, None] * per_kg
        self.short_of = has & (self.inventory < want * (1 - 1e-9))
        # what the plan needed of each oxide beyond the stock (t): its users' shortage, read by the stock agencies
        self.oxide_short = where(self.short_of, want - self.inventory, 0.0)
        self.inventory = np.maximum(self.inventory - used, 0.0)
        self.used = used
        # a kg in finished magnets for every 1 / yield kg put in: the rest is swarf, recovery of it recyclable
        self.swarf = self.swarf + used * self._swarf_share
        self.stock = self.stock + made
        self.made = made
        # recycling: the swarf's elements return while they are worth more than recycling them costs
        usual = self.usual_prices()
        tot = _sum(self.swarf, axis=1)
        worth = where(tot > 1e-12, _sum(self.swarf * usual, axis=1) / np.maximum(tot, 1e-12), 0.0)
        go = (worth >= b.recycling_cost_usd_per_kg)[:, None]
        back = where(go, self.swarf / b.recycling_weeks, 0.0)
        self.swarf = self.swarf - back
        self.inventory = self.inventory + back
        self.recycled = back
        return made


    # -- a participant of the exchange ------------------------------------------------------------------------
    def receive_contract(self, rows: np.ndarray, got: np.ndarray, price: np.ndarray) -> None:
        """Term-contract deliveries of oxides (rows x products, t) at ``price`` (USD/kg), before the spot auction."""
        self.inventory[rows] = self.inventory.take(rows, axis=0) + got
        self.contract_got[rows] = self.contract_got.take(rows, axis=0) + got
        self.contract_paid[rows] = self.contract_paid.take(rows, axis=0) + got * price * KG_PER_T

    def begin_week(self) -> None:
        self.contract_paid = np.zeros(self.contract_paid.shape)
        self.contract_got = np.zeros(self.contract_got.shape)
        self.contract_revenue = np.zeros(self.n)
        self.bought = np.zeros(self.bought.shape)
        self.paid = np.zeros(self.paid.shape)
        self.sold = np.zeros(self.n)
        self.contracted = np.zeros(self.n)
        self.revenue = np.zeros(self.n)

    def full_cost(self) -> np.ndarray:
        """Each plant's reservation price for its magnet at the market's present memories: its full cost,
        cash cost x (1 + ``maker_full_cost_markup``) (USD/kg)."""
        return self.cash_cost() * (1.0 + self.model.behaviour.maker_full_cost_markup)

    def prepare_week(self) -> None:
        """This week's reservation prices, as offered in the exchanges."""
        self.reserve_price = self.full_cost()

    def orders(self, region: str, grid: np.ndarray) -> list[OrderBlock]:
        rows = self.rows_of_region[region]
        n_p = grid.shape[0]
        if not rows.size:
            return []
        m = self.model
        b = m.behaviour
        sig = m.signals
        at = self.at_region[region]
        k = rows.size
        fixed = self._region_fixed.get(region)
        if fixed is None or fixed[0] is not grid:  # what does not change from week to week, worked out once
            mk = take_rows(self.makes, at)
            # the grid, each plant's magnet, the plants, each plant's cover target (for Bid), and each plant's
            # cell of its own magnet in a (products, plants) fill (for settle)
            fixed = (grid, mk, np.arange(k), np.full(k, b.maker_target_cover_weeks), mk * k + np.arange(k))
            self._region_fixed[region] = fixed
        _, mk, _, target, cell = fixed
        # -- oxides: derived demand
        wtp = take_rows(self.most_paid(), at)
        has = take_rows(self._bids_for, at)
        self.wtp[at] = wtp
        caution = np.maximum(1.0 + b.buyer_outlook_response * (1.0 - sig.outlook(region)), 0.25)
        scale = caution * np.maximum(sig.recent[region], 1e-12) ** b.buyer_stock_elasticity
        # max(clip(target x cover, min, max) x need + need - inventory, 0), and 0 above the most it pays. A plant
        # bids only for the oxides in its recipe (``has``: two or three of the world's products); a magnet is
        # never bid for. The inventory is copied: the exchange may read it after settling.
        buy = Bid(grid, target, scale, m.exchange.buyer_pow[region], take_rows(self.need(), at).T,
                  take_rows(self.inventory, at).T.copy(), wtp.T, has.T, b.buyer_min_cover_weeks, b.buyer_max_cover_weeks)
        # -- magnets: sold like oxide, from stock, anchored in full cost: the stock kept at price p is
        # keep x (p / reservation)^-e = (keep x reservation^e) x p^-e, the grid part (p^-e) the exchange's, so
        # the offers are a schedule form the kernel works out only at the grid points it reads (with the grid
        # 1.4 % apart, 667 points, building every plant's whole schedule cost ~5 % of a magnet-world week)
        res = take_rows(self.reserve_price, at)
        floor = res / (1.0 + b.maker_full_cost_markup)
        outlook = sig.outlook(region).take(mk)
        keep = b.maker_magnet_cover_weeks * take_rows(self.sales_ema, at) * np.maximum(
            1.0 + b.seller_outlook_response * (1.0 - outlook), 0.25)
        priced = res > 1e-12  # a plant without a reservation price keeps all it holds (offers nothing)
        # each plant offers its own magnet: its cell of (products, plants) arrays, through its flat index
        scale, stock, floor_at = np.zeros((n_p, k)), np.zeros((n_p, k)), np.zeros((n_p, k))
        scale.put(cell, keep * where(priced, res, 1.0) ** b.seller_stock_elasticity)
        stock.put(cell, where(priced, take_rows(self.stock, at), 0.0))
        floor_at.put(cell, floor)
        return [OrderBlock("makers_buy", Side.BUY, form=buy),
                OrderBlock("makers_sell", Side.SELL, form=Offer(grid, scale, m.exchange.seller_pow[region], stock,
                                                                floor_at))]

    def settle(self, region: str, clearing: RegionClearing) -> None:
        rows = self.rows_of_region[region]
        if not rows.size:
            return
        at = self.at_region[region]
        fixed = self._region_fixed.get(region)  # set by orders()
        kernel = settle_kernel()
        if kernel is not None and fixed is not None:  # the lines below in two calls
            rows = row_index(at)
            kernel.settle_bought(rows, clearing.fills["makers_buy"], clearing.paid, KG_PER_T, self.bought, self.paid,
                                 self.inventory)
            kernel.settle_own(rows, fixed[1], clearing.fills["makers_sell"], clearing.paid, KG_PER_T, self.stock,
                              self.sold, self.revenue)
            return
        got = clearing.fills["makers_buy"].T
        self.bought[at] = got
        self.paid[at] = got * clearing.paid * KG_PER_T
        self.inventory[at] = take_rows(self.inventory, at) + got
        sold_all = clearing.fills["makers_sell"]  # (products, k)
        if fixed is not None:  # each plant's own magnet: sold_all[mk, plants], through the flat index of its cell
            mk = fixed[1]
            sold = np.ascontiguousarray(sold_all).take(fixed[4])
        else:
            mk = self.makes[at]
            sold = sold_all[mk, np.arange(rows.size)]
        self.stock[at] = np.maximum(take_rows(self.stock, at) - sold, 0.0)
        self.sold[at] = sold
        self.revenue[at] = sold * clearing.paid.take(mk) * KG_PER_T

    def deliver_contracts(self, rows: np.ndarray, want: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The plants of ``rows`` deliver ``want`` (t per product; each plant its own magnet) under term
        contracts from this week's output at ``price`` (USD/kg), pro rata; returns what they delivered (t per
        product).

        Each product's plants share its contracts pro rata; a plant makes one product, so the shares are
        worked out product by product (each product's output summed over its plants as on its own) and the
        plants' books are then moved at once (a plant whose product is not delivered takes 0)."""
        out = np.zeros(want.size)
        groups = self._contract_groups.get(id(rows))
        if groups is None or groups[0] is not rows:  # the plants of each product among rows, worked out once
            mk = self.makes.take(rows)
            groups = (rows, [(k, np.flatnonzero(mk == k)) for k in np.unique(mk).tolist()], mk)
            self._contract_groups[id(rows)] = groups
        _, by_product, mk = groups
        made = np.minimum(self.made.take(rows), self.stock.take(rows))  # this week's output; stock stays for spot
        share = np.zeros(rows.size)  # the share of its output each plant delivers
        want_l = want.tolist()
        for k, at in by_product:
            if not want_l[k] > 0:
                continue
            held = _sum(made.take(at), axis=None)
            give = min(want_l[k], float(held))
            if give <= 0:
                continue
            share[at] = give / held
            out[k] = give
        if not count_nonzero(out):
            return out
        take = made * share
        self.stock[rows] = np.maximum(self.stock.take(rows) - take, 0.0)
        self.contracted[rows] = self.contracted.take(rows) + take
        self.contract_revenue[rows] = self.contract_revenue.take(rows) + take * price.take(mk) * KG_PER_T
        return out

    def end_exchange_week(self) -> None:
        b = self.model.behaviour
        a = 1.0 / b.sales_memory_weeks
        delivered = self.sold + self.contracted
        self.sales_ema = self.sales_ema + a * (delivered - self.sales_ema)
        self.sales_long = self.sales_long + (delivered - self.sales_long) / b.maker_expansion_trend_weeks
        # the books: average prices of this week's purchases and sales move the plants' price memories
        self.paid_memory = _remember(self.paid_memory, self.paid + self.contract_paid, self.bought + self.contract_got,
                                     b.long_memory_weeks)
        self.sale_memory = _remember(self.sale_memory, self.revenue + self.contract_revenue, delivered,
                                     b.price_memory_weeks)

    # -- stage 7-8: thrifting and the pipeline ---------------------------------------------------------------
    def adapt(self) -> None:
        b = self.model.behaviour
        sig = self.model.signals
        recent = self.per_plant(sig.recent)  # the market's quotes: a spot squeeze prompts redesigns
        long = self.per_plant(sig.long_memory)
        self.thrifted, self.ceiling = thrift(self.thrifted, self.base_recipe, self.min_recipe, self.ceiling,
                                             recent, long, self.short_of, b)
        self.recipe = self.substitution.step(self.thrifted, recent)

    def advance_pipeline(self) -> list[int]:
        """Count permitting and construction down (:class:`model.projects.Pipeline`); returns the plants that
        come online this week."""
        if not self.pipeline.any_live():
            return []
        online = []
        for i in self.pipeline.advance():
            self.capacity = self.capacity.copy()  # replaced, never written in place (the observer keys on it)
            self.capacity[i] = self.nameplate[i]
            # ramp-up: with no sales of its own yet it would plan nothing and never make a magnet; it plans a
            # share of capacity, and its sales memory then follows what it sells
            self.sales_ema[i] = self.sales_long[i] = self.model.behaviour.maker_ramp_up_share * self.capacity[i]
            online.append(i)
        return online

    def projected_sales(self) -> np.ndarray:
        """Each plant's sales projected to when lines ordered now would run (Expansion): its sales memory grown at
        the trend its long memory shows (t a week). Exponential memories of spans S and L lag a steady growth by
        about S and L weeks, so their log ratio / (L - S) is the weekly growth, and the sales memory is S weeks
        behind today."""
        b = self.model.behaviour
        short, long = b.sales_memory_weeks, b.maker_expansion_trend_weeks
        ok = (self.sales_ema > 1e-9) & (self.sales_long > 1e-9)
        growth = where(ok, np.log(where(ok, self.sales_ema, 1.0) / where(ok, self.sales_long, 1.0)), 0.0) / (long - short)
        return self.sales_ema * np.exp(growth * (b.maker_expansion_lead_weeks + short))

    def expand(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Brownfield expansion (module docstring, Expansion): lines ordered earlier that come online this week,
        then this week's new orders; returns (online, ordered), each a list of (plant row, t of magnets a week)."""
        b = self.model.behaviour
        online: list[tuple[int, float]] = []
        if self.order_left.any():
            self.order_left = where(self.order_left > 0, self.order_left - 1, 0)
            done = flatnonzero((self.order_left == 0) & (self.ordered > 0))
            if done.size:
                self.capacity = self.capacity.copy()  # replaced, never written in place (the observer keys on it)
            for i in done.tolist():
                add = float(self.ordered[i])
                self.capacity[i] += add
                self.nameplate[i] += add
                self.ordered[i] = 0.0
                online.append((i, add))
        if b.maker_expansion_step <= 0:
            return online, []
        operating = self.capacity > 0
        charge = self.expansion_charge  # USD per kg made on new lines (nan: it does not expand)
        pays = (self.sale_memory - self.cash_cost()) >= charge
        pressed = operating & pays & (self.projected_sales() >= b.maker_expansion_utilisation * (self.capacity + self.ordered))
        self.pressed_weeks = where(pressed, self.pressed_weeks + 1, 0)
        due = flatnonzero((self.pressed_weeks >= b.maker_expansion_signal_weeks) & (self.ordered <= 0))
        ordered: list[tuple[int, float]] = []
        for i in due.tolist():
            add = float(b.maker_expansion_step * self.capacity[i])
            self.ordered[i] = add
            self.order_left[i] = b.maker_expansion_lead_weeks
            self.pressed_weeks[i] = 0
            ordered.append((i, add))
        return online, ordered


class MagnetMaker(PipelinePlant, mesa.Agent):
    """One magnet plant; its state lives in the model's :class:`MagnetMakerBook` at row ``i`` (its project
    phases: :class:`model.projects.PipelinePlant`)."""

    def __init__(self, model: RareEarthModel, book: MagnetMakerBook, i: int):
        super().__init__(model)
        self._book = book
        self.i = i
        self.spec = book.specs[i]
        self.mid = self.spec.id
        self.country = self.spec.country
        self.region = book.region[i]
        self.makes = self.spec.makes

    @property
    def status(self) -> str:
        return self._book.status[self.i]

    @property
    def stock(self) -> float:
        """Magnets in stock, t."""
        return float(self._book.stock[self.i])

    @property
    def inventory(self) -> np.ndarray:
        """Oxides in stock, t per product."""
        return self._book.inventory[self.i].copy()

    @property
    def recipe(self) -> np.ndarray:
        """Oxide (kg) in a kg of its magnet now, after thrifting."""
        return self._book.recipe[self.i].copy()

    @property
    def made(self) -> float:
        return float(self._book.made[self.i])

    @property
    def sold(self) -> float:
        return float(self._book.sold[self.i])

    def cash_cost(self) -> float:
        return float(self._book.cash_cost()[self.i])
