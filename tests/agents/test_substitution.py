"""Dy/Tb coercivity substitution (model/substitution.py), alone and in the books that hold recipes.

The rule: what thrifting leaves of a recipe's coercivity (Dy-kg equivalents, Tb counting ``w`` kg of Dy) is
split between Dy and Tb by their prices against 2024, CES with elasticity sigma, moving a share of the way
each week and bounded. It must not move at 2024 *relative* prices, must keep coercivity, must lean toward
the substitute that got relatively cheaper, and must be exactly off when switched off.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import Behaviour, ConfigError
from model.scenario import load_scenario
from model.substitution import CoercivitySubstitution
from tests.conftest import build_scenario

PRODUCTS = ("NdPr", "Dy", "Tb")
P0 = np.array([[60.0, 250.0, 1000.0]])  # one row's 2024 prices, USD/kg
BASE = np.array([[0.276, 0.0138, 0.00318],   # an EV recipe: both substitutes
                 [0.286, 0.00355, 0.0]])     # a recipe with Dy only: nothing to substitute
W_TB = 1.7


def make(**kw) -> CoercivitySubstitution:
    b = Behaviour(**kw)
    return CoercivitySubstitution(PRODUCTS, BASE, np.repeat(P0, 2, axis=0), b)


def work(recipe: np.ndarray) -> np.ndarray:
    return recipe[:, 1] + W_TB * recipe[:, 2]


def run_weeks(sub: CoercivitySubstitution, prices: np.ndarray, weeks: int) -> np.ndarray:
    recipe = BASE
    for _ in range(weeks):
        recipe = sub.step(BASE, np.repeat(prices, 2, axis=0))
    return recipe


def test_nothing_moves_at_2024_relative_prices_whatever_the_level():
    sub = make()
    for level in (0.5, 1.0, 3.0):
        out = run_weeks(sub, P0 * level, 100)
        np.testing.assert_allclose(out, BASE, rtol=1e-12)


def test_a_cheaper_tb_takes_a_larger_share_and_coercivity_is_kept():
    sub = make()
    cheap_tb = P0 * np.array([1.0, 1.0, 0.6])
    out = run_weeks(sub, cheap_tb, 300)  # long enough to settle (rate 0.02/week)
    assert out[0, 2] > BASE[0, 2] * 1.2 and out[0, 1] < BASE[0, 1]
    np.testing.assert_allclose(work(out), work(BASE), rtol=1e-12)
    # settled tilt = (0.6)^-1 relative to Dy's; the split is the 2024 split tilted by it
    s0 = W_TB * BASE[0, 2] / work(BASE)[0]
    want = s0 / 0.6 / (s0 / 0.6 + (1 - s0))
    assert W_TB * out[0, 2] / work(out)[0] == pytest.approx(want, rel=1e-3)
    # the Dy-only recipe is untouched
    np.testing.assert_array_equal(out[1], BASE[1])


def test_the_split_moves_slowly_and_stops_at_the_bound():
    sub = make(substitution_max_tilt=2.0)
    dear_tb = P0 * np.array([1.0, 1.0, 100.0])
    one = run_weeks(sub, dear_tb, 1)
    assert BASE[0, 2] * 0.95 < one[0, 2] < BASE[0, 2]  # one week moves a little
    out = run_weeks(sub, dear_tb, 2000)
    t = sub.tilt()[0]
    assert t[1] / t[0] == pytest.approx(1 / 2.0, rel=1e-6)  # Tb's share against Dy's: at most 2x off 2024
    assert out[0, 2] > 0


def test_higher_elasticity_leans_further():
    cheap_tb = P0 * np.array([1.0, 1.0, 0.6])
    tb = [run_weeks(make(substitution_elasticity=s), cheap_tb, 300)[0, 2] for s in (0.5, 1.0, 2.0)]
    assert tb[0] < tb[1] < tb[2]


@pytest.mark.parametrize("kw", [{"substitution_elasticity": 0.0}, {"substitution_rate_per_week": 0.0},
                                {"coercivity_substitutes": {}}])
def test_off_returns_the_thrifted_recipe_itself(kw):
    sub = make(**kw)
    assert not sub.on
    assert sub.step(BASE, np.repeat(P0 * np.array([1.0, 1.0, 0.2]), 2, axis=0)) is BASE


@pytest.mark.parametrize("world, holder", [("world_2024.toml", "buyers"), ("world_2024_magnets.toml", "makers")])
def test_thrifting_and_substitution_together_keep_the_thrifted_coercivity(world, holder):
    """In a model run (a seed whose Dy and Tb prices part), every recipe holds the coercivity its thrifted
    recipe holds, the substitutes' tonnes move between Dy and Tb only, and some recipe does move. Oxide
    worlds: the buyers hold the recipes; magnet worlds: the magnet makers."""
    m = RareEarthModel(build_scenario("baseline", world=world), seed=2 if holder == "buyers" else 3, weeks=120)
    dy, tb = m.products.index("Dy"), m.products.index("Tb")
    book = m.buyer_book if holder == "buyers" else m.maker_book
    name = "content" if holder == "buyers" else "recipe"
    assert book.substitution.on
    others = np.ones(len(m.products), dtype=bool)
    others[[dy, tb]] = False
    for _ in range(120):
        m.step()
        got, thrifted = getattr(book, name), book.thrifted
        np.testing.assert_allclose(got[:, dy] + W_TB * got[:, tb], thrifted[:, dy] + W_TB * thrifted[:, tb],
                                   rtol=1e-10, atol=1e-15)
        np.testing.assert_array_equal(got[:, others], thrifted[:, others])
        assert (got >= 0).all()
    assert np.abs(book.substitution.log_tilt).max() > 1e-3


def test_an_unknown_substitute_is_refused_with_its_field_named():
    sc = load_scenario("baseline").with_overrides({"behaviour.coercivity_substitutes": {"Dy": 1.0, "Tbb": 1.7}})
    oxides = sorted(p.name for p in load_scenario("baseline").load_world().products if p.stage == "oxide")
    with pytest.raises(ConfigError, match=rf"behaviour\.coercivity_substitutes.*unknown 'Tbb'; allowed: {', '.join(oxides)}$"):
        sc.load_world()
