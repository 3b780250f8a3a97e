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
- **Projects and depletion.** A mine that is ``planned`` or ``building`` in the world (one site each) mines
  nothing until it comes online (:mod:`model.projects`: a sponsor or lender decides, then permitting and
  construction; a mine already building comes online on its ``online_date``). A site with a ``reserve_t``
  mines at most what is left of it; when it is worked out it stops for good (a plant's stockpile of
  concentrate is such a site, ``captive_only``: it sells to its plant alone).
- **A plant's unseparated stream** (``residue_of``). A plant that does not separate some elements of its feed
  sells them as a concentrate of their own (Lynas sold the heavy fraction of Mt Weld's ore as a mixed
  concentrate until its heavy-RE circuit ran): such a site "mines" each week what its plant left
  unseparated the week before (t REO of the site's ore type, holding the same tonnes of each element;
  at most its capacity) and sells it like ore, first to its offtake (the plant's own heavy circuit, once
  that runs), else to whoever bids for it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model import market
from model.arrays import count_nonzero, flatnonzero, where
from model.params import World
from model.projects import Pipeline

if TYPE_CHECKING:
    from model.model import RareEarthModel


class MinerFleet:
    """Array-backed state of every mine site. ``Miner`` agents are views into it."""

    def __init__(self, world: World, rng: np.random.Generator, start: dt.date | None = None):
        start = world.as_of if start is None else start
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
            if m.status != "operating" and not (m.status == "building" and m.online_date is not None
                                                and m.online_date <= start):
                n_active = 0  # a project: it mines once it comes online
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
        # mine projects (one site each): their pipeline rows, in site order
        proj = [i for i in range(self.n) if world.miners[self.spec[i]].status != "operating"]
        self.project_site = np.array(proj, dtype=int)
        weeks = [((world.miners[self.spec[i]].online_date - start).days // 7
                  if world.miners[self.spec[i]].online_date is not None else 0) for i in proj]
        self.pipeline = Pipeline([world.miners[self.spec[i]].status for i in proj], weeks)
        self.project_row = {int(site): r for r, site in enumerate(proj)}
        # reserves left (t REO); inf where the world sets none
        reserve = [world.miners[k].reserve_t for k in self.spec]
        self.remaining = np.array([np.inf if x is None else float(x) for x in reserve])
        self._finite_reserve = bool(np.isfinite(self.remaining).any())
        self.depleted: list[int] = []  # sites worked out this week
        # plants' unseparated streams: the host plant's id per site ("" for a mine) and what it left this week
        self.residue_of = [world.miners[k].residue_of for k in self.spec]
        self.is_residue = np.array([bool(h) for h in self.residue_of], dtype=bool)
        self._any_residue = bool(self.is_residue.any())
        self.residue_in = np.zeros(self.n)  # t REO each stream brings in next week (set by the model)

    # -- halts (set by armed groups, orders and floods through the model's commands) ----------------------
    def clear_halts(self) -> None:
        self.halted[:] = False

    def halt(self, sites: np.ndarray) -> None:
        self.halted[sites] = True

    def set_quota_factor(self, group: str, factor: float) -> None:
        """China's mining quota for ``group`` ("light" or "heavy"), as a multiple of 2024 capacity."""
        self.quota_factor[group] = float(factor)
        self._quota_mult = np.array([self.quota_factor.get(g, 1.0) for g in self._quota_groups.tolist()]).take(
            self._quota_code)

    def transfer(self, sites: np.ndarray, controller: str) -> None:
        """Sites change hands (a seizure): new controller, no longer run by state-linked operators."""
        self.controller[sites] = controller
        self.state_linked[sites] = False

    # -- weekly rules ------------------------------------------------------------------------------------
    def operating_capacity(self) -> np.ndarray:
        """What each site can mine this week (t REO): active, not halted, under China's quota; a plant's
        unseparated stream brings what its plant left last week."""
        cap = where(self.is_residue, self.residue_in, self.capacity) if self._any_residue else self.capacity
        return cap * (self.active & ~self.halted) * self._quota_mult

    def mine(self) -> np.ndarray:
        """Mine into stock up to the yard's limit (and what is left of a reserve); returns this week's output
        per site (t REO)."""
        kernel = market._auction
        if kernel is None:
            stock = self._mine_numpy()
        else:  # _mine_numpy's arithmetic in one pass
            cap = where(self.is_residue, self.residue_in, self.capacity) if self._any_residue else self.capacity
            self.mined, remaining, stock = kernel.mine(self.stock_max, self.stock, cap, self.active, self.halted,
                                                       self._quota_mult, self.remaining if self._finite_reserve else None)
            if remaining is not None:
                self.remaining = remaining
        if self._finite_reserve:
            out = flatnonzero(self.active & (self.remaining <= 1e-9))
            self.depleted = out.tolist()
            if out.size:
                self.active[out] = False
                self.remaining[out] = 0.0
                for site in self.depleted:
                    r = self.project_row.get(site)
                    if r is not None:
                        self.pipeline.status[r] = "depleted"
        self.stock = stock
        self.sold = np.zeros(self.n)
        return self.mined

    def _mine_numpy(self) -> np.ndarray:
        """:meth:`mine`'s arithmetic in numpy (sets ``mined`` and ``remaining``; returns the stock + mined): the
        compiled kernel's reference (``model._auction.mine``) and the path without it."""
        room = np.maximum(self.stock_max - self.stock, 0.0)
        self.mined = np.minimum(self.operating_capacity(), room)
        if self._finite_reserve:
            self.mined = np.minimum(self.mined, self.remaining)
            self.remaining = self.remaining - self.mined
        return self.stock + self.mined

    def offered(self, release_weeks: float) -> np.ndarray:
        """Ore each site offers this week (t REO): its stock spread over ``release_weeks`` (a yard is
        trucked out over a couple of weeks, not at once), nothing while it is halted."""
        return where(self.halted, 0.0, self.stock / max(release_weeks, 1.0))

    def sell_all(self, tonnes: np.ndarray) -> None:
        """This week's sales of every site (t REO) leave their stocks."""
        self.stock = np.maximum(self.stock - tonnes, 0.0)
        self.sold = tonnes

    # -- projects -----------------------------------------------------------------------------------------
    def coming_capacity(self) -> np.ndarray:
        """Capacity per site that is mining or on its way (permitting, building; t REO/week)."""
        cap = self.capacity * self.active
        if self.project_site.size:
            live = np.array([st in ("permitting", "building", "operating") for st in self.pipeline.status])
            cap = cap.copy()
            cap[self.project_site[live]] = self.capacity[self.project_site[live]]
        return cap

    def advance_pipeline(self) -> list[int]:
        """Count mine projects down a week; returns the sites that start mining this week."""
        if not self.pipeline.any_live():
            return []
        sites = [int(self.project_site[r]) for r in self.pipeline.advance()]
        self.active[sites] = True
        return sites

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
        u = rng.random(idx.size)
        kernel = market._auction
        if kernel is not None:  # the lines of _entry_exit_numpy in one pass
            return kernel.entry_exit(self.netback_ema, idx, cost, node, levies, u, self.active.view(np.uint8),
                                     entry_rate, exit_rate)
        return self._entry_exit_numpy(u, entry_rate, exit_rate, levies)

    def _entry_exit_numpy(self, u: np.ndarray, entry_rate: float, exit_rate: float,
                          levies: np.ndarray) -> tuple[int, int]:
        """:meth:`entry_exit_step` in numpy, with the week's draws ``u`` (one per entry site): the compiled
        kernel's reference (``model._auction.entry_exit``) and the path without it."""
        idx, cost, node = self._entry_sites
        netback = self.netback_ema.take(node)
        known = np.isfinite(netback)
        netback = where(known, netback, 0.0)
        margin = netback - cost - levies.take(idx)
        rel = np.minimum(np.maximum(margin / cost, 0.0), 1.0)
        dormant = ~self.active.take(idx)
        opens = known & dormant & (margin > 0) & (u < entry_rate * rel)
        closes = known & ~dormant & (margin < 0) & (u < exit_rate)
        self.active[idx[opens]] = True
        self.active[idx[closes]] = False
        return int(count_nonzero(opens)), int(count_nonzero(closes))


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

    # -- a mine project (one site): see model.projects ----------------------------------------------------
    @property
    def spec(self):
        return self.fleet.specs[self.fleet.spec[self.i]]

    @property
    def project_status(self) -> str:
        """Its project phase (planned, permitting, building, operating, cancelled, depleted); "operating"
        for a site that was never a project."""
        r = self.fleet.project_row.get(self.i)
        if r is None:
            return "depleted" if self.fleet.remaining[self.i] <= 0 else "operating"
        return self.fleet.pipeline.status[r]

    @property
    def remaining_t(self) -> float:
        return float(self.fleet.remaining[self.i])

    def start_project(self, permit_weeks: int, build_weeks: int, financed_by: str = "") -> bool:
        """Its sponsor or a lender decides: permitting, then construction (False if it was not planned)."""
        r = self.fleet.project_row.get(self.i)
        return r is not None and self.fleet.pipeline.start(r, permit_weeks, build_weeks, financed_by)

    def streamline_permits(self, factor: float) -> None:
        r = self.fleet.project_row.get(self.i)
        if r is not None:
            self.fleet.pipeline.streamline(r, factor)

    def cancel_project(self) -> bool:
        r = self.fleet.project_row.get(self.i)
        return r is not None and self.fleet.pipeline.cancel(r)
