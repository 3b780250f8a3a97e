"""The classroom page in headless chromium, served by our own ``solara run`` on a free port.

Each test opens its own page (its own Solara session and model) on one server per module, and fails on
any page error or any request leaving 127.0.0.1. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re

import pytest

from model.params import load_world
from tests.browser.pages import button
from ui.config import RENDER_INTERVAL
from ui.panels import default_price_products
from ui.session import INTERVENTION_BY_KEY

pytestmark = pytest.mark.browser

CHARTS = ("prices", "flows", "shortage", "share", "stockpile")  # drawn by the browser (ui/webcharts.py)
UPDATE_TIMEOUT_MS = 30_000  # a frame takes < 1 s; generous for a loaded CI machine
FAIL_WEEK = RENDER_INTERVAL + 2  # tests/browser/fault_app.py fails from this week on: in the second Step
PLAY_TIMEOUT_MS = 180_000  # only a guard against a page that never plays, not a speed limit
MAX_STEPS_FOR_EFFECT = 4
WEDGE = 1.3  # ex-China / China-domestic Dy price: ~1.07 without controls (seed 0), 3-4 with licences


# ================================================================================================ helpers
def model_time(page) -> float:
    """The sidebar's week ('Week 3 of 520: ...', ``.ree-clock[data-week]``)."""
    return float(page.locator(".ree-clock").get_attribute("data-week"))


def wait_time(page, weeks: float) -> None:
    page.locator(f".ree-clock[data-week='{int(weeks)}']", has_text=f"Week {int(weeks)} of ").wait_for(
        timeout=UPDATE_TIMEOUT_MS)
    page.locator(".ree-date", has_text=f"week {int(weeks)} ").wait_for(timeout=UPDATE_TIMEOUT_MS)


def step(page, times: int = 1) -> float:
    """Press Step and wait until the page shows the new week (Step advances RENDER_INTERVAL weeks)."""
    for _ in range(times):
        before = model_time(page)
        button(page, "Step").click()
        wait_time(page, before + RENDER_INTERVAL)
    return model_time(page)


def price(page, region: str, product: str) -> float:
    cell = page.locator(f"td.ree-price[data-region='{region}'][data-product='{product}']")
    return float(cell.inner_text().replace(",", ""))


def chart_drawn(page, name: str) -> str:
    """What the browser drew for a chart: its SVG, once it shows the header's week."""
    week = re.search(r"week (\d+)", page.locator(".ree-date").inner_text()).group(1)
    chart = page.locator(f"div.ree-chart.ree-{name}[data-week='{week}']")
    chart.wait_for(timeout=UPDATE_TIMEOUT_MS)
    return chart.locator("svg").last.evaluate("e => e.outerHTML")


def line_points(page, name: str) -> list[int]:
    """How many points each line of a chart has (its ``path.ree-line`` elements)."""
    return page.locator(f"div.ree-{name} path.ree-line").evaluate_all(
        "ps => ps.map(p => parseInt(p.dataset.points))")


def event_log(page) -> str:
    return page.locator("ul.ree-event-log").inner_text()


def wait_log(page, text: str) -> str:
    """The event log once it shows ``text`` (it may reach the page a moment after the header's week)."""
    page.locator("ul.ree-event-log", has_text=text).wait_for(timeout=UPDATE_TIMEOUT_MS)
    return event_log(page)


def shot(tab, name: str) -> None:
    """Screenshot once the last frame has fully arrived (the price table shows the header's week)."""
    page = tab.page
    week = re.search(r"week (\d+)", page.locator(".ree-date").inner_text()).group(1)
    page.locator("table.ree-price-table", has_text=f"week {week}").wait_for(timeout=UPDATE_TIMEOUT_MS)
    page.locator(f"div.ree-prices[data-week='{week}']").wait_for(timeout=UPDATE_TIMEOUT_MS)
    page.wait_for_function("() => [...document.querySelectorAll('img.ree-chart')].every(i => i.complete)")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")  # painted
    tab.screenshot(name)


# ================================================================================================== tests
def test_page_loads_offline_with_every_panel(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    for name in CHARTS:  # drawn in the page from data: an SVG with its axes and a path per series
        chart = page.locator(f"div.ree-chart.ree-{name}")
        chart.wait_for()
        assert chart.locator("svg text").count() > 5, f"{name} chart has no axes"
        assert chart.locator("path.ree-line, path.ree-area").count() >= 1, f"{name} chart has no series"
    img = page.locator("img.ree-map")  # the map is a PNG the server draws (shared among pages)
    img.wait_for()
    assert img.get_attribute("src"), "the map has no image"
    assert img.evaluate("i => i.naturalWidth") > 100, "the map image did not decode"
    for label in ("Reset", "▶", "Step"):
        assert button(page, label).is_visible()
    assert model_time(page) == 0.0
    for iv in INTERVENTION_BY_KEY.values():
        assert page.locator(f".ree-iv-{iv.key}").is_visible(), f"no button for {iv.label}"
    assert "No events yet" in event_log(page)
    world = load_world()  # the page lays out the world's products and regions, not a list of its own
    table = page.locator("table.ree-price-table")
    shown = default_price_products(world.product_names)  # all of a small world's; the first three of ten
    for r in world.regions:
        assert r.name in table.inner_text()
        for p in shown:
            assert price(page, r.id, p) > 0
    # each product picker offers every product: the two panels' pickers, and the price chart's own where the
    # world has more products than it opens on (ui.panels.MAX_PRICE_PANELS)
    pickers = 2 + (len(shown) < len(world.product_names))
    for p in world.product_names:
        assert page.get_by_role("button", name=p, exact=True).count() == pickers
    shot(tab, "01-loaded")
    tab.check_clean()


def test_step_advances_time(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    before = chart_drawn(page, "prices")
    assert step(page) == RENDER_INTERVAL
    assert step(page) == 2 * RENDER_INTERVAL
    assert chart_drawn(page, "prices") != before, "the price chart did not change after two steps"
    n_lines = len(load_world().regions) * len(default_price_products(load_world().product_names))
    points = line_points(page, "prices")  # every line runs through weeks 0..10: the chart shows lines, not dots
    assert len(points) == n_lines and set(points) == {2 * RENDER_INTERVAL + 1}, points
    points = line_points(page, "share")  # (the share is recorded from week 1)
    assert len(points) >= 2 and min(points) >= 2 * RENDER_INTERVAL, points
    shot(tab, "02-stepped")
    tab.check_clean()


def test_intervention_changes_prices_and_is_logged(app_url, open_page):
    """China's Dy/Tb licences open a wedge between ex-China and China-domestic Dy prices within weeks."""
    tab = open_page(app_url)
    page = tab.page
    step(page)
    wedge_before = price(page, "ROW", "Dy") / price(page, "CN", "Dy")
    iv = INTERVENTION_BY_KEY["licences"]
    page.locator(f".ree-iv-{iv.key}").click()
    page.locator("li.ree-pending", has_text="China now requires an export licence").wait_for()  # for the next step
    button(page, iv.undo_label).wait_for()  # the button now undoes it
    before = chart_drawn(page, "prices")
    wedges = []
    for _ in range(MAX_STEPS_FOR_EFFECT):  # licences bite after their processing delay
        step(page)
        wedges.append(price(page, "ROW", "Dy") / price(page, "CN", "Dy"))
        if wedges[-1] > max(WEDGE, wedge_before + 0.2):
            break
    assert max(wedges) > max(WEDGE, wedge_before + 0.2), (wedge_before, wedges)
    log = wait_log(page, "China now requires an export licence")
    assert re.search(r"\d+ \w{3} \d{4}, week \d+\s*your class\s*: China now requires an export licence for "
                     r"dysprosium and terbium", log), log
    assert "Next step" not in log
    assert chart_drawn(page, "prices") != before
    shot(tab, "03-intervention")
    tab.check_clean()


def test_funding_a_planned_plant_sends_it_into_permitting(app_url, open_page):
    """Issue 12 item 6: the teacher picks a planned plant and a lender and presses Fund; at the next step the
    project table shows the plant in permitting with its lender and its weeks to go, the event log says who
    lends how much, and the header lists it among the class's changes."""
    tab = open_page(app_url)
    page = tab.page
    row = page.locator("tr.ree-project[data-id='th_udon_thani']")
    assert row.get_attribute("data-phase") == "planned"
    page.locator(".v-select", has_text="Finance a planned plant").click()
    page.get_by_role("option", name=re.compile(r"^NE Thailand refinery \(Udon Thani\), Thailand")).click()
    page.locator(".ree-fund-lender").get_by_role("button", name="JBIC", exact=True).click()
    button(page, "Fund it (JBIC)").click()
    page.locator("li.ree-pending", has_text="Japan has JBIC fund NE Thailand refinery").wait_for()
    page.locator(".ree-run-changes", has_text="JBIC funds NE Thailand (next step)").wait_for()
    step(page)
    page.locator("tr.ree-project[data-id='th_udon_thani'][data-phase='permitting']").wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert "JBIC" in row.inner_text() and re.search(r"in \d+ weeks", row.inner_text()), row.inner_text()
    log = wait_log(page, "JBIC lends US$240 million to build NE Thailand refinery (Udon Thani)")
    assert re.search(r"week 1\s*your class\s*: Japan has JBIC fund NE Thailand refinery", log), log
    page.locator(".ree-run-changes", has_text="JBIC funds NE Thailand (week 1)").wait_for()
    shot(tab, "09-project-funded")
    tab.check_clean()


def test_reset_restores_the_start(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    start_prices = chart_drawn(page, "prices")
    start_table = page.locator("table.ree-price-table").inner_text()
    step(page)
    page.locator(".ree-iv-border").click()
    step(page)
    wait_log(page, "China closes its border with Myanmar")
    button(page, "Reset").click()
    wait_time(page, 0)
    button(page, INTERVENTION_BY_KEY["border"].label).wait_for()
    assert "No events yet" in event_log(page)
    assert page.locator("table.ree-price-table").inner_text() == start_table
    assert chart_drawn(page, "prices") == start_prices, "the price chart differs from the first week's"
    shot(tab, "04-reset")
    tab.check_clean()


def test_policy_switch_applies_at_reset(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    page.locator(".ree-switch-china_licences input").click(force=True)
    page.get_by_text("China now requires an export licence for dysprosium and terbium").first.wait_for()  # preview
    button(page, "Reset").click()
    page.locator(".ree-run-changes", has_text="switched on at the start: China licenses Dy/Tb exports").wait_for()
    step(page)
    wait_log(page, "China now requires an export licence for dysprosium and terbium")
    shot(tab, "05-policy-switch")
    tab.check_clean()


def test_scenario_picker_and_seed(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    page.locator(".v-select", has_text="Scenario").click()
    page.get_by_role("option", name="myanmar_2025", exact=True).click()  # not myanmar_2025_record
    seed = page.get_by_label("Seed, a whole number (applies with Reset)")
    seed.fill("7")
    seed.press("Enter")
    button(page, "Reset").click()
    page.get_by_text("(seed 7;").wait_for()
    header = page.locator(".ree-date").locator("xpath=..").inner_text()
    assert re.match(r"myanmar_2025\s+week 0 ", header), header
    shot(tab, "06-scenario")
    tab.check_clean()


def test_a_magnet_world_opens_on_three_price_panels_and_the_picker_adds_more(app_url, open_page):
    """Issue 11 item 7: the magnet-stage world has ten products; the price chart opens on the first three
    and a product picker (not more fixed panels) adds yttrium, whose ex-China price the scenario splits."""
    tab = open_page(app_url)
    page = tab.page
    page.locator(".v-select", has_text="Scenario").click()
    page.get_by_role("option", name="yttrium_split", exact=True).click()
    button(page, "Reset").click()
    page.locator(".ree-date").locator("xpath=..").filter(has_text="yttrium_split").wait_for(timeout=UPDATE_TIMEOUT_MS)
    step(page)
    chart_drawn(page, "prices")
    texts = page.locator("div.ree-prices svg text").evaluate_all("ts => ts.map(t => t.textContent.trim())")
    assert {"NdPr", "Dy", "Tb"} <= set(texts) and not {"Y", "NdFeB", "Ce"} & set(texts), texts
    page.locator(".v-card", has_text="Prices:").get_by_role("button", name="Y", exact=True).click()
    page.wait_for_function("() => [...document.querySelectorAll('div.ree-prices svg text')]"
                           ".some(t => t.textContent.trim() === 'Y')", timeout=UPDATE_TIMEOUT_MS)
    assert price(page, "ROW", "Y") > 0 and price(page, "CN", "Y") > 0
    shot(tab, "07-magnet-world")
    tab.check_clean()


def test_step_error_is_shown_and_server_keeps_serving(serve, open_page):
    url = serve("tests/browser/fault_app.py", REE_FAIL_WEEK=str(FAIL_WEEK))
    a = open_page(url)
    b = open_page(url)  # another class member's page on the same server
    step(a.page)  # the first Step's weeks are fine
    button(a.page, "Step").click()
    error = a.page.locator(".ree-step-error")
    error.wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert f"stopped in week {FAIL_WEEK}" in error.inner_text()
    assert "RuntimeError: injected failure" in error.inner_text()
    assert button(a.page, "Step").is_disabled()
    shot(a, "07-step-error")
    assert step(b.page) == RENDER_INTERVAL  # the other page still works ...
    c = open_page(url)  # ... and the server still serves new ones
    assert model_time(c.page) == 0.0
    button(a.page, "Reset").click()  # and the failed page recovers with Reset
    wait_time(a.page, 0)
    # the clock and the error box are separate updates of the page: wait for the box to go (a fresh-clone
    # run under load read it in the frame between them)
    a.page.locator(".ree-step-error").wait_for(state="detached", timeout=UPDATE_TIMEOUT_MS)
    for tab in (a, b, c):
        tab.check_clean()


def test_play_advances_redraws_and_pauses(app_url, open_page, artifacts):
    """Play advances the model and redraws the charts; Pause stops it where the page shows it. Waits on page
    state only (how fast a page plays is measured by ``make bench`` (f), never judged here: a shared machine
    may be slow, and a test on speed would fail for it)."""
    tab = open_page(app_url)
    page = tab.page
    page.evaluate("""() => { window.__frames = 0;
        new MutationObserver(() => window.__frames++).observe(document.querySelector('div.ree-prices'),
            {attributes: true, attributeFilter: ['data-week']}); }""")
    t0 = model_time(page)
    button(page, "▶").click()
    target = t0 + 2 * RENDER_INTERVAL
    # the sidebar's time, read in the page, reaches two frames on (or Play ends at the horizon first)
    page.wait_for_function("""target => { const el = document.querySelector('.ree-clock');
        return el && parseInt(el.dataset.week) >= target; }""", arg=target, timeout=PLAY_TIMEOUT_MS)
    pause = button(page, "❚❚")
    at_horizon = not pause.is_enabled()
    if not at_horizon:
        pause.click()
        button(page, "▶").wait_for(timeout=UPDATE_TIMEOUT_MS)
    else:  # the whole run played before we looked: Play stopped by itself, and the page says why
        page.get_by_text("The run reached its horizon").wait_for(timeout=UPDATE_TIMEOUT_MS)
    stopped = model_time(page)
    wait_time(page, stopped)  # the header and sidebar agree on the week shown
    frames = page.evaluate("window.__frames")
    assert stopped >= target and frames >= 2, (t0, stopped, frames)
    shot(tab, "08-played")
    (artifacts / "play.json").write_text(json.dumps({"start": t0, "paused_at": stopped, "frames": frames}))
    if not at_horizon:  # paused: Step still works, one frame on from what the page shows (step() waits on it)
        assert step(page) >= stopped + RENDER_INTERVAL
    tab.check_clean()
