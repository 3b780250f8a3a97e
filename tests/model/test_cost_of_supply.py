"""A region's cost of supply (``signals.normal``) is what its stock agencies and China's quota rule steer by.
Where a region imports most of what it uses, one small plant of its own must not set it."""

from __future__ import annotations

import pytest

from experiments.run import run_one

LOWER_OF_TWO = {"behaviour.cost_of_supply_weights_imports": False}
OLD_RULE = pytest.mark.xfail(strict=True, reason="the rule before 5 Dec 2026, kept as an option: an importing "
                             "region's cost of supply was the lower of its own producers' reservation and the "
                             "import cost, so Lynas's first few tonnes of Dy (~2 % of ex-China use) took ex-China "
                             "Dy's from ~230 to ~140 USD/kg, and Japan's agency sold ~40 t of Dy from week 72 of "
                             "a calm run")


@pytest.fixture(scope="module", params=[pytest.param(None, id="default"),
                                        pytest.param(LOWER_OF_TWO, marks=OLD_RULE, id="lower_of_two")])
def calm(request):
    """The default world's calm baseline through 2026 (Lynas's first Dy outside China arrives in May 2025,
    week ~70, FACTS E7), with the default rule (the import cost weighted by the share of use imported) and
    with the rule before it (``cost_of_supply_weights_imports = false``)."""
    return run_one("baseline", 1, weeks=140, overrides=request.param)


def _series(df, variable, region, product):
    x = df[(df.variable == variable) & (df.region == region) & (df["product"] == product)]
    return x.groupby("step").value.sum()


def test_a_small_local_plant_does_not_set_an_importing_regions_cost_of_supply(calm):
    cost = _series(calm, "cost_of_supply", "ROW", "Dy")
    assert cost.loc[100:140].min() >= 0.8 * cost.loc[40:60].mean()


def test_no_agency_releases_stock_in_a_calm_run(calm):
    released = _series(calm, "stockpile_released", "JP", "Dy")
    assert released.sum() < 1.0, released[released > 0]
