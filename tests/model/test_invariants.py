"""Issue 2, item 10: invariants every week of a 10-year run.

The checks themselves live in ``tests/conftest.py`` (:class:`InvariantChecker`), shared with the
hypothesis property test: ore mass balance (mined == delivered; feed change == delivered - processed,
per plant and in total), ore -> oxide within processing losses (each oxide == processed x its share of
the feed x recovery, only for oxides the plant separates; total oxide <= processed x the basket's
oxide share), oxide balances (refiners: produced - sold; buyers: bought - consumed; stockpiles:
in - out; sold == bought), traded <= offered and <= demanded in every auction, ore only over open
edges within capacity, no negative stock, finite positive prices. Balances hold to 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from model.policies import Stockpile


def test_baseline_invariants_every_week_for_ten_years(invariant_checker, table_checker):
    model = RareEarthModel("baseline", seed=1)
    assert model.weeks == 520
    checker = invariant_checker(model)
    checker.run(model.weeks)
    assert checker.weeks_checked == 520
    assert model.ledger["mined"] > 0 and model.ledger["produced_Dy"] > 0  # the run did something
    table_checker(model.results())


def test_invariants_every_week_under_every_kind_of_shock(invariant_checker, table_checker, scenario_builder):
    """The combined scenario exercises seizures, a halt, a border closure, licences, a floor,
    financing, a stockpile, permits and an election (and a flood season added here)."""
    flood = {"type": "FloodSeason", "start": "2024-05-01", "actor": "MM", "share": 0.5, "note": "test"}
    release = {"type": "StockpileRelease", "start": "2026-03-02", "end": "2026-05-04", "states": ["JP"]}
    sc = scenario_builder("combined_2025", extra=[flood, release])
    model = RareEarthModel(sc, seed=2)
    checker = invariant_checker(model)
    checker.run(model.weeks)
    assert checker.weeks_checked == sc.weeks
    kinds = {text.split(":")[0] for _, text in model.events}
    assert len(model.events) >= 10, kinds  # the timeline really fired
    table_checker(model.results())


@pytest.mark.parametrize("corrupt", ["refiner_inventory", "buyer_inventory", "feed", "stockpile"])
def test_checker_catches_a_planted_violation(invariant_checker, corrupt):
    """The checker is not vacuous: mass created out of nothing fails the next week's check."""
    model = RareEarthModel("baseline", seed=3, weeks=10)
    checker = invariant_checker(model)
    checker.run(2)
    if corrupt == "refiner_inventory":
        model.refiners[0].inventory = model.refiners[0].inventory + np.array([5.0, 0.0, 0.0])
    elif corrupt == "buyer_inventory":
        model.buyers[0].inventory = model.buyers[0].inventory + np.array([0.0, 1.0, 0.0])
    elif corrupt == "feed":
        model.refiners[0].feed_reo += 100.0
    else:
        model.states[0].stockpile = model.states[0].stockpile + 1.0
    checker.step()
    with pytest.raises(AssertionError, match="balance"):
        checker.assert_ok()


def test_ore_never_exceeds_route_capacity(invariant_checker, scenario_builder):
    """Shrunk by hypothesis: with Baotou at half capacity, Ganzhou and Longyan both bid for Pangwa ore,
    each up to the residual capacity of the shared Pangwa road, so together they can exceed it."""
    sc = scenario_builder("baseline", weeks=52, overrides={"refiners.cn_baotou.capacity_t_per_week": 2700.0})
    model = RareEarthModel(sc, seed=0, weeks=52)
    checker = invariant_checker(model)
    for _ in range(52):
        checker.step()
    assert "routes" not in checker.failures, checker.failures["routes"]


def test_stockpile_on_hand_at_the_start_is_accounted(invariant_checker):
    """A Stockpile with ``initial_days`` gives the agency stock it never bought: the oxide balance of
    stockpiles (in - out) must still close, so that stock has to be ledgered."""
    policy = Stockpile(start="2024-01-01", actor="JP", initial_days=30.0, budget_musd=0.0)
    model = RareEarthModel("baseline", seed=1, weeks=8, policies=[policy])
    invariant_checker(model).run(8)

