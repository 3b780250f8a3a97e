"""The rules agents consult each week. Policies change rules; agents read them; outputs follow.

The model resets the weekly rules at stage 2, then asks each active policy to apply itself, so a rule
holds exactly while the policies that set it are in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model.params import PRODUCTS

if TYPE_CHECKING:
    from agents.refiner import Refiner
    from model.model import RareEarthModel

NP = len(PRODUCTS)


@dataclass(frozen=True)
class OreBan:
    """Refiners in ``importers`` may not buy ore from pools matching every given criterion."""

    importers: frozenset[str]
    origin_country: str = ""
    state_linked_only: bool = False
    controller: str = ""
    exempt_licensed: bool = False  # audited civilian operations stay allowed

    def blocks(self, refiner_country: str, pool: dict) -> bool:
        if refiner_country not in self.importers:
            return False
        if self.origin_country and pool["country"] != self.origin_country:
            return False
        if self.state_linked_only and not pool["state_linked"]:
            return False
        if self.controller and pool["controller"] != self.controller:
            return False
        return not (self.exempt_licensed and pool["licensed"])


@dataclass
class Rules:
    # share of Chinese export offers allowed abroad, per product (1 = free, 0 = banned)
    export_cap: np.ndarray = field(default_factory=lambda: np.ones(NP))
    export_quota: np.ndarray = field(default_factory=lambda: np.full(NP, np.inf))  # t/week, all plants
    ore_bans: list[OreBan] = field(default_factory=list)
    audited_only: set[str] = field(default_factory=set)  # states whose refiners take only audited ore
    audit_cost: dict[str, float] = field(default_factory=dict)  # USD/kg feed, by refiner state
    price_floor: dict[str, np.ndarray] = field(default_factory=dict)  # USD/kg by producing state
    lead_time_factor_by_state: dict[str, float] = field(default_factory=dict)  # permit streamlining
    plant_floor: dict[str, np.ndarray] = field(default_factory=dict)  # offtake price guarantees by plant id

    def reset_week(self) -> None:
        self.export_cap = np.ones(NP)
        self.export_quota = np.full(NP, np.inf)
        self.ore_bans = []
        self.audited_only = set()
        self.audit_cost = {}
        self.price_floor = {}
        self.lead_time_factor_by_state = {}
        self.plant_floor = {}

    def export_cap_fraction(self) -> np.ndarray:
        return self.export_cap

    def lead_time_factor_for(self, state: str) -> float:
        return self.lead_time_factor_by_state.get(state, 1.0)

    def floor_for(self, state: str, plant: str = "") -> np.ndarray | None:
        """The guaranteed price (USD/kg per product) for a plant: its state's floor or an offtake."""
        a, b = self.price_floor.get(state), self.plant_floor.get(plant)
        if a is None or b is None:
            return a if b is None else b
        return np.maximum(a, b)

    def any_ore_rule(self) -> bool:
        """Whether any rule restricts ore purchases this week (if not, ``ore_allowed`` is always True)."""
        return bool(self.ore_bans or self.audited_only)

    def any_floor(self) -> bool:
        """Whether any price floor or offtake guarantee is in force (if not, ``floor_for`` is None)."""
        return bool(self.price_floor or self.plant_floor)

    def ore_allowed(self, model: RareEarthModel, refiner: Refiner, pool: dict) -> bool:
        if refiner.country in self.audited_only and not pool["licensed"]:
            return False
        return not any(ban.blocks(refiner.country, pool) for ban in self.ore_bans)
