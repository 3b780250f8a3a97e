"""Miners: one Mesa agent per mine site, with state held in arrays for the weekly hot path.

A large mine (Bayan Obo, Mountain Pass, Mt Weld) is one site; the Kachin ionic-clay fields are hundreds
of small sites (seed F11-F12), each its own agent with its own capacity and cash cost drawn from the
world's means and spreads.

Rules, each week (``b.x`` = :class:`~model.params.Behaviour`):

- **Mining into stock.** An active site that is not halted (by its armed group, a seizure or a flood) mines
  its capacity into its own ore stock (at the mine or its border yard), as long as that stock is below
  ``b.ore_stock_max_weeks`` of its output; Chinese sites are also capped by China's mining quota for their
  ore group (hard rock "light", ionic clay "heavy").
- **Selling.** A site that is not halted offers its stock, spread over ``b.ore_release_weeks`` (the trucks
  of a yard), in its pool's ore auction at its cash cost plus the levy of the group that controls it. When
  the roads out are closed nobody can bid: the ore waits and the site goes on mining into its stock until
  the yard is full, and the stock surges out when the road reopens (FACTS C16) instead of the mine closing.
- **Entry and exit** (``entry_exit`` sites only; seed F12: 370 sites, 60 % opened since 2021). Each site
  watches the *netback* of its area: an exponential average (``b.site_margin_memory_weeks``) of the gate
  price there (the clearing price, or the best bid when nothing cleared; a week in which no plant could
  reach the area leaves it unchanged). A dormant site whose cash cost plus levy is below that netback opens
  with a weekly probability ``b.site_entry_rate`` x its margin / cost (at most 1); an active site whose cost
  plus levy is above it closes with probability ``b.site_exit_rate``. Draws come from the model's miner
  stream, so entry is reproducible per seed.
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
        b = world.behaviour
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
        self.stock_max = self.capacity * b.ore_stock_max_weeks
        # in steady state a yard holds (release weeks - 1) weeks of output before the week's mining
        self.stock = np.minimum(self.capacity * self.active * max(b.ore_release_weeks - 1.0, 0.0), self.stock_max)
        self.mined = np.zeros(self.n)
        self.sold = np.zeros(self.n)
        self.nodes = sorted(set(self.node))
        self.node_of = np.array([self.nodes.index(x) for x in self.node])
        self.netback_ema = np.full(len(self.nodes), np.nan)  # USD/kg realised at the gate, per mine area
        self.in_china = self.country == "CN"  # sites do not move
        heavy = {o.name: o.heavy for o in world.ore_types}
        # China's mining quotas (FACTS P6): hard rock ("light") and ionic clay ("heavy") are set apart
        self.quota_group = np.array([("heavy" if heavy[o] else "light") if c else "" for o, c in
                                     zip(self.ore, self.in_china, strict=True)], dtype=object)
        self.quota_factor = {"light": 1.0, "heavy": 1.0}
        self._quota_mult = np.ones(self.n)
        # the quota groups once, and each site's (a quota moves weekly while prices are out of band)
        self._quota_groups, self._quota_code = np.unique(self.quota_group, return_inverse=True)
        # sites that may open and close, with their costs and areas (a site's cost, area and kind are fixed)
        for fixed in (self.cost, self.entry_exit, self.node_of):
            fixed.flags.writeable = False
        entry = np.flatnonzero(self.entry_exit)
        self._entry_sites = (entry, self.cost[entry], self.node_of[entry])

    # -- halts (set by armed groups, orders and floods through the model's commands) ----------------------
    def clear_halts(self) -> None:
        self.halted[:] = False

    def halt(self, sites: np.ndarray) -> None:
        self.halted[sites] = True

    def set_quota_factor(self, group: str, factor: float) -> None:
        """China's mining quota for ``group`` ("light" or "heavy"), as a multiple of 2024 capacity."""
        self.quota_factor[group] = float(factor)
        self._quota_mult = np.array([self.quota_factor.get(g, 1.0) for g in self._quota_groups.tolist()])[
            self._quota_code]

    def transfer(self, sites: np.ndarray, controller: str) -> None:
        """Sites change hands (a seizure): new controller, no longer run by state-linked operators."""
        self.controller[sites] = controller
        self.state_linked[sites] = False

    # -- weekly rules ------------------------------------------------------------------------------------
    def operating_capacity(self) -> np.ndarray:
        """What each site can mine this week (t REO): active, not halted, under China's quota."""
        return self.capacity * (self.active & ~self.halted) * self._quota_mult

    def mine(self) -> np.ndarray:
        """Mine into stock up to the yard's limit; returns this week's output per site (t REO)."""
        room = np.maximum(self.stock_max - self.stock, 0.0)
        self.mined = np.minimum(self.operating_capacity(), room)
        self.stock = self.stock + self.mined
        self.sold = np.zeros(self.n)
        return self.mined

    def offered(self, release_weeks: float) -> np.ndarray:
        """Ore each site offers this week (t REO): its stock spread over ``release_weeks`` (a yard is
        trucked out over a couple of weeks, not at once), nothing while it is halted."""
        return np.where(self.halted, 0.0, self.stock / max(release_weeks, 1.0))

    def sell_all(self, tonnes: np.ndarray) -> None:
        """This week's sales of every site (t REO) leave their stocks."""
        self.stock = np.maximum(self.stock - tonnes, 0.0)
        self.sold = tonnes

    def update_netback(self, node: int, price: float, memory_weeks: float) -> None:
        """Fold this week's gate price into the area's memory (nan: nobody could bid, no change)."""
        self.update_netbacks([node], [price], memory_weeks)

    def update_netbacks(self, nodes: list[int], prices: list[float], memory_weeks: float) -> None:
        """:meth:`update_netback` for each area and price in turn (an area may come more than once)."""
        a = 1.0 / memory_weeks
        ema = self.netback_ema.tolist()
        for node, price in zip(nodes, prices, strict=True):
            if math.isfinite(price):
                old = ema[node]
                ema[node] = price if math.isnan(old) else (1 - a) * old + a * price
        self.netback_ema = np.array(ema)

    def entry_exit_step(self, rng: np.random.Generator, entry_rate: float, exit_rate: float,
                        levies: np.ndarray) -> tuple[int, int]:
        """Open and close small sites from their area's netback; returns (opened, closed)."""
        idx, cost, node = self._entry_sites
        if idx.size == 0:
            return 0, 0
        netback = self.netback_ema[node]
        known = np.isfinite(netback)
        netback = np.where(known, netback, 0.0)
        margin = netback - cost - levies[idx]
        u = rng.random(idx.size)
        rel = np.minimum(np.maximum(margin / cost, 0.0), 1.0)
        dormant = ~self.active[idx]
        opens = known & dormant & (margin > 0) & (u < entry_rate * rel)
        closes = known & ~dormant & (margin < 0) & (u < exit_rate)
        self.active[idx[opens]] = True
        self.active[idx[closes]] = False
        return int(np.count_nonzero(opens)), int(np.count_nonzero(closes))


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
    def stock_t(self) -> float:
        return float(self.fleet.stock[self.i])

    @property
    def sold_t(self) -> float:
        return float(self.fleet.sold[self.i])
