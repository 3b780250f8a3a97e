"""The magnet stage (``world_2024_magnets.toml``): magnet makers, OEMs that buy magnets, elements as data,
controls by product form. The validation targets of its scenarios are in ``tests/test_scenarios.py``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import ConfigError, load_world
from model.policies import ExportControl
from model.scenario import load_scenario

WORLD = "world_2024_magnets.toml"


@pytest.fixture(scope="module")
def world():
    return load_world(WORLD)


def magnet_model(weeks: int = 30, seed: int = 1, **kw) -> RareEarthModel:
    return RareEarthModel("magnets_baseline", seed=seed, weeks=weeks, **kw)


# ================================================================================================ the data
def test_the_magnet_world_has_the_elements_and_stages_the_issue_names(world):
    stage = {p.name: p.stage for p in world.products}
    assert {"NdPr", "Dy", "Tb", "Sm", "Gd", "Y", "La", "Ce"} <= {p for p, s in stage.items() if s == "oxide"}
    assert {"NdFeB", "SmCo"} <= {p for p, s in stage.items() if s == "magnet"}
    clay = world.ore("ionic_clay").basket
    rock = world.ore("bastnaesite").basket
    assert clay["Y"] > 10 * rock["Y"] and clay["Dy"] > 10 * rock["Dy"], "Kachin-type clays are Y- and heavy-rich"
    assert {m.country for m in world.magnet_makers} >= {"CN", "JP", "EU", "US", "VN"}
    assert any(m.status == "building" and m.online_date.year == 2028 for m in world.magnet_makers), "MP's 10X"


@pytest.mark.parametrize("name", ["world_2024.toml", WORLD])
def test_every_buyer_can_pay_the_2024_price_of_what_it_uses(name):
    """A world starts in 2024 with every user buying at 2024 prices, so every buyer's budget (its share of its
    product's value) covers the 2024 cost of the elements in a kg of it; one that cannot goes short from week 1
    in a calm year (the Chinese samarium users did: ~890 t in 2024)."""
    w = load_world(name)
    price = {p.name: p.price_2024_usd_per_kg for p in w.products}
    for b in w.buyers:
        cost = sum(c * price[p] for p, c in b.content_kg_per_kg.items())
        assert w.behaviour.wtp_share_of_magnet_value * b.value_usd_per_kg_magnet > cost, b.id


@pytest.mark.parametrize("edit, where", [
    ({"products.NdFeB.bill_of_materials": {}}, "bill_of_materials"),
    ({"refiners.cn_baotou.separates": ["NdPr", "NdFeB"]}, "refiners.cn_baotou.separates"),
    ({"magnet_makers.jp_ndfeb.makes": "Dy"}, "magnet_makers.jp_ndfeb.makes"),
    ({"products.SmCo.bill_of_materials": {"Co": 0.5}}, "products.SmCo.bill_of_materials"),
    ({"magnet_makers.jp_ndfeb.expansion_capex_usd_per_kg_year": -5.0}, "expansion_capex_usd_per_kg_year"),
    ({"behaviour.sales_memory_weeks": 60.0}, "behaviour.maker_expansion_trend_weeks"),
    ({"magnet_makers.jp_ndfeb.sponsor_state": "XX"}, "magnet_makers.jp_ndfeb.sponsor_state"),
    ({"magnet_makers.jp_smco.node": "osaka"}, "magnet_makers.jp_smco.node"),  # the map's node must be the world's
])
def test_a_wrong_magnet_stage_is_refused_naming_the_field(edit, where):
    with pytest.raises(ConfigError) as err:
        load_world(WORLD, overrides=edit, overrides_source="s.toml")
    assert where in str(err.value), str(err.value)


def test_a_new_element_is_a_data_change(tmp_path):
    """Holmium (on the 9 Oct 2025 list, FACTS D9) added by editing the world file only: it is mined in the
    clays, separated in China (the project database lists it for Ganzhou and Longyan; the world keeps it once
    it is a product) and bought by its users, and it gets a price in both markets."""
    text = (load_world.__globals__["DATA_DIR"] / WORLD).read_text()
    text = text.replace('[[products]]\nname = "NdFeB"', '[[products]]\nname = "Ho"\nprice_2024_usd_per_kg = 70.0\n'
                        'export_cost_usd_per_kg = 1.0\n\n[[products]]\nname = "NdFeB"', 1)
    text = text.replace("La = 0.25, Ce = 0.03 }", "La = 0.25, Ce = 0.03, Ho = 0.01 }", 1)
    text += ('\n[[buyers]]\nid = "jp_holmium"\nstate = "JP"\nsegment = "lasers"\nmagnet_t_per_year = 300.0\n'
             'content_kg_per_kg = { Ho = 1.0 }\nvalue_usd_per_kg_magnet = 2000.0\n')
    path = tmp_path / "world_ho.toml"
    path.write_text(text)
    scen = load_scenario("magnets_baseline")
    m = RareEarthModel(scen.model_copy(update={"world": str(path)}), seed=1, weeks=8)
    m.run()
    assert "Ho" in m.products
    df = m.results()
    ho = df[(df.variable == "price") & (df["product"] == "Ho")]
    assert set(ho.region) == {"CN", "ROW"} and (ho.value > 0).all()
    used = df[(df.variable == "consumption") & (df["product"] == "Ho") & (df.region == "JP")].value
    assert used.iloc[-1] > 0, "Japan's holmium users are served"


# ====================================================================================== makers, one rule each
def test_makers_pay_for_an_element_what_the_magnet_leaves():
    """Willingness to pay for Dy = (what the plant's magnets fetch - processing - the other elements at what it
    pays for them) per kg of Dy put in: a small part of the magnet's cost, so well above Dy's price (FACTS L5)."""
    m = magnet_model(weeks=2)
    m.run()
    mb = m.maker_book
    i = mb.ids.index("cn_ndfeb")
    k = m.products.index("Dy")
    per_kg = mb.input_per_kg()[i]
    usual = mb.paid_memory[i]
    expected = (mb.sale_memory[i] - mb.processing_cost[i] - (per_kg * usual).sum() + per_kg[k] * usual[k]) / per_kg[k]
    m.step()  # orders are placed during the step, at the memories the step starts with
    assert mb.wtp[i, k] == pytest.approx(expected, rel=1e-9)
    assert mb.wtp[i, k] > 2 * m.price("CN", "Dy")


def test_makers_cost_and_value_follow_their_own_books_not_the_spot_quote():
    """A plant's costs are what it paid (contracts and spot, volume-weighted) and its magnets' value what they
    fetched: a spot quote that trades little moves neither (under licences most volume is contracted)."""
    m = magnet_model(weeks=2)
    m.run()
    mb = m.maker_book
    i = mb.ids.index("jp_ndfeb")
    k, mag = m.products.index("Dy"), m.products.index("NdFeB")
    before = mb.full_cost()[i]
    m.signals.long_memory["ROW"][k] *= 20.0  # a squeezed spot quote
    m.signals.memory["ROW"][mag] *= 20.0
    assert mb.full_cost()[i] == pytest.approx(before, rel=1e-12)
    paid = mb.paid_memory[i, k]
    m.step()
    got = mb.bought[i, k] + mb.contract_got[i, k]
    assert got > 0
    average = (mb.paid[i, k] + mb.contract_paid[i, k]) / (got * 1000.0)
    assert mb.paid_memory[i, k] == pytest.approx(paid + (average - paid) / m.behaviour.long_memory_weeks, rel=1e-9)
    assert mb.sale_memory[i] < 2.0 * m.price("CN", "NdFeB"), "what its magnets fetched, not the 20x quote"


def test_the_scarcest_element_binds_production_and_swarf_is_recycled():
    m = magnet_model(weeks=1)
    mb = m.maker_book
    i = mb.ids.index("jp_ndfeb")
    dy = m.products.index("Dy")
    mb.inventory[i, dy] = 0.0
    mb.make()
    assert mb.made[i] == 0.0, "no Dy, no magnet"
    j = mb.ids.index("cn_ndfeb")
    assert mb.made[j] > 0
    nd = m.products.index("NdPr")
    waiting = mb.swarf[j, nd] + mb.recycled[j, nd]  # swarf before this week's return
    expected = waiting / m.behaviour.recycling_weeks
    assert mb.recycled[j, nd] == pytest.approx(expected), "a 1/recycling_weeks share of the swarf comes back"


def test_a_steady_start_recycles_the_steady_flow_and_orders_only_what_the_week_lacks():
    """Swarf is a standing flow (FACTS R1): the first week returns what a week of making puts in, and a plant
    that made its magnets before buying holds its cover plus the week's use, so at unchanged prices its first
    order is the week's use less what came back from swarf (no start-up buying spree)."""
    m = magnet_model(weeks=1)
    mb, b = m.maker_book, m.behaviour
    use = mb.use_per_week(mb.sales_ema)
    mb.make()
    inflow = mb.used * ((1.0 - mb.yield_) * mb.recovery)[:, None]
    ndfeb = mb.makes == m.products.index("NdFeB")  # SmCo swarf (Sm at ~US$2/kg) is not worth recycling: it waits
    assert mb.recycled[ndfeb].sum() > 0
    np.testing.assert_allclose(mb.recycled[ndfeb], inflow[ndfeb], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mb.inventory, use * b.maker_target_cover_weeks + mb.recycled, rtol=1e-9, atol=1e-9)
    assert not mb.short_of.any()


def test_calm_prices_have_no_start_up_hump():
    """The world starts near its own steady state: with no shock, no heavy-oxide 4-week mean rises more than
    12 % above its 2024 level in the first 18 months (three seeds). Before the steady start (makers bought a
    week's use too much in week 1, recycling started from nothing, the route back bought magnets to ship into
    China) Dy's peaked 15 % above 2024 by week 15 with no shock at all; now ~10 % (what is left is the magnet
    buyers' and importers' stock response to the first weeks' prices, see the closing note of issue 11)."""
    for seed in (1, 2, 3):
        df = magnet_model(weeks=78, seed=seed).run().results()
        for p, p0 in (("Dy", 255.0), ("Tb", 804.0)):
            s = df[(df.variable == "price") & (df.region == "CN") & (df["product"] == p)].set_index("step")["value"]
            peak = s.rolling(4).mean().max() / p0
            assert peak < 1.12, f"seed {seed}: {p} 4-week mean peaked at {peak:.2f} x 2024 with no shock"


def test_exporters_bid_only_where_the_price_abroad_pays_the_trip():
    """An exporter is an arbitrageur: at a grid price whose landed cost (price + export cost + margin) is above
    what it expects to sell at abroad it bids nothing; below, it restocks as an importer does."""
    m = magnet_model(weeks=1)
    tb = m.trader_book
    rows = np.flatnonzero(tb.exporter)
    assert rows.size
    grid = m.exchange.grid["ROW"]
    bids = tb._export_buying("ROW", rows).dense()  # products x exporters x grid
    expect = np.array([m.signals.recent[tb.exports_to[i]] for i in rows.tolist()]).T  # products x exporters
    landed = (grid + m.export_cost[:, None]) * (1.0 + m.behaviour.import_margin)
    above = landed[:, None, :] > expect[:, :, None]
    assert above.any() and (~above).any()
    assert (bids[above] == 0.0).all(), "nothing bought that would land dearer than it sells"
    assert (bids[~above] > 0.0).any(), "an empty exporter restocks where the trip pays"
    nd, mag = m.products.index("NdPr"), m.products.index("NdFeB")
    at_start = np.abs(grid[mag] - m.price("ROW", "NdFeB")).argmin()
    assert bids[mag, :, at_start].sum() == 0.0, "China makes magnets cheaper: none go back at today's prices"
    assert grid[nd].size


def test_swarf_waits_while_recycling_costs_more_than_it_returns():
    m = magnet_model(weeks=1, **{"behaviour.recycling_cost_usd_per_kg": 5000.0})
    mb = m.maker_book
    mb.make()
    mb.make()
    assert mb.recycled.sum() == 0.0 and mb.swarf.sum() > 0


def test_makers_sell_magnets_at_their_full_cost_and_never_below_cash_cost():
    m = magnet_model(weeks=3)
    m.run()
    mb = m.maker_book
    mb.prepare_week()
    assert np.allclose(mb.reserve_price, mb.cash_cost() * (1 + m.behaviour.maker_full_cost_markup))
    grid = m.exchange.grid["CN"]
    sell = next(b for b in mb.orders("CN", grid) if b.name == "makers_sell").qty
    mag = m.products.index("NdFeB")
    i = list(mb.rows_of_region["CN"]).index(mb.ids.index("cn_ndfeb"))
    below = grid[mag] < mb.cash_cost()[mb.ids.index("cn_ndfeb")]
    assert below.any() and (sell[mag, i, below] == 0).all()
    assert sell[mag, i, ~below].max() > 0
    others = [k for k in range(len(m.products)) if k != mag and k != m.products.index("SmCo")]
    assert sell[others].sum() == 0, "makers sell only magnets"


# ================================================================================================ the chain
@pytest.fixture(scope="module")
def baseline_run():
    m = magnet_model(weeks=104)
    m.run()
    return m, m.results()


def test_invariants_hold_through_the_magnet_stage(invariant_checker):
    """Mass balance of every oxide and magnet through makers, swarf, disposal and every holder; no negative
    stock; finite positive prices (the checker the default world's 10-year test uses)."""
    chk = invariant_checker(RareEarthModel("magnets_controls_2025", seed=3, weeks=60))
    chk.run(60)
    chk.assert_ok()


def test_same_seed_same_table_with_magnets():
    a, b = magnet_model(weeks=20, seed=5), magnet_model(weeks=20, seed=5)
    a.run()
    b.run()
    assert a.results().equals(b.results())


def test_china_makes_most_magnets_and_oems_are_served_in_calm_years(baseline_run):
    m, df = baseline_run
    share = df[(df.variable == "china_magnet_share") & (df["product"] == "")].value
    assert 0.88 <= share.mean() <= 0.98, "FACTS B5: ~94 %"
    short = df[(df.variable == "shortage") & (df["product"] == "NdFeB")].value.sum()
    use = df[(df.variable == "consumption") & (df["product"] == "NdFeB")].value.sum()
    assert short / use < 0.01


def test_no_user_goes_short_in_a_calm_two_years(baseline_run):
    m, df = baseline_run
    short = df[df.variable == "shortage"].groupby("product").value.sum()
    assert (short <= 1e-6).all(), short[short > 1e-6]


def test_surplus_co_products_are_disposed_of_and_keep_a_price(baseline_run):
    m, df = baseline_run
    assert m.ledger.disposed[m.products.index("Ce")] > 0, "Ce is in surplus (FACTS L6)"
    assert m.ledger.disposed[m.products.index("NdPr")] == 0, "NdPr is not disposable"
    ce = df[(df.variable == "price") & (df.region == "CN") & (df["product"] == "Ce")].value
    # refiners never sell below the separation cost; stockholders may clear a little below it
    sep = m.world.product("Ce").separation_cost_usd_per_kg
    assert 0.8 * sep <= ce.iloc[-13:].mean() <= 1.2 * sep, "Ce settles near its separation cost, not at the grid's bottom"


def test_yttrium_and_gadolinium_are_co_products_that_hold_their_price_in_a_calm_decade():
    """At the throughput that meets NdPr, Dy and Tb use the clays' basket makes more Y and Gd than their 2024
    use, so they are co-products in surplus like La and Ce and trade at their incremental separation cost,
    which their 2024 price stands for: in a calm decade they stay within 20 % of 2024 (they fell ~60 % while
    their separation costs were set far below their prices, nothing being disposed of). Seed 1, last 4 weeks.
    Y's surplus is disposed of (~3,400 t in ten years); Gd's is a few per cent of its use and stays in the
    plants' stocks (0 to 1 t disposed in ten years, by the cost-of-supply rule), so only Y's disposal is
    asserted."""
    m = magnet_model(weeks=520)
    m.run()
    df = m.results()
    assert m.ledger.disposed[m.products.index("Y")] > 0
    for product in ("Y", "Gd"):
        assert m.world.product(product).disposable, product
        p = df[(df.variable == "price") & (df.region == "CN") & (df["product"] == product)].value
        start = m.world.product(product).price_2024_usd_per_kg
        assert p.iloc[-4:].mean() >= 0.8 * start, (product, p.iloc[-4:].mean(), start)


def test_china_s_yttrium_holds_at_its_separation_cost_when_licences_shut_it_in():
    """FACTS P4: under the 2025 licences ~75 % of the world's yttrium still paid ~US$6.50/kg (China's price)
    while Europe's spot reached ~US$270. Licences leave a glut in China; its refiners do not sell below the
    separation cost, so China's Y (4-week means, seed 1) stays within 10 % of it and within 15 % of P4's
    US$6.50, and ex-China spot soars."""
    m = RareEarthModel("yttrium_split", seed=1)
    m.run()
    df = m.results()
    y = df[(df.variable == "price") & (df["product"] == "Y")].pivot_table(index="date", columns="region", values="value")
    cn, row = y["CN"].rolling(4).mean().dropna(), y["ROW"].rolling(4).mean().dropna()
    sep = m.world.product("Y").separation_cost_usd_per_kg
    assert cn.min() >= 0.9 * sep, (cn.min(), sep)
    assert cn.min() >= 0.85 * 6.5, cn.min()  # FACTS P4
    assert row.max() >= 15 * cn.min(), (row.max(), cn.min())


def test_the_magnet_stage_reports_where_users_feel_shortages():
    m = RareEarthModel("samarium_defence", seed=1, weeks=80)
    m.run()
    df = m.results()
    f35 = df[(df.variable == "units_short") & (df.region == "US") & (df["product"] == "F-35 equivalents")]
    assert len(f35) and f35.value.max() > 0, "SmCo shortages are reported as F-35 equivalents (FACTS P8)"
    made = df[df.variable == "magnet_output"]
    assert {"CN", "JP", "US"} <= set(made.region)


# ======================================================================================= controls by form
def test_a_control_by_form_covers_the_magnets_that_contain_a_named_element():
    m = magnet_model(weeks=1)
    P = m.products
    both = ExportControl(start="2025-04-04", products=["Dy", "Tb"], forms=["oxide", "magnet"])._mask(m)
    assert both[P.index("Dy")] and both[P.index("NdFeB")] and not both[P.index("SmCo")]
    assert not both[P.index("NdPr")], "NdPr oxide is not on the list: only the NdPr inside magnets is held back"
    oxide_only = ExportControl(start="2025-04-04", products=["Dy"], forms=["oxide"])._mask(m)
    assert oxide_only[P.index("Dy")] and not oxide_only[P.index("NdFeB")]
    named = ExportControl(start="2025-04-04", products=["Dy"])._mask(m)
    assert list(np.flatnonzero(named)) == [P.index("Dy")], "without forms: the named products only"


def test_magnet_licences_hold_back_magnet_exports_and_leakage_lets_some_through():
    def exports(**policy):
        pol = ExportControl(start="2024-01-01", products=["Dy", "Tb"], forms=["oxide", "magnet"], mode="ban", **policy)
        m = magnet_model(weeks=30, seed=2, policies=[pol])
        m.run()
        df = m.results()
        return df[(df.variable == "exports") & (df["product"] == "NdFeB") & (df.step > 4)].value.sum()

    free = magnet_model(weeks=30, seed=2).run().results()
    free_x = free[(free.variable == "exports") & (free["product"] == "NdFeB") & (free.step > 4)].value.sum()
    banned, leaky = exports(), exports(leakage=0.3)
    assert free_x > 0 and banned == 0.0
    assert 0.1 * free_x < leaky < free_x, "30 % of refused tonnage re-exported through third countries"


# ============================================================================================ term contracts
def test_contracts_carry_most_volume_near_chinas_price_while_spot_quotes_soar():
    """FACTS P4: under the 2025 licences most ex-China volume paid China-linked contract prices while the
    thin spot market quoted many times China's. Contracts take this week's licensed imports and the
    region's own output (never older stock), at China's price + premium + export cost."""
    m = RareEarthModel("magnets_controls_2025", seed=1, weeks=60)
    tb = m.trader_book
    delivered_within_imports = True
    for _ in range(60):
        m.step()
        delivered_within_imports &= bool((tb.contracted <= tb.imported + 1e-9).all())
    assert delivered_within_imports, "an importer filled contracts beyond what it imported that week"
    df = m.results()
    dy = m.products.index("Dy")
    late = df[(df.step > 30) & (df.region == "ROW") & (df["product"] == "Dy")]
    get = {v: late[late.variable == v].set_index("step").value for v in ("price", "average_price",
                                                                         "contract_volume", "volume", "contract_price")}
    cn = df[(df.step > 30) & (df.region == "CN") & (df["product"] == "Dy") & (df.variable == "price")].set_index("step").value
    assert (get["contract_price"] - (cn * (1 + m.behaviour.contract_premium) + m.export_cost[dy])).abs().max() < 1e-6
    assert get["contract_volume"].sum() > 4 * get["volume"].sum(), "contracts carry most ex-China volume"
    assert (get["price"] / cn).median() > 5, "the spot quote is many times China's"
    assert (get["average_price"] / cn).median() < 0.5 * (get["price"] / cn).median()
    assert ((get["average_price"] >= get["contract_price"].clip(upper=get["price"]) - 1e-6)
            & (get["average_price"] <= get["price"].clip(lower=get["contract_price"]) + 1e-6)).all(), (
        "the volume-weighted price lies between the contract and spot prices")


def test_without_contracts_every_tonne_trades_spot():
    m = RareEarthModel("magnets_controls_2025", seed=1, weeks=10, **{"behaviour.contract_share": 0.0})
    m.run()
    df = m.results()
    assert not {"contract_volume", "contract_price", "average_price"} & set(df.variable)


# ============================================================================================ the route back
def _world_text() -> str:
    return (load_world.__globals__["DATA_DIR"] / WORLD).read_text()


def _run_world(tmp_path, text: str, weeks: int) -> RareEarthModel:
    path = tmp_path / "world_edit.toml"
    path.write_text(text)
    m = RareEarthModel(load_scenario("magnets_baseline").model_copy(update={"world": str(path)}), seed=1, weeks=weeks)
    return m.run()


def test_oxide_separated_outside_china_can_be_sold_into_china(baseline_run, tmp_path):
    """With exporters (``exports_to``) ex-China NdPr stays within the export cost of China's price both ways;
    without them the ex-China surplus has no buyer but its own region and falls to its sellers' floor."""
    m, df = baseline_run
    k = m.products.index("NdPr")
    cost = m.export_cost[k]

    def year2(frame, region):
        s = frame[(frame.variable == "price") & (frame.region == region) & (frame["product"] == "NdPr")]
        return s[s.step > 52].value.mean()

    cn, row = year2(df, "CN"), year2(df, "ROW")
    band = cost + 0.08 * cn  # the export cost, the traders' margins and their stock response (a few %)
    assert cn - band <= row <= cn + band, (cn, row, cost)
    tb = m.trader_book
    i = tb.ids.index("row_exporters")
    assert tb.exports_to[i] == "CN" and tb.sales_ema[i, k] > 0, "it sells NdPr into China"
    # the same world without the exporter
    text = _world_text()
    start = text.index('[[traders]]\n# the route back')
    end = text.index("working_weeks = 2.0\n", start) + len("working_weeks = 2.0\n")
    alone = _run_world(tmp_path, text[:start] + text[end:], weeks=208).results()

    def years3_4(frame, region):
        s = frame[(frame.variable == "price") & (frame.region == region) & (frame["product"] == "NdPr")]
        return s[s.step > 104].value.mean()

    # measured: ex-China 0.79 x China's in years 3-4 (0.93 with exporters); 0.68-0.70 before the new ex-China
    # magnet plants (Fort Worth, Narva, e-VAC, 10X) ramped up and bought some of it at home
    cn_alone = years3_4(alone, "CN")
    assert years3_4(alone, "ROW") < cn_alone - 1.5 * (cost + 0.08 * cn_alone), \
        "without the route back ex-China NdPr sits far below China's"


def test_exporters_stay_idle_while_china_is_cheaper():
    """Under licences ex-China Dy costs many times China's: nothing goes back (landed cost above China's price)."""
    m = RareEarthModel("magnets_controls_2025", seed=1, weeks=60)
    tb = m.trader_book
    i, k = tb.ids.index("row_exporters"), m.products.index("Dy")
    sold = 0.0
    for _ in range(60):
        m.step()
        if m.steps > 30:  # licences in force, ex-China Dy dear
            assert m.signals.price["ROW"][k] > m.signals.price["CN"][k] + m.export_cost[k]
            sold += tb.exported[i, k]
    assert sold == 0.0


@pytest.mark.parametrize("edit, where", [
    ('exports_to = "CN"\nworking_weeks = 2.0', 'exports_to = "XX"\nworking_weeks = 2.0'),
    ('exports_to = "CN"\nworking_weeks = 2.0', 'exports_to = "ROW"\nworking_weeks = 2.0'),
    ('exports_to = "CN"\nworking_weeks = 2.0', 'exports_to = "CN"\nimports = true\nworking_weeks = 2.0'),
])
def test_a_wrong_exporter_is_refused_naming_the_field(tmp_path, edit, where):
    path = tmp_path / "w.toml"
    path.write_text(_world_text().replace(edit, where))
    with pytest.raises(ConfigError) as err:
        load_world(str(path))
    assert re.search(r"traders\[\d+\]", str(err.value)) and ("exports_to" in str(err.value)), str(err.value)


# ========================================================================================== end-user classes
def test_military_end_users_are_refused_licences_and_turn_to_the_spot_market():
    """FACTS P7 (magnets_2025 from 1 Dec 2025): applications for military end users are refused. Only the
    civil users' part of a destination's request is licensed; military contract holders get nothing from
    licensed imports (``end_use_refused``) and buy at spot instead, where they pay more. The same scenario
    without the rule is the twin (same seed)."""
    import copy

    import pandas as pd

    sc = load_scenario("magnets_2025")
    timeline = copy.deepcopy(sc.timeline)
    for d in timeline:
        d.pop("refused_end_users", None)
    runs = {}
    for name, s in (("rule", sc), ("twin", sc.model_copy(update={"timeline": timeline}))):
        m = RareEarthModel(s, seed=1, weeks=80)
        m.run()
        df = m.results()
        runs[name] = (m, df[df["date"] >= pd.Timestamp("2026-01-05")])  # licences of the Dec rule in force
    m, rule = runs["rule"]
    _, twin = runs["twin"]

    def total(df, variable, region, product):
        return df[(df.variable == variable) & (df.region == region) & (df["product"] == product)].value.sum()

    # US SmCo buyers are all military (defence): nothing is licensed to them; the twin imports some
    assert total(rule, "exports", "US", "SmCo") == 0 < total(twin, "exports", "US", "SmCo")
    assert total(rule, "end_use_refused", "US", "SmCo") > 0
    assert "end_use_refused" not in set(twin.variable)
    # NdFeB: the civil part is still licensed, the military part is not
    assert 0 < total(rule, "exports", "US", "NdFeB") < total(twin, "exports", "US", "NdFeB")
    # refused end users buy at spot: ex-China SmCo costs more than in the twin
    row = [x[(x.variable == "price") & (x.region == "ROW") & (x["product"] == "SmCo")].value.mean() for x in (rule, twin)]
    assert row[0] > 1.2 * row[1], row
    # what is licensed is the civil share of the request
    ctl = ExportControl(start=sc.start, products=["Sm"], forms=["oxide", "magnet"], refused_end_users=["military"])
    civil = ctl._civil_share(m, "US")
    k = m.products.index("SmCo")
    military = m.need_of_state("US", end_users="military")[k]
    assert civil[k] == pytest.approx(1.0 - military / m.need_of_state("US")[k])
    assert civil[k] == pytest.approx(0.0, abs=1e-12), "every US SmCo user is military in this world"


def test_element_content_of_trade_counts_the_elements_inside_magnets():
    """``element_exports``: China's exports of each element by destination, oxide plus the content of the magnets
    shipped; a magnet licence (April 2025 list in every form) cuts the NdPr leaving China, though NdPr is not
    on the list."""
    import pandas as pd

    m = RareEarthModel("magnets_controls_2025", seed=1, weeks=40)
    m.run()
    df = m.results()
    bom = m.world.product("NdFeB").bill_of_materials
    ex = df[df.variable == "exports"].pivot_table(index=["step", "region"], columns="product", values="value")
    content = df[(df.variable == "element_exports")].pivot_table(index=["step", "region"], columns="product",
                                                                 values="value")
    expect = ex["NdPr"] + ex["NdFeB"] * bom["NdPr"]
    assert np.allclose(content["NdPr"], expect.reindex(content.index), rtol=1e-9, atol=1e-9)
    assert set(content.columns) == {p.name for p in m.world.products if p.stage == "oxide"}
    jp = content.xs("JP", level="region")["NdPr"]
    dates = df.drop_duplicates("step").set_index("step")["date"]
    before = jp[dates.reindex(jp.index) < pd.Timestamp("2025-04-04")].iloc[1:].mean()
    during = jp[dates.reindex(jp.index) >= pd.Timestamp("2025-06-01")].mean()
    assert during < 0.7 * before, (before, during)


def test_calm_ex_china_prices_stay_in_the_trade_band_because_traders_answer_the_spread():
    """Mechanism M2 in the magnet world's calm decade: in at least 95 % of weeks every ex-China price (eight
    oxides, two magnets) lies within the export cost + 10 % of China's (the validation target's metric),
    median of seeds 1-3. That rests on traders answering the spread they see (``arbitrage_response``, 10 in
    this world): with restocking alone, thin spot markets let ex-China quotes sit off China's for weeks at a
    time, and the share misses the target's 0.95 (0.92 since importers start from the sales they make; 0.81
    while they started from their state's whole use; 0.54 while Y and Gd, not yet disposable, slid to their
    old separation costs in China and ex-China followed late)."""
    from experiments.validate import parity

    def share(**kw):
        return float(np.median([parity(magnet_model(weeks=520, seed=s, **kw).run().results()) for s in (1, 2, 3)]))

    assert load_world(WORLD).behaviour.arbitrage_response == 10.0
    on, off = share(), share(**{"behaviour.arbitrage_response": 0.0})
    assert on >= 0.95, on
    assert off < 0.95, off


def test_chinas_quota_plans_for_the_demand_for_its_product_not_for_every_buyer():
    """China's NdPr quota band follows the demand for NdPr (``demand_index`` with the product, counted
    through the magnets' bill of materials), not the tonnage of every buyer: in the magnet world the users
    of La, Ce, Y and Gd are ~44 % of the buyers' tonnage, so doubling the OEMs' demand moves the
    tonnage-weighted index to ~1.56 only, and under the Adamas path China's NdPr quota sat at that index's
    ceiling while NdPr ran to ~5x 2024 (seeds 1-2; ~2x with this index)."""
    m = magnet_model(weeks=1)
    book = m.buyer_book
    k, nd = m.products.index("NdPr"), m.products.index("NdFeB")
    oem = book.base_content[:, nd] > 0
    assert oem.any() and (~oem).any()
    mult = np.where(oem, 2.0, 1.0)
    assert not (book.base_content[:, k] > 0).any()  # no buyer of NdPr oxide itself in this world: all via magnets
    assert book.demand_index(mult, k) == pytest.approx(2.0)
    assert book.demand_index(mult) < 1.6  # every buyer's tonnage: the other elements' users weigh it down
    assert book.demand_index(1.0, k) == 1.0
