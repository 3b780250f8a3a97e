"""Demand paths (model/demand.py, model/data/demand/demand_paths.toml): growth of buyers' demand by segment,
region and calendar year, picked by a scenario's ``demand_path``.

The expected multipliers are worked out here from the calendar (share of each year elapsed, product of
(1 + rate) to those powers), not with the module's own functions, so an error in the module's year
arithmetic, its precedence of overrides or the model's timing of the update shows as a number that differs.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import model.demand as demand
from experiments.cli import app
from model.demand import load_demand_paths
from model.model import RareEarthModel
from model.params import ConfigError
from model.scenario import Scenario, load_scenario
from tests.conftest import build_scenario

# every buyer of the oxide world buys for magnets, so the magnet-demand path moves every buyer's need (the
# magnet world's buyers of Y, Gd, La and Ce for other uses keep a stationary need)
OXIDE = "world_2024.toml"

START = dt.date(2024, 1, 1)  # a Monday; 2029-01-01 is 1,827 days = exactly 261 weeks later
WEEKS_TO_2029 = 261
APS = {2024: 0.0502, 2025: 0.0502, 2026: 0.0502, 2027: 0.0502, 2028: 0.0502, 2029: 0.0502, 2030: 0.0163,
       2031: 0.0163, 2032: 0.0163, 2033: 0.0163, 2034: 0.0163}  # FACTS B6, as the data file writes them


def expected_factor(rates: dict[int, float], start: dt.date, date: dt.date) -> float:
    """Demand on ``date`` relative to ``start``: each calendar year's (1 + rate) to the share of it elapsed."""
    f = 1.0
    for year in range(start.year, date.year + 1):
        lo, hi = max(start, dt.date(year, 1, 1)), min(date, dt.date(year + 1, 1, 1))
        days_in_year = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        if hi > lo:
            f *= (1.0 + rates.get(year, 0.0)) ** ((hi - lo).days / days_in_year)
    return f


def _by_step(df: pd.DataFrame, variable: str, region: str | None = None) -> pd.Series:
    d = df[df.variable == variable]
    if region is not None:
        d = d[d.region == region]
    return d.groupby("step").value.sum()


# ------------------------------------------------------------------------------------------ the data file
def test_shipped_paths_cite_their_numbers_and_match_the_facts():
    paths = load_demand_paths().paths
    assert {"stationary", "iea_aps", "adamas", "steps_like"} <= set(paths)
    for name, path in paths.items():
        for sched in (path.default, *path.segments.values(), *(o.rates for o in path.overrides)):
            for step in sched:
                assert "FACTS" in step.source or "assumption" in step.source, (name, step)
    # FACTS B6: 93 kt (2023) -> 131 kt (2030) -> 181 kt (2050); R6: +7.5 %/yr to 2040
    aps = paths["iea_aps"].default
    assert (1 + aps[0].rate) ** 7 * 93 == pytest.approx(131, rel=2e-3) and aps[1].from_year == 2030
    assert (1 + aps[1].rate) ** 20 * 131 == pytest.approx(181, rel=2e-3)
    assert paths["adamas"].default[0].rate == 0.075 and paths["adamas"].default[1].from_year == 2040
    assert all("assumption" in s.source for s in paths["steps_like"].default)  # FACTS has no STEPS figure
    assert all(s.rate == 0 for s in paths["stationary"].default)


# ----------------------------------------------------------------------------------------- the arithmetic
def test_need_after_whole_years_is_base_times_the_product_of_the_yearly_rates():
    """APS path, thrifting off: after 261 weeks (1 Jan 2029) every buyer's need is its base need x 1.0502^5;
    every week's need and each segment's demand index follow the calendar's product of rates."""
    sc = build_scenario("demand_growth_aps", world=OXIDE,
                        overrides={"behaviour.thrift_rate_per_week": 0.0, "behaviour.substitution_elasticity": 0.0})
    m = RareEarthModel(sc, seed=1, weeks=WEEKS_TO_2029 + 1)
    bb = m.buyer_book
    base = bb.magnet_t_per_week[:, None] * bb.base_content
    m.run(WEEKS_TO_2029 + 1)
    # step k uses the multiplier at the start of its week, start + (k - 1) weeks: here 1 Jan 2029
    np.testing.assert_allclose(bb.needed, base * 1.0502 ** 5, rtol=1e-12)
    df = m.results()
    need = _by_step(df, "need")
    for k in (1, 2, 52, 53, 104, 200, WEEKS_TO_2029 + 1):
        f = expected_factor(APS, START, START + dt.timedelta(weeks=k - 1))
        assert need[k] == pytest.approx(base.sum() * f, rel=1e-12), k
    index = df[(df.variable == "demand_index") & (df.region == "ev")].set_index("step").value
    assert index[0] == 1.0
    for k in (1, 52, 150, WEEKS_TO_2029):  # the index is on the row's date (next week's demand)
        assert index[k] == pytest.approx(expected_factor(APS, START, START + dt.timedelta(weeks=k)), rel=1e-12)
    assert index[WEEKS_TO_2029] == pytest.approx(1.0502 ** 5, rel=1e-12)
    # need = consumption + shortage, and the totals reflect the growth
    both = _by_step(df, "consumption") + _by_step(df, "shortage")
    np.testing.assert_allclose(need.loc[1:].to_numpy(), both.loc[1:].to_numpy(), rtol=1e-9)


PATHS_FILE = """
[paths.stationary]
default = [{ from_year = 1900, rate = 0.0, source = "assumption" }]

[paths.test]
default = [{ from_year = 2024, rate = 0.03, source = "assumption" }]
[paths.test.segments]
ev = [{ from_year = 2024, rate = 0.10, source = "assumption" }, { from_year = 2026, rate = 0.02, source = "assumption" }]
[[paths.test.overrides]]
segment = "ev"
state = "JP"
rates = [{ from_year = 2024, rate = 0.05, source = "assumption" }]
[[paths.test.overrides]]
state = "US"
rates = [{ from_year = 2025, rate = -0.04, source = "assumption" }]
[[paths.test.overrides]]
segment = "wind"
region = "ROW"
rates = [{ from_year = 2024, rate = 0.20, source = "assumption" }]
"""
# buyer -> its yearly rates under "test" (the most specific schedule wins)
EXPECTED = {
    "cn_ev": {2024: 0.10, 2025: 0.10, 2026: 0.02, 2027: 0.02, 2028: 0.02},  # the segment's breakpoints
    "jp_ev": dict.fromkeys(range(2024, 2029), 0.05),  # segment + state beats the segment's schedule
    "us_ev": {2024: 0.0, 2025: -0.04, 2026: -0.04, 2027: -0.04, 2028: -0.04},  # state beats segment; 0 before
    "us_wind": dict.fromkeys(range(2024, 2029), 0.20),  # segment + region beats state alone
    "eu_wind": dict.fromkeys(range(2024, 2029), 0.20),  # the region override
    "cn_wind": dict.fromkeys(range(2024, 2029), 0.03),  # wind in CN: not ROW, so the default
    "us_defence": {2024: 0.0, 2025: -0.04, 2026: -0.04, 2027: -0.04, 2028: -0.04},  # state override
    "eu_industrial": dict.fromkeys(range(2024, 2029), 0.03),  # the default
}


@pytest.fixture
def test_paths(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "demand_paths.toml"
    path.write_text(PATHS_FILE)
    monkeypatch.setattr(demand, "DEMAND_PATHS_FILE", path)
    return path


def test_region_and_state_overrides_and_breakpoints_set_each_buyers_growth(test_paths):
    sc = Scenario(name="paths", world="world_2024.toml", start=START, weeks=WEEKS_TO_2029 + 1, seeds=[1],
                  demand_path="test",
                  overrides={"behaviour.thrift_rate_per_week": 0.0, "behaviour.substitution_elasticity": 0.0})
    sc.check()
    m = RareEarthModel(sc, seed=1)
    bb = m.buyer_book
    base = bb.magnet_t_per_week[:, None] * bb.base_content
    m.run(WEEKS_TO_2029 + 1)
    for buyer, rates in EXPECTED.items():
        i = bb.ids.index(buyer)
        want = math.prod(1 + r for r in rates.values())  # five whole calendar years
        np.testing.assert_allclose(bb.needed[i], base[i] * want, rtol=1e-12, err_msg=buyer)
        mid = START + dt.timedelta(weeks=130)  # 2026-06-29: part of a year, after a breakpoint
        assert m.demand.factor(mid)[i] == pytest.approx(expected_factor(rates, START, mid), rel=1e-12), buyer


def test_override_naming_a_state_the_world_lacks_is_refused(test_paths):
    test_paths.write_text(PATHS_FILE.replace('state = "US"', 'state = "USA"'))
    sc = Scenario(name="paths", world="world_2024.toml", weeks=10, seeds=[1], demand_path="test")
    with pytest.raises(ConfigError, match=r"overrides\[1\]\.state: unknown 'USA'.*allowed: .*US"):
        sc.check()


# ------------------------------------------------------------------------------------------- refusals
def _scenario(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "sc.toml"
    p.write_text('name = "sc"\nworld = "world_2024.toml"\nweeks = 4\nseeds = [1]\n' + body)
    return p


@pytest.mark.parametrize("command", ["check", "run"])
def test_unknown_path_is_refused_naming_the_field_and_the_allowed_names(tmp_path, command):
    p = _scenario(tmp_path, 'demand_path = "iea_apss"\n')
    args = [command, str(p)] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    out = res.output
    assert "Traceback" not in out and out.startswith("error:") and str(p) in out, out
    assert "demand_path" in out and "'iea_apss'" in out, out
    for name in ("adamas", "iea_aps", "stationary", "steps_like"):
        assert name in out, out
    assert not (tmp_path / "out").exists()


def test_a_path_and_a_growth_rate_together_are_refused(tmp_path):
    p = _scenario(tmp_path, 'demand_path = "iea_aps"\n[overrides]\n"behaviour.demand_growth_per_year" = 0.03\n')
    res = CliRunner().invoke(app, ["check", str(p)])
    assert res.exit_code == 2 and "demand_path" in res.output and "demand_growth_per_year" in res.output, res.output


def test_a_bad_paths_file_is_refused_naming_the_field(test_paths):
    test_paths.write_text(PATHS_FILE.replace('rate = 0.20, source = "assumption"', 'rate = 0.20, source = "guess"'))
    with pytest.raises(ConfigError, match=r"paths\.test\.overrides\.2\.rates\.0\.source: name the source"):
        load_demand_paths()


# ------------------------------------------------------------------------------- stationary and growing
def test_stationary_path_is_bit_for_bit_the_run_without_a_path():
    plain = load_scenario("baseline")
    flat = plain.model_copy(update={"demand_path": "stationary"})
    a = RareEarthModel(plain, seed=1, weeks=156).run().results()
    m = RareEarthModel(flat, seed=1, weeks=156)
    m.run()
    assert m.demand is not None and isinstance(m.demand_multiplier, np.ndarray)  # the per-buyer path ran
    b = m.results()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_aps_total_need_in_2030_exceeds_the_stationary_twin_by_the_paths_factor():
    """demand_growth_aps against baseline (its stationary twin), thrifting and the Dy/Tb split off: total need over the weeks of
    2030 is higher by the mean of the APS multipliers of those weeks (about 1.35); with thrifting on, by less
    (buyers cut content when prices rise) but still clearly more."""
    off = {"behaviour.thrift_rate_per_week": 0.0, "behaviour.substitution_elasticity": 0.0}
    weeks = 366  # into 2031
    grow = RareEarthModel(build_scenario("demand_growth_aps", overrides=off, world=OXIDE), seed=1, weeks=weeks).run()
    flat = RareEarthModel(build_scenario("baseline", overrides=off, world=OXIDE), seed=1, weeks=weeks).run()

    def need_2030(df):
        d = df[df.variable.isin(["consumption", "shortage"]) & (df.date.dt.year == 2030)]
        return d.value.sum(), sorted(set(d.step))

    g, steps = need_2030(grow.results())
    f, steps_f = need_2030(flat.results())
    assert steps == steps_f and len(steps) == 52
    factor = np.mean([expected_factor(APS, START, START + dt.timedelta(weeks=k - 1)) for k in steps])
    assert g / f == pytest.approx(factor, rel=1e-9)
    assert 1.33 < factor < 1.37
    thrifting = RareEarthModel(build_scenario("demand_growth_aps", world=OXIDE), seed=1, weeks=weeks).run()
    assert need_2030(thrifting.results())[0] / f > 1.2


def test_a_single_growth_rate_is_a_uniform_path():
    """behaviour.demand_growth_per_year keeps working: every buyer grows at that rate by calendar year (after
    five whole years x 1.05^5), with the demand outputs of a growing run."""
    sc = load_scenario("baseline").with_overrides({"behaviour.demand_growth_per_year": 0.05,
                                                   "behaviour.thrift_rate_per_week": 0.0, "behaviour.substitution_elasticity": 0.0})
    m = RareEarthModel(sc, seed=1, weeks=WEEKS_TO_2029 + 1)
    bb = m.buyer_book
    base = bb.magnet_t_per_week[:, None] * bb.base_content
    m.run()
    np.testing.assert_allclose(bb.needed, base * 1.05 ** 5, rtol=1e-12)
    assert {"demand_index", "need"} <= set(m.results().variable.unique())
