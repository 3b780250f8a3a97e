"""Issue 3, item 3: the effects the shipped scenarios must show (10 seeds, medians, stated tolerances).

| scenario | target (issue 3) | statistic tested |
|---|---|---|
| ``myanmar_2025`` | Myanmar -> China ore -80 to -95 % y/y | mean of ``myanmar_ore_to_china`` over Feb 2025 vs Feb 2024, median over seeds |
| ``myanmar_2025`` | Dy and Tb +45 to +75 % within 4 weeks of the shock (seed F15-F16) | CN price, max over 2025-02-01..03-03 vs mean over 2025-01-20..27, median |
| ``china_controls_2025`` | ex-China Dy, Tb >= 2.5x domestic within 8 weeks; domestic <= +20 % (FACTS D5) | max over the 8 weeks of ROW/CN; max CN over those weeks vs the week before, medians |
| ``us_japan_framework`` | projects selected by week 26 | every seed: a lender selected a project, dated <= 2025-10-28 + 26 weeks |
| ``us_japan_framework`` | ex-China capacity and share rise within the horizon | capacity: last week vs first, every seed, by at least the financed plants; share: last half-year vs first, median |
| ``us_japan_framework`` | with stockpiles + rapid response, a Myanmar shock's peak price and total shortage are lower, same seeds | paired medians (see ``SHOCK``) |

The corridor, sanction and traceability effects are in ``tests/model/test_corridor_policies.py``.
Runs are cached for the session and shared between xdist workers (``tests/conftest.py``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from model.params import load_world
from tests.seedstats import fmt, med, report

SEEDS = list(range(1, 11))


def window(s: pd.Series, start: str, end: str) -> pd.Series:
    """Rows of a date-indexed series with start <= date <= end."""
    return s[(s.index >= pd.Timestamp(start)) & (s.index <= pd.Timestamp(end))]


# ================================================================================================ myanmar_2025
MYANMAR = {"scenario": "myanmar_2025", "weeks": 70}  # to 2025-05-05: past the shock windows


@pytest.fixture(scope="module")
def myanmar(run_cached):
    run_cached.prefetch([{**MYANMAR, "seed": s} for s in SEEDS])
    return {s: run_cached(seed=s, **MYANMAR) for s in SEEDS}


def test_myanmar_2025_ore_to_china_falls_80_to_95_percent_year_on_year(myanmar):
    change = {}
    for s, rec in myanmar.items():
        ore = rec.series("myanmar_ore_to_china")
        feb24 = window(ore, "2024-02-01", "2024-02-29").mean()
        feb25 = window(ore, "2025-02-01", "2025-02-28").mean()
        change[s] = feb25 / feb24 - 1
    value = report(change)
    assert -0.95 <= value <= -0.80, f"Myanmar->China ore Feb 2025 vs Feb 2024: median {value:+.1%}; seeds {fmt(change)}"


@pytest.mark.parametrize("product", ["Dy", "Tb"])
def test_myanmar_2025_heavy_prices_rise_45_to_75_percent_within_4_weeks(myanmar, product):
    rise = {}
    for s, rec in myanmar.items():
        p = rec.series("price", "CN", product)
        before = window(p, "2025-01-20", "2025-01-27").mean()
        peak = window(p, "2025-02-01", "2025-03-03").max()
        rise[s] = peak / before - 1
    value = report(rise)
    assert 0.45 <= value <= 0.75, f"{product} CN price, max Feb 1-Mar 3 vs Jan 20-27: median {value:+.1%}; seeds {fmt(rise)}"


# ======================================================================================== china_controls_2025
CONTROLS = {"scenario": "china_controls_2025", "weeks": 30}
CONTROL_START = dt.date(2025, 4, 4)
CONTROL_WINDOW = ("2025-04-04", str(CONTROL_START + dt.timedelta(weeks=8)))


@pytest.fixture(scope="module")
def controls(run_cached):
    run_cached.prefetch([{**CONTROLS, "seed": s} for s in SEEDS])
    return {s: run_cached(seed=s, **CONTROLS) for s in SEEDS}


@pytest.mark.parametrize("product", ["Dy", "Tb"])
def test_china_controls_split_prices_2_5x_within_8_weeks(controls, product):
    ratio = {}
    for s, rec in controls.items():
        row, cn = rec.series("price", "ROW", product), rec.series("price", "CN", product)
        ratio[s] = window(row / cn, *CONTROL_WINDOW).max()
    value = report(ratio)
    assert value >= 2.5, f"{product} ROW/CN price, max within 8 weeks of 2025-04-04: median {value:.2f}x; seeds {fmt(ratio)}"


@pytest.mark.parametrize("product", ["Dy", "Tb"])
def test_china_controls_domestic_price_rises_at_most_20_percent(controls, product):
    rise = {}
    for s, rec in controls.items():
        cn = rec.series("price", "CN", product)
        before = cn[cn.index < pd.Timestamp(CONTROL_START)].iloc[-1]
        rise[s] = window(cn, *CONTROL_WINDOW).max() / before - 1
    value = report(rise)
    assert value <= 0.20, f"{product} CN price, max within 8 weeks vs the week before: median {value:+.1%}; seeds {fmt(rise)}"


# ========================================================================================= us_japan_framework
FRAMEWORK = {"scenario": "us_japan_framework"}
FRAMEWORK_START = dt.date(2025, 10, 28)
# A severe Myanmar shock about a year after the stockpiles begin: the KIA takes the other Kachin areas,
# fighting breaks out and all its sites halt for 26 weeks (myanmar_2025's halt, longer and total: a
# shorter one is absorbed by buyers' stocks and causes no shortage at all, with or without stockpiles).
SHOCK_START, SHOCK_END = "2026-11-02", "2027-05-03"
SHOCK_EVENTS = [
    {"type": "SiteSeizure", "start": SHOCK_START, "actor": "KIA", "areas": ["pangwa", "kanpaiti"], "note": "test"},
    {"type": "ConflictEscalation", "start": SHOCK_START, "end": SHOCK_END, "actor": "KIA", "level": "fighting"},
    {"type": "MiningHalt", "start": SHOCK_START, "end": SHOCK_END, "actor": "KIA", "share": 1.0},
]
SHOCK_WINDOW = (SHOCK_START, "2027-08-09")  # the shock and 14 weeks after it
SHOCK = {"scenario": "us_japan_framework", "weeks": 110, "extra": SHOCK_EVENTS}
NO_STOCKPILE = {**SHOCK, "drop": ["Stockpile"]}
EX_CHINA = lambda df: df.drop(columns=["CN"], errors="ignore").sum(axis=1)  # noqa: E731


@pytest.fixture(scope="module")
def framework(run_cached):
    run_cached.prefetch([{**FRAMEWORK, "seed": s} for s in SEEDS])
    return {s: run_cached(seed=s, **FRAMEWORK) for s in SEEDS}


@pytest.fixture(scope="module")
def shock_pairs(run_cached):
    run_cached.prefetch([{**v, "seed": s} for s in SEEDS for v in (SHOCK, NO_STOCKPILE)])
    return {s: (run_cached(seed=s, **SHOCK), run_cached(seed=s, **NO_STOCKPILE)) for s in SEEDS}


def test_framework_selects_projects_within_26_weeks(framework):
    """Weekly steps fall on the scenario's weekday, so a policy dated 2025-10-28 (a Tuesday) begins in
    the first week dated on or after it; the deadline is 26 weeks after that week."""
    for s, rec in framework.items():
        dates = rec.df["date"].drop_duplicates()
        began = dates[dates >= pd.Timestamp(FRAMEWORK_START)].min().date()
        deadline = began + dt.timedelta(weeks=26)
        selected = sorted({p for plants in rec.financing.values() for p in plants})
        assert selected, f"seed {s}: no project selected; lenders: {rec.financing}"
        dates = [d for d, text in rec.events if " finances " in text]
        assert dates and max(dates) <= deadline, f"seed {s}: selections dated {dates}, deadline {deadline}"


def test_framework_raises_ex_china_capacity_by_the_financed_plants(framework):
    nameplate = {r.id: r.capacity_t_per_week for r in load_world("world_2024.toml").refiners}
    for s, rec in framework.items():
        cap = EX_CHINA(rec.by_region("capacity_online"))
        financed = sum(nameplate[p] for plants in rec.financing.values() for p in plants)
        gain = cap.iloc[-1] - cap.iloc[0]
        assert gain > 0, f"seed {s}: ex-China capacity {cap.iloc[0]:.0f} -> {cap.iloc[-1]:.0f} t/week"
        assert gain >= financed - 1e-9, (f"seed {s}: ex-China capacity rose {gain:.0f} t/week, less than the "
                                         f"financed plants' {financed:.0f} ({rec.financing})")


def test_framework_lowers_china_refined_share(framework):
    change = {}
    for s, rec in framework.items():
        share = rec.series("china_refined_share")
        change[s] = share.iloc[-26:].mean() - share.iloc[1:27].mean()
    value = report(change)
    assert value < 0, f"China's refined share, last half-year minus first: median {value:+.4f}; seeds {fmt(change)}"


def _peak(rec, region: str, product: str = "Dy") -> float:
    return float(window(rec.series("price", region, product), *SHOCK_WINDOW).max())


def _shortage(rec, ex_china_only: bool) -> float:
    short = rec.by_region("shortage", "Dy").add(rec.by_region("shortage", "Tb"), fill_value=0)
    short = short.add(rec.by_region("shortage", "NdPr"), fill_value=0)
    if ex_china_only:
        short = short.drop(columns=["CN"], errors="ignore")
    return float(window(short.sum(axis=1), *SHOCK_WINDOW).sum())


@pytest.mark.parametrize("region", ["ROW", "CN"])
def test_stockpiles_lower_the_peak_dy_price_of_a_myanmar_shock(shock_pairs, region):
    """Same seeds with and without the Stockpile entries: the peak Dy price is lower with them."""
    change = {s: _peak(w, region) / _peak(wo, region) - 1 for s, (w, wo) in shock_pairs.items()}
    value = report(change)
    assert value < 0, (f"{region} Dy peak price during the shock, with vs without stockpiles: median {value:+.1%}; "
                       f"seeds {fmt(change)}")


@pytest.mark.parametrize("scope", ["all buyers", "ex-China buyers"])
def test_stockpiles_lower_the_total_shortage_of_a_myanmar_shock(shock_pairs, scope):
    ex = scope == "ex-China buyers"
    with_, without = ({s: _shortage(p[i], ex) for s, p in shock_pairs.items()} for i in (0, 1))
    diff = {s: with_[s] - without[s] for s in SEEDS}
    value = report(diff)
    # seeds where neither variant runs short tie at zero, so the median may be 0: require no median
    # increase and a lower total over the same seeds -- strictly lower for all buyers; ex-China buyers
    # rarely run short in either variant (their stocks carry them), so there: never higher
    total_with, total_without = sum(with_.values()), sum(without.values())
    lower = total_with < total_without if scope == "all buyers" else total_with <= total_without + 1e-9
    assert value <= 0 and lower, (
        f"total shortage ({scope}) during the shock, with minus without stockpiles: median {value:+.1f} t; "
        f"with {fmt(with_)}, without {fmt(without)}")


def test_the_shock_is_a_shock(shock_pairs):
    """Guard: without stockpiles the scripted shock does raise the Dy price (else the comparison is empty)."""
    rise = {}
    for s, (_, wo) in shock_pairs.items():
        p = wo.series("price", "ROW", "Dy")
        rise[s] = _peak(wo, "ROW") / window(p, "2026-09-01", "2026-10-31").mean() - 1
    assert med(rise) > 0.2, f"ROW Dy peak vs the two months before the shock: {fmt(rise)}"
