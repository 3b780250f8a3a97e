"""The team game's pages (issue 15 item 4): ``/game`` for the game master, ``/team`` for each team.

- ``/game``: create a game (its code, scenario, seed, teams, weeks per round, rounds, budget per team), or
  open one (``/game?game=CODE``); then see each team's page link and whether it is done, every order made for
  the next round, **Advance round**, the scoreboard, the prices and the event log.
- ``/team?game=CODE&team=US`` (or the join form): one team's levers with its budget left, its orders for the
  next round and **Done for this round**, the scoreboard, the prices and the event log in words.

Every page of a game reads the same :class:`ui.game.Game` from :data:`ui.game.REGISTRY`; nothing here runs a
model. A page follows its game with one worker thread that waits on the game's change signal
(:meth:`~ui.game.Game.wait_change`) and re-renders the page when something changed (an order, a team done, a
round played); it ends with the page's session. The price chart is drawn once per round and game, whatever
the number of pages.
"""

from __future__ import annotations

import html
import io
import math
import threading
from urllib.parse import parse_qs, quote

import solara
from matplotlib.figure import Figure

from model.scenario import list_scenarios
from ui.game import (
    DEFAULT_BUDGET_MUSD,
    DEFAULT_ROUNDS,
    DEFAULT_SCENARIO,
    LEVERS,
    REGISTRY,
    ROUND_WEEKS,
    TEAMS,
    Board,
    Game,
    GameError,
)
from ui.play import PageSession
from ui.words import date_words

WAIT_S = 1.0  # a page's follower thread looks this often whether its page closed
TEAM_COLOURS = {"CN": "#c0392b", "US": "#1f4e9a", "JP": "#8e44ad", "EU": "#1f8a70", "AU": "#d68910", "LA": "#5d6d7e"}


# ================================================================================================== helpers
def query(router) -> dict[str, str]:
    """The page address's query parameters (``?game=CODE&team=US``), first value of each."""
    return {k: v[0] for k, v in parse_qs(router.search or "").items() if v}


def use_game_version(game: Game | None) -> int:
    """Re-render this page whenever ``game`` changes (from any session): a worker thread waits on its change
    signal until the page's session closes or the page follows another game."""
    version = solara.use_reactive(game.version if game is not None else -1)
    session = solara.use_memo(PageSession, [])
    solara.use_memo(session.attach_to_kernel, [])
    solara.use_effect(lambda: session.close, [])
    follows = solara.use_memo(lambda: {"game": None}, [])
    follows["game"] = game

    def follow() -> None:
        if game is None:
            return
        seen = version.value
        while not session.closed.is_set() and follows["game"] is game:
            now = game.wait_change(seen, WAIT_S)
            if now != seen:
                seen = now
                version.value = now

    solara.lab.use_task(follow, dependencies=[game], prefer_threaded=True)
    return version.value


def money(x: float) -> str:
    return f"US$ {x:,.0f} M"


def number(x: float | None, unit: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if unit == "%":
        return f"{x:.2f} %"
    if unit == "US$ M":
        return money(x)
    return f"{x:,.1f} {unit}"


def round_label(game: Game) -> str:
    if game.finished:
        return f"Game over after {game.round} of {game.rounds} rounds"
    return f"Round {game.round + 1} of {game.rounds}"


def clock_label(game: Game) -> str:
    m = game.model
    return f"week {int(m.steps)} of {m.weeks}: {date_words(m.date)}"


def team_link(game: Game, sid: str) -> str:
    return f"/team?game={quote(game.code)}&team={sid}"


# ============================================================================================== scoreboard
def scoreboard_html(board: Board, game: Game) -> str:
    """The scoreboard as an HTML table (numbers with units, the rank first)."""
    head = ("<tr><th>Rank</th><th>Team</th><th>Objective</th><th>This game</th><th>If nobody acted</th>"
            "<th>Score</th><th>Shortage avoided</th><th>Committed of budget</th><th>Spent</th></tr>")
    body = []
    for r in board.rows:
        colour = TEAM_COLOURS.get(r.sid, "#333")
        body.append(
            f"<tr data-team='{r.sid}'><td><b>{r.rank}</b></td>"
            f"<td><span style='color:{colour};font-weight:bold'>{html.escape(r.team)}</span></td>"
            f"<td>{html.escape(r.objective)}</td><td>{number(r.value, r.unit)}</td>"
            f"<td>{number(r.twin, r.unit)}</td><td>{r.score:+.1f} %</td>"
            f"<td>{number(r.shortage_avoided_t, 't')}</td>"
            f"<td>{money(r.committed_musd)} of {money(r.budget_musd)}</td><td>{money(r.spent_musd)}</td></tr>")
    world = (f"<p class='game-world'>China's export revenue: <b>{money(board.export_revenue_musd)}</b> "
             f"(if nobody acted: {money(board.export_revenue_twin_musd)}). Ex-China share of refined output: "
             f"<b>{number(board.exchina_share_round, '%')}</b> in the last round, "
             f"{number(board.exchina_share, '%')} over the game (if nobody acted: "
             f"{number(board.exchina_share_round_twin, '%')} and {number(board.exchina_share_twin, '%')}).</p>")
    note = ("<p style='font-size:85%;color:#555'>Score: how much better the team's objective is than in the same "
            "world where nobody acts (same scenario and seed), in percent, from −100 to +100. Totals since the game "
            f"began: {board.round} round(s), to {date_words(board.date)}.</p>")
    style = ("<style>.game-board table{border-collapse:collapse}.game-board td,.game-board th{border-bottom:1px "
             "solid #ddd;padding:3px 8px;text-align:left}</style>")
    return (f"{style}<div class='game-board' data-round='{board.round}'><table>{head}{''.join(body)}</table>"
            f"{world}{note}</div>")


def OrderList(orders: list[str]) -> None:
    """Orders waiting for the next round, in words (a team's own on its page, everyone's on the master's)."""
    solara.HTML(tag="ul", unsafe_innerHTML="".join(f"<li>{html.escape(x)}</li>" for x in orders)
                or "<li>None yet.</li>", classes=["game-orders"])


@solara.component
def Scoreboard(game: Game, version: int):
    board = game.board()
    solara.HTML(tag="div", unsafe_innerHTML=scoreboard_html(board, game), classes=["game-scoreboard"])


# ================================================================================================== chart
_CHARTS: dict[tuple[int, int], bytes] = {}  # (id of the game, round) -> PNG
_CHART_LOCK = threading.Lock()


def price_chart_png(game: Game) -> bytes:
    """China-domestic and ex-China prices of each product over the game, with the no-action twin dashed and
    a line at each round; drawn once per game and round (every page shows the same picture)."""
    key = (id(game), game.round)
    with _CHART_LOCK:
        if key in _CHARTS:
            return _CHARTS[key]
    weeks, prices, twin = game.price_series()
    products = game.model.products
    regions = game.model.regions
    fig = Figure(figsize=(9, 2.6), dpi=80)
    axes = fig.subplots(1, len(products))
    for k, (ax, p) in enumerate(zip(axes, products, strict=True)):
        for r, colour in zip(regions, ("#c0392b", "#1f4e9a", "#1f8a70"), strict=False):
            label = "China" if r == game.model.region_of_state("CN") else "ex-China"
            ax.plot(weeks, [x[r][k] for x in prices], color=colour, label=label)
            ax.plot(weeks, [x[r][k] for x in twin], color=colour, linestyle="--", linewidth=0.8,
                    label=f"{label}, nobody acting")
        for n in range(1, game.round + 1):
            ax.axvline(n * game.round_weeks, color="#bbb", linewidth=0.6)
        ax.set_title(f"{p} (US$/kg)", fontsize=9)
        ax.set_xlabel("week", fontsize=8)
        ax.tick_params(labelsize=7)
    if weeks:
        axes[0].legend(fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = buf.getvalue()
    with _CHART_LOCK:
        _CHARTS[key] = png
        for old in [k for k in _CHARTS if k[0] == id(game) and k[1] < game.round]:
            del _CHARTS[old]
    return png


@solara.component
def GamePanels(game: Game, version: int):
    """What every page of a game shows: the scoreboard, the prices, the event log."""
    with solara.Card("Scoreboard"):
        Scoreboard(game, version)
    with solara.Card("Prices"):
        if game.round:
            solara.Image(price_chart_png(game), format="png")
        else:
            solara.Text("The prices appear after the first round.")
    with solara.Card("Event log"):
        items = []
        for t, team in game.told(30):
            tag = (f"<span style='background:#fde3c8;padding:0 4px;border-radius:3px'>{html.escape(team)}</span> "
                   if team else "")
            when = date_words(t.date) if t.date else ""
            why = f"<br><i style='color:#555'>{html.escape(t.why)}</i>" if t.why else ""
            items.append(f"<li title='{html.escape(t.raw)}'>{when} — {tag}{html.escape(t.text)}{why}</li>")
        solara.HTML(tag="ul", unsafe_innerHTML="".join(items) or "<li>Nothing yet.</li>", classes=["game-log"])


# =============================================================================================== team page
@solara.component
def LeverCard(game: Game, sid: str, key: str, message: solara.Reactive[str], version: int):
    lv = LEVERS[key]
    toggle = lv.undo_label is not None
    on = game.is_on(sid, key)
    rate = solara.use_reactive(0.39)
    budget = solara.use_reactive(150.0)
    days = solara.use_reactive(60.0)
    projects = game.model.financeable() if key == "finance" else []
    choice = solara.use_reactive(projects[0].id if projects else "")

    def params() -> dict:
        if key == "licences":
            return {"approval_rate": rate.value}
        if key == "stockpile":
            return {"budget_musd": budget.value, "target_days": days.value}
        if key == "finance":
            return {"project": choice.value}
        return {}

    def press():
        try:
            o = game.order(sid, key, on=(not on) if toggle else None, **(params() if not on else {}))
        except GameError as exc:
            message.value = f"✗ {exc}"
            return
        if o is None:
            message.value = "Already ordered: nothing changed."
        else:
            message.value = f"✓ {'Ends' if o.ends else 'Ordered'} for the next round: {lv.label if not o.ends else lv.undo_label}."

    with solara.Card(lv.label if not on else f"{lv.label} (on)", style={"margin-bottom": "8px"}):
        solara.Text(lv.help, style={"font-size": "90%", "color": "#444"})
        if key == "licences" and not on:
            solara.SliderFloat(f"Approval rate: {rate.value:.2f}", value=rate, min=0.0, max=1.0, step=0.05)
        if key == "stockpile" and not on:
            solara.InputFloat("Purchase budget (US$ M)", value=budget)
            solara.InputFloat("Target (days of use)", value=days)
        if key == "finance":
            if not projects:
                solara.Text("No planned project outside China is left to fund.")
                return
            labels = {f"{p.name} ({p.country})": p.id for p in projects}
            if choice.value not in labels.values():
                choice.set(projects[0].id)
            names = {v: k for k, v in labels.items()}
            solara.Select("Project", values=list(labels), value=names.get(choice.value, list(labels)[0]),
                          on_value=lambda name: choice.set(labels[name]), dense=True)
            try:
                cost = LEVERS["finance"].cost(game, game.team(sid), {"project": choice.value})
                solara.Text(f"Your lender commits {money(cost)}.", style={"font-size": "90%"})
            except GameError:
                pass
        label = (lv.undo_label if on else lv.label) or lv.label
        solara.Button(label=label, color="warning" if on else "primary", on_click=press, disabled=game.finished)


@solara.component
def TeamView(game: Game, sid: str):
    version = use_game_version(game)
    message = solara.use_reactive("")
    team = game.team(sid)
    colour = TEAM_COLOURS.get(sid, "#333")
    with solara.AppBar():
        solara.AppBarTitle(f"Team {team.name} — game {game.code}")
    solara.HTML(tag="h2", unsafe_innerHTML=(f"<span style='color:{colour}'>{html.escape(team.name)}</span>: "
                                            f"{html.escape(round_label(game))}"), classes=["game-round"])
    solara.Text(f"{game.scenario}, seed {game.seed}; {clock_label(game)}. Each round is {game.round_weeks} weeks. "
                f"Your goal: {team.spec.brief}")
    with solara.Columns([2, 3]):
        with solara.Column():
            left = game.budget_left(sid)
            solara.HTML(tag="p", unsafe_innerHTML=(
                f"Budget left: <b>{money(left)}</b> of {money(team.budget_musd)} (committed "
                f"{money(team.committed_musd())}, spent {money(team.spent_musd())})"), classes=["game-budget"])
            if message.value:
                (solara.Error if message.value.startswith("✗") else solara.Info)(message.value)
            for key in team.spec.levers:
                LeverCard(game, sid, key, message, version)
            with solara.Card("Your orders for the next round"):
                OrderList(game.pending_words(sid))
                if team.ready:
                    solara.Success("Done: waiting for the game master to advance.")
                solara.Button(label="Not done yet" if team.ready else "Done for this round",
                              on_click=lambda: game.set_ready(sid, not team.ready), disabled=game.finished)
        with solara.Column():
            GamePanels(game, version)


@solara.component
def TeamPage():
    """``/team``: join with the game's code and a team, or straight from ``?game=CODE&team=US``."""
    q = query(solara.use_router())
    code = solara.use_reactive(q.get("game", ""))
    sid = solara.use_reactive(q.get("team", ""))
    game, error = None, ""
    if code.value:
        try:
            game = REGISTRY.get(code.value)
        except GameError as exc:
            error = str(exc)
    if game is not None and sid.value:
        try:
            game.team(sid.value)
        except GameError as exc:
            error = str(exc)
        else:
            TeamView(game, sid.value)
            return
    with solara.AppBar():
        solara.AppBarTitle("Team game: join")
    with solara.Card("Join a game", style={"max-width": "520px"}):
        if error:
            solara.Error(error)
        solara.InputText("Game code (from your teacher)", value=code)
        if game is not None:
            solara.Text("Your team:")
            with solara.Row():
                for s, t in game.teams.items():
                    solara.Button(f"Join as {t.name}", color="primary", on_click=lambda s=s: sid.set(s))


# ============================================================================================ master page
@solara.component
def CreateGame(on_open):
    code = solara.use_reactive(REGISTRY.suggest_code())
    scenario = solara.use_reactive(DEFAULT_SCENARIO)
    seed = solara.use_reactive("0")
    round_weeks = solara.use_reactive(ROUND_WEEKS)
    rounds = solara.use_reactive(DEFAULT_ROUNDS)
    budget = solara.use_reactive(DEFAULT_BUDGET_MUSD)
    auto = solara.use_reactive(False)
    chosen = {sid: solara.use_reactive(True) for sid in TEAMS}  # noqa: RUF012 - one hook per team, fixed order
    error = solara.use_reactive("")
    open_code = solara.use_reactive("")

    def create():
        try:
            game = REGISTRY.create(code.value, scenario=scenario.value, seed=seed.value,
                                   teams=[s for s, r in chosen.items() if r.value], round_weeks=round_weeks.value,
                                   rounds=rounds.value, budget_musd=budget.value, auto_advance=auto.value)
        except GameError as exc:
            error.value = str(exc)
            return
        on_open(game.code)

    def open_():
        try:
            on_open(REGISTRY.get(open_code.value).code)
        except GameError as exc:
            error.value = str(exc)

    with solara.AppBar():
        solara.AppBarTitle("Team game: game master")
    if error.value:
        solara.Error(error.value)
    with solara.Columns([1, 1]):
        with solara.Card("Create a game"):
            solara.InputText("Game code (teams type it to join)", value=code)
            solara.Select("Scenario", values=list_scenarios(), value=scenario)
            solara.InputText("Seed, a whole number", value=seed)
            solara.InputInt("Weeks per round (13 = a quarter)", value=round_weeks)
            solara.InputInt("Rounds", value=rounds)
            solara.InputFloat("Budget per team (US$ M)", value=budget)
            solara.Text("Teams:")
            with solara.Row():
                for sid, r in chosen.items():
                    solara.Checkbox(label=sid, value=r)
            solara.Checkbox(label="Advance by itself when every team is done", value=auto)
            solara.Button("Create game", color="primary", on_click=create)
        with solara.Card("Open a game"):
            solara.InputText("Game code", value=open_code)
            solara.Button("Open", on_click=open_)


@solara.component
def MasterView(game: Game):
    version = use_game_version(game)
    error = solara.use_reactive("")

    def advance():
        try:
            game.advance()
            error.value = ""
        except GameError as exc:
            error.value = str(exc)

    with solara.AppBar():
        solara.AppBarTitle(f"Team game {game.code}: game master")
    solara.HTML(tag="h2", unsafe_innerHTML=html.escape(round_label(game)), classes=["game-round"])
    solara.Text(f"{game.scenario}, seed {game.seed}; {clock_label(game)}. Rounds of {game.round_weeks} weeks.")
    if game.model.error is not None:
        solara.Error(f"The model failed in week {game.model.error.week}: {game.model.error.message}")
    if error.value:
        solara.Error(error.value)
    with solara.Columns([2, 3]):
        with solara.Column():
            with solara.Card("Teams"):
                rows = []
                for sid, t in game.teams.items():
                    n = len(game.orders_of(sid))
                    link = team_link(game, sid)
                    rows.append(f"<tr data-team='{sid}'><td><b>{html.escape(t.name)}</b></td>"
                                f"<td><a href='{link}' target='_blank'>{html.escape(link)}</a></td>"
                                f"<td>{n} order{'s' if n != 1 else ''}</td>"
                                f"<td>{'✓ done' if t.ready else 'playing'}</td></tr>")
                solara.HTML(tag="table", unsafe_innerHTML="<style>.game-teams td{padding:2px 8px}</style>" + "".join(rows),
                            classes=["game-teams"])
            with solara.Card("Orders for the next round"):
                OrderList(game.pending_words())
            solara.Button("Advance round", color="primary", on_click=advance, disabled=game.finished)
        with solara.Column():
            GamePanels(game, version)


@solara.component
def GameMasterPage():
    """``/game``: create or open a game, then run it (``/game?game=CODE`` opens it directly)."""
    q = query(solara.use_router())
    code = solara.use_reactive(q.get("game", ""))
    game = None
    if code.value:
        try:
            game = REGISTRY.get(code.value)
        except GameError:
            game = None
    if game is None:
        CreateGame(code.set)
    else:
        MasterView(game)


@solara.component
def PlainLayout(children: list = []):  # noqa: B006 - Solara's layout signature
    """Solara's app layout without its tabs of routes: each page says where it is."""
    solara.AppLayout(children=children, navigation=False)


def routes_with(page) -> list[solara.Route]:
    """The server's pages: the classroom page at ``/``, the game master's at ``/game``, a team's at ``/team``."""
    return [solara.Route(path="/", component=page, layout=PlainLayout),
            solara.Route(path="game", component=GameMasterPage, label="Team game: game master"),
            solara.Route(path="team", component=TeamPage, label="Team game: team")]
