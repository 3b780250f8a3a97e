"""A closed or reloaded tab frees its session on the server (issue 15: closed tabs kept playing to their
horizon, and Solara kept their sessions for 24 h).

The server reports its own count of open pages and running Play loops (:data:`ui.play.STATUS`) to the file
named by ``REE_STATUS_FILE``; the tests wait until that count says the loop stopped. Timeouts only guard
against a hang: nothing here judges speed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from model.scenario import load_scenario
from ui.config import RENDER_INTERVAL, SESSION_KEEP
from ui.session import DEFAULT_SCENARIO

pytestmark = pytest.mark.browser

STATE_TIMEOUT_S = 120.0  # a hang guard on a loaded machine, not a speed limit
# a tab whose close beacon is lost (a browser context closed with its page, on a loaded machine) is freed by the
# server's fallback, Solara's cull after SESSION_KEEP: a wait that may end that way must outlast the fallback
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
CULL_TIMEOUT_S = float(SESSION_KEEP[:-1]) * _UNITS[SESSION_KEEP[-1]] + STATE_TIMEOUT_S
HORIZON = load_scenario(DEFAULT_SCENARIO).weeks  # the page's first run: Play stops there by itself
LAST_WEEK = "() => { const m = /week (\\d+)/.exec(document.querySelector('.ree-date').textContent); return +m[1]; }"


@pytest.fixture(scope="module")
def status_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("status") / "status.json"


@pytest.fixture(scope="module")
def app_url(serve, status_file) -> str:
    return serve("app.py", REE_STATUS_FILE=str(status_file))


def server_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def wait_status(path: Path, ok, what: str, timeout_s: float = STATE_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = server_status(path)
        if status and ok(status):
            return status
        time.sleep(0.2)
    pytest.fail(f"the server never reported {what}: {server_status(path)}\n{server_stacks(path)}")


def server_stacks(path: Path) -> str:
    """Every thread's stack in the server (it dumps them on SIGUSR1: :func:`ui.play.dump_stacks_on_signal`)."""
    stacks = Path(f"{path}.stacks")
    try:
        os.kill(int(Path(f"{path}.pid").read_text()), signal.SIGUSR1)
    except (OSError, ValueError) as exc:
        return f"(no stacks: {exc})"
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not stacks.stat().st_size:
        time.sleep(0.2)
    time.sleep(0.5)  # the dump is written at once; let it finish
    return "the server's threads:\n" + stacks.read_text()[-20000:]


def play(page) -> None:
    page.get_by_role("button", name="▶", exact=True).click()
    page.wait_for_function(f"() => ({LAST_WEEK})() >= {2 * RENDER_INTERVAL}", timeout=STATE_TIMEOUT_S * 1000)


@pytest.mark.parametrize("leave", ["close", "reload"])
def test_leaving_a_playing_tab_stops_its_loop_and_frees_its_page(app_url, open_page, status_file, leave):
    """A tab playing next to another: closing (or reloading) it stops its loop and closes its page on the
    server, while the other tab plays on."""
    stays, leaves = open_page(app_url), open_page(app_url)
    before = wait_status(status_file, lambda s: s["pages"] >= 2, "two open pages")
    play(stays.page)
    play(leaves.page)
    playing = wait_status(status_file, lambda s: s["loops"] >= 2, "two Play loops")
    if leave == "close":
        leaves.page.close()  # the tab's pagehide beacon tells Solara; its kernel closes
    else:
        leaves.page.reload()
        leaves.page.get_by_role("button", name="Step", exact=True).wait_for()
    after = wait_status(status_file, lambda s: s["pages_closed"] >= before["pages_closed"] + 1
                        and s["loops_ended"] >= playing["loops_ended"] + 1, "the left tab's loop stopped")
    if after["loops"] == playing["loops"] - 1:
        # the other tab still plays: its week goes on past what it shows now
        week = stays.page.evaluate(LAST_WEEK)
        stays.page.wait_for_function(f"() => ({LAST_WEEK})() > {week} || ({LAST_WEEK})() >= {HORIZON}",
                                     timeout=STATE_TIMEOUT_S * 1000)
        if stays.page.evaluate(LAST_WEEK) < HORIZON:
            stays.page.get_by_role("button", name="❚❚", exact=True).click()
        wait_status(status_file, lambda s: s["loops"] == after["loops"] - 1, "the paused tab's loop stopped")
    else:
        # the other tab's loop ended too: only because its run reached its horizon first (a fast model can play
        # the whole run before Solara has closed the left tab's page), never because the other tab left
        assert after["loops"] == playing["loops"] - 2, after
        stays.page.wait_for_function(f"() => ({LAST_WEEK})() >= {HORIZON}", timeout=STATE_TIMEOUT_S * 1000)
    stays.check_clean()


def test_closing_every_tab_leaves_no_page_and_no_loop(app_url, browser, status_file):
    """Pages opened and closed by themselves (each its own browser context): none is left on the server."""
    contexts = [browser.new_context() for _ in range(3)]
    for ctx in contexts:
        page = ctx.new_page()
        page.goto(app_url)
        page.get_by_role("button", name="Step", exact=True).wait_for(timeout=STATE_TIMEOUT_S * 1000)
        play(page)
    wait_status(status_file, lambda s: s["loops"] >= 3, "three Play loops")
    for ctx in contexts:
        ctx.pages[0].close()
        ctx.close()
    wait_status(status_file, lambda s: s["pages"] == 0 and s["loops"] == 0, "no page and no loop left",
                timeout_s=CULL_TIMEOUT_S)  # freed by the beacon at once, or by the cull if a beacon was lost
