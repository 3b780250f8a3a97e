"""The team game without a browser (ui/game.py): levers by state, the budget, rounds, orders reaching the model,
the scoreboard against the model's own outputs, six teams on one model (no chromium needed; not marked
``browser``)."""

from __future__ import annotations

import re
import threading

import numpy as np
import pandas as pd
import pytest

from model.policies import OreBan
from ui.game import LEVERS, OBJECTIVES, TEAMS, Game, GameError, Registry, score

SCENARIO = "baseline"


def outputs(m, variable: str) -> pd.DataFrame:
    df = m.results()
    return df[(df["variable"] == variable) & (df["step"] > 0)]


def total(m, variable: str, region: str | None = None, product: str | None = None) -> float:
    df = outputs(m, variable)
    if region is not None:
        df = df[df["region"] == region]
    if product is not None:
        df = df[df["product"] == product]
    return float(df["value"].sum())


def events_from(m, week: int) -> list[str]:
    start = m.start_date + pd.Timedelta(weeks=week).to_pytimedelta()
    return [e.text for e in m.events if e.date >= start]


# ============================================================================================ levers by state
def test_chinas_licence_lever_covers_the_magnets_that_contain_dy_or_tb():
    """As the class page's button (FACTS D1): on the magnet world the team's licences hold back NdFeB too."""
    g = Game("t", "magnets_baseline", 0)
    (item,) = LEVERS["licences"].make(g, g.teams["CN"], {})
    m = g.model
    assert {p for p, on in zip(m.products, item._mask(m).tolist(), strict=True) if on} == {"Dy", "Tb", "NdFeB"}


@pytest.mark.parametrize("sid", list(TEAMS))
def test_a_team_pulls_only_its_own_states_levers(sid):
    g = Game("t", SCENARIO, 0)
    name = g.teams[sid].name
    for key in LEVERS:
        if key in TEAMS[sid].levers:
            continue
        with pytest.raises(GameError, match=f"{name} has no lever '{key}'"):
            g.order(sid, key)
    assert g.orders == []
    for key in sorted(TEAMS[sid].levers, key=lambda k: k != "release"):  # release before any stockpile
        params = {"project": g.model.financeable()[0].id} if key == "finance" else {}
        if key == "release" and not g.model.state_by_id[sid].stockpile.any() and "stockpile" not in g.teams[sid].on:
            with pytest.raises(GameError, match="no stock to release"):
                g.order(sid, key)
            continue
        o = g.order(sid, key, **params)
        assert o is not None and o.items, key
        for item in o.items:  # every item acts for this state, and only on it
            assert item.actor == sid, (key, item)
            for attr in ("states", "compliers"):
                if hasattr(item, attr):
                    assert set(getattr(item, attr)) <= {sid}, (key, item)


def test_an_unknown_team_or_lever_is_refused_with_a_message():
    g = Game("t", SCENARIO, 0, teams=["CN", "US"])
    with pytest.raises(GameError, match="No team plays 'JP'"):
        g.order("JP", "stockpile")
    with pytest.raises(GameError, match="no lever 'nuke'"):
        g.order("US", "nuke")


# ================================================================================================== budget
def test_the_budget_is_enforced_with_a_clear_message():
    g = Game("t", SCENARIO, 0, budget_musd=300)
    assert g.order("US", "stockpile", budget_musd=150) is not None
    assert g.budget_left("US") == pytest.approx(150)
    cost = LEVERS["finance"].cost(g, g.teams["US"], {"project": "us_lynas_texas"})
    assert cost > 150
    with pytest.raises(GameError, match=rf"Not enough budget: this costs US\$ {cost:,.0f} M and United States has "
                                        r"US\$ 150 M left \(budget US\$ 300 M, committed US\$ 150 M\)"):
        g.order("US", "finance", project="us_lynas_texas")
    assert g.budget_left("US") == pytest.approx(150)
    assert len(g.orders) == 1
    with pytest.raises(GameError, match="more than US\\$ 0 M"):
        g.order("JP", "stockpile", budget_musd=-5)


def test_finance_costs_what_the_model_commits_and_a_project_funded_first_costs_nothing():
    g = Game("t", SCENARIO, 0)
    project = "us_mp_hree"
    cost = LEVERS["finance"].cost(g, g.teams["JP"], {"project": project})
    g.order("JP", "finance", project=project)
    g.order("EU", "finance", project=project)  # too late: Japan's order is handed over first
    assert g.budget_left("EU") == pytest.approx(500 - cost)
    g.advance()
    committed = g.model.finance.by_lender()
    assert committed["JBIC"][0] == pytest.approx(cost)
    assert "European Investment Bank" not in committed
    assert g.teams["JP"].committed_musd() == pytest.approx(cost)
    assert g.budget_left("EU") == pytest.approx(500)  # nothing committed: the money is back
    assert total(g.model, "finance_committed", "JBIC") > 0 and total(g.twin, "finance_committed") == 0


def test_a_stopped_stockpile_gives_back_what_it_did_not_spend():
    g = Game("t", SCENARIO, 0)
    spent0 = g.model.state_by_id["US"].stock_spent_usd
    g.order("US", "stockpile", budget_musd=200)
    g.advance()
    spent = (g.model.state_by_id["US"].stock_spent_usd - spent0) / 1e6
    assert 0 < spent < 200
    assert g.teams["US"].spent_musd() == pytest.approx(spent)
    assert g.teams["US"].committed_musd() == pytest.approx(200)
    assert g.order("US", "stockpile", on=False) is not None
    g.advance()
    spent = (g.model.state_by_id["US"].stock_spent_usd - spent0) / 1e6
    assert g.teams["US"].committed_musd() == pytest.approx(spent)
    assert g.budget_left("US") == pytest.approx(500 - spent)


# ================================================================================================== rounds
@pytest.mark.parametrize("weeks", [13, 5])
def test_advance_moves_exactly_one_round(weeks):
    g = Game("t", SCENARIO, 3, round_weeks=weeks)
    assert g.advance() == weeks
    assert int(g.model.steps) == int(g.twin.steps) == weeks
    g.advance()
    assert int(g.model.steps) == 2 * weeks and g.round == 2


def test_the_last_round_stops_at_the_horizon_and_the_game_ends():
    g = Game("t", "china_controls_2025", 0, round_weeks=13, rounds=99)
    assert g.rounds == 8  # 104 weeks
    for _ in range(8):
        g.advance()
    assert int(g.model.steps) == 104 and g.finished
    with pytest.raises(GameError, match="over"):
        g.advance()
    with pytest.raises(GameError, match="over"):
        g.order("US", "sanctions")


def test_the_twin_is_the_same_run_when_nobody_acts():
    g = Game("t", "myanmar_2025", 2)
    g.advance()
    g.advance()
    a, b = g.model.results(), g.twin.results()
    assert np.allclose(a["value"].to_numpy(), b["value"].to_numpy())


# ===================================================================================== orders reach the model
def _round_with(sid: str, lever: str, scenario: str = SCENARIO, **params) -> Game:
    g = Game("t", scenario, 0)
    o = g.order(sid, lever, **params)
    assert o is not None
    g.advance()
    texts = events_from(g.model, 1)
    for item in o.items:  # it began in the round's first week, through the model's own log
        assert item.describe() in texts, (item.describe(), texts)
        in_force = any(x is item for x in g.model.active)
        assert in_force or not getattr(item, "persistent", True) or (item.end is not None and item.end <= g.model.date)
    return g


def test_china_closing_the_border_cuts_myanmar_ore_to_china():
    g = _round_with("CN", "border")
    assert total(g.model, "myanmar_ore_to_china") < 0.2 * total(g.twin, "myanmar_ore_to_china")


def test_chinas_licences_cut_dy_exports():
    g = _round_with("CN", "licences", approval_rate=0.05)
    assert total(g.model, "exports", product="Dy") < 0.8 * total(g.twin, "exports", product="Dy")


def test_a_stockpile_buys_for_its_state():
    g = _round_with("US", "stockpile", budget_musd=150)
    assert total(g.model, "stockpile_bought", "US") > 0
    assert total(g.twin, "stockpile_bought", "US") == 0


def test_japan_releases_its_reserve():
    g = _round_with("JP", "release")
    assert total(g.model, "stockpile_released", "JP") > total(g.twin, "stockpile_released", "JP") + 1


def test_sanctions_bar_the_teams_refiners_only():
    g = _round_with("EU", "sanctions")
    bans = [b for b in g.model.rules.ore_bans if isinstance(b, OreBan)]
    assert bans and all(b.importers == frozenset({"EU"}) for b in bans)
    assert not g.twin.rules.ore_bans


def test_laos_opens_the_corridor_and_ore_flows_through_it_once_china_closes_the_border():
    g = Game("t", SCENARIO, 0)
    g.order("LA", "corridor")
    g.order("CN", "border")
    g.advance()
    assert total(g.model, "myanmar_ore_flow", "northern_corridor") > 0
    assert total(g.twin, "myanmar_ore_flow", "northern_corridor") == 0
    assert g.board().rows[0].sid == "LA" and g.board().rows[0].score == 100


@pytest.mark.parametrize(("sid", "lever"), [("AU", "permits"), ("LA", "boten")])
def test_other_levers_begin_in_the_model(sid, lever):
    _round_with(sid, lever)


def test_repeated_orders_are_ignored_and_a_toggle_ends_at_the_next_round():
    g = Game("t", SCENARIO, 0)
    assert g.order("CN", "border") is not None
    assert g.order("CN", "border", on=True) is None  # switched on twice (a double click)
    assert g.order("JP", "release") is not None
    assert g.order("JP", "release") is None  # the same one-shot twice in a round
    assert len(g.orders) == 2
    g.advance()
    item = g.teams["CN"].on["border"][0]
    assert sum(t == item.describe() for t in events_from(g.model, 0)) == 1
    assert g.order("CN", "border") is not None  # off
    g.advance()
    assert f"ends: {item.describe()}" in events_from(g.model, 13)
    assert not any(x is item for x in g.model.active)


def test_a_toggle_switched_off_before_the_round_is_withdrawn():
    g = Game("t", SCENARIO, 0)
    g.order("LA", "corridor")
    assert g.order("LA", "corridor") is None and g.orders == []
    g.advance()
    assert not any("northern_corridor" in t for t in events_from(g.model, 0))


# ============================================================================================== scoreboard
def test_the_scoreboard_is_the_models_outputs():
    g = Game("t", SCENARIO, 1)
    g.order("CN", "licences", approval_rate=0.05)
    g.order("US", "stockpile", budget_musd=100)
    g.order("AU", "finance", project="th_udon_thani")
    g.advance()
    g.advance()
    board = g.board()
    rows = {r.sid: r for r in board.rows}
    for m, cn_revenue, share in ((g.model, board.export_revenue_musd, board.exchina_share),
                                 (g.twin, board.export_revenue_twin_musd, board.exchina_share_twin)):
        ex = outputs(m, "exports")
        price = outputs(m, "price")
        price = price[price["region"] == "CN"][["step", "product", "value"]].rename(columns={"value": "price"})
        rev = ex.merge(price, on=["step", "product"])
        assert cn_revenue == pytest.approx((rev["value"] * rev["price"]).sum() * 1000 / 1e6, rel=1e-9)
        crs = outputs(m, "china_refined_share")
        crs = crs[crs["product"] == ""]["value"]
        assert share == pytest.approx(100 * (1 - crs).mean(), rel=1e-9)
    assert rows["CN"].value == pytest.approx(board.export_revenue_musd)
    assert rows["AU"].value == pytest.approx(board.exchina_share)
    for sid in ("US", "JP", "EU"):
        game, twin = total(g.model, "shortage", sid), total(g.twin, "shortage", sid)
        assert rows[sid].value == pytest.approx(game) and rows[sid].twin == pytest.approx(twin)
        assert rows[sid].shortage_avoided_t == pytest.approx(twin - game)
        assert rows[sid].score == pytest.approx(score(game, twin, False))
    assert total(g.model, "shortage", "US") > total(g.twin, "shortage", "US")  # China's licences bite
    assert rows["US"].score < 0
    assert rows["US"].committed_musd == pytest.approx(100)
    assert rows["AU"].committed_musd == pytest.approx(g.model.finance.by_lender()["Export Finance Australia"][0])
    ranks = [r.rank for r in board.rows]
    assert ranks == sorted(ranks) and ranks[0] == 1
    scores = [r.score for r in board.rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r.objective == OBJECTIVES[TEAMS[r.sid].objective].label for r in board.rows)


def test_score_is_percent_better_than_the_twin_capped():
    assert score(110, 100, True) == pytest.approx(10)
    assert score(90, 100, False) == pytest.approx(10)
    assert score(5, 0, True) == 100 and score(5, 0, False) == -100 and score(0, 0, False) == 0
    assert score(1000, 1, True) == 100


# ========================================================================================== six teams, threads
def test_six_teams_share_one_model_and_order_from_many_threads():
    g = Game("t", SCENARIO, 0, auto_advance=True)
    assert len(g.teams) >= 6
    orders = {"CN": ("border", {}), "US": ("sanctions", {}), "JP": ("release", {}), "EU": ("permits", {}),
              "AU": ("permits", {}), "LA": ("corridor", {})}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(orders))

    def play(sid):
        try:
            barrier.wait()
            for _ in range(3):  # impatient clicking: each order lands once
                g.order(sid, orders[sid][0], on=True if orders[sid][0] != "release" else None, **orders[sid][1])
            g.set_ready(sid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(sid,)) for sid in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert g.round == 1 and int(g.model.steps) == 13  # the last team done advanced it, once
    assert all(not t.ready for t in g.teams.values())
    began = events_from(g.model, 1)
    for sid, (lever, _) in orders.items():
        item = g.teams[sid].on[lever][0] if lever in g.teams[sid].on else None
        if item is not None:
            assert began.count(item.describe()) == 1


def test_the_registry_keeps_games_by_code():
    reg = Registry(limit=2)
    g = reg.create("class-a", scenario=SCENARIO, seed=0, teams=["CN", "US"])
    assert reg.get("class-a") is g and re.fullmatch(r"game-[A-Z2-9]{4}", reg.suggest_code())
    with pytest.raises(GameError, match="exists already"):
        reg.create("class-a")
    with pytest.raises(GameError, match="letters, digits or dashes"):
        reg.create("no spaces please")
    with pytest.raises(GameError, match="No game 'nope'"):
        reg.get("nope")
    with pytest.raises(GameError, match="not a shipped scenario"):
        reg.create("b", scenario="../etc/passwd")
    reg.create("b", scenario=SCENARIO)
    with pytest.raises(GameError, match="holds 2 games"):
        reg.create("c")
