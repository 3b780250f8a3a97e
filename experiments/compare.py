"""Two scenarios side by side on the same seeds: the key outputs a policy debate asks about."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.labels import market_regions, products
from experiments.run import run_one
from model.scenario import load_scenario


def key_outputs(df: pd.DataFrame) -> dict[str, float]:
    """Scalar summaries of one run (names carry their units); products and market regions are the
    table's own, in the world's order."""
    out: dict[str, float] = {}
    price = df[df["variable"] == "price"]
    prods = products(df)
    for region in market_regions(df):
        for p in prods:
            s = price[(price["region"] == region) & (price["product"] == p)]["value"]
            out[f"{p} {region} price, mean (USD/kg)"] = float(s.mean())
            out[f"{p} {region} price, peak (USD/kg)"] = float(s.max())
    short = df[df["variable"] == "shortage"]
    for p in prods:
        out[f"{p} shortage, total (t)"] = float(short[short["product"] == p]["value"].sum())
    exports = df[df["variable"] == "exports"]
    for p in prods:
        out[f"{p} China's exports, total (t)"] = float(exports[exports["product"] == p]["value"].sum())
    share = df[(df["variable"] == "china_refined_share") & (df["product"] == "")]["value"]
    out["China share of refining, last year"] = float(share.iloc[-52:].mean())
    cap = df[(df["variable"] == "capacity_online") & (df["region"] != "CN")]
    last = cap[cap["step"] == cap["step"].max()]["value"].sum()
    out["ex-China capacity at end (t REO/week)"] = float(last)
    mm = df[df["variable"] == "myanmar_ore_to_china"]["value"]
    out["Myanmar ore to China, total (t)"] = float(mm.sum())
    lev = df[df["variable"] == "levy_revenue"]["value"]
    out["armed-group levies, total (M USD)"] = float(lev.sum())
    return out


def compare_scenarios(a: str, b: str, seeds: list[int], weeks: int | None = None) -> str:
    sa, sb = load_scenario(a), load_scenario(b)
    if weeks is None:
        weeks = min(sa.weeks, sb.weeks)
    cols = {}
    for sc in (sa, sb):
        rows = [key_outputs(run_one(sc, s, weeks)) for s in seeds]
        name = sc.name if sc.name not in cols else f"{sc.name} (2)"  # a scenario against itself
        cols[name] = pd.DataFrame(rows).median()
    table = pd.DataFrame(cols)
    first, second = table.columns
    table["change"] = np.where(table[first].abs() > 1e-9, table[second] / table[first] - 1.0, np.nan)
    lines = [f"{first} vs {second}: medians over seeds {seeds[0]}..{seeds[-1]}, {weeks} weeks"]
    width = max(len(i) for i in table.index)
    lines.append(f"{'':{width}}  {first:>14}  {second:>14}  {'change':>8}")
    for name, r in table.iterrows():
        ch = "" if not np.isfinite(r["change"]) else f"{r['change']:+.0%}"
        lines.append(f"{name:{width}}  {_num(r[first])}  {_num(r[second])}  {ch:>8}")
    return "\n".join(lines)


def _num(x: float) -> str:
    """Width 14: shares and other small numbers with three decimals, the rest with one."""
    return f"{x:14,.3f}" if abs(x) < 10 else f"{x:14,.1f}"
