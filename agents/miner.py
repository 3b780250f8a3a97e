"""Miners: one Mesa agent per mine site, with state held in arrays for the weekly hot path.

A large mine (Bayan Obo, Mountain Pass, Mt Weld) is one site; the Kachin ionic-clay fields are hundreds
of small sites (seed F11-F12), each its own agent with its own capacity and cash cost drawn from the
world's means and spreads.

Rules, each week:
- **Output.** An active site that is not halted (by its armed group, a seizure or a flood) offers its
  capacity to the ore market at its cash cost plus the levy of the group that controls it; what it sells
  is what it mines (ore stays in the ground otherwise). Chinese sites are also capped by China's mining
  quota factor.
- **Entry and exit** (``entry_exit`` sites only; seed F12: 370 sites, 60 % opened since 2021). Each site
  watches the *netback* of its area: an exponential average (``site_margin_memory_weeks``) of the gate
  price there (the clearing price, or the best bid when nothing cleared, or 0 when no refiner bid). A
  dormant site whose cash cost plus levy is below that netback opens with a weekly probability
  ``site_entry_rate`` x its margin / cost (at most 1); an active site whose cost plus levy is above it
  closes with probability ``site_exit_rate``. Draws
  come from the model's miner stream, so entry is reproducible per seed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.params import World

if TYPE_CHECKING:
    from model.model import RareEarthModel


class MinerFleet:
    """Array-backed state of every mine site. ``Miner`` agents are views into it."""

    def __init__(self, world: World, rng: np.random.Generator):
        spec_idx, cap, cost, active = [], [], [], []
        for k, m in enumerate(world.miners):
            n = m.count
            if n == 1:
                c = np.array([m.capacity_t_per_week])
                u = np.array([m.unit_cost_usd_per_kg])
            else:
                c = _lognormal(rng, m.capacity_t_per_week, m.capacity_cv, n)
                u = _lognormal(rng, m.unit_cost_usd_per_kg, m.cost_cv, n)
            n_active = n if m.active_at_start is None else m.active_at_start
            a = np.zeros(n, dtype=bool)
            # the cheapest sites are the ones already open at the start
            a[np.argsort(u, kind="stable")[:n_active]] = True
            spec_idx.append(np.full(n, k))
            cap.append(c)
            cost.append(u)
            active.append(a)
        self.specs = world.miners
        self.spec = np.concatenate(spec_idx)
        self.capacity = np.concatenate(cap)
        self.cost = np.concatenate(cost)
        self.active = np.concatenate(active)
        self.n = self.spec.size
        self.halted = np.zeros(self.n, dtype=bool)
        self.node = [world.miners[k].node for k in self.spec]
        self.country = np.array([world.miners[k].country for k in self.spec])
        self.ore = [world.miners[k].ore for k in self.spec]
        self.controller = np.array([world.miners[k].controller for k in self.spec], dtype=object)
        self.entry_exit = np.array([world.miners[k].entry_exit for k in self.spec], dtype=bool)
        self.licensed = np.array([world.miners[k].licensed for k in self.spec], dtype=bool)
        self.state_linked = np.array([world.miners[k].state_linked for k in self.spec], dtype=bool)
        self.sold = np.zeros(self.n)
        self.nodes = sorted(set(self.node))
        self.node_of = np.array([self.nodes.index(x) for x in self.node])
        self.netback_ema = np.zeros(len(self.nodes))  # USD/kg realised at the gate, per mine area
        self.netback_ema[:] = np.nan
        self.quota_factor = 1.0  # China's mining quota multiplier on Chinese sites
        self.in_china = self.country == "CN"  # sites do not move

    def offered(self) -> np.ndarray:
        """Ore each site offers this week, t REO."""
        q = self.capacity * (self.active & ~self.halted)
        if self.quota_factor != 1.0:
            q = np.where(self.in_china, q * self.quota_factor, q)
        return q

    def update_netback(self, node: int, price: float, memory_weeks: float) -> None:
        """Fold this week's gate price into the area's memory (0 when no refiner would buy at all)."""
        value = price if math.isfinite(price) else 0.0
        a = 1.0 / memory_weeks
        old = self.netback_ema[node]
        self.netback_ema[node] = value if math.isnan(old) else (1 - a) * old + a * value

    def entry_exit_step(self, rng: np.random.Generator, entry_rate: float, exit_rate: float,
                        levies: np.ndarray) -> tuple[int, int]:
        """Open and close small sites from their area's netback; returns (opened, closed)."""
        idx = np.flatnonzero(self.entry_exit)
        if idx.size == 0:
            return 0, 0
        netback = self.netback_ema[self.node_of[idx]]
        netback = np.where(np.isnan(netback), 0.0, netback)
        margin = netback - self.cost[idx] - levies[idx]
        u = rng.random(idx.size)
        rel = np.minimum(np.maximum(margin / self.cost[idx], 0.0), 1.0)
        dormant = ~self.active[idx]
        opens = dormant & (margin > 0) & (u < entry_rate * rel)
        closes = ~dormant & (margin < 0) & (u < exit_rate)
        self.active[idx[opens]] = True
        self.active[idx[closes]] = False
        return int(opens.sum()), int(closes.sum())


def _lognormal(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    if cv <= 0:
        return np.full(n, mean)
    sigma2 = np.log1p(cv * cv)
    return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), n)


class Miner(mesa.Agent):
    """One mine site; its state lives in the model's :class:`MinerFleet` at index ``i``."""

    def __init__(self, model: RareEarthModel, i: int):
        super().__init__(model)
        self.i = i
        self.spec_id = model.fleet.specs[model.fleet.spec[i]].id

    @property
    def fleet(self) -> MinerFleet:
        return self.model.fleet

    @property
    def capacity_t_per_week(self) -> float:
        return float(self.fleet.capacity[self.i])

    @property
    def unit_cost_usd_per_kg(self) -> float:
        return float(self.fleet.cost[self.i])

    @property
    def active(self) -> bool:
        return bool(self.fleet.active[self.i])

    @property
    def halted(self) -> bool:
        return bool(self.fleet.halted[self.i])

    @property
    def controller(self) -> str:
        return str(self.fleet.controller[self.i])

    @property
    def node(self) -> str:
        return self.fleet.node[self.i]

    @property
    def sold_t(self) -> float:
        return float(self.fleet.sold[self.i])
