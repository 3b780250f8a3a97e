"""Matplotlib versions of the classroom view's charts, drawn from a :class:`~ui.history.History` (never the
live model), for scripts, tests and exports. The page itself draws its charts in the browser from data
(:mod:`ui.webcharts`, issue 15: these cost the server ~50 ms each per frame); it uses :class:`Markets`,
:func:`date_ticks` and the palette from here, so both show the same.

Each chart is a small class that builds its figure once (axes, legends, labels: the expensive part) and
then only moves its data each frame (:meth:`LiveChart.update`), so a page redraws every panel several
times a second while the model plays. Figures use :class:`matplotlib.figure.Figure` and the Agg canvas
directly (no pyplot: the server draws in several threads). Labels and units come from
:data:`model.results.OUTPUTS`; products and market regions come from the run's world (:class:`Markets`),
never from a list written here. The functions ``price_chart``, ``flow_chart``, ... build a chart and
return its figure in one call, for scripts and tests. The map is in :mod:`ui.network_map`.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image

from model.results import OUTPUTS
from ui.history import History

DPI = 80
PNG_COMPRESSION = 1  # zlib level: 1 encodes ~3x faster than the default for ~1.5x the bytes (local page)
# market regions in the model's clearing order: the exporting region (China-domestic) first, in red
REGION_STYLES = [{"color": "#c0392b", "linestyle": "-"}, {"color": "#1f5fa8", "linestyle": "--"},
                 {"color": "#009E73", "linestyle": "-."}, {"color": "#CC79A7", "linestyle": ":"}]
# Okabe-Ito (colour-blind safe), then greys for the rest
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
           "#777777", "#aaaaaa", "#444444"]
LINESTYLES = ["-", "--", "-.", ":"]
MIN_SPAN_WEEKS = 12  # the time axis shows at least this span from the start, then grows with the run


@dataclass(frozen=True)
class Markets:
    """The products and market regions of one run, in the model's order, with the world's region names."""

    products: tuple[str, ...]
    regions: tuple[str, ...]
    names: tuple[str, ...]  # display name of each region ("China-domestic", "ex-China")
    sources: tuple[str, ...]  # the region each region imports from ("" if none)

    @classmethod
    def of(cls, model) -> Markets:
        regions = tuple(model.regions)
        specs = [model.world.region(r) for r in regions]
        return cls(tuple(model.products), regions, tuple(s.name for s in specs), tuple(s.imports_from for s in specs))

    def name(self, region: str) -> str:
        return self.names[self.regions.index(region)]

    def style(self, region: str) -> dict[str, str]:
        return REGION_STYLES[self.regions.index(region) % len(REGION_STYLES)]

    def import_pairs(self) -> list[tuple[str, str]]:
        """(importing region, the region it imports from): the price ratios that show an export wedge."""
        return [(r, s) for r, s in zip(self.regions, self.sources, strict=True) if s in self.regions]


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, fast zlib level, no alpha channel)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    w, h = canvas.get_width_height()
    img = Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=PNG_COMPRESSION)
    return buf.getvalue()


def _label(variable: str) -> str:
    o = OUTPUTS[variable]
    return f"{o.label} ({o.unit})"


class LiveChart:
    """A figure built once and updated in place; :meth:`png` draws it."""

    fig: Figure

    def png(self) -> bytes:
        return png(self.fig)


def _time_fig(width: float, height: float, ncols: int = 1, left: float = 0.75, top: float = 0.3):
    """A figure with ``ncols`` date axes; margins fixed in inches (a layout engine would cost ~2x)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, sharex=True, squeeze=False)[0]
    fig.subplots_adjust(left=left / width, right=1 - 0.12 / width, bottom=0.42 / height, top=1 - top / height,
                        wspace=0.22)
    for ax in axes:
        ax.grid(True, axis="y", alpha=0.3, linewidth=0.6)
        ax.tick_params(labelsize=8)
    return fig, axes


MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60)
EPOCH = dt.date(1970, 1, 1)  # x values are days since the epoch (matplotlib's date numbers)


def date_ticks(x0: float, x1: float, max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Ticks on the first of a month between two day numbers, months or years apart so that at most
    ``max_ticks`` fit; labels 'Apr' with the year under January and the first tick. Computed here
    rather than by matplotlib's date locator, which costs more than the rest of a frame's axis work."""
    d0, d1 = EPOCH + dt.timedelta(days=int(np.floor(x0))), EPOCH + dt.timedelta(days=int(np.ceil(x1)))
    months = (d1.year - d0.year) * 12 + d1.month - d0.month + 1
    step = next((m for m in MONTH_STEPS if months / m <= max_ticks), MONTH_STEPS[-1])
    ticks, labels = [], []
    y, m = d0.year, d0.month
    while (y, m) <= (d1.year, d1.month):
        if (m - 1) % min(step, 12) == 0 and (step < 12 or y % (step // 12) == 0):
            d = dt.date(y, m, 1)
            pos = float((d - EPOCH).days)
            if x0 <= pos <= x1:
                if step >= 12:
                    labels.append(str(y))
                else:
                    labels.append(d.strftime("%b") + (f"\n{y}" if m == 1 or not ticks else ""))
                ticks.append(pos)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return ticks, labels


def _time_axis(axes, x: np.ndarray, max_ticks: int = 6) -> None:
    if len(x):
        x0, x1 = float(x[0]), float(max(x[-1], x[0] + 7 * MIN_SPAN_WEEKS))
        ticks, labels = date_ticks(x0, x1, max_ticks)
        for ax in axes:
            ax.set_xlim(x0, x1)
            ax.set_xticks(ticks, labels)


def _fit_y(ax, arrays: Sequence[np.ndarray], log_scale: bool = False, headroom: float = 1.08) -> None:
    """Y limits from the data (0 to the maximum, or around the data on a log scale)."""
    vals = [a[np.isfinite(a)] for a in arrays]
    vals = np.concatenate(vals) if vals else np.zeros(0)
    if log_scale:
        vals = vals[vals > 0]
        lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (1.0, 10.0)
        ax.set_ylim(lo / 1.3, hi * 1.3)
    else:
        hi = float(vals.max()) if vals.size else 0.0
        ax.set_ylim(0, hi * headroom if hi > 0 else 1.0)


def _legend_above(ax, handles=None, ncol: int = 4) -> None:
    """The legend in the band above the axes (it never hides data)."""
    kw = {"handles": handles} if handles is not None else {}
    ax.legend(**kw, fontsize=7.5, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=ncol, frameon=False,
              borderaxespad=0.2, handlelength=1.8, columnspacing=1.0)


def _corner(ax, text: str):
    return ax.text(0.99, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=11,
                   fontweight="bold", color="#333333", zorder=5)


SMALL = (5.2, 3.3, 0.62)  # width, height, top margin (in) of the single-axes charts: room for a legend


class PriceChart(LiveChart):
    """Oxide prices, a panel per product, a line per market region (China-domestic beside ex-China)."""

    def __init__(self, markets: Markets):
        self.markets = mk = markets
        n = len(mk.products)
        self.fig, self.axes = _time_fig(max(8.4, 2.8 * n), 3.0, ncols=n)  # three panels fit the card's width
        self.lines, self.now = {}, {}
        for ax, prod in zip(self.axes, mk.products, strict=True):
            for reg in mk.regions:
                style = mk.style(reg)
                (self.lines[(reg, prod)],) = ax.plot([], [], label=mk.name(reg), linewidth=1.8, **style)
                (self.now[(reg, prod)],) = ax.plot([], [], marker="o", markersize=4.5, linestyle="",
                                                   color=style["color"])  # this week
            ax.set_title(f"{prod}", fontsize=10, fontweight="bold")
        self.axes[0].set_ylabel(_label("price"), fontsize=9)
        self.axes[0].legend(fontsize=8, loc="lower left", frameon=True, framealpha=0.8)
        self.log_scale = False

    def update(self, h: History, log_scale: bool = False) -> PriceChart:
        x = h.x()
        for (reg, prod), line in self.lines.items():
            y = h.series("price", reg, prod)
            line.set_data(x, y)
            self.now[(reg, prod)].set_data(x[-1:], y[-1:])
        if log_scale != self.log_scale:
            for ax in self.axes:
                ax.set_yscale("log" if log_scale else "linear")
            self.log_scale = log_scale
        for ax, prod in zip(self.axes, self.markets.products, strict=True):
            _fit_y(ax, [self.lines[(reg, prod)].get_ydata() for reg in self.markets.regions], log_scale)
        _time_axis(self.axes, x, max_ticks=4)  # three narrow panels
        return self


class FlowChart(LiveChart):
    """Myanmar ore flows by route, stacked; routes with no flow yet stay in the legend."""

    def __init__(self, corridors: Sequence[str]):
        self.fig, (self.ax,) = _time_fig(*SMALL[:2], top=SMALL[2])
        self.ax.set_ylabel(_label("myanmar_ore_flow"), fontsize=9)
        self.names: list[str] = []
        self.polys: list = []
        self._legend(list(corridors))

    def _legend(self, names: list[str]) -> None:
        self.names = names
        self.colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
        _legend_above(self.ax, [Patch(color=c, alpha=0.85, label=n.replace("_", " "))
                                for n, c in zip(names, self.colours, strict=True)])

    def update(self, h: History) -> FlowChart:
        seen = [c for c in h.regions("myanmar_ore_flow") if c not in self.names]
        if seen:
            self._legend([*self.names, *seen])
        for p in self.polys:
            p.remove()
        x = h.x()
        ys = [h.series("myanmar_ore_flow", c, fill=0.0) for c in self.names]
        self.polys = self.ax.stackplot(x, *ys, colors=self.colours, alpha=0.85) if len(x) and ys else []
        _fit_y(self.ax, [np.sum(ys, axis=0)] if len(x) and ys else [])
        _time_axis([self.ax], x)
        return self


class RegionLinesChart(LiveChart):
    """One output of one product, a line per region (buyer state, stockpiling state); lines are added as
    regions appear in the results."""

    def __init__(self, variable: str, names: dict[str, str], empty_text: str = ""):
        self.variable, self.names, self.empty_text = variable, names, empty_text
        self.fig, (self.ax,) = _time_fig(*SMALL[:2], top=SMALL[2])
        self.ax.set_ylabel(_label(variable), fontsize=9)
        self.lines: dict[str, Line2D] = {}
        self.corner = _corner(self.ax, "")
        self.empty = self.ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=self.ax.transAxes,
                                  color="#888888", fontsize=9)

    def update(self, h: History, product: str) -> RegionLinesChart:
        regions = h.regions(self.variable, product)
        new = [r for r in regions if r not in self.lines]
        for r in new:
            i = len(self.lines)
            (self.lines[r],) = self.ax.plot([], [], label=self.names.get(r, r), color=PALETTE[i % len(PALETTE)],
                                            linestyle=LINESTYLES[i % len(LINESTYLES)], linewidth=1.6)
        if new:
            _legend_above(self.ax)
        x = h.x()
        for r, line in self.lines.items():
            line.set_data(x, h.series(self.variable, r, product))
        self.corner.set_text(product)
        self.empty.set_visible(not regions)
        _fit_y(self.ax, [line.get_ydata() for line in self.lines.values()], headroom=1.15)
        _time_axis([self.ax], x)
        return self


class ShareChart(LiveChart):
    """China's share of refined output, overall and per product (the axis zooms to the data's range)."""

    def __init__(self, products: Sequence[str]):
        self.fig, (self.ax,) = _time_fig(*SMALL[:2], top=SMALL[2])
        ax = self.ax
        (total,) = ax.plot([], [], color="#000000", linewidth=2.2, label="all products")
        self.lines = {"": total}
        for i, prod in enumerate(products):
            (self.lines[str(prod)],) = ax.plot([], [], color=PALETTE[i % len(PALETTE)], linewidth=1.2,
                                               linestyle=LINESTYLES[(i + 1) % len(LINESTYLES)], label=str(prod))
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_ylabel(f"{OUTPUTS['china_refined_share'].label} ({OUTPUTS['china_refined_share'].unit})", fontsize=9)
        _legend_above(ax)

    def update(self, h: History) -> ShareChart:
        x = h.x()
        for prod, line in self.lines.items():
            line.set_data(x, h.series("china_refined_share", "", prod))
        vals = np.concatenate([line.get_ydata() for line in self.lines.values()]) if len(x) else np.zeros(0)
        vals = vals[np.isfinite(vals)]
        lo = np.floor((float(vals.min()) - 0.02) * 10) / 10 if vals.size else 0.0
        self.ax.set_ylim(max(0.0, min(lo, 0.8)), 1.01)
        _time_axis([self.ax], x)
        return self


LABEL_ROWS = 4  # rows of event labels at the top of a chart; a label that fits in none is left out
CHAR_WIDTH = 0.55  # a character's width as a share of the font size (an estimate: no text is measured)
SOURCE_ORDER = ("class", "start", "scenario", "news")  # whose labels are placed first


def place_labels(xs: Sequence[float], texts: Sequence[str], sources: Sequence[str], font: float, left: float,
                 right: float, rows: int = LABEL_ROWS) -> list[tuple[int | None, bool]]:
    """Rows for event labels so that none overlaps another: for each label (x and widths in one unit, e.g.
    points or SVG units), the row it goes in (None: no room, the line stays unlabelled) and whether it runs
    left of its line (near the right edge). The class's own events are placed first, then the scenario's,
    then news, each in date order."""
    taken: list[list[tuple[float, float]]] = [[] for _ in range(rows)]
    out: list[tuple[int | None, bool]] = [(None, False)] * len(xs)
    order = sorted(range(len(xs)), key=lambda k: (SOURCE_ORDER.index(sources[k]) if sources[k] in SOURCE_ORDER
                                                  else len(SOURCE_ORDER), xs[k]))
    for k in order:
        width = CHAR_WIDTH * font * len(texts[k]) + 6
        to_left = xs[k] + width > right
        span = (xs[k] - width, xs[k]) if to_left else (xs[k], xs[k] + width)
        if span[0] < left:
            span = (left, left + width)
        for r in range(rows):
            if all(span[1] <= a or span[0] >= b for a, b in taken[r]):
                taken[r].append(span)
                out[k] = (r, to_left)
                break
    return out


def draw_markers(axes, marks: Sequence, colours: dict[str, str] | None = None) -> None:
    """The run's events (:func:`ui.words.markers`) as dashed vertical lines on every axis, labelled in rows
    at the top of the first (:func:`place_labels`, as on the page). Call after the chart's ``update`` (it
    reads the x limits)."""
    if not len(axes):
        return
    ax0 = axes[0]
    x0, x1 = ax0.get_xlim()
    shown = [mk for mk in marks if x0 <= float((mk.date - EPOCH).days) <= x1]
    if not shown:
        return
    fig = ax0.figure
    fig_w = fig.get_figwidth() * 72.0  # points
    box0, box1 = ax0.get_position(), axes[-1].get_position()
    width = (box0.x1 - box0.x0) * fig_w  # the first axis, in points
    font = 6.5
    xs = [(float((mk.date - EPOCH).days) - x0) / (x1 - x0) * width for mk in shown]
    rows = place_labels(xs, [mk.label for mk in shown], [mk.source for mk in shown], font, 0.0,
                        (box1.x1 - box0.x0) * fig_w)
    ax0.set_zorder(max(ax.get_zorder() for ax in axes) + 1)  # labels may run over the next panels
    for mk, (row, to_left) in zip(shown, rows, strict=True):
        x = float((mk.date - EPOCH).days)
        colour = (colours or {}).get(mk.source, "#444444")
        for ax in axes:
            ax.axvline(x, color=colour, linestyle=(0, (4, 3)), linewidth=0.9, alpha=0.8, zorder=1)
        if row is None:
            continue
        ax0.annotate(mk.label, (x, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(-2 if to_left else 2, -7 - 8.5 * row), textcoords="offset points",
                     ha="right" if to_left else "left", va="center", fontsize=font, color=colour, zorder=6,
                     annotation_clip=False,
                     bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75})


# one-call versions (scripts, tests)
def price_chart(h: History, markets: Markets, log_scale: bool = False) -> Figure:
    return PriceChart(markets).update(h, log_scale).fig


def flow_chart(h: History, corridors: Sequence[str]) -> Figure:
    return FlowChart(corridors).update(h).fig


def shortage_chart(h: History, product: str, names: dict[str, str]) -> Figure:
    return RegionLinesChart("shortage", names).update(h, product).fig


def stockpile_chart(h: History, product: str, names: dict[str, str]) -> Figure:
    return RegionLinesChart("stockpile", names, STOCKPILE_EMPTY).update(h, product).fig


def share_chart(h: History, products: Sequence[str]) -> Figure:
    return ShareChart(products).update(h).fig


STOCKPILE_EMPTY = "no state holds a stockpile\n(switch one on, or press 'Release stockpiles')"
