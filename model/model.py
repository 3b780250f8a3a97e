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
import logging
from collections.abc import Iterable

import mesa
import numpy as np

from agents.armed_group import ArmedGroup
from agents.buyer import Buyer
from agents.miner import Miner, MinerFleet
from agents.refiner import Refiner
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
LONG_MEMORY_WEEKS = 104.0


class RareEarthModel(mesa.Model):
    """Agents: ``State``, ``Miner``, ``Refiner``, ``ArmedGroup``, ``Buyer`` (see ``agents/``)."""

    def __init__(self, scenario: str | Scenario = "baseline", seed: int = 0, weeks: int | None = None,
                 policies: Iterable | None = None, run_id: str = "", **overrides):
        seed = int(seed)  # SolaraViz hands the seed back as a string once edited (Mesa #3516)
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
        self.buyers = [Buyer(self, bs) for bs in self.world.buyers]
        self.miners = [Miner(self, i) for i in range(self.fleet.n)]
        self.ore_gate_price = np.full(len(self.pools), np.nan)
        self.edge_flow = np.zeros(len(self.routes.edge_src))

        # per-week records and cumulative ledgers (for invariants and outputs)
        self.ledger = {k: 0.0 for k in ("mined", "delivered", "processed")}
        self.ledger.update({f"{k}_{p}": 0.0 for k in ("produced", "sold", "bought", "consumed",
                                                      "stock_in", "stock_out") for p in PRODUCTS})
        self.week: dict = {}
        self.recorder = Recorder(self.run_id, self.spec.name, seed)

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
        out = np.full(NP, np.inf)
        for short, long in ((self.inflow_short[region], self.inflow_long[region]),
                            (self.depth_short[region], self.depth_long[region])):
            out = np.minimum(out, np.where(long > 0, short / np.maximum(long, 1e-12), 1.0))
        return np.clip(out, 0.0, 1.5)

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

    def ore_price_at_sites(self, sites: np.ndarray) -> float:
        if sites.size == 0:
            return float("nan")
        pools = np.unique(self.pool_of[sites])
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
                       "country": k[5], "offtake": k[6], "sites": np.flatnonzero(self.pool_of == j)} for j, k in enumerate(uniq)]
        if hasattr(self, "ore_gate_price"):
            self.ore_gate_price = np.full(len(self.pools), np.nan)

    def set_controller(self, sites: np.ndarray, group: str) -> None:
        """Change who controls sites (a seizure); pools are rebuilt."""
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
                self.active.remove(item)
                self.log_event(f"ends: {item.describe()}")
        for item in list(self.timeline):
            if today >= item.start:
                self.timeline.remove(item)
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
            lev[self.fleet.controller == g.gid] = g.levy
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
        residual = self.routes.edge_capacity.copy()
        for r in self.refiners:
            r.ore_bought = 0.0
            r._want = r.ore_wanted() if r.capacity_t_per_week > 0 else 0.0
        expected = {r.rid: r.expected_price(self) for r in self.refiners if r.capacity_t_per_week > 0}
        self._flow = {"corridor": {}, "to_china": 0.0, "pairs": {}}
        self._inflow = {reg: np.zeros(NP) for reg in REGIONS}
        self.edge_flow = np.zeros(len(self.routes.edge_src))  # t REO on each route edge this week
        order = self.streams["markets"].permutation(len(self.pools))
        memory = self.behaviour.site_margin_memory_weeks
        for j in order:
            pool = self.pools[j]
            sites = pool["sites"]
            q = offered[sites].copy()
            total = float(q.sum())
            node_i = f.nodes.index(pool["node"])
            if total <= 0:
                continue
            basket = self.baskets[pool["ore"]]
            owner = self.refiner_by_id.get(pool["offtake"])
            if owner is not None and owner._want > 1e-9 and self.rules.ore_allowed(self, owner, pool):
                path = self.routes.path(pool["node"], owner.node)
                if path is not None:
                    cap = min((residual[e] for e in path.edges), default=np.inf)
                    got = min(owner._want, total, cap)
                    if got > 0:
                        fill = q * (got / total)
                        self._deliver(pool, owner, path, got, fill, levies, residual)
                        q -= fill
                        total -= got
            if total <= 1e-9:
                f.update_netback(node_i, self._gate_value(owner, basket, expected, pool), memory)
                continue
            bidders, bid_p, bid_q, paths = [], [], [], []
            for r in self.refiners:
                if r._want <= 1e-9 or not self.rules.ore_allowed(self, r, pool):
                    continue
                path = self.routes.path(pool["node"], r.node)
                if path is None:
                    continue
                price = r.bid_factor * r.netback(basket, expected[r.rid]) - self._route_cost(path, pool)
                qty = min(r._want, min((residual[e] for e in path.edges), default=np.inf))
                if price <= 0 or qty <= 1e-9:
                    continue
                bidders.append(r)
                bid_p.append(price)
                bid_q.append(qty)
                paths.append(path)
            if not bidders:
                f.update_netback(node_i, np.nan, memory)
                continue
            ask_p = f.cost[sites] + levies[sites]
            res = market.clear(ask_p, q, np.array(bid_p), np.array(bid_q))
            self.ore_gate_price[j] = res.price
            f.update_netback(node_i, res.price if res.volume > 0 else res.best_bid, memory)
            if res.volume <= 0:
                continue
            for r, path, got in zip(bidders, paths, res.bid_fill, strict=True):
                if got > 0:
                    share = got / res.volume
                    self._deliver(pool, r, path, got, res.ask_fill * share, levies, residual)
        self.ledger["mined"] += float(f.sold.sum())
        self.ledger["delivered"] += sum(r.ore_bought for r in self.refiners)
        for reg in REGIONS:
            inflow = self._inflow[reg]
            if not self.inflow_long[reg].any():
                self.inflow_short[reg] = inflow.copy()
                self.inflow_long[reg] = inflow.copy()
            self.inflow_short[reg] += 0.5 * (inflow - self.inflow_short[reg])
            self.inflow_long[reg] += (inflow - self.inflow_long[reg]) / 26.0
        self.week.update(corridor_flow=self._flow["corridor"], to_china=self._flow["to_china"],
                         flows=self._flow["pairs"])

    def _route_cost(self, path, pool: dict) -> float:
        """Transport, fees and edge levies; the site's own group is paid by the site, not twice."""
        cost = self.routes.cost(path)
        group = pool["controller"]
        if group and group in self.routes.path_groups(path):
            cost -= self.group_by_id[group].levy
        return cost

    def _gate_value(self, owner: Refiner | None, basket, expected, pool: dict) -> float:
        """What captive ore is worth at the gate to its owner (for the mine's netback signal)."""
        if owner is None or owner.rid not in expected:
            return float("nan")
        path = self.routes.path(pool["node"], owner.node)
        if path is None:
            return float("nan")
        return owner.bid_factor * owner.netback(basket, expected[owner.rid]) - self._route_cost(path, pool)

    def _deliver(self, pool: dict, r: Refiner, path, got: float, site_fill: np.ndarray, levies: np.ndarray,
                 residual: np.ndarray) -> None:
        """Move ``got`` t of a pool's ore to refiner ``r`` along ``path``; pay levies; record flows."""
        sites = pool["sites"]
        self.fleet.sold[sites] += site_fill
        group = pool["controller"]
        if group:
            self.group_by_id[group].collect(float((site_fill * levies[sites]).sum()) * KG_PER_T)
        r.receive_ore(got, self.baskets[pool["ore"]], audited=pool["licensed"], sanctioned=pool["state_linked"])
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
            for k, p in enumerate(PRODUCTS):
                self.ledger[f"produced_{p}"] += out[k]
        self.week["produced"] = produced

    # ------------------------------------------------------------------------------------ 6 oxide markets
    def _oxide_markets(self) -> None:
        b = self.behaviour
        cap = self.rules.export_cap_fraction()
        n_steps, spread = b.ladder_steps, b.ladder_spread
        sold = {r.rid: {reg: np.zeros(NP) for reg in REGIONS} for r in self.refiners}
        offers = {r.rid: r.offer_split(cap) for r in self.refiners if r.inventory.sum() > 0}
        self._apply_export_quota(offers)
        buyer_bids = {bu.bid_id: bu.bid(b.buyer_urgency) for bu in self.buyers}
        bought = {bu.bid_id: np.zeros(NP) for bu in self.buyers}
        paid = {bu.bid_id: np.zeros(NP) for bu in self.buyers}
        shortage_signal = {reg: np.zeros(NP) for reg in REGIONS}
        for bu in self.buyers:
            need = bu.need()
            shortage_signal[bu.region] += np.where(need > 0, bu.shortage / np.maximum(need, 1e-12), 0.0) / len(
                self.buyers)
        stock = {s.sid: s.stock_orders(self.prices[s.region], shortage_signal[s.region]) for s in self.states}
        stock_bought = {s.sid: np.zeros(NP) for s in self.states}
        stock_sold = {s.sid: np.zeros(NP) for s in self.states}
        clearing = {}
        steps = (np.linspace(1 - spread / 2, 1 + spread / 2, n_steps) if n_steps > 1 else np.ones(1))
        for reg in REGIONS:
            # every participant's level and quantity per product, as matrices (one row each)
            sellers = [r for r in self.refiners if r.rid in offers and reg in r.ask]
            s_states = [st for st in self.states if st.region == reg]
            ask_lvl = np.array([r.ask[reg] for r in sellers] + [stock[st.sid][2] for st in s_states]).reshape(-1, NP)
            ask_qty = np.array([offers[r.rid][reg] for r in sellers] + [stock[st.sid][3] for st in s_states]
                               ).reshape(-1, NP)
            buyers = [bu for bu in self.buyers if bu.region == reg]
            bid_lvl = np.array([buyer_bids[bu.bid_id][0] for bu in buyers] + [stock[st.sid][0] for st in s_states]
                               ).reshape(-1, NP)
            bid_qty = np.array([buyer_bids[bu.bid_id][1] for bu in buyers] + [stock[st.sid][1] for st in s_states]
                               ).reshape(-1, NP)
            ns, nb = len(sellers), len(buyers)
            # a state's single order is a ladder of identical steps (same clearing as one order)
            ask_fac = np.vstack([np.tile(steps, (ns, 1)), np.ones((len(s_states), n_steps))])
            bid_fac = np.vstack([np.tile(steps, (nb, 1)), np.ones((len(s_states), n_steps))])
            for k, prod in enumerate(PRODUCTS):
                aq = np.where(ask_qty[:, k] > 1e-9, ask_qty[:, k], 0.0)
                bq = np.where((bid_qty[:, k] > 1e-9) & (bid_lvl[:, k] > 0), bid_qty[:, k], 0.0)
                ap = np.maximum(ask_lvl[:, k], 0.0)[:, None] * ask_fac
                bp = np.maximum(bid_lvl[:, k], 0.0)[:, None] * bid_fac
                res = market.clear(ap.ravel(), np.repeat(aq / n_steps, n_steps),
                                   bp.ravel(), np.repeat(bq / n_steps, n_steps))
                clearing[(reg, prod)] = res
                if self.depth_long[reg][k] <= 0:
                    self.depth_short[reg][k] = self.depth_long[reg][k] = res.offered
                self.depth_short[reg][k] += 0.5 * (res.offered - self.depth_short[reg][k])
                self.depth_long[reg][k] += (res.offered - self.depth_long[reg][k]) / 26.0
                price = res.price
                a_fill = res.ask_fill.reshape(-1, n_steps).sum(axis=1)
                b_fill = res.bid_fill.reshape(-1, n_steps).sum(axis=1)
                for i, r in enumerate(sellers):
                    sold[r.rid][reg][k] += a_fill[i]
                for j, st in enumerate(s_states):
                    stock_sold[st.sid][k] += a_fill[ns + j]
                    stock_bought[st.sid][k] += b_fill[nb + j]
                for i, bu in enumerate(buyers):
                    if b_fill[i] > 0:
                        bought[bu.bid_id][k] += b_fill[i]
                        paid[bu.bid_id][k] += b_fill[i] * price
                if np.isfinite(price) and res.volume > 0:
                    self.prices[reg][k] = price
                    a = 1.0 / b.buyer_price_memory_weeks
                    self.price_memory[reg][k] = (1 - a) * self.price_memory[reg][k] + a * price
                    self.long_memory[reg][k] += (price - self.long_memory[reg][k]) / LONG_MEMORY_WEEKS
        clear_prices = {reg: np.array([clearing[(reg, p)].price if clearing[(reg, p)].volume > 0 else np.nan
                                       for p in PRODUCTS]) for reg in REGIONS}
        for r in self.refiners:
            if r.rid in offers:
                r.after_market(sold[r.rid], clear_prices, b.seller_markup_rate, b.seller_target_cover_weeks,
                               self.export_cost, cap, b.export_share_sensitivity, b.seller_reservation_ratio)
            for k, p in enumerate(PRODUCTS):
                self.ledger[f"sold_{p}"] += sold[r.rid][Region.CN][k] + sold[r.rid][Region.ROW][k]
        for bu in self.buyers:
            bu.receive(bought[bu.bid_id], paid[bu.bid_id])
            for k, p in enumerate(PRODUCTS):
                self.ledger[f"bought_{p}"] += bought[bu.bid_id][k]
        for s in self.states:
            s.settle_stock(stock_bought[s.sid], stock_sold[s.sid], self.prices[s.region])
            for k, p in enumerate(PRODUCTS):
                self.ledger[f"stock_in_{p}"] += stock_bought[s.sid][k]
                self.ledger[f"stock_out_{p}"] += stock_sold[s.sid][k]
        self.week["clearing"] = clearing
        self.week["clearing_prices"] = clear_prices
        self._floor_payments(sold)

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
        for r in self.refiners:
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
        for bu in self.buyers:
            bu.consume(self.week["clearing_prices"][bu.region], b.buyer_price_memory_weeks,
                       b.thrift_rate_per_week, b.thrift_trigger_ratio)
            for k, p in enumerate(PRODUCTS):
                self.ledger[f"consumed_{p}"] += bu.consumed[k]
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
        clearing = self.week.get("clearing", {})
        for reg in REGIONS:
            for k, p in enumerate(PRODUCTS):
                rec.add(step, date, "price", self.prices[reg][k], reg, p)
                res = clearing.get((reg, p))
                rec.add(step, date, "volume", res.volume if res else 0.0, reg, p)
                rec.add(step, date, "offered", res.offered if res else 0.0, reg, p)
            inv_r = sum((r.inventory for r in self.refiners if r.home_region == reg), np.zeros(NP))
            inv_b = sum((bu.inventory for bu in self.buyers if bu.region == reg), np.zeros(NP))
            for k, p in enumerate(PRODUCTS):
                rec.add(step, date, "inventory_refiners", inv_r[k], reg, p)
                rec.add(step, date, "inventory_buyers", inv_b[k], reg, p)
        short: dict[str, np.ndarray] = {}
        cons: dict[str, np.ndarray] = {}
        for bu in self.buyers:
            short[bu.state_id] = short.get(bu.state_id, np.zeros(NP)) + bu.shortage
            cons[bu.state_id] = cons.get(bu.state_id, np.zeros(NP)) + bu.consumed
        for sid in sorted(short):
            for k, p in enumerate(PRODUCTS):
                rec.add(step, date, "shortage", short[sid][k], sid, p)
                rec.add(step, date, "consumption", cons[sid][k], sid, p)
        produced = self.week.get("produced", {})
        total = sum(produced.values(), np.zeros(NP))
        for country in sorted(produced):
            for k, p in enumerate(PRODUCTS):
                rec.add(step, date, "refined_output", produced[country][k], country, p)
        cn = produced.get("CN", np.zeros(NP))
        share = float(cn.sum() / total.sum()) if total.sum() > 0 else np.nan
        if np.isfinite(share):
            rec.add(step, date, "china_refined_share", share)
            for k, p in enumerate(PRODUCTS):
                if total[k] > 0:
                    rec.add(step, date, "china_refined_share", cn[k] / total[k], "", p)
        for corridor, q in sorted(self.week.get("corridor_flow", {}).items()):
            rec.add(step, date, "myanmar_ore_flow", q, corridor or "other")
        if "to_china" in self.week:
            rec.add(step, date, "myanmar_ore_to_china", self.week["to_china"])
        heavy = self._heavy_feed_share()
        if np.isfinite(heavy):
            rec.add(step, date, "myanmar_share_cn_heavy_feed", heavy)
        for j, pool in enumerate(self.pools):
            if np.isfinite(self.ore_gate_price[j]) and pool["country"] == "MM":
                rec.add(step, date, "ore_price", self.ore_gate_price[j], pool["node"])
        for g in self.armed_groups:
            rec.add(step, date, "levy_revenue", g.revenue_usd / 1e6, g.gid)
            rec.add(step, date, "conflict", int(g.conflict), g.gid)
        for s in self.states:
            if s.stockpile.any() or s.stock_mandate:
                for k, p in enumerate(PRODUCTS):
                    rec.add(step, date, "stockpile", s.stockpile[k], s.sid, p)
        caps: dict[str, float] = {}
        for r in self.refiners:
            caps[r.country] = caps.get(r.country, 0.0) + r.capacity_t_per_week
        for c in sorted(caps):
            rec.add(step, date, "capacity_online", caps[c], c)
        kachin = (self.fleet.country == "MM") & self.fleet.entry_exit
        rec.add(step, date, "kachin_active_sites", int((self.fleet.active & kachin).sum()))
        mined: dict[str, float] = {}
        for c in np.unique(self.fleet.country):
            mined[str(c)] = float(self.fleet.sold[self.fleet.country == c].sum())
        for c in sorted(mined):
            rec.add(step, date, "ore_mined", mined[c], c)
        for k, p in enumerate(PRODUCTS):
            rec.add(step, date, "export_allowed", float(min(1.0, self.rules.export_cap[k])), "", p)
        for c, usd in sorted(self.week.get("floor_payments", {}).items()):
            rec.add(step, date, "floor_payments", usd / 1e6, c)

    def _heavy_feed_share(self) -> float:
        """Myanmar's share of the Dy contained in ore delivered to Chinese refiners this week."""
        flows = self.week.get("flows")
        if not flows:
            return float("nan")
        # flows are tonnes REO by (origin country, refiner country); Dy content by origin's ore mix
        dy = {}
        for pool in self.pools:
            c = pool["country"]
            w = float(self.fleet.sold[pool["sites"]].sum())
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


def reporter_name(variable: str, region: str = "", product: str = "") -> str:
    """Name of a DataCollector column, shared by the model and the UI."""
    assert variable in OUTPUTS
    return "_".join(x for x in (variable, str(region), str(product)) if x)


def _latest(variable: str, region: str = "", product: str = ""):
    def get(m: RareEarthModel) -> float:
        return m.latest(variable, str(region), str(product))
    return get
