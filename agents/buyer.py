"""Buyers: magnet makers and OEMs by region and segment.

Each buyer turns its magnet demand (t/yr) into weekly element needs with its current content per kg of
magnet, holds oxide stock, and buys in its region's exchange. Rules (``b.x`` = :class:`~model.params.Behaviour`):

- **One budget per magnet.** The elements of a kg of magnet may together cost at most
  ``b.wtp_share_of_magnet_value`` x the magnet's value. The most a buyer pays for one element is what that
  budget leaves after the other elements at the prices it is used to paying (its market's two-year memory),
  per kg of the element. Dy and Tb are a small share of a motor's cost, so their caps are high and short-run
  demand inelastic (FACTS L5); when the usual cost of the other elements rises, an element's cap falls.
- **Stock it wants.** At the price it expects (an average of its market's recent prices), it wants
  ``target_cover_weeks`` of need in stock; at other prices ``(price / expected)^-b.buyer_stock_elasticity``
  times that, never below ``b.buyer_min_cover_weeks`` (its safety stock, defended at any price within
  budget) nor above ``b.buyer_max_cover_weeks``. It bids for this week's need plus the gap to that stock.
  When the supply outlook of its market falls it wants more cover (x (1 + ``b.buyer_outlook_response`` x
  (1 - outlook))): it buys ahead when less is coming (precautionary stock).
- **Consumption and shortage.** It uses its need from stock; what is missing is shortage (production not
  made, seed F17).
- **Thrifting** (FACTS L5-L6). When its market's recent price stays above ``b.thrift_trigger_ratio`` x what
  it is used to paying (long memory), or it runs short, it cuts that element's content by
  ``b.thrift_rate_per_week`` of the base each week, down to ``min_content_frac``. When prices fall back below
  what it is used to, content recovers at a quarter of that speed, but only up to a ceiling lowered by
  ``b.thrift_irreversible_share`` of each cut (redesigned motors stay redesigned).
- **Dy or Tb** (:mod:`model.substitution`): what thrifting leaves of a recipe's coercivity is split between Dy
  and Tb by their price against 2024, moving slowly; a buyer that holds the recipe buys the split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import count_nonzero
from model.exchange import (
    Bid,
    GroupSum,
    OrderBlock,
    RegionClearing,
    Side,
    row_index,
    row_selector,
    settle_kernel,
    take_rows,
)
from model.params import BuyerSpec
from model.substitution import CoercivitySubstitution, most_paid_per_kg, thrift

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0


class BuyerBook:
    """Array-backed state of every buyer, one row each (``Buyer`` agents are views into it)."""

    def __init__(self, model: RareEarthModel, specs: list[BuyerSpec]):
        self.model = model
        products = model.products
        n, n_p = len(specs), len(products)
        self.n = n
        self.specs = list(specs)
        self.ids = [s.id for s in specs]
        self.state_id = [s.state for s in specs]
        self.region = [model.region_of_state(s.state) for s in specs]
        self.region_code = np.array([model.regions.index(r) for r in self.region], dtype=int)
        self.base_content = np.array([[s.content_kg_per_kg.get(p, 0.0) for p in products] for s in specs],
                                     dtype=float).reshape(n, n_p)
        self.min_content = self.base_content * np.array(
            [[s.min_content_frac.get(p, 1.0) for p in products] for s in specs], dtype=float).reshape(n, n_p)
        self.content = self.base_content.copy()  # the recipe it buys for: thrifted, then Dy/Tb re-split
        self.thrifted = self.content  # the recipe thrifting alone makes (model/substitution.py re-splits it)
        self._need_key: tuple | None = None  # (multiplier, content, magnets, need): see need()
        self._wtp_key: tuple | None = None  # (content, each region's long memory, most paid): see orders()
        self.ceiling = self.base_content.copy()
        self.magnet_t_per_week = np.array([s.magnet_t_per_year / 52.0 for s in specs], dtype=float)
        # each buyer's use of each product at the start, t/week (buyers x products), a magnet's oxides counted
        # at its bill of materials (before thrifting): what demand_index weighs a product's demand by
        self.element_use = (self.magnet_t_per_week[:, None] * self.base_content) @ model.element_content
        self.target_cover = np.array([s.target_cover_weeks for s in specs], dtype=float)
        self.budget = np.array([model.behaviour.wtp_share_of_magnet_value * s.value_usd_per_kg_magnet
                                for s in specs], dtype=float)
        self.inventory = self.need(model.demand_multiplier) * self.target_cover[:, None]
        self.bought = np.zeros((n, n_p))
        self.paid = np.zeros((n, n_p))
        self.contract_paid = np.zeros((n, n_p))  # USD paid under term contracts this week
        self.consumed = np.zeros((n, n_p))
        self.needed = np.zeros((n, n_p))
        self.shortage = np.zeros((n, n_p))
        self.wtp = np.zeros((n, n_p))
        self.rows_of_region = {r: np.flatnonzero(self.region_code == j) for j, r in enumerate(model.regions)}
        self.substitution = CoercivitySubstitution(
            products, self.base_content, np.array([model.initial_prices[r] for r in self.region]).reshape(n, n_p),
            model.behaviour)
        states = sorted(set(self.state_id))
        self.states = states
        self.state_code = np.array([states.index(s) for s in self.state_id], dtype=int)
        self.rows_of_state = {s: np.flatnonzero(self.state_code == j) for j, s in enumerate(states)}
        self._sum_by = {"region": GroupSum(self.region_code, len(model.regions)),
                        "state": GroupSum(self.state_code, len(states))}  # totals()
        # per region, its rows (a slice when consecutive) and their target cover, fixed at construction
        self.target_cover.flags.writeable = False
        self._region_fixed = {r: (row_selector(rows), self.target_cover[rows])
                              for r, rows in self.rows_of_region.items()}

    # -- needs -------------------------------------------------------------------------------------------
    def need(self, demand_multiplier: float | np.ndarray) -> np.ndarray:
        """Element oxide needed this week by every buyer (buyers x products), t (read-only).

        ``demand_multiplier`` is the model's: one number for every buyer, or one per buyer row (a demand
        path, model/demand.py). Asked for many times a week; kept until the multiplier, the content array or
        the magnet array is replaced (they are only ever replaced, never written in place)."""
        key = self._need_key
        if (key is not None and key[1] is self.content and key[2] is self.magnet_t_per_week
                and (key[0] is demand_multiplier or (isinstance(demand_multiplier, float)
                                                     and isinstance(key[0], float) and key[0] == demand_multiplier))):
            return key[3]
        need = (self.magnet_t_per_week * demand_multiplier)[:, None] * self.content
        need.flags.writeable = False
        self._need_key = (demand_multiplier, self.content, self.magnet_t_per_week, need)
        return need

    def demand_index(self, demand_multiplier: float | np.ndarray, product: int | None = None) -> float:
        """Demand relative to the start (before thrifting): the market a planner sees growing. Exactly 1.0
        while demand is stationary. All buyers together, weighted by their magnet tonnage; or, with
        ``product`` (an oxide's index), weighted by each buyer's use of that oxide at the start, counted
        through the bill of materials of the magnets it buys (``element_use``): China's NdPr quota plans
        for the demand for NdPr, not for the catalysts' La and Ce that a magnet world's buyers also use."""
        if np.ndim(demand_multiplier) == 0:
            return float(demand_multiplier)
        weight = self.magnet_t_per_week if product is None else self.element_use[:, product]
        total = weight.sum()
        return float(demand_multiplier @ weight / total) if total > 0 else 1.0

    def need_of_state(self, state_id: str, demand_multiplier: float | np.ndarray) -> np.ndarray:
        rows = self.rows_of_state.get(state_id)
        if rows is None or not rows.size:
            return np.zeros(self.content.shape[1])
        return self.need(demand_multiplier).take(rows, axis=0).sum(axis=0)

    def need_of_region(self, region: str, demand_multiplier: float | np.ndarray) -> np.ndarray:
        rows = self.rows_of_region[region]
        return self.need(demand_multiplier).take(rows, axis=0).sum(axis=0)

    def totals(self, values: np.ndarray, by: str) -> np.ndarray:
        """Sum of a per-buyer array by ``"region"`` (rows in the model's region order) or ``"state"``
        (rows in :attr:`states` order)."""
        return self._sum_by["region" if by == "region" else "state"](values)

    def willingness_to_pay(self, rows: np.ndarray | slice, usual: np.ndarray) -> np.ndarray:
        """Most each buyer of ``rows`` (indices or a slice) pays per kg of each element: the magnet budget less
        what the other elements of the magnet usually cost (``usual``: the prices it is used to paying)."""
        return most_paid_per_kg(take_rows(self.content, rows), usual, take_rows(self.budget, rows)[:, None])

    def _most_paid(self, region: str) -> np.ndarray:
        """:meth:`willingness_to_pay` of every buyer at the prices its region's market is used to paying (its
        long memory), read for ``region``'s buyers (read-only).

        Worked out for every buyer at the first region's orders and kept while the content and ``region``'s
        long memory are the ones it was worked out from (they are only ever replaced; a region's clearing
        replaces its own memory, never another's): each row the same arithmetic on the same numbers as
        region by region (the same bits)."""
        sig = self.model.signals
        key = self._wtp_key
        if key is None or key[0] is not self.content or key[1][region] is not sig.long_memory[region]:
            usual = {r: sig.long_memory[r] for r in self.model.regions}
            wtp = self.willingness_to_pay(slice(None), np.array(list(usual.values())).take(self.region_code, axis=0))
            wtp.flags.writeable = False
            key = self._wtp_key = (self.content, usual, wtp)
        return key[2]

    # -- buying (a participant of the exchange) --------------------------------------------------------------
    def orders(self, region: str, grid: np.ndarray) -> list[OrderBlock]:
        at, target_cover = self._region_fixed[region]
        b = self.model.behaviour
        sig = self.model.signals
        expected = sig.recent[region]
        need = take_rows(self.need(self.model.demand_multiplier), at)
        wtp = take_rows(self._most_paid(region), at)
        self.wtp[at] = wtp
        caution = np.maximum(1.0 + b.buyer_outlook_response * (1.0 - sig.outlook(region)), 0.25)
        # cover wanted at price p: target x caution x (p / expected)^-e = target x scale x p^-e, the grid part
        # (p^-e) the exchange's
        scale = caution * np.maximum(expected, 1e-12) ** b.buyer_stock_elasticity
        # max(clip(target x scale x p^-e, min, max) x need + need - inventory, 0), and 0 above the most it pays
        # (the inventory copied: the exchange may read it after settling)
        return [OrderBlock("buyers", Side.BUY, form=Bid(grid, target_cover, scale, self.model.exchange.buyer_pow[region],
                                                      need.T, take_rows(self.inventory, at).T.copy(), wtp.T, None,
                                                      b.buyer_min_cover_weeks, b.buyer_max_cover_weeks))]

    def settle(self, region: str, clearing: RegionClearing) -> None:
        at = self._region_fixed[region][0]
        kernel = settle_kernel()
        if kernel is not None:  # the lines below in one call
            kernel.settle_bought(row_index(at), clearing.fills["buyers"], clearing.paid, KG_PER_T, self.bought,
                                 self.paid, self.inventory)
            return
        got = clearing.fills["buyers"].T
        self.bought[at] = got
        self.paid[at] = got * clearing.paid * KG_PER_T
        self.inventory[at] = take_rows(self.inventory, at) + got

    # -- consumption -----------------------------------------------------------------------------------------
    def consume(self, demand_multiplier: float | np.ndarray) -> None:
        b = self.model.behaviour
        need = self.need(demand_multiplier)
        self.needed = need  # this week's need, before thrifting moves content
        used = np.minimum(need, self.inventory)
        self.inventory = self.inventory - used
        self.consumed = used
        self.shortage = need - used
        sig = self.model.signals
        recent = np.array([sig.recent[r] for r in self.model.regions]).take(self.region_code, axis=0)
        long = np.array([sig.long_memory[r] for r in self.model.regions]).take(self.region_code, axis=0)
        short = self.shortage > 0.05 * need
        self.thrifted, self.ceiling = thrift(self.thrifted, self.base_content, self.min_content, self.ceiling,
                                             recent, long, short, b)
        content = self.substitution.step(self.thrifted, recent)
        # a week that leaves every recipe as it was, bit for bit (most weeks of a calm run: no price above its
        # trigger, nothing short, every recipe at its ceiling), keeps the array, so that what is kept while it
        # stands (need, the states' needs and stock bases, the most paid) is not worked out again from the same
        # numbers
        if content.tobytes() != self.content.tobytes():
            self.content = content

    def receive_contract(self, rows: np.ndarray, got: np.ndarray, price: np.ndarray) -> None:
        """Term-contract deliveries (rows x products, t) at ``price`` (USD/kg), before the spot auction."""
        self.inventory[rows] = self.inventory.take(rows, axis=0) + got
        self.contract_paid[rows] = self.contract_paid.take(rows, axis=0) + got * price * KG_PER_T

    def begin_week(self) -> None:
        if count_nonzero(self.contract_paid):
            self.contract_paid = np.zeros(self.contract_paid.shape)
        self.bought = np.zeros(self.bought.shape)
        self.paid = np.zeros(self.paid.shape)


class Buyer(mesa.Agent):
    """One buyer; its state lives in the model's :class:`BuyerBook` at row ``i``."""

    def __init__(self, model: RareEarthModel, book: BuyerBook, i: int):
        super().__init__(model)
        self._book = book
        self.i = i
        self.spec = book.specs[i]
        self.bid_id = self.spec.id
        self.state_id = self.spec.state
        self.segment = self.spec.segment
        self.region = book.region[i]

    def _row(self, name: str) -> np.ndarray:
        return getattr(self._book, name)[self.i].copy()

    @property
    def inventory(self) -> np.ndarray:
        return self._row("inventory")

    @property
    def content(self) -> np.ndarray:
        return self._row("content")

    @property
    def base_content(self) -> np.ndarray:
        return self._row("base_content")

    @property
    def min_content(self) -> np.ndarray:
        return self._row("min_content")

    @property
    def bought(self) -> np.ndarray:
        return self._row("bought")

    @property
    def consumed(self) -> np.ndarray:
        return self._row("consumed")

    @property
    def shortage(self) -> np.ndarray:
        return self._row("shortage")

    @property
    def wtp(self) -> np.ndarray:
        return self._row("wtp")

    def need(self) -> np.ndarray:
        """Element oxide needed this week, t."""
        return self._book.need(self.model.demand_multiplier)[self.i]

    @property
    def is_china(self) -> bool:
        return self.state_id == "CN"
