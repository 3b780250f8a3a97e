"""Fixtures for the page tests: our own Solara server on a free port, and Debian's chromium via Playwright.

- ``serve(app)``: starts ``solara run <app>`` on 127.0.0.1 with the offline flags of ../shared/TOOLCHAIN.md
  (production mode, no telemetry, assets from the local cache), waits for ``/readyz`` and returns its URL;
  the server is stopped at the end of the module. Its log goes to ``test-artifacts/browser/``.
- ``browser``: headless chromium from ``/usr/bin/chromium`` (never ``playwright install``); tests skip with
  the reason when it or Playwright is missing (``make test`` installs chromium).
- ``open_page(url)``: a fresh page (its own browser context, so its own Solara session) that records page
  errors and every request; :meth:`Tab.check_clean` fails on a page error or a request leaving 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 2400}  # tall enough that a screenshot shows every panel
SERVER_START_TIMEOUT_S = 60.0
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _solara() -> str:
    exe = Path(sys.executable).with_name("solara")
    return str(exe) if exe.exists() else "solara"


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[..., str]]:
    """Start Solara servers for app files (relative to the repo root); all stop when the module ends."""
    procs: list[tuple[subprocess.Popen, object]] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def start(app: str, **extra_env: str) -> str:
        port = _free_port()
        env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
               "SOLARA_ASSETS_CDN": "http://127.0.0.1:9/",  # a cache miss fails at once instead of going out
               **extra_env}
        log = open(ARTIFACTS / f"server-{Path(app).stem}.log", "w")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [_solara(), "run", app, "--host", "127.0.0.1", "--port", str(port), "--production", "--no-open",
             "--no-check-version"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"solara run {app} exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return url + "/"
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"solara run {app} not ready after {SERVER_START_TIMEOUT_S:.0f} s; see {log.name}")

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def app_url(serve) -> str:
    """The classroom page (``app.py``) served for this module's tests."""
    return serve("app.py")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and measurements go (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (`make browser-deps` or `make test` as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """One open page and what it did: page errors and requests."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        out = []
        for url in self.requests:
            u = urlparse(url)
            if u.scheme in ("blob", "data"):
                inner = urlparse(u.path) if u.scheme == "blob" else None
                if inner is None or inner.hostname in LOCAL_HOSTS:
                    continue
            elif u.hostname in LOCAL_HOSTS:
                continue
            out.append(url)
        return out

    def check_clean(self) -> None:
        assert not self.errors, f"errors in the page: {self.errors}"
        external = self.external_requests()
        assert not external, f"requests left 127.0.0.1: {external[:10]}"

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def page_opener(browser, ready: Callable[[object], None]) -> Iterator[Callable[[str], Tab]]:
    """Open fresh pages (each its own browser context and Solara session) that record page errors and
    requests; ``ready(page)`` waits for the page to be usable. Contexts close when the generator ends."""
    contexts = []

    def open_(url: str) -> Tab:
        ctx = browser.new_context(viewport=VIEWPORT)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        tab = Tab(page)
        page.on("pageerror", lambda e: tab.errors.append(str(e)))
        page.on("request", lambda r: tab.requests.append(r.url))
        page.on("websocket", lambda ws: tab.requests.append(ws.url))
        page.goto(url)
        ready(page)
        return tab

    yield open_
    for ctx in contexts:
        ctx.close()


def _classroom_ready(page) -> None:
    page.get_by_role("button", name="Step", exact=True).wait_for()
    page.locator("div.ree-prices svg path.ree-line").first.wait_for(state="attached")  # week 0: one point


@pytest.fixture
def open_page(browser) -> Iterator[Callable[[str], Tab]]:
    yield from page_opener(browser, _classroom_ready)
