"""A plant's unseparated stream (``MinerSpec.residue_of``) and the heavy-RE circuit it feeds.

Lynas Malaysia separates NdPr (and La, Ce) from Mt Weld's ore; until its heavy-RE circuit ran (May 2025,
FACTS E7, R2) the heavy fraction left as a mixed concentrate, which Chinese separators bought. The stream must
carry exactly the elements the plant left unseparated, be bought by Chinese plants while the circuit is
building, and feed the circuit (its offtake) once it runs, so that the first ex-China Dy appears in May 2025
without adding heavy elements the world did not have.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import DATA_DIR, ConfigError, load_world


@pytest.fixture(scope="module")
def run():
    m = RareEarthModel("baseline", seed=3, weeks=80)
    f, book = m.fleet, m.refiner_book
    site = f.residue_of.index("my_lynas")
    host, circuit = book.index["my_lynas"], book.index["my_lynas_hree"]
    weeks = []
    for _ in range(80):
        m.step()
        weeks.append({"date": m.date, "residue_in": f.residue_in[site], "sold": f.sold[site],
                      "used": book.used[host].copy(), "circuit_processed": book.processed[circuit],
                      "circuit_feed": book.ore_bought[circuit], "status": book.status[circuit],
                      "circuit_dy": book.produced[circuit, m.products.index("Dy")],
                      "to": np.asarray(m.ore.last_flow)[m.ore.pool_of[site]].copy()})
    return m, site, weeks


def test_the_stream_carries_exactly_what_its_plant_left_unseparated(run):
    m, site, weeks = run
    basket = m.world.ore(m.fleet.ore[site]).basket
    dy, tb = m.products.index("Dy"), m.products.index("Tb")
    host = m.refiner_book.index["my_lynas"]
    left = [k for k, p in enumerate(m.products) if p in basket and not m.refiner_book.separates[host, k]]
    assert {dy, tb} <= set(left)  # Dy and Tb (and in the magnet world Sm, Gd, Y) stay unseparated
    for w in weeks[:60]:
        # tonnes of ore x the basket's unseparated elements = what the plant processed of them and did not separate
        assert w["residue_in"] * sum(basket[m.products[k]] for k in left) == pytest.approx(w["used"][left].sum())
        assert w["residue_in"] * basket["Dy"] == pytest.approx(w["used"][dy], rel=0.02)  # Mt Weld feed: same mix
    assert min(w["residue_in"] for w in weeks[:60]) > 20  # ~31 t a week at 560 t of feed (5.5 %, R2)


def test_before_the_circuit_runs_the_stream_is_sold_and_the_circuit_makes_nothing(run):
    m, site, weeks = run
    before = [w for w in weeks if w["status"] != "operating"]
    assert len(before) > 60  # online 5 May 2025, week ~70
    assert all(w["circuit_processed"] == 0 for w in before)
    assert sum(w["sold"] for w in before) == pytest.approx(sum(w["residue_in"] for w in before), rel=0.05)


def test_once_the_circuit_runs_it_takes_the_stream_and_makes_dy(run):
    m, site, weeks = run
    on = [w for w in weeks if w["status"] == "operating"]
    assert on, "the circuit comes online on 5 May 2025"
    first = next(w for w in on if w["circuit_dy"] > 0)
    assert (first["date"] - on[0]["date"]).days <= 14  # its first Dy within two weeks of coming online
    assert weeks[-1]["circuit_feed"] > 0 and weeks[-1]["circuit_processed"] > 0


def test_a_residue_basket_holding_what_its_plant_separates_is_refused(tmp_path):
    text = (DATA_DIR / "world_2024.toml").read_text()
    text += ('\n[[miners]]\nid = "bad_residue"\nname = "x"\ncountry = "MY"\nnode = "kuantan"\n'
             'ore = "monazite_weld"\nresidue_of = "my_lynas"\ncapacity_t_per_week = 10.0\n'
             'unit_cost_usd_per_kg = 1.0\n')
    p = tmp_path / "world.toml"
    p.write_text(text.replace('files = ["projects_2024.toml"]', f'files = ["{DATA_DIR / "projects_2024.toml"}"]'))
    with pytest.raises(ConfigError, match=r"miners\[\d+\]\.ore: 'monazite_weld' holds NdPr"):
        load_world(p)


def test_chinese_plants_buy_the_stream_while_the_circuit_is_building(run):
    m, site, weeks = run
    book = m.refiner_book
    cn = np.array([c == "CN" for c in book.country])
    to = sum(w["to"] for w in weeks if w["status"] != "operating")
    assert to[cn].sum() > 0.9 * to.sum() > 0, "the heavy concentrate went to China (by Kuantan-Shanghai)"
    after = sum(w["to"] for w in weeks[-4:])
    # once it runs (ramping up from half utilisation) the circuit takes first; China gets what it leaves. Its
    # 30 t/week at utilisation ~0.62-0.68 (+0.02 a week from 0.5) plus a quarter of its feed gap is ~21-23 t
    # of the ~31 t stream in these four weeks
    assert after[book.index["my_lynas_hree"]] > 0.65 * after.sum() > 0
