"""The rules board: what agents may do this week. Policies write rules; agents read them; outputs follow.

The model resets the weekly rules at stage 2, then asks each active policy to apply itself, so a rule holds
exactly while the policies that set it are in force. Rules are the only channel through which a policy
restricts agents (besides named agent methods and model commands); no agent knows a policy by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from model.ore_market import OrePool


@dataclass(frozen=True)
class OreBan:
    """Refiners in ``importers`` may not buy ore from pools matching every given criterion."""

    importers: frozenset[str]
    origin_country: str = ""
    state_linked_only: bool = False
    controller: str = ""
    exempt_licensed: bool = False  # audited civilian operations stay allowed

    def blocks(self, refiner_country: str, pool: OrePool) -> bool:
        if refiner_country not in self.importers:
            return False
        if self.origin_country and pool.country != self.origin_country:
            return False
        if self.state_linked_only and not pool.state_linked:
            return False
        if self.controller and pool.controller != self.controller:
            return False
        return not (self.exempt_licensed and pool.licensed)


@dataclass
class Rules:
    n_products: int
    # tonnes per week a destination state may import from its source region, per product (absent = free)
    export_allowance: dict[str, np.ndarray] = field(default_factory=dict)
    ore_bans: list[OreBan] = field(default_factory=list)
    audited_only: set[str] = field(default_factory=set)  # states whose refiners take only audited ore
    audit_cost: dict[str, float] = field(default_factory=dict)  # USD/kg feed, by refiner state
    price_floor: dict[str, np.ndarray] = field(default_factory=dict)  # USD/kg by producing state
    lead_time_factor_by_state: dict[str, float] = field(default_factory=dict)  # permit streamlining
    plant_floor: dict[str, np.ndarray] = field(default_factory=dict)  # offtake price guarantees by plant id
    # destination state -> end-user class -> products whose licences that class is refused (FACTS P7)
    refused_end_use: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # licences the controls that ended hand to those of their actor's that begin the same week: actor -> [(week,
    # what one control left)] (not reset weekly)
    licence_handover: dict[str, list] = field(default_factory=dict)

    def reset_week(self) -> None:
        self.export_allowance = {}
        self.ore_bans = []
        self.audited_only = set()
        self.audit_cost = {}
        self.price_floor = {}
        self.lead_time_factor_by_state = {}
        self.plant_floor = {}
        self.refused_end_use = {}

    # -- exports ------------------------------------------------------------------------------------------
    def limit_exports(self, destination: str, tonnes: np.ndarray) -> None:
        """Cap what ``destination`` may import this week (t per product; inf = free). Two controls on the
        same destination: the tighter one holds."""
        cur = self.export_allowance.get(destination)
        self.export_allowance[destination] = tonnes.copy() if cur is None else np.minimum(cur, tonnes)

    def refuse_end_use(self, destination: str, end_users: str, products: np.ndarray) -> None:
        """Licences for ``products`` (a mask) are refused to ``destination``'s users of class ``end_users``."""
        by_class = self.refused_end_use.setdefault(destination, {})
        cur = by_class.get(end_users)
        by_class[end_users] = products.copy() if cur is None else cur | products

    def hand_over_licences(self, actor: str, week: int, handover: object) -> None:
        """A licence control of ``actor`` ends in ``week``, leaving ``handover`` (its licences and applications
        under review) to the controls of the same actor that begin that week (what earlier weeks left is gone)."""
        kept = [x for x in self.licence_handover.get(actor, []) if x[0] == week]
        self.licence_handover[actor] = [*kept, (week, handover)]

    def take_over_licences(self, actor: str, week: int) -> list:
        """What the controls of ``actor`` that ended in ``week`` left (each control that begins that week reads
        all of it and keeps the products it covers: two that cover the same product both hold its licences, and
        the tighter allowance of the two holds, so nothing is counted twice)."""
        return [h for w, h in self.licence_handover.get(actor, []) if w == week]

    def allowance(self, destination: str) -> np.ndarray:
        """What ``destination`` may import this week (t per product; inf where free)."""
        a = self.export_allowance.get(destination)
        return np.full(self.n_products, np.inf) if a is None else a

    # -- other rules ----------------------------------------------------------------------------------------
    def lead_time_factor_for(self, state: str) -> float:
        return self.lead_time_factor_by_state.get(state, 1.0)

    def floor_for(self, state: str, plant: str = "") -> np.ndarray | None:
        """The guaranteed price (USD/kg per product) for a plant: its state's floor or an offtake."""
        a, b = self.price_floor.get(state), self.plant_floor.get(plant)
        if a is None or b is None:
            return a if b is None else b
        return np.maximum(a, b)

    def guarantee(self, plant: str, floor: np.ndarray) -> None:
        """A guaranteed price for one plant (USD/kg per product: an offtake guarantee, a floor naming it); with
        one already in force this week, the higher holds, product by product."""
        current = self.plant_floor.get(plant)
        self.plant_floor[plant] = floor if current is None else np.maximum(current, floor)

    def any_ore_rule(self) -> bool:
        """Whether any rule restricts ore purchases this week (if not, ``ore_allowed`` is always True)."""
        return bool(self.ore_bans or self.audited_only)

    def any_floor(self) -> bool:
        """Whether any price floor or offtake guarantee is in force (if not, ``floor_for`` is None)."""
        return bool(self.price_floor or self.plant_floor)

    def ore_allowed(self, refiner_country: str, pool: OrePool) -> bool:
        if refiner_country in self.audited_only and not pool.licensed:
            return False
        return not any(ban.blocks(refiner_country, pool) for ban in self.ore_bans)
