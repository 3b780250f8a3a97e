"""The page's live charts, drawn by the browser from data (issue 15: one server must carry a class).

Why (measured, ``benchmarks.run --only g`` and a profile of one frame in the README's Performance text): a
5-week frame of Play cost the server ~300 ms of CPU, ~290 of it matplotlib drawing and PNG-encoding the
five time-series charts and the map; the model's 5 weeks took ~10 ms. A Solara server is one Python
process (one core under the GIL), so a page cost ~60 ms of server time per played second at one frame per
second: about five pages at full speed, not thirty.

Options weighed:

- **render once and share** among pages showing the same run: only pays while pages are at the same week
  of the same run; a class that intervenes diverges at once and every page costs ~300 ms a frame again.
- **a client-side chart library** (bqplot, plotly): not installed, their JS would have to be served by
  the Solara server from an nbextension/labextension location (its CDN fallback is switched off offline)
  and pinned against ipywidgets 8 / Vue 2; a new dependency for five line charts.
- **a Vue template** (chosen): ``ipyvue``, already part of the page's front end (Solara's ``component_vue``),
  renders ``webchart.vue`` as inline SVG in the browser. The server only builds a small dict per chart and
  frame: the series as rounded numbers, tick positions and labels, colours (all five charts at week 500
  of a run: ~11 ms and ~90 KB of JSON, measured in-process on the shared 2-core machine, against ~250 ms
  of matplotlib). No new package, no CDN, nothing leaves 127.0.0.1: the template travels over the page's
  own websocket.

Each ``*_spec`` function builds a chart's data from a :class:`~ui.history.History`; products, market
regions, corridors and states come from the run's world (``charts.Markets``), never from a list here.
They keep what the matplotlib charts of :mod:`ui.charts` show (those remain for scripts and exports).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import solara

from model.results import OUTPUTS
from ui.charts import MIN_SPAN_WEEKS, PALETTE, date_ticks, place_labels
from ui.history import History
from ui.words import MARKER_COLOURS

log = logging.getLogger(__name__)
Spec = dict
# viewBox sizes (the SVG scales to the card's width): one wide three-panel chart, and the small ones
WIDE = {"w": 620, "h": 300, "left": 64, "right": 10, "top": 26, "bottom": 44, "gap": 50}
SMALL = {"w": 620, "h": 330, "left": 64, "right": 10, "top": 12, "bottom": 44, "gap": 0}
# matplotlib line styles of :data:`ui.charts.REGION_STYLES`, by region in the model's clearing order
REGION_COLOURS = ["#c0392b", "#1f5fa8", "#009E73", "#CC79A7"]
REGION_DASHES = ["-", "--", "-.", ":"]
LINE_DASHES = ["-", "--", "-.", ":"]
MARKER_FONT = 15  # event labels' font size in the SVG's units (webchart.vue)


def _label(variable: str) -> str:
    o = OUTPUTS[variable]
    return f"{o.label} ({o.unit})"


def _values(y: np.ndarray, scale: float) -> list[float | None]:
    """A series as JSON numbers: three significant digits of the axis' scale (the chart cannot show more),
    NaN as null (a gap in the line)."""
    if not len(y):
        return []
    digits = max(0, 3 - int(math.floor(math.log10(scale)))) if scale > 0 else 3
    r = np.round(y.astype(float), digits)
    return [None if not math.isfinite(v) else v for v in r.tolist()]


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values between ``lo`` and ``hi``, at most ``n`` steps (steps 1, 2, 2.5 or 5 x 10^k)."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 x 10^k between ``lo`` and ``hi`` (only the powers of ten if that gives enough)."""
    out = []
    for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        out += [m * 10.0**k for m in (1, 2, 5)]
    inside = [t for t in out if lo <= t <= hi]
    return inside if len(inside) <= 8 else [t for t in inside if math.log10(t).is_integer()]


def fmt_tick(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def _x_axis(h: History, max_ticks: int) -> dict:
    """Step positions in days from the first step, the axis span (at least MIN_SPAN_WEEKS) and date ticks."""
    x = h.x()
    if not len(x):
        return {"x": [], "xmax": 7.0 * MIN_SPAN_WEEKS, "xticks": []}
    x0 = float(x[0])
    span = max(float(x[-1]) - x0, 7.0 * MIN_SPAN_WEEKS)
    ticks, labels = date_ticks(x0, x0 + span, max_ticks)
    return {"x": (x - x0).tolist(), "xmax": span, "xticks": [[t - x0, lab] for t, lab in zip(ticks, labels, strict=True)]}


def _y_axis(arrays: Sequence[np.ndarray], log_scale: bool = False, headroom: float = 1.08) -> dict:
    """Y limits from the data (0 to the maximum, or around the data on a log scale) and their ticks."""
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.zeros(0)
    if log_scale:
        vals = vals[vals > 0]
        lo, hi = (float(vals.min()) / 1.3, float(vals.max()) * 1.3) if vals.size else (1.0, 10.0)
        ticks = log_ticks(lo, hi)
    else:
        top = float(vals.max()) if vals.size else 0.0
        lo, hi = 0.0, (top * headroom if top > 0 else 1.0)
        ticks = nice_ticks(lo, hi)
    return {"ymin": lo, "ymax": hi, "log": log_scale, "yticks": [[t, fmt_tick(t)] for t in ticks]}


def with_markers(spec: Spec, h: History, marks: Sequence) -> Spec:
    """``spec`` with the run's events (:func:`ui.words.markers`) as vertical marks on its time axis: x in
    days from the first week, as the series; only weeks the chart already shows."""
    if not h.n_steps:
        return {**spec, "markers": []}
    x0, xmax = h.dates[0], float(spec.get("xmax", 0.0))
    shown = [(float((mk.date - x0).days), mk) for mk in marks]
    shown = [(x, mk) for x, mk in shown if 0 <= x <= xmax]
    # where the labels go, in the SVG's units (webchart.vue draws them over the first panel, free to run
    # across the others): rows that keep them apart, as the PNG charts do
    n = max(1, len(spec.get("panels", [])))
    panel_w = (spec["w"] - spec["left"] - spec["right"] - spec["gap"] * (n - 1)) / n
    rows = place_labels([spec["left"] + x / xmax * panel_w for x, _ in shown], [mk.label for _, mk in shown],
                        [mk.source for _, mk in shown], MARKER_FONT, spec["left"], spec["w"] - spec["right"])
    return {**spec, "markers": [
        {"x": x, "label": mk.label, "title": mk.title, "color": MARKER_COLOURS.get(mk.source, "#444"),
         "source": mk.source, "row": row, "right": to_left} for (x, mk), (row, to_left) in zip(shown, rows, strict=True)]}


def price_spec(h: History, markets, log_scale: bool = False) -> Spec:
    """Oxide prices: a panel per product, a line per market region (China-domestic first, red), a dot on
    this week; the regions' names in the legend."""
    regions = list(markets.regions)
    colour = {r: REGION_COLOURS[i % len(REGION_COLOURS)] for i, r in enumerate(regions)}
    dash = {r: REGION_DASHES[i % len(REGION_DASHES)] for i, r in enumerate(regions)}
    panels = []
    for prod in markets.products:
        ys = [h.series("price", reg, prod) for reg in regions]
        y = _y_axis(ys, log_scale)
        scale = y["ymax"]
        panels.append({**y, "title": str(prod), "series": [
            {"name": markets.name(reg), "color": colour[reg], "dash": dash[reg], "width": 2.2, "dot": True,
             "y": _values(v, scale)} for reg, v in zip(regions, ys, strict=True)]})
    n = max(1, len(panels))
    layout = {**WIDE, "gap": WIDE["gap"] if n > 1 else 0, "w": max(WIDE["w"], 250 * n)}
    return {**layout, **_x_axis(h, 4 if n > 2 else 6), "ylabel": _label("price"),
            "panels": panels,
            "legend": [{"name": markets.name(r), "color": colour[r], "dash": dash[r], "width": 2.2} for r in regions]}


def flow_spec(h: History, corridors: Sequence[str]) -> Spec:
    """Myanmar ore flows by route, stacked; routes with no flow yet stay in the legend."""
    names = list(corridors) + [c for c in h.regions("myanmar_ore_flow") if c not in corridors]
    ys = [h.series("myanmar_ore_flow", c, fill=0.0) for c in names]
    total = np.sum(ys, axis=0) if ys and h.n_steps else np.zeros(0)
    y = _y_axis([total])
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    return {**SMALL, **_x_axis(h, 6), "ylabel": _label("myanmar_ore_flow"),
            "panels": [{**y, "stack": True, "series": [
                {"name": n.replace("_", " "), "color": c, "y": _values(v, y["ymax"])}
                for n, c, v in zip(names, colours, ys, strict=True)]}],
            "legend": [{"name": n.replace("_", " "), "color": c, "patch": True} for n, c in zip(names, colours, strict=True)]}


def region_lines_spec(h: History, variable: str, product: str, names: dict[str, str], empty_text: str = "") -> Spec:
    """One output of one product, a line per region that has it (buyer region, stockpiling state)."""
    regions = h.regions(variable, product)
    ys = [h.series(variable, r, product) for r in regions]
    y = _y_axis(ys, headroom=1.15)
    style = [(PALETTE[i % len(PALETTE)], LINE_DASHES[i % len(LINE_DASHES)]) for i in range(len(regions))]
    series = [{"name": names.get(r, r), "color": c, "dash": d, "width": 2.0, "y": _values(v, y["ymax"])}
              for r, (c, d), v in zip(regions, style, ys, strict=True)]
    return {**SMALL, **_x_axis(h, 6), "ylabel": _label(variable),
            "panels": [{**y, "corner": str(product), "empty": "" if regions else empty_text, "series": series}],
            "legend": [{k: s[k] for k in ("name", "color", "dash", "width")} for s in series]}


def share_spec(h: History, products: Sequence[str]) -> Spec:
    """China's share of refined output, overall (black, thick) and per product; the axis zooms to the data."""
    keys = ["", *map(str, products)]
    ys = [h.series("china_refined_share", "", p) for p in keys]
    vals = np.concatenate([v[np.isfinite(v)] for v in ys]) if h.n_steps else np.zeros(0)
    lo = math.floor((float(vals.min()) - 0.02) * 10) / 10 if vals.size else 0.0
    lo = max(0.0, min(lo, 0.8))
    ticks = nice_ticks(lo, 1.0, 4)
    series = [{"name": "all products", "color": "#000000", "dash": "-", "width": 2.6, "y": _values(ys[0], 1.0)}]
    series += [{"name": p, "color": PALETTE[i % len(PALETTE)], "dash": LINE_DASHES[(i + 1) % len(LINE_DASHES)],
                "width": 1.6, "y": _values(v, 1.0)} for i, (p, v) in enumerate(zip(keys[1:], ys[1:], strict=True))]
    o = OUTPUTS["china_refined_share"]
    return {**SMALL, **_x_axis(h, 6), "ylabel": f"{o.label} ({o.unit})",
            "panels": [{"ymin": lo, "ymax": 1.01, "log": False, "yticks": [[t, f"{t:.0%}"] for t in ticks],
                        "series": series}],
            "legend": [{k: s[k] for k in ("name", "color", "dash", "width")} for s in series]}


class Sealed:
    """A chart's spec, sealed for the trip through the page's component tree: reacton walks (and copies)
    every list and dict in a component's arguments on every render pass, looking for elements, which for a
    spec of thousands of numbers cost more than the rest of the pass. A new frame's spec is a new object."""

    __slots__ = ("spec",)

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __eq__(self, other) -> bool:
        return self is other

    __hash__ = object.__hash__


def _unseal(value, _widget):
    """The spec goes to the browser as it is (JSON): it holds no widgets, so ipywidgets' default serializer,
    which walks every list looking for them, would only cost time."""
    return value.spec if isinstance(value, Sealed) else value


@solara.component_vue("webchart.vue", to_json={"spec": _unseal})
def WebChart(spec: Sealed, name: str):
    """A chart drawn by the browser from ``spec`` (one of the ``*_spec`` functions, :class:`Sealed`), as
    inline SVG inside a ``div.ree-chart.ree-<name>``; each series is a ``path.ree-line`` (``data-points``:
    how many points it has) or, stacked, a ``path.ree-area``."""


@solara.component
def LiveWebChart(build: Callable[[], Spec], dependencies: list, name: str, week: int):
    """A :class:`WebChart` whose spec is rebuilt when ``dependencies`` change (a frame, an option); a spec
    that fails to build shows its error and the rest of the page keeps working. ``week`` (the model's week
    drawn) is the chart's ``data-week`` attribute, for tests and benchmarks."""

    def guarded() -> tuple[Sealed | None, str | None]:
        try:
            return Sealed({**build(), "week": week}), None
        except Exception as exc:  # noqa: BLE001 - one broken panel must not take the page down
            log.exception("panel %s failed to draw", name)
            return None, f"{type(exc).__name__}: {exc}"

    spec, err = solara.use_memo(guarded, dependencies)
    if err is not None:
        solara.Error(f"This panel could not be drawn: {err}")
    else:
        WebChart(spec=spec, name=name)
