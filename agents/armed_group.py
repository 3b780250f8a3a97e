"""Armed groups: they control mine sites and route edges in Kachin, levy ore, block roads and halt sites.

Rules (mechanism M5):
- **Conflict state** is a weekly Markov chain, calm -> tense -> fighting and back, drawn from the model's
  armed-group stream. Scripted events (an offensive, a ceasefire) set it directly.
- **Levy.** Each kg of ore leaving its sites or crossing its roads pays ``levy`` USD (FACTS C12: 35,000
  yuan/t). The group responds to prices: it moves its levy towards base x (ore price / its price at
  the start)^0.5, within 0.5-2 x base, a quarter of the way each week, so booms are taxed harder.
- **Fighting.** In a fighting week a share ``halt_share_fighting`` of its sites stops (drawn per site)
  and each road it controls is blocked with probability one half.
- **Orders.** A halt order (a ban on mining, seed F15) stops the ordered sites each week it lasts.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.params import ArmedGroupSpec

if TYPE_CHECKING:
    from model.model import RareEarthModel


class Conflict(IntEnum):
    CALM = 0
    TENSE = 1
    FIGHTING = 2


class ArmedGroup(mesa.Agent):
    def __init__(self, model: RareEarthModel, spec: ArmedGroupSpec):
        super().__init__(model)
        self.spec = spec
        self.gid = spec.id
        self.name = spec.name
        self.base_levy = spec.levy_usd_per_kg
        self.levy = spec.levy_usd_per_kg
        self.conflict = Conflict[spec.conflict_start.upper()]
        self.forced_conflict: str | None = None  # set by a scripted escalation while it lasts
        self.ordered_halts: np.ndarray = np.zeros(0, dtype=int)  # sites halted by order this week
        self.revenue_usd = 0.0  # this week
        self.revenue_total_usd = 0.0
        self.ref_ore_price = np.nan
        self.edges = model.routes.edges_matching(controller=spec.id)

    @property
    def sites(self) -> np.ndarray:
        """Indices of the mine sites it controls (read-only)."""
        return self.model.group_sites(self.gid)

    def act(self, rng: np.random.Generator) -> None:
        """Stage 3: conflict transition, levy update, site halts and road blocks."""
        s = self.spec
        u = rng.random()
        if self.forced_conflict is not None:
            self.conflict = Conflict[self.forced_conflict.upper()]
        elif self.conflict == Conflict.CALM and u < s.p_escalate:
            self.conflict = Conflict.TENSE
        elif self.conflict == Conflict.TENSE:
            if u < s.p_fight:
                self.conflict = Conflict.FIGHTING
            elif u < s.p_fight + s.p_calm:
                self.conflict = Conflict.CALM
        elif self.conflict == Conflict.FIGHTING and u < s.p_deescalate:
            self.conflict = Conflict.TENSE

        price = self.model.ore_price_of_group(self.gid)  # the mean gate price of its sites' pools
        if math.isfinite(price) and price > 0:
            if not math.isfinite(self.ref_ore_price):
                self.ref_ore_price = price
            target = self.base_levy * min(max(math.sqrt(price / self.ref_ore_price), 0.5), 2.0)
            self.levy += 0.25 * (target - self.levy)

        sites = self.sites
        fleet = self.model.fleet
        if self.conflict == Conflict.FIGHTING:
            fleet.halted[sites] = rng.random(sites.size) < s.halt_share_fighting
        else:
            fleet.halted[sites] = False
        fleet.halted[self.ordered_halts] = True
        self.ordered_halts = np.zeros(0, dtype=int)
        routes = self.model.routes
        blocks = rng.random(len(self.edges)) < 0.5
        for e, b in zip(self.edges, blocks, strict=True):
            if self.conflict == Conflict.FIGHTING and b:
                routes.close(e, f"fighting:{self.gid}")
            else:
                routes.reopen(e, f"fighting:{self.gid}")

    def halt_sites(self, sites: np.ndarray) -> None:
        """Order these sites to stop this week (a halt policy calls this each week it lasts)."""
        self.ordered_halts = np.union1d(self.ordered_halts, sites).astype(int)

    def collect(self, usd: float) -> None:
        self.revenue_usd += usd
        self.revenue_total_usd += usd
