"""``ree calibrate --cluster local:N`` / ``--scheduler ADDRESS``: a calibration's runs on a Dask cluster, as a
sweep's. The same spec gives the same posterior on the process pool and on Dask (a tiny spec on the real
model: one seed, 4 particles, 2 generations of myanmar_2025_record, ~12 runs of 0.4 s each)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments import calibrate as cal
from experiments.cli import app

TINY = """name = "tiny"
seeds = [1]
targets = ["Myanmar->China ore, Feb 2025 y/y (record)", "Dy, 4-week mean to 26 Mar 2025 (record)"]
particles = 4
generations = 2
quantile = 0.5
seed = 11
max_evaluations = 8

[parameters]
"behaviour.full_cost_markup" = [0.6, 0.85]
"behaviour.seller_stock_elasticity" = [1.0, 2.5]
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _calibrate(*args):
    return CliRunner().invoke(app, ["calibrate", *map(str, args), "--no-progress"])


@pytest.mark.slow
def test_the_same_spec_gives_the_same_posterior_on_the_process_pool_and_on_dask(tiny, tmp_path):
    pool = _calibrate(tiny, "--out", tmp_path / "pool", "--workers", "2")
    assert pool.exit_code == 0, pool.output
    assert pool.output.startswith("2 generations"), "generation 1 is drawn through the kernel: a real SMC step"
    dask = _calibrate(tiny, "--out", tmp_path / "dask", "--cluster", "local:2")
    assert dask.exit_code == 0, dask.output
    a, b = (pd.read_csv(tmp_path / d / "posterior.csv") for d in ("pool", "dask"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "pool" / "posterior.csv").read_bytes() == (tmp_path / "dask" / "posterior.csv").read_bytes()
    assert (tmp_path / "pool" / "population_0.csv").read_bytes() == (tmp_path / "dask" / "population_0.csv").read_bytes()
    prov = json.loads((tmp_path / "dask" / "provenance.json").read_text())
    assert prov["executor"] == {"workers": None, "scheduler": None, "cluster": "local:2"}
    assert json.loads((tmp_path / "pool" / "provenance.json").read_text())["executor"]["workers"] == 2
    # the Dask folder resumes like any other: nothing is run again
    again = _calibrate(tiny, "--out", tmp_path / "dask", "--cluster", "local:1")
    assert again.exit_code == 0 and " 0 evaluations run" in again.output, again.output


def test_an_evaluation_on_dask_is_the_in_process_one(tiny, tmp_path):
    """simulate() through Dask's executor returns what it returns without one, point by point."""
    s = cal.check_spec(cal.load_spec(tiny))
    points = [{"behaviour.full_cost_markup": 0.7, "behaviour.seller_stock_elasticity": 1.5},
              {"behaviour.full_cost_markup": 0.8, "behaviour.seller_stock_elasticity": 2.0}]
    with cal._executor(1, None, "local:1") as ex:
        on_dask = cal.simulate(points, s, ex)
    assert on_dask == cal.simulate(points, s, None)


@pytest.mark.parametrize("args, says", [
    (["--workers", "2", "--cluster", "local:2"], "--workers 2: local worker processes do not apply with --cluster"),
    (["--scheduler", "tcp://a:1", "--cluster", "local:2"], "give one of them, not both"),
    (["--cluster", "remote"], "--cluster 'remote': expected local:N"),
    (["--scheduler", "nohost"], "--scheduler 'nohost': expected a Dask scheduler address"),
])
def test_bad_executor_options_exit_2_before_anything_runs(tiny, tmp_path, args, says):
    r = _calibrate(tiny, "--out", tmp_path / "out", *args)
    assert r.exit_code == 2 and says in " ".join(r.output.split()) and "Traceback" not in r.output, r.output
    assert not (tmp_path / "out").exists()
