"""Projects on the classroom page (issue 12 item 6), without a browser: the phase each plant and mine is shown
in (the map's fill colours and legend, the project table), a plant followed week by week from planned to
running without feed, and funding a planned project from the page (Solara's test renderer, not marked
``browser``; tests/browser/test_page.py clicks it in chromium)."""

from __future__ import annotations

import datetime as dt
import re

import ipyvuetify as v
import numpy as np
import pytest
from matplotlib.colors import to_hex

from model.model import RareEarthModel
from model.policies import ProjectFinance
from model.scenario import Scenario
from tests.browser.pages import html_of, rendered_page, run
from ui import network_map, projects
from ui.panels import network_view, project_table, run_changes
from ui.projects import NO_FEED_WEEKS, PHASES, Watch, phase
from ui.session import ClassroomModel
from ui.words import SOURCE_CLASS

THAI = "th_udon_thani"


# =========================================================================================== phases
@pytest.mark.parametrize(("status", "capacity", "idle", "ramping", "shown"), [
    ("planned", 0.0, 0, False, "planned"),
    ("permitting", 0.0, 0, False, "permitting"),
    ("building", 0.0, 0, False, "building"),
    ("operating", 120.0, 0, True, "ramping"),
    ("operating", 120.0, 0, False, "operating"),
    ("operating", 120.0, NO_FEED_WEEKS - 1, False, "operating"),  # a week or two without ore is not yet idle
    ("operating", 120.0, NO_FEED_WEEKS, True, "no_feed"),  # no feed wins over ramping up: it has nothing to ramp
    ("operating", 0.0, 9, False, "operating"),  # a mine (no capacity to idle): operating
    ("cancelled", 0.0, 0, False, "closed"),
    ("depleted", 0.0, 0, False, "closed"),
])
def test_a_status_maps_to_one_phase_with_its_marker(status, capacity, idle, ramping, shown):
    assert phase(status, capacity, idle, ramping) == shown
    assert shown in PHASES


def test_the_phases_are_told_apart_in_the_legend():
    assert list(PHASES) == ["planned", "permitting", "building", "ramping", "operating", "no_feed", "closed"]
    colours = [to_hex(p.colour) for p in PHASES.values()]
    assert len(set(colours)) == len(colours), "two phases share a colour"
    assert to_hex(network_map.NODE_STYLE["refinery"][2]) not in colours, "an unmarked refinery looks like a phase"
    assert all(p.label and len(p.label) <= 24 for p in PHASES.values())
    with pytest.raises(ValueError, match="unknown status"):
        phase("mothballed")


# ============================================================== a plant followed from planned to idle
def _short_pipeline_model(weeks: int = 40) -> RareEarthModel:
    """The oxide world (named: the map marks its every facility) with the Thai plant's permits and construction
    shortened to 4 + 6 weeks, funded by JBIC in week 2, and Laos's mines not yet open (with them the plant wins the Lao ore that China's heavy
    separators leave since Lynas's heavy concentrate fills part of their quota): it has no ore it can win."""
    start = dt.date(2024, 1, 1)
    sc = Scenario(name="fund", world="world_2024.toml", start=start, weeks=weeks, seeds=[1],
                  overrides={f"refiners.{THAI}.permit_weeks": 4, f"refiners.{THAI}.lead_time_weeks": 6,
                             "miners.la_ionic.active_at_start": 0, "miners.la_ionic.entry_exit": False})
    fund = ProjectFinance(start=start + dt.timedelta(weeks=2), actor="JP", lender="JBIC", project=THAI)
    return RareEarthModel(sc, seed=1, policies=[fund])


def test_a_funded_plant_goes_from_planned_to_running_without_feed():
    """The Thai plant waits for its permits, is built, comes online ramping up, and finds no ore it can win
    (README, Demo 3): the page shows each phase in turn, and the map fills its marker with that phase."""
    m = _short_pipeline_model()
    m.watch = watch = Watch(m)
    seen = []
    for _ in range(11 + NO_FEED_WEEKS + 2):
        m.step()
        watch.update(m)
        (fac,) = [f for f in projects.facilities(m, watch) if f.id == THAI]
        seen.append(fac.phase)
        if fac.phase in ("permitting", "building"):
            assert fac.weeks_left == 11 - int(m.steps) and fac.financed_by == "JBIC"
    phases = [p for k, p in enumerate(seen) if k == 0 or seen[k - 1] != p]
    assert phases == ["planned", "permitting", "building", "ramping", "no_feed"], seen
    assert seen.index("ramping") == 10, "online in week 11: 4 weeks of permits and 6 of construction from week 2"
    assert fac.online_week == 11 and fac.capacity_t == fac.nameplate_t and fac.output_t == 0.0
    view = network_view(m)
    k = [f[0] for f in view.facilities].index(THAI)
    assert view.facilities[k] == (THAI, "udon_thani", "plant") and view.phases[k] == "no_feed"
    chart = network_map.MapChart(view).update(view)
    fills = {}
    for sc, idx in chart.marks:
        for j, colour in zip(idx, sc.get_facecolor(), strict=True):
            fills.setdefault(j, to_hex(colour))
    assert fills[k] == to_hex(PHASES["no_feed"].colour)
    assert len(fills) == len(view.facilities), "a facility the map does not mark"
    assert chart.png().startswith(b"\x89PNG")


# ======================================================================================= the page
def test_funding_a_planned_plant_from_the_page_goes_through_the_model():
    m = run(ClassroomModel(), 2)
    assert THAI in [p.id for p in m.financeable()]
    assert all(p.status == "planned" and p.country != "CN" for p in m.financeable())
    (item,) = m.fund(THAI, "JBIC")
    assert m.fund(THAI, "JBIC") == [] and m.fund(THAI, "US EXIM") == [], "a second press in the week is ignored"
    assert THAI not in [p.id for p in m.financeable()]
    assert m.pending() == ["Japan has JBIC fund NE Thailand refinery (Udon Thani) at once, whatever its prospects: "
                           "a loan of US$240 million (80% of its cost) at 3% interest."]
    assert "JBIC funds NE Thailand (next step)" in run_changes(m)
    n = len(m.events)
    run(m, 1)
    thai = next(p for p in m.projects if p.id == THAI)
    assert thai.status == "permitting" and thai.agent.financed_by == "JBIC"
    assert [e.text for e in m.events[n:]] == [
        "JBIC finances NE Thailand refinery (Udon Thani) (US$240M; online in 208 weeks)", item.describe()]
    assert m.latest("finance_committed", "JBIC") == pytest.approx(240.0)
    (told,) = m.class_changes()
    assert told.source == SOURCE_CLASS and told.label == "JBIC funds NE Thailand" and told.week == 3
    assert "JBIC funds NE Thailand (week 3)" in run_changes(m)
    assert m.fund(THAI, "JBIC") == [], "no longer planned"
    table = project_table(m)
    assert re.search(rf"<tr class='ree-project' data-id='{THAI}' data-phase='permitting'>.*?in 207 weeks \(Jan "
                     rf"2028\).*?JBIC", table), table


def test_the_project_table_lists_what_is_not_simply_operating_since_the_start():
    m = ClassroomModel()
    table = project_table(m)
    ids = re.findall(r"data-id='(\w+)'", table)
    assert ids and set(ids) == {p.id for p in m.projects if p.status != "operating"}
    assert "cn_" not in table and "Lynas Malaysia<" not in table
    assert f"data-id='{THAI}' data-phase='planned'" in table and "208 weeks after it is funded" in table


def test_the_fund_button_acts_once_on_a_double_click_and_the_list_follows_the_run():
    rc = rendered_page()
    select = rc.find(v.Select, class_="ree-fund-project").widget
    choice = next(c for c in select.items if c.startswith("NE Thailand refinery (Udon Thani), Thailand: plant"))
    select.v_model = choice
    rc.find(v.BtnToggle, class_="ree-fund-lender").widget.v_model = 1  # JBIC
    button = rc.find(v.Btn, class_="ree-iv-fund")
    assert button.widget.children == ["Fund it (JBIC)"]
    button.widget.click()
    rc.find(v.Btn, class_="ree-iv-fund").widget.click()  # the second click of a double click
    assert html_of(rc, "ree-event-log").count("Next step: Japan has JBIC fund NE Thailand refinery") == 1
    assert choice not in rc.find(v.Select, class_="ree-fund-project").widget.items
    rc.find(v.Btn, children=["Step"]).widget.click()
    log = html_of(rc, "ree-event-log")
    assert log.count("Japan has JBIC fund NE Thailand refinery") == 1, log
    assert log.count("JBIC lends US$240 million to build NE Thailand refinery") == 1, log
    assert "JBIC funds NE Thailand (week 1)" in html_of(rc, "ree-run-changes")
    assert f"data-id='{THAI}' data-phase='permitting'" in html_of(rc, "ree-projects")
    assert choice not in rc.find(v.Select, class_="ree-fund-project").widget.items


def test_followed_mines_are_the_projects_and_the_reserves():
    m = ClassroomModel("us_japan_framework", 0)
    sites = projects.mine_sites(m)
    ids = {m.fleet.specs[m.fleet.spec[s]].id for s in sites}
    assert {"au_nolans", "au_browns_range", "au_eneabba_stockpile"} <= ids
    assert not np.isin(sites, np.flatnonzero(m.fleet.entry_exit)).any(), "no artisanal site is followed"


# ================================================================================= magnet plants
def test_magnet_plants_are_marked_on_the_map_and_listed_with_their_phase(monkeypatch):
    """In a world with a magnet stage every magnet plant is a facility of its own kind, drawn as a hexagon at
    its node: MP's Fort Worth plant is building at the start of ``combined_2025``, comes online in Jan 2025
    (FACTS R4) and ramps up from half its capacity; the 10X plant is still building; the project table lists
    both with the magnets they make, and the legend names magnet plants only where there are some."""
    m = ClassroomModel("combined_2025", 0)
    start = {f.id: f for f in projects.facilities(m, m.watch)}
    makers = m.maker_book
    assert {i for i, f in start.items() if f.kind == "magnet"} == set(makers.ids)
    assert start["us_mp_fort_worth"].phase == "building" and start["us_mp_fort_worth"].node == "detroit"
    seen = []
    for _ in range(60):
        m.step()
        seen.append(next(f for f in projects.facilities(m, m.watch) if f.id == "us_mp_fort_worth"))
    (online,) = [k for k, f in enumerate(seen) if f.phase != "building" and seen[k - 1].phase == "building"]
    week_of = m.start_date + dt.timedelta(weeks=online + 1)  # seen[k] is the week after step k + 1
    assert abs((week_of - dt.date(2025, 1, 15)).days) <= 7, f"online on its date (FACTS R4), not {week_of}"
    fw = seen[-1]
    assert fw.phase == "ramping" and 0 < fw.output_t < fw.capacity_t == fw.nameplate_t
    assert fw.utilisation == pytest.approx(fw.output_t / fw.capacity_t)
    ten_x = next(f for f in projects.facilities(m, m.watch) if f.id == "us_mp_10x")
    assert ten_x.phase == "building" and ten_x.capacity_t == 0.0
    view = network_view(m)
    chart = network_map.MapChart(view).update(view)
    marked = {j for sc, idx in chart.marks for j in idx}
    on_map = {k for k, (_, node, _) in enumerate(view.facilities) if node in view.pos}
    assert marked == on_map, "a facility with a node the map does not mark"
    k = [f[0] for f in view.facilities].index("us_mp_fort_worth")
    (hexagons,) = [idx for sc, idx in chart.marks if k in idx]
    assert all(view.facilities[j][2] == "magnet" for j in hexagons)
    assert "magnet plants" in network_map.facility_legend_title(view)
    import ui.session
    from model.scenario import load_scenario

    monkeypatch.setattr(ui.session, "load_scenario",  # a world without magnet plants: the oxide world
                        lambda name: load_scenario(name).model_copy(update={"world": "world_2024.toml"}))
    base = network_view(ClassroomModel())
    assert network_map.facility_legend_title(base) == "Refineries (■) and mines (▲) by status"
    table = project_table(m)
    assert re.search(r"data-id='us_mp_fort_worth' data-phase='ramping'><td>MP Materials, Fort Worth \(Independence\) "
                     r"\(magnets\)</td>", table), table
    assert "data-id='us_mp_10x' data-phase='building'" in table and "a magnet plant shows the magnets it made" in table


def test_the_project_table_says_what_the_lenders_committed_paid_out_and_lost():
    """The money is on the page as in the outputs: nothing before the framework's lenders select; after it, each
    lender's commitment, and what it has paid out so far (disbursed over permitting and construction)."""
    m = ClassroomModel("us_japan_framework", 0)
    assert "ree-finance" not in project_table(m)
    while not m.finance.commitments:
        m.step()
    m.step()
    words = project_table(m)
    money = m.finance.by_lender()
    assert set(money) == {"US EXIM", "JBIC/JICA"}
    for lender, (committed, spent, _) in money.items():
        assert 0 < spent < committed  # paid out as the projects are built
        assert f"{lender}: US${committed:,.0f}M committed, US${spent:,.0f}M paid out" in words
    assert "lost on cancelled projects" not in words
