"""``ree sweep --posterior CSV --draws K``: every scenario, design point and seed of a sweep runs under K
parameter sets drawn by weight from a posterior that ``ree calibrate`` wrote; the drawn values are design
columns and part of each run's key, and bad input is refused before anything runs."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments import sweep as sw
from experiments.cli import app
from experiments.validate import posterior_draws

MARKUP, ELASTICITY, ENTRY = ("behaviour.full_cost_markup", "behaviour.seller_stock_elasticity",
                             "behaviour.site_entry_rate")


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny"\nscenario = "baseline"\nweeks = 3\nseeds = [1, 2]\n\n'
                    f'[grid]\n"{ENTRY}" = [0.02, 0.05]\n')
    return path


def _posterior(folder, rows, name="posterior.csv", columns=(MARKUP, ELASTICITY)):
    """A posterior.csv as ree calibrate writes it: the parameters, then weight, distance and target medians."""
    path = folder / name
    path.write_text(",".join([*columns, "weight", "distance", "China share of refined output"]) + "\n"
                    + "".join(",".join(map(str, [*r[:-1], r[-1], 0.0, 0.9])) + "\n" for r in rows))
    return path


def _sweep(*args):
    return CliRunner().invoke(app, ["sweep", *map(str, args), "--workers", "1", "--no-progress"])


def test_every_run_goes_under_every_draw_with_the_drawn_values_as_columns(spec_path, tmp_path):
    post = _posterior(tmp_path, [(0.65, 1.2, 1.0), (0.8, 2.0, 1.0)])
    spec = sw.load_spec(spec_path)
    sets = sw.posterior_sets(post, 3, spec)
    assert sets == posterior_draws(post, 3, seed=0), "the draws ree validate --posterior makes"
    assert sets == sw.posterior_sets(post, 3, spec), "seeded: the same sets every time"
    tasks = sw.plan(spec, draws=sets)
    assert len(tasks) == 2 * 3 * 2, "grid points x draws x seeds"
    assert len({t.key for t in tasks}) == len(tasks)
    for t in tasks:
        assert t.point[sw.DRAW] == t.draw and {k: t.point[k] for k in (MARKUP, ELASTICITY)} == sets[t.draw]
        assert t.overrides[MARKUP] == sets[t.draw][MARKUP] and ENTRY in t.overrides
    plain = sw.plan(spec)
    assert {t.key for t in plain}.isdisjoint(t.key for t in tasks), "no run of other parameters is served"
    assert all(sw.DRAW not in t.point for t in plain), "without a posterior the design is what it was"


def test_a_set_drawn_twice_is_two_runs(spec_path, tmp_path):
    post = _posterior(tmp_path, [(0.7, 1.5, 1.0)])  # one particle: every draw is the same set
    spec = sw.load_spec(spec_path)
    tasks = sw.plan(spec, draws=sw.posterior_sets(post, 3, spec))
    assert len({t.key for t in tasks}) == len(tasks) == 12, "drawn with replacement: each draw counts"


def test_the_sweep_writes_the_columns_resumes_and_refuses_another_posterior(spec_path, tmp_path):
    post = _posterior(tmp_path, [(0.65, 1.2, 1.0), (0.8, 2.0, 3.0)])
    out = tmp_path / "out"
    r = _sweep(spec_path, "--out", out, "--posterior", post, "--draws", 2)
    assert r.exit_code == 0, r.output
    assert "8 runs: 8 done" in r.output
    design = pd.read_csv(out / sw.DESIGN)
    assert {ENTRY, sw.DRAW, MARKUP, ELASTICITY} <= set(design.columns)
    assert sorted(design[sw.DRAW].unique()) == [0, 1] and (design["status"] == "done").all()
    sets = sw.posterior_sets(post, 2, sw.load_spec(spec_path))
    for row in design.itertuples():  # every run ran under its draw's parameters
        meta = sw.read_run_meta(out / sw.RUNS / f"{row.key}.parquet")
        assert {k: meta["overrides"][k] for k in (MARKUP, ELASTICITY)} == sets[row.draw]
    manifest = json.loads((out / sw.MANIFEST).read_text())
    assert manifest["posterior"]["draws"] == 2 and manifest["posterior"]["sets"] == sets
    assert manifest["varied"] == [ENTRY, MARKUP, ELASTICITY]
    df = sw.load_sweep(out, variables=["price"])
    assert {MARKUP, ELASTICITY, sw.DRAW} <= set(df.columns)

    again = _sweep(spec_path, "--out", out, "--posterior", post, "--draws", 2)
    assert again.exit_code == 0 and "0 done, 0 failed, 8 skipped" in again.output, again.output

    other = _posterior(tmp_path, [(0.61, 1.1, 1.0)], "other.csv")
    refused = _sweep(spec_path, "--out", out, "--posterior", other, "--draws", 2)
    assert refused.exit_code == 2 and "another design" in refused.output, refused.output


def test_dry_run_counts_the_draws(spec_path, tmp_path):
    post = _posterior(tmp_path, [(0.65, 1.2, 1.0)])
    r = CliRunner().invoke(app, ["sweep", str(spec_path), "--posterior", str(post), "--draws", "4", "--dry-run",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "16 runs = 1 scenario(s) x 2 design point(s) x 4 posterior draw(s) x 2 seed(s)" in r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, says", [
    ("missing", "--posterior .*file not found"),
    ("unknown column", "--posterior .*column 'behaviour.no_such_rate' is not a parameter the world of "
                       "scenario baseline accepts.*give the posterior.csv that ree calibrate wrote"),
    ("column in the spec", "--posterior .*column 'behaviour.site_entry_rate' is also set by the spec.*drop it"),
    ("zero draws", "--draws 0: must be at least 1"),
    ("draws alone", "--draws 3: .*give --posterior"),
])
def test_bad_input_exits_2_naming_the_option_and_the_fix(spec_path, tmp_path, case, says):
    good = _posterior(tmp_path, [(0.65, 1.2, 1.0)])
    args = {"missing": ["--posterior", tmp_path / "nope.csv"],
            "unknown column": ["--posterior", _posterior(tmp_path, [(0.1, 1.0)], "u.csv", ("behaviour.no_such_rate",))],
            "column in the spec": ["--posterior", _posterior(tmp_path, [(0.1, 1.0)], "s.csv", (ENTRY,))],
            "zero draws": ["--posterior", good, "--draws", 0],
            "draws alone": ["--draws", 3]}[case]
    out = tmp_path / "out"
    r = _sweep(spec_path, "--out", out, *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert re.search(says, " ".join(r.output.split())), r.output
    assert not out.exists(), "refused before anything is written"
