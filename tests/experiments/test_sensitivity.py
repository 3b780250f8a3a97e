"""Sensitivity analysis: output metrics, Morris and Sobol on a tiny design, tables and figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments import sensitivity as sa
from experiments.cli import app
from model.params import ConfigError

SPEC = """
name = "tiny"
scenario = "baseline"
weeks = 13
seeds = [1]
methods = ["morris", "sobol"]
outputs = ["peak_cn_dy_price", "mean_china_refined_share", "total_shortage"]
[parameters]
"behaviour.full_cost_markup" = [0.6, 0.85]
"armed_groups.KIA.levy_usd_per_kg" = [2.5, 9.0]
[morris]
trajectories = 2
levels = 4
[sobol]
n = 4
"""


def _frame(values: dict[tuple[str, str, str], list[float]], run: str = "r") -> pd.DataFrame:
    rows = []
    for (var, region, product), vals in values.items():
        for step, v in enumerate(vals):
            rows.append({"run_id": run, "step": step, "date": dt.date(2024, 1, 1) + dt.timedelta(weeks=step),
                         "variable": var, "region": region, "product": product, "value": v})
    return pd.DataFrame(rows)


def test_metrics_parse_and_compute():
    df = _frame({("price", "CN", "Dy"): [100, 300, 200], ("shortage", "US", "Dy"): [0, 2, 3],
                 ("shortage", "JP", "Tb"): [0, 1, 1], ("china_refined_share", "", ""): [0.9, 0.8, 0.7]})
    got = sa.compute_metrics(df, [sa.Metric.parse(x) for x in (
        "peak_cn_dy_price", "total_shortage", "sum:shortage:*:Dy", "mean_china_refined_share",
        "last:price:CN:Dy")])
    # step 0 is the initial state, not an outcome: weeks 1.. only
    assert got.loc["r"].tolist() == pytest.approx([300, 7, 5, 0.75, 200])
    burn = sa.compute_metrics(df, [sa.Metric.parse("mean:china_refined_share")], burn_in_weeks=1)
    assert burn.loc["r"].iloc[0] == pytest.approx(0.7)
    m = sa.Metric.parse("total_shortage")
    assert m.unit == "t" and "Unmet need" in m.label
    for bad in ("peak:price:CN:Dy", "max:no_such_output", "mean"):
        with pytest.raises(ConfigError):
            sa.Metric.parse(bad)


def test_morris_and_sobol_end_to_end(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    res = sa.run(spec, tmp_path / "out", workers=2, progress=False, formats=("png",))
    morris = pd.read_csv(tmp_path / "out" / "indices_morris.csv")
    sobol = pd.read_csv(tmp_path / "out" / "indices_sobol.csv")
    assert set(morris["parameter"]) == {"behaviour.full_cost_markup", "armed_groups.KIA.levy_usd_per_kg"}
    assert {"mu_star", "sigma", "mu_star_conf", "unit"} <= set(morris.columns)
    assert {"S1", "ST", "S1_conf", "ST_conf"} <= set(sobol.columns)
    price = morris[morris["output"] == "peak_cn_dy_price"].set_index("parameter")
    assert np.isfinite(price["mu_star"]).all() and (price["mu_star"] >= 0).all()
    # sellers' reservations are full cost x (1 + markup): the markup moves China's Dy price
    assert price.loc["behaviour.full_cost_markup", "mu_star"] > 1.0
    # an output that does not vary (no shortage in a short baseline) gives undefined indices, not a crash
    assert morris.loc[morris["output"] == "total_shortage", "mu_star"].isna().all()
    samples = pd.read_csv(tmp_path / "out" / "samples_sobol.csv")
    assert len(samples) == 4 * (2 + 2) and "peak_cn_dy_price" in samples
    for m in ("morris", "sobol"):
        assert (tmp_path / "out" / f"sensitivity_{m}.png").stat().st_size > 1000
    assert "morris: peak_cn_dy_price" in res.table()
    conv = pd.read_csv(tmp_path / "out" / "convergence_sobol.csv")
    assert sorted(conv["size"].unique()) == [2, 4] and (tmp_path / "out" / "convergence_sobol.png").is_file()
    import json

    recorded = json.loads((tmp_path / "out" / "checks.json").read_text())
    assert recorded == res.checks and {"check": "one_seed"}.items() <= recorded[0].items()  # seeds = [1]
    assert "one_seed" in (tmp_path / "out" / "checks.md").read_text()
    # rerun: every run is already on disk, indices are the same
    again = sa.run(spec, tmp_path / "out", workers=2, progress=False, formats=("png",))
    assert again.runs.done == 0 and again.runs.skipped > 0
    pd.testing.assert_frame_equal(again.indices["sobol"], res.indices["sobol"])


def test_cli_sensitivity_bad_spec_exits_2(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('scenario = "baseline"\noutputs = ["peak:price"]\n[parameters]\n"behaviour.site_entry_rate" = [0.1, 0.2]\n')
    r = CliRunner().invoke(app, ["sensitivity", str(spec), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "peak:price" in r.output


def test_shipped_specs_validate():
    """Every spec in experiments/specs/ still matches the world (catches renamed parameters)."""
    from experiments.sweep import load_spec, plan

    specs = sorted((Path(sa.__file__).parent / "specs").glob("*.toml"))
    assert specs
    from experiments import calibrate as cal

    for p in specs:
        text = p.read_text()
        if "particles" in text:  # a calibration spec (ree calibrate)
            cal.check_spec(cal.load_spec(p))
        elif "parameters" in text:
            s = sa.load_spec(p)
            plan(s.sweep_spec(), [{}])
        else:
            plan(load_spec(p), [{}])


def test_scenarios_spec_has_every_shipped_scenario():
    """A scenario added to model/data/scenarios/ must join the figure-set sweep."""
    from experiments.sweep import load_spec
    from model.scenario import list_scenarios

    spec = load_spec(Path(sa.__file__).parent / "specs" / "scenarios.toml")
    assert sorted(spec.scenarios) == list_scenarios()
    assert "licence_one_year" in spec.scenarios and "myanmar_2025_record" in spec.scenarios


def _world_value(raw: dict, key: str):
    """The value a dotted override key names in a world dict (list entries by id or name)."""
    node = raw
    for part in key.split("."):
        node = (next(x for x in node if part in (x.get("id"), x.get("name"))) if isinstance(node, list)
                else node[part])
    return node


def test_shipped_ranges_contain_the_calibrated_values():
    """The exploratory ranges are around the world's calibrated values (and name fields that exist)."""
    from experiments.sweep import load_spec
    from model.params import load_world

    raw = load_world().model_dump(mode="json")
    spec_dir = Path(sa.__file__).parent / "specs"
    ranges = dict(sa.load_spec(spec_dir / "sensitivity_behaviour.toml").parameters)
    ranges.update({k: (r.low, r.high) for k, r in load_spec(spec_dir / "lhs_behaviour.toml").sample.ranges.items()})
    demo = load_spec(spec_dir / "demo.toml").grid
    ranges.update({k: (min(v), max(v)) for k, v in demo.items()})
    assert "behaviour.full_cost_markup" in ranges and "behaviour.wtp_share_of_magnet_value" in ranges
    for key, (lo, hi) in ranges.items():
        value = _world_value(raw, key)
        assert lo <= value <= hi, f"{key}: calibrated {value} outside [{lo}, {hi}]"


def test_integer_fields_are_read_from_the_world_and_rounded():
    assert {"count", "active_at_start", "lead_time_weeks", "price_grid_points", "retaliation_weeks"} <= sa.INTEGER_FIELDS
    assert not {"full_cost_markup", "capacity_t_per_week", "max_weeks"} & sa.INTEGER_FIELDS
    spec = sa.SensitivitySpec(name="i", scenario="baseline", parameters={
        "behaviour.price_grid_points": (32, 96), "behaviour.full_cost_markup": (0.6, 0.85)})
    pts = sa._points(spec, np.array([[40.6, 0.7], [95.2, 0.61]]))
    assert pts == [{"behaviour.price_grid_points": 41, "behaviour.full_cost_markup": 0.7},
                   {"behaviour.price_grid_points": 95, "behaviour.full_cost_markup": 0.61}]
    assert all(isinstance(p["behaviour.price_grid_points"], int) for p in pts)


def test_licence_aliases():
    df = _frame({("exports", "JP", "Dy"): [0, 2, 1], ("exports", "EU", "Dy"): [0, 3, 3],
                 ("exports", "EU", "NdPr"): [0, 50, 50], ("export_allowed", "", "Dy"): [1.0, 0.4, 0.2],
                 ("export_allowed", "JP", "Dy"): [1.0, 0.0, 0.0]})
    got = sa.compute_metrics(df, [sa.Metric.parse(x) for x in ("total_dy_exports", "mean_dy_export_allowed")])
    assert got.loc["r"].tolist() == pytest.approx([9.0, 0.3])
    assert sa.Metric.parse("total_dy_exports").unit == "t"


# ------------------------------------------------------------------------------ guard rails (issue 13.5)
def _spec(**kw) -> sa.SensitivitySpec:
    return sa.SensitivitySpec(name="g", scenario="baseline", outputs=["peak_cn_dy_price"],
                              parameters={"a.x": (0.0, 1.0), "a.y": (0.0, 1.0), "a.z": (0.0, 1.0)}, **kw)


def _sobol_table(s1, s1c, st, stc, noise_share=np.nan, seed_sd=np.nan) -> pd.DataFrame:
    return pd.DataFrame({"method": "sobol", "output": "o", "parameter": ["a.x", "a.y", "a.z"], "S1": s1,
                         "S1_conf": s1c, "ST": st, "ST_conf": stc, "noise_share": noise_share, "seed_sd": seed_sd})


def test_checks_pass_a_consistent_table():
    spec = _spec(seeds=[1, 2])
    ok = _sobol_table([0.6, 0.3, 0.0], [0.05, 0.04, 0.02], [0.65, 0.33, 0.01], [0.05, 0.04, 0.02], 0.01, 0.2)
    assert sa.checks(spec, "sobol", ok) == []


@pytest.mark.parametrize("table, check, params", [
    # an interval wider than its estimate (and than MATERIAL): N too small
    (_sobol_table([0.6, 0.1, 0.0], [0.05, 0.3, 0.02], [0.65, 0.2, 0.01], [0.05, 0.1, 0.02]), "wide_interval", ["a.y"]),
    # S1 adds up to 1.3, its combined half-width 0.06: beyond 1
    (_sobol_table([0.7, 0.6, 0.0], [0.04, 0.04, 0.02], [0.75, 0.65, 0.01], [0.04, 0.04, 0.02]), "s1_sum_above_1", []),
    # ST 0.3 below S1 0.6 by more than both intervals
    (_sobol_table([0.6, 0.2, 0.0], [0.05, 0.04, 0.02], [0.3, 0.25, 0.01], [0.05, 0.04, 0.02]), "st_below_s1", ["a.x"]),
    # seed noise 40 % of the variance the indices divide up
    (_sobol_table([0.6, 0.3, 0.0], [0.05, 0.04, 0.02], [0.65, 0.33, 0.01], [0.05, 0.04, 0.02], 0.4, 3.0),
     "seed_noise", []),
])
def test_checks_flag_what_exact_indices_cannot_do(table, check, params):
    found = sa.checks(_spec(seeds=[1, 2]), "sobol", table)
    assert [c["check"] for c in found] == [check]
    c = found[0]
    assert c["output"] == "o" and c["parameters"] == params and c["meaning"] == sa.MEANINGS[check]
    assert "means: " in sa.format_check(c) and check in sa.checks_markdown(found)


def test_checks_note_one_seed():
    ok = _sobol_table([0.6, 0.3, 0.0], [0.05, 0.04, 0.02], [0.65, 0.33, 0.01], [0.05, 0.04, 0.02])
    assert [c["check"] for c in sa.checks(_spec(), "sobol", ok)] == ["one_seed"]


def test_seed_noise_is_reported_beside_the_indices():
    """y = 10 x + noise per seed: the noise's share of the variance of the point means, its s.d. and the
    seed-to-seed spread of each index, measured; none with one seed."""
    spec = sa.SensitivitySpec(name="n", scenario="baseline", outputs=["peak_cn_dy_price"], seeds=[1, 2, 3, 4],
                              parameters={"a.x": (0.0, 1.0), "a.y": (0.0, 1.0)}, sobol={"n": 64})
    x = sa.sample(spec, "sobol")
    rng = np.random.default_rng(0)
    for sd, low, high in ((0.0, -1e-9, 1e-9), (3.0, 0.05, 0.25)):
        ys = 10 * x[:, :1] + rng.normal(0, sd, (len(x), 4))
        y = pd.DataFrame({"peak_cn_dy_price": ys.mean(axis=1)})
        ind = sa.analyse(spec, "sobol", x, y, {"peak_cn_dy_price": ys}).set_index("parameter")
        # var(10 x) = 100/12 = 8.3; noise var of a 4-seed mean = 9/4: share 2.25 / (8.3 + 2.25) = 0.21
        assert low <= ind["noise_share"].iloc[0] <= high
        assert ind["seed_sd"].iloc[0] == pytest.approx(sd, rel=0.15, abs=1e-9)
        assert {"S1_seed_sd", "ST_seed_sd"} <= set(ind.columns)
        if sd:
            assert ind.loc["a.x", "ST_seed_sd"] > 0.01
        else:
            assert ind.loc["a.x", "ST_seed_sd"] == pytest.approx(0, abs=1e-9)
    one = sa.analyse(spec, "sobol", x, y, {"peak_cn_dy_price": ys[:, :1]})
    assert one["noise_share"].isna().all() and one["ST_seed_sd"].isna().all()


def test_convergence_recomputes_indices_on_growing_subsets():
    spec = sa.SensitivitySpec(name="c", scenario="baseline", outputs=["peak_cn_dy_price"],
                              parameters={"a.x": (0.0, 1.0), "a.y": (0.0, 1.0), "a.z": (0.0, 1.0)},
                              sobol={"n": 64}, morris={"trajectories": 8})
    assert sa.subset_sizes(64) == [16, 32, 64] and sa.subset_sizes(4) == [2, 4] and sa.subset_sizes(1) == []
    for method in ("sobol", "morris"):
        x = sa.sample(spec, method)
        y = pd.DataFrame({"peak_cn_dy_price": 10 * x[:, 0] + x[:, 1]})  # additive, smooth: settles fast
        conv = sa.convergence(spec, method, x, y)
        full = sa.analyse(spec, method, x, y).set_index("parameter")
        last = conv[conv["size"] == conv["size"].max()].set_index("parameter")
        index = sa.MAIN_INDEX[method]
        # the largest size is the full sample: its indices are the reported ones
        pd.testing.assert_series_equal(last[index], full[index], check_names=False)
        assert sorted(conv["size"].unique()) == sa.subset_sizes(64 if method == "sobol" else 8)
        assert last.loc["a.x", "rank"] == 1 and last.loc["a.z", "rank"] == 3
        assert sa.convergence_checks(spec, method, conv) == []
    # an output of pure noise: its indices are not settled at 32 -> 64 base samples
    x = sa.sample(spec, "sobol")
    noise = pd.DataFrame({"peak_cn_dy_price": np.random.default_rng(3).normal(size=len(x))})
    found = sa.convergence_checks(spec, "sobol", sa.convergence(spec, "sobol", x, noise))
    assert [c["check"] for c in found] == ["not_converged"] and "32 to 64" in found[0]["detail"]
    # a tolerance wide enough lets the same indices pass
    loose = spec.model_copy(update={"convergence": sa.ConvergenceSpec(top=1, sobol_tolerance=1.0)})
    conv = sa.convergence(loose, "sobol", x, noise)
    top_same = (conv[conv["size"] == 32].set_index("parameter")["rank"].idxmin()
                == conv[conv["size"] == 64].set_index("parameter")["rank"].idxmin())
    assert (sa.convergence_checks(loose, "sobol", conv) == []) == top_same


EFFECT_SPEC = """
name = "eff"
scenario = "us_japan_framework"
weeks = 13
seeds = [1, 2]
methods = ["sobol"]
outputs = ["mean_row_ndpr_price", { output = "mean_row_ndpr_price", effect_of = "Stockpile[US]", name = "us_stock" }]
[overrides]                              # the stockpile buys from the first week, inside a short run
"policy.Stockpile[US].start" = 2025-07-07
[parameters]
"policy.Stockpile[US].target_days" = [30, 120]
"behaviour.full_cost_markup" = [0.6, 0.85]
[sobol]
n = 2
"""


def test_policy_effect_as_output_with_cached_twins(tmp_path):
    """An output that is the run minus its twin without Stockpile[US] (same point, same seed), averaged
    over two seeds; the twins are runs like the others (counted, keyed, resumed)."""
    from experiments.levers import without
    from experiments.run import run_one
    from experiments.sweep import load_sweep
    from model.scenario import load_scenario

    path = tmp_path / "eff.toml"
    path.write_text(EFFECT_SPEC)
    spec = sa.load_spec(path)
    assert spec.effects == ["Stockpile[US]"] and spec.metrics[1].effect_of == "Stockpile[US]"
    total, how = sa.design_size(spec, ["sobol"])
    assert total == 2 * (2 + 2) * 2 * 2 and "twin without Stockpile[US]" in how
    res = sa.run(spec, tmp_path / "out", workers=1, progress=False, formats=("png",))
    assert res.runs.done == total
    design = pd.read_csv(tmp_path / "out" / "design.csv")
    twins = design[design["policy.Stockpile[US].enabled"].eq(False)]
    assert len(twins) == total // 2
    # per point and seed: effect = level - twin level; the sample table has their mean over seeds
    df = load_sweep(tmp_path / "out", variables=["price"])
    level = sa.compute_metrics(df, [sa.Metric.parse("mean_row_ndpr_price")])["mean_row_ndpr_price"]
    mains = design[design["policy.Stockpile[US].enabled"].isna()].reset_index(drop=True)
    diffs = level.reindex(mains["key"]).to_numpy() - level.reindex(twins["key"]).to_numpy()
    samples = res.samples["sobol"]
    np.testing.assert_allclose(samples["us_stock"], diffs.reshape(-1, 2).mean(axis=1))
    assert (samples["us_stock"].abs() > 1e-6).all()  # the stockpile moves the ex-China NdPr price
    # the twin is the scenario `ree compare --without 'Stockpile[US]'` runs: the same numbers
    first = twins.iloc[0]
    sc = load_scenario("us_japan_framework")
    twin = run_one(without(sc, "Stockpile[US]"), int(first["seed"]), 13,
                   {"behaviour.full_cost_markup": first["behaviour.full_cost_markup"]}, run_id="t")
    again = sa.compute_metrics(twin, [sa.Metric.parse("mean_row_ndpr_price")]).iloc[0, 0]
    assert again == pytest.approx(level[first["key"]])
    # resumed: nothing recomputed, twins included
    rerun = sa.run(spec, tmp_path / "out", workers=1, progress=False, formats=("png",))
    assert rerun.runs.done == 0 and rerun.runs.skipped == total


@pytest.mark.parametrize("edit, says", [
    ('effect_of = "Stockpile[US]"', "us_stock"),  # placeholder: replaced below
    ('effect_of = "Stockpile US"', "Type[actor]"),
    ('effect_of = "Stockpile[CN]"', "effect_of"),
])
def test_bad_effect_of_exits_2_naming_it(tmp_path, edit, says):
    text = EFFECT_SPEC.replace('effect_of = "Stockpile[US]"', edit)
    if says == "us_stock":  # the twin's own lever among the parameters: refused
        text = text.replace("[parameters]\n", '[parameters]\n"policy.Stockpile[US].enabled" = [0, 1]\n')
        says = "policy.Stockpile[US].enabled is set"
    spec = tmp_path / "eff.toml"
    spec.write_text(text)
    r = CliRunner().invoke(app, ["sensitivity", str(spec), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 2 and says in r.output, r.output
    assert "Traceback" not in r.output
