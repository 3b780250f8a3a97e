"""The effects the shipped scenarios must show (20 seeds, medians, stated tolerances).

Every shock, licence and lifting target of ``ree validate`` (:mod:`experiments.validate`) is checked here on
the report's 20 seeds, with the same metric and the same band, so the test and the report agree on one
definition and one number (a median over 10 seeds put the seed's halt rise at 0.447 where the report's 20 put
it at 0.485; the calm-baseline targets are in
``tests/model/test_calibration.py``). Price metrics are 4-week means or means over a window of weeks, never a
single week's extreme.

| scenario | what must show | source |
|---|---|---|
| ``myanmar_2025`` | ore to China -80..-95 % y/y; Dy and Tb +45..75 % within 4-8 weeks; back within +-30 % a year after | seed F15-F16 |
| ``myanmar_2025_record`` | ore -40..-70 % y/y; Dy 191-259 USD/kg (Mar 2025), 181-254 (Nov 2025); ore surge on reopening | FACTS C13, C15, C16, P3 |
| ``china_controls_2025`` | ex-China Dy, Tb 2.5-6x China in weeks 8-16; China-domestic -30..+20 %; exports <= half | FACTS D3, D5, D8 |
| ``licence_one_year`` | lifting the licences moves China's Dy <= 1.25x and leaves no Chinese shortage | arbitrage (M2) |
| ``us_japan_framework`` | projects selected by week 26; ex-China share of refining gains; China's Dy+Tb refining share 2029-30 at least a point below its no-policy twin's | seed F3, F5; FACTS E3; M3 |
| ``us_japan_framework`` + a severe Kachin shock | stockpiles hold and release Dy, move the peak Dy price < 5 %, protect their holders' buyers | paired medians |

The corridor, sanction and traceability effects are in ``tests/model/test_corridor_policies.py``.
Runs are cached for the session and shared between xdist workers (``tests/conftest.py``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from experiments import validate as v
from tests.seedstats import fmt, med, report

SEEDS = list(range(1, 21))  # the report's 20 seeds: a target's test and its report agree to the last digit
# the baseline's targets are tested in tests/model/test_calibration.py, except the ones the model misses today
SCENARIO_TARGETS = [t for t in v.TARGETS if t.scenario != "baseline" or t.known_gap]


def window(s: pd.Series, start: str, end: str) -> pd.Series:
    """Rows of a date-indexed series with start <= date <= end."""
    return s[(s.index >= pd.Timestamp(start)) & (s.index <= pd.Timestamp(end))]


def policy_types(name: str) -> tuple[str, ...]:
    """The types of a scenario's policy entries: dropped, they leave its no-policy twin (``ree compare``'s and
    ``ree validate``'s, :func:`experiments.levers.without_policies`: events kept)."""
    from experiments.levers import _entries
    from model.scenario import load_scenario

    return tuple(sorted({kind for _, kind, item in _entries(load_scenario(name)) if item.kind == "policy"}))


@pytest.fixture(scope="module")
def scenario_runs(run_cached):
    names = list(dict.fromkeys(t.scenario for t in SCENARIO_TARGETS))
    twins = list(dict.fromkeys(t.scenario for t in SCENARIO_TARGETS if t.paired))
    run_cached.prefetch([{"scenario": n, "seed": s} for n in names for s in SEEDS]
                        + [{"scenario": n, "seed": s, "drop": policy_types(n)} for n in twins for s in SEEDS])
    runs = {n: {s: run_cached(n, s) for s in SEEDS} for n in names}
    for n in twins:
        runs[n + v.TWIN] = {s: run_cached(n, s, drop=policy_types(n)) for s in SEEDS}
    return runs


def test_the_twin_is_the_scenario_without_its_policies():
    """The tests' twin (the policy entries' types dropped) is the one the report runs."""
    for t in SCENARIO_TARGETS:
        if t.paired:
            twin = v.scenario_for(t.scenario + v.TWIN, None)
            assert {d["type"] for d in twin.timeline}.isdisjoint(policy_types(t.scenario))
            assert len(twin.timeline) < len(v.scenario_for(t.scenario, None).timeline)


def test_every_shipped_shock_scenario_has_a_target():
    """A scenario added to the validation report is tested here too (and the list is not empty)."""
    assert {t.scenario for t in SCENARIO_TARGETS} >= {"myanmar_2025", "myanmar_2025_record", "china_controls_2025",
                                                      "licence_one_year", "us_japan_framework"}


@pytest.mark.parametrize("target", [
    pytest.param(t, marks=pytest.mark.xfail(strict=True, reason=f"known gap: {t.known_gap}")) if t.known_gap else t
    for t in SCENARIO_TARGETS], ids=[f"{t.scenario}: {t.name}" for t in SCENARIO_TARGETS])
def test_scenario_target(scenario_runs, target):
    """Each target's median over seeds 1-20 lies in its band; a target with a known gap must still miss it
    (strict xfail: when the model comes to meet it, the gap note and the README must change)."""
    values = {s: v.measure_runs(target, {k: scenario_runs[k][s].df for k in target.runs}, None) for s in SEEDS}
    value = report(values)
    assert target.lo <= value <= target.hi, (
        f"{target.name} ({target.source}): median {value:.4g} {target.unit} outside [{target.lo:g}, {target.hi:g}]; "
        f"seeds {fmt(values)}")


def test_the_seed_shock_is_bigger_than_the_record(scenario_runs):
    """Same world, two stories: the seed's near-total halt cuts more ore and lifts Dy more than the record's
    partial cut (seed/BRIEF.md cross-checks). Paired by seed."""
    seed, record = scenario_runs["myanmar_2025"], scenario_runs["myanmar_2025_record"]
    cut = {s: v.ore_yoy(seed[s].df) - v.ore_yoy(record[s].df) for s in SEEDS}
    rise = {s: v.shock_rise("Dy")(seed[s].df) - v.shock_rise("Dy")(record[s].df) for s in SEEDS}
    assert med(cut) < 0, f"seed minus record ore change: {fmt(cut)}"
    assert med(rise) > 0, f"seed minus record Dy rise: {fmt(rise)}"


# ========================================================================================= us_japan_framework
FRAMEWORK_START = dt.date(2025, 10, 28)


def test_framework_selects_projects_within_26_weeks(scenario_runs):
    """Weekly steps fall on the scenario's weekday, so a policy dated 2025-10-28 (a Tuesday) begins in
    the first week dated on or after it; the deadline is 26 weeks after that week."""
    for s, rec in scenario_runs["us_japan_framework"].items():
        dates = rec.df["date"].drop_duplicates()
        began = dates[dates >= pd.Timestamp(FRAMEWORK_START)].min().date()
        deadline = began + dt.timedelta(weeks=26)
        selected = sorted({p for plants in rec.financing.values() for p in plants})
        assert selected, f"seed {s}: no project selected; lenders: {rec.financing}"
        dates = [d for d, text in rec.events if " finance " in text or " finances " in text]
        assert dates and max(dates) <= deadline, f"seed {s}: selections dated {dates}, deadline {deadline}"


def test_framework_raises_ex_china_capacity(scenario_runs):
    """Financed plants come online: ex-China refining capacity at the end exceeds the start in every seed.
    (Whether they find ore to run on is issue 12's question; their output share is a validation target.)"""
    for s, rec in scenario_runs["us_japan_framework"].items():
        cap = rec.by_region("capacity_online").drop(columns=["CN"], errors="ignore").sum(axis=1)
        assert cap.iloc[-1] > cap.iloc[0], f"seed {s}: ex-China capacity {cap.iloc[0]:.0f} -> {cap.iloc[-1]:.0f} t/week"


# A severe Myanmar shock about a year after the stockpiles begin: the KIA takes the other Kachin areas,
# fighting breaks out and all its sites halt for 26 weeks.
SHOCK_START, SHOCK_END = "2026-11-02", "2027-05-03"
SHOCK_EVENTS = [
    {"type": "SiteSeizure", "start": SHOCK_START, "actor": "KIA", "areas": ["pangwa", "kanpaiti"], "note": "test"},
    {"type": "ConflictEscalation", "start": SHOCK_START, "end": SHOCK_END, "actor": "KIA", "level": "fighting"},
    {"type": "MiningHalt", "start": SHOCK_START, "end": SHOCK_END, "actor": "KIA", "share": 1.0},
]
SHOCK_WINDOW = (SHOCK_START, "2027-08-09")  # the shock and 14 weeks after it
SHOCK = {"scenario": "us_japan_framework", "weeks": 110, "extra": SHOCK_EVENTS}
NO_STOCKPILE = {**SHOCK, "drop": ["Stockpile"]}


@pytest.fixture(scope="module")
def shock_pairs(run_cached):
    run_cached.prefetch([{**x, "seed": s} for s in SEEDS for x in (SHOCK, NO_STOCKPILE)])
    return {s: (run_cached(seed=s, **SHOCK), run_cached(seed=s, **NO_STOCKPILE)) for s in SEEDS}


def _peak4(rec, region: str, product: str = "Dy") -> float:
    """Highest 4-week mean price in the shock window."""
    m = rec.series("price", region, product).rolling(4).mean()
    return float(window(m, *SHOCK_WINDOW).max())


def _shortage(rec, ex_china_only: bool) -> float:
    short = rec.by_region("shortage", "Dy").add(rec.by_region("shortage", "Tb"), fill_value=0)
    short = short.add(rec.by_region("shortage", "NdPr"), fill_value=0)
    if ex_china_only:
        short = short.drop(columns=["CN"], errors="ignore")
    return float(window(short.sum(axis=1), *SHOCK_WINDOW).sum())


def test_the_shock_is_a_shock(shock_pairs):
    """Guard: without stockpiles the scripted shock does raise the Dy price (else the comparison is empty)."""
    rise = {}
    for s, (_, wo) in shock_pairs.items():
        p = wo.series("price", "ROW", "Dy")
        rise[s] = _peak4(wo, "ROW") / window(p, "2026-09-01", "2026-10-31").mean() - 1
    assert med(rise) > 0.2, f"ROW Dy peak 4-week mean vs the two months before the shock: {fmt(rise)}"


@pytest.mark.parametrize("region", ["ROW", "CN"])
def test_stockpiles_move_the_peak_dy_price_of_a_myanmar_shock_little(shock_pairs, region):
    """Same seeds with and without the Stockpile entries: the peak Dy 4-week mean moves by less than 5 %
    either way. Sixty days of US and Japanese use is a small part of the world's supply, and the US stockpile
    is "not intended to influence prices" (FACTS E6). Measured (5 Dec 2026, 20 seeds): ROW -1.2 % [-4.2,
    +2.0], CN -1.2 % [-4.2, +2.1] with the cost of supply of before, when the agencies held no Dy (the test
    below); -0.8 % [-2.8, +2.2] and +1.1 % with it weighted by imports, when they hold and release it. (Until
    then this test asked for a lower peak and passed on the median of noise.)"""
    change = {s: _peak4(w, region) / _peak4(wo, region) - 1 for s, (w, wo) in shock_pairs.items()}
    value = report(change)
    assert abs(value) < 0.05, (f"{region} Dy peak price during the shock, with vs without stockpiles: median "
                               f"{value:+.1%}; seeds {fmt(change)}")


def test_the_agencies_hold_dy_when_the_shock_hits_and_release_it(shock_pairs):
    """A stockpile of 60 days of use (FACTS E5, E6) holds Dy a year after it begins, and releases it during
    the shock. Measured (5 Dec 2026, 20 seeds, medians): they hold 50 t (US) and 62 t (Japan) when the shock
    hits and release 32 and 39 t during it. With the cost of supply of before
    (``behaviour.cost_of_supply_weights_imports = false``: Lynas's first Dy set ex-China's, and Dy traded
    above the agencies' buy trigger) the US agency held 0 t and Japan's 0.08 t (it held 45 t in mid-2025 and
    sold it in calm weeks), and this test failed."""
    for state in ("US", "JP"):
        stock = med({s: float(window(w.series("stockpile", state, "Dy"), "2026-10-01", SHOCK_START).iloc[-1])
                     for s, (w, _) in shock_pairs.items()})
        released = med({s: float(window(w.series("stockpile_released", state, "Dy"), *SHOCK_WINDOW).sum())
                        for s, (w, _) in shock_pairs.items()})
        assert stock >= 10.0 and released >= 5.0, (f"{state}: Dy held when the shock hits {stock:.1f} t, "
                                                    f"released during it {released:.1f} t (medians)")


MAGNETS = "world_2024_magnets.toml"


@pytest.fixture(scope="module")
def magnet_shock_pairs(run_cached):
    runs = [{**SHOCK, "world": MAGNETS}, {**NO_STOCKPILE, "world": MAGNETS}]
    run_cached.prefetch([{**x, "seed": s} for s in SEEDS for x in runs])
    return {s: tuple(run_cached(seed=s, **x) for x in runs) for s in SEEDS}


def test_on_the_magnet_world_the_agencies_hold_the_dy_inside_their_users_magnets(magnet_shock_pairs):
    """The same shock on the magnet world, where US and Japanese buyers buy magnets: the agencies hold Dy oxide
    (sized on the Dy inside the magnets their users take) and release it on the makers' shortage, and the peak
    moves less than 5 % either way. Measured (5 Dec 2026, 20 seeds, medians): the US agency holds 11.6 t and
    releases 10.3, Japan's 38.8 and 34.3; ex-China peak -3.6 % [-6.2, -0.2]. Sized on their direct oxide use
    the US agency held 2.3 t; holding every product, they bought ~8,500 t of NdFeB and the peak rose 24 %."""
    for state, least in (("US", 5.0), ("JP", 20.0)):
        stock = med({s: float(window(w.series("stockpile", state, "Dy"), "2026-10-01", SHOCK_START).iloc[-1])
                     for s, (w, _) in magnet_shock_pairs.items()})
        released = med({s: float(window(w.series("stockpile_released", state, "Dy"), *SHOCK_WINDOW).sum())
                        for s, (w, _) in magnet_shock_pairs.items()})
        assert stock >= least and released >= 0.5 * least, (f"{state}: Dy held when the shock hits {stock:.1f} t, "
                                                             f"released during it {released:.1f} t (medians)")
        assert (magnet_shock_pairs[1][0].series("stockpile", state, "NdFeB") == 0).all()
    change = {s: _peak4(w, "ROW") / _peak4(wo, "ROW") - 1 for s, (w, wo) in magnet_shock_pairs.items()}
    assert abs(report(change)) < 0.05, f"ROW Dy peak with vs without stockpiles: {fmt(change)}"


def test_stockpiles_protect_their_holders_buyers(shock_pairs):
    """The agencies release to their own region's buyers: ex-China buyers run no shorter with the stockpiles
    than without, over the same seeds. (Chinese buyers do: the agencies' purchases before the shock raise
    the price and thin Chinese buyers' precautionary stocks, so their shortage comes sooner -- a finding the
    README reports, not a target.)"""
    with_, without = ({s: _shortage(p[i], True) for s, p in shock_pairs.items()} for i in (0, 1))
    worse = {s: with_[s] - without[s] for s in SEEDS if with_[s] > without[s] + 1e-6}
    assert not worse, f"ex-China shortage higher with stockpiles in seeds {fmt(worse)}"


def test_the_lift_shortage_metric_counts_only_dy_and_tb():
    """The target says Chinese buyers' Dy+Tb shortage: another product short in China (the magnet world has
    Chinese Sm users) is not counted."""
    dates = pd.date_range(v.LICENCE_LIFT, periods=3, freq="7D")
    rows = [("shortage", "CN", p, d, x) for d in dates for p, x in (("Dy", 0.5), ("Tb", 0.25), ("Sm", 40.0), ("NdPr", 9.0))]
    rows += [("shortage", "US", "Dy", d, 7.0) for d in dates]
    df = pd.DataFrame(rows, columns=["variable", "region", "product", "date", "value"])
    assert v.lift_shortage(df) == pytest.approx(3 * 0.75)
