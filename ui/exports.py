"""What the page lets a class take away: the run's data as CSV and its charts as PNG files.

The CSV is the model's own results table (``model.results()``: the columns of :data:`model.results.COLUMNS`,
one row per output, week, region and product), so a spreadsheet gets exactly what ``ree run`` writes to
``results.parquet``. The PNGs are drawn by the matplotlib charts of :mod:`ui.charts` from a fresh
:class:`~ui.history.History`, with the run's events marked on the time axis as on the page. Both read a
model that must not step meanwhile: the page calls them holding its frame gate's ``stepping`` lock.
"""

from __future__ import annotations

import re

from ui import charts, network_map
from ui.history import History
from ui.words import MARKER_COLOURS, markers

# name -> (what the button says, what the file is called); the page's charts, in the page's order
CHARTS: dict[str, str] = {
    "prices": "Prices",
    "flows": "Myanmar ore flow",
    "shortage": "Unmet need",
    "share": "China's refined share",
    "stockpile": "Stockpiles",
    "map": "Supply network map",
}


def stem(m, what: str) -> str:
    """'baseline_seed0_prices': scenario and seed in every file name (safe characters only). The week is
    in the data (the CSV's ``step`` and ``date``, the charts' last date), not the name: the page names the
    file when it draws the button, and the run goes on after that."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{m.scenario_name}_seed{m.seed}_{what}")


def results_csv(m) -> bytes:
    """The run's results table so far, as CSV (UTF-8, a header row, no index)."""
    return m.results().to_csv(index=False).encode("utf-8")


def chart_png(m, name: str, product: str | None = None) -> bytes:
    """One of :data:`CHARTS` as a PNG, drawn from the run so far; ``product`` for the per-product charts
    (default: the story product, Dy in the shipped world)."""
    from ui.panels import (  # the page's own helpers
        myanmar_corridors,
        network_view,
        place_names,
        story_product,
    )

    if name == "map":
        view = network_view(m)
        return network_map.MapChart(view).update(view).png()
    h = History().update(m)
    product = product or story_product(m)
    if name == "prices":
        chart = charts.PriceChart(charts.Markets.of(m)).update(h)
        axes = list(chart.axes)
    elif name == "flows":
        chart = charts.FlowChart(myanmar_corridors(m)).update(h)
        axes = [chart.ax]
    elif name == "shortage":
        chart = charts.RegionLinesChart("shortage", place_names(m)).update(h, product)
        axes = [chart.ax]
    elif name == "stockpile":
        chart = charts.RegionLinesChart("stockpile", place_names(m), charts.STOCKPILE_EMPTY).update(h, product)
        axes = [chart.ax]
    elif name == "share":
        refined = [p for p in m.products if m.world.product(p).stage == "oxide"]
        chart = charts.ShareChart(refined).update(h)
        axes = [chart.ax]
    else:
        raise KeyError(f"no chart {name!r}; charts: {', '.join(CHARTS)}")
    charts.draw_markers(axes, markers(m.told), MARKER_COLOURS)
    return chart.png()
