"""Figures drawn from result tables only (never a live model); labels and units come from the schema.

One function per figure type; each takes a tidy table (one run, several seeds or a whole sweep of one
scenario) and returns a :class:`matplotlib.figure.Figure`:

- ``price_paths``: oxide prices, China-domestic vs ex-China, one panel per product;
- ``spread_ratio``: ex-China / China-domestic price ratio per product (the export-control wedge, M2);
- ``ore_flows``: Myanmar ore flows by route (corridor), with the total;
- ``shortage``: unmet need by buyer state, one panel per product;
- ``exports``: China's exports by destination state and the share of requested exports allowed (the
  licence story), one column per product;
- ``capacity_buildout``: refining capacity online, China and ex-China by country;
- ``magnet_buildout``: magnet-making capacity online, China and ex-China by country (magnet worlds only);
- ``scenario_comparison``: one product's prices, a panel per scenario (takes ``{scenario: table}``);
- ``morris_chart`` / ``sobol_chart``: sensitivity indices (take the tables of experiments.sensitivity).

Products, market regions and states are the table's own, ordered and named by its world
(:mod:`experiments.labels`): a product added to the world file gets its panels with no edit here. Where a
table holds several runs, lines are the median over runs and the shaded band the 10-90 %
range. Styles are for print: every series differs by line style and marker as well as colour (colour-blind
safe Okabe-Ito palette), so figures read in greyscale. :func:`save` writes PDF, SVG and 300-dpi PNG;
:func:`make_figures` draws the whole set for every scenario found in a results folder (``ree run``,
``ree run-all`` or ``ree sweep`` output).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from experiments import labels  # noqa: E402
from experiments.compare import natural_key  # noqa: E402
from model.results import OUTPUTS  # noqa: E402

log = logging.getLogger(__name__)

# market regions in clearing order (the exporter first): red solid, blue dashed, then the palette
REGION_COLORS = ["#b2182b", "#2166ac"]
REGION_LINESTYLES = ["-", "--"]
QUANTILES = (0.1, 0.9)
FORMATS = ("pdf", "svg", "png")
DPI = 300

# Okabe-Ito, ordered so neighbours also differ in lightness; with line styles and markers for greyscale
PALETTE = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1.5, 1, 1.5, 1, 1.5)), (0, (8, 2)), (0, (1, 1)), (0, (3, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "figure.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType in PDFs (journals ask for it)
    "svg.fonttype": "none",  # text stays text in SVG
}
WIDTH_IN = 7.2  # double-column width
MAX_EVENT_LABELS = 4  # event markers are labelled on the first panel up to this many dates, else lines only


# ----------------------------------------------------------------------------------------- aggregation
def band(df: pd.DataFrame, variable: str, by: list[str], q: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Median and a quantile band over seeds (run_id) per date and ``by`` columns."""
    d = df[df["variable"] == variable]
    g = d.groupby(["date", *by])["value"]
    out = g.median().rename("median").to_frame()
    out["lo"] = g.quantile(q[0])
    out["hi"] = g.quantile(q[1])
    return out.reset_index()


def ensemble(df: pd.DataFrame, variable: str, by: Sequence[str] = (), fill: float | None = None,
             smooth_weeks: int = 1, q: tuple[float, float] = QUANTILES) -> pd.DataFrame:
    """Median, ``q`` band and run count per date and ``by`` columns, over runs (``run_id``).

    Unlike :func:`band`, values are first summed over the dimensions not in ``by`` (e.g. shortage over
    products when ``by=["region"]``), each run is completed to the full date x ``by`` grid (missing rows
    become ``fill``, e.g. 0 for a flow not recorded in a week without flow) and optionally smoothed with
    a trailing ``smooth_weeks`` moving average, so every run weighs the same in every week.
    """
    by = list(by)
    cols = ["date", *by, "median", "lo", "hi", "n"]
    d = df[df["variable"] == variable]
    if d.empty:
        return pd.DataFrame(columns=cols)
    wide = d.groupby(["date", *by, "run_id"], observed=True)["value"].sum(min_count=1).unstack("run_id")
    if by:
        combos = d[by].drop_duplicates().sort_values(by)
        dates = np.sort(d["date"].unique())
        full = pd.MultiIndex.from_tuples([(t, *c) for t in dates for c in combos.itertuples(index=False)],
                                         names=["date", *by])
        wide = wide.reindex(full)
    if fill is not None:
        wide = wide.fillna(fill)
    if smooth_weeks > 1:
        if by:
            wide = wide.sort_index(level=[*by, "date"])
            wide = wide.groupby(level=by, group_keys=False).apply(
                lambda g: g.rolling(smooth_weeks, min_periods=1).mean())
        else:
            wide = wide.sort_index().rolling(smooth_weeks, min_periods=1).mean()
    arr = wide.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (a run shorter than the others)
        out = pd.DataFrame({"median": np.nanmedian(arr, axis=1), "lo": np.nanquantile(arr, q[0], axis=1),
                            "hi": np.nanquantile(arr, q[1], axis=1),
                            "n": np.isfinite(arr).sum(axis=1)}, index=wide.index)
    return out.reset_index().sort_values(["date", *by]).reset_index(drop=True)[cols]


def price_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """Derived tidy rows ``variable="price_ratio"``: an importing region's price over the price in the
    region it imports from (ex-China / China-domestic in the 2024 world), per run, product and importing
    region (``region`` holds the importer)."""
    cols = ["run_id", "date", "variable", "region", "product", "value"]
    pairs = labels.import_pairs(df)
    d = df[(df["variable"] == "price") & df["region"].isin({r for pair in pairs for r in pair})]
    if d.empty:
        return pd.DataFrame(columns=cols)
    w = d.pivot_table(index=["run_id", "date", "product"], columns="region", values="value", aggfunc="first")
    parts = []
    for importer, exporter in pairs:
        r = (w[importer] / w[exporter]).rename("value").reset_index()
        r["variable"], r["region"] = "price_ratio", importer
        parts.append(r[cols])
    return pd.concat(parts, ignore_index=True)


# -------------------------------------------------------------------------------------------- styling
def series_style(i: int, color: str | None = None) -> dict:
    """The i-th series style: colour, line style and marker differ together (greyscale-safe). Past the
    palette's eight the marker shifts by one each round, so series 8 (black, solid, square) is not series 0
    (black, solid, circle): a world with ten products draws ten distinct lines."""
    return {"color": color or PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[(i + i // len(PALETTE)) % len(MARKERS)], "markerfacecolor": "white",
            "markeredgewidth": 0.9}


def axis_label(variable: str, suffix: str = "") -> str:
    """``Label (unit)`` from :data:`model.results.OUTPUTS` (the unit on a second line if long)."""
    o = OUTPUTS[variable]
    return _label(f"{o.label}{suffix}", o.unit)


def _label(text: str, unit: str) -> str:
    return f"{text}\n({unit})" if len(text) + len(unit) > 26 else f"{text} ({unit})"


def pretty(name: str, market: bool = False, df: pd.DataFrame | None = None) -> str:
    """A display name for a state, country or corridor code from the table's world (``market``: the
    code is a market region, e.g. ``ROW`` -> ``ex-China``)."""
    if market:
        region = labels.region_name(name, df)
        if region != name:
            return region
    state = labels.state_name(name, df)
    if state != name:
        return state
    return (name or "other").replace("_", " ").capitalize()


def region_style(i: int) -> dict:
    """The i-th market region's style (clearing order): China-domestic red solid, ex-China blue dashed."""
    color = REGION_COLORS[i] if i < len(REGION_COLORS) else PALETTE[i % len(PALETTE)]
    style = series_style(i, color)
    if i < len(REGION_LINESTYLES):
        style["linestyle"] = REGION_LINESTYLES[i]
    return style


def _markevery(n: int, i: int, k: int = 9) -> tuple[int, int]:
    step = max(1, n // k)
    return (int(i * step / 3) % step, step)


MAX_PANELS_PER_ROW = 4  # a world with more products gets rows of four panels (its products in order)


def _new_figure(ncols: int, height: float = 2.6, width: float = WIDTH_IN, sharey: bool = False
                ) -> tuple[Figure, list]:
    """``ncols`` panels side by side, or in rows of :data:`MAX_PANELS_PER_ROW` when there are more (each row
    ``height`` high); returns exactly ``ncols`` axes, the grid's spare cells hidden."""
    rows = max(1, -(-ncols // MAX_PANELS_PER_ROW))
    cols = ncols if rows == 1 else MAX_PANELS_PER_ROW
    fig = Figure(figsize=(width, height * rows), layout="constrained")
    grid = list(fig.subplots(rows, cols, squeeze=False, sharey=sharey).flat)
    for ax in grid[ncols:]:
        ax.set_visible(False)
    return fig, grid[:ncols]


def _stage(product: str, df: pd.DataFrame | None = None) -> str:
    """``oxide`` or ``magnet``: the product's stage in the table's world, else in any shipped world that
    defines it (a scenario file run from outside the package names no shipped scenario), else ``oxide``."""
    for world in (labels.world_of(df), *labels.shipped_worlds()):
        try:
            return world.product(product).stage
        except StopIteration:
            continue
    return "oxide"


def _panel_title(product: str, df: pd.DataFrame | None = None) -> str:
    """``NdPr oxide``, ``NdFeB magnet``: a product with its stage, from the table's world."""
    return f"{product} {_stage(product, df)}"


def _date_axis(ax) -> None:
    panels = len(ax.figure.axes) if ax.figure is not None else 1
    loc = mdates.AutoDateLocator(minticks=3, maxticks={1: 7, 2: 6}.get(panels, 5))
    loc.intervald[mdates.MONTHLY] = [1, 2, 3, 4, 6, 12]  # a 2-3 year span on a narrow panel: yearly ticks
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, show_offset=False))
    ax.set_xlabel("Date (calendar week)")


def _date_limits(ax, df: pd.DataFrame) -> None:
    """No margins on a time axis; start on the first of the month so a January start shows its year."""
    if len(df):
        first = pd.Timestamp(df["date"].min())
        ax.set_xlim(first.replace(day=1), pd.Timestamp(df["date"].max()))


def _draw(ax, s: pd.DataFrame, label: str, style: dict, show_band: bool, idx: int = 0,
          drawstyle: str = "default") -> None:
    """One median line with its band; markers thinned so they tag the line without cluttering it."""
    if s.empty:
        return
    x = pd.to_datetime(s["date"])
    ax.plot(x, s["median"], label=label, markevery=_markevery(len(s), idx), drawstyle=drawstyle, **style)
    if show_band:
        ax.fill_between(x, s["lo"], s["hi"], color=style["color"], alpha=0.16, linewidth=0,
                        step="post" if drawstyle == "steps-post" else None)


def _n_runs(df: pd.DataFrame) -> int:
    return int(df["run_id"].nunique()) if "run_id" in df else 1


def _band_handle(n: int, df: pd.DataFrame | None = None) -> Patch:
    """The band's legend entry, saying what it spans: seeds alone, or seeds and design points together."""
    text = f"10–90 % of {n} runs"
    if df is not None and "seed" in df and "run_id" in df:
        seeds = int(df["seed"].nunique())
        if 1 < seeds < n or (seeds == 1 and n > 1):
            text += f" ({seeds} seed{'s' if seeds > 1 else ''} × {n // max(seeds, 1)} parameter sets)"
    return Patch(facecolor="0.6", alpha=0.35, linewidth=0, label=text)


def _finish(fig: Figure, axes: list, df: pd.DataFrame, title: str, note: str = "", legend_ax=None,
            ncols: int | None = None) -> Figure:
    """Date axes, one legend outside the panels (with the band's meaning), and the title line."""
    n = _n_runs(df)
    for ax in axes:
        _date_axis(ax)
        _date_limits(ax, df)
    lax = legend_ax if legend_ax is not None else axes[0]
    h, texts = lax.get_legend_handles_labels()
    if n > 1 and h:
        band_patch = _band_handle(n, df)
        h, texts = [*h, band_patch], [*texts, band_patch.get_label()]
    if h:
        width = 5 if len(axes) > 1 else 3
        fig.legend(h, texts, loc="outside lower center", ncols=ncols or min(len(h), width))
    parts = [p for p in (title, note) if p]
    if parts:  # wrapped at the separators to the figure's width (about 10 characters of title an inch)
        room = int(fig.get_figwidth() * 10)
        pieces = " · ".join(parts).split(" · ")
        lines = [pieces[0]]
        for p in pieces[1:]:
            lines[-1:] = [f"{lines[-1]} · {p}"] if len(lines[-1]) + len(p) + 3 <= room else [lines[-1], p]
        fig.suptitle("\n".join(lines))
    return fig


def _style_context():
    return matplotlib.rc_context(STYLE)


def _no_data(ax, text: str) -> None:
    """Say in the panel why it is empty (on a white ground, over the panel's date lines)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.35",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "none", "alpha": 0.85}, zorder=5)


# ------------------------------------------------------------------------------------------- figures
def _products(df: pd.DataFrame, products: Sequence[str] | None) -> list[str]:
    return list(products) if products is not None else labels.products(df)


def price_paths(df: pd.DataFrame, title: str = "", products: Sequence[str] | None = None) -> Figure:
    """Oxide prices, every market region side by side (China-domestic and ex-China), one panel per
    product (default: the table's products, in the world's order; median, 10-90 % band)."""
    products = _products(df, products)
    with _style_context():
        fig, axes = _new_figure(max(len(products), 1))
        b = ensemble(df, "price", ["region", "product"])
        show = _n_runs(df) > 1
        for ax, prod in zip(axes, products, strict=False):
            for i, region in enumerate(labels.market_regions(df)):
                s = b[(b["product"] == prod) & (b["region"] == region)]
                _draw(ax, s, pretty(region, market=True, df=df), region_style(i), show, i)
            ax.set_title(_panel_title(prod, df))
            stage = _stage(prod, df)
            ax.set_ylabel(axis_label("price") if stage == "oxide" else _label(f"{stage.capitalize()} price",
                                                                                OUTPUTS["price"].unit))
        if not products:
            _no_data(axes[0], "no prices recorded")
        return _finish(fig, axes, df, title)


def spread_ratio(df: pd.DataFrame, title: str = "", products: Sequence[str] | None = None) -> Figure:
    """An importing region's price over its source region's (ex-China over China-domestic), per product;
    1 = parity (mechanism M2)."""
    products = _products(df, products)
    pairs = labels.import_pairs(df)
    with _style_context():
        fig, axes = _new_figure(1, height=2.8, width=WIDTH_IN * 0.72)
        ax = axes[0]
        b = ensemble(price_ratio(df), "price_ratio", ["region", "product"])
        i = 0
        for importer, _ in pairs:
            for prod in products:
                name = _panel_title(prod, df) + ("" if len(pairs) == 1 else f", {pretty(importer, True, df)}")
                _draw(ax, b[(b["region"] == importer) & (b["product"] == prod)], name, series_style(i),
                      _n_runs(df) > 1, i)
                i += 1
        ax.axhline(1.0, color="0.4", linewidth=0.8, linestyle=(0, (2, 2)), zorder=0)
        if len(pairs) == 1:
            imp, exp = (pretty(r, market=True, df=df) for r in pairs[0])
            ax.set_ylabel(_label(f"{imp} ÷ {exp} price", f"ratio of {OUTPUTS['price'].unit}"))
            ax.set_title(f"Price spread: {imp} over {exp}")
        else:
            ax.set_ylabel(_label("importer ÷ source price", f"ratio of {OUTPUTS['price'].unit}"))
            ax.set_title("Price spread: importing regions over their sources")
        if not pairs:
            _no_data(ax, "no importing market region in this table")
        return _finish(fig, axes, df, title)


def ore_flows(df: pd.DataFrame, title: str = "", smooth_weeks: int = 13, total: bool = True) -> Figure:
    """Myanmar ore flows by route (corridor), with the total over routes (``smooth_weeks`` moving mean:
    refiners switch routes week to week, so weekly flows by route are mostly noise)."""
    with _style_context():
        fig, axes = _new_figure(1, height=2.8, width=WIDTH_IN * 0.72)
        ax = axes[0]
        show = _n_runs(df) > 1
        b = ensemble(df, "myanmar_ore_flow", ["region"], fill=0.0, smooth_weeks=smooth_weeks)
        i = 0
        if b.empty:
            _no_data(ax, "no Myanmar ore flow recorded")
        else:
            if total:
                t = ensemble(df, "myanmar_ore_flow", [], fill=0.0, smooth_weeks=smooth_weeks)
                _draw(ax, t, "all routes", series_style(0), show, 0)
                i = 1
            for corridor in sorted(b["region"].unique()):
                _draw(ax, b[b["region"] == corridor], pretty(corridor), series_style(i), show, i)
                i += 1
            ax.set_ylim(bottom=0)
        ax.set_ylabel(axis_label("myanmar_ore_flow"))
        ax.set_title("Myanmar ore by route")
        note = f"{smooth_weeks}-week moving mean" if smooth_weeks > 1 else ""
        return _finish(fig, axes, df, title, note)


def shortage(df: pd.DataFrame, title: str = "", smooth_weeks: int = 4,
             products: Sequence[str] | None = None) -> Figure:
    """Unmet need by buyer state, one panel per product; states never short in any run are left out."""
    products = _products(df, products)
    with _style_context():
        fig, axes = _new_figure(max(len(products), 1))
        show = _n_runs(df) > 1
        d = df[df["variable"] == "shortage"]
        states = sorted(d.loc[d["value"] > 0, "region"].unique())
        b = ensemble(d, "shortage", ["region", "product"], fill=0.0, smooth_weeks=smooth_weeks)
        for ax, prod in zip(axes, products, strict=False):
            if not states:
                _no_data(ax, "no shortage in any run")
            for i, st in enumerate(states):
                _draw(ax, b[(b["region"] == st) & (b["product"] == prod)], pretty(st, df=df), series_style(i),
                      show, i)
            ax.set_title(_panel_title(prod, df))
            ax.set_ylabel(axis_label("shortage"))
            peak = b.loc[b["product"] == prod, "hi"].max() if not b.empty else 0.0
            ax.set_ylim(bottom=0, top=None if peak > 0 else 1)
            if states and not peak > 0:
                _no_data(ax, f"no {prod} shortage\nin any run")  # two lines: ten products make small panels
        note = f"{smooth_weeks}-week moving mean" if smooth_weeks > 1 else ""
        return _finish(fig, axes, df, title, note)


def exports(df: pd.DataFrame, title: str = "", smooth_weeks: int = 4,
            products: Sequence[str] | None = None) -> Figure:
    """The licence story, one column per product: China's exports by destination state (top) and the
    share of requested exports its licences allowed, all destinations (bottom; 1 = no control binds)."""
    products = _products(df, products)
    n = max(len(products), 1)
    with _style_context():
        # a pair of rows (exports above the share allowed) for each MAX_PANELS_PER_ROW products
        groups = max(1, -(-n // MAX_PANELS_PER_ROW))
        cols = n if groups == 1 else MAX_PANELS_PER_ROW
        fig = Figure(figsize=(WIDTH_IN, 4.6 * groups), layout="constrained")
        grid = fig.subplots(2 * groups, cols, squeeze=False, sharex=True)
        top = [grid[2 * (j // cols), j % cols] for j in range(n)]
        bottom = [grid[2 * (j // cols) + 1, j % cols] for j in range(n)]
        for j in range(n, groups * cols):  # spare cells of the last group
            grid[2 * (j // cols), j % cols].set_visible(False)
            grid[2 * (j // cols) + 1, j % cols].set_visible(False)
        show = _n_runs(df) > 1
        d = df[(df["variable"] == "exports") & (df["step"] > 0)]  # a flow: step 0 is before any week
        dests = sorted(d.loc[d["value"] > 0, "region"].unique())
        b = ensemble(d, "exports", ["region", "product"], fill=0.0, smooth_weeks=smooth_weeks)
        allowed = df[(df["variable"] == "export_allowed") & (df["region"] == "")]
        a = ensemble(allowed, "export_allowed", ["product"])
        for ax, prod in zip(top, products, strict=False):
            for i, st in enumerate(dests):
                _draw(ax, b[(b["region"] == st) & (b["product"] == prod)], pretty(st, df=df), series_style(i),
                      show, i)
            ax.set_title(_panel_title(prod, df))
            ax.set_ylim(bottom=0)
            if not dests:
                _no_data(ax, "no exports recorded")
        for ax, prod in zip(bottom, products, strict=False):
            _draw(ax, a[a["product"] == prod], "all destinations", series_style(0), show, 0)
            ax.set_ylim(-0.02, 1.05)
            if a.empty:
                _no_data(ax, "no export rules recorded")
        for j in range(0, n, cols):  # the first column of each group
            top[j].set_ylabel(axis_label("exports"))
            bottom[j].set_ylabel(axis_label("export_allowed"))
        for ax in top:
            ax.set_xlabel("")
        note = f"exports: {smooth_weeks}-week moving mean" if smooth_weeks > 1 else ""
        fig = _finish(fig, top + bottom, df, title, note)
        for ax in top:
            ax.set_xlabel("")
        return fig


def _buildout(df: pd.DataFrame, variable: str, title: str, home: str, empty: str) -> Figure:
    """Capacity online (``variable``, by country): ``home`` (left) and the rest by country (right), step lines."""
    with _style_context():
        fig, axes = _new_figure(2)
        show = _n_runs(df) > 1
        b = ensemble(df, variable, ["region"], fill=0.0)
        cn = b[b["region"] == home]
        _draw(axes[0], cn, pretty(home, df=df), series_style(0), show, 0, drawstyle="steps-post")
        axes[0].set_title(pretty(home, df=df))
        others = [c for c in sorted(b["region"].unique()) if c != home]
        exc = ensemble(df[df["region"] != home], variable, [], fill=0.0)
        _draw(axes[1], exc, "ex-China total", series_style(0), show, 0, drawstyle="steps-post")
        for i, c in enumerate(others, start=1):
            _draw(axes[1], b[b["region"] == c], pretty(c, df=df), series_style(i), show, i, drawstyle="steps-post")
        axes[1].set_title("ex-China, by country")
        for ax in axes:
            ax.set_ylabel(axis_label(variable))
            ax.set_ylim(bottom=0, top=None if not b.empty else 1)
        if b.empty:
            _no_data(axes[0], empty)
        return _finish(fig, axes, df, title, legend_ax=axes[1], ncols=4)


def capacity_buildout(df: pd.DataFrame, title: str = "", home: str = "CN") -> Figure:
    """Refining capacity online: China (left) and ex-China by country (right), step lines."""
    return _buildout(df, "capacity_online", title, home, "no capacity recorded")


def magnet_buildout(df: pd.DataFrame, title: str = "", home: str = "CN") -> Figure:
    """Magnet-making capacity online (every magnet the world makes, t a week): China (left) and ex-China by
    country (right), step lines: plants coming online and the lines expansion adds (worlds with a magnet
    stage; elsewhere the panel says there is none)."""
    return _buildout(df, "magnet_capacity", title, home, "no magnet stage in this world")


def scenario_comparison(tables: dict[str, pd.DataFrame], variable: str = "price", product: str = "Dy",
                        regions: Sequence[str] | None = None, title: str = "") -> Figure:
    """Small multiples, one panel per scenario on a shared y axis: ``variable`` for ``product``, every
    market region side by side (default: the tables' regions, China-domestic beside ex-China; median,
    10-90 % band). ``tables`` maps scenario name to its table."""
    if regions is None:
        regions = labels.ordered({r for t in tables.values() for r in labels.market_regions(t)},
                                  labels.world_of().region_ids)
    n = len(tables)
    ncols = min(4, max(n, 1))
    nrows = -(-n // ncols)
    with _style_context():
        fig = Figure(figsize=(WIDTH_IN, 0.9 + 1.95 * nrows), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        axes = list(grid.flat)
        runs = 1
        for ax, (name, t) in zip(axes, tables.items(), strict=False):
            runs = max(runs, _n_runs(t))
            d = t[t["product"] == product] if product else t
            b = ensemble(d, variable, ["region"])
            for i, region in enumerate(regions):
                _draw(ax, b[b["region"] == region], pretty(region, market=True, df=t), region_style(i),
                      _n_runs(t) > 1, i)
            ax.set_title(name)
            _date_axis(ax)
            ax.set_xlabel("")
            _date_limits(ax, t)
        for ax in axes[n:]:
            ax.set_visible(False)
        for row in grid:
            row[0].set_ylabel(axis_label(variable))
        h, texts = axes[0].get_legend_handles_labels()
        if runs > 1 and h:
            h.append(_band_handle(runs))
            texts.append("10–90 % of each scenario's runs")
        if h:
            fig.legend(h, texts, loc="outside lower center", ncols=len(h))
        label = OUTPUTS[variable].label
        fig.suptitle(title or (f"{product} {label[0].lower()}{label[1:]} by scenario" if product
                               else f"{label} by scenario"))
        return fig


def morris_chart(indices: pd.DataFrame, title: str = "") -> Figure:
    """Morris screening: mu* (mean absolute elementary effect, with its confidence interval) against
    sigma, one panel per output. ``indices`` has columns output, parameter, mu_star, mu_star_conf, sigma,
    unit (see :func:`experiments.sensitivity.morris`)."""
    outputs = list(dict.fromkeys(indices["output"]))
    with _style_context():
        fig, axes = _new_figure(len(outputs), height=3.1, width=max(WIDTH_IN, 2.4 * len(outputs)))
        params = list(dict.fromkeys(indices["parameter"]))
        for ax, out in zip(axes, outputs, strict=True):
            d = indices[indices["output"] == out]
            ax.set_title(_wrap(d["label"].iloc[0], 24) if "label" in d and len(d) else out)
            unit = d["unit"].iloc[0] if "unit" in d and len(d) else ""
            ax.set_xlabel(f"μ* ({unit})")
            ax.set_ylabel(f"σ ({unit})")
            if not np.isfinite(d["mu_star"]).any():
                _no_data(ax, "output does not vary")
                continue
            for i, p in enumerate(params):
                r = d[d["parameter"] == p]
                if r.empty:
                    continue
                st = series_style(i)
                ax.errorbar(r["mu_star"], r["sigma"], xerr=r["mu_star_conf"], fmt=st["marker"], color=st["color"],
                            markerfacecolor="white", markeredgewidth=1.0, markersize=5, elinewidth=0.7,
                            capsize=2, label=_short_param(p))
            lim = max(float((d["mu_star"] + d["mu_star_conf"]).max()), float(d["sigma"].max()), 1e-12) * 1.08
            ax.plot([0, lim], [0, lim], color="0.5", linewidth=0.7, linestyle=(0, (2, 2)), zorder=0)
            ax.set_xlim(0, lim)
            ax.set_ylim(0, lim)
        h, texts = [], []
        for ax in axes:
            for hh, ll in zip(*ax.get_legend_handles_labels(), strict=True):
                if ll not in texts:
                    h.append(hh)
                    texts.append(ll)
        if h:
            fig.legend(h, texts, loc="outside lower center", ncols=min(3, len(h)))
        head = "Morris screening: μ* = mean |elementary effect|, σ = its standard deviation"
        fig.suptitle(f"{head}\n{title}" if title else head)
        return fig


def sobol_chart(indices: pd.DataFrame, title: str = "") -> Figure:
    """Sobol first-order (S1) and total (ST) indices with confidence intervals, one panel per output.
    ``indices`` has columns output, parameter, S1, S1_conf, ST, ST_conf (see
    :func:`experiments.sensitivity.sobol`)."""
    outputs = list(dict.fromkeys(indices["output"]))
    with _style_context():
        fig, axes = _new_figure(len(outputs), height=1.9 + 0.32 * indices["parameter"].nunique(),
                                width=max(WIDTH_IN, 1.2 + 2.0 * len(outputs)), sharey=True)
        for ax, out in zip(axes, outputs, strict=True):
            d = indices[indices["output"] == out].iloc[::-1]
            y = np.arange(len(d))
            ax.set_title(_wrap(d["label"].iloc[0], 24) if "label" in d and len(d) else out)
            ax.set_xlabel("Share of output variance (–)")
            if not np.isfinite(d["ST"]).any():
                ax.set_yticks(y, [_short_param(p) for p in d["parameter"]])
                _no_data(ax, "output does not vary")
                continue
            ax.barh(y + 0.19, d["ST"], height=0.36, xerr=d["ST_conf"], color="0.25", label="total (ST)",
                    error_kw={"elinewidth": 0.7, "capsize": 2})
            ax.barh(y - 0.19, d["S1"], height=0.36, xerr=d["S1_conf"], color="white", edgecolor="0.25",
                    hatch="////", linewidth=0.7, label="first order (S1)", error_kw={"elinewidth": 0.7, "capsize": 2})
            ax.set_yticks(y, [_short_param(p) for p in d["parameter"]])
            ax.axvline(0, color="0.3", linewidth=0.6)
            ax.set_xlim(min(0.0, float((d["S1"] - d["S1_conf"]).min()) - 0.02),
                        max(1.0, float((d["ST"] + d["ST_conf"]).max()) + 0.02))
            ax.grid(axis="y", visible=False)
        h, texts = [], []
        for ax in axes:
            h, texts = ax.get_legend_handles_labels()
            if h:
                break
        for ax in axes[1:]:
            ax.tick_params(axis="y", labelleft=False)
        if h:
            fig.legend(h[::-1], texts[::-1], loc="outside lower center", ncols=2)
        head = "Sobol indices with 95 % confidence intervals"
        fig.suptitle(f"{head}\n{title}" if title else head)
        return fig


def convergence_chart(conv: pd.DataFrame, title: str = "") -> Figure:
    """Indices against the sample size they were computed on (total-order ST for Sobol, mu* for Morris),
    one line per parameter, one panel per output. ``conv`` is the table of
    :func:`experiments.sensitivity.convergence`."""
    sobol = "ST" in conv
    index = "ST" if sobol else "mu_star"
    outputs = list(dict.fromkeys(conv["output"]))
    with _style_context():
        fig, axes = _new_figure(len(outputs), height=2.8, width=max(WIDTH_IN, 2.4 * len(outputs)))
        for ax, out in zip(axes, outputs, strict=True):
            d = conv[conv["output"] == out]
            ax.set_title(_wrap(out, 24))
            for p, g in d.groupby("parameter", sort=False):
                g = g.sort_values("size")
                ax.plot(g["size"], g[index], marker="o", markersize=3, linewidth=1, label=_short_param(p))
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(d["size"].unique()), [str(n) for n in sorted(d["size"].unique())])
            ax.set_xlabel("base samples (n)" if sobol else "trajectories")
            ax.set_ylabel("total-order index ST (–)" if sobol else "μ*")
        h, texts = axes[0].get_legend_handles_labels()
        if h:
            fig.legend(h, texts, loc="outside lower center", ncols=min(4, len(h)))
        head = "Convergence: indices on growing subsets of the sample"
        fig.suptitle(f"{head}\n{title}" if title else head)
        return fig


def _wrap(text: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _short_param(p: str) -> str:
    """``behaviour.full_cost_markup`` -> ``full_cost_markup``; ``armed_groups.KIA.levy_usd_per_kg`` -> ``KIA.levy_usd_per_kg``."""
    parts = p.split(".")
    return ".".join(parts[1:]) if len(parts) > 1 else p


def price_chart(df: pd.DataFrame, path: str | Path | None = None, title: str = "") -> Figure:
    """Oxide prices, China-domestic beside ex-China, one panel per product (median, 10-90 % band)."""
    fig = price_paths(df, title=title)
    if path is not None:
        with _style_context():
            fig.savefig(path, dpi=150)
    return fig


# ------------------------------------------------------------------------------------- saving, sets
# ------------------------------------------------------------------------------- effects and events
def mark_events(fig: Figure, events: Sequence[tuple] | None, label_first: bool = True) -> Figure:
    """Dotted vertical lines at the dates of ``events`` (``(date, text)``, e.g. a policy's start and end
    from :func:`experiments.compare.timeline_events`) on every time axis of ``fig``; events on one date
    share a line, labelled on the first panel. Dates outside a panel's range are left out."""
    if not events:
        return fig
    by_date: dict = {}
    for when, text in events:
        by_date.setdefault(pd.Timestamp(when), []).append(text)
    axes = [ax for ax in fig.axes if isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)]
    if not axes:
        return fig
    lo, hi = (mdates.num2date(x).replace(tzinfo=None) for x in axes[0].get_xlim())
    shown = [w for w in by_date if lo <= w.to_pydatetime() <= hi]
    label_first = label_first and len(shown) <= MAX_EVENT_LABELS  # more would be unreadable: lines only
    if shown:
        note = "dotted: start or end of a timeline entry" + ("" if label_first else f" ({len(shown)} dates)")
        title = " · ".join(t for t in (fig.get_suptitle().replace("\n", " · "), note) if t)
        fig.suptitle(_wrap(title, int(fig.get_figwidth() * 10)))  # about 10 characters of title an inch
    for k, ax in enumerate(axes):
        lo, hi = (mdates.num2date(x).replace(tzinfo=None) for x in ax.get_xlim())
        for when, texts in by_date.items():
            if not lo <= when.to_pydatetime() <= hi:
                continue
            ax.axvline(when, color="0.35", linestyle=":", linewidth=0.9, zorder=0.5)
            if label_first and k == 0:
                text = texts[0] if len(texts) == 1 else f"{texts[0]} (+{len(texts) - 1})"
                ax.text(when, 0.98, f"{text} ", transform=ax.get_xaxis_transform(), rotation=90, va="top",
                        ha="left", fontsize=6, color="0.3",
                        bbox={"facecolor": "white", "alpha": 0.75, "linewidth": 0, "pad": 0.4})
    return fig


def paired_difference(paths: pd.DataFrame, variable: str = "price", title: str = "",
                      events: Sequence[tuple] | None = None, q: tuple[float, float] = QUANTILES) -> Figure:
    """Policy minus twin, week by week, of ``variable``'s 4-week means: one panel per product, a line per
    market region (median over seeds) and a band from the ``q`` quantiles of the paired differences over
    seeds (say so in the legend), with the policy's events marked. ``paths`` comes from
    :func:`experiments.compare.paired_paths`."""
    prods = labels.ordered(set(paths["product"]), labels.world_of().product_names) if len(paths) else []
    n = int(paths["seed"].nunique()) if len(paths) else 0
    with _style_context():
        fig, axes = _new_figure(max(len(prods), 1))
        regions = labels.ordered(set(paths["region"]), labels.world_of().region_ids) if len(paths) else []
        for ax, prod in zip(axes, prods, strict=False):
            ax.axhline(0.0, color="0.5", linewidth=0.7)
            for i, region in enumerate(regions):
                d = paths[(paths["product"] == prod) & (paths["region"] == region)].dropna(subset=["value"])
                if d.empty:
                    continue
                g = d.groupby("date")["value"]
                s = pd.DataFrame({"median": g.median(), "lo": g.quantile(q[0]), "hi": g.quantile(q[1])}).reset_index()
                _draw(ax, s, pretty(region, market=True), region_style(i), n > 1, i)
            ax.set_title(_panel_title(prod))
            ax.set_ylabel(_label(f"{OUTPUTS[variable].label}, difference", OUTPUTS[variable].unit))
            _date_axis(ax)
            if len(paths):
                _date_limits(ax, paths)
        if not prods:
            _no_data(axes[0], "no paired runs")
        h, texts = axes[0].get_legend_handles_labels()
        if n > 1 and h:
            band = Patch(facecolor="0.6", alpha=0.35, linewidth=0,
                         label=f"p{q[0] * 100:.0f}–p{q[1] * 100:.0f} over {n} seeds of the paired difference")
            h, texts = [*h, band], [*texts, band.get_label()]
        if h:
            fig.legend(h, texts, loc="outside lower center", ncols=len(h))
        fig.suptitle(_wrap(title or f"Policy minus twin: {OUTPUTS[variable].label.lower()}, 4-week means, "
                                    f"median over {n} paired seeds", 95))
        return mark_events(fig, events)


def lever_response(table: pd.DataFrame, outcomes: Sequence[str] | None = None, title: str = "") -> Figure:
    """Outcome against the lever's level, levels in numeric order: the mean over runs at each level with
    its bootstrap interval, one panel per outcome. ``table`` comes from
    :func:`experiments.compare.lever_effects` (its ``attrs`` name the lever and the interval's level)."""
    from experiments.compare import level_order

    lever = table.attrs.get("lever", "level")
    conf = table.attrs.get("level", 0.95)
    names = list(outcomes) if outcomes is not None else list(dict.fromkeys(table["outcome"]))
    levels = level_order(table["level"])
    numeric = all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
                  for v in levels)
    ncols = min(3, max(len(names), 1))
    nrows = -(-max(len(names), 1) // ncols)
    with _style_context():
        fig = Figure(figsize=(WIDTH_IN, 1.0 + 2.2 * nrows), layout="constrained")
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        runs = 0
        for ax, name in zip(axes, names, strict=False):
            d = table[table["outcome"] == name].set_index("level").loc[levels]
            x = np.asarray(levels, dtype=float) if numeric else np.arange(len(levels))
            y = d["mean"].to_numpy(dtype=float)
            err = np.vstack([y - d["ci_low"].to_numpy(dtype=float), d["ci_high"].to_numpy(dtype=float) - y])
            style = series_style(0)
            ax.errorbar(x, y, yerr=np.clip(err, 0, None), capsize=2.5, color=style["color"], marker="o",
                        markerfacecolor="white", markeredgewidth=0.9, linewidth=1.1)
            ax.set_title(_wrap(str(d["label"].iloc[0]), 24))
            ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_ylabel(str(d["unit"].iloc[0]))
            if not numeric:
                ax.set_xticks(x, [str(v) for v in levels])
            ax.set_xlabel(_wrap(_short_param(lever), 40))
            runs = max(runs, int(d["n_runs"].max()))
        for ax in axes[len(names):]:
            ax.set_visible(False)
        fig.suptitle(_wrap(title or f"Outcomes by {_short_param(lever)}: mean over the {runs} runs of each level, "
                                    f"{conf:.0%} bootstrap interval over seeds", 95))
        return fig


FIGURES: dict[str, Callable[..., Figure]] = {
    "price_paths": price_paths,
    "spread_ratio": spread_ratio,
    "ore_flows": ore_flows,
    "shortage": shortage,
    "exports": exports,
    "capacity_buildout": capacity_buildout,
    "magnet_buildout": magnet_buildout,
}
# a figure drawn only for tables that record this output, unless asked for by name (``--kind``)
NEEDS: dict[str, str] = {"magnet_buildout": "magnet_capacity"}


def save(fig: Figure, stem: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``stem.pdf``, ``stem.svg`` and ``stem.png`` (300 dpi); returns the paths. A failed write
    raises :class:`experiments.paths.OutputError` naming the file."""
    from experiments.paths import writing

    stem = Path(stem)
    with writing(stem.parent):
        stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with _style_context():
        for fmt in formats:
            p = stem.parent / f"{stem.name}.{fmt}"  # not with_suffix: a name may hold a "."
            with writing(p):
                fig.savefig(p, dpi=DPI if fmt == "png" else "figure", metadata=_metadata(fmt))
            paths.append(p)
    return paths


def _metadata(fmt: str) -> dict | None:
    from experiments.run import version

    if fmt == "pdf":
        return {"Creator": f"ree-abm {version()}"}
    if fmt == "png":
        return {"Software": f"ree-abm {version()}"}
    return None


def _is_run(p: Path) -> bool:
    return (p / "results.parquet").is_file()


def _is_sweep(p: Path) -> bool:
    if not ((p / "manifest.json").is_file() and (p / "runs").is_dir()):
        return False
    try:
        import json

        return json.loads((p / "manifest.json").read_text()).get("kind", "sweep") == "sweep"
    except (OSError, ValueError):
        return False


def find_results(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included) holding a run (results.parquet) or a sweep (manifest.json
    and runs/); a found folder is not searched further; ``figures`` folders are skipped."""
    root = Path(root)
    found: list[Path] = []

    def walk(p: Path, depth: int) -> None:
        if _is_run(p) or _is_sweep(p):
            found.append(p)
            return
        if depth >= max_depth:
            return
        for c in sorted(x for x in p.iterdir() if x.is_dir()):
            if not c.name.startswith((".", "_")) and c.name != "figures":
                walk(c, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return found


def load_results(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The tidy tables in a run or sweep folder, by scenario name."""
    folder = Path(folder)
    if _is_run(folder):
        try:
            df = pd.read_parquet(folder / "results.parquet")
        except (OSError, ValueError) as exc:  # ArrowInvalid (a truncated file) is a ValueError
            from model.params import ConfigError

            raise ConfigError(f"{folder / 'results.parquet'}: cannot read this results file "
                              f"({type(exc).__name__}: {exc}); run the scenario again to rewrite it") from None
    elif _is_sweep(folder):
        from experiments.sweep import load_sweep

        df = load_sweep(folder)
    else:
        from model.params import ConfigError

        raise ConfigError(f"{folder}: neither a run folder (results.parquet) nor a sweep folder (manifest.json)")
    return {str(name): g.reset_index(drop=True) for name, g in df.groupby("scenario", sort=True)}


def figure_set(df: pd.DataFrame, out: str | Path, title: str = "", formats: Iterable[str] = FORMATS,
               kinds: Iterable[str] | None = None, events: Sequence[tuple] | None = None) -> list[Path]:
    """Every figure type for one scenario's table (or ``kinds``), saved under ``out``; ``events`` (``(date,
    text)``, the scenario's policy starts and ends) are marked on the time axes. Without ``kinds``, a type that
    needs an output the table does not record (:data:`NEEDS`: magnets in a world without them) is left out."""
    paths: list[Path] = []
    if kinds is None:
        recorded = set(df["variable"].unique())
        kinds = [k for k in FIGURES if k not in NEEDS or NEEDS[k] in recorded]
    for kind in kinds:
        fig = mark_events(FIGURES[kind](df, title=title), events)
        paths += save(fig, Path(out) / kind, formats)
    return paths


def _scenario_events(src: Path) -> dict[str, list[tuple]]:
    """The timeline events of each scenario in a run folder (provenance.json) or sweep (manifest.json)."""
    import json

    from experiments.compare import timeline_events

    try:
        if _is_run(src):
            sc = json.loads((src / "provenance.json").read_text()).get("scenario", {})
            return {sc.get("name", ""): timeline_events(sc)}
        manifest = json.loads((src / "manifest.json").read_text())
        fixed = manifest.get("spec", {}).get("overrides", {})
        return {name: timeline_events(_with_fixed_levers(sc, fixed)) for name, sc in manifest["scenarios"].items()}
    except (OSError, ValueError, AttributeError):
        return {}  # no provenance: figures without markers


def lever_stem(key: str) -> str:
    """File name of a lever's figure: ``policy.Stockpile[US].target_days`` -> ``lever_Stockpile_US_target_days``."""
    import re

    return "lever_" + (re.sub(r"[^A-Za-z0-9#-]+", "_", _short_param(key)).replace("#", "-").strip("_") or "x")


def _varied(src: Path) -> list[str]:
    """A sweep's varied parameters (its manifest's ``varied``), none for a run folder."""
    import json

    if not _is_sweep(src):
        return []
    try:
        return list(json.loads((src / "manifest.json").read_text()).get("varied", []))
    except (OSError, ValueError):
        return []


def _with_fixed_levers(scenario: dict, overrides: dict) -> dict:
    """A scenario (as a dict) with a sweep's fixed policy levers applied (e.g. a moved start date), so its
    event markers show the timeline the runs had; levers varied by the design are not applied."""
    from experiments.levers import apply_levers, is_lever
    from model.params import ConfigError
    from model.scenario import Scenario

    levers = {k: v for k, v in overrides.items() if is_lever(k)}
    if not levers:
        return scenario
    try:
        sc, _ = apply_levers(Scenario.model_validate(scenario), levers)
    except (ConfigError, ValueError):
        return scenario
    return sc.to_dict()


def lever_figures(df: pd.DataFrame, varied: Iterable[str], out: str | Path, title: str = "",
                  formats: Iterable[str] = FORMATS) -> list[Path]:
    """For each policy lever a sweep varies (``policy.…``, 2 to 24 levels): the outcome-by-level figure
    (:func:`lever_response`) and its table (``lever_<key>.csv``: mean and paired effect against the first
    level, with intervals), the figure's data beside it."""
    from experiments.compare import LEVEL, import_outcomes, lever_effects
    from experiments.levers import is_lever
    from experiments.paths import inside, label
    from experiments.run import atomic_write_bytes

    paths: list[Path] = []
    # under a posterior (ree sweep --posterior) each level's runs are seeds x drawn parameter sets, and the
    # interval resamples them all: say so
    over = "seeds and posterior draws" if "draw" in df.columns and df["draw"].nunique() > 1 else "seeds"
    for p in varied:
        if not is_lever(p) or p not in df.columns or not 2 <= df[p].nunique() <= 24:
            continue
        table = lever_effects(df, p)
        stem = inside(Path(out), label(lever_stem(p)))
        atomic_write_bytes(stem.parent / f"{stem.name}.csv", table.to_csv(index=False).encode())
        fig = lever_response(table, import_outcomes(df),
                             title=f"{title}: by {_short_param(p)}; mean over the runs of each level, "
                                   f"{LEVEL:.0%} bootstrap interval over {over}" if title else "")
        paths += save(fig, stem, formats)
    return paths


def make_figures(root: str | Path, out: str | Path | None = None, formats: Iterable[str] = FORMATS,
                 kinds: Iterable[str] | None = None, progress: bool = False) -> list[Path]:
    """The figure set for every scenario in every run or sweep folder under ``root``.

    Figures go to ``out`` (default ``root/figures``), mirroring the folders: ``results/baseline`` ->
    ``results/figures/baseline/price_paths.pdf``; a sweep folder gets one subfolder per scenario. With
    more than one scenario, ``comparison/`` holds the ex-China prices of all of them on one figure.

    Nothing is written outside ``out``: scenario and product names come from the tables, so they are
    labels, made into safe folder and file names by :func:`experiments.paths.label` (``../../x`` ->
    ``x-<hash>``), and every path is checked to stay inside ``out``. ``out`` is created and checked
    before any figure is drawn (:class:`experiments.paths.OutputError` if it cannot be written).
    ``progress`` shows a bar on stderr counting the scenarios drawn (and the comparison).
    """
    from experiments.paths import ensure_dir, inside, label
    from experiments.run import progress_bar
    from model.params import ConfigError

    root = Path(root)
    if not root.exists():
        raise ConfigError(f"{root}: no such folder")
    sources = find_results(root)
    if not sources:
        raise ConfigError(f"{root}: no results found (expected results.parquet from `ree run` or a sweep "
                          "folder from `ree sweep`, here or in subfolders)")
    out = ensure_dir(Path(out) if out is not None else root / "figures")
    formats = tuple(formats)
    paths: list[Path] = []
    compare: dict[str, pd.DataFrame] = {}
    # one step per scenario drawn; a folder's scenarios are known once it is read (one step until then)
    with progress_bar(len(sources), "figures", progress, unit="scenario") as bar:
        for src in sources:
            tables = load_results(src)
            bar.total += len(tables) - 1
            bar.refresh()
            rel = src.relative_to(root)
            events = _scenario_events(src)
            varied = _varied(src)
            for name, df in tables.items():
                dest = inside(out, rel, label(name)) if _is_sweep(src) else inside(out, rel)
                n = _n_runs(df)
                title = f"{name} ({n} run{'s' if n > 1 else ''})"
                log.info("figures for %s (%s) -> %s", name, src, dest)
                bar.set_postfix_str(name, refresh=False)
                paths += figure_set(df, dest, title, formats, kinds, events.get(name))
                if _is_sweep(src) and kinds is None:
                    paths += lever_figures(df, varied, dest, title, formats)
                if name not in compare or _n_runs(df) > _n_runs(compare[name]):
                    compare[name] = df  # per scenario, the source with the most runs
                    bar.total += len(compare) == 2  # a second scenario: the comparison is one more step
                bar.update()
        if len(compare) > 1:
            bar.set_postfix_str("comparison", refresh=False)
            found = {p for t in compare.values() for p in labels.products(t)}
            for prod in labels.ordered(found, labels.world_of().product_names):
                fig = scenario_comparison(dict(sorted(compare.items(), key=lambda kv: natural_key(kv[0]))), "price",
                                          prod)
                paths += save(fig, inside(out, "comparison", label(f"price_{prod}")), formats)
            bar.update()
    return paths

