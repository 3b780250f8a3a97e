"""Class mode (issue 15 item 3): a teacher's page drives one run, followers see it live and read-only.

In-process (no browser): pause at the next event stops at exactly the event's week, the registry (codes,
read-only followers, freed when the teacher's page closes), the scrubber and the overlay leave the run
alone. In headless chromium: a teacher page and a follower page at once, and the projector layout at
1280x720 (screenshots in ``test-artifacts/browser/``, chart text measured in the page).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.browser.pages import button, run
from ui import classmode
from ui.classmode import REGISTRY, ClassRun, ViewState, event_stop, follow_code, new_event
from ui.history import History
from ui.play import FrameGate, PageSession, advance_until, play_loop
from ui.session import ClassroomModel
from ui.words import SOURCE_CLASS

WAIT_S = 30.0  # a hang guard for a follower's thread, not a speed limit


def first_event_week(scenario: str, seed: int = 0, weeks: int = 200) -> int:
    """The first week with an event the class did not cause, read from a whole run's event log."""
    m = run(ClassroomModel(scenario, seed), weeks)
    return min(t.week for t in m.told if t.source != SOURCE_CLASS and t.week > 0)


def shown_now(m: ClassroomModel, gate: FrameGate) -> callable:
    def redraw() -> None:  # the page's render: it draws the model's week, then its effect opens the gate
        gate.shown(m, int(m.steps))

    return redraw


# ============================================================================ pause at the next event
# baseline's first event: week 70 on the oxide world, 54 on the magnet world (a magnet plant online): 4 divides neither
@pytest.mark.parametrize("scenario,interval", [("baseline", 4), ("myanmar_2025", 5), ("myanmar_2025", 8)])
def test_play_pauses_at_exactly_the_week_of_the_next_event(scenario, interval):
    """Play with "pause at the next event" ends the frame at the event's week, not at the frame's end."""
    week = first_event_week(scenario)
    assert week % interval, f"choose an interval that does not land on week {week} by itself"
    m = ClassroomModel(scenario, 0)
    gate = FrameGate()
    why = play_loop(m, lambda: interval, lambda: 0.0, shown_now(m, gate), gate, lambda: True,
                    event_stop(lambda: True))
    assert why == "event"
    assert int(m.steps) == week
    assert [t for t in m.told if t.source != SOURCE_CLASS][0].week == week
    # Play again: on to the next event, past this one
    why = play_loop(m, lambda: interval, lambda: 0.0, shown_now(m, gate), gate, lambda: True,
                    event_stop(lambda: True))
    assert why in ("event", "horizon") and int(m.steps) > week
    if why == "event":
        assert new_event(m)


def test_step_pauses_at_the_event_too_and_the_switch_off_does_not():
    week = first_event_week("myanmar_2025")
    on = ClassroomModel("myanmar_2025", 0)
    off = ClassroomModel("myanmar_2025", 0)
    while int(on.steps) < week:
        advance_until(on, 100, event_stop(lambda: True))
    assert int(on.steps) == week
    stepped, stopped = advance_until(off, week + 3, event_stop(lambda: False))
    assert (stepped, stopped, int(off.steps)) == (week + 3, False, week + 3)


def test_the_class_own_changes_do_not_pause_the_run():
    m = ClassroomModel("baseline", 0)
    m.intervene("border")  # logged at week 1, by the class
    stepped, stopped = advance_until(m, 5, event_stop(lambda: True))
    assert m.told[0].source == SOURCE_CLASS and m.told[0].week == 1
    assert (stepped, stopped) == (5, False)


# ============================================================================================ registry
def test_codes_and_follow_links():
    assert follow_code("follow=ab2c") == "AB2C"
    assert follow_code("x=1&follow=K7M2") == "K7M2"
    assert follow_code("") is None and follow_code(None) is None and follow_code("follow=") is None
    code = classmode.new_code()
    assert len(code) == classmode.CODE_LENGTH and set(code) <= set(classmode.CODE_ALPHABET)
    taken = {classmode.new_code() for _ in range(5)}
    assert classmode.new_code(lambda c: c in taken) not in taken


def test_a_run_is_found_by_its_code_and_freed_when_closed():
    r = REGISTRY.create()
    m = ClassroomModel()
    try:
        assert REGISTRY.get(r.code.lower()) is r
        view = r.publish(run(m, 3))
        assert view.week == 3 and view.version == r.version == 1 and r.model is m
        with pytest.raises(ValueError):
            REGISTRY.create(r.code)
    finally:
        REGISTRY.close(r.code)
    assert REGISTRY.get(r.code) is None and r.code not in REGISTRY.codes()
    assert r.closed and r.model is None and r.view is None
    assert r.publish(m) is None  # a closed run takes no more views


def test_followers_wake_on_a_new_view_and_on_close():
    r = ClassRun("TEST")
    m = ClassroomModel()
    got = []
    t = threading.Thread(target=lambda: got.append(r.wait_newer(0, WAIT_S)))
    t.start()
    r.publish(run(m, 1))
    t.join(WAIT_S)
    assert got == [1]
    t = threading.Thread(target=lambda: got.append(r.wait_newer(1, WAIT_S)))
    t.start()
    r.close()
    t.join(WAIT_S)
    assert not t.is_alive() and got == [1, 1] and r.closed


def _class_page():
    """The classroom page in-process with class mode started; returns (render context, its ClassRun)."""
    import ipyvuetify as v
    import solara

    from ui.app import make_page

    before = set(REGISTRY.codes())
    rc = solara.render(solara.AppLayout(children=[make_page()()]), handle_error=False)[1]
    rc.find(v.Btn, children=["Start class mode"]).widget.click()
    (code,) = set(REGISTRY.codes()) - before
    return rc, REGISTRY.get(code)


def _projector(rc):
    import ipyvuetify as v

    return rc.find(v.Html, class_="ree-projector").widget.attributes


def test_the_teachers_page_publishes_and_closing_it_frees_the_run():
    import ipyvuetify as v

    rc, r = _class_page()
    assert _projector(rc)["data-week"] == "0" and r.view.week == 0
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert r.view.week == 5 and _projector(rc)["data-week"] == "5"
    assert r.model is not None and int(r.model.steps) == 5
    rc.close()  # the page goes (in a browser: its tab closes, and Solara closes its kernel)
    assert REGISTRY.get(r.code) is None and r.closed and r.model is None


def test_stop_class_mode_frees_the_run_and_shows_the_dashboard_again():
    import ipyvuetify as v

    rc, r = _class_page()
    rc.find(v.Btn, children=["Stop class mode"]).widget.click()
    assert REGISTRY.get(r.code) is None and r.closed
    assert not rc.find(v.Html, class_="ree-projector").widgets
    rc.find(v.Btn, children=["Start class mode"]).assert_single()
    rc.close()


def test_a_follower_is_read_only_and_follows_the_teacher():
    """The follower's page has no control at all; it never steps the model; a teacher's Step reaches it."""
    import ipyvuetify as v
    import solara

    rc, r = _class_page()
    m = r.model
    follower = solara.render(classmode.FollowPage(r.code), handle_error=False)[1]
    try:
        for widget in (v.Btn, v.Slider, v.Switch, v.Checkbox, v.Select, v.TextField, v.BtnToggle):
            assert not follower.find(widget).widgets, f"a {widget.__name__} on the follower's page"
        assert _projector(follower)["data-week"] == "0"
        deadline = threading.Event()
        for _ in range(int(WAIT_S * 10)):  # the follower's thread registers itself
            if r.followers == 1:
                break
            deadline.wait(0.1)
        assert r.followers == 1 and int(m.steps) == 0  # following did not step the run
        rc.find(v.Btn, children=["Step"]).widget.click()
        for _ in range(int(WAIT_S * 10)):
            if _projector(follower)["data-week"] == "5":
                break
            deadline.wait(0.1)
        assert _projector(follower)["data-week"] == "5" and int(m.steps) == 5
        rc.close()  # the teacher leaves: the follower says the run ended
        for _ in range(int(WAIT_S * 10)):
            if follower.find(v.Alert).widgets:
                break
            deadline.wait(0.1)
        assert "has ended" in str(follower.find(v.Alert).widget.children)
    finally:
        follower.close()
    unknown = solara.render(classmode.FollowPage("ZZZZ"), handle_error=False)[1]
    assert "no class run with the code ZZZZ" in str(unknown.find(v.Alert).widget.children)
    unknown.close()


# ======================================================================================= scrubber, overlay
def _prices(view, series: str) -> list:
    cell = next(c for c in view.cells if c.name == "prices")
    return next(s["y"] for s in cell.spec.spec["panels"][0]["series"] if s["name"] == series)


def test_the_scrubber_shows_a_week_already_computed_and_leaves_the_run_alone():
    m = run(ClassroomModel("myanmar_2025", 0), 30)
    r = ClassRun("SCRB")
    live = r.publish(m)
    rows, steps, told = len(m.recorder), int(m.steps), len(m.told)
    back = r.publish(m, ViewState(view_week=12))
    assert (back.view_week, back.week) == (12, 30)
    assert (len(m.recorder), int(m.steps), len(m.told)) == (rows, steps, told)  # nothing recomputed
    assert _prices(back, "China-domestic") == _prices(live, "China-domestic")[:13]
    assert all(c.spec.spec["week"] == 12 for c in back.cells)
    assert all(t.week <= 12 for t in back.events)
    assert r.publish(m, ViewState(view_week=99)).view_week == 30  # never past the live week
    again = r.publish(m)
    assert again.view_week == 30 and _prices(again, "China-domestic") == _prices(live, "China-domestic")


def test_the_overlay_is_the_same_run_without_the_interventions():
    """A twin with the same scenario, seed and start switches, no intervention, stepped to the week shown."""
    from ui.policy_controls import PolicySetup

    setup = PolicySetup()
    setup.set_on(setup.switches[0].key, True)
    m = ClassroomModel("baseline", 0, setup)
    setup.set_on(setup.switches[0].key, False)  # switched off after Reset: the twin keeps what the run started with
    run(m, 3)
    m.intervene("border")  # takes effect at week 4
    run(m, 17)
    reference = run(ClassroomModel("baseline", 0, classmode.FrozenSetup(m.start_items, "")), 20)
    r = ClassRun("TWIN")
    view = r.publish(m, ViewState(overlay=True))
    twin = r._twin
    assert twin is not m and int(twin.steps) == 20 and not twin.class_changes()
    assert twin.start_items and [type(x) for x in twin.start_items] == [type(x) for x in m.start_items]
    dashed = np.array(_prices(view, "China-domestic without the class's changes"), dtype=float)
    live = np.array(_prices(view, "China-domestic"), dtype=float)
    expect = History().update(reference).series("price", "CN", "Dy")
    assert np.allclose(dashed, expect, rtol=0, atol=0.51)  # the chart keeps three significant digits
    assert np.allclose(live[:4], dashed[:4], rtol=1e-3)  # the same run until the border closed
    assert not np.allclose(live[4:], dashed[4:], rtol=1e-3)
    assert "without the class's changes" in view.overlay
    # scrubbing back with the overlay: the twin is not rebuilt or stepped further, the run not touched
    back = r.publish(m, ViewState(view_week=8, overlay=True))
    assert r._twin is twin and int(twin.steps) == 20 and int(m.steps) == 20
    assert len(_prices(back, "China-domestic without the class's changes")) == 9


def test_a_reset_starts_a_new_view_and_a_new_twin():
    r = ClassRun("RSET")
    a = run(ClassroomModel(), 6)
    r.publish(a, ViewState(overlay=True))
    first = r._twin
    b = ClassroomModel()
    view = r.publish(b, ViewState(overlay=True))
    assert view.week == 0 and r.model is b and r._twin is not first and int(r._twin.steps) == 0


def test_the_page_session_frees_its_class_run_on_close():
    session = PageSession()
    r = REGISTRY.create()
    session.on_close(lambda: REGISTRY.close(r.code))
    session.close()
    assert REGISTRY.get(r.code) is None and r.closed
    late = []
    session.on_close(lambda: late.append(1))  # registered after closing: called at once
    assert late == [1]


# ============================================================================================== browser
FOLLOW_TIMEOUT_MS = 60_000  # a hang guard, not a speed limit
PROJECTOR = {"width": 1280, "height": 720}
# every piece of chart text in the projector, in CSS pixels as drawn: SVG text (font size x the SVG's
# scale), the legends, the charts' titles
TEXT_SIZES = """() => {
  const out = [];
  for (const svg of document.querySelectorAll('.ree-projector .ree-chart svg[viewBox]')) {
    const vb = svg.viewBox.baseVal; if (!vb || !vb.width) continue;
    const scale = svg.getBoundingClientRect().width / vb.width;
    for (const t of svg.querySelectorAll('text')) {
      if (!t.textContent.trim()) continue;
      const fs = parseFloat(getComputedStyle(t).fontSize);
      out.push({what: 'svg: ' + t.textContent.trim().slice(0, 20), px: fs * scale});
    }
  }
  for (const el of document.querySelectorAll('.ree-projector .ree-legend, .ree-projector-title, .ree-projector-event'))
    out.push({what: el.className + ': ' + el.textContent.trim().slice(0, 20), px: parseFloat(getComputedStyle(el).fontSize)});
  return out; }"""
FADED_IN = "() => getComputedStyle(document.querySelector('.solara-content-main')).opacity === '1'"
BOTTOM = "() => Math.max(...[...document.querySelectorAll('.ree-projector-cell')].map(e => e.getBoundingClientRect().bottom))"


def _start_class_mode(page) -> str:
    button(page, "Start class mode").click()
    code = page.locator(".ree-class-code").get_attribute("data-code", timeout=FOLLOW_TIMEOUT_MS)
    link = page.locator("a.ree-follow-link")
    assert link.inner_text().endswith(f"/?follow={code}")
    return code


def _set_switch(page, where: str, on: bool) -> None:
    """Set a teacher's switch (``where``: the class of its wrapper) and wait until the switch says so. A click
    that lands before the freshly drawn switch listens is lost (seen under load: the projector's full page
    never came and the next button was never there; the overlay's dashed lines never came), so a click that
    did not take is made again."""
    from playwright.sync_api import expect

    box = page.locator(f"{where} input")
    for _ in range(5):
        if box.is_checked() == on:
            return
        box.click(force=True)
        try:
            expect(box).to_be_checked(checked=on, timeout=FOLLOW_TIMEOUT_MS // 5)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the switch {where} would not turn {'on' if on else 'off'}")


def _projector_layout(page, on: bool) -> None:
    """The teacher's "Projector layout" switch (:func:`_set_switch`)."""
    _set_switch(page, ".ree-class-projector", on)


def _follow(browser, url: str, viewport: dict | None = None):
    from tests.browser.conftest import VIEWPORT, Tab

    ctx = browser.new_context(viewport=viewport or VIEWPORT)
    page = ctx.new_page()
    page.set_default_timeout(FOLLOW_TIMEOUT_MS)
    tab = Tab(page)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))
    page.on("request", lambda r: tab.requests.append(r.url))
    page.goto(url)
    page.locator("div.ree-projector").wait_for()
    page.wait_for_function(FADED_IN)
    return ctx, tab


def _week_shown(page, week: int) -> None:
    page.locator(f"div.ree-projector[data-week='{week}']").wait_for(timeout=FOLLOW_TIMEOUT_MS)


@pytest.mark.browser
def test_a_follower_sees_the_teachers_run_live_and_read_only(app_url, open_page, browser):
    teacher = open_page(app_url)
    code = _start_class_mode(teacher.page)
    ctx, follower = _follow(browser, f"{app_url}?follow={code}")
    try:
        _week_shown(follower.page, 0)
        assert follower.page.locator("button, input, select, [role=slider]").count() == 0, "controls on the follower"
        for week in (5, 10):
            button(teacher.page, "Step").click()
            _week_shown(follower.page, week)  # the follower redraws by itself
        _week_shown(teacher.page, 10)  # the teacher's projector layout shows the same
        assert follower.page.locator(".ree-projector .ree-chart").count() == len(classmode.GRID_CHARTS)
        # the teacher plays on with "pause at the next event": both stop at the event's week
        week = first_event_week("baseline")
        teacher.page.locator(".ree-pause-at-event input").click(force=True)
        button(teacher.page, "▶").click()
        teacher.page.locator(f".ree-paused-event[data-week='{week}']").wait_for(timeout=FOLLOW_TIMEOUT_MS * 3)
        _week_shown(follower.page, week)
        assert follower.page.locator(".ree-projector-event").first.inner_text().find(f"week {week}") >= 0
        follower.check_clean()
        teacher.check_clean()
        teacher.page.close()  # the teacher leaves: the run is freed and the follower says so
        follower.page.locator(".ree-follow-ended").wait_for(timeout=FOLLOW_TIMEOUT_MS)
    finally:
        ctx.close()


@pytest.mark.browser
def test_the_projector_layout_fits_1280x720_with_large_chart_text(app_url, open_page, browser, artifacts):
    teacher = open_page(app_url)
    code = _start_class_mode(teacher.page)
    _projector_layout(teacher.page, False)  # the full page: interventions
    button(teacher.page, "Step").click()
    teacher.page.locator(".ree-clock[data-week='5']").wait_for()
    button(teacher.page, "Close the Myanmar–China border").click(timeout=FOLLOW_TIMEOUT_MS)
    for week in range(10, 45, 5):
        button(teacher.page, "Step").click()
        teacher.page.locator(f".ree-clock[data-week='{week}']").wait_for()
    _projector_layout(teacher.page, True)
    _set_switch(teacher.page, ".ree-class-overlay", True)
    ctx, follower = _follow(browser, f"{app_url}?follow={code}", PROJECTOR)
    try:
        page = follower.page
        _week_shown(page, 40)
        page.locator("div.ree-projector[data-overlay^='Dashed']").wait_for()
        page.locator("div.ree-proj-prices path.ree-line[data-series*='without']").first.wait_for(state="attached")
        path = artifacts / "classmode-projector-1280x720.png"
        page.screenshot(path=str(path))  # the viewport only: what the projector shows
        sizes = page.evaluate(TEXT_SIZES)
        assert len(sizes) > 20, sizes
        small = [s for s in sizes if s["px"] < classmode.MIN_TEXT_PX - 0.01]
        assert not small, f"chart text under {classmode.MIN_TEXT_PX} px at 1280x720: {small[:8]}"
        assert page.evaluate(BOTTOM) <= PROJECTOR["height"], "the 2x2 grid does not fit 1280x720"
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PROJECTOR["width"]
        # one chart at a time: the teacher picks prices; the follower shows it alone, as large
        teacher.page.locator(".ree-class-layout button", has_text="Prices").click()
        page.locator("div.ree-projector[data-layout='prices']").wait_for()
        assert page.locator(".ree-projector .ree-chart").count() == 1
        page.screenshot(path=str(artifacts / "classmode-projector-prices-1280x720.png"))
        small = [s for s in page.evaluate(TEXT_SIZES) if s["px"] < classmode.MIN_TEXT_PX - 0.01]
        assert not small, small[:8]
        assert page.evaluate(BOTTOM) <= PROJECTOR["height"]
        follower.check_clean()
        teacher.check_clean()
    finally:
        ctx.close()
