"""The ore markets: mine sites sell ore to the refiners that can reach them over open routes.

Sites that sell as one market form a **pool**: same mine area, ore, controller, legal status, country and
offtaker. Each week (stage 4):

1. every site mines into its stock (:meth:`agents.miner.MinerFleet.mine`);
2. a pool whose ore has an ``offtake`` refiner (its owner or a long-term contract) first delivers to it, up
   to what the plant wants and the route carries, at the mine's cash cost plus levy (an integrated plant's
   own cost);
3. what sites offer goes to one call auction per pool (:func:`model.market.clear`): each site asks its cash
   cost plus the levy of the group that controls it; each plant that may buy the ore (rules: sanctions,
   import bans, traceability) and reach it bids ``ore_bid_share`` x its netback minus the route cost
   (transport, border fees, levies of other groups on the way), capped by the spare capacity of its route.
   A plant spreads what it wants over the pools it may buy from in proportion to what they offer, so that
   no pool sells out while another waits; what it still wants after that goes to the pools with ore left,
   in a random order (the model's market stream);
4. deliveries go in bid-price order and stop at what the roads carry; a plant's feed is charged the gate
   price plus the route cost (its *delivered cost*); levies are paid to the groups;
5. the oxide contained in what was mined is reported to the supply outlook of the regions each pool usually
   supplies (:mod:`model.signals`): ore waiting at a closed border is supply on its way, ore not mined is not.

When no plant can reach a pool (its roads are closed) nothing trades and the ore waits at the mine.

Steps 2-4 run in the compiled ``model._auction.ore_trade`` when it is built, else in
:meth:`OreMarket._trade_python`, its reference (the same results to the bit, as the tests check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from model import market
from model.arrays import add_reduce as _sum
from model.arrays import bincount, count_nonzero, flatnonzero, where
from model.exchange import GroupSum

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0
_NO_SITES = np.zeros(0, dtype=int)
_NO_SITES.flags.writeable = False


@dataclass(frozen=True, slots=True)
class OrePool:
    """Sites that sell as one ore market."""

    index: int
    node: str
    node_i: int  # index of the mine area in the fleet's node list
    ore: str
    controller: str  # armed group, or "" for the host state
    licensed: bool
    state_linked: bool
    country: str
    offtake: str  # refiner with first call ("" none)
    captive_only: bool  # sells to its offtake plant only (a plant's own stockpile or dedicated mine)
    sites: np.ndarray  # site indices
    at: slice | np.ndarray  # the same sites as a slice when consecutive


@dataclass(slots=True)
class OreWeek:
    """What the ore markets did this week (read by the observer and the UI)."""

    corridor_flow: dict[str, float] = field(default_factory=dict)  # Myanmar ore by route corridor, t REO
    to_china: float = 0.0  # Myanmar ore delivered to Chinese plants, t REO
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)  # (origin, plant country) -> t REO
    gate_price: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per pool, USD/kg (nan: no trade)


@dataclass(slots=True)
class RouteTables:
    """Pools x plants route tables, rebuilt when a road opens or closes or plants are added
    (:meth:`OreMarket.route_tables`)."""

    version: int  # the route network's version they were built for
    n: int  # plants in the refiner book then
    groups: list[str]  # armed groups, in the order of the last axis of ``inc`` and ``other``
    paths: list[list]  # [pool][plant] -> Path or None (no road)
    edges: list[list[tuple]]  # [pool][plant] -> edge indices of the path
    corridor: list[list[str]]  # [pool][plant] -> corridor name ("" none)
    has_path: np.ndarray  # pools x plants, bool
    base: np.ndarray  # pools x plants, base transport cost, USD/kg
    inc: np.ndarray  # pools x plants x groups: group controls a road on the path
    own: np.ndarray  # pools x plants: the pool's own controller is on the path (its levy is not paid twice)
    incidence: np.ndarray  # (pools x plants) x edges, 1 where the path uses the edge
    other: np.ndarray  # pools x plants x groups: a group other than the pool's controller is on the path
    pair_keys: list[tuple[str, str]]  # (origin country, plant country) for each pair code
    pair: np.ndarray  # pools x plants -> pair code
    corridor_keys: list[str]  # corridor name for each corridor code
    corridor_code: np.ndarray  # pools x plants -> corridor code (-1: not Myanmar ore)
    to_china: np.ndarray  # pools x plants: Myanmar ore to a Chinese plant
    edge_ptr: np.ndarray  # pool j to plant i uses edge_idx[edge_ptr[k]:edge_ptr[k + 1]], k = j x plants + i
    edge_idx: np.ndarray


class OreMarket:
    """Pools, route tables and the weekly ore trade (see module docstring)."""

    def __init__(self, model: RareEarthModel):
        self.model = model
        self.baskets = {o.name: np.array([o.basket.get(p, 0.0) for p in model.products]) for o in model.world.ore_types}
        self.ores = list(self.baskets)
        self.basket_matrix = np.array([self.baskets[o] for o in self.ores]).reshape(len(self.ores), -1)
        self.edge_flow = np.zeros(len(model.routes.edge_src))
        self.week = OreWeek()
        self._tables: RouteTables | None = None
        self._captive: tuple = (None,) * 4  # (tables, owners, plants running, captive plant of each pool)
        self._route_cost_of: tuple = (None, None, None, None)  # (tables, levies, own levies, route cost)
        self._by_region: tuple = (None, None)  # (plants' region codes, their GroupSum): ore delivered by region
        self.build_pools()

    # -- pools ---------------------------------------------------------------------------------------------
    def build_pools(self) -> None:
        """Group sites into pools; rebuilt whenever controllers change (:meth:`RareEarthModel.seize_areas`)."""
        f = self.model.fleet
        keys = [(f.node[i], f.ore[i], f.controller[i], bool(f.licensed[i]), bool(f.state_linked[i]),
                 str(f.country[i]), f.specs[f.spec[i]].offtake, f.specs[f.spec[i]].captive_only)
                for i in range(f.n)]
        uniq = sorted(set(keys))
        index = {k: j for j, k in enumerate(uniq)}
        self.pool_of = np.array([index[k] for k in keys])
        pools = []
        for j, k in enumerate(uniq):
            s = np.flatnonzero(self.pool_of == j)
            s.flags.writeable = False
            at = slice(int(s[0]), int(s[-1]) + 1) if s.size and s[-1] - s[0] + 1 == s.size else s
            pools.append(OrePool(j, k[0], f.nodes.index(k[0]), k[1], k[2], k[3], k[4], k[5], k[6], k[7], s, at))
        self.pools = pools
        # the pools' sites laid end to end: pool j holds _pool_site[_pool_ptr[j]:_pool_ptr[j + 1]]
        self._pool_site = np.concatenate([p.sites for p in pools]).astype(np.intp) if pools else _NO_SITES
        self._pool_ptr = np.cumsum([0] + [p.sites.size for p in pools]).astype(np.intp)
        self.week.gate_price = np.full(len(pools), np.nan)
        self._sites_of: dict[str, np.ndarray] = {}
        self._pools_of: dict[str, np.ndarray] = {}
        for c in sorted(set(f.controller.tolist())):
            idx = np.flatnonzero(f.controller == c)
            idx.flags.writeable = False
            self._sites_of[c] = idx
            self._pools_of[c] = np.unique(self.pool_of[idx])
        self._n_pools = len(pools)
        # where each pool's ore has gone lately (share by region; zero until it first sells)
        self.dest_share = np.zeros((len(pools), len(self.model.regions)))
        book = self.model.refiner_book
        self._owner = [book.index.get(p.offtake, -1) for p in pools]
        self._pool_ore = [self.ores.index(p.ore) for p in pools]
        self._pool_ore_idx = np.array(self._pool_ore, dtype=np.intp)  # the same, to take columns by
        self._myanmar_pools = [j for j, p in enumerate(pools) if p.country == "MM"]
        self._pools_of_group = {c: np.array([j for j, p in enumerate(pools) if p.controller == c], dtype=np.intp)
                                for c in {p.controller for p in pools} if c}
        self._pool_node = [p.node_i for p in pools]
        self._pool_basket = self.basket_matrix[self._pool_ore]  # each pool's ore, per t (pools x products)
        # who may buy each pool's ore: plants that process its ore type; a captive-only pool, its owner alone
        self._accepts = np.array([[(not ores or p.ore in ores) and (not p.captive_only or i == owner)
                                   for i, ores in enumerate(book.ores)] for p, owner in zip(pools, self._owner, strict=True)],
                                 dtype=bool).reshape(len(pools), book.n)
        self._tables = None
        # last week's trade, for appraisals of projects (model.projects): pools x plants
        self.last_flow: np.ndarray | None = None  # t delivered
        self.last_bid: np.ndarray | None = None  # each plant's bid (USD/kg at the gate; -inf where it could not bid)
        self.last_route_cost: np.ndarray = np.zeros((len(pools), book.n))
        self.last_unsold = np.zeros(len(pools))  # t offered and not sold, per pool
        self._last_ask: np.ndarray | None = None  # last week's asks per site (last_min_ask reads them)

    # -- views for appraisals (model.projects) ---------------------------------------------------------------
    @property
    def pool_ore(self) -> list[int]:
        """Each pool's ore type, as an index into ``basket_matrix``."""
        return self._pool_ore

    @property
    def accepts(self) -> np.ndarray:
        """Pools x plants: whether the plant may take the pool's ore (its ore type; captive-only pools)."""
        return self._accepts

    def owner_of(self, j: int) -> int:
        """The plant with first call on pool ``j``'s ore (-1 none)."""
        return self._owner[j]

    def captive_pools(self, i: int) -> list[int]:
        """The pools whose ore plant ``i`` has first call on (its own mines, offtakes and stockpiles)."""
        return [j for j, owner in enumerate(self._owner) if owner == i]

    def route_tables(self) -> RouteTables:
        return self._route_tables()

    def winnable(self, i: int, netback: np.ndarray) -> np.ndarray:
        """Market ore (t/week per pool) plant ``i`` would win with netback ``netback`` (USD/kg per ore type)
        at last week's trade: at each pool it may buy from and reach, what went unsold (if it would bid at
        least the lowest ask) plus what went to plants that bid less than it would. Pools whose ore another
        plant has first call on count only what was offered beyond that call."""
        m = self.model
        t = self._route_tables()
        book = m.refiner_book
        n_pool = len(self.pools)
        out = np.zeros(n_pool)
        if self.last_flow is None or n_pool == 0:
            return out
        ore_of = np.array(self._pool_ore, dtype=int)
        route = self.last_route_cost[:, i]
        bid = m.behaviour.ore_bid_share * netback[ore_of] - route
        rules = m.rules
        any_rule = rules.any_ore_rule()
        min_ask = self.last_min_ask
        for j in range(n_pool):
            if not (t.has_path[j, i] and self._accepts[j, i]) or self._owner[j] == i or bid[j] <= 0:
                continue
            if any_rule and not rules.ore_allowed(book.country[i], self.pools[j]):
                continue
            below = self.last_bid[j] < bid[j]
            below[i] = False
            if self._owner[j] >= 0:
                below[self._owner[j]] = False  # an owner's call is not displaced by bids
            out[j] = float(self.last_flow[j, below].sum())
            if bid[j] >= min_ask[j]:
                out[j] += max(float(self.last_unsold[j]), 0.0)
        return out

    def sites_of(self, controller: str) -> np.ndarray:
        return self._sites_of.get(controller, _NO_SITES)

    def gate_price_of_group(self, group: str) -> float:
        """Mean gate price last traded over the pools a controller's sites sell in (nan if none)."""
        pools = self._pools_of.get(group)
        if pools is None:
            return float("nan")
        vals = self.week.gate_price.take(pools)
        vals = vals[np.isfinite(vals)]
        return float(np.add.reduce(vals) / vals.size) if vals.size else float("nan")  # vals.mean(), without its wrapper

    def initial_feed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each plant, the mix of the ore it can expect, its delivered cost (USD/kg) and its throughput
        (t/week), to start the run in steady state: the allocation the week's own auction makes when sites
        offer a week's mining, plants want their planned throughput with feed at target (no urgency in their
        bids) and expect the starting prices. Captive ore goes to its owner first at the mine's cost plus
        levy and route; the rest clears pool by pool at the auction's price. Pools clear in random order,
        which decides where the last tonnes go, so the start averages ``start_orders`` orders (the
        ``start`` stream); the flows are kept as 'last week's trade' for appraisals."""
        m = self.model
        f, book, b = m.fleet, m.refiner_book, m.behaviour
        offered = f.operating_capacity()
        levies = m.site_levies()
        site_ask = f.cost + levies
        n_pool = len(self.pools)
        t, route_cost, bid_price, allowed, captive = self._bids(b.ore_bid_share)
        totals = bincount(self.pool_of, weights=offered, minlength=n_pool)
        want = where(book.capacity > 0, book.planned(), 0.0)
        rng = m.streams["start"]
        valid = bool(np.isfinite(site_ask).all() and np.isfinite(offered).all() and np.isfinite(bid_price).all())
        flow, value = np.zeros((n_pool, book.n)), np.zeros((n_pool, book.n))
        k = max(int(b.start_orders), 1)
        for _ in range(k):
            out = self._trade(rng.permutation(n_pool), site_ask, offered, totals, captive, want, allowed,
                              bid_price, route_cost, t, valid)
            flow += out[0]
            value += out[1]
        flow /= k
        value /= k
        self._remember(flow, where(allowed, bid_price, -np.inf), route_cost, totals - flow.sum(axis=1), site_ask)
        got = flow.sum(axis=0)
        safe = np.maximum(got, 1e-12)
        mix = (flow.T @ self._pool_basket) / safe[:, None]
        return mix, value.sum(axis=0) / safe, got

    # -- route tables (pools x plants), rebuilt when a road opens or closes -------------------------------
    def _route_tables(self) -> RouteTables:
        m = self.model
        t = self._tables
        if t is not None and t.version == m.routes.version and t.n == m.refiner_book.n:
            return t
        groups = [g.gid for g in m.armed_groups]
        book = m.refiner_book
        n_p, n_r, n_e = len(self.pools), book.n, len(m.routes.edge_src)
        has_path = np.zeros((n_p, n_r), dtype=bool)
        base = np.zeros((n_p, n_r))
        inc = np.zeros((n_p, n_r, len(groups)))
        other = np.zeros((n_p, n_r, len(groups)))
        own = np.zeros((n_p, n_r))
        incidence = np.zeros((n_p * n_r, n_e))
        pair = np.zeros((n_p, n_r), dtype=int)
        corridor_code = np.full((n_p, n_r), -1, dtype=int)
        to_china = np.zeros((n_p, n_r), dtype=bool)
        all_paths: list[list] = []
        all_edges: list[list[tuple]] = []
        all_corridors: list[list[str]] = []
        pair_keys: dict[tuple[str, str], int] = {}
        corridor_keys: dict[str, int] = {}
        for j, pool in enumerate(self.pools):
            paths = [m.routes.path(pool.node, node) for node in book.node]
            corridors = [p.corridor if p is not None else "" for p in paths]
            all_paths.append(paths)
            all_edges.append([p.edges if p is not None else () for p in paths])
            all_corridors.append(corridors)
            for i, p in enumerate(paths):
                if p is None:
                    continue
                on_path = m.routes.path_groups(p)
                has_path[j, i] = True
                base[j, i] = p.base_cost_usd_per_kg
                inc[j, i] = [g in on_path for g in groups]
                other[j, i] = [g in on_path and g != pool.controller for g in groups]
                own[j, i] = bool(pool.controller) and pool.controller in on_path
                incidence[j * n_r + i, list(p.edges)] = 1.0
            for i in range(n_r):  # where a delivery from pool j to plant i is counted in the week's records
                pair[j, i] = pair_keys.setdefault((pool.country, book.country[i]), len(pair_keys))
                if pool.country == "MM":
                    corridor_code[j, i] = corridor_keys.setdefault(corridors[i], len(corridor_keys))
                    to_china[j, i] = book.country[i] == "CN"
        # the edges of every path laid end to end (the compiled trade reads them so)
        flat = [e for row in all_edges for edges in row for e in edges]
        t = RouteTables(
            version=m.routes.version, n=n_r, groups=groups, paths=all_paths, edges=all_edges,
            corridor=all_corridors, has_path=has_path, base=base, inc=inc, own=own, incidence=incidence,
            other=other, pair_keys=list(pair_keys), pair=pair, corridor_keys=list(corridor_keys),
            corridor_code=corridor_code, to_china=to_china,
            edge_ptr=np.cumsum([0] + [len(edges) for row in all_edges for edges in row]).astype(np.intp),
            edge_idx=np.array(flat, dtype=np.intp))
        self._tables = t
        return t

    def _route_cost(self, t: RouteTables) -> np.ndarray:
        """Pools x plants: transport and border fees plus the levies of the groups on the way other than the
        pool's own (USD/kg). Levies seldom change: the table is kept (read-only) until a levy or the route
        tables do."""
        m = self.model
        group_by_id = m.group_by_id
        levies = [m.routes.levies.get(g, 0.0) for g in t.groups]
        own = [group_by_id[p.controller].levy if p.controller in group_by_id else 0.0 for p in self.pools]
        cached = self._route_cost_of
        if cached[0] is t and cached[1] == levies and cached[2] == own:
            return cached[3]
        cost = t.base + _sum(t.inc * np.array(levies), axis=2) - t.own * np.array(own)[:, None]
        cost.flags.writeable = False
        self._route_cost_of = (t, levies, own, cost)
        return cost

    # -- the week ------------------------------------------------------------------------------------------
    def clear_week(self) -> OreWeek:
        m = self.model
        f, book, b = m.fleet, m.refiner_book, m.behaviour
        f.mine()
        offered = f.offered(b.ore_release_weeks)
        levies = m.site_levies()
        book.begin_ore_week()
        pools = self.pools
        n_pool = len(pools)
        week = OreWeek(gate_price=np.full(n_pool, np.nan))
        self.week = week
        t, route_cost, bid_price, allowed, captive = self._bids(book.bid_share()[None, :])
        valid = bool(np.isfinite(levies).all() and np.isfinite(offered).all() and np.isfinite(bid_price).all())
        order = m.streams["markets"].permutation(n_pool)
        site_ask = f.cost + levies
        totals = bincount(self.pool_of, weights=offered, minlength=n_pool)
        flow, value, site_sold, traded, traded_value, best_bid = self._trade(
            order, site_ask, offered, totals, captive, book.want, allowed, bid_price, route_cost, t, valid)
        # levy paid by a pool's sites to the group that controls them
        own_levy_usd = bincount(self.pool_of, weights=site_sold * levies, minlength=n_pool) * KG_PER_T
        self._remember(flow, where(allowed, bid_price, -np.inf), route_cost,
                       totals - bincount(self.pool_of, weights=site_sold, minlength=n_pool), site_ask)
        self._settle(flow, value, site_sold, own_levy_usd, t)
        # the week's gate price: what traded, at its average price; else the best bid (nan: nobody could bid)
        week.gate_price = where(traded > 0, traded_value / np.maximum(traded, 1e-12), np.nan)
        signal = where(traded > 0, week.gate_price, best_bid).tolist()
        f.update_netbacks(self._pool_node, signal, b.site_margin_memory_weeks)
        return week

    def _bids(self, share: float | np.ndarray) -> tuple[RouteTables, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The week's bidding, pools x plants: the route tables, route costs, each plant's bid (``share`` of its
        netback for the pool's ore at the prices it expects, less the route), who may bid (a path, a positive
        bid, running, an ore it takes, and any ore rule's consent) and which plant takes each pool's ore first
        (its owner, if running, reachable and allowed; -1 none)."""
        m = self.model
        book, rules, pools = m.refiner_book, m.rules, self.pools
        netbacks = book.netbacks(self.basket_matrix, book.expected_prices())
        t = self._route_tables()
        route_cost = self._route_cost(t)
        bid_price = share * netbacks.take(self._pool_ore_idx, axis=1).T - route_cost
        running = book.capacity > 0
        allowed = t.has_path & (bid_price > 0) & running[None, :] & self._accepts
        any_rule = rules.any_ore_rule()
        run_l = running.tolist()
        cached = self._captive  # without ore rules it changes only when a plant starts or stops or roads change
        if not any_rule and cached[0] is t and cached[1] is self._owner and cached[2] == run_l:
            captive = cached[3]
        else:
            captive = np.array([owner if owner >= 0 and run_l[owner] and t.paths[j][owner] is not None
                                and not (any_rule and not rules.ore_allowed(book.country[owner], pools[j])) else -1
                                for j, owner in enumerate(self._owner)], dtype=np.intp)
            captive.flags.writeable = False
            self._captive = (t, self._owner, run_l, captive) if not any_rule else (None, None, None, None)
        if any_rule:
            allowed = allowed.copy()
            for j, pool in enumerate(pools):
                for i in np.flatnonzero(allowed[j]):
                    allowed[j, i] = rules.ore_allowed(book.country[i], pool)
        return t, route_cost, bid_price, allowed, captive

    def _trade(self, order: np.ndarray, site_ask: np.ndarray, offered: np.ndarray, totals: np.ndarray,
               captive: np.ndarray, want: np.ndarray, allowed: np.ndarray, bid_price: np.ndarray,
               route_cost: np.ndarray, t: RouteTables, valid: bool) -> tuple[np.ndarray, ...]:
        """A week of ore trade on these inputs (:meth:`_trade_python`'s arguments and results) in the compiled
        kernel, or in Python when it is not built (or switched off to time the fallback) or the input is not
        valid (then ``market.clear`` says what is wrong)."""
        kernel = market._auction
        if kernel is not None and valid:
            return kernel.ore_trade(order, self._pool_ptr, self._pool_site, site_ask, offered, totals, captive, want,
                                    allowed.view(np.uint8), bid_price, route_cost, t.edge_ptr, t.edge_idx,
                                    self.model.routes.edge_capacity, market._RTOL)
        return self._trade_python(order, site_ask, offered, totals, captive, want, allowed, bid_price, route_cost, t,
                                  market.clear_unchecked if valid else market.clear)

    def _remember(self, flow: np.ndarray, bids: np.ndarray, route_cost: np.ndarray, unsold: np.ndarray,
                  site_ask: np.ndarray) -> None:
        """Keep the week's trade for appraisals: flows and bids (pools x plants), route costs, ore unsold."""
        self.last_flow, self.last_bid, self.last_route_cost = flow, bids, route_cost
        self.last_unsold = unsold
        self._last_ask = site_ask

    @property
    def last_min_ask(self) -> np.ndarray:
        """The lowest ask of each pool's sites last week (USD/kg; inf for a pool with no sites)."""
        min_ask = np.full(len(self.pools), np.inf)
        if self._last_ask is not None:
            np.minimum.at(min_ask, self.pool_of, self._last_ask)
        return min_ask

    def _trade_python(self, order: np.ndarray, site_ask: np.ndarray, offered: np.ndarray, totals: np.ndarray,
                      captive: np.ndarray, want: np.ndarray, allowed: np.ndarray, bid_price: np.ndarray,
                      route_cost: np.ndarray, t: RouteTables, clear) -> tuple[np.ndarray, ...]:
        """The week's trade (steps 2-4 of the module docstring) in Python; ``model._auction.ore_trade`` does
        the same in C, with the same results (tested bit for bit), and this is its reference and fallback.

        ``totals`` is what each pool offers, ``captive`` the plant that takes a pool's ore first (-1 none),
        ``allowed`` (pools x plants) who may bid where. Returns ``(flow, value, site_sold, traded,
        traded_value, best_bid)``: t delivered and its delivered cost (pools x plants), t sold per site, and
        per pool the t traded in auctions, their value at the gate and the best bid (nan: nobody bid)."""
        pools = self.pools
        n_pool, n_plant = len(pools), want.size
        residual = self.model.routes.edge_capacity.tolist()  # t this week's ore may still move on each edge
        asks = [site_ask[p.at] for p in pools]
        left = [offered[p.at].copy() for p in pools]  # what each pool's sites still offer this week
        # scalars the loops below read and write are Python lists (numpy scalar arithmetic is slow)
        totals = totals.tolist()
        want = want.tolist()
        route_l = route_cost.tolist()
        flow = np.zeros((n_pool, n_plant))  # t REO delivered, pool x plant
        value = np.zeros((n_pool, n_plant))  # delivered cost x t
        sold: dict[int, np.ndarray] = {}  # pool -> what its sites sold this week
        edges_of = t.edges

        def deliver(j: int, i: int, got: float, fill: np.ndarray, cost: float) -> None:
            if j in sold:
                sold[j] += fill
            else:
                sold[j] = fill.copy()
            flow[j, i] += got
            value[j, i] += got * cost
            want[i] -= got
            for e in edges_of[j][i]:
                residual[e] -= got
            left[j] = np.maximum(left[j] - fill, 0.0)
            totals[j] = max(totals[j] - got, 0.0)

        # 0. captive ore goes to its owner first, at the mine's cost plus levy
        for j in order:
            owner = captive[j]
            total = totals[j]
            if owner < 0 or total <= 1e-12 or want[owner] <= 1e-9:
                continue
            got = min(want[owner], total, _spare(residual, edges_of[j][owner]))
            if got > 0:
                fill = left[j] * (got / total)
                deliver(j, owner, got, fill, float((fill * asks[j]).sum() / got) + route_l[j][owner])
        # 1. each plant spreads what it wants over the pools it can buy from, in proportion to what they
        #    offer; 2. what is still wanted goes to the pools with ore left, in random order
        min_ask = np.full(n_pool, np.inf)
        np.minimum.at(min_ask, self.pool_of, site_ask)
        worth = allowed & (bid_price >= min_ask[:, None])
        tot = np.array(totals)
        reach = (worth * tot[:, None]).sum(axis=0)
        share = (where(reach > 0, tot[:, None] / where(reach > 0, reach, 1.0), 0.0) * worth).tolist()
        want0 = list(want)
        bid_l = bid_price.tolist()
        traded_value = [0.0] * n_pool  # gate price x t traded, for the week's gate price
        traded = [0.0] * n_pool
        best_bid = [math.nan] * n_pool
        bidders_of: list[list[int]] = [[] for _ in range(n_pool)]
        for j, i in zip(*np.nonzero(allowed), strict=True):
            bidders_of[j].append(int(i))
        for pass_ in (1, 2):
            if pass_ == 2 and (max(want, default=0.0) <= 1e-9 or max(totals, default=0.0) <= 1e-9):
                break
            for j in order:
                if totals[j] <= 1e-9:
                    continue
                bidders, bid_p, bid_q = [], [], []
                for i in bidders_of[j]:
                    wanted = min(want0[i] * share[j][i], want[i]) if pass_ == 1 else want[i]
                    if wanted <= 1e-9:
                        continue
                    qty = min(wanted, _spare(residual, edges_of[j][i]))
                    if qty <= 1e-9:
                        continue
                    bidders.append(i)
                    bid_p.append(bid_l[j][i])
                    bid_q.append(qty)
                if not bidders:
                    continue
                res = clear(asks[j], left[j], np.array(bid_p), np.array(bid_q))
                if not math.isfinite(best_bid[j]) or res.best_bid > best_bid[j]:
                    best_bid[j] = float(res.best_bid)
                if res.volume <= 0:
                    continue
                # each bid was capped by its own route's spare capacity; bidders sharing a road could
                # together overfill it, so deliveries go in bid-price order and stop at what the road carries
                fills = res.ask_fill
                for k in sorted(range(len(bidders)), key=lambda k: -bid_p[k]):
                    got = float(res.bid_fill[k])
                    i = bidders[k]
                    if got > 0:
                        got = min(got, _spare(residual, edges_of[j][i]))
                    if got > 1e-12:
                        deliver(j, i, got, fills * (got / res.volume), res.price + route_l[j][i])
                        traded_value[j] += res.price * got
                        traded[j] += got
        site_sold = np.zeros(self.model.fleet.n)
        for j, x in sold.items():
            site_sold[pools[j].at] = x
        return flow, value, site_sold, np.array(traded), np.array(traded_value), np.array(best_bid)

    def _settle(self, flow: np.ndarray, value: np.ndarray, site_sold: np.ndarray, own_levy_usd: np.ndarray,
                t: RouteTables) -> None:
        """Apply the week's deliveries at once: sites' stocks and sales, plants' feed and its cost, levies,
        route flows, the supply outlook and the flow records."""
        m = self.model
        book = m.refiner_book
        m.fleet.sell_all(site_sold)
        book.receive_flows(flow, self._pool_basket, value)
        self.edge_flow = flow.reshape(-1) @ t.incidence
        route_t = np.einsum("ji,jig->g", flow, t.other) if t.groups else np.zeros(0)
        for gi, g in enumerate(t.groups):
            grp = m.group_by_id[g]
            usd = float(_sum(own_levy_usd.take(self._pools_of_group.get(g, _NO_SITES)), axis=None)) + float(route_t[gi]) * grp.levy * KG_PER_T
            if usd:
                grp.collect(usd)
        by_region = self._by_region
        if by_region[0] is not book.region_code:  # plants' regions are fixed: the grouping is made once
            by_region = self._by_region = (book.region_code, GroupSum(book.region_code, len(m.regions)))
        delivered = by_region[1](flow.T)  # regions x pools; np.add.at's sums, bit for bit (GroupSum)
        self._report_supply(delivered.T)
        week = self.week
        moved = flow > 0
        q = flow[moved]
        by_pair = bincount(t.pair[moved], weights=q, minlength=len(t.pair_keys))
        pair_keys, by_pair_l = t.pair_keys, by_pair.tolist()  # the pairs that moved ore, in the keys' order
        week.pairs = {pair_keys[j]: by_pair_l[j] for j in flatnonzero(by_pair > 0).tolist()}
        code = t.corridor_code[moved]
        mm = code >= 0
        if count_nonzero(mm):
            by_corridor = bincount(code[mm], weights=q[mm], minlength=len(t.corridor_keys)).tolist()
            week.corridor_flow = {c: x for c, x in zip(t.corridor_keys, by_corridor, strict=True) if x > 0}
            week.to_china = float(_sum(q[t.to_china[moved]], axis=None))

    def _report_supply(self, delivered: np.ndarray) -> None:
        """Publish the oxide contained in this week's mining to the supply outlook of the regions each pool
        usually supplies (its deliveries over the last ``outlook_long_weeks``): ore that waits at a closed
        border is still supply on its way; ore not mined is not."""
        m = self.model
        a = 1.0 / m.behaviour.outlook_long_weeks
        tot = _sum(delivered, axis=1, keepdims=True)
        sold = tot[:, 0] > 1e-9
        fresh = where(sold[:, None], delivered / where(sold[:, None], tot, 1.0), 0.0)
        known = _sum(self.dest_share, axis=1) > 0
        self.dest_share = where(~known[:, None], fresh, where(sold[:, None],
                                   self.dest_share + a * (fresh - self.dest_share), self.dest_share))
        mined = m.fleet.mined
        content = (bincount(self.pool_of, weights=mined, minlength=len(self.pools))[:, None]
                   * self._pool_basket)
        by_region = self.dest_share.T @ content  # regions x products
        for r, region in enumerate(m.regions):
            m.signals.add_inflow(region, by_region[r])

def _spare(residual: list[float], edges: tuple[int, ...]) -> float:
    """Tonnes a path can still carry this week: the least spare capacity of its edges (inf if none)."""
    if len(edges) == 1:
        return residual[edges[0]]
    return min([residual[e] for e in edges]) if edges else math.inf
