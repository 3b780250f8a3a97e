"""The classroom page in a class's words (issue 15 item 5), without a browser: the event log as sentences
with names, the header that describes the run, ending a scenario's own policy, duplicate presses, event
markers on the charts, the downloads and the sidebar's controls (Solara's test renderer, not marked
``browser``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from unittest.mock import ANY

import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara
import solara.widgets

from model.params import load_world
from model.policies import REGISTRY, ExportControl, StockpileRelease
from model.results import COLUMNS
from tests.browser.pages import html_of, rendered_page, run
from ui import exports, webcharts
from ui.history import History
from ui.session import ClassroomModel
from ui.words import SOURCE_CLASS, SOURCE_SCENARIO, Words, markers

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# state and group ids, and snake_case node or corridor ids ('US$', and lenders named 'US EXIM', are words)
WORLD_IDS = re.compile(r"\b(CN|MM|LA|TH|JP|AU|MY|VN|OTH|NDAK)\b|\bUS\b(?!\$| [A-Z])|[a-z]+_[a-z_]+")


# ======================================================================================= the event log
@pytest.mark.parametrize("world, told, label", [
    ("world_2024.toml", "dysprosium and terbium", "China Dy/Tb licences"),
    ("world_2024_magnets.toml",
     "dysprosium, terbium, samarium, gadolinium and yttrium (oxides and every magnet that contains them)",
     "China Dy/Tb/Sm/Gd… licences")])
def test_a_published_list_is_told_as_what_it_controls_in_this_world(world, told, label):
    """The April 2025 list in every form (FACTS D1), as china_controls_2025 names it: on the oxide world the
    class reads Dy and Tb (the control skips the rest and has no magnets to hold back), on the magnet world the
    five elements it models and the magnets; in the world's order either way."""
    april = ExportControl(start=dt.date(2025, 4, 4), products=["Sm", "Gd", "Tb", "Dy", "Lu", "Sc", "Y"],
                          forms=["oxide", "magnet"])
    words = Words(load_world(world))
    assert words.products_list(april.products, april.forms) == told
    assert words.item(april).label == label


@pytest.mark.parametrize("scenario", ["combined_2025", "northern_corridor", "election_reconnect", "magnets_2025"])
def test_every_logged_line_is_told_in_words(scenario):
    """Each line the model logs gets a sentence; those of policies and events name places and states in
    full (no ids, no snake_case), and say why they matter. The model's own texts are unchanged."""
    m = ClassroomModel(scenario, 0).run()
    plain = ClassroomModel.__mro__[1](scenario, seed=0).run()  # RareEarthModel: the page changes no text
    assert m.events == plain.events
    pd.testing.assert_frame_equal(m.results(), plain.results())  # nor any result
    assert [t.raw for t in m.told] == [e.text for e in m.events]
    for t in m.told:
        assert t.text and t.date is not None and t.label
        assert t.text != t.raw, f"no words for {t.raw!r}: add a pattern to ui.words.Words.NEWS"
        if t.source != "news":
            assert not WORLD_IDS.search(t.text), t.text
            assert t.why, t


def test_a_border_closure_in_words():
    m = run(ClassroomModel("combined_2025", 0), 46)
    told = {t.raw: t for t in m.told}
    closure = told["CN: closes 1 edges"]
    assert closure.text == ("China closes the road from the Pangwa-Pianma border post to Tengchong / Baoshan, "
                            "Yunnan.")
    assert closure.why == "Ore from Kachin must find another road or wait."
    assert closure.source == SOURCE_SCENARIO and closure.label == "Pianma road closed"
    reopening = told["ends: CN: closes 1 edges"]
    assert reopening.text.startswith("The road from the Pangwa-Pianma border post") and "reopens" in reopening.text
    assert "surge" in reopening.why
    assert told["KIA seizes pangwa"].text == "The Kachin Independence Army seizes the Pangwa / Chipwi mining area, Kachin."


def test_a_corridor_opening_names_its_way():
    m = ClassroomModel()
    m.intervene("corridor")
    run(m, 1)
    (t,) = m.told
    assert t.source == SOURCE_CLASS
    assert t.text.startswith("Laos opens the Northern Corridor: ore from the mines at Momauk, Pangwa and Kanpaiti can "
                             "go by the Shan State road to the Mekong")
    assert "Udon Thani" in t.text and "northern_corridor" not in t.text


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=lambda c: c.__name__)
def test_every_policy_type_has_words(cls):
    """A policy class without its own sentence falls back to ``describe()``: a new class needs words here."""
    w = Words(load_world())
    item = cls(start=dt.date(2025, 1, 6))
    for phase in ("begins", "ends"):
        t = w.item(item, phase)
        assert t.label != cls.__name__ and not t.text.startswith(f"{item.actor}: ") and t.text.endswith("."), t
        assert not WORLD_IDS.search(t.text), t.text


def test_news_lines_in_words():
    w = Words(load_world())
    t = w.news("US EXIM finances NE Thailand refinery (Udon Thani) (US$240M; online in 146 weeks)")
    assert t.text == ("US EXIM lends US$240 million to build NE Thailand refinery (Udon Thani); it should open in "
                      "146 weeks (about 3 years).")
    assert t.why and t.label == "US EXIM funds NE Thailand"
    odd = w.news("something the model says that no pattern knows")
    assert odd.text == odd.raw and odd.why == ""


# ====================================================================== ending the scenario's own policies
def test_the_class_ends_a_scenario_policy_once(monkeypatch):
    import ui.session
    from model.scenario import load_scenario

    # on the oxide world, whatever the scenario's own: the words below name its controlled products (Dy, Tb oxide)
    monkeypatch.setattr(ui.session, "load_scenario",
                        lambda name: load_scenario(name).model_copy(update={"world": "world_2024.toml"}))
    m = run(ClassroomModel("china_controls_2025", 0), 14)
    (licences,) = [x for x in m.endable() if isinstance(x, ExportControl)]
    assert m.source_of(licences) == SOURCE_SCENARIO
    assert not np.isinf(m.export_allowance("JP")).all(), "the scenario's licences bind"
    assert m.end_item(licences) == [licences]
    assert m.end_item(licences) == [], "a second press is ignored"
    assert m.pending() == ["China lifts its export controls on dysprosium and terbium."]
    run(m, 1)
    assert not any(x is licences for x in m.active)
    assert [e.text for e in m.events].count(f"ends: {licences.describe()}") == 1
    assert m.told[-1].source == SOURCE_CLASS and m.told[-1].text.startswith("China lifts its export controls")
    assert np.isinf(m.export_allowance("JP")).all(), "exports are free again"
    assert m.end_item(licences) == [], "not in force any more"


# ===================================================================================== duplicate presses
def test_a_one_shot_pressed_twice_in_a_week_applies_once():
    m = run(ClassroomModel(), 2)
    assert m.intervene("release")
    assert m.intervene("release") == []
    run(m, 1)
    assert sum(isinstance(x, StockpileRelease) for x in m.active) == 1
    assert sum("release stockpiles" in e.text for e in m.events) == 1
    assert m.intervene("release"), "a week later it is a new press"


def test_a_toggle_asked_on_twice_applies_once():
    m = run(ClassroomModel(), 1)
    assert m.intervene("border", on=True)
    assert m.intervene("border", on=True) == []
    assert m.is_on("border")
    run(m, 1)
    assert [e.text for e in m.events] == ["CN: closes MM - CN"]
    assert m.intervene("border", on=True) == [] and m.is_on("border")
    assert m.intervene("border", on=False) and not m.is_on("border")
    assert m.intervene("border", on=False) == []
    run(m, 1)
    assert [e.text for e in m.events] == ["CN: closes MM - CN", "ends: CN: closes MM - CN"]


def test_a_double_click_on_the_page_applies_once(monkeypatch):
    """The server handles a double click's second click after the first one's redraw (the toggle is then
    its own undo button): the page takes it as the same click. The page's clock is held still, so that a
    loaded machine's slow redraw between the two clicks does not make them two clicks (it did, once, in a
    fresh-clone run under load); the window itself is tested below."""
    import time
    import types

    from ui import panels
    monkeypatch.setattr(panels, "time", types.SimpleNamespace(monotonic=lambda: 1000.0, perf_counter=time.perf_counter))
    rc = rendered_page()
    for key in ("border", "release"):
        btn = rc.find(v.Btn, class_=f"ree-iv-{key}").widget
        btn.click()
        rc.find(v.Btn, class_=f"ree-iv-{key}").widget.click()
    rc.find(v.Btn, class_="ree-iv-border").assert_single()
    rc.find(v.Btn, children=["Reopen the Myanmar–China border"]).assert_single()  # still on
    rc.find(v.Btn, children=["Step"]).widget.click()
    log = html_of(rc, "ree-event-log")
    assert log.count("China closes its border with Myanmar") == 1, log
    assert log.count("Japan releases its stockpiles") == 1, log


def test_two_clicks_further_apart_than_the_window_are_two_clicks(monkeypatch):
    """A press of the toggle more than ``DOUBLE_CLICK_S`` after the last is a new decision: the border the
    first click closed, the second reopens (nothing is scheduled)."""
    import time
    import types

    from ui import panels
    clock = [1000.0]
    monkeypatch.setattr(panels, "time", types.SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter))
    rc = rendered_page()
    rc.find(v.Btn, class_="ree-iv-border").widget.click()
    rc.find(v.Btn, children=["Reopen the Myanmar–China border"]).assert_single()
    clock[0] += panels.DOUBLE_CLICK_S + 0.1
    rc.find(v.Btn, class_="ree-iv-border").widget.click()
    rc.find(v.Btn, children=["Close the Myanmar–China border"]).assert_single()
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert "China closes its border with Myanmar" not in html_of(rc, "ree-event-log")


# ============================================================================================ the header
def test_the_header_names_the_class_changes_not_no_shocks():
    rc = rendered_page()
    desc = rc.find(v.Html, class_="ree-run-desc").widget
    assert "no shocks" in str(desc.children), "before the class acts, the scenario's description is the run's"
    rc.find(v.Btn, class_="ree-iv-border").widget.click()
    header = html_of(rc, "ree-run-changes")
    assert "Myanmar–China border closed (next step)" in header
    rc.find(v.Btn, children=["Step"]).widget.click()
    header = html_of(rc, "ree-run-changes")
    assert "changed by the class: " in header and "Myanmar–China border closed (week 1)" in header, header
    assert "baseline has no events of its own" in header
    assert not rc.find(v.Html, class_="ree-run-desc").widgets, "the scenario's 'no shocks' is gone"


def test_the_page_ends_a_start_switch_policy():
    rc = rendered_page()
    rc.find(v.Switch, class_="ree-switch-china_licences").widget.v_model = True
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert not rc.find(v.Btn, class_="ree-end-policy").widgets, "not in force before its first week"
    rc.find(v.Btn, children=["Step"]).widget.click()
    end = rc.find(v.Btn, class_="ree-end-policy ree-end-0")
    assert end.widget.children == ["End: China Dy/Tb licences"]
    end.widget.click()
    assert "Next step: China lifts its export controls on dysprosium and terbium." in html_of(rc, "ree-event-log")
    assert not rc.find(v.Btn, class_="ree-end-policy ree-end-0").widgets
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert "China lifts Dy/Tb controls (week 6)" in html_of(rc, "ree-run-changes")


# ============================================================================================== markers
def test_events_become_markers_on_the_charts():
    m = ClassroomModel()
    run(m, 3)
    m.intervene("border")
    m.intervene("release")
    run(m, 5)
    marks = markers(m.told)
    assert len(marks) == 1, "two events in one week: one marker"
    (mk,) = marks
    assert mk.date == m.start_date + dt.timedelta(weeks=4) and mk.source == SOURCE_CLASS
    assert mk.label.startswith("Myanmar–China border closed") and mk.label.endswith("+1")
    assert "China closes its border with Myanmar" in mk.title and "Japan releases" in mk.title
    h = History().update(m)
    spec = webcharts.with_markers(webcharts.share_spec(h, m.products), h, marks)
    assert spec["markers"] == [{"x": 28.0, "label": mk.label, "title": mk.title, "color": ANY, "source": "class",
                                "row": 0, "right": False}]
    beyond = dataclasses.replace(mk, date=m.start_date + dt.timedelta(weeks=400))  # past the axis' end
    assert webcharts.with_markers(webcharts.share_spec(h, m.products), h, [beyond])["markers"] == []


def test_event_labels_never_overlap():
    """Labels go in rows where they fit; the class's own events are placed first; a label with no room is
    left out (its line stays)."""
    from ui.charts import CHAR_WIDTH, place_labels

    xs = [10.0, 12.0, 14.0, 16.0, 18.0, 300.0]
    texts = ["scenario event"] * 5 + ["near the right edge"]
    sources = ["scenario", "scenario", "scenario", "scenario", "class", "news"]
    rows = place_labels(xs, texts, sources, font=10, left=0.0, right=320.0, rows=3)
    assert rows[4] == (0, False), "the class's event first"
    assert [r for r, _ in rows[:4]] == [1, 2, None, None]
    assert rows[5] == (0, True), "runs left of its line at the right edge"
    spans = {}
    for (row, left), x, t in zip(rows, xs, texts, strict=True):
        if row is not None:
            w = CHAR_WIDTH * 10 * len(t) + 6
            spans.setdefault(row, []).append((x - w, x) if left else (x, x + w))
    for row_spans in spans.values():
        row_spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(row_spans, row_spans[1:], strict=False))


# ============================================================================================== exports
def test_csv_is_the_results_table():
    m = run(ClassroomModel(), 3)
    df = pd.read_csv(io.BytesIO(exports.results_csv(m)))
    assert list(df.columns) == COLUMNS
    assert len(df) == len(m.results()) > 0 and df["step"].max() == 3
    assert exports.stem(m, "results") == "baseline_seed0_results"


@pytest.mark.parametrize("name", list(exports.CHARTS))
def test_every_chart_downloads_as_png(name):
    m = ClassroomModel()
    m.intervene("border")
    run(m, 6)
    data = exports.chart_png(m, name)
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


# ============================================================================================== sidebar
def test_the_sidebar_has_only_meaningful_controls():
    rc = rendered_page()
    labels = [w.widget.label for w in rc.find(v.Slider)] + [w.widget.label for w in rc.find(v.Checkbox)]
    assert not any(lab and ("Play Interval" in lab or "Use Threads" in lab or "Render Interval" in lab)
                   for lab in labels), labels
    assert "Weeks per Step (and per frame of Play): 5" in labels
    assert not any("Time: " in str(w.widget.children) for w in rc.find(v.Html)), "Mesa's raw 'Time:' line"
    clock = rc.find(solara.widgets.HTML, attributes={"class": "ree-clock", "data-week": "0"})
    assert clock.widget.unsafe_innerHTML == "Week 0 of 520: 1 January 2024"
    for cls in ("ree-export-csv", "ree-export-prices", "ree-export-map"):
        rc.find(v.Btn, class_=cls).assert_single()
