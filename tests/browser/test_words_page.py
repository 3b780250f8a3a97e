"""The classroom page in a class's words (issue 15 item 5), in headless chromium: the event log's sentences,
the header, ending a scenario's policy, a double click, the event markers in the charts' SVG, the sidebar's
controls and the CSV/PNG downloads. Every wait is on page state; timeouts only guard against a hang."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from model.results import COLUMNS
from tests.browser.pages import button
from tests.browser.test_page import UPDATE_TIMEOUT_MS, chart_drawn, shot, step, wait_log
from ui.config import RENDER_INTERVAL
from ui.session import INTERVENTION_BY_KEY

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BORDER = INTERVENTION_BY_KEY["border"]


def test_an_intervention_in_words_in_the_header_and_on_the_charts(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    assert "no shocks" in page.locator(".ree-run-desc").inner_text()  # the baseline, as written
    step(page)
    page.locator(f".ree-iv-{BORDER.key}").dblclick()  # a double click applies it once
    page.locator("li.ree-pending", has_text="Next step: China closes its border with Myanmar").wait_for()
    button(page, BORDER.undo_label).wait_for()  # still on: the second click was not taken as "reopen"
    step(page)
    log = wait_log(page, "your class: China closes its border with Myanmar")
    assert log.count("China closes its border with Myanmar") == 1, log
    assert "Why it matters: Ore from Kachin must find another road or wait." in log
    assert "CN:" not in log and "MM - CN" not in log, "ids in the log"
    header = page.locator(".ree-run-changes").inner_text()
    week = RENDER_INTERVAL + 1  # pressed in week 5, in force from the next week
    assert f"changed by the class: Myanmar–China border closed (week {week})" in header, header
    assert page.locator(".ree-run-desc").count() == 0 and "no shocks" not in header
    chart_drawn(page, "prices")  # the frame of this week is drawn
    for name in ("prices", "flows", "share"):
        marker = page.locator(f"div.ree-{name} svg g.ree-marker[data-source='class']")
        assert marker.count() >= 1, f"no event marker in the {name} chart"
        assert marker.first.get_attribute("data-label").startswith("Myanmar–China border closed")
    label = page.locator("div.ree-prices svg text.ree-marker-label").first.evaluate(
        "t => [...t.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim()")  # not <title>
    assert label == "Myanmar–China border closed"
    shot(tab, "10-words")
    tab.check_clean()


def test_the_class_ends_the_scenarios_licences(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    page.locator(".v-select", has_text="Scenario").click()
    page.get_by_role("option", name="china_controls_2025", exact=True).click()
    button(page, "Reset").click()
    page.get_by_text("runs to 4 January 2027").wait_for(timeout=UPDATE_TIMEOUT_MS)
    step(page, 3)  # the licences begin in week 13
    wait_log(page, "China now requires an export licence for dysprosium, terbium, samarium, gadolinium and yttrium")
    end = button(page, "End: China Dy/Tb/Sm/Gd… licences")
    end.click()
    page.locator("li.ree-pending", has_text="China lifts its export controls on dysprosium, terbium, samarium, gadolinium and yttrium").wait_for()
    assert end.count() == 0, "the policy is due to end: no second press"
    step(page)
    log = wait_log(page, "your class: China lifts its export controls on dysprosium, terbium, samarium, gadolinium and yttrium")
    assert "Why it matters: Exports flow freely again" in log
    page.locator(".ree-run-changes", has_text="China lifts Dy/Tb/Sm/Gd… controls (week 16)").wait_for()
    tab.check_clean()


def test_the_sidebar_speaks_in_words(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    for developer in ("Use Threads", "Play Interval", "Render Interval", "Model Parameters", "Information"):
        assert page.get_by_text(developer).count() == 0, developer
    assert page.get_by_text(re.compile(r"^Time: ")).count() == 0
    assert page.locator(".ree-clock").inner_text() == "Week 0 of 520: 1 January 2024"
    assert page.get_by_text("Weeks per Step (and per frame of Play): 5").count() == 1
    step(page)
    assert page.locator(".ree-clock").inner_text() == "Week 5 of 520: 5 February 2024"
    tab.check_clean()


def test_csv_and_png_downloads(app_url, open_page):
    tab = open_page(app_url)
    page = tab.page
    step(page)
    with page.expect_download(timeout=UPDATE_TIMEOUT_MS) as dl:
        page.locator(".ree-export-csv").click()
    assert dl.value.suggested_filename == "baseline_seed0_results.csv"
    df = pd.read_csv(dl.value.path())
    assert list(df.columns) == COLUMNS and len(df) > 1000
    assert df["step"].max() == RENDER_INTERVAL and set(df["scenario"]) == {"baseline"}
    assert {"price", "shortage", "myanmar_ore_flow"} <= set(df["variable"])
    with page.expect_download(timeout=UPDATE_TIMEOUT_MS) as dl:
        page.locator(".ree-export-prices").click()
    assert dl.value.suggested_filename == "baseline_seed0_prices.png"
    data = open(dl.value.path(), "rb").read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    from PIL import Image

    assert Image.open(io.BytesIO(data)).size[0] > 500
    tab.check_clean()
