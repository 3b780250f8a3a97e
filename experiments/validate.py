"""Validation against the seed's facts and public figures: one table, one figure.

Each :class:`Target` names the scenario it needs, the fact it checks (seed F-id or FACTS id), the band
that counts as a pass, and a metric: a function of one run's tidy table returning a number. ``validate``
runs every needed scenario over the same seeds, computes each metric per seed, and reports the median
and the 10th-90th percentile range. Where the seed's figure and the public one differ (seed/BRIEF.md),
the table shows both: the band is the seed's, ``public`` quotes the public source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.results import series

REF_PRICE = {"NdPr": 61.0, "Dy": 225.0, "Tb": 890.0}  # FACTS C15 (26 Mar 2025 levels)


def _dates(df: pd.DataFrame) -> pd.Series:
    return df.drop_duplicates("step").set_index("step")["date"]


def window(df: pd.DataFrame, variable: str, start: str, end: str, region: str = "", product: str = "") -> pd.Series:
    """Values of one output between two dates (inclusive)."""
    s = series(df, variable, region, product)
    d = _dates(df).reindex(s.index)
    return s[(d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end))]


# ------------------------------------------------------------------------------------------------ metrics
def china_share(df: pd.DataFrame) -> float:
    return float(series(df, "china_refined_share").median())


def myanmar_heavy_share(df: pd.DataFrame) -> float:
    return float(series(df, "myanmar_share_cn_heavy_feed").median())


def price_band(product: str) -> Callable[[pd.DataFrame], float]:
    """Largest deviation of the 13-week mean CN price from its 2024 level (fraction)."""

    def metric(df: pd.DataFrame) -> float:
        s = series(df, "price", "CN", product).rolling(13).mean().dropna() / REF_PRICE[product]
        return float(np.max(np.abs(s - 1.0)))

    return metric


def kachin_sites(df: pd.DataFrame) -> float:
    return float(series(df, "kachin_active_sites").median())


def ore_yoy(df: pd.DataFrame) -> float:
    """Myanmar -> China ore in Feb 2025 vs Feb 2024 (fraction change)."""
    feb25 = window(df, "myanmar_ore_to_china", "2025-02-01", "2025-02-28").mean()
    feb24 = window(df, "myanmar_ore_to_china", "2024-02-01", "2024-02-29").mean()
    return float(feb25 / feb24 - 1.0)


def shock_rise(product: str) -> Callable[[pd.DataFrame], float]:
    """Peak CN price within four weeks of the Feb 2025 halt over the last pre-shock weeks."""

    def metric(df: pd.DataFrame) -> float:
        pre = window(df, "price", "2025-01-20", "2025-01-27", "CN", product).mean()
        post = window(df, "price", "2025-02-01", "2025-03-03", "CN", product).max()
        return float(post / pre - 1.0)

    return metric


def export_spread(product: str) -> Callable[[pd.DataFrame], float]:
    """Largest ex-China / China-domestic price ratio within eight weeks of the 4 Apr 2025 licences."""

    def metric(df: pd.DataFrame) -> float:
        row = window(df, "price", "2025-04-04", "2025-05-30", "ROW", product)
        cn = window(df, "price", "2025-04-04", "2025-05-30", "CN", product)
        return float((row / cn).max())

    return metric


def domestic_change(product: str) -> Callable[[pd.DataFrame], float]:
    """Largest rise of the China-domestic price within eight weeks of the licences (fraction)."""

    def metric(df: pd.DataFrame) -> float:
        pre = window(df, "price", "2025-03-24", "2025-04-01", "CN", product).mean()
        cn = window(df, "price", "2025-04-04", "2025-05-30", "CN", product)
        return float(cn.max() / pre - 1.0)

    return metric


def exchina_share_gain(df: pd.DataFrame) -> float:
    """Change of the ex-China share of refined output, first year to last year (fraction points)."""
    s = 1.0 - series(df, "china_refined_share")
    return float(s.iloc[-52:].mean() - s.iloc[:52].mean())


def ore_value(df: pd.DataFrame) -> float:
    """Median Kachin ore price at the mine gate plus levies and transport ~ value at the border."""
    d = df[(df["variable"] == "ore_price")]
    return float(d["value"].median())


@dataclass(frozen=True)
class Target:
    name: str
    scenario: str
    source: str
    lo: float
    hi: float
    metric: Callable[[pd.DataFrame], float]
    unit: str = ""
    public: str = ""  # the public figure where it differs from the seed's


TARGETS: list[Target] = [
    Target("China share of refined output", "baseline", "seed F7; FACTS B4", 0.85, 0.95, china_share,
           "fraction", "IEA: 0.92 (2023)"),
    Target("Myanmar share of China's heavy feed", "baseline", "FACTS C1", 0.40, 0.60, myanmar_heavy_share,
           "fraction"),
    *[Target(f"{p} price, max deviation of 13-wk mean from 2024", "baseline", "FACTS C15", 0.0, 0.25,
             price_band(p), "fraction") for p in ("NdPr", "Dy", "Tb")],
    Target("Active Kachin mine sites", "baseline", "seed F12; FACTS C7", 300, 450, kachin_sites, "sites",
           "ISP-Myanmar: 370+ (end 2024)"),
    Target("Kachin ore gate price", "baseline", "seed F14", 8.0, 16.0, ore_value, "USD/kg REO",
           "seed: ~14.5 USD/kg at the border"),
    Target("Myanmar->China ore, Feb 2025 y/y", "myanmar_2025", "seed F15", -0.95, -0.80, ore_yoy, "fraction",
           "SMM: -56 % (FACTS C13)"),
    *[Target(f"{p} price rise within 4 weeks of the halt", "myanmar_2025", "seed F16", 0.45, 0.75,
             shock_rise(p), "fraction", "not found publicly (FACTS C15)") for p in ("Dy", "Tb")],
    *[Target(f"{p} ex-China / China price within 8 weeks", "china_controls_2025", "FACTS D5", 2.5, 6.0,
             export_spread(p), "ratio", "Argus: Dy 3-4x, Tb 2-4x") for p in ("Dy", "Tb")],
    *[Target(f"{p} China-domestic price change", "china_controls_2025", "FACTS D5", -0.5, 0.20,
             domestic_change(p), "fraction", "'remained stable'") for p in ("Dy", "Tb")],
    Target("Ex-China share of refining, gain", "us_japan_framework", "seed F3, F5; M3", 0.0, 1.0,
           exchina_share_gain, "fraction points"),
]


def _run(args: tuple[str, int]) -> tuple[str, int, pd.DataFrame]:
    from experiments.run import run_one

    scenario, seed = args
    return scenario, seed, run_one(scenario, seed)


def validate(seeds: list[int], workers: int = 2, targets: list[Target] | None = None) -> pd.DataFrame:
    """Run every scenario the targets need over ``seeds``; one row per target."""
    targets = targets or TARGETS
    jobs = [(sc, s) for sc in dict.fromkeys(t.scenario for t in targets) for s in seeds]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            runs = list(ex.map(_run, jobs))
    else:
        runs = [_run(j) for j in jobs]
    by_scenario: dict[str, list[pd.DataFrame]] = {}
    for sc, _, df in runs:
        by_scenario.setdefault(sc, []).append(df)
    rows = []
    for t in targets:
        vals = np.array([t.metric(df) for df in by_scenario[t.scenario]])
        med = float(np.median(vals))
        rows.append({
            "target": t.name, "scenario": t.scenario, "source": t.source, "band": f"[{t.lo:g}, {t.hi:g}]",
            "unit": t.unit, "median": med, "p10": float(np.percentile(vals, 10)),
            "p90": float(np.percentile(vals, 90)), "pass": bool(t.lo <= med <= t.hi), "public": t.public,
            "seeds": len(vals),
        })
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| target | scenario | source | band | model median [p10, p90] | pass | public figure |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.target} | {r.scenario} | {r.source} | {r.band} {r.unit} | "
                     f"{r.median:.3g} [{r.p10:.3g}, {r.p90:.3g}] | {'pass' if r.pass_ else 'FAIL'} | {r.public} |")
    return "\n".join(lines)


def figure(table: pd.DataFrame, path) -> None:
    """One panel per target in its own unit: grey band = target, dot = median, line = 10-90 % over
    seeds; a cross instead of a dot marks a failed target."""
    from matplotlib.figure import Figure

    n = len(table)
    fig = Figure(figsize=(9, 0.62 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, r in zip(axes, table.itertuples(), strict=True):
        lo, hi = (float(x) for x in r.band.strip("[]").split(","))
        span = max(hi, r.p90) - min(lo, r.p10)
        left, right = min(lo, r.p10) - 0.15 * span, max(hi, r.p90) + 0.15 * span
        ax.axvspan(lo, hi, color="0.85")
        ax.plot([r.p10, r.p90], [0, 0], color="black", linewidth=1.5)
        ax.plot(r.median, 0, marker="o" if r.pass_ else "X", color="black", markersize=7)
        ax.set_xlim(left, right)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.set_title(f"{r.target} ({r.source}) [{r.unit}]", fontsize=8, loc="left", pad=2)
    fig.suptitle(f"Validation over {int(table['seeds'].iloc[0])} seeds: grey = target band, dot = median "
                 f"(x = fail), line = 10-90 %", fontsize=9)
    fig.savefig(path, dpi=150)


def run_validation(seeds: list[int], out, workers: int = 2) -> pd.DataFrame:
    from pathlib import Path

    from experiments.run import atomic_write_bytes, atomic_write_json, provenance
    from model.scenario import load_scenario

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = dt.datetime.now()
    table = validate(seeds, workers)
    table.rename(columns={"pass": "pass_"}).pipe(lambda t: atomic_write_bytes(
        out / "validation.md", (to_markdown(t) + "\n").encode()))
    atomic_write_bytes(out / "validation.csv", table.to_csv(index=False).encode())
    figure(table.rename(columns={"pass": "pass_"}), out / "validation.png")
    atomic_write_json(provenance(load_scenario("baseline"), seeds, None,
                                 extra={"wall_seconds": (dt.datetime.now() - t0).total_seconds()}),
                      out / "provenance.json")
    return table
