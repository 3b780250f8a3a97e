"""The default world's posterior that ships with the code (``experiments/posteriors/calibrate_default.csv``,
written by ``ree calibrate experiments/specs/calibrate_default.toml``) is usable as the README says: its
parameters are the spec's, inside the spec's priors, the default world accepts every drawn set, and the
README's table quotes its weighted medians and 90 % intervals."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from experiments.calibrate import weighted_quantile
from experiments.validate import TARGETS, posterior_draws

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "experiments/posteriors/calibrate_default.csv"
SPEC = ROOT / "experiments/specs/calibrate_default.toml"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(CSV)


def test_the_posterior_has_the_specs_parameters_inside_their_priors(table):
    spec = tomllib.loads(SPEC.read_text())
    params = list(table.columns[:table.columns.get_loc("weight")])
    assert params == list(spec["parameters"])
    for p, (lo, hi) in spec["parameters"].items():
        assert table[p].between(lo, hi).all(), p
    assert set(spec["targets"]) <= set(table.columns)
    # the spec left out the magnet world's targets and the targets that were known gaps when it ran (the first
    # ex-China Dy; since the Lynas circuit has feed, the licence lift is a gap; Tb's drift was one until Dy/Tb
    # substitution, and the spec still holds it)
    magnet_world = {"magnets_baseline", "magnets_controls_2025", "yttrium_split", "samarium_defence"}
    then = {"First ex-China Dy oxide, weeks after 5 May 2025",
            # a gap until announced_projects carried MP's DoD floor (FACTS E1)
            "China's share of refined output, 2030 (announced projects)",
            # a gap on the oxide world, which the spec runs on; it passes on the magnet world, the default since
            "Malaysia's share of refined output, 2030 (announced projects)"}
    # a target of the spec that became a gap when the magnet world became the default (the oxide world, the
    # spec's, meets it)
    since = {"Dy, 4-week mean to 21 Nov 2025 (record)"}
    # (the growth spell, a gap from 5 Dec 2026 until China's heavy separation quota followed demand, is a
    # target again and in the spec)
    now = {"Dy in China after the licences are lifted, peak vs before"}
    assert now <= {t.name for t in TARGETS if t.known_gap}
    expected = {t.name for t in TARGETS
                if t.scenario not in magnet_world and (not t.known_gap or t.name in now | since)}
    # targets added after the spec ran (the framework against its no-policy twin, 5 Dec 2026)
    added = {"China's Dy+Tb refining share 2029-30, framework minus twin"}
    assert added <= {t.name for t in TARGETS if t.paired}
    assert set(spec["targets"]) == expected - then - added


def test_every_draw_is_a_world_the_model_accepts(table):
    from model.model import RareEarthModel

    for draw in posterior_draws(CSV, 3, seed=1):
        m = RareEarthModel("baseline", seed=1, weeks=2, **draw)
        for key, value in draw.items():
            assert getattr(m.behaviour, key.split(".", 1)[1]) == pytest.approx(value)


def test_the_readme_quotes_the_posterior(table):
    """Each row of the README's posterior table: the weighted median and the 90 % interval, to the digits
    shown."""
    readme = (ROOT / "README.md").read_text()
    w = table["weight"].to_numpy(float)
    for p in table.columns[:table.columns.get_loc("weight")]:
        name = p.split(".", 1)[1]
        row = re.search(rf"^\| `{name}` \| [^|]+ \| ([0-9.]+) \| \[([0-9.]+), ([0-9.]+)\] \|$", readme, re.M)
        assert row, f"README: no posterior row for {name}"
        x = table[p].to_numpy(float)
        for text, q in zip(row.groups(), (0.5, 0.05, 0.95), strict=True):
            digits = len(text.split(".")[1]) if "." in text else 0
            got = weighted_quantile(x, w, q)
            assert float(text) == pytest.approx(got, abs=1.01 * 10 ** -digits), (name, q, text, got)
