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


@dataclass
class OreBan:
    """Refiners in ``importers`` may not buy ore from pools matching the predicate (unless exempt)."""

    importers: frozenset[str]
    origin_country: str = ""
    state_linked_only: bool = False
    controller: str = ""


@dataclass
class Rules:
    # share of Chinese export offers allowed abroad, per product (1 = free, 0 = banned)
    export_cap: np.ndarray = field(default_factory=lambda: np.ones(NP))
    ore_bans: list[OreBan] = field(default_factory=list)
    audited_only: set[str] = field(default_factory=set)  # states whose refiners take only audited ore
    lead_time_factor: float = 1.0  # permit streamlining multiplies project lead times

    def reset_week(self) -> None:
        self.export_cap = np.ones(NP)
        self.ore_bans = []
        self.audited_only = set()

    def export_cap_fraction(self) -> np.ndarray:
        return self.export_cap

    def ore_allowed(self, model: RareEarthModel, refiner: Refiner, pool: dict) -> bool:
        if refiner.country in self.audited_only and not pool["licensed"]:
            return False
        for ban in self.ore_bans:
            if refiner.country not in ban.importers:
                continue
            if ban.origin_country and pool["country"] != ban.origin_country:
                continue
            if ban.state_linked_only and not pool["state_linked"]:
                continue
            if ban.controller and pool["controller"] != ban.controller:
                continue
            return False
        return True
