"""The rare-earth market model: one Mesa model, weekly steps, prices from call auctions.

Build a run from a scenario (a world, a start date, a horizon, overrides and a timeline of policies and
events) and a seed::

    from model.model import RareEarthModel
    m = RareEarthModel(scenario="baseline", seed=1)
    m.run(52)
    table = m.results()          # tidy long table, see model.results

Every keyword argument is something a user can change, so Mesa's Reset and ``batch_run`` rebuild the model
as ``RareEarthModel(**params)``.

This module holds construction and the order of a week. The markets live in their own modules
(:mod:`model.ore_market`, :mod:`model.exchange` with :mod:`model.market`'s auctions), the public signals in
:mod:`model.signals`, the weekly observation in :mod:`model.observe`. Agents and policies reach the model
only through the commands and queries in the two sections marked below; no object writes another's fields.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import mesa
import numpy as np

from agents.armed_group import ArmedGroup
from agents.buyer import Buyer, BuyerBook
from agents.magnet_maker import MagnetMaker, MagnetMakerBook
from agents.miner import Miner, MinerFleet
from agents.refiner import Refiner, RefinerBook
from agents.state import State
from agents.trader import Trader, TraderBook
from model import market
from model.arrays import add_reduce as _sum
from model.arrays import count_nonzero, flatnonzero, where
from model.demand import demand_growth
from model.exchange import Exchange, GroupSum, RegionClearing, export_parity, landed
from model.observe import Observer, reporter_name  # noqa: F401 - re-exported for the UI
from model.ore_market import OreMarket, OreWeek
from model.params import ConfigError
from model.projects import FinanceLedger, collect_projects
from model.routes import RouteNetwork
from model.rules import Rules
from model.scenario import MAX_SEED, MAX_WEEKS, Scenario, load_scenario
from model.signals import MarketSignals

log = logging.getLogger(__name__)

STREAMS = ("world", "miners", "armed_groups", "refiners", "policies", "events", "markets", "start")
KG_PER_T = 1000.0


class Event(NamedTuple):
    """One line of the event log."""

    date: dt.date
    text: str


@dataclass
class WeekRecord:
    """What happened this week, kept for the observer (outputs) and the UI."""

    clearing: dict[str, RegionClearing] = field(default_factory=dict)
    produced: dict[str, np.ndarray] = field(default_factory=dict)  # oxide made, by plant country
    ore: OreWeek = field(default_factory=OreWeek)
    exports: dict[str, np.ndarray] = field(default_factory=dict)  # destination state -> t per product
    export_requests: dict[str, np.ndarray] = field(default_factory=dict)  # what importers asked to buy
    floor_payments: dict[str, float] = field(default_factory=dict)  # USD, by paying state
    magnets_made: dict[str, np.ndarray] = field(default_factory=dict)  # magnets made, by plant country
    disposed: np.ndarray | None = None  # co-product oxide disposed of this week (t per product)
    contracts: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # region -> (t, USD/kg)
    # contract volume refused licences for its end users' class, by destination state (t per product; P7)
    end_use_refused: dict[str, np.ndarray] = field(default_factory=dict)
    sites_opened: int = 0
    sites_closed: int = 0


@dataclass
class Ledger:
    """Cumulative flows since the start (t), for the balance invariants."""

    mined: float = 0.0  # ore into site stocks
    delivered: float = 0.0  # ore out of site stocks into plants' feed
    processed: float = 0.0
    produced: np.ndarray | None = None  # oxide, per product
    consumed: np.ndarray | None = None
    into_magnets: np.ndarray | None = None  # oxide put into magnet making (finished content and swarf)
    recycled: np.ndarray | None = None  # oxide recovered from swarf
    magnets_made: np.ndarray | None = None  # magnets, per (magnet) product
    disposed: np.ndarray | None = None  # co-product oxide refiners disposed of


class RareEarthModel(mesa.Model):
    """Agents: ``State``, ``Miner``, ``Refiner``, ``MagnetMaker``, ``Trader``, ``ArmedGroup``, ``Buyer``
    (see ``agents/``)."""

    def __init__(self, scenario: str | Scenario = "baseline", seed: int | None = 0, weeks: int | None = None,
                 policies: Iterable | None = None, run_id: str = "", **overrides):
        # SolaraViz hands the seed back as a string once edited (Mesa #3516); mesa.batch_run passes
        # None when it manages iterations itself: that means seed 0, never a seed from the clock
        seed = 0 if seed is None else int(seed)
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed: must be a whole number from 0 to 2**63 - 1 (got {seed})")
        super().__init__(rng=seed)
        self.seed = seed
        self.spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if overrides:
            self.spec = self.spec.with_overrides(overrides)
        self.world = self.spec.load_world()
        self.weeks = int(weeks) if weeks is not None else self.spec.weeks
        if not 1 <= self.weeks <= MAX_WEEKS:
            raise ConfigError(f"weeks: must be a whole number from 1 to {MAX_WEEKS} (got {self.weeks})")
        self._warn_beyond_horizon()
        self.start_date = self.spec.start
        self.run_id = run_id or f"{self.spec.name}-s{seed}"
        root = np.random.SeedSequence(seed)
        self.streams = {name: np.random.default_rng(child)
                        for name, child in zip(STREAMS, root.spawn(len(STREAMS)), strict=True)}
        w = self.world
        self.behaviour = w.behaviour
        self.products: tuple[str, ...] = w.product_names
        self.regions: tuple[str, ...] = w.region_ids
        self.rules = Rules(len(self.products))
        self.events: list[Event] = []
        # demand relative to the start: 1.0 while demand is stationary; with a demand path (or
        # behaviour.demand_growth_per_year) one multiplier per buyer row, replaced each week (model/demand.py)
        self.demand_multiplier: float | np.ndarray = 1.0
        self.demand = demand_growth(w, self.spec.demand_path, self.spec.start, self.weeks,
                                    source=self.spec.source or self.spec.name)
        self._region_of_state = {s.id: s.region for s in w.states}
        self._imports_from = {r.id: r.imports_from for r in w.regions}
        self._contract_rows: dict[str, tuple] = {}  # importing region -> who holds contracts (see _contract_holders)
        self._class_rows: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (state, end-user class)
        self._contract_batch: dict[str, tuple | None] = {}  # importing region -> the same, for all importers at once
        # (buyers' need, makers' need, state -> need, states -> their needs stacked): need_of_state
        self._state_need: tuple = (None, None, {}, {})
        self._state_content: tuple = (None, {})  # (buyers' need, state -> its oxide content): stock_basis_of_state
        # products x products, read-only: identity for oxides, a magnet's bill of materials (World.element_content);
        # the buyers' element use, the observer's element exports and the stock agencies' basis read it
        self.element_content = np.array(w.element_content()).reshape(len(self.products), len(self.products))
        self.element_content.flags.writeable = False
        self._buyer_need_by_state: tuple = (None, {})  # (buyers' need, state -> its buyers' sum), see _needs_by_state

        # prices: starting points only; from week 1 on they come from the auctions
        base = np.array([w.product(p).price_2024_usd_per_kg for p in self.products])
        self.export_cost = np.array([w.product(p).export_cost_usd_per_kg for p in self.products])

        # the world and its agents
        self.routes = RouteNetwork(w)
        self.fleet = MinerFleet(w, self.streams["world"], start=self.start_date)
        self.states = [State(self, s) for s in w.states]
        self.state_by_id = {s.sid: s for s in self.states}
        self.armed_groups = [ArmedGroup(self, g) for g in w.armed_groups]
        self.group_by_id = {g.gid: g for g in self.armed_groups}
        self.routes.set_levies({g.gid: g.levy for g in self.armed_groups})
        # the markets start where they trade (_start_prices): an importing region at the landed price of what it
        # imports; where its own plants make more of a product than its users take and a trader carries the
        # surplus back to the source, at the price that trader pays (export parity), which only the start's own
        # output and use can tell, so the markets are built a second time when some product starts there
        self.initial_prices = self._start_prices(base, {})
        self._build_markets()
        # region -> products it starts exporting (a mask), read by the exporters' starting stock
        self.exporting_at_start = self._exporting_at_start()
        if self.exporting_at_start:
            self.initial_prices = self._start_prices(base, self.exporting_at_start)
            self._build_markets()
        self.buyers = [Buyer(self, self.buyer_book, i) for i in range(self.buyer_book.n)]
        self.magnet_makers = [MagnetMaker(self, self.maker_book, i) for i in range(self.maker_book.n)]
        self.refiners = [Refiner(self, self.refiner_book, i) for i in range(self.refiner_book.n)]
        self.refiner_by_id = {r.rid: r for r in self.refiners}
        self._residues = self._residue_streams()
        self._collect_residues(start=True)
        self.trader_book = TraderBook(self, w.traders)
        self.traders = [Trader(self, self.trader_book, i) for i in range(self.trader_book.n)]
        for s in self.states:
            s.seed_reserve()
        self.miners = [Miner(self, i) for i in range(self.fleet.n)]
        self.projects = collect_projects(self)  # plants and mines that are projects (model.projects)
        self.finance = FinanceLedger()
        self._pending_floods = np.zeros(0, dtype=int)
        self.refiner_book.update_cost_basis()
        self.refiner_book.start_at_rest(self.initial_prices)
        self._cost_of_supply()
        self.signals.fix_start_markup()

        n_p = len(self.products)
        self.ledger = Ledger(produced=np.zeros(n_p), consumed=np.zeros(n_p), into_magnets=np.zeros(n_p),
                             recycled=np.zeros(n_p), magnets_made=np.zeros(n_p), disposed=np.zeros(n_p))
        self.week = WeekRecord()
        self.last_week = self.week
        self.observer = Observer(self)

        # the timeline: policies and scripted events (scenario), plus any passed in directly
        self.timeline = list(self.spec.build_timeline())
        if policies:
            self.timeline.extend(policies)
        self.active: list = []
        self.datacollector = self.observer.datacollector()
        self.observer.record()
        self.datacollector.collect(self)

    def _start_prices(self, base: np.ndarray, exporting: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each region's starting prices: a source region's are the 2024 prices (``base``); an importing
        region starts where its importers sell what they bring in, the source's price plus the export cost
        and their margin (their landed cost, agents/trader.py): at the source's price plus the export cost
        alone they would keep every tonne and the first week would jump to it. A product the region starts
        exporting (``exporting``: region -> products mask, :meth:`_exporting_at_start`) starts where the
        exporters buy it, the source's price less their margin and the export cost (export parity): started
        at the landed price instead, ex-China NdPr in the magnet world (its plants make ~210 t/week, its makers
        use ~150) slid ~10 % in its first twelve calm weeks to reach it."""
        b = self.world.behaviour
        prices = {}
        for r in self.regions:
            if not self.world.region(r).imports_from:
                prices[r] = base
                continue
            start = landed(base, self.export_cost, b.import_margin)
            if r in exporting:
                start = np.where(exporting[r], export_parity(base, self.export_cost, b.import_margin), start)
            prices[r] = start
        return prices

    def _build_markets(self) -> None:
        """The price signals, the exchange and the books of the market's participants (buyers, magnet makers,
        refiners, with the ore market and the plants' starting feed), at ``initial_prices``."""
        w = self.world
        self.signals = MarketSignals(self.regions, self.initial_prices, self.behaviour)
        self.exchange = Exchange(self.regions, self.initial_prices, self.behaviour, self.export_cost)
        self.buyer_book = BuyerBook(self, w.buyers)
        self.maker_book = MagnetMakerBook(self, w.magnet_makers)
        # the makers' countries in the order of their first plant (the order of the week's magnets_made)
        mb = self.maker_book
        self._maker_countries = [(c, int(mb.country_code[mb.country.index(c)]))
                                 for c in dict.fromkeys(mb.country)]
        self.refiner_book = RefinerBook(self, w.refiners)
        self.ore = OreMarket(self)
        self.refiner_book.seed_stocks(*self.ore.initial_feed())

    def _exporting_at_start(self) -> dict[str, np.ndarray]:
        """The products each importing region starts exporting (region -> products mask): its plants' and
        makers' output at the start's own ore allocation exceeds what its users take, and a trader of the
        world carries the region's oxide back to its source (``exports_to``). Read once, at the start."""
        w = self.world
        out = {}
        routes_back = {(self._region_of_state[t.state], t.exports_to) for t in w.traders if t.exports_to}
        rb, mb = self.refiner_book, self.maker_book
        made = rb.sum_by_region(rb.sales_ema)  # regions x products: the plants' weekly output
        if mb.n:  # and the makers' magnets, each plant's in the column of what it makes
            magnets = np.zeros((mb.n, len(self.products)))
            magnets[np.arange(mb.n), mb.makes] = mb.sales_ema
            made = made + mb.sum_by_region(magnets)
        for j, r in enumerate(self.regions):
            source = w.region(r).imports_from
            if not source or (r, source) not in routes_back:
                continue
            mask = made[j] > self.need_of_region(r) * (1.0 + 1e-9)
            if mask.any():
                out[r] = mask
        return out

    # =================================================================================== queries (read-only)
    def _warn_beyond_horizon(self) -> None:
        """A run shorter than its scenario (``--weeks``) leaves out the timeline entries dated after its last
        week; the scenario's own check refuses entries outside the scenario's horizon, so this is a warning."""
        last = self.spec.start + dt.timedelta(weeks=self.weeks)
        late = [f"timeline[{i}] ({d.get('type', '?')}) on {d.get('start')}"
                for i, d in enumerate(self.spec.timeline)
                if isinstance(d, dict) and isinstance(d.get("start"), dt.date) and d["start"] > last]
        if late:
            log.warning("%s: the run ends on %s (%d weeks), so %s will not happen", self.spec.source or self.spec.name,
                        last, self.weeks, ", ".join(late))

    @property
    def date(self) -> dt.date:
        return self.start_date + dt.timedelta(weeks=int(self.steps))

    def region_of_state(self, state_id: str) -> str:
        return self._region_of_state[state_id]

    def price(self, region: str, product: str) -> float:
        """Last clearing price (USD/kg)."""
        return float(self.signals.price[region][self.products.index(product)])

    @property
    def prices(self) -> dict[str, np.ndarray]:
        """Last clearing price of every product, by region (read-only use)."""
        return self.signals.price

    def export_allowance(self, destination: str) -> np.ndarray:
        """What ``destination`` may import this week (t per product; inf where free)."""
        return self.rules.allowance(destination)

    def exports_last_week(self, destination: str) -> np.ndarray:
        """What ``destination`` imported last week (t per product)."""
        return self.last_week.exports.get(destination, np.zeros(len(self.products)))

    def export_requests(self, destination: str) -> np.ndarray:
        """What ``destination``'s importers asked to import last week (t per product)."""
        return self.last_week.export_requests.get(destination, np.zeros(len(self.products)))

    def import_destinations(self, source: str | None = None) -> list[str]:
        """States with an importer (the destinations of exports); with ``source``, those whose importers buy
        in that market region."""
        tb = self.trader_book
        return sorted({tb.state_id[i] for i in range(tb.n) if tb.imports[i] and source in (None, tb.source[i])})

    def group_sites(self, group: str) -> np.ndarray:
        """Indices of the sites a controller (armed group or "") holds (read-only)."""
        return self.ore.sites_of(group)

    def site_levies(self) -> np.ndarray:
        """This week's levy (USD/kg) on each site's ore, by the group that controls it."""
        lev = np.zeros(self.fleet.n)
        for g in self.armed_groups:
            lev[self.group_sites(g.gid)] = g.levy
        return lev

    def need_of_state(self, state_id: str, end_users: str | None = None) -> np.ndarray:
        """What a state's users take this week (t per product): its buyers' need, plus the oxides its magnet
        makers need for their planned output; with ``end_users``, only users of that class (FACTS P7).

        Every state's is worked out at once (China's retaliation rule asks for all its rivals' each week,
        the stock agencies for their own) and kept until the buyers' or the makers' need is replaced; each
        state's rows are added in order, as a sum over them does (the same values)."""
        bb, mb = self.buyer_book, self.maker_book
        if end_users is not None:
            rows_b, rows_m = self._rows_of_class(state_id, end_users)
            need = bb.need(self.demand_multiplier)[rows_b].sum(axis=0)
            return need + mb.need()[rows_m].sum(axis=0) if rows_m.size else need
        need = self._needs_by_state()[2].get(state_id)
        return np.zeros(len(self.products)) if need is None else need.copy()

    def stock_basis_of_state(self, state_id: str) -> np.ndarray:
        """What a state's stock agency counts as its use (t per product a week): :meth:`need_of_state`, or, where
        more, the oxide inside what its buyers use, their need through the magnets' bill of materials
        (``World.element_content``). So an oxide's basis is the buyers' own use of it plus the larger of the
        state's magnet makers' need and what is in the magnets its buyers take: a state that imports its
        magnets (the US) stocks the Dy in them, which its own few makers would not count, and a state whose
        makers supply its buyers does not count the same Dy twice. In a world without magnets it is
        :meth:`need_of_state`. Kept until the buyers' need is replaced."""
        need = self.need_of_state(state_id)  # also brings the buyers' sums by state up to date
        if not self.maker_book.n:
            return need
        b_need, by_buyers = self._buyer_need_by_state
        cached = self._state_content
        if cached[0] is not b_need:
            cached = self._state_content = (b_need, {s: x @ self.element_content for s, x in by_buyers.items()})
        inside = cached[1].get(state_id)
        return need if inside is None else np.maximum(need, inside)

    def needs_of_states(self, state_ids: tuple[str, ...]) -> np.ndarray:
        """:meth:`need_of_state` of each of ``state_ids``, one row each (read-only): China's retaliation rule
        reads its rivals' every week. Kept with the states' needs, per tuple of states."""
        cached = self._needs_by_state()
        rows = cached[3].get(state_ids)
        if rows is None:
            zeros = np.zeros(len(self.products))
            rows = cached[3][state_ids] = np.array([cached[2].get(s, zeros) for s in state_ids]).reshape(
                len(state_ids), len(self.products))
            rows.flags.writeable = False
        return rows

    def _needs_by_state(self) -> tuple:
        """``(buyers' need, makers' need, state -> need, stacked rows)``, worked out again once either need
        has been replaced (see :meth:`need_of_state`). The buyers' sums by state are kept apart while their
        need stands: the makers plan their output anew in stage 5, between the states' two reads (stages 2
        and 6), and only the makers' part is then worked out again."""
        bb, mb = self.buyer_book, self.maker_book
        b_need = bb.need(self.demand_multiplier)
        m_need = mb.need() if mb.n else None
        cached = self._state_need
        if cached[0] is not b_need or cached[1] is not m_need:
            n_p = len(self.products)
            by_buyers = self._buyer_need_by_state
            if by_buyers[0] is not b_need:
                by_state = bb.totals(b_need, by="state")
                by_buyers = self._buyer_need_by_state = (b_need, {s: by_state[j] for j, s in enumerate(bb.states)})
            need = dict(by_buyers[1])
            if m_need is not None:
                by_country = mb.sum_by_country(m_need)
                for j, c in enumerate(mb.rows_of_country):
                    need[c] = (need[c] if c in need else np.zeros(n_p)) + by_country[j]
            cached = self._state_need = (b_need, m_need, need, {})
        return cached

    def _rows_of_class(self, state_id: str, end_users: str) -> tuple[np.ndarray, np.ndarray]:
        """A state's buyer rows and magnet-maker rows whose end users are of class ``end_users``."""
        key = (state_id, end_users)
        if key not in self._class_rows:
            bb, mb = self.buyer_book, self.maker_book
            rows_b = np.array([i for i in bb.rows_of_state.get(state_id, []) if bb.specs[i].end_users == end_users],
                              dtype=int)
            rows_m = np.array([i for i in mb.rows_of_country.get(state_id, []) if mb.specs[i].end_users == end_users],
                              dtype=int)
            self._class_rows[key] = (rows_b, rows_m)
        return self._class_rows[key]

    def need_of_region(self, region: str) -> np.ndarray:
        """What a region's users take this week (t per product): buyers' need plus its makers' oxide need."""
        need = self.buyer_book.need_of_region(region, self.demand_multiplier)
        mb = self.maker_book
        if mb.n and mb.rows_of_region[region].size:
            need = need + mb.need_of(mb.rows_of_region[region])
        return need

    @property
    def edge_flow(self) -> np.ndarray:
        """Ore on each route edge this week (t REO)."""
        return self.ore.edge_flow

    def latest(self, variable: str, region: str = "", product: str = "") -> float:
        return self.observer.recorder.latest.get((variable, region, product), float("nan"))

    @property
    def recorder(self):
        return self.observer.recorder

    def results(self):
        """The tidy long table of every output recorded so far."""
        return self.observer.recorder.frame()

    # ============================================================ commands (for policies, events and states)
    def log_event(self, text: str) -> None:
        self.events.append(Event(self.date, text))
        log.debug("%s: %s", self.date, text)

    def add_policy(self, item) -> None:
        """Schedule a policy or event (takes effect at the next step if its start has passed)."""
        self.timeline.append(item)

    def end_policy(self, item, why: str = "ends") -> None:
        """Stop an active policy now (an election ending a sanction)."""
        if any(x is item for x in self.active):
            item.stop(self)
            self.active = [x for x in self.active if x is not item]  # identity: policies hold arrays
            self.log_event(f"{why}: {item.describe()}")

    def halt_sites(self, sites: np.ndarray) -> None:
        """Stop these sites this week: they neither mine nor sell (fighting, a halt order, a flood)."""
        self.fleet.halt(sites)

    def flood_sites(self, sites: np.ndarray) -> None:
        """The monsoon stops these sites this week (applied with the armed groups' halts)."""
        self._pending_floods = np.union1d(self._pending_floods, sites).astype(int)

    def seize_areas(self, group: str, areas: list[str]) -> None:
        """An armed group takes the sites of mine areas and the roads out of them (FACTS C11)."""
        f = self.fleet
        sites = np.flatnonzero(np.isin(np.array(f.node), areas))
        f.transfer(sites, group)
        roads = [e for e in range(len(self.routes.edge_src))
                 if self.routes.edge_src[e] in areas and self.routes.edge_controller[e] in self.group_by_id]
        self.routes.set_controller(roads, group)
        self.ore.build_pools()

    def sites_in(self, areas: list[str]) -> np.ndarray:
        return np.flatnonzero(np.isin(np.array(self.fleet.node), areas))

    # ========================================================================================= the week
    def step(self) -> None:
        """Advance one week. The order of a week, written once:

        1. calendar: policies and scripted events start or stop
        2. states act: policies in force set this week's rules (``apply``), then decide (``act``: lenders
           select projects, licences are approved), then each state follows its own rules
        3. armed groups act (conflict, levies, halts, road blocks); floods stop sites
        4. miners mine into their stocks; ore markets clear; ore moves over open routes to refiners
        5. refiners process ore into oxides, then magnet makers make magnets from their oxide stock and
           recycle swarf
        6. exchanges clear per product, region by region (the exporting region first): term contracts are
           delivered first, then refiners, magnet makers, traders, buyers and state agencies trade at spot;
           importers carry exports under the export rules; then the cost of supply is published
        7. buyers consume; shortages are recorded; buyers and magnet makers thrift; demand grows along the
           scenario's demand path, each buyer at its segment's and region's rate for the calendar year
        8. investment pipeline advances (refineries and magnet plants come online; magnet makers order and
           add brownfield lines); plants adjust utilisation and dispose of co-products they cannot sell;
           small sites enter and exit
        9. observation (outputs)
        """
        self.last_week = self.week
        self.week = WeekRecord()
        self._calendar()
        self._states_act()
        self._armed_groups_act()
        self._ore_markets()
        self._process()
        self._make_magnets()
        self._exchanges()
        self._consume()
        self._pipeline()
        self.observer.record()
        self.datacollector.collect(self)
        if self.steps >= self.weeks:
            self.running = False

    def run(self, weeks: int | None = None) -> RareEarthModel:
        n = self.weeks - int(self.steps) if weeks is None else int(weeks)
        for _ in range(n):
            self.step()
        return self

    # -- 1 ------------------------------------------------------------------------------------------------
    def _calendar(self) -> None:
        today = self.date
        for item in list(self.active):
            if item.end is not None and today >= item.end:
                self.end_policy(item)
        for item in list(self.timeline):
            if today >= item.start:
                self.timeline = [x for x in self.timeline if x is not item]  # identity, as above
                item.begin(self)
                self.log_event(item.describe())
                if (item.end is None or today < item.end) and getattr(item, "persistent", True):
                    self.active.append(item)

    # -- 2 ------------------------------------------------------------------------------------------------
    def _states_act(self) -> None:
        self.rules.reset_week()
        for s in self.states:
            s.begin_week()
        for item in self.active:
            item.apply(self)  # rules first: every policy in force sets its rules ...
        for item in self.active:
            item.act(self)  # ... then policies that decide (a lender selecting projects) act on them
        for s in self.states:
            s.act()

    # -- 3 ------------------------------------------------------------------------------------------------
    def _armed_groups_act(self) -> None:
        rng = self.streams["armed_groups"]
        self.fleet.clear_halts()
        for g in self.armed_groups:
            g.begin_week()
            g.act(rng)
        if self._pending_floods.size:
            self.fleet.halt(self._pending_floods)
            self._pending_floods = np.zeros(0, dtype=int)
        self.routes.set_levies({g.gid: g.levy for g in self.armed_groups})

    # -- 4 ------------------------------------------------------------------------------------------------
    def _ore_markets(self) -> None:
        self.week.ore = self.ore.clear_week()
        self.ledger.mined += float(_sum(self.fleet.mined, axis=None))
        self.ledger.delivered += float(_sum(self.fleet.sold, axis=None))

    # -- 5 ------------------------------------------------------------------------------------------------
    def _process(self) -> None:
        book = self.refiner_book
        out = book.process()
        self._collect_residues()
        self.ledger.processed += float(_sum(book.processed, axis=None))
        self.ledger.produced = self.ledger.produced + _sum(out, axis=0)
        # oxide made by country (of the plants that processed), added plant by plant in one call; a plant that
        # did not process made +0.0 of everything, which leaves a sum from 0.0 as it was
        ran = book.processed > 0
        by_country = book.sum_by_country(out)
        produced: dict[str, np.ndarray] = {}
        for i in flatnonzero(ran).tolist():  # countries in the order of their first plant, as before
            if book.country[i] not in produced:
                produced[book.country[i]] = by_country[book.country_code[i]]
        self.week.produced = produced

    def _residue_streams(self) -> list[tuple[int, int, np.ndarray]]:
        """Plants' unseparated streams (``MinerSpec.residue_of``): (site, plant row, the site's ore basket over
        the world's products, only the elements its plant leaves unseparated)."""
        book, f = self.refiner_book, self.fleet
        out = []
        for site in np.flatnonzero(f.is_residue).tolist():
            host = book.index[f.residue_of[site]]
            vec = self.ore.baskets[f.ore[site]] * ~book.separates[host]
            out.append((site, host, vec))
        return out

    def _collect_residues(self, start: bool = False) -> None:
        """What each plant left unseparated this week goes to its stream's site for next week's sale: the
        tonnes of ore whose basket holds the same tonnes of those elements (at most the site's capacity). At
        the start, a week of the plant's expected throughput, with a yard as a mine's."""
        if not self._residues:
            return
        book, f = self.refiner_book, self.fleet
        for site, host, vec in self._residues:
            if start:
                feed = book.feed_el[host] / max(book.feed_reo[host], 1e-12) * book.throughput[host]
            else:
                feed = book.used[host]
            left = float(_sum(feed * (vec > 0), axis=None))
            f.residue_in[site] = min(left / max(float(_sum(vec, axis=None)), 1e-12), float(f.capacity[site]))
            if start:
                f.stock[site] = min(f.residue_in[site] * max(self.behaviour.ore_release_weeks - 1.0, 0.0),
                                    float(f.stock_max[site]))

    def _make_magnets(self) -> None:
        """Stage 5, second part: magnet makers turn oxide into magnets and recycle their swarf; what they make
        and recover counts in their region's supply outlook."""
        mb = self.maker_book
        if not mb.n:
            return
        mb.make()
        out = mb.by_product(mb.made)
        self.ledger.into_magnets = self.ledger.into_magnets + _sum(mb.used, axis=0)
        self.ledger.recycled = self.ledger.recycled + _sum(mb.recycled, axis=0)
        self.ledger.magnets_made = self.ledger.magnets_made + _sum(out, axis=0)
        # magnets made by country, plant by plant in one call (GroupSum adds them in order, as the loop did)
        by_country = mb.sum_by_country(out)
        self.week.magnets_made = {c: by_country[j] for c, j in self._maker_countries}
        # each region's plants' magnets and recovered oxide, added plant by plant in row order (GroupSum) from 0.0
        # where a sum over the rows starts from the first: a -0.0 of the first plant could come out +0.0, which the
        # outlook's weekly sum (from +0.0) makes +0.0 anyway, so the outlook is the same to the bit
        made_by_region, back_by_region = mb.sum_by_region(out), mb.sum_by_region(mb.recycled)
        for j, (region, rows) in enumerate(mb.rows_of_region.items()):  # the model's regions, in order
            if rows.size:
                self.signals.add_inflow(region, made_by_region[j] + back_by_region[j])

    # -- 6 ------------------------------------------------------------------------------------------------
    def _exchanges(self) -> None:
        mb = self.maker_book
        producers = (self.refiner_book, mb) if mb.n else (self.refiner_book,)
        for p in (*producers, self.buyer_book, self.trader_book):
            p.begin_week()
        for p in producers:
            p.prepare_week()
        # states trade only through a stock agency with a mandate
        participants = [self.refiner_book, *((mb,) if mb.n else ()), self.trader_book, self.buyer_book,
                        *(s for s in self.states if s.mandate is not None)]
        for region in self.regions:
            if self.behaviour.contract_share > 0 and self._imports_from[region]:
                self._deliver_contracts(region)
            grid = self.exchange.grid[region]
            blocks = []
            for p in participants:
                blocks.extend(p.orders(region, grid))
            res = self.exchange.clear(region, blocks)
            for p in participants:
                p.settle(region, res)
            self.week.clearing[region] = res
            self.signals.record_clearing(region, res.price, res.volume)
        tb = self.trader_book
        if tb.importer_dests is not None:  # one importer per destination: each one's row is its destination's
            rows = tb.importer_rows
            exports, requests = 0.0 + tb.imported.take(rows, axis=0), 0.0 + tb.requested.take(rows, axis=0)  # as 0.0 + each row
            for j, dest in enumerate(tb.importer_dests):
                self.week.exports[dest] = exports[j]
                self.week.export_requests[dest] = requests[j]
        else:
            for i in tb.importer_rows:
                dest = tb.state_id[i]
                self.week.exports[dest] = self.week.exports.get(dest, 0.0) + tb.imported[i]
                self.week.export_requests[dest] = self.week.export_requests.get(dest, 0.0) + tb.requested[i]
        for i in tb.importer_rows:
            self.signals.add_inflow(tb.region[i], tb.imported[i])
        for i in tb.exporter_rows:  # the route back: exporters' sales abroad arrive there
            self.signals.add_inflow(tb.exports_to[i], tb.exported[i])
        self.signals.close_inflow_week()  # the outlook counts this week's mining and imports
        self.refiner_book.end_exchange_week()
        if mb.n:
            mb.end_exchange_week()
        self.trader_book.end_exchange_week()
        self._cost_of_supply()
        self._floor_payments()

    def _deliver_contracts(self, region: str) -> None:
        """Term contracts (FACTS P4): before an importing region's spot auction, buyers and magnet makers get
        ``contract_share`` of their use this week under contracts priced at the source market's price of the
        week x (1 + ``contract_premium``) + the export cost: first from this week's output of the region's own
        producers (refiners for oxides, magnet makers for magnets; Lynas sells to Japanese makers), then from
        what their state's importer imported this week (under licences, the approved tonnage); stocks held
        before stay on the spot market. Short supply is shared pro rata; the rest of their need is bought at
        spot, so under licences the spot auction is thin and its price a marginal quote. Outputs: contract
        volume and price beside the spot auction's, and the volume-weighted price paid.

        With the compiled kernel and every importer served at once (no end use refused), the kernel's
        ``deliver_contracts`` does the week's deliveries in one call; else :meth:`_deliver_contracts_numpy`,
        its reference (the same operations in the same order: the same bits)."""
        b = self.behaviour
        src = self._imports_from[region]
        price = self.signals.price[src] * (1.0 + b.contract_premium) + self.export_cost
        _, rows_b, rows_m = self._contract_holders(region)
        batch = self._contract_batch[region]
        kernel = market._auction
        if kernel is not None and batch is not None and not self.rules.refused_end_use:
            total = self._deliver_contracts_compiled(kernel, region, price, rows_b, rows_m, batch)
        else:
            total = self._deliver_contracts_numpy(region, price)
        self.week.contracts[region] = (total, price)

    def _deliver_contracts_compiled(self, kernel, region: str, price: np.ndarray, rows_b: np.ndarray,
                                    rows_m: np.ndarray, batch: tuple) -> np.ndarray:
        """:meth:`_deliver_contracts` in the compiled kernel (every importer at once): the books' arrays are
        handed over and moved in place; returns the volume delivered per product."""
        bb, mb, rb, tb = self.buyer_book, self.maker_book, self.refiner_book, self.trader_book
        rows, of_b, at_b, of_m, at_m, _, _ = batch
        if mb.n:
            makers = (mb.need(), rows_m, mb.makes, mb.magnet_mask.view(np.uint8), mb.made, mb.stock, mb.contracted,
                      mb.contract_revenue, mb.inventory, mb.contract_got, mb.contract_paid)
        else:  # no makers: no rows, no magnets
            n_p, none = len(self.products), np.zeros(0, dtype=np.intp)
            makers = (np.zeros((0, n_p)), none, none, np.zeros(n_p, dtype=np.uint8), *(np.zeros(0),) * 4,
                      *(np.zeros((0, n_p)),) * 3)
        return kernel.deliver_contracts(self.behaviour.contract_share, price, bb.need(self.demand_multiplier), rows_b,
                                        bb.inventory, bb.contract_paid, *makers, rb.rows_of_region[region],
                                        rb.produced, rb.inventory, rb.contracted, rows, of_b, at_b, of_m, at_m,
                                        tb.stock, tb.imported, tb.cost, tb.contracted, KG_PER_T)

    def _deliver_contracts_numpy(self, region: str, price: np.ndarray) -> np.ndarray:
        """:meth:`_deliver_contracts` in numpy (the kernel's reference, and the path when end uses are
        refused or an importer's holders overlap another's): returns the volume delivered per product."""
        b = self.behaviour
        tb, bb, mb = self.trader_book, self.buyer_book, self.maker_book
        importers, rows_b, rows_m = self._contract_holders(region)
        n_p = len(self.products)
        want_b = b.contract_share * bb.need(self.demand_multiplier).take(rows_b, axis=0)
        want_m = b.contract_share * mb.need().take(rows_m, axis=0) if rows_m.size else np.zeros((0, n_p))
        total = np.zeros(n_p)

        def receive(give: np.ndarray, want: np.ndarray, at_b, at_m, wb: np.ndarray, wm: np.ndarray) -> np.ndarray:
            """Share what was delivered among the holders pro rata to what they wanted; the fill per product."""
            fill = where(want > 1e-12, give / np.maximum(want, 1e-12), 0.0)
            if wb.size:
                bb.receive_contract(rows_b[at_b], wb * fill, price)
            if wm.size:
                mb.receive_contract(rows_m[at_m], wm * fill, price)
            return fill

        # 1. the region's own producers, from this week's output
        want = _sum(want_b, axis=0) + _sum(want_m, axis=0)
        if count_nonzero(want):
            give = np.zeros(n_p)
            rr = self.refiner_book.rows_of_region[region]
            if rr.size:
                give = give + self.refiner_book.deliver_contracts(rr, where(mb.magnet_mask, 0.0, want)
                                                                   if mb.n else want)
            if rows_m.size:
                give = give + mb.deliver_contracts(rows_m, where(mb.magnet_mask, want, 0.0), price)
            if count_nonzero(give):
                everyone = slice(None)
                fill = receive(give, want, everyone, everyone, want_b, want_m)
                want_b, want_m = want_b * (1.0 - fill), want_m * (1.0 - fill)
            total = total + give
        # 2. each state's importer, from what it imported this week; not to end users refused licences (P7)
        batch = self._contract_batch[region]
        if batch is not None and not self.rules.refused_end_use:  # every importer at once (each its own
            # holders): as the loop below, value for value
            rows, of_b, at_b, of_m, at_m, sum_b, sum_m = batch
            # each importer's holders' want, added in the loop's order
            want = sum_b(want_b.take(at_b, axis=0)) + sum_m(want_m.take(at_m, axis=0))
            act = want.any(axis=1)
            if count_nonzero(act):
                give = np.zeros((rows.size, n_p))
                give[act] = tb.deliver_contracts(rows[act], want[act], price)
                fill = where(want > 1e-12, give / np.maximum(want, 1e-12), 0.0)
                hb, hm = act.take(of_b), act.take(of_m)  # holders of importers that delivered
                if count_nonzero(hb):
                    sel = at_b[hb]
                    bb.receive_contract(rows_b.take(sel), want_b.take(sel, axis=0) * fill.take(of_b[hb], axis=0), price)
                if count_nonzero(hm):
                    sel = at_m[hm]
                    mb.receive_contract(rows_m.take(sel), want_m.take(sel, axis=0) * fill.take(of_m[hm], axis=0), price)
                # total + each importer's delivery in turn: a sum over rows adds them in row order
                total = _sum(np.concatenate((total[None, :], give[act])), axis=0)
        else:
            for i, at_b, at_m in importers:  # positions of the importer's state's holders among the region's
                wb, wm = want_b[at_b], want_m[at_m]
                refused = self.rules.refused_end_use.get(tb.state_id[i])
                if refused:
                    wb, wm = self._licensable(refused, bb.specs, rows_b[at_b], wb), self._licensable(
                        refused, mb.specs, rows_m[at_m], wm)
                    cut = (want_b[at_b] - wb).sum(axis=0) + (want_m[at_m] - wm).sum(axis=0)
                    self.week.end_use_refused[tb.state_id[i]] = cut
                want = wb.sum(axis=0) + wm.sum(axis=0)
                if not count_nonzero(want):
                    continue
                give = tb.deliver_contracts(i, want, price)
                receive(give, want, at_b, at_m, wb, wm)
                total = total + give
        return total

    @staticmethod
    def _licensable(refused: dict[str, np.ndarray], specs: list, rows: np.ndarray, want: np.ndarray) -> np.ndarray:
        """``want`` (rows x products) with the products refused to each row's end-user class set to 0."""
        if not rows.size:
            return want
        n_p = want.shape[1]
        block = np.array([refused.get(specs[r].end_users, np.zeros(n_p, dtype=bool)) for r in rows.tolist()])
        return where(block, 0.0, want)

    def _contract_holders(self, region: str) -> tuple[list, np.ndarray, np.ndarray]:
        """Who holds contracts in an importing region, fixed at construction and worked out once: each
        importer with the positions of its state's buyers and magnet makers among the region's, then the
        region's buyer rows and maker rows."""
        cached = self._contract_rows.get(region)
        if cached is not None:
            return cached
        tb, bb, mb = self.trader_book, self.buyer_book, self.maker_book
        none = np.zeros(0, dtype=int)
        rows_b = np.flatnonzero(bb.region_code == self.regions.index(region))
        rows_m = mb.rows_of_region[region] if mb.n else none
        importers = []
        for i in tb.rows_import[self._imports_from[region]].tolist():
            if tb.region[i] != region:
                continue
            state = tb.state_id[i]
            at_b = np.flatnonzero(np.isin(rows_b, bb.rows_of_state.get(state, none)))
            at_m = np.flatnonzero(np.isin(rows_m, mb.rows_of_country.get(state, none)))
            importers.append((i, at_b, at_m))
        cached = (importers, rows_b, rows_m)
        self._contract_rows[region] = cached
        # the importers served at once: each holder's importer (positions ascending per importer, so sums
        # add in the loop's order), when no holder has two importers and no importer is listed twice
        of_b = np.concatenate([np.full(at_b.size, j) for j, (_, at_b, _) in enumerate(importers)] or [none])
        at_b = np.concatenate([at_b for _, at_b, _ in importers] or [none])
        of_m = np.concatenate([np.full(at_m.size, j) for j, (_, _, at_m) in enumerate(importers)] or [none])
        at_m = np.concatenate([at_m for _, _, at_m in importers] or [none])
        rows = np.array([i for i, _, _ in importers], dtype=int)
        distinct = (np.unique(rows).size == rows.size and np.unique(at_b).size == at_b.size
                    and np.unique(at_m).size == at_m.size)
        self._contract_batch[region] = (rows, of_b.astype(int), at_b, of_m.astype(int), at_m,
                                        GroupSum(of_b, rows.size), GroupSum(of_m, rows.size)) if distinct else None
        return cached

    def _cost_of_supply(self) -> None:
        """Publish each region's cost of supply (:mod:`model.signals`): in an importing region its producers'
        share of its use at the lower of their output-weighted reservation and what importing costs (the
        source's cost + export cost + import margin), the rest at what importing costs
        (``behaviour.cost_of_supply_weights_imports``; false: the lower of the two whatever share of the use
        the producers make); in an exporting region its producers' output-weighted reservation (each plant weighted by its
        smoothed output, ``sales_ema``)."""
        book = self.refiner_book
        # the plants' cost basis is this week's (set after processing, before the exchanges: trading does
        # not change it); their reservations are at this week's memories
        shares = np.array([self.signals.long_memory[r] for r in self.regions]).take(book.region_code, axis=0)
        reservation = book.reservation(shares)
        # each plant's weight (sales, 0 while not running) and weighted reservation, for all plants at once;
        # each region adds its plants' rows (the same products and sums as region by region)
        w = book.sales_ema * (book.capacity > 0)[:, None]
        wr = w * reservation
        # every region's sums at once, its plants added in row order (GroupSum); a sum that only a -0.0 could
        # tell from a sum over the region's rows is 0 weight, which divides nothing
        tot = book.sum_by_region(w)  # regions x products
        own = np.divide(book.sum_by_region(wr), tot, out=np.full(tot.shape, np.inf), where=tot > 0)
        mb = self.maker_book
        if mb.n:  # magnets: the makers' full cost at this week's memories (what they offered at is kept)
            wm = mb.by_product(mb.sales_ema) * (mb.capacity > 0)[:, None]
            wmr = wm * mb.by_product(mb.full_cost())
            tm = mb.sum_by_region(wm)
            np.divide(mb.sum_by_region(wmr), tm, out=own, where=tm > 0)
        weighted = self.behaviour.cost_of_supply_weights_imports
        if weighted and mb.n:
            tot = where(tm > 0, tm, tot)  # magnets: the makers' sales
        for j, region in enumerate(self.regions):  # in order: an importer's cost reads its source's new one
            src = self._imports_from[region]
            if src:
                imported = landed(self.signals.normal[src], self.export_cost, self.behaviour.import_margin)
                if weighted:
                    # its own producers' share of its use at the lower of their cost and importing, the rest
                    # imported: a few tonnes made at home do not make the region's cost their own
                    need = self.need_of_region(region)
                    local = np.minimum(np.divide(tot[j], need, out=np.ones(need.shape), where=need > 0), 1.0)
                    cost = where(np.isfinite(own[j]), local * np.minimum(own[j], imported) + (1.0 - local) * imported,
                                 imported)
                else:
                    cost = np.minimum(own[j], imported)
            else:  # min(own, inf)
                cost = own[j]
            self.signals.set_normal(region, where(np.isfinite(cost), cost, self.signals.normal[region]))

    def _floor_payments(self) -> None:
        """A price floor's state pays covered plants the gap between floor and market price on their sales."""
        book = self.refiner_book
        covered = book.floors()
        if not covered:
            return
        pay: dict[str, float] = {}
        for i, floor in covered:
            gap = np.maximum(floor - self.signals.price[book.region[i]], 0.0)
            pay[book.country[i]] = pay.get(book.country[i], 0.0) + float((gap * book.sold[i]).sum()) * KG_PER_T
        self.week.floor_payments = pay

    # -- 7 ------------------------------------------------------------------------------------------------
    def _consume(self) -> None:
        book = self.buyer_book
        book.consume(self.demand_multiplier)
        if self.maker_book.n:
            self.maker_book.adapt()
        self.ledger.consumed = self.ledger.consumed + _sum(book.consumed, axis=0)
        if self.demand is not None:  # next week's demand: each buyer's multiplier at this step's date
            self.demand_multiplier = self.demand.factor(self.date)

    # -- 8 ------------------------------------------------------------------------------------------------
    def _pipeline(self) -> None:
        book = self.refiner_book
        for i in book.advance_pipeline():
            self.log_event(f"{book.specs[i].name} comes online ({book.nameplate[i]:.0f} t/week)")
        disposed = book.adapt()
        if disposed is not None:
            self.ledger.disposed = self.ledger.disposed + disposed
            self.week.disposed = disposed
        for i in book.close_losers():
            self.log_event(f"{book.specs[i].name} closes: no feed or no cash margin for "
                           f"{self.behaviour.plant_exit_weeks} weeks")
        fleet = self.fleet
        for site in fleet.advance_pipeline():
            self.log_event(f"{fleet.specs[fleet.spec[site]].name} starts mining ({fleet.capacity[site]:.0f} t REO a week)")
        for site in fleet.depleted:
            self.log_event(f"{fleet.specs[fleet.spec[site]].name} is worked out")
        if self.finance.commitments:
            self.finance.disburse(self)
        for i in self.maker_book.advance_pipeline():
            self.log_event(f"{self.maker_book.specs[i].name} comes online ({self.maker_book.nameplate[i]:.0f} t "
                           f"of magnets a week)")
        if self.maker_book.n:
            online, ordered = self.maker_book.expand()
            for i, add in online:
                self.log_event(f"{self.maker_book.specs[i].name}: new lines online (+{add:.0f} t of magnets a week)")
            for i, add in ordered:
                self.log_event(f"{self.maker_book.specs[i].name}: new lines ordered (+{add:.0f} t of magnets a week, "
                               f"online in {self.behaviour.maker_expansion_lead_weeks} weeks): the sales it expects press on "
                               f"its capacity and new lines pay")
        b = self.behaviour
        opened, closed = self.fleet.entry_exit_step(self.streams["miners"], b.site_entry_rate, b.site_exit_rate,
                                                    self.site_levies())
        self.week.sites_opened, self.week.sites_closed = opened, closed

