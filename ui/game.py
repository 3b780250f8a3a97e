"""Teams play countries (issue 15 item 4): one model, several teams, each holding one state's levers.

A :class:`Game` holds one :class:`GameModel` (the classroom model of a chosen scenario and seed) and a
*no-action twin*: the same scenario and seed in which nobody acts, advanced week for week beside it, so each
objective can be read against what would have happened anyway. Both advance only when the game master
advances a round (:meth:`Game.advance`, ``round_weeks`` weeks, 13 = a quarter by default): every team's page
reads the same numbers, and no page runs a model of its own.

**Teams and levers.** Each team plays one state of the world file (:data:`TEAMS`: China, the United States,
Japan, the European Union, Australia, Laos) and may use only that state's levers (:data:`LEVERS`): export
licences, the border with Myanmar and the state reserve for China; a stockpile agency, a lender that funds a
planned project, sanctions and faster permits for the allies; the Northern Corridor and the Boten rail
crossing for Laos. A lever builds the policies of :mod:`model.policies` that the scenarios use; an order
(:meth:`Game.order`) holds them until the next round begins, when they are handed to the model through its
commands (``add_policy``, ``end_policy``; :class:`GameModel`), as the classroom page's interventions are.
An order that repeats one already made is ignored: a toggle switched on twice, the same one-shot twice in a
round (a double click).

**Budget.** Each team has ``budget_musd`` (US$ M) for the levers that cost money, priced by the model's own
accounting, never by the game: a stockpile sets aside the purchase budget it is given (the agency buys at
market prices and stops when it is spent; stopping it gives back what it did not spend, read from the
state's purchases, ``State.stock_spent_usd``); funding a project commits the lender's share of its capex,
``ProjectFinance``'s own formula (the ledger's commitment is what counts once it begins; a project someone
else funded first commits nothing). An order that costs more than the money left is refused with a message
that says how much is left. The other levers cost no money; their price is in the objectives.

**Scoreboard** (:meth:`Game.scoreboard`), from the model's outputs summed week by week: each team's
objective (:data:`OBJECTIVES`: China's export revenue; the unmet need of its own buyers; the ex-China share
of refined output; Myanmar ore through Laos) in the game and in the twin, its score (how much better than
the twin, in percent, between -100 and +100) and rank, the shortage its buyers avoided, and its money
committed and spent.

Games live in a module-level :data:`REGISTRY` keyed by a code the game master chooses; every method of a
:class:`Game` takes its lock, so pages of many browser sessions (threads) may call them at once. The game
uses no randomness of its own: the model's seed is its only source.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from model.model import RareEarthModel
from model.policies import (
    ExportControl,
    PermitStreamlining,
    ProjectFinance,
    RouteChange,
    Sanction,
    Stockpile,
    StockpileRelease,
    TimelineItem,
)
from ui.session import ClassroomModel, parse_scenario_name, parse_seed
from ui.words import SOURCE_CLASS, Told

ROUND_WEEKS = 13  # a quarter
DEFAULT_ROUNDS = 8
DEFAULT_BUDGET_MUSD = 500.0
DEFAULT_SCENARIO = "baseline"
MAX_GAMES = 50
MAX_ROUND_WEEKS = 52
TEAM_NOTE = "team game"  # the note on every item a team orders ("team game: US")
KG_PER_T = 1000.0
CODE_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,20}$")


class GameError(ValueError):
    """An order or command the game refuses; the message is for the page, as it stands."""


# ================================================================================================ objectives
@dataclass(frozen=True)
class Objective:
    key: str
    label: str
    unit: str
    more_is_better: bool


OBJECTIVES: dict[str, Objective] = {o.key: o for o in (
    Objective("export_revenue", "China's export revenue", "US$ M", True),
    Objective("shortage", "Unmet need of its buyers", "t", False),
    Objective("exchina_share", "Ex-China share of refined output", "%", True),
    Objective("laos_flow", "Myanmar ore through Laos", "t REO", True),
)}
LAOS_CORRIDORS = ("northern_corridor", "boten")  # myanmar_ore_flow regions that cross Laos


# =================================================================================================== levers
@dataclass(frozen=True)
class Lever:
    """A button on a team's page. ``make(game, team, params)`` builds the items to schedule; ``cost(...)`` their
    price in US$ M from the model's accounting (0: no money); a toggle's second press ends its items."""

    key: str
    label: str
    undo_label: str | None  # None: a one-shot
    help: str
    make: Callable[[Game, Team, dict], list[TimelineItem]]
    cost: Callable[[Game, Team, dict], float] = lambda g, t, p: 0.0


def _note(team: Team) -> str:
    return f"{TEAM_NOTE}: {team.sid}"


def _licences(g: Game, t: Team, p: dict) -> list[TimelineItem]:
    rate = _fraction(p.get("approval_rate", 0.39), "approval rate")
    # in every form the world has (FACTS D1: the magnets containing them too; the oxide world has none)
    return [ExportControl(start=g.model.date, actor=t.sid, products=["Dy", "Tb"], forms=["oxide", "magnet"],
                          mode="licence", approval_rate=rate, note=_note(t))]


def _fraction(x: object, what: str) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GameError(f"The {what} must be a number from 0 to 1 (got {x!r}).") from None
    if not 0.0 <= v <= 1.0:
        raise GameError(f"The {what} must be a number from 0 to 1 (got {v:g}).")
    return v


def _money(x: object, what: str) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GameError(f"The {what} must be a number of US$ M (got {x!r}).") from None
    if not math.isfinite(v) or v <= 0:
        raise GameError(f"The {what} must be more than US$ 0 M (got {v:g}).")
    return v


def _stockpile(g: Game, t: Team, p: dict) -> list[TimelineItem]:
    days = p.get("target_days", 60.0)
    try:
        days = float(days)
    except (TypeError, ValueError):
        raise GameError(f"The target must be a number of days (got {days!r}).") from None
    if not 1.0 <= days <= 365.0:
        raise GameError(f"The target must be from 1 to 365 days of use (got {days:g}).")
    return [Stockpile(start=g.model.date, actor=t.sid, target_days=days,
                      budget_musd=_money(p.get("budget_musd", 150.0), "purchase budget"), note=_note(t))]


def _release(g: Game, t: Team, p: dict) -> list[TimelineItem]:
    state = g.model.state_by_id[t.sid]
    if not state.stockpile.any() and "stockpile" not in t.on:
        raise GameError(f"{t.name} holds no stock to release: build a stockpile first.")
    d = g.model.date
    weeks = StockpileRelease.model_fields["release_weeks"].default
    return [StockpileRelease(start=d, end=d + dt.timedelta(weeks=int(weeks)), actor=t.sid, states=[t.sid],
                             release_weeks=weeks, note=_note(t))]


def _project(g: Game, p: dict):
    pid = p.get("project")
    for proj in g.model.financeable():
        if proj.id == pid:
            return proj
    raise GameError(f"{pid!r} is not a planned project outside China that can still be funded; choose one of "
                    f"{', '.join(x.id for x in g.model.financeable()) or '(none left)'}.")


def _finance(g: Game, t: Team, p: dict) -> list[TimelineItem]:
    proj = _project(g, p)
    return [ProjectFinance(start=g.model.date, actor=t.sid, lender=t.lender, project=proj.id, note=_note(t))]


def _finance_cost(g: Game, t: Team, p: dict) -> float:
    """What the lender will commit: ``ProjectFinance``'s share of the project's capex, its own planned mines
    included (:func:`model.projects.fund_project`)."""
    proj = _project(g, p)
    share = ProjectFinance.model_fields["share_of_capex"].default
    return share * (float(proj.spec.capex_musd) + sum(c.capex_musd for c in proj.companions if c.status == "planned"))


LEVERS: dict[str, Lever] = {lv.key: lv for lv in (
    Lever("licences", "License Dy/Tb exports", "Lift the Dy/Tb licences",
          "Exports of dysprosium and terbium, and of magnets containing them, need a licence; the approval rate is "
          "the share of tonnes approved (0.39 in 2025, FACTS D1, D3).", _licences),
    Lever("border", "Close the Myanmar border", "Reopen the Myanmar border",
          "China closes every crossing from Myanmar (FACTS C11): Kachin ore must find another road or wait.",
          lambda g, t, p: [RouteChange(start=g.model.date, actor=t.sid, action="close", between=["MM", t.sid],
                                       note=_note(t))]),
    Lever("release", "Release the stockpile", None,
          "The state's stock agency sells its stock into the market over 8 weeks, whatever the price (seed F4).",
          _release),
    Lever("stockpile", "Build a stockpile", "Stop buying for the stockpile",
          "A stock agency buys toward a target of days of use while prices are near the cost of supply, "
          "until its purchase budget is spent (FACTS E5). The budget is set aside at once; stopping gives back "
          "what it did not spend.", _stockpile, lambda g, t, p: _money(p.get("budget_musd", 150.0), "purchase budget")),
    Lever("finance", "Fund it", None,
          "Your lender funds a planned plant or mine outside China at once: 80 % of its capex at 3 % "
          "(FACTS E3); it comes online after permits and construction.", _finance, _finance_cost),
    Lever("sanctions", "Impose sanctions on Myanmar", "Lift the sanctions",
          "Your refiners may not buy ore from military-linked or NDA-K sites in Myanmar; audited civilian "
          "operations are exempt (seed F24).",
          lambda g, t, p: [Sanction(start=g.model.date, actor=t.sid, compliers=[], note=_note(t))]),
    Lever("permits", "Faster permits", "Normal permits",
          "Permitting of projects in your country takes 70 % of the time (seed F4).",
          lambda g, t, p: [PermitStreamlining(start=g.model.date, actor=t.sid, states=[t.sid], note=_note(t))]),
    Lever("corridor", "Open the Northern Corridor", "Close the Northern Corridor",
          "Kachin ore may leave through Laos: by rail into China at Boten, or south to Thailand (seed F19-F22).",
          lambda g, t, p: [RouteChange(start=g.model.date, actor=t.sid, action="open", corridor="northern_corridor",
                                       note=_note(t))]),
    Lever("boten", "Close the Boten crossing", "Reopen the Boten crossing",
          "Laos closes its rail crossing into China at Boten: ore through Laos can only go south.",
          lambda g, t, p: [RouteChange(start=g.model.date, actor=t.sid, action="close", corridor="boten",
                                       note=_note(t))]),
)}


@dataclass(frozen=True)
class TeamSpec:
    sid: str  # the state it plays (world file id)
    objective: str  # key of OBJECTIVES
    levers: tuple[str, ...]
    lender: str = ""  # its lender, for the finance lever
    brief: str = ""


ALLY_LEVERS = ("stockpile", "release", "finance", "sanctions", "permits")
TEAMS: dict[str, TeamSpec] = {t.sid: t for t in (
    TeamSpec("CN", "export_revenue", ("licences", "border", "release"),
             brief="Earn from exports while keeping the world's refining in China."),
    TeamSpec("US", "shortage", ALLY_LEVERS, "US EXIM", "Keep American buyers supplied."),
    TeamSpec("JP", "shortage", ALLY_LEVERS, "JBIC", "Keep Japanese buyers supplied."),
    TeamSpec("EU", "shortage", ALLY_LEVERS, "European Investment Bank", "Keep European buyers supplied."),
    TeamSpec("AU", "exchina_share", ("finance", "sanctions", "permits"), "Export Finance Australia",
             "Grow refining outside China."),
    TeamSpec("LA", "laos_flow", ("corridor", "boten"), brief="Bring Myanmar's ore through Laos."),
)}


# ================================================================================================ the model
class GameModel(ClassroomModel):
    """The classroom model, with the game's hand-over: :meth:`schedule` gives it items to begin and end at the
    next step, as the page's presses are (the model's ``add_policy`` and ``end_policy``, in the new week)."""

    def schedule(self, start: list[TimelineItem], end: list[TimelineItem]) -> None:
        self._to_start.extend(start)
        self._to_end.extend(end)

    def source_of(self, item: TimelineItem) -> str:
        if item.note.startswith(TEAM_NOTE):
            return SOURCE_CLASS
        return super().source_of(item)


# ================================================================================================ the teams
@dataclass
class Order:
    team: str
    lever: str
    items: list[TimelineItem]
    cost_musd: float
    ends: bool = False  # a toggle switched off
    params: dict = field(default_factory=dict)


@dataclass
class Team:
    sid: str
    name: str
    spec: TeamSpec
    budget_musd: float
    lender: str = ""
    on: dict[str, list[TimelineItem]] = field(default_factory=dict)  # toggles on (ordered or in force)
    ready: bool = False  # done for this round
    stockpiles: list[list] = field(default_factory=list)  # [Stockpile, spent USD, stopped]
    finance: list = field(default_factory=list)  # the model's Commitments for this team's orders
    finance_pending: list = field(default_factory=list)  # ProjectFinance items handed over this round
    orders_made: int = 0

    def committed_musd(self) -> float:
        """Money set aside: stockpile budgets (a stopped stockpile: what it spent) and the lender's
        commitments in the model's ledger."""
        stock = sum(spent / 1e6 if stopped else item.budget_musd for item, spent, stopped in self.stockpiles)
        return stock + sum(c.musd for c in self.finance)

    def spent_musd(self) -> float:
        """Money paid out: stockpile purchases at market prices, the lender's disbursements (the model's)."""
        return sum(spent for _, spent, _ in self.stockpiles) / 1e6 + sum(c.spent for c in self.finance)


@dataclass(frozen=True)
class ScoreRow:
    sid: str
    team: str
    objective: str
    unit: str
    value: float  # in the game
    twin: float  # in the no-action twin
    score: float  # % better than the twin, -100 .. 100
    rank: int
    shortage_avoided_t: float | None  # None: its state has no buyers
    committed_musd: float
    spent_musd: float
    budget_musd: float
    ready: bool


@dataclass(frozen=True)
class Board:
    """The scoreboard at one moment (immutable: pages render it without the game's lock)."""

    round: int
    week: int
    date: dt.date
    rows: tuple[ScoreRow, ...]
    export_revenue_musd: float
    export_revenue_twin_musd: float
    exchina_share: float  # average over the game so far, %
    exchina_share_twin: float
    exchina_share_round: float  # average over the last round, %
    exchina_share_round_twin: float


def score(value: float, twin: float, more_is_better: bool) -> float:
    """How much better than the twin, in % of the twin's value, between -100 and +100 (twin 0: +-100, or 0 when
    equal)."""
    diff = value - twin if more_is_better else twin - value
    if abs(diff) < 1e-9:
        return 0.0
    if abs(twin) < 1e-9:
        return math.copysign(100.0, diff)
    return max(-100.0, min(100.0, 100.0 * diff / abs(twin)))


class Tally:
    """Objectives summed week by week from one model's outputs (its recorder's latest values)."""

    def __init__(self, model: RareEarthModel, states: list[str]):
        self.model = model
        self.states = states
        self.shortage = dict.fromkeys(states, 0.0)  # t, since the game began
        self.need = dict.fromkeys(states, 0.0)
        self.export_revenue_musd = 0.0
        self.exchina_sum = 0.0  # sum of the weekly ex-China share (fraction)
        self.weeks = 0
        self.laos_flow = 0.0
        self.prices: list[tuple[int, dict[str, list[float]]]] = []  # (week, region -> prices), for the chart

    def week(self) -> None:
        m = self.model
        latest = m.recorder.latest
        products = m.products
        for sid in self.states:
            short = sum(latest.get(("shortage", sid, p), 0.0) for p in products)
            self.shortage[sid] += short
            self.need[sid] += short + sum(latest.get(("consumption", sid, p), 0.0) for p in products)
        china = m.region_of_state("CN")
        revenue = 0.0
        for dest in m.import_destinations(source=china):
            for p in products:
                t = latest.get(("exports", dest, p), 0.0)
                if t:
                    revenue += t * latest[("price", china, p)] * KG_PER_T
        self.export_revenue_musd += revenue / 1e6
        share = latest.get(("china_refined_share", "", ""), float("nan"))
        if math.isfinite(share):
            self.exchina_sum += 1.0 - share
            self.weeks += 1
        self.laos_flow += sum(latest.get(("myanmar_ore_flow", c, ""), 0.0) for c in LAOS_CORRIDORS)
        self.prices.append((int(m.steps), {r: [float(x) for x in m.prices[r]] for r in m.regions}))

    def exchina_share(self) -> float:
        return 100.0 * self.exchina_sum / self.weeks if self.weeks else float("nan")

    def value(self, objective: str, sid: str) -> float:
        if objective == "export_revenue":
            return self.export_revenue_musd
        if objective == "shortage":
            return self.shortage.get(sid, 0.0)
        if objective == "exchina_share":
            return self.exchina_share()
        if objective == "laos_flow":
            return self.laos_flow
        raise KeyError(objective)

    def mark(self) -> tuple[float, int]:
        return self.exchina_sum, self.weeks


# ================================================================================================ the game
class Game:
    """One game: the model, its twin, the teams, their orders and the rounds (see the module docstring)."""

    def __init__(self, code: str, scenario: str = DEFAULT_SCENARIO, seed: int | str = 0,
                 teams: list[str] | None = None, round_weeks: int = ROUND_WEEKS, rounds: int = DEFAULT_ROUNDS,
                 budget_musd: float = DEFAULT_BUDGET_MUSD, auto_advance: bool = False):
        if not CODE_PATTERN.match(str(code)):
            raise GameError("A game code is 1 to 20 letters, digits or dashes.")
        name, notice = parse_scenario_name(scenario)
        if notice:
            raise GameError(notice)
        seed_used, notice = parse_seed(seed)
        if notice:
            raise GameError(notice)
        teams = list(TEAMS) if teams is None else list(dict.fromkeys(teams))
        unknown = [t for t in teams if t not in TEAMS]
        if unknown or not teams:
            raise GameError(f"Teams must be among {', '.join(TEAMS)} (got {', '.join(unknown) or 'none'}).")
        if not 1 <= int(round_weeks) <= MAX_ROUND_WEEKS:
            raise GameError(f"A round is 1 to {MAX_ROUND_WEEKS} weeks (got {round_weeks}).")
        budget = _money(budget_musd, "budget per team")
        self.code = str(code)
        self.scenario = name
        self.seed = seed_used
        self.round_weeks = int(round_weeks)
        self.auto_advance = bool(auto_advance)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.version = 0  # bumped on every change a page should show
        self.model = GameModel(name, seed_used)
        self.twin = RareEarthModel(scenario=name, seed=seed_used)  # nobody acts in it
        self.rounds = max(1, min(int(rounds), math.ceil(self.model.weeks / self.round_weeks)))
        self.round = 0  # rounds played
        self.teams: dict[str, Team] = {}
        for sid in teams:
            spec = TEAMS[sid]
            self.teams[sid] = Team(sid, self.model.state_by_id[sid].name, spec, budget, spec.lender)
        buyers = [s for s in teams if s in self.model.buyer_book.states]
        self.tally = Tally(self.model, buyers)
        self.twin_tally = Tally(self.twin, buyers)
        self._round_mark = ((0.0, 0), (0.0, 0))
        self.orders: list[Order] = []  # this round's, in the order made (handed over in that order)
        self.messages: list[str] = []  # what happened at each round's start, for the pages
        self._team_of_text: dict[str, str] = {}  # an item's describe() -> the team that ordered it
        self._board = self._make_board()

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.round >= self.rounds or not self.model.running or self.model.error is not None

    def team(self, sid: str) -> Team:
        if sid not in self.teams:
            raise GameError(f"No team plays {sid!r} in game {self.code}; teams: {', '.join(self.teams)}.")
        return self.teams[sid]

    def levers(self, sid: str) -> list[Lever]:
        return [LEVERS[k] for k in self.team(sid).spec.levers]

    def budget_left(self, sid: str) -> float:
        with self._lock:
            t = self.team(sid)
            pending = sum(o.cost_musd for o in self.orders if o.team == sid)
            return t.budget_musd - t.committed_musd() - pending

    def orders_of(self, sid: str) -> list[Order]:
        with self._lock:
            return [o for o in self.orders if o.team == sid]

    def pending_words(self, sid: str | None = None) -> list[str]:
        """This round's orders in the event log's words (one team's, or everyone's)."""
        with self._lock:
            w = self.model.words
            return [w.item(i, "ends" if o.ends else "begins").text
                    for o in self.orders if sid is None or o.team == sid for i in o.items]

    def is_on(self, sid: str, lever: str) -> bool:
        with self._lock:
            return lever in self.team(sid).on

    def board(self) -> Board:
        return self._board

    def scoreboard(self) -> Board:
        return self._board

    def told(self, n: int = 40) -> list[tuple[Told, str]]:
        """The last ``n`` lines of the event log in words, newest first, each with the team that acted ('' for
        the scenario and the market)."""
        with self._lock:
            return [(t, self._team_of_text.get(t.raw, "") if t.source == SOURCE_CLASS else "")
                    for t in reversed(self.model.told[-n:])]

    def price_series(self) -> tuple[list[int], list[dict[str, list[float]]], list[dict[str, list[float]]]]:
        """Weeks, and each week's prices by region in the game and in the twin (for the chart)."""
        with self._lock:
            return ([w for w, _ in self.tally.prices], [p for _, p in self.tally.prices],
                    [p for _, p in self.twin_tally.prices])

    def wait_change(self, seen: int, timeout: float) -> int:
        """Block until :attr:`version` differs from ``seen`` or ``timeout`` seconds pass; returns the version."""
        with self._changed:
            if self.version == seen:
                self._changed.wait(timeout)
            return self.version

    def _bump(self) -> None:
        self.version += 1
        self._changed.notify_all()

    # -- orders -------------------------------------------------------------------------------------------
    def order(self, sid: str, lever: str, on: bool | None = None, **params) -> Order | None:
        """A team pulls one of its levers for the next round. ``on``: what a toggle's button asked for (True:
        the action, False: its undo, None: switch). Returns the order, or None if it repeats one already made
        (ignored). Raises :class:`GameError` with a message for the page when refused: not this team's lever,
        over budget, the game is over, a bad parameter."""
        with self._lock:
            t = self.team(sid)
            if lever not in t.spec.levers:
                names = ", ".join(LEVERS[k].label for k in t.spec.levers)
                raise GameError(f"{t.name} has no lever {lever!r}; its levers: {names}.")
            if self.finished:
                raise GameError("The game is over: no more orders.")
            lv = LEVERS[lever]
            toggle = lv.undo_label is not None
            if toggle and on is not None and on == (lever in t.on):
                return None  # already as asked
            if toggle and lever in t.on:
                return self._switch_off(t, lever)
            if not toggle and any(o.team == sid and o.lever == lever and o.params == params for o in self.orders):
                return None  # the same one-shot again this round
            cost = float(lv.cost(self, t, params))
            left = self.budget_left(sid)
            if cost > left + 1e-9:
                raise GameError(f"Not enough budget: this costs US$ {cost:,.0f} M and {t.name} has US$ {left:,.0f} M "
                                f"left (budget US$ {t.budget_musd:,.0f} M, committed US$ "
                                f"{t.budget_musd - left:,.0f} M).")
            items = lv.make(self, t, params)
            o = Order(sid, lever, items, cost, params=dict(params))
            self.orders.append(o)
            if toggle:
                t.on[lever] = items
            t.ready = False
            t.orders_made += 1
            self._bump()
            return o

    def _switch_off(self, t: Team, lever: str) -> Order | None:
        items = t.on.pop(lever)
        pending = [o for o in self.orders if o.team == t.sid and o.lever == lever and not o.ends]
        if pending:  # not handed over yet: simply withdrawn
            self.orders = [o for o in self.orders if o not in pending]
            self._bump()
            return None
        o = Order(t.sid, lever, items, 0.0, ends=True)
        self.orders.append(o)
        t.ready = False
        self._bump()
        return o

    def set_ready(self, sid: str, ready: bool = True) -> None:
        """A team is done (or not) for this round; with ``auto_advance`` the last team done advances it."""
        with self._lock:
            self.team(sid).ready = bool(ready)
            self._board = self._make_board()
            self._bump()
            if self.auto_advance and all(t.ready for t in self.teams.values()) and not self.finished:
                self.advance()

    # -- rounds -------------------------------------------------------------------------------------------
    def advance(self) -> int:
        """Play one round: hand this round's orders to the model (they begin in the round's first week), then
        step the model and its twin ``round_weeks`` weeks (fewer at the horizon). Returns the weeks played."""
        with self._lock:
            if self.finished:
                raise GameError("The game is over.")
            self._hand_over()
            self._round_mark = (self.tally.mark(), self.twin_tally.mark())
            n_before = len(self.model.finance.commitments)
            played = 0
            for _ in range(self.round_weeks):
                if not self.model.running:
                    break
                spent_before = {sid: self.model.state_by_id[sid].stock_spent_usd for sid in self.teams}
                self.model.step()
                if self.model.error is not None:
                    break
                self.twin.step()
                self.tally.week()
                self.twin_tally.week()
                self._count_spending(spent_before)
                played += 1
            self._record_finance(n_before)
            self.round += 1
            for t in self.teams.values():
                t.ready = False
            self._board = self._make_board()
            self._bump()
            return played

    def _hand_over(self) -> None:
        start: list[TimelineItem] = []
        end: list[TimelineItem] = []
        for o in self.orders:
            team = self.teams[o.team]
            for item in o.items:
                self._team_of_text[item.describe()] = team.name
                (end if o.ends else start).append(item)
                if isinstance(item, Stockpile):
                    if o.ends:
                        for rec in team.stockpiles:
                            if rec[0] is item:
                                rec[2] = True  # stopped: what it did not spend comes back
                    else:
                        team.stockpiles.append([item, 0.0, False])
            if o.lever == "finance":
                team.finance_pending.append(o.items[0])
        self.model.schedule(start, end)
        self.orders = []

    def _count_spending(self, before: dict[str, float]) -> None:
        """A stockpile's purchases this week (the state's own account), while it is the agency's mandate."""
        for sid, t in self.teams.items():
            live = [rec for rec in t.stockpiles if not rec[2] and any(x is rec[0] for x in self.model.active)]
            if live:
                live[-1][1] += self.model.state_by_id[sid].stock_spent_usd - before[sid]

    def _record_finance(self, n_before: int) -> None:
        """The ledger's commitments that this round's ``ProjectFinance`` orders made (none if the project was
        no longer planned: someone funded it first)."""
        new = self.model.finance.commitments[n_before:]
        for t in self.teams.values():
            for item in t.finance_pending:
                t.finance += [c for c in new if c.lender == item.lender and c.project == item.project]
            t.finance_pending = []

    # -- the scoreboard -----------------------------------------------------------------------------------
    def _make_board(self) -> Board:
        rows = []
        for sid, t in self.teams.items():
            obj = OBJECTIVES[t.spec.objective]
            value = self.tally.value(obj.key, sid)
            twin = self.twin_tally.value(obj.key, sid)
            s = score(value, twin, obj.more_is_better) if self.round else 0.0
            avoided = (self.twin_tally.shortage[sid] - self.tally.shortage[sid]) if sid in self.tally.shortage else None
            rows.append([sid, t.name, obj.label, obj.unit, value, twin, s, 0, avoided, t.committed_musd(),
                         t.spent_musd(), t.budget_musd, t.ready])
        order = sorted(range(len(rows)), key=lambda i: (-round(rows[i][6], 6), rows[i][9], i))
        for pos, i in enumerate(order):
            prev = order[pos - 1] if pos else None
            rows[i][7] = rows[prev][7] if prev is not None and round(rows[prev][6], 6) == round(rows[i][6], 6) \
                else pos + 1
        (g0, gw), (t0, tw) = self._round_mark
        g_round = 100 * (self.tally.exchina_sum - g0) / (self.tally.weeks - gw) if self.tally.weeks > gw else math.nan
        t_round = (100 * (self.twin_tally.exchina_sum - t0) / (self.twin_tally.weeks - tw)
                   if self.twin_tally.weeks > tw else math.nan)
        return Board(self.round, int(self.model.steps), self.model.date,
                     tuple(ScoreRow(*r) for r in sorted(rows, key=lambda r: (r[7], list(self.teams).index(r[0])))),
                     self.tally.export_revenue_musd, self.twin_tally.export_revenue_musd,
                     self.tally.exchina_share(), self.twin_tally.exchina_share(), g_round, t_round)


# ============================================================================================== the registry
class Registry:
    """Games by code, shared by every browser session of the server (thread-safe)."""

    def __init__(self, limit: int = MAX_GAMES):
        self._games: dict[str, Game] = {}
        self._lock = threading.Lock()
        self.limit = limit

    def create(self, code: str, **kw) -> Game:
        code = str(code).strip()
        with self._lock:
            if code in self._games:
                raise GameError(f"Game {code} exists already: choose another code, or open it.")
            if len(self._games) >= self.limit:
                raise GameError(f"This server holds {self.limit} games already: end one first.")
        game = Game(code, **kw)  # built outside the lock: other games stay usable meanwhile
        with self._lock:
            if code in self._games:
                raise GameError(f"Game {code} exists already: choose another code, or open it.")
            self._games[code] = game
        return game

    def get(self, code: str) -> Game:
        with self._lock:
            game = self._games.get(str(code).strip())
        if game is None:
            raise GameError(f"No game {code!r} on this server: check the code with your teacher.")
        return game

    def end(self, code: str) -> None:
        with self._lock:
            self._games.pop(str(code).strip(), None)

    def codes(self) -> list[str]:
        with self._lock:
            return list(self._games)

    def suggest_code(self) -> str:
        """A free code to offer on the game master's page: "game-" and four letters and digits drawn like class
        mode's codes (:func:`ui.classmode.new_code`, not the model's randomness), so that students of one
        class cannot guess another class's game on the same server."""
        from ui.classmode import new_code

        with self._lock:
            return "game-" + new_code(lambda c: f"game-{c}" in self._games)


REGISTRY = Registry()


def lever_state(game: Game, sid: str) -> dict[str, bool]:
    """Which toggles of a team are on (for the page's buttons)."""
    return {k: game.is_on(sid, k) for k in game.team(sid).spec.levers}


__all__ = ["DEFAULT_BUDGET_MUSD", "DEFAULT_ROUNDS", "LEVERS", "OBJECTIVES", "REGISTRY", "ROUND_WEEKS", "TEAMS",
           "Board", "Game", "GameError", "GameModel", "Lever", "Order", "Registry", "ScoreRow", "Team", "score"]
