"""A technology adopted stays adopted: thrifting (agents/buyer.py, agents/magnet_maker.py) keeps
``thrift_irreversible_share`` of every cut, however prices move afterwards.

Over many weeks of seeded random price regimes (high: cut; low: recover; in between: hold), after every
week each content stays at or below base - irreversible share x (all cuts so far), never below its floor,
and after a long spell of low prices it comes back to exactly that ceiling, no further. A rule that let a
recovery climb past the ceiling (or a ceiling that forgot earlier cuts) fails here. The recipes thrifting
makes are checked (``thrifted``); the Dy/Tb split laid over them is tests/agents/test_substitution.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from model.scenario import Scenario

WEEKS = 600
RECOVERY = 2000  # weeks of low prices at the end: enough to recover all that may be (0.6 of base at 0.000625 a week)
REGIMES = (3.0, 0.5, 1.1)  # recent price / long memory: above the trigger (cut), below 1 (recover), between


def _drive(m: RareEarthModel, step, content, base, floor, rng: np.random.Generator) -> None:
    irr = m.behaviour.thrift_irreversible_share
    cuts = np.zeros_like(base)
    regime_left = 0
    for week in range(WEEKS + RECOVERY):
        if regime_left == 0:  # a new regime per product, for a random number of weeks
            ratio = rng.choice(REGIMES, size=len(m.products)) if week < WEEKS else np.full(len(m.products), 0.5)
            for r in m.regions:
                m.signals.recent[r][:] = ratio * m.signals.long_memory[r]
            regime_left = int(rng.integers(5, 60)) if week < WEEKS else 10**6
        regime_left -= 1
        before = content().copy()
        step()
        after = content()
        cuts += np.maximum(before - after, 0.0)
        assert (after <= base - irr * cuts + 1e-12).all(), f"week {week}: a cut came back beyond its reversible share"
        assert (after >= floor - 1e-12).all()
    used = cuts > 0
    assert used.any()
    if irr < 1:  # some content recovered and was cut again: cuts add up to more than could be cut at once
        assert (cuts > (base - floor) + 1e-9).any()
    # after long enough at low prices (recovery is a quarter of the cutting pace): back to the ceiling exactly, where there was anything to recover
    np.testing.assert_allclose(content()[used], (base - irr * cuts)[used], rtol=1e-9, atol=1e-15)


def test_buyers_keep_the_irreversible_share_of_every_cut():
    m = RareEarthModel("baseline", seed=1, weeks=10)
    m.run(2)
    book = m.buyer_book

    def step():
        book.inventory = book.inventory + book.need(m.demand_multiplier)  # no shortage: prices alone
        book.consume(m.demand_multiplier)

    _drive(m, step, lambda: book.thrifted, book.base_content.copy(), book.min_content.copy(),
           np.random.default_rng(20240101))


@pytest.mark.parametrize("irreversible", [0.5, 1.0, 0.0])
def test_magnet_makers_keep_the_irreversible_share_of_every_cut(irreversible):
    sc = Scenario(name="thrift", world="world_2024_magnets.toml", weeks=10, seeds=[1],
                  overrides={"behaviour.thrift_irreversible_share": irreversible})
    m = RareEarthModel(sc, seed=1)
    m.run(2)
    mb = m.maker_book

    def step():
        mb.short_of = np.zeros_like(mb.short_of)  # prices alone
        mb.adapt()

    _drive(m, step, lambda: mb.thrifted, mb.base_recipe.copy(), mb.min_recipe.copy(), np.random.default_rng(7))
