"""``ree calibrate``: the ABC-SMC sampler on a toy model (known answer, reproducibility, resume), the spec's
errors, the CLI's outputs, and one real evaluation against ``ree validate``'s numbers. No test depends on
wall-clock time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments import calibrate as cal
from experiments.cli import app
from experiments.validate import TARGETS

SHARE = "China share of refined output"  # band [0.85, 0.95]
GATE = "Kachin ore gate price"  # band [8, 16]
BAND = {t.name: (t.lo, t.hi) for t in TARGETS}


def toy(points, spec, executor=None, on_run=lambda: None):
    """An analytic stand-in for the model: the China share *is* full_cost_markup, the gate price is
    20 x seller_stock_elasticity (so the bands hold for markup in [0.85, 0.95], elasticity in [0.4, 0.8])."""
    out = []
    for p in points:
        on_run()
        out.append({SHARE: p["behaviour.full_cost_markup"], GATE: 20.0 * p.get("behaviour.seller_stock_elasticity", 0.6)})
    return out


class Counting:
    """The toy, counting the parameter sets it evaluates; ``fail_after`` interrupts it like Ctrl-C."""

    def __init__(self, fail_after: int | None = None):
        self.points: list[dict] = []
        self.fail_after = fail_after

    def __call__(self, points, spec, executor=None, on_run=lambda: None):
        if self.fail_after is not None and len(self.points) + len(points) > self.fail_after:
            raise KeyboardInterrupt
        self.points += points
        return toy(points, spec, executor, on_run)


def spec(**kw) -> cal.CalibrationSpec:
    base = {"name": "toy", "seeds": [1], "targets": [SHARE, GATE], "particles": 20, "generations": 6,
            "quantile": 0.5, "seed": 7, "max_evaluations": 2000,
            "parameters": {"behaviour.full_cost_markup": (0.5, 1.5), "behaviour.seller_stock_elasticity": (0.0, 2.0)}}
    return cal.CalibrationSpec.model_validate({**base, **kw})


def test_distance_is_zero_inside_every_band_and_counts_band_widths():
    t = [x for x in TARGETS if x.name in (SHARE, GATE)]
    assert cal.distance({SHARE: 0.9, GATE: 12.0}, t) == 0.0
    # 0.75 is one band width (0.1) below 0.85; the gate price is inside: rms of (1, 0)
    assert cal.distance({SHARE: 0.75, GATE: 12.0}, t) == pytest.approx(np.sqrt(0.5))
    assert cal.distance({SHARE: float("nan"), GATE: 12.0}, t) == float("inf")


def test_recovers_the_known_parameters_of_a_toy_model(tmp_path):
    res = cal.run(spec(), tmp_path, evaluate=toy)
    post = res.posterior
    assert post.tolerance < res.generations[0].distances.max()  # the tolerance fell
    s = cal.summary(post, res.spec).set_index("parameter")
    m, e = s.loc["behaviour.full_cost_markup"].to_dict(), s.loc["behaviour.seller_stock_elasticity"].to_dict()
    # the sets that keep both targets in their bands: markup in [0.85, 0.95], elasticity in [0.4, 0.8]
    assert 0.85 - 0.05 <= m["ci5"] <= m["median"] <= m["ci95"] <= 0.95 + 0.05, m
    assert 0.4 - 0.1 <= e["ci5"] <= e["median"] <= e["ci95"] <= 0.8 + 0.1, e
    assert 0.85 <= m["mean"] <= 0.95 and 0.4 <= e["mean"] <= 0.8
    assert post.weights.sum() == pytest.approx(1.0)
    tolerances = [g.tolerance for g in res.generations]
    assert tolerances == sorted(tolerances, reverse=True)


def test_same_master_seed_gives_the_same_posterior(tmp_path):
    a = cal.run(spec(), tmp_path / "a", evaluate=toy)
    b = cal.run(spec(), tmp_path / "b", evaluate=toy)
    c = cal.run(spec(seed=8), tmp_path / "c", evaluate=toy)
    assert (tmp_path / "a" / "posterior.csv").read_bytes() == (tmp_path / "b" / "posterior.csv").read_bytes()
    assert [g.tolerance for g in a.generations] == [g.tolerance for g in b.generations]
    assert not np.array_equal(a.posterior.theta, c.posterior.theta)


def test_resume_after_an_interruption_redoes_no_evaluation(tmp_path):
    fresh = Counting()
    cal.run(spec(), tmp_path / "fresh", evaluate=fresh)
    total = len(fresh.points)
    assert total > 40

    first = Counting(fail_after=total // 2)
    with pytest.raises(KeyboardInterrupt):
        cal.run(spec(), tmp_path / "resumed", evaluate=first)
    done = len(first.points)
    cache = tmp_path / "resumed" / cal.CACHE
    assert 0 < done < total and len(cache.read_text().splitlines()) == done
    assert not (tmp_path / "resumed" / "posterior.csv").exists()
    with cache.open("a") as fh:  # a line torn by kill -9 is skipped, not fatal
        fh.write('{"key": "abc", "medi')

    second = Counting()
    cal.run(spec(), tmp_path / "resumed", evaluate=second)
    keys = lambda pts: {cal.evaluation_key(p, spec(), "x") for p in pts}  # noqa: E731
    assert not keys(first.points) & keys(second.points)  # nothing evaluated twice
    assert done + len(second.points) == total
    assert ((tmp_path / "fresh" / "posterior.csv").read_bytes()
            == (tmp_path / "resumed" / "posterior.csv").read_bytes())

    third = Counting()  # a finished calibration costs nothing
    res = cal.run(spec(), tmp_path / "resumed", evaluate=third)
    assert third.points == [] and res.runs == 0 and res.cached == total


def test_cache_key_covers_what_the_numbers_depend_on():
    s, p = spec(), {"behaviour.full_cost_markup": 0.7, "behaviour.seller_stock_elasticity": 1.0}
    k = cal.evaluation_key(p, s, "code1")
    assert k == cal.evaluation_key(dict(reversed(list(p.items()))), s, "code1")
    assert k != cal.evaluation_key(p, s, "code2")
    assert k != cal.evaluation_key(p, spec(seeds=[1, 2]), "code1")
    assert k != cal.evaluation_key(p, spec(targets=[SHARE]), "code1")
    assert k != cal.evaluation_key(p, spec(world="world_2024_magnets.toml"), "code1")
    assert k != cal.evaluation_key({**p, "behaviour.full_cost_markup": 0.71}, s, "code1")


def test_max_evaluations_stops_with_the_last_full_generation(tmp_path):
    res = cal.run(spec(max_evaluations=25, generations=10), tmp_path, evaluate=toy)
    assert "max_evaluations" in res.stopped
    assert len(pd.read_csv(tmp_path / "posterior.csv")) == 20


GOOD = """
name = "toy"
seeds = [1]
targets = ["China share of refined output"]
particles = 4
generations = 2
seed = 1
[parameters]
"behaviour.full_cost_markup" = [0.6, 0.85]
"""


@pytest.mark.parametrize("edit, field, fix", [
    (('"behaviour.full_cost_markup"', '"behaviour.full_cost_markupp"'), "behaviour.full_cost_markupp",
     "check the spelling"),
    (("[0.6, 0.85]", "[0.85, 0.85]"), "parameters", "high > low"),
    (("China share of refined output", "China share of refined outptu"), "targets",
     "did you mean 'China share of refined output'"),
    (("targets = [\"China share of refined output\"]", ""), "targets", "name the targets"),
    (("particles = 4", "particles = 1"), "particles", "greater than or equal to 2"),
])
def test_bad_spec_exits_2_naming_the_field_and_the_fix(tmp_path, edit, field, fix):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    r = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert r.exit_code == 2, r.output
    assert field in r.output and fix in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_four_files(tmp_path, monkeypatch):
    monkeypatch.setattr(cal, "simulate", toy)
    path = tmp_path / "toy.toml"
    path.write_text(GOOD.replace("particles = 4", "particles = 6"))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(out), "--workers", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    for name in cal.OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    post = pd.read_csv(out / "posterior.csv")
    assert list(post.columns[:3]) == ["behaviour.full_cost_markup", "weight", "distance"] and len(post) == 6
    md = (out / "posterior.md").read_text()
    assert "90 % credible interval" in md and "| 1 |" in md  # a row per generation
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["spec"]["seed"] == 1 and len(prov["generations"]) == 2 and prov["code"]
    assert "behaviour.full_cost_markup" in r.output and "wrote" in r.output
    r2 = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(out), "--workers", "1", "--no-progress"])
    assert r2.exit_code == 0 and "0 evaluations run" in r2.output


def test_a_real_evaluation_is_what_validate_measures(tmp_path):
    """One parameter set on the real model (myanmar_2025_record, 2 seeds, ~1 s): the medians the sampler
    sees are ``ree validate``'s medians with the same overrides."""
    from experiments.validate import validate

    names = ["Myanmar->China ore, Feb 2025 y/y (record)", "Dy, 4-week mean to 26 Mar 2025 (record)"]
    s = spec(targets=names, seeds=[1, 2], parameters={"behaviour.full_cost_markup": (0.6, 0.85),
                                                     "behaviour.seller_stock_elasticity": (1.0, 2.5)})
    cal.check_spec(s)
    point = {"behaviour.full_cost_markup": 0.7, "behaviour.seller_stock_elasticity": 1.5}
    [med] = cal.simulate([point], s, None)
    table = validate([1, 2], workers=1, targets=s.target_list(), overrides=point)
    assert med == pytest.approx(dict(zip(table["target"], table["median"], strict=True)))
