"""The project database (issue 12): ``model/data/projects_2024.toml`` and how ``load_world`` merges it.

A world's ``[projects]`` table names database files; the loader appends the entries whose status the world
takes (or that it names by id), keeps only the world's elements, brings the nodes, edges and ore types they
use, and refuses clashes naming both places. The shipped worlds take exactly the named plants and mines they
had before the database existed, plus Iluka Eneabba's own stockpile.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from model.params import DATA_DIR, PROJECT_KINDS, ConfigError, load_world, read_project_database

DB = DATA_DIR / "projects_2024.toml"
ALL = ["operating", "building", "planned"]
WORLD_TEXT = (DATA_DIR / "world_2024.toml").read_text()

# the named entries the shipped worlds had before the database (commit acf0757), and the one correction
TODAY_MINERS = {"cn_bayan_obo", "cn_sichuan", "cn_south_ionic", "mm_pangwa", "mm_momauk", "mm_kanpaiti",
                "us_mountain_pass", "au_mt_weld", "la_ionic", "vn_dong_pao", "cn_scrap", "oth_mines"}
STOCKPILE = "au_eneabba_stockpile"
RESIDUE = "my_lynas_seg_hre"  # Lynas Malaysia's heavy fraction, feed of its heavy-RE circuit (FACTS E7, R2)
TODAY_REFINERS = {"cn_baotou", "cn_leshan", "cn_ganzhou", "cn_longyan", "cn_recycling", "my_lynas",
                  "us_mp_separation", "oth_separation", "my_lynas_hree", "us_lynas_texas", "us_mp_hree",
                  "au_iluka_eneabba", "th_udon_thani", "la_vientiane"}
TODAY_MAGNET_MAKERS = {"cn_ndfeb", "cn_smco", "jp_ndfeb", "vn_ndfeb", "eu_ndfeb", "eu_neo_narva",
                       "us_mp_fort_worth", "us_mp_10x", "oth_ndfeb", "us_smco", "eu_smco", "jp_smco"}


def _entries() -> list[tuple[str, dict]]:
    db = read_project_database(DB)
    return [(kind, item) for kind in PROJECT_KINDS for _, item in db[kind]]


def _world(tmp_path: Path, text: str, db: str | None = None, name: str = "world.toml") -> Path:
    """A copy of the default world in ``tmp_path`` (its [projects] table also names ``db.toml`` if ``db`` is
    given); the shipped database is found in model/data/, as a world copied elsewhere finds it."""
    if db is not None:
        (tmp_path / "db.toml").write_text(db)
        text = text.replace('files = ["projects_2024.toml"]', 'files = ["projects_2024.toml", "db.toml"]', 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def _ex_china_capacity(world) -> float:
    return sum(r.capacity_t_per_week for r in world.refiners if r.country != "CN")


# ------------------------------------------------------------------------------------------- the data
def test_the_database_has_forty_named_projects_each_with_a_source():
    entries = _entries()
    assert len(entries) >= 40, len(entries)
    assert all(str(item.get("source", "")).strip() for _, item in entries)
    statuses = {item.get("status", "operating") for _, item in entries}
    assert statuses == set(ALL), statuses
    countries = {item["country"] for _, item in entries}
    assert "CN" in countries and len(countries - {"CN"}) >= 6, countries
    # the feeds the issue names: Eneabba's stockpile and Browns Range under offtake, Lynas's captive mine
    by_id = {item["id"]: item for _, item in entries}
    assert by_id[STOCKPILE]["captive_only"] and by_id[STOCKPILE]["offtake"] == "au_iluka_eneabba"
    assert by_id[STOCKPILE]["reserve_t"] > 0 and by_id[STOCKPILE]["node"] == by_id["au_iluka_eneabba"]["node"]
    assert by_id["au_browns_range"]["offtake"] == "au_iluka_eneabba" and by_id["au_browns_range"]["ore"] == "xenotime"
    assert by_id["au_mt_weld"]["offtake"] == "my_lynas"


def test_shipped_worlds_take_exactly_todays_named_entries_plus_the_eneabba_stockpile():
    for name in ("world_2024.toml", "world_2024_magnets.toml"):
        world = load_world(name)
        assert {m.id for m in world.miners} == TODAY_MINERS | {STOCKPILE, RESIDUE}, name
        residue = next(m for m in world.miners if m.id == RESIDUE)
        assert residue.residue_of == "my_lynas" and residue.offtake == "my_lynas_hree"
        assert {r.id for r in world.refiners} == TODAY_REFINERS, name
        stockpile = next(m for m in world.miners if m.id == STOCKPILE)
        assert stockpile.status == "operating" and stockpile.captive_only
        # no building or planned mine until the model reads a mine's status (issue 12)
        assert {m.status for m in world.miners} == {"operating"}, name
    assert {m.id for m in load_world("world_2024_magnets.toml").magnet_makers} == TODAY_MAGNET_MAKERS
    assert load_world("world_2024.toml").magnet_makers == []  # no magnet product: no magnet plant taken


# ------------------------------------------------------------------------------------------- the loader
def test_statuses_and_ids_choose_what_a_world_takes():
    operating = load_world(overrides={"projects.ids": []})
    assert {r.status for r in operating.refiners} == {"operating"}
    one = load_world(overrides={"projects.ids": ["us_lynas_texas"]})
    assert {r.id for r in one.refiners} - {r.id for r in operating.refiners} == {"us_lynas_texas"}
    everything = load_world(overrides={"projects.statuses": ALL})
    ids = {r.id for r in everything.refiners}
    assert {"au_arafura_nolans", "au_asm_dubbo", "my_lynas_hree_5000", "us_white_mesa"} <= ids
    assert {"au_browns_range", "au_nolans", "gl_tanbreez"} <= {m.id for m in everything.miners}
    # the nodes and ore types the new entries use come with them; the worlds' aggregates keep theirs
    assert {"nolans", "browns_range"} <= {n.id for n in everything.nodes}
    assert {"xenotime", "heavy_hard_rock"} <= {o.name for o in everything.ore_types}
    assert "ee_silmet" not in ids  # counted in oth_separation, which the default world has


def test_a_scenario_switching_announced_projects_on_adds_capacity_outside_china():
    base = load_world()
    every = load_world(overrides={"projects.statuses": ALL})
    assert _ex_china_capacity(every) > _ex_china_capacity(base) + 1000.0
    assert sum(r.capacity_t_per_week for r in every.refiners if r.country == "CN") == pytest.approx(
        sum(r.capacity_t_per_week for r in base.refiners if r.country == "CN"))


def test_a_mine_feeding_a_plant_the_world_leaves_out_is_left_out_too():
    world = load_world(overrides={"projects.statuses": ["operating", "planned"], "projects.ids": []})
    ids = {m.id for m in world.miners}
    assert "au_iluka_eneabba" not in {r.id for r in world.refiners}
    assert STOCKPILE not in ids and "au_browns_range" not in ids
    assert "au_nolans" in ids  # its own plant (planned) is taken


def test_elements_are_kept_per_world():
    raw = {item["id"]: item for _, item in _entries()}
    assert "Ho" in raw["cn_ganzhou"]["separates"]
    oxides = load_world("world_2024.toml")
    magnets = load_world("world_2024_magnets.toml")
    ganzhou = {w: next(r for r in w_.refiners if r.id == "cn_ganzhou").separates
               for w, w_ in (("oxides", oxides), ("magnets", magnets))}
    assert ganzhou["oxides"] == ["NdPr", "Dy", "Tb"]
    assert ganzhou["magnets"] == ["NdPr", "Dy", "Tb", "Sm", "Gd", "Y", "La", "Ce"]
    assert next(r for r in oxides.refiners if r.id == "my_lynas").separates == ["NdPr"]
    assert next(r for r in magnets.refiners if r.id == "my_lynas").separates == ["NdPr", "La", "Ce"]
    assert set(oxides.ore("eneabba_concentrate").basket) == {"NdPr", "Dy", "Tb"}
    assert len(magnets.ore("eneabba_concentrate").basket) == 8


def test_an_override_reaches_a_database_entry_by_id():
    world = load_world(overrides={"refiners.au_iluka_eneabba.capacity_t_per_week": 500.0})
    assert next(r for r in world.refiners if r.id == "au_iluka_eneabba").capacity_t_per_week == 500.0
    with pytest.raises(ConfigError, match=r"s\.toml: \[overrides\] refiners\.au_iluka_eneabba\.capacity_t_per_week = -1"):
        load_world(overrides={"refiners.au_iluka_eneabba.capacity_t_per_week": -1}, overrides_source="s.toml")


# ------------------------------------------------------------------------------------------- refusals
def test_an_id_in_the_world_and_the_database_is_refused_naming_both(tmp_path):
    text = WORLD_TEXT + ('\n[[refiners]]\nid = "my_lynas"\nname = "x"\ncountry = "MY"\nnode = "kuantan"\n'
                         'capacity_t_per_week = 1.0\nprocessing_cost_usd_per_kg = 1.0\nseparates = ["NdPr"]\n')
    with pytest.raises(ConfigError) as err:
        load_world(_world(tmp_path, text))
    msg = str(err.value)
    assert "'my_lynas'" in msg and "world.toml (refiners[" in msg and "projects_2024.toml (refiners[" in msg, msg


def test_an_unknown_status_is_refused():
    with pytest.raises(ConfigError, match=r"s\.toml: \[overrides\] projects\.statuses = .*'planed'|planed"):
        load_world(overrides={"projects.statuses": ["operating", "planed"]}, overrides_source="s.toml")


def test_an_unknown_id_is_refused():
    with pytest.raises(ConfigError, match=r"projects\.ids: 'nowhere' is in no project database"):
        load_world(overrides={"projects.ids": ["nowhere"]})


def test_a_database_entry_without_a_source_or_with_a_bad_number_is_refused(tmp_path):
    entry = ('[[refiners]]\nid = "x_plant"\nname = "X"\ncountry = "AU"\nnode = "eneabba"\n'
             'capacity_t_per_week = 10.0\nprocessing_cost_usd_per_kg = 5.0\nseparates = ["NdPr"]\n')
    with pytest.raises(ConfigError, match=r"db\.toml: refiners\[0\]\.source: 'x_plant' has no source"):
        load_world(_world(tmp_path, WORLD_TEXT, db=entry))
    bad = entry.replace("10.0", "-5.0") + 'source = "assumption"\n'
    with pytest.raises(ConfigError, match=r"db\.toml: refiners\[0\]\.capacity_t_per_week: "):
        load_world(_world(tmp_path, WORLD_TEXT, db=bad))
    planed = entry + 'source = "assumption"\nstatus = "planed"\n'
    with pytest.raises(ConfigError, match=r"db\.toml: refiners\[0\]\.status: "):
        load_world(_world(tmp_path, WORLD_TEXT, db=planed))


def test_a_reference_a_world_lacks_names_the_database_entry(tmp_path):
    entry = ('[[refiners]]\nid = "x_plant"\nname = "X"\ncountry = "AU"\nnode = "atlantis"\nsource = "assumption"\n'
             'capacity_t_per_week = 10.0\nprocessing_cost_usd_per_kg = 5.0\nseparates = ["NdPr"]\n')
    with pytest.raises(ConfigError, match=r"db\.toml: refiners\[0\]\.node: unknown 'atlantis'"):
        load_world(_world(tmp_path, WORLD_TEXT, db=entry))


def test_a_node_that_differs_from_the_worlds_is_refused(tmp_path):
    node = '[[nodes]]\nid = "eneabba"\nname = "Eneabba"\nkind = "refinery"\ncountry = "AU"\nlat = 0.0\nlon = 0.0\n'
    with pytest.raises(ConfigError, match=r"db\.toml: nodes\[0\]: 'eneabba' is also in world\.toml .* differs"):
        load_world(_world(tmp_path, WORLD_TEXT.replace('"projects_2024.toml"', '"db.toml"', 1), db=node))
    # two databases that disagree about a node are refused naming both
    with pytest.raises(ConfigError, match=r"'eneabba' is in projects_2024\.toml \(nodes\[\d+\]\) and in db\.toml"):
        load_world(_world(tmp_path, WORLD_TEXT, db=node))


def test_ree_check_reports_a_bad_database_without_a_traceback(tmp_path):
    bad = ('[[refiners]]\nid = "x_plant"\nname = "X"\ncountry = "AU"\nnode = "eneabba"\nsource = "assumption"\n'
           'capacity_t_per_week = "lots"\nprocessing_cost_usd_per_kg = 5.0\nseparates = ["NdPr"]\n')
    result = CliRunner().invoke(app, ["check", str(_world(tmp_path, WORLD_TEXT, db=bad))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "db.toml: refiners[0].capacity_t_per_week" in result.output


def test_a_missing_database_file_is_reported_against_the_world(tmp_path):
    text = WORLD_TEXT.replace('files = ["projects_2024.toml"]', 'files = ["nowhere.toml"]', 1)
    with pytest.raises(ConfigError, match=r"world\.toml: projects\.files: 'nowhere\.toml': .*file not found"):
        load_world(_world(tmp_path, text))
