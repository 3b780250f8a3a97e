"""The classroom view without a browser: controls from metadata, interventions, errors, history, charts,
and the page's wiring rendered in-process by Solara (no chromium needed; not marked ``browser``)."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import ui.session
from model.params import load_world
from model.policies import field_specs
from model.results import series
from model.scenario import load_scenario
from tests.browser.pages import run
from ui import charts, network_map, webcharts
from ui.history import History
from ui.policy_controls import SWITCHES, PolicySetup, control_for
from ui.session import INTERVENTION_BY_KEY, INTERVENTIONS, ClassroomModel, parse_seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FailingModel(ClassroomModel):
    FAIL_WEEK = 3

    def _process(self) -> None:  # stage 5 of the week
        if int(self.steps) >= self.FAIL_WEEK:
            raise RuntimeError("boom")
        super()._process()


@pytest.fixture
def world_overrides(monkeypatch):
    """``world_overrides({...})``: ClassroomModels built after this load their scenario with these world
    overrides (the page has no control for them; a test needs another world)."""

    def use(overrides: dict, world: str | None = None) -> None:
        """... and on ``world`` instead of the scenario's own, if given."""
        def load(name):
            sc = load_scenario(name)
            return (sc.model_copy(update={"world": world}) if world else sc).with_overrides(overrides)
        monkeypatch.setattr(ui.session, "load_scenario", load)

    return use


OXIDE = "world_2024.toml"  # the three-product world


def four_product_world() -> dict:
    """Overrides that add a fourth product (Sm, in the ionic clays) to the oxide world (``OXIDE``)."""
    w = load_world(OXIDE)
    products = [p.model_dump() for p in w.products]
    products.append({"name": "Sm", "price_2024_usd_per_kg": 20.0, "export_cost_usd_per_kg": 1.0})
    basket = {**w.ore("ionic_clay").basket, "Sm": 0.03}
    return {"products": products, "ore_types.ionic_clay.basket": basket}


# ============================================================================================== controls
@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: s.key)
def test_controls_come_from_the_policy_metadata(switch):
    specs = field_specs(switch.cls)
    for c in switch.controls():
        spec = specs[c.name]
        assert c.default == spec["default"], f"{switch.key}.{c.name}: a default restated in ui/"
        if c.kind in ("int", "float"):
            lo = spec.get("ge", spec.get("gt"))
            hi = spec.get("le", spec.get("lt"))
            assert lo <= c.min <= c.default <= c.max <= hi, (c, spec)
            switch.build(dt.date(2024, 1, 1), {c.name: c.min})  # both ends of a slider are valid values
            switch.build(dt.date(2024, 1, 1), {c.name: c.max})
        if c.kind == "choice":
            assert c.default in c.choices
    item = switch.build(dt.date(2024, 1, 1), {})
    assert item.describe()


def test_a_slider_needs_bounds():
    from typing import Annotated

    from pydantic import Field

    from model.policies import TimelineItem

    class Unbounded(TimelineItem):  # every shipped policy's number now has both bounds (issue 14)
        tonnes: Annotated[float, Field(ge=0.0)] = 0.0

    with pytest.raises(TypeError, match="both bounds"):
        control_for(Unbounded, "tonnes")  # ge=0 only


def test_switches_apply_at_the_start_of_the_run():
    setup = PolicySetup()
    setup.set_on("china_licences", True)
    setup.set_value("china_licences", "approval_rate", 0.5)
    m = run(ClassroomModel(setup=setup), 1)
    assert any("requires licences for Dy/Tb exports (approval 50%)" in text for _, text in m.events)
    assert "China licenses Dy/Tb exports" in m.setup_summary
    setup.set_value("china_licences", "approval_rate", 2.0)  # out of bounds: the preview says so
    assert setup.preview("china_licences", dt.date(2024, 1, 1)).startswith("invalid")


def test_seed_text_is_parsed():
    assert parse_seed("12") == (12, "")
    assert parse_seed(" 7 ")[0] == 7
    assert parse_seed(3) == (3, "")
    seed, notice = parse_seed("abc")
    assert seed == 0 and "whole number" in notice
    assert parse_seed("-1")[1]
    m = ClassroomModel(seed="5")
    assert m.seed == 5 and m.notice == ""


# ========================================================================================= interventions
@pytest.mark.parametrize("iv", INTERVENTIONS, ids=lambda i: i.key)
def test_interventions_take_effect_at_the_next_step(iv):
    m = run(ClassroomModel(), 2)
    n_events = len(m.events)
    items = m.intervene(iv.key)
    assert items and m.pending(), "the page should show what happens next"
    assert len(m.events) == n_events, "nothing happens before the next step"
    run(m, 1)
    logged = [text for d, text in m.events[n_events:] if d == m.date]
    for item in items:
        assert item.describe() in logged
    assert not m.pending()
    if iv.undo_label is not None:
        assert m.is_on(iv.key)
        m.intervene(iv.key)  # second press ends it at the next step
        assert not m.is_on(iv.key) and m.pending()
        run(m, 1)
        assert any(text.startswith("ends: ") for _, text in m.events[n_events:])


@pytest.mark.parametrize("world", [OXIDE, "world_2024_magnets.toml"])
def test_the_licence_button_controls_dy_and_tb_in_every_form_the_world_has(world, world_overrides):
    """The April 2025 list covers the magnets that contain Dy or Tb (FACTS D1): on the magnet world the button
    licenses NdFeB too (SmCo holds no Dy or Tb); on the oxide world, Dy and Tb oxide, as before."""
    world_overrides({}, world=world)
    m = run(ClassroomModel("baseline"), 1)
    (item,) = INTERVENTION_BY_KEY["licences"].make(m)
    controlled = {p for p, on in zip(m.products, item._mask(m).tolist(), strict=True) if on}
    assert controlled == ({"Dy", "Tb"} if world == OXIDE else {"Dy", "Tb", "NdFeB"})


def test_closing_the_border_closes_and_reopens_the_crossings():
    m = ClassroomModel()
    r = m.routes
    crossings = [i for i in range(len(r.edge_src))
                 if {r.nodes[r.edge_src[i]].country, r.nodes[r.edge_dst[i]].country} == {"MM", "CN"}]
    assert crossings and r.edge_open[crossings].all()
    m.intervene("border")
    run(m, 1)
    assert not r.edge_open[crossings].any()
    assert m.edge_flow[crossings].sum() == 0
    m.intervene("border")
    run(m, 1)
    assert r.edge_open[crossings].all()


def test_a_toggle_withdrawn_before_it_starts_leaves_no_trace():
    m = run(ClassroomModel(), 1)
    m.intervene("border")
    m.intervene("border")
    assert not m.pending() and not m.is_on("border")
    run(m, 2)
    untouched = run(ClassroomModel(), 3)
    assert m.events == untouched.events
    np.testing.assert_array_equal(m.routes.edge_open, m.routes.edge_open_default)
    for reg in m.regions:
        np.testing.assert_array_equal(m.prices[reg], untouched.prices[reg])


def test_a_toggle_is_ended_through_the_model():
    """Switching a toggle off ends its policy with the model's own command (logged, no longer active)."""
    m = run(ClassroomModel(), 1)
    (item,) = m.intervene("licences")
    run(m, 2)
    assert any(x is item for x in m.active)
    m.intervene("licences")
    assert any(x is item for x in m.active), "it ends at the next step, not before"
    run(m, 1)
    assert not any(x is item for x in m.active)
    assert m.events[-1] == (m.date, f"ends: {item.describe()}")
    assert np.isinf(m.export_allowance("JP")).all(), "exports are free again"


def test_release_draws_down_japans_reserve():
    """Japan's JOGMEC reserve is in the world; the release order sells it into the ex-China market."""
    m = run(ClassroomModel(), 2)
    japan = m.state_by_id["JP"]
    assert japan.mandate is not None and japan.mandate.kind == "reserve"
    start = japan.stockpile.copy()
    held = japan.mandate.mask > 0  # the products its reserve holds (every product of the oxide world)
    assert held.any() and (start[held] > 0).all() and not start[~held].any()
    items = m.intervene("release")
    assert [type(i).__name__ for i in items] == ["StockpileRelease"], "no new agency: Japan has one"
    assert items[0].states == ["JP"], "only states with an agency are ordered (the US has none)"
    for _ in range(4):
        run(m, 1)
        assert m.latest("stockpile_released", "JP", "Dy") > 0
        assert (m.week.clearing["ROW"].volume > 0).all(), "the ex-China market trades during the release"
    assert (japan.stockpile[held] < start[held]).all(), "the reserve is being released"
    assert m.state_by_id["US"].mandate is None


def test_release_sets_up_a_stockpile_when_no_agency_exists(world_overrides):
    world_overrides({"states.JP.reserve": None})
    m = run(ClassroomModel(), 1)
    japan, us = m.state_by_id["JP"], m.state_by_id["US"]
    assert japan.mandate is None and us.mandate is None and not japan.stockpile.any()
    m.intervene("release")
    run(m, 1)
    start = japan.stockpile.sum()
    assert start > 0 and japan.mandate is not None
    run(m, 4)
    assert japan.stockpile.sum() < start, "the new stockpile is being released"


def test_financing_a_thai_refinery_selects_it():
    m = run(ClassroomModel(), 1)
    m.intervene("finance")
    run(m, 1)
    assert any(text.startswith("JBIC finance ") and "Thailand" in text for _, text in m.events), m.events
    assert any(t.text.startswith("JBIC lends US$") and "NE Thailand refinery" in t.text for t in m.told), m.told


# ================================================================================================ errors
def test_an_exception_in_a_week_is_kept_and_stops_the_clock():
    m = run(FailingModel(), 6)
    assert m.error is not None and m.error.week == FailingModel.FAIL_WEEK
    assert "RuntimeError: boom" in m.error.message
    assert int(m.steps) == FailingModel.FAIL_WEEK and not m.running


# ======================================================================================= history, charts
def test_history_reads_the_results_incrementally():
    m = run(ClassroomModel(scenario_name="myanmar_2025", seed=2), 30)
    h = History().update(m)
    run(m, 20)
    h.update(m)
    df = m.results()
    assert h.n_steps == int(m.steps) + 1
    for variable, region, product in [("price", "ROW", "Dy"), ("china_refined_share", "", ""),
                                      ("myanmar_ore_flow", "pianma", "")]:
        expected = series(df, variable, region, product).reindex(range(h.n_steps))
        np.testing.assert_array_equal(h.series(variable, region, product), expected.to_numpy())
    assert list(h.dates_array()) == list(pd.to_datetime(df.groupby("step")["date"].first()).to_numpy(
        dtype="datetime64[D]"))


def test_every_chart_draws_a_png():
    m = ClassroomModel()
    m.intervene("border")
    run(m, 8)
    h = History().update(m)
    from ui.panels import myanmar_corridors, network_view, place_names

    view = network_view(m)
    assert not view.is_open.all()
    built = [charts.PriceChart(charts.Markets.of(m)).update(h, log_scale=True),
             charts.FlowChart(myanmar_corridors(m)).update(h),
             charts.RegionLinesChart("shortage", place_names(m)).update(h, "Dy"),
             charts.RegionLinesChart("stockpile", place_names(m), charts.STOCKPILE_EMPTY).update(h, "NdPr"),
             charts.ShareChart(m.products).update(h), network_map.MapChart(view).update(view)]
    for chart in built:
        data = chart.png()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert "northern_corridor" in built[1].names  # in the legend before any ore takes that route
    flows = [t.get_text() for _, t in built[-1].flow_labels]
    assert flows and all(t == "closed" for t in flows)
    # the stockpile panel shows the states' stocks from the start: China's reserve and Japan's JOGMEC
    stock = built[3]
    assert {"CN", "JP"} <= set(stock.lines) and not stock.empty.get_visible()
    assert stock.lines["CN"].get_label() == "China"
    np.testing.assert_allclose(stock.lines["CN"].get_ydata()[-1], m.state_by_id["CN"].stockpile[0])


def test_browser_charts_carry_what_the_png_charts_show():
    """The specs the page's charts are drawn from (ui/webcharts.py): the same series, names, colours and
    axes as the matplotlib charts, as plain JSON (numbers rounded to what the axis can show, gaps as null)."""
    import json

    from ui.panels import myanmar_corridors, place_names

    m = ClassroomModel()
    m.intervene("border")
    run(m, 12)
    h = History().update(m)
    mk = charts.Markets.of(m)
    price = webcharts.price_spec(h, mk)
    json.dumps(price, allow_nan=False)  # what goes to the browser is valid JSON
    assert len(price["x"]) == h.n_steps == 13 and price["xmax"] >= 7 * charts.MIN_SPAN_WEEKS
    assert [item["name"] for item in price["legend"]] == list(mk.names)
    for panel, prod in zip(price["panels"], mk.products, strict=True):
        for ser, reg in zip(panel["series"], mk.regions, strict=True):
            np.testing.assert_allclose(ser["y"], h.series("price", reg, prod), rtol=1e-2)
        assert panel["ymin"] == 0 and panel["ymax"] >= max(max(s["y"]) for s in panel["series"])
        assert panel["yticks"] and all(panel["ymin"] <= t <= panel["ymax"] for t, _ in panel["yticks"])
    log = webcharts.price_spec(h, mk, log_scale=True)
    assert all(p["log"] and p["ymin"] > 0 for p in log["panels"])
    flows = webcharts.flow_spec(h, myanmar_corridors(m))
    assert flows["panels"][0]["stack"] and "northern corridor" in [i["name"] for i in flows["legend"]]
    stock = webcharts.region_lines_spec(h, "stockpile", "Dy", place_names(m), charts.STOCKPILE_EMPTY)
    assert {"China", "Japan"} <= {s["name"] for s in stock["panels"][0]["series"]}
    assert stock["panels"][0]["corner"] == "Dy" and stock["panels"][0]["empty"] == ""
    none = webcharts.region_lines_spec(History(), "stockpile", "Dy", {}, charts.STOCKPILE_EMPTY)
    assert none["panels"][0]["empty"] == charts.STOCKPILE_EMPTY and none["x"] == []
    share = webcharts.share_spec(h, m.products)
    first = share["panels"][0]["series"][0]["y"]
    assert first[0] is None and 0.5 < first[-1] <= 1  # no share recorded in week 0: a gap, not a zero
    json.dumps(share, allow_nan=False)


def test_nice_ticks():
    assert webcharts.nice_ticks(0, 1.08) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert webcharts.nice_ticks(0, 270) == [0, 50, 100, 150, 200, 250]
    assert webcharts.nice_ticks(0.7, 1.0, 4) == [0.7, 0.8, 0.9, 1.0]
    assert webcharts.log_ticks(30, 900) == [50, 100, 200, 500]


def test_price_chart_and_table_follow_the_world():
    """Labels come from the world's regions; the ratio row is each importing region over its source."""
    from ui.panels import price_table

    m = run(ClassroomModel(), 3)
    mk = charts.Markets.of(m)
    assert mk.products == m.products and mk.regions == m.regions
    assert mk.names == tuple(m.world.region(r).name for r in m.regions) == ("China-domestic", "ex-China")
    assert mk.import_pairs() == [("ROW", "CN")]
    chart = charts.PriceChart(mk).update(History().update(m))
    assert [ax.get_title() for ax in chart.axes] == list(m.products)
    assert [t.get_text() for t in chart.axes[0].get_legend().get_texts()] == ["China-domestic", "ex-China"]
    table = price_table(m, mk)
    for reg in m.regions:
        for p in m.products:
            assert f"data-region='{reg}' data-product='{p}'>{m.price(reg, p):,.1f}<" in table
    for p in m.products:
        assert f"data-product='{p}'>{m.price('ROW', p) / m.price('CN', p):.2f}<" in table
    assert "ex-China / China-domestic" in table


def test_a_world_with_more_products_renders(world_overrides):
    """Nothing in ui/ lists the products: a fourth product gets its own price panel, table column and
    share line, and the page renders."""
    import ipyvuetify as v
    import solara

    from ui.app import make_page
    from ui.panels import price_table

    world_overrides(four_product_world(), world=OXIDE)
    m = run(ClassroomModel(), 4)
    assert m.products == ("NdPr", "Dy", "Tb", "Sm")
    h = History().update(m)
    mk = charts.Markets.of(m)
    price = charts.PriceChart(mk).update(h)
    assert len(price.axes) == 4 and price.png().startswith(PNG_SIGNATURE)
    assert "Sm" in charts.ShareChart(m.products).update(h).lines
    assert "data-product='Sm'" in price_table(m, mk)
    spec = webcharts.price_spec(h, mk)  # and the page's browser-drawn charts
    assert [p["title"] for p in spec["panels"]] == list(m.products)
    assert "Sm" in [s["name"] for s in webcharts.share_spec(h, m.products)["panels"][0]["series"]]
    box, rc = solara.render(solara.AppLayout(children=[make_page()()]), handle_error=False)
    rc.find(v.Btn, children=["Sm"]).assert_not_empty()  # the product pickers offer it
    assert any("data-product='Sm'" in str(w.widget.children) for w in rc.find(v.Html))


def test_the_layered_map_looks_like_a_plain_draw():
    """MapChart draws only the routes each frame and composites the rest: the result is the figure."""
    from ui.panels import network_view

    v = network_view(run(ClassroomModel(), 3))
    chart = network_map.MapChart(v).update(v)
    layered = np.asarray(Image.open(io.BytesIO(chart.png())), dtype=int)
    plain = np.asarray(Image.open(io.BytesIO(charts.png(chart.fig))), dtype=int)
    assert layered.shape == plain.shape
    assert np.abs(layered - plain).mean() < 2.0  # anti-aliased edges blend slightly differently


def test_date_ticks():
    epoch = dt.date(1970, 1, 1)
    x0 = float((dt.date(2024, 1, 1) - epoch).days)
    for weeks in (12, 30, 100, 260, 520):
        ticks, labels = charts.date_ticks(x0, x0 + 7 * weeks)
        assert 2 <= len(ticks) <= 7 and len(ticks) == len(labels)
        assert ticks == sorted(ticks)
        assert "2024" in labels[0]


# ============================================================================================ the page
def test_page_wiring_in_process():
    """Step, an intervention and Reset through the real components (Solara's test renderer)."""
    import ipyvuetify as v
    import solara

    from ui.app import make_page
    from ui.config import RENDER_INTERVAL

    box, rc = solara.render(solara.AppLayout(children=[make_page()()]), handle_error=False)

    def text() -> str:
        return " ".join(str(w.widget.children) for w in rc.find(v.Html))

    def clock() -> str:
        return rc.find(solara.widgets.HTML, attributes={"class": "ree-clock", "data-week": ANY}).widget.unsafe_innerHTML

    from unittest.mock import ANY

    import solara.widgets

    rc.find(v.Btn, children=["Step"]).widget.click()
    assert clock().startswith(f"Week {RENDER_INTERVAL} of 520: ")
    iv = INTERVENTION_BY_KEY["border"]
    rc.find(v.Btn, children=[iv.label]).widget.click()
    rc.find(v.Btn, children=[iv.undo_label]).assert_single()
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert clock().startswith(f"Week {2 * RENDER_INTERVAL} of 520: ")
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert clock() == "Week 0 of 520: 1 January 2024"
    rc.find(v.Btn, children=[iv.label]).assert_single()
    assert text()


# ===================================================================================== Play (issue 15)
HORIZON_SCENARIO = "china_controls_2025"  # 104 weeks


@pytest.mark.parametrize("interval", [1, 5, 50, 104, 200])
def test_play_steps_stop_exactly_at_the_horizon(interval):
    """A frame steps ``interval`` weeks but never past the horizon, also when the interval does not divide
    it (weeks 100 -> 104 with 5, 100 -> 104 with 50); a stopped run does not step again."""
    from ui.play import advance, weeks_to_step

    m = ClassroomModel(HORIZON_SCENARIO, 0)
    assert m.weeks == 104
    frames = []
    while (n := advance(m, interval)) > 0:
        frames.append(n)
        assert n <= interval and int(m.steps) == sum(frames)
    assert int(m.steps) == 104 and not m.running
    assert frames[-1] == 104 - interval * (len(frames) - 1)
    assert weeks_to_step(m, interval) == 0
    m.step()  # a caller stepping by itself cannot push it past the horizon either
    assert int(m.steps) == 104


@pytest.mark.parametrize("interval", [5, 50])
def test_play_loop_shows_every_frame_and_ends_at_the_horizon(interval):
    """The loop steps a frame only after the page showed the last one, and ends by itself at the horizon."""
    from ui.play import FrameGate, play_loop

    m = ClassroomModel(HORIZON_SCENARIO, 0)
    gate = FrameGate()
    shown = []

    def redraw():  # what the page's render does: it draws the model's week, then its effect opens the gate
        shown.append(int(m.steps))
        gate.shown(m, int(m.steps))

    assert play_loop(m, lambda: interval, lambda: 0.0, redraw, gate, lambda: True) == "horizon"
    assert shown == [*range(interval, 104, interval), 104]
    assert int(m.steps) == 104


def test_play_loop_waits_for_the_page_and_pauses():
    """Without a render of the last frame the loop steps no further (it asks again for the redraw); pausing
    ends it between frames."""
    import threading

    from ui.play import FrameGate, play_loop

    m = ClassroomModel(HORIZON_SCENARIO, 0)
    gate = FrameGate()
    asked = threading.Event()
    playing = [True]
    result = []
    t = threading.Thread(target=lambda: result.append(
        play_loop(m, lambda: 5, lambda: 0.0, asked.set, gate, lambda: playing[0])))
    t.start()
    assert asked.wait(30)
    assert int(m.steps) == 5  # the page has not shown week 5: no second frame
    gate.shown(m, 5)  # now it has
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while int(m.steps) < 10 and dt.datetime.now() < deadline:
        threading.Event().wait(0.01)
    assert int(m.steps) == 10
    playing[0] = False
    t.join(30)
    assert result == ["paused"] and int(m.steps) == 10


def test_page_has_no_threaded_play():
    """SolaraViz's "Use Threads" box (a second thread drawing while the first stepped) is not on the page."""
    import ipyvuetify as v
    import solara

    from ui.app import make_page

    box, rc = solara.render(solara.AppLayout(children=[make_page()()]), handle_error=False)
    assert not rc.find(v.Checkbox, label="Use Threads").widgets
    rc.find(v.Btn, children=["▶"]).assert_single()



def test_the_status_file_ends_with_the_last_count(tmp_path, monkeypatch):
    """Two loops ending at once (tabs closed together): the status file the browser tests read must end at
    the final count. It was written outside the counters' lock, so the thread that counted first could write
    last and leave a stale count (CI saw 'loops 1' with no loop left). Here the first writer is held inside
    its write until the second has counted and written (or for 1 s, if the lock keeps the second out)."""
    import threading

    from ui import play

    path = tmp_path / "status.json"
    monkeypatch.setenv(play.STATUS_FILE_ENV, str(path))
    status = play.ServerStatus()
    status.change(loops=2)
    first_writing, second_done = threading.Event(), threading.Event()

    class FirstWriteHeld:
        @staticmethod
        def dumps(obj) -> str:
            if not first_writing.is_set():
                first_writing.set()
                second_done.wait(1.0)
            return json.dumps(obj)

    monkeypatch.setattr(play, "json", FirstWriteHeld)

    def second() -> None:
        status.change(loops=-1, loops_ended=1)
        second_done.set()

    first = threading.Thread(target=status.change, kwargs={"loops": -1, "loops_ended": 1})
    first.start()
    assert first_writing.wait(10.0)
    other = threading.Thread(target=second)
    other.start()
    first.join()
    other.join()
    assert status.snapshot()["loops"] == 0
    assert json.loads(path.read_text()) == status.snapshot()
