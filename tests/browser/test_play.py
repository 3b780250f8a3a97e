"""Play on several pages of one server (issue 15: a page froze at week 0 while its model played on to the
horizon, then jumped there with a dead ❚❚ button; runs went past the horizon).

Every assertion is on page state, read in the page: a MutationObserver records each week the header
(``.ree-date``) shows. Timeouts only guard against a page that hangs; nothing here judges speed.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.pages import button
from ui.config import RENDER_INTERVAL

pytestmark = pytest.mark.browser

PAGES = 4
PLAY_TIMEOUT_MS = 300_000  # a hang guard for 4 pages sharing 2 cores, not a speed limit
UPDATE_TIMEOUT_MS = 60_000
HORIZON_SCENARIO = "china_controls_2025"  # 104 weeks: not a multiple of RENDER_INTERVAL

RECORD_WEEKS = """() => { window.__weeks = [];
    const record = () => { const el = document.querySelector('.ree-date'); if (!el) return;
        const m = /week (\\d+)/.exec(el.textContent); if (!m) return;
        const w = parseInt(m[1]); const a = window.__weeks;
        if (a.length === 0 || a[a.length - 1] !== w) a.push(w); };
    record();
    new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
# the header shows a week after `arg`, and the sidebar's clock the same week (the Step landed)
SHOWN_AGREE = """after => { const w = (window.__weeks[window.__weeks.length - 1]);
    const t = document.querySelector('.ree-clock');
    return w > after && t && parseInt(t.dataset.week) === w && t.textContent.startsWith('Week ' + w + ' of '); }"""
LAST_WEEK = "() => window.__weeks[window.__weeks.length - 1]"


def shown_week(page) -> int:
    return int(re.search(r"week (\d+)", page.locator(".ree-date").inner_text()).group(1))


def check_sequence(weeks: list[int], interval: int) -> None:
    """Non-decreasing, and never more than one frame between two weeks the header showed."""
    assert weeks, "the header showed no week"
    steps = [b - a for a, b in zip(weeks, weeks[1:], strict=False)]
    assert all(0 <= d <= interval for d in steps), weeks


def test_play_on_four_pages_never_freezes_and_pauses(app_url, open_page):
    tabs = [open_page(app_url) for _ in range(PAGES)]
    for tab in tabs:
        assert tab.page.get_by_text("Use Threads").count() == 0  # the threaded Play is not offered
        tab.page.evaluate(RECORD_WEEKS)
        assert tab.page.evaluate(LAST_WEEK) == 0
    for tab in tabs:
        button(tab.page, "▶").click()
    target = 2 * RENDER_INTERVAL
    playing = []
    for tab in tabs:  # every page shows its week advancing, frame by frame
        tab.page.wait_for_function(f"() => ({LAST_WEEK})() >= {target}", timeout=PLAY_TIMEOUT_MS)
        # a page that played on to the horizon while the test waited on the others (how far a page gets in
        # that time is a matter of speed, never asserted) is checked by its sequence of weeks below only
        if tab.page.get_by_text("The run reached its horizon").count() == 0:
            button(tab.page, "❚❚").click()  # paused at once: the checks below need the run not yet over
            playing.append(tab)
    assert playing, "every page reached its horizon before the first was checked"
    for tab in playing:
        page = tab.page
        button(page, "▶").wait_for(timeout=UPDATE_TIMEOUT_MS)
        button(page, "Step").wait_for(timeout=UPDATE_TIMEOUT_MS)
        stopped = shown_week(page)
        # paused where the page shows it: the model did not run ahead, so Step goes exactly one frame on
        button(page, "Step").click()
        page.wait_for_function(SHOWN_AGREE, arg=stopped, timeout=UPDATE_TIMEOUT_MS)
        weeks = page.evaluate("window.__weeks")
        assert weeks[-1] - weeks[-2] == RENDER_INTERVAL, weeks
    for tab in tabs:
        weeks = tab.page.evaluate("window.__weeks")
        check_sequence(weeks, RENDER_INTERVAL)
        assert weeks[0] == 0 and len(weeks) >= 3, weeks  # 0, then at least two frames were on the page
        tab.check_clean()


def test_play_stops_exactly_at_the_horizon(app_url, open_page):
    """104 weeks with 5 a frame: the page shows every frame up to week 104, then ▶ again (disabled), and
    says why; the run does not go on to week 105."""
    tab = open_page(app_url)
    page = tab.page
    page.locator(".v-select", has_text="Scenario").click()
    page.get_by_role("option", name=HORIZON_SCENARIO, exact=True).click()
    button(page, "Reset").click()
    page.get_by_text("runs to 4 January 2027").wait_for(timeout=UPDATE_TIMEOUT_MS)
    page.evaluate(RECORD_WEEKS)
    button(page, "▶").click()
    page.get_by_text("The run reached its horizon").wait_for(timeout=PLAY_TIMEOUT_MS)
    button(page, "▶").wait_for(timeout=UPDATE_TIMEOUT_MS)  # not a dead ❚❚
    assert not button(page, "▶").is_enabled() and not button(page, "Step").is_enabled()
    assert shown_week(page) == 104
    page.locator(".ree-clock[data-week='104']", has_text="Week 104 of 104").wait_for(timeout=UPDATE_TIMEOUT_MS)
    weeks = page.evaluate("window.__weeks")
    check_sequence(weeks, RENDER_INTERVAL)
    assert weeks[-1] == 104 and 105 not in weeks, weeks
    tab.check_clean()
