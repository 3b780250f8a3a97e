"""Projects (model/projects.py): appraisal on the feed a plant can secure, integrated projects, joint
financing whatever the scenario file's order, permits apart from construction, money disbursed and
stranded, stockpiles and reserves that run out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import DATA_DIR
from model.policies import Financing, ProjectFinance, RouteChange
from model.projects import FinanceLedger, Pipeline, _pro_rata, find_project
from model.scenario import Scenario

WORLD = (DATA_DIR / "world_2024.toml").read_text()

# Eneabba's own concentrate stockpile and a planned mine that would feed the planned Thai plant
STOCKPILE = '''
[[miners]]
id = "test_eneabba_stockpile"
name = "Eneabba stockpile (test)"
country = "AU"
node = "eneabba"
ore = "monazite_weld"
capacity_t_per_week = 50.0
unit_cost_usd_per_kg = 1.0
offtake = "au_iluka_eneabba"
captive_only = true
reserve_t = 3000.0
'''
THAI_MINE = '''
[[miners]]
id = "test_thai_mine"
name = "A planned mine for the Thai plant (test)"
country = "TH"
node = "udon_thani"
ore = "ionic_clay"
capacity_t_per_week = 100.0
unit_cost_usd_per_kg = 6.0
offtake = "th_udon_thani"
status = "planned"
capex_musd = 50.0
permit_weeks = 10
lead_time_weeks = 20
'''


def _world(tmp_path: Path, extra: str) -> str:
    p = tmp_path / "world.toml"
    p.write_text(WORLD + extra)
    return str(p)


def _model(tmp_path: Path | None = None, extra: str = "", weeks: int = 40, start: str = "2024-01-01",
           policies: list | None = None, seed: int = 1) -> RareEarthModel:
    world = _world(tmp_path, extra) if extra else "world_2024.toml"
    sc = Scenario(name="projects", world=world, start=dt.date.fromisoformat(start), weeks=weeks, seeds=[seed])
    return RareEarthModel(sc, seed=seed, weeks=weeks, policies=policies or [])


def _project(m: RareEarthModel, pid: str):
    return next(p for p in m.projects if p.id == pid)


# ============================================================================================ appraisal
def test_a_plant_is_not_appraised_on_ore_china_outbids_it_for():
    """With the Northern Mineral Corridor open the Thai plant reaches Kachin ore, but Chinese plants bid
    more for it than its netback allows: it can count on none of it (the old rule counted the richest ore it
    could reach, at full nameplate). A plant that would outbid everyone wins what went to the others plus
    what went unsold; one that bids nothing wins nothing."""
    corridor = RouteChange(start="2024-01-08", actor="LA", action="open", corridor="northern_corridor")
    m = _model(weeks=6, policies=[corridor])
    m.run(5)
    thai = _project(m, "th_udon_thani")
    i = thai.agent.i
    ore = m.ore
    t = ore.route_tables()
    kachin = [j for j, p in enumerate(ore.pools) if p.country == "MM"]
    assert all(t.has_path[j, i] for j in kachin)  # it can reach every Kachin pool
    # it counts at most the ore nobody bought last week (some Lao and Kachin ore now that Lynas's heavy
    # concentrate fills part of China's heavy quota), never the ore Chinese plants took
    reach = [j for j in range(len(ore.pools)) if t.has_path[j, i]]
    unsold = sum(max(float(ore.last_unsold[j]), 0.0) for j in reach)
    assert thai.appraise(m).market_t <= unsold + 1e-9
    rich = ore.winnable(i, np.full(len(ore.ores), 1e4))
    for j in kachin:
        assert rich[j] == pytest.approx(ore.last_flow[j].sum() + max(ore.last_unsold[j], 0.0))
    assert not ore.winnable(i, np.zeros(len(ore.ores))).any()


def test_captive_ore_counts_at_the_mines_cost_and_needs_no_bid(tmp_path):
    """Eneabba counts on its own stockpile (FACTS R3; 250 t/week) and on a second captive one added here."""
    m = _model(tmp_path, STOCKPILE, weeks=3)
    eneabba = _project(m, "au_iluka_eneabba")
    a = eneabba.appraise(m)
    assert a.captive_t == pytest.approx(250.0 + 50.0)  # the stockpiles' draw rates, below the nameplate
    assert a.market_t == 0.0  # no road out of Eneabba: no market ore


# ============================================================================== stockpiles and reserves
def test_a_captive_stockpile_waits_for_its_plant_and_runs_out(tmp_path):
    """Eneabba comes online in April 2027; its stockpile sells to nobody before, feeds it after, and stops
    when its reserve is worked out (3,000 t at <= 50 t a week)."""
    m = _model(tmp_path, STOCKPILE, weeks=52, start="2027-01-04")
    site = next(i for i, mn in enumerate(m.miners) if mn.spec.id == "test_eneabba_stockpile")
    plant = m.refiner_by_id["au_iluka_eneabba"]
    sold_before = 0.0
    while plant.status != "operating":
        m.step()
        sold_before += float(m.fleet.sold[site])
    assert sold_before == 0.0  # captive only: no other plant may buy it
    fed = 0.0
    for _ in range(20):
        m.step()
        fed += plant.processed
    assert fed > 0
    total = m.fleet.remaining[site] + m.fleet.stock[site] + m.ledger.delivered * 0  # what is left of it
    assert m.fleet.remaining[site] < 3000.0 and total >= 0
    m2 = _model(tmp_path, STOCKPILE.replace("reserve_t = 3000.0", "reserve_t = 200.0"), weeks=30,
                start="2027-01-04")
    m2.run(30)
    site2 = next(i for i, mn in enumerate(m2.miners) if mn.spec.id == "test_eneabba_stockpile")
    assert m2.fleet.remaining[site2] == 0.0 and not m2.fleet.active[site2]
    assert m2.miners[site2].project_status == "depleted"
    assert any("worked out" in e.text for e in m2.events)


# ==================================================================================== integrated projects
def test_a_planned_mine_of_a_planned_plant_is_built_with_it(tmp_path):
    m = _model(tmp_path, THAI_MINE, weeks=3)
    thai = _project(m, "th_udon_thani")
    assert [c.id for c in thai.companions] == ["test_thai_mine"]
    assert "test_thai_mine" not in [p.id for p in m.projects]  # not a project of its own
    assert thai.capex_musd == pytest.approx(thai.spec.capex_musd + 50.0)
    assert thai.appraise(m).captive_t == pytest.approx(100.0)  # the mine it would bring
    started, _ = thai.start(m, "test")
    assert started and thai.status == "permitting" and thai.companions[0].status == "permitting"


# ===================================================================================== joint financing
def _facilities(order: str):
    exim = Financing(start="2024-01-08", lender="US EXIM", budget_musd=300.0, eligible_hosts=["TH", "LA"],
                     selection_deadline_weeks=2, min_cover_ratio=0.0, concessional_rate=0.03)
    jbic = Financing(start="2024-01-08", lender="JBIC", budget_musd=300.0, eligible_hosts=["TH", "LA"],
                     selection_deadline_weeks=2, min_cover_ratio=0.0, concessional_rate=0.01, actor="JP")
    return [exim, jbic] if order == "ej" else [jbic, exim]


def test_facilities_due_the_same_week_select_the_same_whatever_their_order():
    out = {}
    for order in ("ej", "je"):
        fac = _facilities(order)
        m = _model(weeks=6, policies=fac)
        m.run(5)
        out[order] = ({f.lender: (sorted(f.selected), round(f.committed_musd, 9)) for f in fac},
                      {p.id: p.status for p in m.projects},
                      m.state_by_id["TH"].cost_of_capital.copy())
    assert out["ej"] == out["je"]
    selected, status, rates = out["ej"]
    # alone, EXIM (listed first) took both plants and left JBIC nothing; jointly both lend to both
    assert selected["US EXIM"][0] == selected["JBIC"][0] == ["la_vientiane", "th_udon_thani"]
    assert selected["US EXIM"][1] == pytest.approx(selected["JBIC"][1])
    assert status["th_udon_thani"] == "permitting"
    assert 0.01 < rates["th_udon_thani"] < 0.03  # the share-weighted concessional rate


def test_money_is_disbursed_over_permits_and_construction_and_stranded_if_cancelled():
    fac = _facilities("ej")
    m = _model(weeks=30, policies=fac)
    m.run(10)
    spent = m.finance.by_lender()["JBIC"][1]
    committed = m.finance.by_lender()["JBIC"][0]
    assert 0 < spent < committed
    thai = _project(m, "th_udon_thani")
    assert thai.cancel() and thai.status == "cancelled"
    m.run(3)
    stranded = m.finance.by_lender()["JBIC"][2]
    assert 0 < stranded < committed
    df = m.results()
    assert set(df.loc[df["variable"] == "finance_stranded", "region"]) == {"US EXIM", "JBIC"}


# ================================================================================= one named project
def test_a_lender_funds_a_named_project_through_its_permits_and_construction():
    """ProjectFinance: the Thai plant (with a short pipeline here) leaves "planned" the week it begins, its
    money is committed and shows in the outputs, and it comes online after its permits and construction,
    not before; no appraisal is asked (nothing cancels it)."""
    start = dt.date(2024, 1, 1)
    sc = Scenario(name="fund", start=start, weeks=20, seeds=[1],
                  overrides={"refiners.th_udon_thani.permit_weeks": 4, "refiners.th_udon_thani.lead_time_weeks": 6})
    fund = ProjectFinance(start=start + dt.timedelta(weeks=2), actor="JP", lender="JBIC", project="th_udon_thani",
                          share_of_capex=0.5, concessional_rate=0.02)
    m = RareEarthModel(sc, seed=1, policies=[fund])
    thai = _project(m, "th_udon_thani")
    m.run(1)
    assert thai.status == "planned" and not m.finance.commitments
    m.run(1)  # week 2: it begins
    assert thai.status == "permitting" and thai.agent.financed_by == "JBIC"
    assert thai.agent.build_weeks_left == 4 + 6 - 1  # this week's permitting already counted
    assert m.state_by_id["TH"].cost_of_capital["th_udon_thani"] == 0.02
    capex = thai.spec.capex_musd
    assert m.finance.by_lender()["JBIC"][0] == pytest.approx(0.5 * capex)
    assert m.latest("finance_committed", "JBIC") == pytest.approx(0.5 * capex)
    assert any(e.text == f"JBIC finances {thai.name} (US${0.5 * capex:,.0f}M; online in 10 weeks)" for e in m.events)
    seen = []
    while thai.status != "operating" and m.steps < 20:
        m.run(1)
        seen.append(thai.status)
    assert thai.status == "operating" and int(m.steps) == 2 + 10 - 1, seen  # online in 10 weeks from week 2
    # weeks 3-11: the 4 weeks of permits count from week 2, then 6 of construction
    assert seen == ["permitting"] * 2 + ["building"] * 6 + ["operating"], seen
    assert thai.agent.capacity_t_per_week == thai.spec.capacity_t_per_week
    assert thai.agent.utilisation == pytest.approx(0.5, abs=0.021)  # online at half, adjusted once that week
    m.run(3)
    assert m.finance.by_lender()["JBIC"][1] == pytest.approx(0.5 * capex)  # all disbursed once it runs


def test_a_named_project_is_funded_once_and_with_its_own_mines(tmp_path):
    world = _world(tmp_path, THAI_MINE)
    start = dt.date(2024, 1, 1)
    sc = Scenario(name="fund", world=world, start=start, weeks=6, seeds=[1])
    twice = [ProjectFinance(start=start, lender=lender, project="th_udon_thani") for lender in ("US EXIM", "JBIC")]
    m = RareEarthModel(sc, seed=1, policies=twice)
    m.run(1)
    thai = _project(m, "th_udon_thani")
    assert thai.status == "permitting" and thai.companions[0].status == "permitting"
    assert m.finance.by_lender() == {"US EXIM": (pytest.approx(0.8 * (thai.spec.capex_musd + 50.0)), ANY, 0.0)}
    assert any(e.text == f"JBIC: {thai.name} is not planned (permitting); nothing funded" for e in m.events)
    assert find_project(m, "test_thai_mine") is thai.companions[0]
    problems = ProjectFinance(start=start, project="my_lynas").problems(m.world)
    assert any("'my_lynas' is not a planned plant, mine or magnet plant" in p for p in problems), problems


def test_pro_rata_respects_caps_and_weights():
    assert _pro_rata(100.0, [1.0, 1.0], [80.0, 80.0]) == pytest.approx([50.0, 50.0])
    assert _pro_rata(100.0, [3.0, 1.0], [60.0, 80.0]) == pytest.approx([60.0, 40.0])
    assert sum(_pro_rata(100.0, [1.0, 1.0], [30.0, 30.0])) == pytest.approx(60.0)  # cannot reach the need


def test_pipeline_phases_and_ledger_in_isolation():
    p = Pipeline(["planned", "building", "operating"], [0, 3, 0])
    assert p.status == ["planned", "building", "operating"] and p.weeks_left(1) == 3
    assert p.start(0, 2, 1) and not p.start(0, 2, 1)
    online = [p.advance() for _ in range(3)]
    assert online == [[], [], [0, 1]]  # 2 weeks of permits and 1 of construction; 3 weeks of construction
    p2 = Pipeline(["planned"], [0])
    p2.start(0, 10, 10)
    p2.streamline(0, 0.5)
    assert p2.weeks_left(0) == 15 and p2.total_weeks[0] == 15
    ledger = FinanceLedger()
    assert ledger.by_lender() == {}
    assert np.isfinite(p2.total_weeks).all()


# ===================================================================================== announced projects
def test_announced_projects_go_ahead_whatever_their_numbers_and_only_those_named():
    from model.policies import BuildProjects

    go = BuildProjects(start="2024-01-01", ids=["th_udon_thani"])
    m = _model(weeks=20, policies=[go])
    thai, lao = _project(m, "th_udon_thani"), _project(m, "la_vientiane")
    sponsor = m.state_by_id[thai.sponsor]
    assert thai.appraise(m).margin_musd < sponsor.capital_charge_musd(thai)  # its sponsor would not start it
    m.run(1)
    assert thai.status == "permitting" and lao.status == "planned"
    assert thai.agent.build_weeks_left == thai.spec.permit_weeks + thai.spec.lead_time_weeks - 1
    m.run(12)  # three reviews by its sponsor: a project started on policy is not cancelled on its numbers
    assert thai.status == "permitting"
    assert any("starts NE Thailand refinery" in e.text for e in m.events)


def test_announced_projects_by_host_state_bring_their_mines():
    from model.policies import BuildProjects

    m = _model(weeks=3, policies=[BuildProjects(start="2024-01-01", states=["TH"])],
               tmp_path=None)
    m.run(1)
    assert {p.id: p.status for p in m.projects if p.country in ("TH", "LA")} == {
        "th_udon_thani": "permitting", "la_vientiane": "planned"}


def test_announced_projects_name_an_unknown_project_clearly():
    from model.params import ConfigError, load_world
    from model.policies import BuildProjects, check_timeline

    world = load_world("world_2024.toml")
    item = BuildProjects(start="2024-01-01", ids=["no_such_plant"], states=["XX"])
    with pytest.raises(ConfigError, match=r"ids: unknown 'no_such_plant'") as err:
        check_timeline([item], world, dt.date(2024, 1, 1), dt.date(2025, 1, 1), "s.toml")
    assert "states: unknown 'XX'" in str(err.value)


# ============================================================================================ exit
def _exit_model(weeks_to_exit: int, plant: str = "us_lynas_texas", weeks: int = 20) -> RareEarthModel:
    """The 2024 world with ``plant`` decided at once and built in a week (it has no feed it can win)."""
    from model.policies import BuildProjects

    sc = Scenario(name="exit", world="world_2024.toml", start=dt.date(2024, 1, 1), weeks=weeks, seeds=[1],
                  overrides={"behaviour.plant_exit_weeks": weeks_to_exit, f"refiners.{plant}.permit_weeks": 0,
                             f"refiners.{plant}.lead_time_weeks": 1})
    return RareEarthModel(sc, seed=1, weeks=weeks, policies=[BuildProjects(start="2024-01-01", ids=[plant])])


def test_a_plant_without_feed_closes_for_good_after_plant_exit_weeks():
    m = _exit_model(6)
    book = m.refiner_book
    i = book.index["us_lynas_texas"]  # no mine feeds it in the database and it wins no market ore
    m.run(5)
    assert book.status[i] == "operating" and book.capacity[i] > 0 and book.losing_weeks[i] == 5
    assert book.processed[i] == 0
    m.run(1)
    assert book.status[i] == "closed" and book.capacity[i] == 0
    assert any(e.text == "Lynas Texas, Seadrift closes: no feed or no cash margin for 6 weeks" for e in m.events)
    m.run(4)
    assert book.status[i] == "closed" and book.ore_bought[i] == 0 and book.want[i] == 0


def test_plants_that_pay_or_hold_a_chinese_quota_do_not_exit():
    m = _exit_model(3)
    book = m.refiner_book
    m.run(6)
    running = [book.ids[i] for i in range(book.n) if book.status[i] == "operating" and book.capacity[i] > 0]
    assert "cn_ganzhou" in running and "my_lynas" in running
    g = book.index["cn_ganzhou"]
    book.losing_weeks[g] = 10  # as if it had lost money for ten weeks: the state allocates its quota
    assert g not in book.close_losers() and book.status[g] == "operating"


# ========================================================================== a mine that feeds its offtaker
def _framework_world_model(weeks: int = 4) -> RareEarthModel:
    """The framework's world (its announced projects, among them Browns Range and the Eneabba refinery it would
    feed, FACTS E3, R3) without its policies."""
    from model.scenario import load_scenario

    sc = load_scenario("us_japan_framework").model_copy(update={"timeline": [], "weeks": weeks})
    return RareEarthModel(sc, seed=1, weeks=weeks)


def test_a_mine_feeding_a_live_offtaker_is_worth_the_chains_margin():
    """Operations charge offtake ore at the mine's cash cost (the plant and its mine work as one chain), so a
    planned mine whose offtaker is running or being built is appraised on that chain's margin: the offtaker's
    netback for its ore, less the route and the mine's cost. Browns Range's xenotime is worth ~US$30/kg REO to
    Eneabba, whose ore bid (half its netback) would have valued the mine at a loss it never makes."""
    from model.projects import ore_value

    m = _framework_world_model()
    m.run(2)
    browns = _project(m, "au_browns_range")
    eneabba = m.refiner_book.index["au_iluka_eneabba"]
    assert m.refiner_book.status[eneabba] == "building"
    ore, f = m.ore, m.fleet
    site = browns.agent.i  # its mine site
    j = int(ore.pool_of[site])
    o = ore.pool_ore[j]
    netback = float(ore_value(m, eneabba)[o] - m.refiner_book.unit_cost()[eneabba])
    route, cost, q = float(ore.last_route_cost[j, eneabba]), float(f.cost[site]), float(f.capacity[site])
    a = browns.appraise(m)
    assert (a.captive_t, a.market_t) == (pytest.approx(q), 0.0)  # Eneabba has room for it beside its stockpile
    assert a.margin_musd == pytest.approx(q * (netback - route - cost) * 52 * 1000 / 1e6)
    bid = m.behaviour.ore_bid_share * netback - route
    assert bid < cost < netback - route  # at the bid a loss; as a chain a margin
    assert a.margin_musd > 0

    # the offtaker's room left by its own stockpile bounds what the chain counts on; the rest has no buyer
    # (no other plant reaches Browns Range)
    stockpile = sum(float(f.capacity[ore.pools[k].sites].sum()) for k in ore.captive_pools(eneabba) if k != j)
    m.refiner_book.nameplate[eneabba] = stockpile + 20.0
    a = browns.appraise(m)
    assert a.captive_t == pytest.approx(20.0) and a.market_t == 0.0
    assert a.margin_musd == pytest.approx(20.0 * (netback - route - cost) * 52 * 1000 / 1e6)

    # an offtaker that is neither running nor coming takes nothing: the mine has no buyer at all
    m.refiner_book.status[eneabba] = "planned"
    assert browns.appraise(m) == type(a)(0.0, 0.0, 0.0)


SECOND_XENOTIME_MINE = '''
[[miners]]
id = "test_browns_second"
name = "A second xenotime mine for Eneabba (test)"
owner = "test"
source = "assumption (test)"
country = "AU"
node = "browns_range"
ore = "xenotime"
status = "planned"
capacity_t_per_week = 150.0
unit_cost_usd_per_kg = 12.0
offtake = "au_iluka_eneabba"
capex_musd = 600.0
permit_weeks = 0
lead_time_weeks = 104
needs_policy_support = true
sponsor_state = "AU"
'''


def test_two_mines_cannot_both_count_on_one_offtakers_room(tmp_path):
    """Eneabba has 190 t a week of room beside its stockpile. Browns Range (58 t) and a second mine (150 t) each
    count on all of it while neither is decided; once one starts, the other counts only on what is left, in
    an appraisal and in a lenders' joint selection (which appraises again after each start). A levy on the
    mine's ore is a cost of the chain as operations charge it."""
    world = tmp_path / "world.toml"
    world.write_text((DATA_DIR / "world_2024_magnets.toml").read_text() + SECOND_XENOTIME_MINE)
    from model.scenario import load_scenario

    sc = load_scenario("us_japan_framework").model_copy(update={"timeline": [], "weeks": 4, "world": str(world)})
    m = RareEarthModel(sc, seed=1, weeks=4)
    m.run(2)
    browns, second = _project(m, "au_browns_range"), _project(m, "test_browns_second")
    eneabba = m.refiner_book.index["au_iluka_eneabba"]
    assert int(m.ore.pool_of[browns.agent.i]) == int(m.ore.pool_of[second.agent.i])  # one pool
    per_t = second.appraise(m).margin_musd / 150.0
    assert second.appraise(m).captive_t == pytest.approx(150.0)
    room = float(m.refiner_book.nameplate[eneabba]) - 250.0  # the stockpile's draw
    assert browns.start(m, "test")[0]
    assert second.appraise(m).captive_t == pytest.approx(room - 58.0)
    assert second.appraise(m).margin_musd == pytest.approx(per_t * (room - 58.0))
    base = browns.appraise(m).margin_musd
    levy = np.zeros(m.fleet.n)
    levy[browns.agent.i] = 2.0
    m.site_levies = lambda: levy  # a group taking US$2/kg at the mine
    assert browns.appraise(m).margin_musd == pytest.approx(base - 58.0 * 2.0 * 52 * 1000 / 1e6)

    # a joint selection: the second mine (150 t for US$600M) ranks first; Browns Range, appraised again on the
    # room it leaves (40 t), no longer clears a bar its cover on all the room (58 t) would clear
    m2 = RareEarthModel(sc, seed=1, weeks=4)
    m2.run(2)
    b2 = _project(m2, "au_browns_range")
    charge = m2.state_by_id["AU"].capital_charge_musd(b2, rate=0.03)
    bar = 0.9 * b2.appraise(m2).margin_musd / charge
    lender = Financing(start="2024-01-01", actor="US", budget_musd=5000.0, min_cover_ratio=bar,
                       eligible_hosts=["AU"], instruments=["loan"])
    from model.projects import select_jointly

    select_jointly(m2, [lender])
    assert lender.selected == ["test_browns_second"]
    assert b2.appraise(m2).captive_t == pytest.approx(room - 150.0)


def test_a_mine_with_a_reserve_recovers_its_capex_over_the_years_the_reserve_lasts():
    """Browns Range's 30,500 t at 58 t a week last ~10.1 years: its capex is recovered over those, not over the
    15-year project life a plant or an open-ended mine gets."""
    m = _framework_world_model()
    browns, nolans = _project(m, "au_browns_range"), _project(m, "au_arafura_nolans")
    au = m.state_by_id["AU"]
    years = 30500.0 / (58.0 * 52.0)
    assert years < m.behaviour.project_life_years
    assert au.capital_charge_musd(browns, rate=0.03) == pytest.approx(300.0 * (0.03 + 1.0 / years))
    assert au.capital_charge_musd(nolans, rate=0.03) == pytest.approx(
        nolans.capex_musd * (0.03 + 1.0 / m.behaviour.project_life_years))
