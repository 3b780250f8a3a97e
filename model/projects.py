"""Projects: how a planned mine or plant becomes capacity, what it is worth to build, and who pays for it.

**Phases.** A project is *planned* until its sponsor or a lender decides to build it; it is then in
*permitting* for its ``permit_weeks`` (times the permit factor of its host state, which permit streamlining
lowers, seed F4), then *building* for its ``lead_time_weeks`` (construction: streamlining does not shorten
it), then *operating*. A project in permitting may be *cancelled* (its appraisal no longer covers its
capital charge); a mine whose reserve is worked out is *depleted*. A plant or mine already building at the
start of a run comes online on its ``online_date``.

**Appraisal on the feed a plant can secure** (the same access rule operations use: a plant wins ore in the
ore auction by bidding more than the plants it displaces, :mod:`model.ore_market`). A plant counts on

1. its *captive* ore: the mines and stockpiles whose ``offtake`` it is, operating or being built, that reach
   it over open roads, at their cash cost plus the route;
2. *market* ore it would win: at each ore pool it may buy from and reach, what went unsold last week plus
   what went last week to plants that bid less than it would (``b.ore_bid_share`` x its netback - route), at
   ``b.project_ore_share_of_value`` of the oxides' value (seed F14);

up to its nameplate. Its expected margin is that feed x (its oxides' value at the prices its market
expects, with any floor, less processing and ore). A mine counts on the best bid of the plants that may take
its ore less its cash cost, except the ore its running or coming offtaker takes: operations deliver that at
the mine's cost, so it is worth the chain's margin (:func:`appraise_mine`). A magnet plant counts on its nameplate sold at the magnet price
its market expects, less the oxides at what that market has paid and its processing
(:func:`appraise_magnet_plant`). No plant is appraised on ore it would never win: ore that
Chinese plants outbid it for stays theirs. Two projects appraised in the same week may count on the same
displaced ore (each is appraised alone; the market then shares it).

**Financing** (:class:`model.policies.Financing`): facilities that select in the same week select jointly,
so the order of the scenario file does not matter; see :func:`select_jointly`. The money each lender commits
is disbursed evenly over the project's permitting and construction; money disbursed on a project later
cancelled is stranded (outputs ``finance_committed``, ``finance_spent``, ``finance_stranded``, M USD, by
lender). A lender may also fund one named project at once (:class:`model.policies.ProjectFinance`, see
:func:`fund_project`): a state's decision that does not ask the appraisal; the project then goes through
the same phases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0
LIVE = ("permitting", "building")  # a decided project on its way


class Pipeline:
    """Where each project of one kind stands (rows: plants of a book, or mine sites), and its countdowns."""

    def __init__(self, status: list[str], weeks_to_online: list[int]):
        self.status = list(status)
        n = len(self.status)
        self.permit_left = np.zeros(n, dtype=int)
        self.build_left = np.zeros(n, dtype=int)
        self.total_weeks = np.zeros(n, dtype=int)  # permitting + construction, as decided
        self.financed_by = [""] * n
        for i, (st, w) in enumerate(zip(self.status, weeks_to_online, strict=True)):
            if st == "building":
                if w <= 0:
                    self.status[i] = "operating"  # finished before the run starts
                else:
                    self.build_left[i] = w
                    self.total_weeks[i] = w

    def weeks_left(self, i: int) -> int:
        return int(self.permit_left[i] + self.build_left[i])

    def start(self, i: int, permit_weeks: int, build_weeks: int, financed_by: str = "") -> bool:
        """A planned project is decided: permitting first (if any), then construction."""
        if self.status[i] != "planned":
            return False
        p, b = max(0, int(permit_weeks)), max(0, int(build_weeks))
        self.permit_left[i], self.build_left[i] = p, b
        self.status[i] = "permitting" if p > 0 else "building"
        self.total_weeks[i] = p + b
        self.financed_by[i] = financed_by
        return True

    def streamline(self, i: int, factor: float) -> None:
        """Permit streamlining reaches a project in permitting: its remaining permit time x ``factor``
        (construction under way is not shortened)."""
        if self.status[i] == "permitting":
            left = max(1, round(self.permit_left[i] * factor))
            self.total_weeks[i] -= int(self.permit_left[i] - left)
            self.permit_left[i] = left

    def cancel(self, i: int) -> bool:
        if self.status[i] not in LIVE:
            return False
        self.status[i] = "cancelled"
        self.permit_left[i] = self.build_left[i] = 0
        return True

    def close(self, i: int) -> bool:
        """An operating facility exits for good (its owner shuts it: see ``Behaviour.plant_exit_weeks``)."""
        if self.status[i] != "operating":
            return False
        self.status[i] = "closed"
        return True

    def advance(self) -> list[int]:
        """Count permitting and construction down a week; returns the rows that come online this week."""
        online: list[int] = []
        for i, st in enumerate(self.status):
            if st == "permitting":
                self.permit_left[i] -= 1
                if self.permit_left[i] <= 0:
                    self.status[i] = "building" if self.build_left[i] > 0 else "operating"
                    if self.status[i] == "operating":
                        online.append(i)
            elif st == "building":
                self.build_left[i] -= 1
                if self.build_left[i] <= 0:
                    self.status[i] = "operating"
                    online.append(i)
        return online

    def any_live(self) -> bool:
        return "permitting" in self.status or "building" in self.status


class PipelinePlant:
    """What a plant agent whose project phases live in its book's :class:`Pipeline` (``self._book.pipeline``, at
    row ``self.i``) answers to its sponsor, lenders and policies: refineries and magnet plants alike."""

    _book: object
    i: int

    def start_project(self, permit_weeks: int, build_weeks: int, financed_by: str = "") -> bool:
        """Its sponsor, a lender or a policy decides: permitting, then construction (False if it was not planned)."""
        return self._book.pipeline.start(self.i, permit_weeks, build_weeks, financed_by)

    def streamline_permits(self, factor: float) -> None:
        """Permit streamlining reaches it while in permitting: the permit time left x ``factor``."""
        self._book.pipeline.streamline(self.i, factor)

    def cancel_project(self) -> bool:
        """Its sponsor gives it up while in permitting or construction (False if it was not on its way)."""
        return self._book.pipeline.cancel(self.i)


# -- appraisal -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Appraisal:
    """What a project expects: feed it can secure (t REO/week: captive, market), annual margin (M USD)."""

    captive_t: float
    market_t: float
    margin_musd: float

    @property
    def feed_t(self) -> float:
        return self.captive_t + self.market_t


def plant_prices(model: RareEarthModel, i: int) -> np.ndarray:
    """The prices a plant's sponsor expects for its oxides: its market's memory, with any floor over it."""
    book = model.refiner_book
    prices = model.signals.memory[book.region[i]]
    floor = model.rules.floor_for(book.country[i], book.ids[i])
    return prices if floor is None else np.maximum(prices, floor)


def ore_value(model: RareEarthModel, i: int) -> np.ndarray:
    """Value of a kg of each ore type (USD/kg) to plant ``i``: the oxides it separates x its recovery, at the
    prices its sponsor expects (:func:`plant_prices`) less their separation costs. Less its unit cost, its
    netback."""
    book = model.refiner_book
    net = plant_prices(model, i) - book.separation_cost
    return (model.ore.basket_matrix * book.separates[i] * net).sum(axis=1) * book.recovery[i]


def appraise_plant(model: RareEarthModel, i: int, with_sites: np.ndarray | None = None) -> Appraisal:
    """The feed plant ``i`` can secure and its expected annual margin (module docstring); ``with_sites`` are
    planned mine sites that would be built with it (its own planned mines: an integrated project)."""
    m = model
    book, ore, f, b = m.refiner_book, m.ore, m.fleet, m.behaviour
    t = ore.route_tables()
    value = ore_value(m, i)
    netback = value - book.unit_cost()[i]
    keep = 1.0 - b.project_ore_share_of_value
    room = float(book.nameplate[i])
    captive = market = margin = 0.0
    route = ore.last_route_cost
    coming = f.coming_capacity()
    if with_sites is not None and with_sites.size:
        coming = coming.copy()
        coming[with_sites] = f.capacity[with_sites]
    for j in ore.captive_pools(i):  # its own mines and stockpiles first
        if not t.has_path[j, i] or room <= 0:
            continue
        sites = ore.pools[j].sites
        q = min(float(coming[sites].sum()), room)
        if q <= 0:
            continue
        o = ore.pool_ore[j]
        cost = float(f.cost[sites].mean()) + float(route[j, i])
        margin += q * (netback[o] - cost)
        captive += q
        room -= q
    if room > 0:
        won = ore.winnable(i, netback)  # per pool, t/week
        for j in np.argsort(-won, kind="stable"):
            q = min(float(won[j]), room)
            if q <= 0:
                break
            o = ore.pool_ore[j]
            margin += q * (netback[o] - (1.0 - keep) * value[o])
            market += q
            room -= q
    return Appraisal(captive, market, margin * 52 * KG_PER_T / 1e6)


def appraise_magnet_plant(model: RareEarthModel, i: int) -> Appraisal:
    """A planned magnet plant's expected annual margin: its nameplate, run at ``b.maker_expansion_utilisation``,
    selling its magnet at the price its market expects (its region's price memory), less its cash cost at the
    oxide prices that market has paid (its region's long memory: a new plant has no books of its own yet) and
    its processing. A magnet plant buys oxides in its region's exchange, where every maker bids, so it counts
    on no captive feed (``captive_t`` 0; ``market_t`` its nameplate, t of magnets a week)."""
    m = model
    mb = m.maker_book
    r = mb.region[i]
    per_kg = mb.base_recipe[i] / mb.yield_[i]
    cash = float(per_kg @ m.signals.long_memory[r]) + float(mb.processing_cost[i])
    price = float(m.signals.memory[r][mb.makes[i]])
    q = float(mb.nameplate[i]) * m.behaviour.maker_expansion_utilisation
    return Appraisal(0.0, float(mb.nameplate[i]), q * (price - cash) * 52 * KG_PER_T / 1e6)


def appraise_mine(model: RareEarthModel, site: int) -> Appraisal:
    """A planned mine's expected margin, priced as the ore markets would pay it (:mod:`model.ore_market`).

    * A mine whose offtaker is running or coming (permitting or building: counted as a sure buyer, as a
      lender would on a signed offtake) delivers to that plant first, if the ore rules let it, up to the plant's
      nameplate less its other captive feed (its mines and stockpiles running or coming), at the mine's cash
      cost plus any levy: in operations offtake ore is charged at that cost, so plant and mine work as one
      integrated chain (step 2 of the ore markets). Those tonnes are worth the chain's margin: the offtaker's
      netback at the prices it expects, less the route, the mine's cash cost and the levy (as
      :func:`appraise_plant` counts a plant's captive mines). The mine itself breaks even on them; the margin a
      lender's cover reads is the chain's. Priced at the offtaker's ore bid instead, the same tonnes looked
      worth half their netback, a price operations never pay them.
    * The rest (all of it, for a mine without a live offtaker) sells in the pool's auction: at the best bid of
      the other plants that may take it (``ore_bid_share`` x their netback, less the route), less its cash
      cost and levy; nothing if the pool sells to its offtaker only.

    ``captive_t`` is the ore its offtaker takes, ``market_t`` the rest. Full capacity is counted: China's quota
    scaling of its own mines' output is not (the lenders' hosts are outside China)."""
    m = model
    ore, f, book, rules = m.ore, m.fleet, m.refiner_book, m.rules
    j = int(ore.pool_of[site])
    pool = ore.pools[j]
    t = ore.route_tables()
    owner = ore.owner_of(j)
    alive = np.array([st in ("operating", *LIVE) for st in book.status], dtype=bool)
    o = ore.pool_ore[j]
    unit = book.unit_cost()
    q = float(f.capacity[site])
    cost = float(f.cost[site]) + float(m.site_levies()[site])
    captive = margin = 0.0
    first_call = (owner >= 0 and alive[owner] and bool(t.has_path[j, owner])
                  and (not rules.any_ore_rule() or rules.ore_allowed(book.country[owner], pool)))
    if first_call:
        coming = f.coming_capacity().copy()
        coming[site] = 0.0  # the mine appraised; the others (its pool's other sites too) fill the room first
        others = sum(float(coming[ore.pools[k].sites].sum()) for k in ore.captive_pools(owner))
        captive = min(q, max(float(book.nameplate[owner]) - others, 0.0))
        netback = float(ore_value(m, owner)[o] - unit[owner])
        margin += captive * (netback - float(ore.last_route_cost[j, owner]) - cost)
    rest = q - captive
    takers = alive & ore.accepts[j] & t.has_path[j] if not pool.captive_only else np.zeros(book.n, dtype=bool)
    if owner >= 0 and alive[owner]:
        takers[owner] = False  # the offtaker took what it has room for: the rest sells to others or waits
    if rest > 0 and takers.any():
        # what each taker would bid for it: ore_bid_share x its netback at the prices it expects - the route
        bid = max(float(m.behaviour.ore_bid_share * (ore_value(m, k)[o] - unit[k]) - ore.last_route_cost[j, k])
                  for k in np.flatnonzero(takers))
        margin += rest * (bid - cost)
    else:
        rest = 0.0
    return Appraisal(captive, rest, margin * 52 * KG_PER_T / 1e6)


# -- money -----------------------------------------------------------------------------------------------
@dataclass
class Commitment:
    lender: str
    kind: str  # "plant", "mine" or "magnet"
    row: int  # refiner row, mine site or magnet plant row
    project: str  # id
    musd: float
    spent: float = 0.0
    stranded: float = 0.0


@dataclass
class FinanceLedger:
    """Money lenders committed, disbursed and lost (M USD), project by project."""

    commitments: list[Commitment] = field(default_factory=list)

    def commit(self, c: Commitment) -> None:
        self.commitments.append(c)

    def by_lender(self) -> dict[str, tuple[float, float, float]]:
        out: dict[str, list[float]] = {}
        for c in self.commitments:
            acc = out.setdefault(c.lender, [0.0, 0.0, 0.0])
            acc[0] += c.musd
            acc[1] += c.spent
            acc[2] += c.stranded
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def disburse(self, model: RareEarthModel) -> None:
        """Each commitment is paid out evenly over its project's permitting and construction; what was paid
        on a cancelled project is stranded."""
        pipes = {"plant": model.refiner_book.pipeline, "mine": model.fleet.pipeline, "magnet": model.maker_book.pipeline}
        for c in self.commitments:
            pipe = pipes[c.kind]
            st = pipe.status[c.row]
            if st == "cancelled":
                if not c.stranded and c.spent:
                    c.stranded = c.spent
                continue
            if c.spent >= c.musd:
                continue
            if st in LIVE or st == "operating":
                total = max(int(pipe.total_weeks[c.row]), 1)
                c.spent = min(c.musd, c.spent + c.musd / total) if st != "operating" else c.musd


# -- projects of either kind ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Project:
    """A plant or a mine site that is (or was) a project: a uniform view for sponsors and lenders."""

    kind: str  # "plant" (a refinery), "mine" or "magnet" (a magnet plant)
    agent: object  # the Refiner, Miner or MagnetMaker agent

    @property
    def spec(self):
        return self.agent.spec

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def country(self) -> str:
        return self.spec.country

    @property
    def sponsor(self) -> str:
        return self.spec.sponsor_state or self.spec.country

    companions: tuple = ()  # planned mine projects that are built with this plant (their offtake is it)

    @property
    def capex_musd(self) -> float:
        return float(self.spec.capex_musd) + sum(c.capex_musd for c in self.companions)

    @property
    def status(self) -> str:
        return self.agent.project_status if self.kind == "mine" else self.agent.status

    @property
    def row(self) -> int:
        """Its row in its pipeline (the plant's row, or the mine's project row)."""
        return self.agent.fleet.project_row[self.agent.i] if self.kind == "mine" else self.agent.i

    def appraise(self, model: RareEarthModel) -> Appraisal:
        if self.kind == "mine":
            return appraise_mine(model, self.agent.i)
        if self.kind == "magnet":
            return appraise_magnet_plant(model, self.agent.i)
        sites = np.array([c.agent.i for c in self.companions if c.status == "planned"], dtype=int)
        return appraise_plant(model, self.agent.i, sites)

    def start(self, model: RareEarthModel, financed_by: str = "") -> tuple[bool, int]:
        """Start permitting (x its host's permit factor) and then construction, with its companions;
        returns (started, weeks until it comes online)."""
        permit = round(self.spec.permit_weeks * model.rules.lead_time_factor_for(self.country))
        build = int(self.spec.lead_time_weeks)
        started = self.agent.start_project(permit, build, financed_by)
        if started:
            for c in self.companions:
                if c.status == "planned":
                    c.start(model, financed_by)
        return started, permit + build

    def streamline_permits(self, factor: float) -> None:
        """Its permit time left (and its companions') x ``factor``, if it is in permitting."""
        self.agent.streamline_permits(factor)
        for c in self.companions:
            c.streamline_permits(factor)

    def cancel(self) -> bool:
        """Give it up (with its companions); False if it was not on its way."""
        done = self.agent.cancel_project()
        if done:
            for c in self.companions:
                c.cancel()
        return done


def collect_projects(model: RareEarthModel) -> list[Project]:
    """Every plant, mine site and magnet plant of the world that is a project (planned or building at the
    start). A
    planned mine whose offtake is a planned plant is that plant's companion: they are appraised, financed
    and started as one integrated project (the plant's ore is in the appraisal, the mine's capex in the
    charge), not one by one (neither pays without the other)."""
    mines = [Project("mine", model.miners[int(s)]) for s in model.fleet.project_site]
    planned_plants = {r.rid for r in model.refiners if r.spec.status == "planned"}
    with_plant = {}
    alone = []
    for p in mines:
        if p.spec.status == "planned" and p.spec.offtake in planned_plants:
            with_plant.setdefault(p.spec.offtake, []).append(p)
        else:
            alone.append(p)
    plants = [Project("plant", r, tuple(with_plant.get(r.rid, ()))) for r in model.refiners
              if r.spec.status != "operating"]
    magnets = [Project("magnet", mk) for mk in model.magnet_makers if mk.spec.status != "operating"]
    return plants + alone + magnets


def find_project(model: RareEarthModel, project_id: str) -> Project | None:
    """The project with this id: a plant, mine or magnet plant of ``model.projects``, or a planned mine built with a plant
    (its companion)."""
    for p in model.projects:
        if p.id == project_id:
            return p
        for c in p.companions:
            if c.id == project_id:
                return c
    return None


# -- decisions a policy takes for a project ------------------------------------------------------------------
def start_on_policy(model: RareEarthModel, p: Project, financed_by: str = "") -> tuple[bool, int]:
    """A policy decides project ``p`` (with its own planned mines), whatever its appraisal: it starts
    permitting and then construction (:meth:`Project.start`), and its sponsor notes that the decision required
    no cover, so it never cancels it on its numbers. Returns (started, weeks until it comes online)."""
    started, weeks = p.start(model, financed_by=financed_by)
    if started:
        model.state_by_id[p.sponsor].note_decision(p.id, 0.0)
    return started, weeks


def fund_project(model: RareEarthModel, project_id: str, lender: str, share_of_capex: float,
                 rate: float) -> tuple[bool, int]:
    """``lender`` funds one named project now (:class:`model.policies.ProjectFinance`): a state's decision,
    not a selection, so its appraisal is not asked. A planned project starts permitting (x its host's permit
    factor) and then construction, with its own planned mines, as any decided project does
    (:meth:`Project.start`); the lender commits ``share_of_capex`` x its capex (those mines' included),
    disbursed over that time like a facility's money, and grants it ``rate`` as its cost of capital. Its
    sponsor does not cancel it on its numbers (the decision required no cover). A project that is not
    planned (already decided, built or given up) is left as it is and the line says so. Returns (started,
    weeks until it comes online)."""
    p = find_project(model, project_id)
    if p is None or p.status != "planned":
        name = p.name if p is not None else project_id
        status = p.status if p is not None else "not in this world"
        model.log_event(f"{lender}: {name} is not planned ({status}); nothing funded")
        return False, 0
    capex = float(p.spec.capex_musd) + sum(c.capex_musd for c in p.companions if c.status == "planned")
    musd = share_of_capex * capex
    started, weeks = start_on_policy(model, p, financed_by=lender)
    model.state_by_id[p.sponsor].grant_cost_of_capital(p.id, rate)
    model.finance.commit(Commitment(lender, p.kind, p.row, p.id, musd))
    model.log_event(f"{lender} finances {p.name} (US${musd:,.0f}M; online in {weeks} weeks)")
    return started, weeks


# -- joint financing ----------------------------------------------------------------------------------------
def select_jointly(model: RareEarthModel, facilities: list) -> None:
    """Financing facilities that select in the same week select together (their order in the scenario file
    does not matter):

    1. candidates are the planned projects (plants, mines and magnet plants) in a host that at least one facility lends to;
    2. each is appraised once (:func:`appraise_plant`, :func:`appraise_mine`); for each facility that may
       lend to it, its cover = expected margin / capital charge at that facility's concessional rate;
    3. candidates are taken in order of their best cover (ties by id), each appraised again once an earlier one
       has started (two mines cannot both count on one offtaker's room); the facilities that take part are
       those whose ``min_cover_ratio`` it meets and that have money left; together they fund the largest
       ``max_share_of_capex`` among them x capex, shared in proportion to their money left (each at most its
       own share of capex and its money), or not at all if they cannot;
    4. a funded project gets the share-weighted concessional rate, its lenders' offtake guarantees, and
       starts permitting at once. Each facility records what it funds (``Financing.record_selection``)."""
    m = model
    hosts = set().union(*(set(f.eligible_hosts) for f in facilities)) if facilities else set()
    cands = [p for p in m.projects if p.status == "planned" and p.country in hosts]
    left = {id(f): float(f.budget_musd) for f in facilities}

    def covers_of(p, sponsor) -> dict[int, float]:
        """Its cover for each facility that may lend to it: margin / capital charge at that facility's rate."""
        margin = p.appraise(m).margin_musd
        return {id(f): margin / max(sponsor.capital_charge_musd(p, rate=f.concessional_rate), 1e-9)
                for f in facilities if p.country in f.eligible_hosts}

    ranked = []
    for p in cands:
        sponsor = m.state_by_id[p.sponsor]
        covers = covers_of(p, sponsor)
        ranked.append((max(covers.values()), p, sponsor, covers))
    ranked.sort(key=lambda x: (-x[0], x[1].id))
    started_any = False
    for _best, p, sponsor, covers in ranked:
        if started_any:  # what an earlier pick took (its mine, its offtaker's room) is not this one's to count on
            covers = covers_of(p, sponsor)
        part = [f for f in facilities if id(f) in covers and covers[id(f)] >= f.min_cover_ratio and left[id(f)] > 0]
        if not part:
            continue
        need = p.capex_musd * max(f.max_share_of_capex for f in part)
        cap = {id(f): min(left[id(f)], f.max_share_of_capex * p.capex_musd) for f in part}
        if sum(cap.values()) < need - 1e-9:
            continue
        share = _pro_rata(need, [left[id(f)] for f in part], [cap[id(f)] for f in part])
        lenders = " + ".join(f.lender for f, s in zip(part, share, strict=True) if s > 0)
        started, weeks = p.start(m, financed_by=lenders)
        if not started:
            continue
        started_any = True
        rates = {f.concessional_rate for f in part}
        rate = rates.pop() if len(rates) == 1 else (
            sum(f.concessional_rate * s for f, s in zip(part, share, strict=True)) / max(sum(share), 1e-12))
        sponsor.grant_cost_of_capital(p.id, rate)
        sponsor.note_decision(p.id, max(f.min_cover_ratio for f in part))
        for f, s in zip(part, share, strict=True):
            if s <= 0:
                continue
            left[id(f)] -= s
            f.record_selection(m, p, s)
            m.finance.commit(Commitment(f.lender, p.kind, p.row, p.id, s))
        m.log_event(f"{lenders} finance {p.name} (US${need:,.0f}M; online in {weeks} weeks)")


def _pro_rata(need: float, weights: list[float], caps: list[float]) -> list[float]:
    """Split ``need`` in proportion to ``weights``, no part above its cap (the excess re-spread)."""
    share = [0.0] * len(weights)
    open_ = [k for k in range(len(weights)) if caps[k] > 0]
    rest = need
    while rest > 1e-9 and open_:
        w = sum(weights[k] for k in open_)
        if w <= 0:
            break
        full = []
        for k in open_:
            give = min(rest * weights[k] / w, caps[k] - share[k])
            share[k] += give
            if caps[k] - share[k] <= 1e-9:
                full.append(k)
        rest = need - sum(share)
        if not full:
            break
        open_ = [k for k in open_ if k not in full]
    return share
