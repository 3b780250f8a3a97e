"""The rare-earth market model: one Mesa model, weekly steps, prices from call auctions.

Build a run from a scenario (a world, a start date, a horizon, overrides and a timeline of policies and
events) and a seed::

    from model.model import RareEarthModel
    m = RareEarthModel(scenario="baseline", seed=1)
    m.run(52)
    table = m.results()          # tidy long table, see model.results

Every keyword argument is something a user can change, so Mesa's Reset and ``batch_run`` rebuild the model
as ``RareEarthModel(**params)``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Iterable

import mesa
import numpy as np

from agents.armed_group import ArmedGroup
from agents.buyer import Buyer, BuyerBook
from agents.miner import Miner, MinerFleet
from agents.refiner import Refiner, after_market_all, expected_prices
from agents.state import State
from model import market
from model.params import PRODUCTS, REGIONS, Product, Region
from model.results import OUTPUTS, Recorder
from model.routes import RouteNetwork
from model.rules import Rules
from model.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

NP = len(PRODUCTS)
STREAMS = ("world", "miners", "armed_groups", "refiners", "policies", "events", "markets")
KG_PER_T = 1000.0
_NO_SITES = np.zeros(0, dtype=int)
_LEDGER_KEYS = {k: [f"{k}_{p}" for p in PRODUCTS] for k in ("stock_in", "stock_out", "produced")}
_NO_SITES.flags.writeable = False
LONG_MEMORY_WEEKS = 104.0


class RareEarthModel(mesa.Model):
    """Agents: ``State``, ``Miner``, ``Refiner``, ``ArmedGroup``, ``Buyer`` (see ``agents/``)."""

    def __init__(self, scenario: str | Scenario = "baseline", seed: int | None = 0, weeks: int | None = None,
                 policies: Iterable | None = None, run_id: str = "", **overrides):
        # SolaraViz hands the seed back as a string once edited (Mesa #3516); mesa.batch_run passes
        # None when it manages iterations itself: that means seed 0, never a seed from the clock
        seed = 0 if seed is None else int(seed)
        super().__init__(rng=seed)
        self.seed = seed
        self.spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if overrides:
            self.spec = self.spec.with_overrides(overrides)
        self.world = self.spec.load_world()
        self.weeks = int(weeks) if weeks is not None else self.spec.weeks
        self.start_date = self.spec.start
        self.run_id = run_id or f"{self.spec.name}-s{seed}"
        root = np.random.SeedSequence(seed)
        self.streams = {name: np.random.default_rng(child)
                        for name, child in zip(STREAMS, root.spawn(len(STREAMS)), strict=True)}
        b = self.world.behaviour
        self.behaviour = b
        self.rules = Rules()
        self.events: list[tuple[dt.date, str]] = []
        self.flooded_sites = np.zeros(0, dtype=int)
        self.demand_multiplier = 1.0

        # prices: initial anchors only; from week 1 on they come from the auctions
        base = np.array([self.world.product(p).price_2024_usd_per_kg for p in PRODUCTS])
        self.export_cost = np.array([self.world.product(p).export_cost_usd_per_kg for p in PRODUCTS])
        self.initial_prices = {Region.CN: base.copy(), Region.ROW: base + self.export_cost}
        self.prices = {r: self.initial_prices[r].copy() for r in REGIONS}
        self.price_memory = {r: self.initial_prices[r].copy() for r in REGIONS}
        self.long_memory = {r: self.initial_prices[r].copy() for r in REGIONS}  # two-year average
        self.baskets = {o.name: np.array([o.basket.get(p, 0.0) for p in PRODUCTS]) for o in self.world.ore_types}
        self.heavy_ore = {o.name: o.heavy for o in self.world.ore_types}

        # the world
        self.routes = RouteNetwork(self.world)
        self.fleet = MinerFleet(self.world, self.streams["world"])
        self.states = [State(self, s) for s in self.world.states]
        self.state_by_id = {s.sid: s for s in self.states}
        self.armed_groups = [ArmedGroup(self, g) for g in self.world.armed_groups]
        self.group_by_id = {g.gid: g for g in self.armed_groups}
        self.routes.set_levies({g.gid: g.levy for g in self.armed_groups})
        self._build_pools()
        self.refiners = [Refiner(self, r) for r in self.world.refiners]
        self.refiner_by_id = {r.rid: r for r in self.refiners}
        self.inflow_short = {r: np.zeros(NP) for r in REGIONS}
        self.inflow_long = {r: np.zeros(NP) for r in REGIONS}
        self.depth_short = {r: np.zeros(NP) for r in REGIONS}
        self.depth_long = {r: np.zeros(NP) for r in REGIONS}
        self._outlook_cache: dict[Region, np.ndarray] = {}  # supply_outlook, until inflows or depth move
        self.buyer_book = BuyerBook()  # buyers' state, one row each (Buyer agents are views)
        self.buyers = [Buyer(self, bs) for bs in self.world.buyers]
        self.miners = [Miner(self, i) for i in range(self.fleet.n)]
        self.ore_gate_price = np.full(len(self.pools), np.nan)
        self.edge_flow = np.zeros(len(self.routes.edge_src))

        # per-week records and cumulative ledgers (for invariants and outputs)
        self.ledger = {k: 0.0 for k in ("mined", "delivered", "processed")}
        self.ledger.update({f"{k}_{p}": 0.0 for k in ("produced", "sold", "bought", "consumed", "stock_endowed",
                                                      "stock_in", "stock_out") for p in PRODUCTS})
        self.week: dict = {}
        self.recorder = Recorder(self.run_id, self.spec.name, seed)
        self._corridors_seen: set[str] = set()

        # the timeline: policies and scripted events (scenario), plus any passed in directly
        self.timeline = list(self.spec.build_timeline())
        if policies:
            self.timeline.extend(policies)
        self.active: list = []
        self.datacollector = self._make_datacollector()
        self._record()
        self.datacollector.collect(self)

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def date(self) -> dt.date:
        return self.start_date + dt.timedelta(weeks=int(self.steps))

    def log_event(self, text: str) -> None:
        self.events.append((self.date, text))
        log.debug("%s: %s", self.date, text)

    def supply_outlook(self, region: Region) -> np.ndarray:
        """The public supply signal of a market, per product (1 = normal).

        The smaller of two ratios, each this fortnight's average over its half-year average: oxide
        contained in ore delivered to the region's plants (customs and trade data) and quantity offered
        in the region's auction (market depth). Clipped to 0-1.5.
        """
        cache = self._outlook_cache
        if region in cache:  # emptied whenever the signals it reads are updated (stages 4 and 6)
            return cache[region]
        out = np.full(NP, np.inf)
        for short, long in ((self.inflow_short[region], self.inflow_long[region]),
                            (self.depth_short[region], self.depth_long[region])):
            out = np.minimum(out, np.where(long > 0, short / np.maximum(long, 1e-12), 1.0))
        out = np.minimum(np.maximum(out, 0.0), 1.5)
        out.flags.writeable = False
        cache[region] = out
        return out

    def regions_for(self, refiner: Refiner) -> tuple[Region, ...]:
        return (Region.CN, Region.ROW) if refiner.home_region == Region.CN else (Region.ROW,)

    def typical_basket(self, refiner: Refiner) -> np.ndarray:
        """Average basket of the ore a plant can reach at the start, by mine capacity (initial stocks)."""
        total, acc = 0.0, np.zeros(NP)
        offered = self.fleet.offered()
        for pool in self.pools:
            if self.routes.path(pool["node"], refiner.node) is None:
                continue
            w = float(offered[pool["sites"]].sum())
            acc += w * self.baskets[pool["ore"]]
            total += w
        return acc / total if total > 0 else np.zeros(NP)

    def reachable_baskets(self, node: str) -> list[np.ndarray]:
        return [self.baskets[p["ore"]] for p in self.pools
                if self.routes.path(p["node"], node) is not None and self.fleet.capacity[p["sites"]].sum() > 0]

    def group_sites(self, group: str) -> np.ndarray:
        """Indices of the sites a controller (armed group or "") holds (read-only; cached with the pools)."""
        return self._sites_of.get(group, _NO_SITES)

    def ore_price_of_group(self, group: str) -> float:
        """Mean gate price this week over the pools a controller's sites sell in (nan if none traded)."""
        pools = self._pools_of.get(group)
        if pools is None:
            return float("nan")
        vals = self.ore_gate_price[pools]
        vals = vals[np.isfinite(vals)]
        return float(vals.mean()) if vals.size else float("nan")

    def _build_pools(self) -> None:
        """Group sites that sell as one ore market: same area, ore, controller and legal status."""
        f = self.fleet
        keys = [(f.node[i], f.ore[i], f.controller[i], bool(f.licensed[i]), bool(f.state_linked[i]),
                 f.country[i], f.specs[f.spec[i]].offtake) for i in range(f.n)]
        uniq = sorted(set(keys))
        index = {k: j for j, k in enumerate(uniq)}
        self.pool_of = np.array([index[k] for k in keys])
        self.pools = [{"node": k[0], "ore": k[1], "controller": k[2], "licensed": k[3], "state_linked": k[4],
                       "country": k[5], "offtake": k[6], "sites": np.flatnonzero(self.pool_of == j),
                       "node_i": f.nodes.index(k[0])} for j, k in enumerate(uniq)]
        for pool in self.pools:  # the sites of a pool, as a slice when they are consecutive (the usual case)
            s = pool["sites"]
            pool["at"] = slice(int(s[0]), int(s[-1]) + 1) if s.size and s[-1] - s[0] + 1 == s.size else s
        if hasattr(self, "ore_gate_price"):
            self.ore_gate_price = np.full(len(self.pools), np.nan)
        # who holds which sites, and the pools they sell in (controllers change only through here)
        self._sites_of, self._pools_of = {}, {}
        for c in sorted(set(f.controller.tolist())):
            idx = np.flatnonzero(f.controller == c)
            idx.flags.writeable = False
            self._sites_of[c] = idx
            self._pools_of[c] = np.unique(self.pool_of[idx])

    def set_controller(self, sites: np.ndarray, group: str) -> None:
        """Change who controls sites (a seizure); pools are rebuilt. Always change controllers here:
        pools, the sites of each group and their levies are derived from them."""
        self.fleet.controller[sites] = group
        self._build_pools()

    # --------------------------------------------------------------------------------------------- step
    def step(self) -> None:
        """Advance one week. The order of a week, written once:

        1. calendar: policies and scripted events start or stop
        2. states act: policies in force set this week's rules, then decide (lenders select projects),
           then each state acts (its own rules, stockpile mandate, project selection)
        3. armed groups act (conflict, levies, blockades, halts)
        4. miners produce; ore moves over open routes to the refiners that bid for it (ore markets)
        5. refiners process ore into oxides
        6. oxide markets clear per product and region, under export rules
        7. buyers consume; shortages are recorded; thrifting adapts
        8. investment pipeline advances (construction, capacity online); small sites enter and exit
        9. data collection
        """
        self.week = {}
        self._calendar()
        self._states_act()
        self._armed_groups_act()
        self._ore_markets()
        self._process()
        self._oxide_markets()
        self._consume()
        self._pipeline()
        self._record()
        self.datacollector.collect(self)
        if self.steps >= self.weeks:
            self.running = False

    def run(self, weeks: int | None = None) -> RareEarthModel:
        n = self.weeks - int(self.steps) if weeks is None else int(weeks)
        for _ in range(n):
            self.step()
        return self

    # ---------------------------------------------------------------------------------------- 1 calendar
    def _calendar(self) -> None:
        today = self.date
        for item in list(self.active):
            if item.end is not None and today >= item.end:
                item.stop(self)
                self.active = [x for x in self.active if x is not item]  # identity: policies hold arrays
                self.log_event(f"ends: {item.describe()}")
        for item in list(self.timeline):
            if today >= item.start:
                self.timeline = [x for x in self.timeline if x is not item]  # identity, as above
                item.begin(self)
                self.log_event(item.describe())
                if item.end is None or today < item.end:
                    if getattr(item, "persistent", True):
                        self.active.append(item)

    def add_policy(self, item) -> None:
        """Schedule a policy or event (takes effect at the next step if its start has passed)."""
        self.timeline.append(item)

    # ---------------------------------------------------------------------------------------- 2 states
    def _states_act(self) -> None:
        self.rules.reset_week()
        self.flooded_sites = np.zeros(0, dtype=int)
        for item in self.active:
            item.apply(self)  # rules first: every policy in force sets its rules ...
        for item in self.active:
            item.act(self)  # ... then policies that decide (a lender selecting projects) act on them
        for s in self.states:
            s.act()

    # ----------------------------------------------------------------------------------- 3 armed groups
    def _armed_groups_act(self) -> None:
        rng = self.streams["armed_groups"]
        for g in self.armed_groups:
            g.revenue_usd = 0.0
            g.act(rng)
        self.fleet.halted[self.flooded_sites] = True
        self.routes.set_levies({g.gid: g.levy for g in self.armed_groups})

    def site_levies(self) -> np.ndarray:
        lev = np.zeros(self.fleet.n)
        for g in self.armed_groups:
            lev[self.group_sites(g.gid)] = g.levy
        return lev

    # ---------------------------------------------------------------------------------------- 4 ore
    def _ore_markets(self) -> None:
        """One call auction per ore pool: sites ask cost + levy; reachable refiners bid their netback.

        A mine with an ``offtake`` refiner (its owner or a long-term contract) first delivers to it, up
        to what that plant wants and the route carries; the rest goes to the auction.
        """
        f = self.fleet
        offered = f.offered()
        levies = self.site_levies()
        f.sold[:] = 0.0
        residual = self.routes.edge_capacity.tolist()  # t this week's ore may still move on each edge
        for r in self.refiners:
            r.ore_bought = 0.0
            r._want = r.ore_wanted() if r.capacity_t_per_week > 0 else 0.0
        running = [r for r in self.refiners if r.capacity_t_per_week > 0]
        expected = dict(zip([r.rid for r in running], expected_prices(running, self), strict=True))
        self._flow = {"corridor": {}, "to_china": 0.0, "pairs": {}}
        self._inflow = {reg: np.zeros(NP) for reg in REGIONS}
        self.edge_flow = np.zeros(len(self.routes.edge_src))  # t REO on each route edge this week
        order = self.streams["markets"].permutation(len(self.pools))
        memory = self.behaviour.site_margin_memory_weeks
        # this week's bid of every plant in every pool: bid_factor x netback - route cost (transport, fees,
        # levies of armed groups on the way less the site's own group, which the site pays); plants
        # that can bid at all (a path, a positive price), by pool
        refiners = self.refiners
        refiner_index = {r.rid: i for i, r in enumerate(refiners)}
        netbacks, ore_col = self._netbacks(expected)
        t = self._ore_route_tables()
        levy_vec = np.array([self.routes.levies.get(g, 0.0) for g in t["groups"]])
        own_levy = np.array([self.group_by_id[c].levy if c in self.group_by_id else 0.0 for c in t["controller"]])
        route_cost = (t["base"] + (t["inc"] * levy_vec).sum(axis=2)) - t["own"] * own_levy[:, None]
        bid_factor = np.array([r.bid_factor for r in refiners])
        bid_price = bid_factor * netbacks[:, [ore_col[p["ore"]] for p in self.pools]].T - route_cost
        can_bid: list[list[int]] = [[] for _ in self.pools]
        for jj, ii in zip(*np.nonzero(t["has_path"] & ~(bid_price <= 0)), strict=True):
            can_bid[jj].append(int(ii))
        bid_price_rows = bid_price.tolist()
        any_ore_rule = self.rules.any_ore_rule()
        cost_sites = self._pool_site_costs()
        # books built from validated data are valid; anything else goes through the checking clear
        valid = bool(np.isfinite(levies).all() and np.isfinite(offered).all() and np.isfinite(bid_price).all())
        clear = market.clear_unchecked if valid else market.clear
        for j in order:
            pool = self.pools[j]
            sites = pool["at"]
            q = offered[sites].copy()
            total = float(q.sum())
            node_i = pool["node_i"]
            if total <= 0:
                continue
            owner = self.refiner_by_id.get(pool["offtake"])
            if owner is not None and owner._want > 1e-9 and self.rules.ore_allowed(self, owner, pool):
                path = self.routes.path(pool["node"], owner.node)
                if path is not None:
                    cap = _spare(residual, path)
                    got = min(owner._want, total, cap)
                    if got > 0:
                        fill = q * (got / total)
                        self._deliver(pool, owner, path, got, fill, levies, residual)
                        q -= fill
                        total -= got
            if total <= 1e-9:
                # what the captive ore is worth at the gate to its owner (the mine's netback signal):
                # the owner's bid, had it bid
                oi = refiner_index.get(owner.rid, -1) if owner is not None else -1
                gate = (bid_price_rows[j][oi] if oi >= 0 and owner.rid in expected and t["has_path"][j, oi]
                        else float("nan"))
                f.update_netback(node_i, gate, memory)
                continue
            bidders, paths, bid_p, bid_q = [], [], [], []
            for i in can_bid[j]:
                r = refiners[i]
                if r._want <= 1e-9 or (any_ore_rule and not self.rules.ore_allowed(self, r, pool)):
                    continue
                path = t["paths"][j][i]
                qty = min(r._want, _spare(residual, path))
                if qty <= 1e-9:
                    continue
                bidders.append(r)
                paths.append(path)
                bid_p.append(bid_price_rows[j][i])
                bid_q.append(qty)
            if not bidders:
                f.update_netback(node_i, np.nan, memory)
                continue
            ask_p = cost_sites[j] + levies[sites]
            res = clear(ask_p, q, np.array(bid_p), np.array(bid_q))
            self.ore_gate_price[j] = res.price
            f.update_netback(node_i, res.price if res.volume > 0 else res.best_bid, memory)
            if res.volume <= 0:
                continue
            # each bid was capped by its own path's spare capacity; bidders sharing a road could
            # together overfill it, so deliveries go in bid-price order and stop at what the road carries
            for i in sorted(range(len(bidders)), key=lambda i: -bid_p[i]):
                got = float(res.bid_fill[i])
                if got > 0:
                    got = min(got, _spare(residual, paths[i]))
                if got > 1e-12:
                    self._deliver(pool, bidders[i], paths[i], got, res.ask_fill * (got / res.volume), levies,
                                  residual)
        self.ledger["mined"] += float(f.sold.sum())
        self.ledger["delivered"] += sum(r.ore_bought for r in self.refiners)
        for reg in REGIONS:
            inflow = self._inflow[reg]
            if not self.inflow_long[reg].any():
                self.inflow_short[reg] = inflow.copy()
                self.inflow_long[reg] = inflow.copy()
            self.inflow_short[reg] += 0.5 * (inflow - self.inflow_short[reg])
            self.inflow_long[reg] += (inflow - self.inflow_long[reg]) / 26.0
        self._outlook_cache.clear()
        self.week.update(corridor_flow=self._flow["corridor"], to_china=self._flow["to_china"],
                         flows=self._flow["pairs"])

    def _netbacks(self, expected: dict) -> tuple[np.ndarray, dict[str, int]]:
        """``Refiner.netback`` of every plant (rows) for every ore basket (columns), at this week's
        expected prices (plants without capacity: zero prices). Same arithmetic as the method."""
        refiners = self.refiners
        static = self.__dict__.get("_netback_static")
        if static is None or static[0] != len(refiners):  # plants' baskets, separation and recovery
            ores = list(self.baskets)
            static = (len(refiners), ores, np.array([self.baskets[o] for o in ores]).reshape(len(ores), NP),
                      np.array([r.separates for r in refiners], dtype=bool).reshape(len(refiners), NP),
                      np.array([r.recovery for r in refiners]))
            self._netback_static = static
        _, ores, basket, separates, recovery = static
        zero = np.zeros(NP)
        prices = np.array([expected.get(r.rid, zero) for r in refiners]).reshape(len(refiners), NP)
        unit_cost = np.array([r.unit_cost() for r in refiners])
        value = (basket[None, :, :] * separates[:, None, :] * prices[:, None, :]).sum(axis=2)
        return value * recovery[:, None] - unit_cost[:, None], {o: i for i, o in enumerate(ores)}

    def _ore_route_tables(self) -> dict:
        """Every plant's cheapest open path from every pool, as arrays (pools x plants): has a path, base
        cost (transport and fees), which armed groups levy on it (x groups), whether the pool's own group
        does. Rebuilt when a route opens or closes or pools change; levies are priced weekly on top."""
        cached = getattr(self, "_route_tables", None)
        if (cached is not None and cached["version"] == self.routes.version and cached["pools"] is self.pools
                and cached["n_refiners"] == len(self.refiners)):
            return cached
        groups = [g.gid for g in self.armed_groups]
        n_p, n_r = len(self.pools), len(self.refiners)
        t = {"version": self.routes.version, "pools": self.pools, "n_refiners": n_r, "groups": groups,
             "controller": [p["controller"] for p in self.pools], "paths": [],
             "has_path": np.zeros((n_p, n_r), dtype=bool), "base": np.zeros((n_p, n_r)),
             "inc": np.zeros((n_p, n_r, len(groups))), "own": np.zeros((n_p, n_r))}
        for j, pool in enumerate(self.pools):
            paths = [self.routes.path(pool["node"], r.node) for r in self.refiners]
            t["paths"].append(paths)
            for i, p in enumerate(paths):
                if p is None:
                    continue
                on_path = self.routes.path_groups(p)
                t["has_path"][j, i] = True
                t["base"][j, i] = p.base_cost_usd_per_kg
                t["inc"][j, i] = [g in on_path for g in groups]
                t["own"][j, i] = bool(pool["controller"]) and pool["controller"] in on_path
        self._route_tables = t
        return t

    def _pool_site_costs(self) -> list[np.ndarray]:
        """Each pool's sites' cash cost (USD/kg), in site order (cached with the pools)."""
        cached = getattr(self, "_site_costs", None)
        if cached is None or cached[0] is not self.pools:
            cached = (self.pools, [self.fleet.cost[p["sites"]] for p in self.pools])
            self._site_costs = cached
        return cached[1]

    def _deliver(self, pool: dict, r: Refiner, path, got: float, site_fill: np.ndarray, levies: np.ndarray,
                 residual: list[float]) -> None:
        """Move ``got`` t of a pool's ore to refiner ``r`` along ``path``; pay levies; record flows."""
        sites = pool["at"]
        self.fleet.sold[sites] += site_fill
        group = pool["controller"]
        if group:
            self.group_by_id[group].collect(float((site_fill * levies[sites]).sum()) * KG_PER_T)
        r.receive_ore(got, self.baskets[pool["ore"]])
        self._inflow[r.home_region] += got * self.baskets[pool["ore"]] * r.separates
        r._want -= got
        for e in path.edges:
            residual[e] -= got
            self.edge_flow[e] += got
        for g in self.routes.path_groups(path):
            if g != group:
                self.group_by_id[g].collect(got * self.group_by_id[g].levy * KG_PER_T)
        if pool["country"] == "MM":
            c = self._flow["corridor"]
            c[path.corridor] = c.get(path.corridor, 0.0) + got
            if r.home_region == Region.CN:
                self._flow["to_china"] += got
        key = (pool["country"], r.country)
        self._flow["pairs"][key] = self._flow["pairs"].get(key, 0.0) + got

    # -------------------------------------------------------------------------------------- 5 processing
    def _process(self) -> None:
        produced = {}
        for r in self.refiners:
            if r.capacity_t_per_week <= 0 and r.feed_reo <= 0:
                r.processed, r.produced = 0.0, np.zeros(NP)
                continue
            out = r.process()
            self.ledger["processed"] += r.processed
            produced[r.country] = produced.get(r.country, np.zeros(NP)) + out
            for key, x in zip(_LEDGER_KEYS["produced"], out.tolist(), strict=True):
                self.ledger[key] += x
        self.week["produced"] = produced

    # ------------------------------------------------------------------------------------ 6 oxide markets
    def _oxide_markets(self) -> None:
        b = self.behaviour
        cap = self.rules.export_cap_fraction()
        n_steps = b.ladder_steps
        book = self.buyer_book
        refiners = self.refiners
        refiner_index = {r.rid: i for i, r in enumerate(refiners)}
        sold_m = np.zeros((len(REGIONS), len(refiners), NP))  # t sold by market, plant, product
        offers = {r.rid: r.offer_split(cap) for r in refiners if r.inventory.sum() > 0}
        self._apply_export_quota(offers)
        outlook = book.by_region({reg: self.supply_outlook(reg) for reg in REGIONS})
        bid_lvl_all, bid_qty_all = book.bid(b.buyer_urgency, outlook, b.buyer_forward_weeks, self.demand_multiplier)
        bought = np.zeros((book.n, NP))
        paid = np.zeros((book.n, NP))
        # only a state with a stockpile mandate places orders (the others' would all be 0)
        stock = {}
        if any(s.stock_mandate for s in self.states):
            need = book.need(self.demand_multiplier)
            signal = np.where(need > 0, book.shortage / np.maximum(need, 1e-12), 0.0) / book.n
            shortage_signal = {reg: np.zeros(NP) + signal[book.rows(region=reg)].sum(axis=0) for reg in REGIONS}
            stock = {s.sid: s.stock_orders(self.prices[s.region], shortage_signal[s.region])
                     for s in self.states if s.stock_mandate}
        # a state takes part in an auction only when it bids or offers something (orders of zero
        # quantity never trade, so leaving them out of the book changes no one's fill)
        trading = [s for s in self.states if s.sid in stock and (stock[s.sid][1].any() or stock[s.sid][3].any())]
        stock_bought = {s.sid: np.zeros(NP) for s in trading}
        stock_sold = {s.sid: np.zeros(NP) for s in trading}
        clearing = {}
        for g, reg in enumerate(REGIONS):
            # every participant's level and quantity per product, as matrices (one row each)
            sellers = [r for r in refiners if r.rid in offers and reg in r.ask]
            s_states = [st for st in trading if st.region == reg]
            rows = book.rows(region=reg)
            ns, nb = len(sellers), rows.size
            ask_lvl = np.array([r.ask[reg] for r in sellers] + [stock[st.sid][2] for st in s_states]).reshape(-1, NP)
            ask_qty = np.array([offers[r.rid][reg] for r in sellers] + [stock[st.sid][3] for st in s_states]
                               ).reshape(-1, NP)
            bid_lvl, bid_qty = bid_lvl_all[rows], bid_qty_all[rows]
            if s_states:
                bid_lvl = np.concatenate((bid_lvl, np.array([stock[st.sid][0] for st in s_states])))
                bid_qty = np.concatenate((bid_qty, np.array([stock[st.sid][1] for st in s_states])))
            # a state's single order is a ladder of identical steps (same clearing as one order)
            ask_fac = self._ladder(ns, len(s_states))
            bid_fac = self._ladder(nb, len(s_states))
            # the books of all products at once: row k of each matrix is product k's book
            aq = np.where(ask_qty > 1e-9, ask_qty, 0.0).T
            bq = np.where((bid_qty > 1e-9) & (bid_lvl > 0), bid_qty, 0.0).T
            ap = (np.maximum(ask_lvl, 0.0).T[:, :, None] * ask_fac).reshape(NP, -1)
            bp = (np.maximum(bid_lvl, 0.0).T[:, :, None] * bid_fac).reshape(NP, -1)
            aq = np.repeat(aq / n_steps, n_steps, axis=1)
            bq = np.repeat(bq / n_steps, n_steps, axis=1)
            # books built here are valid by construction; anything else goes through the checking clear
            valid = math.isfinite(float(ap.sum() + bp.sum() + aq.sum() + bq.sum()))
            clear = market.clear_unchecked if valid else market.clear
            results = [clear(ap[k], aq[k], bp[k], bq[k]) for k in range(NP)]
            # fills per participant (its ladder steps added up), products in rows
            a_fill = np.array([res.ask_fill for res in results]).reshape(NP, -1, n_steps).sum(axis=2)
            b_fill = np.array([res.bid_fill for res in results]).reshape(NP, -1, n_steps).sum(axis=2)
            price = np.array([res.price for res in results])
            sold_m[g, [refiner_index[r.rid] for r in sellers]] = a_fill[:, :ns].T
            got = b_fill[:, :nb]
            bought[rows] = got.T
            paid[rows] = np.where(got > 0, got * price[:, None], 0.0).T
            for j, st in enumerate(s_states):
                stock_sold[st.sid] += a_fill[:, ns + j]
                stock_bought[st.sid] += b_fill[:, nb + j]
            for k, prod in enumerate(PRODUCTS):
                res = results[k]
                clearing[(reg, prod)] = res
                if self.depth_long[reg][k] <= 0:
                    self.depth_short[reg][k] = self.depth_long[reg][k] = res.offered
                self.depth_short[reg][k] += 0.5 * (res.offered - self.depth_short[reg][k])
                self.depth_long[reg][k] += (res.offered - self.depth_long[reg][k]) / 26.0
                p = res.price
                if math.isfinite(p) and res.volume > 0:
                    self.prices[reg][k] = p
                    a = 1.0 / b.buyer_price_memory_weeks
                    self.price_memory[reg][k] = (1 - a) * self.price_memory[reg][k] + a * p
                    self.long_memory[reg][k] += (p - self.long_memory[reg][k]) / LONG_MEMORY_WEEKS
        self._outlook_cache.clear()  # market depth moved
        clear_prices = {reg: np.array([clearing[(reg, p)].price if clearing[(reg, p)].volume > 0 else np.nan
                                       for p in PRODUCTS]) for reg in REGIONS}
        sold = {r.rid: {reg: sold_m[g, i] for g, reg in enumerate(REGIONS)} for i, r in enumerate(refiners)}
        sellers = [r for r in refiners if r.rid in offers]
        after_market_all(sellers, [sold[r.rid] for r in sellers], clear_prices, b.seller_markup_rate,
                         b.seller_target_cover_weeks, self.export_cost, cap, b.export_share_sensitivity,
                         b.seller_reservation_ratio)
        book.receive(bought, paid)
        # ledgers: each product's total is added plant by plant (buyer, state by state), in agent order
        ledger = self.ledger
        sold_total = (sold_m[0] + sold_m[1]).T.tolist()  # CN + ROW, per plant
        for k, p in enumerate(PRODUCTS):
            acc = ledger[f"sold_{p}"]
            for v in sold_total[k]:
                acc += v
            ledger[f"sold_{p}"] = acc
            acc = ledger[f"bought_{p}"]
            for v in bought[:, k].tolist():
                acc += v
            ledger[f"bought_{p}"] = acc
        for s in self.states:
            if s.sid not in stock_bought:  # no orders: nothing bought or sold (the ledger is unchanged)
                s.settle_stock(np.zeros(NP), np.zeros(NP), self.prices[s.region])
                continue
            s.settle_stock(stock_bought[s.sid], stock_sold[s.sid], self.prices[s.region])
            for key_in, key_out, x, y in zip(_LEDGER_KEYS["stock_in"], _LEDGER_KEYS["stock_out"],
                                             stock_bought[s.sid].tolist(), stock_sold[s.sid].tolist(), strict=True):
                ledger[key_in] += x
                ledger[key_out] += y
        self.week["clearing"] = clearing
        self.week["clearing_prices"] = clear_prices
        self._floor_payments(sold)

    def _ladder(self, n_laddered: int, n_single: int) -> np.ndarray:
        """Price factors of a book's orders: ``n_laddered`` participants bid or offer a ladder of
        ``ladder_steps`` prices around their level, ``n_single`` (states) one price in as many steps."""
        b = self.behaviour
        key = (b.ladder_steps, b.ladder_spread, n_laddered, n_single)
        cache = self.__dict__.setdefault("_ladders", {})
        if key not in cache:
            n_steps, spread = b.ladder_steps, b.ladder_spread
            steps = np.linspace(1 - spread / 2, 1 + spread / 2, n_steps) if n_steps > 1 else np.ones(1)
            cache[key] = np.vstack([np.tile(steps, (n_laddered, 1)), np.ones((n_single, n_steps))])
        return cache[key]

    def _apply_export_quota(self, offers: dict) -> None:
        """Scale Chinese plants' export offers pro rata so that they fit an export quota."""
        quota = self.rules.export_quota
        if not np.isfinite(quota).any():
            return
        china = [rid for rid in offers if self.refiner_by_id[rid].home_region == Region.CN]
        total = sum((offers[rid][Region.ROW] for rid in china), np.zeros(NP))
        scale = np.where(total > quota, quota / np.maximum(total, 1e-12), 1.0)
        for rid in china:
            moved = offers[rid][Region.ROW] * (1 - scale)
            offers[rid][Region.ROW] = offers[rid][Region.ROW] - moved
            offers[rid][Region.CN] = offers[rid][Region.CN] + moved

    def _floor_payments(self, sold: dict) -> None:
        """A price floor's state pays covered plants the gap between floor and market price."""
        pay: dict[str, float] = {}
        for r in self.refiners if self.rules.any_floor() else ():
            floor = self.rules.floor_for(r.country, r.rid)
            if floor is None:
                continue
            for reg, q in sold[r.rid].items():
                gap = np.maximum(floor - self.prices[reg], 0.0)
                pay[r.country] = pay.get(r.country, 0.0) + float((gap * q).sum()) * KG_PER_T
        self.week["floor_payments"] = pay

    # ------------------------------------------------------------------------------------- 7 consumption
    def _consume(self) -> None:
        b = self.behaviour
        book = self.buyer_book
        book.consume(book.by_region(self.week["clearing_prices"]), b.buyer_price_memory_weeks,
                     b.thrift_rate_per_week, b.thrift_trigger_ratio, self.demand_multiplier)
        for k, p in enumerate(PRODUCTS):  # added buyer by buyer, in agent order
            acc = self.ledger[f"consumed_{p}"]
            for v in book.consumed[:, k].tolist():
                acc += v
            self.ledger[f"consumed_{p}"] = acc
        growth = b.demand_growth_per_year
        if growth:
            self.demand_multiplier *= (1 + growth) ** (1 / 52)

    # -------------------------------------------------------------------------------------- 8 pipeline
    def _pipeline(self) -> None:
        for r in self.refiners:
            if r.advance_pipeline():
                self.log_event(f"{r.spec.name} comes online ({r.nameplate_t_per_week:.0f} t/week)")
            r.adapt(self.price_memory[r.home_region])
        opened, closed = self.fleet.entry_exit_step(
            self.streams["miners"], self.behaviour.site_entry_rate, self.behaviour.site_exit_rate,
            self.site_levies())
        self.week["sites_opened"], self.week["sites_closed"] = opened, closed

    # ------------------------------------------------------------------------------------------ 9 record
    def _record(self) -> None:
        rec, step, date = self.recorder, int(self.steps), self.date
        week_rows: list[tuple] = []  # (variable, value, region, product), handed to the recorder at once

        def add(variable: str, value, region: str = "", product: str = "") -> None:
            week_rows.append((variable, value, region, product))

        clearing = self.week.get("clearing", {})
        # totals by region and by state, added agent by agent in agent order (plain floats)
        book = self.buyer_book
        inv_r = np.zeros((len(REGIONS), NP))
        np.add.at(inv_r, self._refiner_region_codes(),
                  np.array([r.inventory for r in self.refiners]).reshape(len(self.refiners), NP))
        inv_b = book.totals(book.inventory, by="region")
        sids = book.state_codes()[0]
        short = book.totals(book.shortage, by="state")
        cons = book.totals(book.consumed, by="state")
        for g, reg in enumerate(REGIONS):
            for k, p in enumerate(PRODUCTS):
                add("price", self.prices[reg][k], reg, p)
                res = clearing.get((reg, p))
                add("volume", res.volume if res else 0.0, reg, p)
                add("offered", res.offered if res else 0.0, reg, p)
            for k, p in enumerate(PRODUCTS):
                add("inventory_refiners", inv_r[g, k], reg, p)
                add("inventory_buyers", inv_b[g, k], reg, p)
        for i, sid in enumerate(sids):
            for k, p in enumerate(PRODUCTS):
                add("shortage", short[i, k], sid, p)
                add("consumption", cons[i, k], sid, p)
        produced = self.week.get("produced", {})
        total = sum(produced.values(), np.zeros(NP))
        for country in sorted(produced):
            for k, p in enumerate(PRODUCTS):
                add("refined_output", produced[country][k], country, p)
        cn = produced.get("CN", np.zeros(NP))
        share = float(cn.sum() / total.sum()) if total.sum() > 0 else np.nan
        if np.isfinite(share):
            add("china_refined_share", share)
            for k, p in enumerate(PRODUCTS):
                if total[k] > 0:
                    add("china_refined_share", cn[k] / total[k], "", p)
        # every route Myanmar ore has used is recorded every week, 0 when idle (no stale values)
        flows = self.week.get("corridor_flow", {})
        self._corridors_seen.update(flows)
        for corridor in sorted(self._corridors_seen):
            add("myanmar_ore_flow", flows.get(corridor, 0.0), corridor or "other")
        if "to_china" in self.week:
            add("myanmar_ore_to_china", self.week["to_china"])
        heavy = self._heavy_feed_share()
        if np.isfinite(heavy):
            add("myanmar_share_cn_heavy_feed", heavy)
        for j, pool in enumerate(self.pools):
            if pool["country"] == "MM" and math.isfinite(self.ore_gate_price[j]):
                add("ore_price", self.ore_gate_price[j], pool["node"])
        for g in self.armed_groups:
            add("levy_revenue", g.revenue_usd / 1e6, g.gid)
            add("conflict", int(g.conflict), g.gid)
        for s in self.states:
            if s.stockpile.any() or s.stock_mandate:
                for k, p in enumerate(PRODUCTS):
                    add("stockpile", s.stockpile[k], s.sid, p)
        caps: dict[str, float] = {}
        for r in self.refiners:
            caps[r.country] = caps.get(r.country, 0.0) + r.capacity_t_per_week
        for c in sorted(caps):
            add("capacity_online", caps[c], c)
        kachin, sites_of_country = self._fleet_groups()
        add("kachin_active_sites", int((self.fleet.active & kachin).sum()))
        for c, idx in sites_of_country.items():  # sorted by country
            add("ore_mined", float(self.fleet.sold[idx].sum()), c)
        for k, p in enumerate(PRODUCTS):
            add("export_allowed", float(min(1.0, self.rules.export_cap[k])), "", p)
        for c, usd in sorted(self.week.get("floor_payments", {}).items()):
            add("floor_payments", usd / 1e6, c)
        rec.add_rows(step, date, week_rows)

    def _refiner_region_codes(self) -> np.ndarray:
        """Each plant's home market as an index into REGIONS (cached while the plants are the same)."""
        cached = self.__dict__.get("_refiner_codes")
        if cached is None or cached[0] != len(self.refiners):
            cached = (len(self.refiners), np.array([REGIONS.index(r.home_region) for r in self.refiners], dtype=int))
            self._refiner_codes = cached
        return cached[1]

    def _fleet_groups(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sites that do not move between groups: the Kachin small-site fields, and sites per country."""
        cached = self.__dict__.get("_fleet_groups_cache")
        if cached is None or cached[0] is not self.fleet:
            f = self.fleet
            kachin = (f.country == "MM") & f.entry_exit
            by_country = {str(c): np.flatnonzero(f.country == c) for c in np.unique(f.country)}
            cached = (f, kachin, by_country)
            self._fleet_groups_cache = cached
        return cached[1], cached[2]

    def _heavy_feed_share(self) -> float:
        """Myanmar's share of the Dy contained in ore delivered to Chinese refiners this week."""
        flows = self.week.get("flows")
        if not flows:
            return float("nan")
        # flows are tonnes REO by (origin country, refiner country); Dy content by origin's ore mix
        dy = {}
        for pool in self.pools:
            c = pool["country"]
            w = float(self.fleet.sold[pool["at"]].sum())
            dy.setdefault(c, [0.0, 0.0])
            dy[c][0] += w * self.baskets[pool["ore"]][PRODUCTS.index(Product.DY)]
            dy[c][1] += w
        tot, mm = 0.0, 0.0
        for (origin, dest), q in flows.items():
            if dest != "CN" or origin not in dy or dy[origin][1] <= 0:
                continue
            content = q * dy[origin][0] / dy[origin][1]
            tot += content
            if origin == "MM":
                mm += content
        return mm / tot if tot > 0 else float("nan")

    # ------------------------------------------------------------------------------------------- outputs
    def results(self):
        """The tidy long table of every output recorded so far."""
        return self.recorder.frame()

    def latest(self, variable: str, region: str = "", product: str = "") -> float:
        return self.recorder.latest.get((variable, region, product), float("nan"))

    def _make_datacollector(self) -> mesa.DataCollector:
        """A Mesa view of the main outputs (for ``make_plot_component`` and ``batch_run``)."""
        reporters = {}
        for reg in REGIONS:
            for p in PRODUCTS:
                reporters[reporter_name("price", reg, p)] = _latest("price", reg, p)
                reporters[reporter_name("volume", reg, p)] = _latest("volume", reg, p)
        reporters["china_refined_share"] = _latest("china_refined_share")
        reporters["myanmar_ore_to_china"] = _latest("myanmar_ore_to_china")
        reporters["kachin_active_sites"] = _latest("kachin_active_sites")
        for sid in sorted({b.state_id for b in self.buyers}):
            for p in PRODUCTS:
                reporters[reporter_name("shortage", sid, p)] = _latest("shortage", sid, p)
        return mesa.DataCollector(model_reporters=reporters)


def _spare(residual: list[float], path) -> float:
    """Tonnes a path can still carry this week: the least spare capacity of its edges (inf if none)."""
    return min((residual[e] for e in path.edges), default=np.inf)


def reporter_name(variable: str, region: str = "", product: str = "") -> str:
    """Name of a DataCollector column, shared by the model and the UI."""
    assert variable in OUTPUTS
    return "_".join(x for x in (variable, str(region), str(product)) if x)


def _latest_value(m: RareEarthModel, variable: str, region: str, product: str) -> float:
    return m.latest(variable, region, product)


def _latest(variable: str, region: str = "", product: str = "") -> functools.partial:
    """A DataCollector reporter (a partial of a module function, so that models pickle)."""
    return functools.partial(_latest_value, variable=variable, region=str(region), product=str(product))
