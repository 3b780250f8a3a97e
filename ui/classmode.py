"""Class mode (issue 15 item 3): a teacher's page drives one run, students follow it live and read-only.

- **The registry.** *Start class mode* on a page registers it in :data:`REGISTRY` (module level, one per
  server process, thread-safe) under a short code (:func:`new_code`). Students open the follow link,
  ``/?follow=CODE`` (a query parameter of the one page: the app has a single ``Page`` and Solara's router
  hands it the query string, :func:`follow_code`), and see :func:`FollowPage`: no control that changes the
  run, only the projector view.
- **One view, published by the teacher.** The teacher's page builds a :class:`ClassView` of its model after
  each frame (:meth:`ClassRun.publish`, in the teacher's own render, when the model is not being stepped):
  the charts' specs as immutable data, the week shown, the latest events. Followers only read that object
  (a reference swapped under a lock): they never touch the teacher's model and never step it. Each follower
  waits in a thread of its own session for the run's version to change (:meth:`ClassRun.wait_newer`) and
  then redraws, so it follows Step and Play without polling the model. The teacher's projector layout
  shows the same object, so followers see exactly what the teacher shows.
- **Freed on close.** The run leaves the registry, drops its model and tells its followers when the
  teacher presses *Stop class mode* or the teacher's page closes (:meth:`ui.play.PageSession.on_close`).
- **Projector layout** (:func:`ProjectorView`): a 2x2 grid (prices, Myanmar ore flow, unmet need,
  stockpiles) or one chart at a time, sized to fit 1280x720 with chart text of at least
  :data:`MIN_TEXT_PX` pixels (the charts' SVG boxes are small, :data:`GRID_BOX`, so the browser scales them
  up), black text on white, thick lines.
- **Pause at the next event** (:func:`event_stop`, used by Step and Play through :func:`ui.play.advance`):
  the frame is stepped week by week and ends at the first week that logged an event the class did not
  cause itself.
- **Scrubber**: the teacher shows the charts as of any week already computed (:class:`Window` over the
  page's :class:`~ui.history.History`); the model is not touched. Stepping on returns to the live week.
- **Overlay**: "the same run without my interventions", a twin model of the same scenario, seed and
  start-of-run switches (``ClassroomModel.start_items``) with no intervention, stepped lazily to the week
  shown and cached per teacher model; its prices are dashed on the price chart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

import numpy as np
import solara
from mesa.visualization.utils import update_counter

from model.results import OUTPUTS
from ui import charts, webcharts
from ui.history import History
from ui.panels import Dashboard, default_price_products, myanmar_corridors, place_names, story_product
from ui.play import FrameGate, PageSession
from ui.session import ClassroomModel
from ui.words import SOURCE_CLASS, Told, date_words, markers

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
CODE_LENGTH = 4
FOLLOW_PARAM = "follow"
WAIT_S = 1.0  # a follower's watch loop looks this often whether its own page closed
MIN_TEXT_PX = 18  # the projector layout's smallest chart text at 1280x720 (tests/browser/test_classmode.py)
GRID = "grid"
GRID_LABEL = "2x2"
# the projector's charts: name -> what the teacher's picker calls it
CHARTS: dict[str, str] = {"prices": "Prices", "flows": "Myanmar ore flow", "shortage": "Unmet need",
                          "stockpile": "Stockpiles", "share": "China's share"}
GRID_CHARTS = ("prices", "flows", "shortage", "stockpile")
# SVG boxes of the projector charts (viewBox units): drawn ~1.55x (grid) and ~1.55x (one chart) at
# 1280x720, so webchart.vue's 12-unit tick labels are >= 18 px
GRID_BOX = {"w": 390, "h": 156, "left": 44, "right": 8, "top": 8, "bottom": 40, "gap": 0}
BIG_BOX = {"w": 790, "h": 300, "left": 44, "right": 8, "top": 24, "bottom": 40, "gap": 36}
LIVE_WIDTH = 3.4  # line widths in the projector (viewBox units)
TWIN_WIDTH = 2.6
HEADROOM = 1.3  # room above the data for the events' labels (drawn large, they would hide the lines)
TWIN_NAME = "dashed: no interventions"


# ============================================================================ pause at the next event
def new_event(m: ClassroomModel) -> bool:
    """Whether the week just stepped logged an event the class did not cause (a scenario's policy, a start
    switch, a plant coming online, a lender's choice): the class's own changes do not pause the run."""
    week = int(m.steps)
    for t in reversed(m.told):  # told in order: this week's lines are at the end
        if t.week != week:
            break
        if t.source != SOURCE_CLASS:
            return True
    return False


def event_stop(enabled: Callable[[], bool]) -> Callable[[ClassroomModel], bool]:
    """The ``stop`` of :func:`ui.play.advance` / :func:`ui.play.play_loop`: after each week, stop there if
    ``enabled()`` (the page's switch, read week by week) and the week had a new event."""
    return lambda m: bool(enabled()) and new_event(m)


@solara.component
def PauseAtEvent(value: solara.Reactive[bool]):
    solara.Switch(label="Pause at the next event", value=value, classes=["ree-pause-at-event"])


# ==================================================================================== history windows
class Window:
    """A :class:`~ui.history.History` as of its first ``n`` steps (weeks 0..n-1), read-only: what the charts
    showed at week n-1. Regions that first appear later are left out."""

    def __init__(self, history: History, n: int) -> None:
        self.h = history
        self.n = max(0, min(int(n), history.n_steps))

    @property
    def n_steps(self) -> int:
        return self.n

    @property
    def dates(self) -> list[dt.date]:
        return self.h.dates[: self.n]

    def regions(self, variable: str, product: str | None = None) -> list[str]:
        return [r for r in self.h.regions(variable, product) if self._first_step(variable, r, product) < self.n]

    def _first_step(self, variable: str, region: str, product: str | None) -> int:
        keys = [k for k in self.h._rows if k[0] == variable and k[1] == region and (product is None or k[2] == product)]
        return min((self.h._rows[k][0][0] for k in keys if self.h._rows[k][0]), default=self.n)

    def series(self, variable: str, region: str = "", product: str = "", fill: float = np.nan) -> np.ndarray:
        return self.h.series(variable, region, product, fill)[: self.n]

    def dates_array(self) -> np.ndarray:
        return self.h.dates_array()[: self.n]

    def x(self) -> np.ndarray:
        return self.h.x()[: self.n]


# ========================================================================================= the twin run
class FrozenSetup:
    """Start-of-run switches as a model was built with them (``ClassroomModel.start_items``): the twin run
    gets fresh copies of the same items, whatever the page's switches say now."""

    def __init__(self, items: Sequence, summary: str) -> None:
        self._items, self._summary = tuple(items), summary

    def items(self, start: dt.date) -> list:
        return [x.model_copy(deep=True) for x in self._items]

    def summary(self) -> str:
        return self._summary


def twin_of(model: ClassroomModel) -> ClassroomModel:
    """The same scenario, seed and start-of-run switches as ``model``, without any intervention."""
    return type(model)(model.scenario_name, model.seed, FrozenSetup(model.start_items, model.setup_summary))


def made_changes(model: ClassroomModel) -> bool:
    """Whether the class changed this run (so the twin differs from it)."""
    return any(t.source == SOURCE_CLASS for t in model.told)


# ============================================================================================ the view
@dataclass(frozen=True)
class ViewState:
    """What the teacher chose to show: a week already computed (None: the live week), the layout (``grid``
    or one chart's name) and the overlay."""

    view_week: int | None = None
    layout: str = GRID
    overlay: bool = False


@dataclass(frozen=True)
class Cell:
    name: str
    title: str
    spec: webcharts.Sealed | None
    error: str = ""


@dataclass(frozen=True)
class ClassView:
    """Everything the projector layout shows, as immutable data (teacher and followers render this)."""

    code: str
    version: int
    scenario: str
    seed: int
    week: int  # the run's week (live)
    weeks: int
    view_week: int  # the week shown (the scrubber's, else the live week)
    date: dt.date
    layout: str
    cells: tuple[Cell, ...]
    events: tuple[Told, ...]  # the latest events up to the week shown, newest first
    status: str = ""  # the horizon, or an error
    overlay: str = ""  # what the overlay shows ("" when off)


def _projector(spec: dict, box: dict, max_yticks: int = 5) -> dict:
    """A chart spec in a projector box: no y label (the cell's title says it), fewer y ticks, thick lines,
    room for the events' labels above the data."""
    panels = []
    for p in spec["panels"]:
        ticks = p.get("yticks", [])
        while len(ticks) > max_yticks:
            ticks = ticks[::2]
        series = [{**s, "width": max(float(s.get("width", 1.8)), LIVE_WIDTH)} for s in p["series"]]
        top = p["ymax"] if p.get("log") else p["ymin"] + (p["ymax"] - p["ymin"]) * HEADROOM
        panels.append({**p, "ymax": top, "yticks": ticks, "series": series})
    legend = [{**x, "width": max(float(x.get("width", 1.8)), LIVE_WIDTH)} for x in spec.get("legend", [])]
    return {**spec, **box, "ylabel": "", "panels": panels, "legend": legend}


def price_spec(h, markets: charts.Markets, twin: Window | None, box: dict) -> dict:
    """Prices for the projector: a panel per product, a solid line per market region, and with ``twin`` the
    same run without the class's changes dashed in the same colour."""
    regions = list(markets.regions)
    colour = {r: webcharts.REGION_COLOURS[i % len(webcharts.REGION_COLOURS)] for i, r in enumerate(regions)}
    panels = []
    for prod in markets.products:
        ys = [h.series("price", r, prod) for r in regions]
        ts = [twin.series("price", r, prod) for r in regions] if twin is not None else []
        y = webcharts._y_axis(ys + ts, headroom=HEADROOM)
        series = [{"name": f"{markets.name(r)} without the class's changes", "color": colour[r], "dash": "--",
                   "width": TWIN_WIDTH, "y": webcharts._values(v, y["ymax"])}
                  for r, v in zip(regions, ts, strict=True)] if twin is not None else []
        series += [{"name": markets.name(r), "color": colour[r], "dash": "-", "width": LIVE_WIDTH, "dot": True,
                    "y": webcharts._values(v, y["ymax"])} for r, v in zip(regions, ys, strict=True)]
        panels.append({**y, "title": str(prod) if len(markets.products) > 1 else "", "series": series})
    legend = [{"name": markets.name(r), "color": colour[r], "dash": "-", "width": LIVE_WIDTH} for r in regions]
    if twin is not None:
        legend.append({"name": TWIN_NAME, "color": "#333333", "dash": "--", "width": TWIN_WIDTH})
    n = len(panels)
    return {**box, "gap": box["gap"] if n > 1 else 0, **webcharts._x_axis(h, 4 if n > 2 else 6), "ylabel": "",
            "panels": panels, "legend": legend}


def _unit(variable: str) -> str:
    return OUTPUTS[variable].unit


def chart_cell(name: str, m: ClassroomModel, h, marks, twin: Window | None, big: bool) -> Cell:
    """One chart of the projector, built from the history window ``h`` (never the live model's state,
    except the names in its world); a chart that fails says so in its cell."""
    box = BIG_BOX if big else GRID_BOX
    prod = story_product(m)
    try:
        if name == "prices":
            products = tuple(default_price_products(m.products)) if big else (prod,)
            markets = dataclasses.replace(charts.Markets.of(m), products=products)
            what = "" if big else f" of {prod}"
            title = f"Price{what}, {_unit('price')}: {' and '.join(markets.names)}"
            spec = price_spec(h, markets, twin, box)
        elif name == "flows":
            title = f"{OUTPUTS['myanmar_ore_flow'].label}, {_unit('myanmar_ore_flow')}"
            spec = _projector(webcharts.flow_spec(h, myanmar_corridors(m)), box)
        elif name == "shortage":
            title = f"{OUTPUTS['shortage'].label} for {prod} by buyer region, {_unit('shortage')}"
            spec = _projector(webcharts.region_lines_spec(h, "shortage", prod, place_names(m)), box)
        elif name == "stockpile":
            title = f"State stockpiles of {prod}, {_unit('stockpile')}"
            spec = _projector(webcharts.region_lines_spec(h, "stockpile", prod, place_names(m),
                                                          charts.STOCKPILE_EMPTY), box)
        elif name == "share":
            title = OUTPUTS["china_refined_share"].label
            refined = [p for p in m.products if m.world.product(p).stage == "oxide"]
            spec = _projector(webcharts.share_spec(h, refined), box)
        else:
            raise KeyError(f"no projector chart {name!r}")
        return Cell(name, title, webcharts.Sealed({**webcharts.with_markers(spec, h, marks), "week": h.n_steps - 1}))
    except Exception as exc:  # noqa: BLE001 - one broken chart must not take the view down
        log.exception("projector chart %s failed", name)
        return Cell(name, CHARTS.get(name, name), None, f"{type(exc).__name__}: {exc}")


# ========================================================================================= the registry
def new_code(taken: Callable[[str], bool] = lambda c: False) -> str:
    """A short code not ``taken`` (letters and digits that cannot be mistaken for one another)."""
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not taken(code):
            return code


def follow_code(search: str | None) -> str | None:
    """The class code of a follow link's query string (``follow=CODE``), upper-cased; None if there is none."""
    values = parse_qs(search or "").get(FOLLOW_PARAM)
    return values[0].strip().upper() if values and values[0].strip() else None


class ClassRun:
    """One class run: the teacher's model as last published, its views and followers. The teacher's page
    calls :meth:`publish`; followers call only :meth:`wait_newer` and read :attr:`view`."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._cond = threading.Condition()  # guards everything below
        self.version = 0
        self.closed = False
        self.followers = 0
        self.view: ClassView | None = None
        self._model: ClassroomModel | None = None
        self._history: History | None = None
        self._twin: ClassroomModel | None = None
        self._twin_history: History | None = None

    @property
    def model(self) -> ClassroomModel | None:
        return self._model

    def publish(self, model: ClassroomModel, state: ViewState = ViewState()) -> ClassView | None:
        """Build the view of ``model`` as the teacher shows it (by the teacher's page, between frames) and
        wake the followers. A new model (Reset) starts a new history and a new twin."""
        with self._cond:
            if self.closed:
                return None
            if model is not self._model:
                self._model, self._history = model, History()
                self._twin, self._twin_history = None, None
            self._history.update(model)
            self.version += 1
            self.view = self._build(model, state)
            self._cond.notify_all()
            return self.view

    def _twin_window(self, model: ClassroomModel, week: int) -> tuple[Window | None, str]:
        """The twin's prices up to ``week`` (stepped now as far as needed, kept for the next frames)."""
        if self._twin is None:
            self._twin, self._twin_history = twin_of(model), History()
        twin = self._twin
        while int(twin.steps) < week and twin.running:
            twin.step()
        self._twin_history.update(twin)
        if twin.error is not None:
            return None, f"The run without the class's changes stopped in week {twin.error.week}."
        note = ("Dashed: the same run without the class's changes" if made_changes(model) else
                "Dashed: the same run without the class's changes (none yet, so the lines coincide)")
        return Window(self._twin_history, week + 1), note

    def _build(self, m: ClassroomModel, state: ViewState) -> ClassView:
        week = int(m.steps)
        shown = week if state.view_week is None else max(0, min(int(state.view_week), week))
        h = Window(self._history, shown + 1)
        told = [t for t in m.told if t.week <= shown]
        marks = tuple(markers(told))
        twin, overlay = (None, "")
        if state.overlay:
            try:
                twin, overlay = self._twin_window(m, shown)
            except Exception as exc:  # noqa: BLE001 - the overlay is an extra: the view goes on without it
                log.exception("twin run failed")
                twin, overlay = None, f"The run without the class's changes could not be built: {exc}"
        layout = state.layout if state.layout in CHARTS else GRID
        names = GRID_CHARTS if layout == GRID else (layout,)
        cells = tuple(chart_cell(n, m, h, marks, twin, big=layout != GRID) for n in names)
        if m.error is not None:
            status = f"The model stopped in week {m.error.week}: {m.error.message}"
        elif not m.running and shown == week:
            status = f"The run reached its horizon ({date_words(m.spec.end)})."
        else:
            status = ""
        date = self._history.dates[shown] if shown < self._history.n_steps else m.date
        return ClassView(self.code, self.version, m.scenario_name, m.seed, week, m.weeks, shown, date, layout, cells,
                         tuple(reversed(told[-3:])), status, overlay)

    def wait_newer(self, seen: int, timeout: float) -> int:
        """Wait until the version differs from ``seen`` (a new view) or the run closes; returns the version."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen or self.closed, timeout)
            return self.version

    def follow(self, delta: int) -> None:
        with self._cond:
            self.followers += delta

    def close(self) -> None:
        """End the run: drop the model and its twin, wake the followers (they say the run ended)."""
        with self._cond:
            self.closed = True
            self._model = self._history = self._twin = self._twin_history = None
            self.view = None
            self._cond.notify_all()


class Registry:
    """Class runs by code (module level, shared by every page of the server process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, ClassRun] = {}

    def create(self, code: str | None = None) -> ClassRun:
        with self._lock:
            code = code or new_code(lambda c: c in self._runs)
            if code in self._runs:
                raise ValueError(f"class code {code} is in use")
            run = self._runs[code] = ClassRun(code)
        log.info("class run %s started", code)
        return run

    def get(self, code: str | None) -> ClassRun | None:
        with self._lock:
            return self._runs.get((code or "").upper())

    def close(self, code: str) -> None:
        with self._lock:
            run = self._runs.pop(code, None)
        if run is not None:
            run.close()
            log.info("class run %s closed", code)

    def codes(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)


REGISTRY = Registry()


# ====================================================================================== the components
PROJECTOR_CSS = f"""
.ree-projector {{ background: #ffffff; color: #000000; padding: 2px 10px 0 10px; }}
.ree-projector-head {{ font-size: 22px; line-height: 1.25; color: #000; display: flex; flex-wrap: wrap;
  gap: 0 18px; align-items: baseline; }}
.ree-projector-head b {{ font-size: 24px; }}
.ree-projector-event {{ font-size: {MIN_TEXT_PX}px; line-height: 1.3; color: #000; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }}
.ree-projector-event .ree-src-class {{ color: #a34700; font-weight: 700; }}
.ree-projector-grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; }}
.ree-projector-one {{ display: block; max-width: 1260px; }}
.ree-projector-cell {{ min-width: 0; border-top: 3px solid #000; padding-top: 2px; }}
.ree-projector-title {{ font-size: 20px; font-weight: 700; color: #000; line-height: 1.2; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }}
.ree-projector .ree-legend {{ font-size: {MIN_TEXT_PX}px !important; color: #000; gap: 0 16px !important;
  line-height: 1.2 !important; }}
.ree-projector svg text:not(.ree-marker-label) {{ fill: #000000; }}
.ree-projector svg rect {{ stroke: #000000; }}
.ree-projector-note {{ font-size: {MIN_TEXT_PX}px; color: #000; }}
#app div:has(> b > a[href="https://solara.dev"]) {{ display: none; }}
"""


def event_line(t: Told) -> str:
    who = {"class": "your class", "start": "start switch", "scenario": "scenario"}.get(t.source, "")
    when = f"{t.date.day} {t.date.strftime('%b')} {t.date.year}, week {t.week}" if t.date is not None else ""
    return (f"<div class='ree-projector-event'><b>{html.escape(when)}</b>"
            f"<span class='ree-src-{t.source}'>{' — ' + who if who else ''}</span>: {html.escape(t.text)}</div>")


@solara.component
def ProjectorView(view: ClassView | None):
    """The projector layout of a class run's view (the teacher's preview and every follower's page):
    ``div.ree-projector`` with ``data-week`` (the week shown), ``data-live-week`` and ``data-version``."""
    solara.Style(PROJECTOR_CSS)
    if view is None:
        solara.Info("Waiting for the teacher's page to show the run.")
        return
    back = view.view_week != view.week
    head = (f"<b>{html.escape(view.scenario)}</b><span class='ree-projector-week'>week {view.view_week} of "
            f"{view.weeks} · {date_words(view.date)}</span>"
            + (f"<span style='color:#a34700;font-weight:700'>looking back: the run is at week {view.week}</span>"
               if back else "")
            + f"<span style='font-size:18px'>class {view.code} · seed {view.seed}</span>")
    events = "".join(event_line(t) for t in view.events[:1]) or (
        "<div class='ree-projector-event' style='color:#333'>No events yet.</div>")
    with solara.v.Html(tag="div", class_="ree-projector", attributes={
            "data-week": str(view.view_week), "data-live-week": str(view.week), "data-version": str(view.version),
            "data-layout": view.layout, "data-overlay": view.overlay}):
        solara.HTML(tag="div", classes=["ree-projector-head"], unsafe_innerHTML=head)
        solara.HTML(tag="div", unsafe_innerHTML=events)
        if view.status:
            solara.HTML(tag="div", classes=["ree-projector-note"], unsafe_innerHTML=f"<b>{html.escape(view.status)}</b>")
        if view.overlay and not view.overlay.startswith("Dashed"):  # the overlay failed: say why
            solara.HTML(tag="div", classes=["ree-projector-note"], unsafe_innerHTML=html.escape(view.overlay))
        with solara.v.Html(tag="div", class_="ree-projector-grid" if view.layout == GRID else "ree-projector-one"):
            for cell in view.cells:
                with solara.v.Html(tag="div", class_="ree-projector-cell", attributes={"data-chart": cell.name}):
                    solara.HTML(tag="div", classes=["ree-projector-title"], unsafe_innerHTML=html.escape(cell.title))
                    if cell.spec is None:
                        solara.Error(f"This chart could not be drawn: {cell.error}")
                    else:
                        webcharts.WebChart(spec=cell.spec, name=f"proj-{cell.name}")


@dataclass
class ClassMode:
    """A teacher page's class-mode state (:func:`use_class_mode`)."""

    session: PageSession
    run: solara.Reactive[ClassRun | None]
    projector: solara.Reactive[bool]
    layout: solara.Reactive[str]
    overlay: solara.Reactive[bool]
    scrub: solara.Reactive[tuple[int, int] | None]  # (week shown, the live week when it was chosen)

    def start(self) -> ClassRun:
        if self.run.value is not None:
            return self.run.value
        run = REGISTRY.create()
        self.session.on_close(lambda: REGISTRY.close(run.code))  # the tab closes: the run is freed
        self.run.set(run)
        self.projector.set(True)
        return run

    def stop(self) -> None:
        run = self.run.value
        if run is not None:
            REGISTRY.close(run.code)
        self.run.set(None)
        self.projector.set(False)
        self.scrub.set(None)

    def state(self, live_week: int) -> ViewState:
        """What the page publishes: in the full layout the live week (the teacher sees no scrubber there)."""
        s = self.scrub.value
        shown = s[0] if (self.projector.value and s is not None and s[1] == live_week) else None
        return ViewState(shown, self.layout.value, self.overlay.value)


def use_class_mode(session: PageSession) -> ClassMode:
    return ClassMode(session, solara.use_reactive(None), solara.use_reactive(False), solara.use_reactive(GRID),
                     solara.use_reactive(False), solara.use_reactive(None))


@solara.component_vue("followlink.vue")
def FollowLink(code: str):
    """The follow link as the students' browsers would open it: this page's own address (the browser knows
    it, the server does not) with ``?follow=CODE``."""


@solara.component
def ClassCard(mode: ClassMode):
    """The sidebar card: start or stop class mode, the code and follow link, the projector layout switch."""
    update_counter.get()  # the number of followers follows the frames
    run = mode.run.value
    with solara.Card("Class mode", style={"margin": "0 0 10px 0"}):
        if run is None:
            solara.Text("Students follow this run live on their own screens, read-only, in a projector layout.",
                        style={"font-size": "0.85em", "color": "#444"})
            solara.Button("Start class mode", color="primary", on_click=mode.start, classes=["ree-class-start"])
            return
        solara.HTML(tag="div", classes=["ree-class-code"], attributes={"data-code": run.code}, unsafe_innerHTML=(
            f"Class code <b style='font-size:1.6em;letter-spacing:0.08em'>{run.code}</b>"
            f"<span style='color:#555'> · {run.followers} following</span>"))
        solara.Text("Students open:", style={"font-size": "0.85em", "color": "#444"})
        FollowLink(code=run.code)
        solara.Switch(label="Projector layout (what students see)", value=mode.projector,
                      classes=["ree-class-projector"])
        solara.Button("Stop class mode", color="secondary", outlined=True, on_click=mode.stop,
                      classes=["ree-class-stop"])


@solara.component
def TeacherControls(mode: ClassMode, view: ClassView):
    """Over the teacher's projector view: the scrubber, the layout, the overlay."""
    live = view.week

    def scrub_to(w: int) -> None:
        mode.scrub.set(None if int(w) >= live else (int(w), live))

    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap", "gap": "6px 16px", "padding": "4px 10px"},
                    classes=["ree-class-controls"]):
        if live > 0:
            with solara.Div(style={"min-width": "320px", "flex": "1 1 320px"}, classes=["ree-class-scrub"]):
                solara.SliderInt(f"Show week {view.view_week} of {live} computed", value=view.view_week, min=0,
                                 max=live, on_value=scrub_to)
        solara.Button("Live", on_click=lambda: mode.scrub.set(None), disabled=view.view_week == live, outlined=True,
                      classes=["ree-class-live"])
        labels = {GRID: GRID_LABEL, **CHARTS}
        solara.ToggleButtonsSingle(value=labels.get(mode.layout.value, GRID_LABEL),
                                   on_value=lambda label: mode.layout.set(next(k for k, v in labels.items() if v == label)),
                                   values=list(labels.values()), dense=True, classes=["ree-class-layout"])
        solara.Switch(label="Overlay: the same run without my interventions", value=mode.overlay,
                      classes=["ree-class-overlay"])


@solara.component
def ClassMain(model: solara.Reactive[ClassroomModel], setup, gate: FrameGate, mode: ClassMode):
    """The teacher page's main area: its dashboard, or in class mode's projector layout the view the
    followers see; in class mode it publishes the view after each frame (:meth:`ClassRun.publish`)."""
    update_counter.get()  # every frame
    m = model.value
    week = int(m.steps)
    run = mode.run.value
    projector = run is not None and mode.projector.value
    state = mode.state(week)
    view = solara.use_memo(lambda: run.publish(m, state) if run is not None else None,
                           [run, m, week, m.running, m.error, state])
    solara.use_effect(lambda: gate.shown(m, week) if projector else None)  # the Play loop waits for it
    if projector and view is not None:
        TeacherControls(mode, view)
        ProjectorView(view)
    else:
        Dashboard(model, setup, gate)


@solara.component
def FollowPage(code: str):
    """A student's page: the class run ``code`` in the projector layout, live and read-only. A thread of this
    page's session waits for the teacher's next view (never stepping anything) and redraws."""
    session = solara.use_memo(PageSession, [])
    solara.use_memo(session.attach_to_kernel, [])
    solara.use_effect(lambda: session.close, [])
    run = solara.use_memo(lambda: REGISTRY.get(code), [code])
    version = solara.use_reactive(run.version if run is not None else -1)
    ended = solara.use_reactive(False)

    def watch() -> None:
        if run is None:
            return
        run.follow(1)
        try:
            seen = version.value
            while not session.closed.is_set():
                v = run.wait_newer(seen, WAIT_S)
                if run.closed:
                    ended.set(True)
                    return
                if v != seen:
                    seen = v
                    version.set(v)
        finally:
            run.follow(-1)

    solara.lab.use_task(watch, dependencies=[code], prefer_threaded=True)
    version.value  # noqa: B018 - read: a new version redraws this page
    if run is None:
        solara.Error(f"There is no class run with the code {code}. Check the code on the teacher's screen "
                     "(the run ends when the teacher stops class mode or closes the page).", classes=["ree-follow-missing"])
    elif ended.value or run.closed:
        solara.Info("The class run has ended: the teacher stopped class mode or closed the page.",
                    classes=["ree-follow-ended"])
    else:
        ProjectorView(run.view)
