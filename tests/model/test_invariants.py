"""Invariants every week of a 10-year run and under every kind of shock.

The checks live in ``tests/conftest.py`` (:class:`InvariantChecker`), shared with the hypothesis property
test: ore balances (each site's yard changes by mined - sold; sites sold what plants received; no mining
above capacity or while halted), feed balance and ore -> oxide (each oxide = processed x its share of the
feed x recovery, separated products only), oxide held anywhere (plants, buyers, traders, state stocks)
changes by produced - consumed + stock endowed from outside, every exchange's fills sum to its volume on
both sides within each schedule, importers' purchases arrive, ore only over open edges within capacity, no
negative stock, finite positive prices. Balances hold to 1e-6 relative.
"""

from __future__ import annotations

import pytest

from model.model import RareEarthModel
from model.policies import Stockpile
from model.scenario import list_scenarios


def test_baseline_invariants_every_week_for_ten_years(invariant_checker, table_checker):
    model = RareEarthModel("baseline", seed=1)
    assert model.weeks == 520
    checker = invariant_checker(model)
    checker.run(model.weeks)
    assert checker.weeks_checked == 520
    assert model.ledger.mined > 0 and model.ledger.produced[model.products.index("Dy")] > 0  # it did something
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


@pytest.mark.parametrize("corrupt", ["refiner_inventory", "buyer_inventory", "trader_stock", "stockpile",
                                     "site_stock", "feed"])
def test_checker_catches_a_planted_violation(invariant_checker, corrupt):
    """The checker is not vacuous: mass created out of nothing fails that week's check."""
    model = RareEarthModel("baseline", seed=3, weeks=10)
    checker = invariant_checker(model)
    checker.run(2)
    orig_consume = model._consume

    def corrupted_consume():  # mass appears in the middle of a week
        orig_consume()
        if corrupt == "refiner_inventory":
            model.refiner_book.inventory[0, 0] += 5.0
        elif corrupt == "buyer_inventory":
            model.buyer_book.inventory[0, 1] += 1.0
        elif corrupt == "trader_stock":
            model.trader_book.stock[0, 1] += 1.0
        elif corrupt == "stockpile":
            model.states[0].stockpile = model.states[0].stockpile + 1.0
        elif corrupt == "site_stock":
            model.fleet.stock[0] += 50.0
        else:
            model.refiner_book.feed_reo[0] += 100.0

    model._consume = corrupted_consume
    checker.step()
    with pytest.raises(AssertionError, match="balance|feed"):
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
    """A Stockpile with ``initial_days`` gives the agency stock it never bought: the oxide balance must
    still close, so that stock is booked as endowed (``State.endowed``)."""
    policy = Stockpile(start="2024-01-01", actor="JP", initial_days=30.0, budget_musd=0.0)
    model = RareEarthModel("baseline", seed=1, weeks=8, policies=[policy])
    invariant_checker(model).run(8)
    reserve_only = RareEarthModel("baseline", seed=1, weeks=8).state_by_id["JP"].endowed  # JOGMEC's stock
    assert model.state_by_id["JP"].endowed.sum() > reserve_only.sum() + 1.0  # the policy's 30 days entered



def _edge_weeks(model: RareEarthModel) -> dict[tuple[str, str, str], int]:
    """Weeks in which an exchange cleared at the top or bottom of its price grid, by (region, product, edge)."""
    hits: dict[tuple[str, str, str], int] = {}
    while model.running:
        model.step()
        for region, c in model.week.clearing.items():
            for k in c.bound.nonzero()[0]:
                key = (region, model.products[k], "top" if c.bound[k] > 0 else "bottom")
                hits[key] = hits.get(key, 0) + 1
    return hits


@pytest.mark.parametrize("scenario", list_scenarios())
def test_no_shipped_market_clears_at_the_edge_of_its_price_grid(scenario):
    """A price at the grid's end is the grid's, not the market's (the long side is filled pro rata there): in
    no shipped scenario (seed 1, its whole horizon) does a market clear at either end of its grid."""
    hits = _edge_weeks(RareEarthModel(scenario, seed=1))
    assert not hits, f"{scenario}: cleared at its grid's edge (weeks): {hits}"


def test_the_edge_check_sees_a_grid_that_binds():
    """With the grid the magnet world had before (25 x the starting price at most), ex-China yttrium sat at
    the grid's top for over a year of licences (FACTS P4: ~US$270 against ~US$7): the check catches it."""
    from experiments.run import _with_overrides

    sc = _with_overrides("yttrium_split", {"behaviour.price_grid_high": 25.0, "behaviour.price_grid_points": 64})
    hits = _edge_weeks(RareEarthModel(sc, seed=1))
    assert hits.get(("ROW", "Y", "top"), 0) > 52, hits
