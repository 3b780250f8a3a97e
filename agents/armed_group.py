"""Armed groups: they control mine sites and route edges in Kachin, levy ore, block roads and halt sites.

Rules (mechanism M5; ``b.x`` = :class:`~model.params.Behaviour`):
- **Conflict state** is a weekly Markov chain, calm -> tense -> fighting and back, drawn from the model's
  armed-group stream. Scripted events (an offensive, a ceasefire) force it while they last.
- **Levy.** Each kg of ore leaving its sites or crossing its roads pays ``levy`` USD (FACTS C12: 35,000
  yuan/t). The group responds to prices: it moves its levy toward base x (ore price / its price at the
  start)^``b.levy_price_elasticity``, within ``b.levy_min_ratio``-``b.levy_max_ratio`` x base, closing
  ``b.levy_adjust_rate`` of the gap each week, so booms are taxed harder.
- **Fighting.** In a fighting week a share ``halt_share_fighting`` of its sites stops (drawn per site); each
  open road it controls is blocked with probability ``b.road_block_probability`` and a blocked one reopens
  with probability ``b.road_reopen_probability`` (blockades last weeks); all reopen when fighting ends.
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
        self._forced: Conflict | None = None  # set by a scripted escalation while it lasts
        self._ordered: list[np.ndarray] = []  # site sets halted by order this week
        self.revenue_usd = 0.0  # this week
        self.revenue_total_usd = 0.0
        self.ref_ore_price = np.nan

    @property
    def sites(self) -> np.ndarray:
        """Indices of the mine sites it controls (read-only)."""
        return self.model.group_sites(self.gid)

    @property
    def edges(self) -> list[int]:
        """Route edges it controls."""
        return self.model.routes.edges_controlled_by(self.gid)

    # -- orders from events -------------------------------------------------------------------------------
    def force_conflict(self, level: str | None) -> None:
        """A scripted escalation or ceasefire holds its conflict state at ``level`` (None: free again)."""
        self._forced = None if level is None else Conflict[level.upper()]

    def order_halt(self, sites: np.ndarray) -> None:
        """Order these sites to stop this week (a halt event calls this each week it lasts)."""
        self._ordered.append(np.asarray(sites, dtype=int))

    # -- stage 3 -------------------------------------------------------------------------------------------
    def begin_week(self) -> None:
        self.revenue_usd = 0.0

    def act(self, rng: np.random.Generator) -> None:
        """Conflict transition, levy update, site halts and road blocks."""
        s = self.spec
        b = self.model.behaviour
        u = rng.random()
        if self._forced is not None:
            self.conflict = self._forced
        elif self.conflict == Conflict.CALM and u < s.p_escalate:
            self.conflict = Conflict.TENSE
        elif self.conflict == Conflict.TENSE:
            if u < s.p_fight:
                self.conflict = Conflict.FIGHTING
            elif u < s.p_fight + s.p_calm:
                self.conflict = Conflict.CALM
        elif self.conflict == Conflict.FIGHTING and u < s.p_deescalate:
            self.conflict = Conflict.TENSE

        price = self.model.ore.gate_price_of_group(self.gid)  # mean gate price of its sites' pools
        if math.isfinite(price) and price > 0:
            if not math.isfinite(self.ref_ore_price):
                self.ref_ore_price = price
            ratio = (price / self.ref_ore_price) ** b.levy_price_elasticity
            target = self.base_levy * min(max(ratio, b.levy_min_ratio), b.levy_max_ratio)
            self.levy += b.levy_adjust_rate * (target - self.levy)

        sites = self.sites
        if self.conflict == Conflict.FIGHTING:
            self.model.halt_sites(sites[rng.random(sites.size) < s.halt_share_fighting])
        for ordered in self._ordered:
            self.model.halt_sites(ordered)
        self._ordered = []
        routes = self.model.routes
        edges = self.edges
        draws = rng.random(len(edges))
        reason = f"fighting:{self.gid}"
        for e, u in zip(edges, draws, strict=True):
            if self.conflict != Conflict.FIGHTING:
                routes.reopen(e, reason)
            elif reason in routes.closures[e]:
                if u < b.road_reopen_probability:  # a blockade lasts some weeks
                    routes.reopen(e, reason)
            elif u < b.road_block_probability:
                routes.close(e, reason)

    def collect(self, usd: float) -> None:
        self.revenue_usd += usd
        self.revenue_total_usd += usd
