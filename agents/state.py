"""States: policy makers, stockpile agencies and project sponsors.

A state owns its policy instruments (policies in force name it as the acting state), a stockpile per
oxide, and budgets. Each week (stage 2) it:

- lets every active policy it owns act (the model asks each policy; a state knows none by name);
- **selects projects** it sponsors from the pipeline by a documented rule: a planned plant starts
  building when its expected annual margin covers its capital charge (plants marked
  ``needs_policy_support`` wait for a financing policy instead). The margin is the plant's netback
  on the richest ore it can reach over open routes, at the prices the state remembers, of which the plant
  keeps ``1 - 0.45`` (ore costs the rest, seed F14); the capital charge is capex x (cost of capital +
  1/15 yr). The private cost of capital is 15 %; a financing policy lowers it for the projects it funds;
- runs its **stockpile agency** when a stockpile policy has given it a mandate: buy toward a target
  (weeks of its buyers' consumption) while the price is below a trigger, release above another or on a
  shortage signal. Its orders go into the same auctions as everyone else's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.params import PRODUCTS, Product, Region, StateSpec

if TYPE_CHECKING:
    from agents.refiner import Refiner
    from model.model import RareEarthModel

NP = len(PRODUCTS)
PRIVATE_COST_OF_CAPITAL = 0.15
PROJECT_LIFE_YEARS = 15.0
ORE_SHARE_OF_VALUE = 0.45  # seed F14: ore at ~US$14.5/kg against ~US$31/kg of oxide in it


class State(mesa.Agent):
    def __init__(self, model: RareEarthModel, spec: StateSpec):
        super().__init__(model)
        self.spec = spec
        self.sid = spec.id
        self.name = spec.name
        self.region = spec.region
        self.stockpile = np.zeros(NP)
        self.stock_mandate: dict | None = None  # set by a Stockpile policy
        self.stock_bought = np.zeros(NP)
        self.stock_released = np.zeros(NP)
        self.stock_spent_usd = 0.0
        self.stock_bought_4w = np.zeros(NP)
        self.cost_of_capital = {}  # project id -> concessional rate from financing
        self.licence_tightening = 1.0  # multiplier on its export-licence approvals (its own rule)
        self.tightened_until = -1

    # -- stage 2 -----------------------------------------------------------------------------------------
    def act(self) -> None:
        if self.spec.bloc == "china":
            if self.model.behaviour.china_quota_rule:
                self.manage_quota()
            self.react_to_rivals()
        self.select_projects()

    def react_to_rivals(self) -> None:
        """China's leverage rule (mechanism M2): when rival states' stockpile agencies bought more than
        ``rival_stockpile_trigger_weeks`` weeks of their Dy/Tb use in the past four weeks, or a rival's
        sanction is in force, China halves licence approvals for the next 13 weeks. It only matters
        while China has an export-licence regime in force."""
        m = self.model
        k = [PRODUCTS.index(Product.DY), PRODUCTS.index(Product.TB)]
        rivals = [s for s in m.states if s.spec.bloc != "china"]
        bought, use = 0.0, 0.0
        for s in rivals:
            bought += float(s.stock_bought_4w[k].sum())
        if bought > 0:  # their use matters only when they bought something (most weeks they did not)
            for s in rivals:
                use += float(s.consumption_per_week()[k].sum())
        sanction = any(type(p).__name__ == "Sanction" for p in m.active)
        triggered = (use > 0 and bought > m.behaviour.rival_stockpile_trigger_weeks * use) or sanction
        now = int(m.steps)
        if triggered and now > self.tightened_until:
            if self.tightened_until < now - 1:
                m.log_event(f"{self.name} tightens export licences in response to rivals")
            self.tightened_until = now + 13
        self.licence_tightening = 0.5 if now <= self.tightened_until else 1.0

    def manage_quota(self) -> None:
        """China's mining quota (FACTS B1: 270 kt in 2024) leans against domestic NdPr price swings.

        When the domestic NdPr price (8-week average) is more than ``china_quota_band`` above its two-year
        average, the quota on Chinese mines rises by ``china_quota_step_per_week``; when it is that far
        below, the quota falls; within ``china_quota_min``-``china_quota_max`` of 2024 capacity.
        """
        b = self.model.behaviour
        k = PRODUCTS.index(Product.NDPR)
        ratio = self.model.price_memory[Region.CN][k] / self.model.long_memory[Region.CN][k]
        fleet = self.model.fleet
        if ratio > 1 + b.china_quota_band:
            fleet.quota_factor = min(b.china_quota_max, fleet.quota_factor + b.china_quota_step_per_week)
        elif ratio < 1 - b.china_quota_band:
            fleet.quota_factor = max(b.china_quota_min, fleet.quota_factor - b.china_quota_step_per_week)

    def project_margin_musd(self, plant: Refiner) -> float:
        """Expected annual operating margin (M USD/yr) of a plant at remembered prices."""
        m = self.model
        prices = m.price_memory[plant.home_region]
        floor = m.rules.floor_for(plant.country)
        if floor is not None:
            prices = np.maximum(prices, floor)
        best = 0.0
        for basket in m.reachable_baskets(plant.node):
            best = max(best, plant.netback(basket, prices) - ORE_SHARE_OF_VALUE * float(
                (basket * plant.separates * prices).sum() * plant.recovery))
        return best * plant.nameplate_t_per_week * 52 * 1000 / 1e6

    def capital_charge_musd(self, plant: Refiner) -> float:
        rate = self.cost_of_capital.get(plant.rid, PRIVATE_COST_OF_CAPITAL)
        return plant.spec.capex_musd * (rate + 1.0 / PROJECT_LIFE_YEARS)

    def select_projects(self) -> None:
        for plant in self.model.refiners:
            if (plant.status != "planned" or plant.spec.sponsor_state != self.sid
                    or plant.spec.needs_policy_support):
                continue
            if self.project_margin_musd(plant) > self.capital_charge_musd(plant):
                lead = plant.spec.lead_time_weeks * self.model.rules.lead_time_factor_for(plant.country)
                if plant.start_building(round(lead), financed_by=""):
                    self.model.log_event(f"{self.name} starts building {plant.spec.name} "
                                         f"(online in {round(lead)} weeks)")

    # -- stockpile agency --------------------------------------------------------------------------------
    def consumption_per_week(self) -> np.ndarray:
        """Its buyers' need this week, per product (t)."""
        return self.model.buyer_book.need_of_state(self.sid, self.model.demand_multiplier)

    def stock_orders(self, prices: np.ndarray, shortage_signal: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bid level, bid qty, ask level, ask qty) per product for this week's auction."""
        zeros = np.zeros(NP)
        mandate = self.stock_mandate
        if not mandate:
            return zeros, zeros, zeros, zeros
        target = self.consumption_per_week() * mandate["target_weeks"] * mandate["mask"]
        ref = mandate["reference"]
        buy_below = ref * mandate["buy_below_ratio"]
        release_above = ref * mandate["release_above_ratio"]
        p = np.where(np.isfinite(prices), prices, ref)
        gap = np.maximum(target - self.stockpile, 0.0)
        release = (p > release_above) | (shortage_signal > mandate["shortage_trigger"])
        forced = mandate.get("force_release_weeks")
        if forced:
            release = np.ones(NP, dtype=bool)
        buy_qty = np.where((p < buy_below) & (mandate["budget_left_usd"] > 0) & ~release,
                           gap / max(mandate["fill_weeks"], 1.0), 0.0)
        ask_qty = np.where(release, self.stockpile / max(forced or mandate["release_weeks"], 1.0), 0.0)
        # it sells just under the going price, and never bids above its trigger
        return buy_below, buy_qty, np.maximum(p * 0.95, 1e-6), ask_qty

    def settle_stock(self, bought: np.ndarray, sold: np.ndarray, price: np.ndarray) -> None:
        if not (bought.any() or sold.any() or self.stock_bought_4w.any()):
            # an idle agency (most states, most weeks): nothing moves, decays or is spent
            self.stock_bought, self.stock_released = bought, sold
            return
        self.stockpile = np.maximum(self.stockpile + bought - sold, 0.0)
        self.stock_bought = bought
        self.stock_released = sold
        self.stock_bought_4w = 0.75 * self.stock_bought_4w + bought
        # nothing bought costs nothing (skips the nan-safe sum, the usual week)
        cost = float(np.nansum(bought * np.nan_to_num(price)) * 1000) if bought.any() else 0.0
        self.stock_spent_usd += cost
        if self.stock_mandate:
            self.stock_mandate["budget_left_usd"] -= cost

    @property
    def is_china(self) -> bool:
        return self.region == Region.CN
