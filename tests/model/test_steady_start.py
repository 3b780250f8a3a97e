"""The start is a steady state of the ore market, and plants pay for separating what they yield.

- ``OreMarket.initial_feed`` is the allocation the week's own ore auction makes (sites offering a week's
  mining, plants wanting their planned throughput): each plant's feed mix and delivered cost at the start
  are what the auction then gives it, so the first weeks do not reshuffle the ore (before, sharing ore by
  spare capacity gave the heavy separators a poorer, dearer feed than they then won: Dy per kg of feed
  0.038 -> 0.0435 and their cost -6 % in 16 weeks).
- A plant's cash cost includes separating the oxides its feed yields (``separation_cost_usd_per_kg``), and
  its full cost charges that at cost, without the markup.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel

HEAVY = ("cn_ganzhou", "cn_longyan")


@pytest.mark.parametrize("scenario", ["baseline", "magnets_baseline"])
def test_the_heavy_separators_start_with_the_feed_the_auction_then_gives_them(scenario):
    m = RareEarthModel(scenario, seed=1, weeks=8)
    book, ore, dy = m.refiner_book, m.ore, m.products.index("Dy")
    rows = [book.index[p] for p in HEAVY]
    start_dy = book.feed_el[rows, dy] / book.feed_reo[rows]
    start_ore = book.feed_cost[rows] / book.feed_reo[rows]
    got, got_dy = np.zeros(len(rows)), np.zeros(len(rows))
    for _ in range(8):
        m.step()
        flow = ore.last_flow[:, rows]  # t delivered this week, pools x the two plants
        got += flow.sum(axis=0)
        got_dy += flow.T @ ore.basket_matrix[ore.pool_ore, dy]
    assert (got > 0).all()
    # the Dy in what they bought over 8 weeks is what they started with (the old start: 0.038 against 0.0435)
    np.testing.assert_allclose(got_dy / got, start_dy, rtol=0.03)
    # and their feed on hand, now all bought in the auction, costs what the start said it would
    on_hand = book.feed_cost[rows] / book.feed_reo[rows]
    np.testing.assert_allclose(on_hand, start_ore, rtol=0.05)


def test_separating_is_in_the_cash_cost_and_charged_at_cost_in_the_full_cost():
    m = RareEarthModel("magnets_baseline", seed=1, weeks=4)
    book = m.refiner_book
    sep = np.array([m.world.product(p).separation_cost_usd_per_kg for p in m.products])
    assert sep.any()
    m.run()
    book.update_cost_basis()
    has = book.feed_reo > 1e-9
    ore = np.where(has, book.feed_cost / np.where(has, book.feed_reo, 1.0), 0.0)
    separating = book.mix @ sep
    np.testing.assert_allclose(book.cash_cost[has], (ore + book.unit_cost() + separating)[has], rtol=1e-12)
    markup = m.behaviour.full_cost_markup
    np.testing.assert_allclose(book.full_cost(), (book.cash_cost - separating) * (1 + markup) + separating,
                               rtol=1e-12)
    # an ore's netback counts each oxide net of its separation cost: a clay's La and Ce add ~nothing
    i = book.index["cn_ganzhou"]
    prices = book.expected_prices()
    net = book.netbacks(m.ore.basket_matrix, prices)[i]
    gross = (m.ore.basket_matrix * book.separates[i] * prices[i]).sum(axis=1) * book.recovery[i] - book.unit_cost()[i]
    less = (m.ore.basket_matrix * book.separates[i] * sep).sum(axis=1) * book.recovery[i]
    np.testing.assert_allclose(net, gross - less, rtol=1e-9)
    assert (less[less > 0] > 0.02).all()


def test_a_world_without_separation_costs_has_none():
    from tests.conftest import build_scenario

    m = RareEarthModel(build_scenario("baseline", world="world_2024.toml"), seed=1, weeks=2).run()  # the oxide world
    book = m.refiner_book
    assert not book.separation_cost.any() and not book.separating.any()
    np.testing.assert_array_equal(book.full_cost(), book.cash_cost * (1 + m.behaviour.full_cost_markup))


def test_the_start_averages_its_auction_orders_from_its_own_stream():
    a = RareEarthModel("baseline", seed=1, weeks=1)
    b = RareEarthModel("baseline", seed=1, weeks=1)
    np.testing.assert_array_equal(a.refiner_book.feed_el, b.refiner_book.feed_el)  # same seed, same start
    one = RareEarthModel("baseline", seed=1, weeks=1, **{"behaviour.start_orders": 1})
    assert one.refiner_book.feed_reo.sum() == pytest.approx(a.refiner_book.feed_reo.sum(), rel=1e-6)
