"""The team game in headless chromium: a game master's page and six team pages on one server play a round.

The master creates a game on ``/game``; six teams open ``/team?game=...&team=...``; the United States orders
a stockpile and China closes its border, each on its own page; the master sees both orders and who is done,
advances, and every team page shows the new round, the scoreboard and the event log. Every wait is on the
page's state. Screenshots of the master's and a team's page go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import page_opener
from tests.browser.pages import button
from ui.game import TEAMS

pytestmark = pytest.mark.browser
TIMEOUT_MS = 60_000  # a guard against a page that never updates, not a speed limit
CODE = "class-a"


def expect():
    from playwright.sync_api import expect as e

    return e


@pytest.fixture(scope="module")
def url(serve) -> str:
    return serve("app.py")


@pytest.fixture
def open_page(browser):
    """As the classroom page's ``open_page``, but ready when the page's app bar shows (the game pages have no
    Step button)."""
    yield from page_opener(browser, lambda page: page.locator(".v-toolbar__title").first.wait_for(timeout=TIMEOUT_MS))


def test_a_master_and_six_teams_play_a_round(url, open_page):
    e = expect()
    master = open_page(url + "game")
    p = master.page
    button(p, "Create game").wait_for(timeout=TIMEOUT_MS)
    code = p.get_by_label("Game code (teams type it to join)")
    code.fill(CODE)
    code.press("Enter")
    button(p, "Create game").click()
    e(p.locator(".game-round")).to_contain_text("Round 1 of 8", timeout=TIMEOUT_MS)
    for sid in TEAMS:  # the master's page links every team's page
        e(p.locator(f".game-teams tr[data-team='{sid}'] a")).to_have_attribute(
            "href", f"/team?game={CODE}&team={sid}")

    teams = {sid: open_page(url + f"team?game={CODE}&team={sid}") for sid in TEAMS}
    for tab in teams.values():
        e(tab.page.locator(".game-round")).to_contain_text("Round 1 of 8", timeout=TIMEOUT_MS)
        e(tab.page.locator(".game-budget")).to_contain_text("US$ 500 M of US$ 500 M", timeout=TIMEOUT_MS)
    us, cn = teams["US"].page, teams["CN"].page
    assert button(cn, "Build a stockpile").count() == 0  # China's page has China's levers only
    assert button(us, "Close the Myanmar border").count() == 0

    button(us, "Build a stockpile").click()
    e(us.locator(".game-orders")).to_contain_text("stockpile agency", timeout=TIMEOUT_MS)
    e(us.locator(".game-budget")).to_contain_text("US$ 350 M of US$ 500 M", timeout=TIMEOUT_MS)
    button(us, "Done for this round").click()
    button(cn, "Close the Myanmar border").click()
    e(button(cn, "Reopen the Myanmar border")).to_be_visible(timeout=TIMEOUT_MS)
    e(cn.locator(".game-orders")).to_contain_text("China closes its border with Myanmar", timeout=TIMEOUT_MS)

    # the master sees both orders and who is done, from other sessions, without reloading
    e(p.locator(".game-orders")).to_contain_text("stockpile agency", timeout=TIMEOUT_MS)
    e(p.locator(".game-orders")).to_contain_text("China closes its border with Myanmar", timeout=TIMEOUT_MS)
    e(p.locator(".game-teams tr[data-team='US']")).to_contain_text("done", timeout=TIMEOUT_MS)
    e(p.locator(".game-teams tr[data-team='CN']")).to_contain_text("1 order", timeout=TIMEOUT_MS)

    button(p, "Advance round").click()
    e(p.locator(".game-round")).to_contain_text("Round 2 of 8", timeout=TIMEOUT_MS)
    e(p.locator(".game-board[data-round='1']")).to_be_visible(timeout=TIMEOUT_MS)
    for tab in teams.values():  # every team's page follows, and shows the scoreboard of round 1
        e(tab.page.locator(".game-round")).to_contain_text("Round 2 of 8", timeout=TIMEOUT_MS)
        board = tab.page.locator(".game-board[data-round='1']")
        e(board).to_be_visible(timeout=TIMEOUT_MS)
        for other in TEAMS:
            e(board.locator(f"tr[data-team='{other}']")).to_have_count(1)
    e(us.locator(".game-board tr[data-team='US']")).to_contain_text("US$ 150 M of US$ 500 M")
    e(us.locator(".game-log")).to_contain_text("China closes its border with Myanmar")
    e(us.locator(".game-log")).to_contain_text("stockpile agency")
    e(us.locator(".game-orders")).to_contain_text("None yet")
    e(button(us, "Done for this round")).to_be_visible()  # a new round: nobody is done
    e(p.locator(".game-world")).to_contain_text("China's export revenue: US$")
    e(us.locator("img")).to_have_count(1)  # the price chart, drawn after the first round

    master.screenshot("game-master")
    teams["US"].screenshot("game-team-us")
    for tab in [master, *teams.values()]:
        tab.check_clean()


def test_a_team_joins_with_the_code_and_an_order_over_budget_is_refused(url, open_page):
    e = expect()
    tab = open_page(url + "game")
    p = tab.page
    button(p, "Create game").wait_for(timeout=TIMEOUT_MS)
    for label, value in (("Game code (teams type it to join)", "class-b"), ("Budget per team (US$ M)", "100")):
        box = p.get_by_label(label)
        box.fill(value)
        box.press("Enter")
    button(p, "Create game").click()
    e(p.locator(".game-round")).to_contain_text("Round 1 of 8", timeout=TIMEOUT_MS)

    team = open_page(url + "team")
    t = team.page
    code = t.get_by_label("Game code (from your teacher)")
    code.fill("class-b")
    code.press("Enter")
    button(t, "Join as Japan").click()
    e(t.locator(".game-budget")).to_contain_text("US$ 100 M of US$ 100 M", timeout=TIMEOUT_MS)
    button(t, "Fund it").click()
    e(t.get_by_text("Not enough budget")).to_be_visible(timeout=TIMEOUT_MS)
    e(t.locator(".game-orders")).to_contain_text("None yet")
    e(p.locator(".game-teams tr[data-team='JP']")).to_contain_text("0 orders")
    tab.check_clean()
    team.check_clean()
