"""Bad input (issue 14): every bad world, scenario or spec file gets exit code 2 and one message naming the
file, the field as the user wrote it, the value and what is allowed; never a traceback, a silent
acceptance, or a read that does not end.

Three classes, one section each: the file reader (what a file is), numbers that validate and then break a
run (finite, bounded, never true/false), and entries that would validate and silently do nothing (a
route that does not exist, an election ending nothing, ...). Most cases call ``ree check`` in-process
through Typer's runner; the message is what the user reads on stderr.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from model.params import DATA_DIR, MAX_FILE_BYTES, ConfigError, _read_toml, load_world
from model.policies import FloodSeason
from model.scenario import list_scenarios, load_scenario

WORLD_TEXT = (DATA_DIR / "world_2024.toml").read_text()
HEAD = 'name = "bad"\nworld = "world_2024.toml"\nstart = 2024-01-01\nweeks = 52\nseeds = [1]\n'


def _check(path: Path | str, *more: str):
    """``ree check PATH``: (exit code, stderr), asserting no traceback reached the user."""
    result = CliRunner().invoke(app, ["check", str(path), *more])
    assert "Traceback" not in result.output, result.output
    if result.exit_code not in (0, 2):  # anything else is a crash: show it
        raise AssertionError(f"exit {result.exit_code}: {result.output}\n{result.exception!r}")
    return result.exit_code, result.stderr


def _refused(path: Path | str, *needles: str) -> str:
    code, err = _check(path)
    assert code == 2, f"{path} was accepted"
    assert err.startswith("error: "), err
    bare = re.sub(r"(?<![\w.])/[^\s:'\"]+", "<path>", err)  # so that a word of the test's folder name matches nothing
    for needle in needles:
        assert needle in (err if needle.startswith("/") else bare), f"{needle!r} not in the message:\n{err}"
    return err


def _scenario(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ============================================================================================== the reader
def _write_bytes(tmp_path: Path, data: bytes, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case, data, needles", [
    ("binary", bytes(range(256)) * 4, ["not UTF-8 text", "byte 128"]),
    ("latin-1", 'name = "Sé"\n'.encode("latin-1"), ["not UTF-8 text", "byte 9", "UTF-8"]),
    ("utf-16", HEAD.encode("utf-16"), ["not UTF-8 text", "UTF-16", "byte 0"]),
    ("deep nesting", b"name = " + b"[" * 200_000 + b"]" * 200_000 + b"\n", ["not valid TOML", "nested too deeply"]),
    ("NUL byte", b'name = "a\x00b"\n', ["not valid TOML"]),
    ("5000-digit integer", b"name = 'b'\nweeks = " + b"9" * 5000 + b"\n", ["not valid TOML", "5000 digits"]),
])
def test_a_file_that_is_not_toml_text_is_refused_naming_it(tmp_path, case, data, needles):
    path = _write_bytes(tmp_path, data)
    _refused(path, str(path), *needles)


def test_a_utf8_file_with_a_byte_order_mark_is_read():
    # Windows editors write one; it is still UTF-8 text
    text = "\ufeff" + HEAD
    raw = _read_toml_text(text)
    assert raw["name"] == "bad"


def _read_toml_text(text: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.toml"
        path.write_bytes(text.encode("utf-8"))
        return _read_toml(path)


def test_a_folder_is_refused_as_a_scenario_and_as_a_world(tmp_path):
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    _refused(folder, str(folder), "is a folder")
    scenario = _scenario(tmp_path, HEAD.replace('world = "world_2024.toml"', f'world = "{tmp_path}"'))
    _refused(scenario, str(tmp_path), "is a folder")


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo"])
def test_a_device_or_pipe_as_world_is_refused_without_reading_it(tmp_path, special):
    """/dev/zero would be read until memory runs out, a FIFO would wait for a writer forever."""
    if special == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this system")
        special = str(tmp_path / "pipe.toml")
        os.mkfifo(special)
    elif not Path(special).exists():
        pytest.skip(f"no {special} on this system")
    scenario = _scenario(tmp_path, HEAD.replace('world = "world_2024.toml"', f'world = "{special}"'))
    _refused(scenario, special, "not a regular file", "<path>: world = '")  # where the scenario names it
    if special.endswith(".toml"):
        _refused(special, special, "not a regular file")


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.toml"
    with open(path, "wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_FILE_BYTES + 1)
    _refused(path, str(path), "too large", "10 MB")


def test_a_world_path_with_a_nul_character_is_not_found(tmp_path):
    scenario = _scenario(tmp_path, HEAD.replace('world = "world_2024.toml"', 'world = "a\\u0000b.toml"'))
    _refused(scenario, str(scenario), "world", "not found")


def test_empty_paths_are_refused(tmp_path):
    _refused("", "scenario '': empty")
    for blank in ('""', '"  "'):
        scenario = _scenario(tmp_path, HEAD.replace('world = "world_2024.toml"', f"world = {blank}"))
        _refused(scenario, str(scenario), f"world: empty (got {blank.replace(chr(34), chr(39))})")
    with pytest.raises(ConfigError, match="empty"):
        load_world("")


def test_the_spec_readers_use_the_same_reader(tmp_path):
    """Sweep and sensitivity specs are read by model.params._read_toml: a binary spec exits 2 too."""
    spec = _write_bytes(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(200), "spec.toml")
    for args in (["sweep", str(spec), "--dry-run"], ["sensitivity", str(spec), "--no-progress"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert "Traceback" not in result.output
        assert str(spec) in result.stderr and "not UTF-8 text" in result.stderr, result.stderr


# ============================================================================================= the numbers
# name -> (a line in the scenario, the key as the message must show it, the value as it must show it, what is allowed)
OVERRIDE_CASES = {
    "inf behaviour": ('"behaviour.seller_stock_elasticity" = inf', "behaviour.seller_stock_elasticity", "inf",
                      "finite"),
    "nan behaviour": ('"behaviour.full_cost_markup" = nan', "behaviour.full_cost_markup", "nan", "finite"),
    "huge elasticity": ('"behaviour.buyer_stock_elasticity" = 1e308', "behaviour.buyer_stock_elasticity", "1e+308",
                        "less than or equal to 100"),
    "inf price": ('"products.Dy.price_2024_usd_per_kg" = inf', "products.Dy.price_2024_usd_per_kg", "inf", "finite"),
    "huge price": ('"products.Dy.price_2024_usd_per_kg" = 1e308', "products.Dy.price_2024_usd_per_kg", "1e+308",
                   "less than or equal to 1000000"),
    "negative growth": ('"behaviour.demand_growth_per_year" = -5', "behaviour.demand_growth_per_year", "-5",
                        "greater than or equal to -0.5"),
    "huge capacity": ('"refiners.cn_baotou.capacity_t_per_week" = 1e300', "refiners.cn_baotou.capacity_t_per_week",
                      "1e+300", "less than or equal to 10000000"),
    "boolean count": ('"miners.mm_pangwa.count" = true', "miners.mm_pangwa.count", "true", "not true/false"),
    "boolean price": ('"products.NdPr.price_2024_usd_per_kg" = false', "products.NdPr.price_2024_usd_per_kg", "false",
                      "not true/false"),
    "huge count": ('"miners.mm_pangwa.count" = 1000000000', "miners.mm_pangwa.count", "1000000000",
                   "less than or equal to 100000"),
    "yard under a week": ('"behaviour.ore_stock_max_weeks" = 0.5', "behaviour.ore_stock_max_weeks", "0.5",
                          "greater than or equal to 1"),
    "negative count": ('"miners.mm_pangwa.count" = -3', "miners.mm_pangwa.count", "-3", "greater than or equal to 1"),
    "unknown entry": ('"refiners.nowhere.capacity_t_per_week" = 5.0', "refiners.nowhere.capacity_t_per_week", "5.0",
                      "cn_baotou"),
    "unknown rate": ('"behaviour.speed" = 1.0', "behaviour.speed", "1.0", "unknown key"),
    "bad cross-reference": ('"miners.mm_pangwa.offtake" = "nowhere"', "miners.mm_pangwa.offtake", "'nowhere'",
                            "allowed"),
}


@pytest.mark.parametrize("case", list(OVERRIDE_CASES))
def test_an_override_is_reported_against_the_scenario_with_the_key_as_written(tmp_path, case):
    line, key, value, allowed = OVERRIDE_CASES[case]
    path = _scenario(tmp_path, HEAD + "[overrides]\n" + line + "\n")
    err = _refused(path, f"{path}: [overrides] {key} = {value}: ", allowed)
    assert "world_2024.toml" not in err, f"reported against the shipped world, not the scenario:\n{err}"
    assert not re.search(r"\.\d+\.", err), f"a list index instead of the key as written:\n{err}"


@pytest.mark.parametrize("old, new, field, value", [
    ("price_2024_usd_per_kg = 255.0", "price_2024_usd_per_kg = inf", "price_2024_usd_per_kg", "inf"),
    ("capacity_t_per_week = 700.0", "capacity_t_per_week = 1e300", "capacity_t_per_week", "1e+300"),
    ("capacity_t_per_week = 700.0", "capacity_t_per_week = nan", "capacity_t_per_week", "nan"),
    ("as_of = 2024-01-01", "as_of = 9999-12-31", "as_of", "9999-12-31"),
])
def test_a_world_number_that_would_break_the_run_is_refused(tmp_path, old, new, field, value):
    assert old in WORLD_TEXT, old
    world = tmp_path / "world.toml"
    world.write_text(WORLD_TEXT.replace(old, new, 1))
    err = _refused(world, str(world), field, f"(got {value})")
    scenario = _scenario(tmp_path, HEAD.replace('world = "world_2024.toml"', 'world = "world.toml"'))
    assert _refused(scenario, field) == err  # the same message whether the world is checked alone or not


@pytest.mark.parametrize("old, new, field, value, allowed", [
    ("weeks = 52", "weeks = true", "weeks", "true", "not true/false"),
    ("weeks = 52", "weeks = 1e9", "weeks", "1000000000.0", "less than or equal to 5200"),
    ("weeks = 52", "weeks = 100000", "weeks", "100000", "less than or equal to 5200"),
    ("seeds = [1]", "seeds = [18446744073709551616]", "seeds.0", "18446744073709551616", "9223372036854775807"),
    ("seeds = [1]", "seeds = [true]", "seeds.0", "true", "not true/false"),
    ("seeds = [1]", "seeds = [-1]", "seeds.0", "-1", "greater than or equal to 0"),
    ("start = 2024-01-01", "start = 9999-12-01", "start", "9999-12-01", "2200-12-31"),
])
def test_a_scenario_number_that_would_overflow_is_refused(tmp_path, old, new, field, value, allowed):
    path = _scenario(tmp_path, HEAD.replace(old, new))
    _refused(path, str(path), f"{field}: ", f"(got {value})", allowed)


@pytest.mark.parametrize("body, field, value", [
    ('type = "ExportControl"\nstart = 2024-03-01\nmode = "quota"\nquota_t_per_week = inf', "quota_t_per_week", "inf"),
    ('type = "ExportControl"\nstart = 2024-03-01\ndelay_weeks = true', "delay_weeks", "true"),
    ('type = "Stockpile"\nstart = 2024-03-01\ntarget_days = nan', "target_days", "nan"),
    ('type = "FloodSeason"\nstart = 2024-03-01\nfrom_month = true', "from_month", "true"),
])
def test_a_policy_number_that_would_break_the_run_is_refused(tmp_path, body, field, value):
    path = _scenario(tmp_path, HEAD + "\n[[timeline]]\n" + body + "\n")
    _refused(path, str(path), "timeline[0]", field, f"(got {value})")


def test_the_model_refuses_a_seed_beyond_int64_and_a_weeks_beyond_the_bound():
    from model.model import RareEarthModel

    with pytest.raises(ConfigError, match="seed"):
        RareEarthModel("baseline", seed=2**64)
    with pytest.raises(ConfigError, match="weeks"):
        RareEarthModel("baseline", seed=1, weeks=10**9)


def test_the_shipped_world_and_every_shipped_scenario_stay_within_the_bounds():
    assert _check(DATA_DIR / "world_2024.toml")[0] == 0
    for name in list_scenarios():
        assert _check(name)[0] == 0, name


# ============================================================================= entries that would do nothing
def _timeline(tmp_path: Path, *bodies: str) -> Path:
    text = HEAD + "".join(f"\n[[timeline]]\n{b}\n" for b in bodies)
    return _scenario(tmp_path, text)


def test_ree_check_accepts_a_world_file_and_reports_its_problems(tmp_path):
    code, _ = _check(DATA_DIR / "world_2024.toml")
    result = CliRunner().invoke(app, ["check", str(DATA_DIR / "world_2024.toml")])
    assert code == 0 and result.stdout.startswith("ok: world world_2024"), result.output
    bad = tmp_path / "w.toml"
    bad.write_text(WORLD_TEXT.replace('id = "cn_recycling"', 'id = "cn_recycling"\ncolour = "red"', 1))
    _refused(bad, str(bad), "colour", "unknown key")


def test_a_relative_world_is_found_next_to_the_scenario(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "my_world.toml").write_text(WORLD_TEXT.replace("price_2024_usd_per_kg = 255.0",
                                                             "price_2024_usd_per_kg = 300.0", 1))
    path = _scenario(folder, HEAD.replace("world_2024.toml", "my_world.toml"))
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    assert _check(path)[0] == 0
    assert load_scenario(path).load_world().product("Dy").price_2024_usd_per_kg == 300.0
    missing = _scenario(folder, HEAD.replace("world_2024.toml", "nowhere.toml"), "missing.toml")
    _refused(missing, str(missing), "world: 'nowhere.toml'", "not found", str(folder))
    # a shipped world by name still works from anywhere (how the shipped scenarios name theirs)
    assert _check(_scenario(folder, HEAD, "shipped.toml"))[0] == 0


@pytest.mark.parametrize("body, needles", [
    ('type = "RouteChange"\nstart = 2024-03-01\nedges = [["pangwa", "tokyo"]]',
     ["timeline[0] (RouteChange).edges[0]", "no route edge from 'pangwa' to 'tokyo'", "border_pianma"]),
    ('type = "RouteChange"\nstart = 2024-03-01\nedges = [["pangwa", "atlantis"]]',
     ["timeline[0] (RouteChange).edges[0]", "atlantis"]),
    ('type = "RouteChange"\nstart = 2024-03-01\nbetween = ["JP", "EU"]',
     ["timeline[0] (RouteChange).between", "no route edge connects JP and EU"]),
    ('type = "FloodSeason"\nstart = 2024-03-01\nareas = ["yunnan"]',
     ["timeline[0] (FloodSeason).areas", "'yunnan'", "pangwa"]),
    ('type = "Election"\nstart = 2024-06-01\nends = ["Sanction"]',
     ["timeline[0] (Election).ends[0]", "'Sanction'", "end nothing"]),
    ('type = "Election"\nstart = 2024-06-01\nbegins = [{ type = "ImportBan", start = 2026-01-01 }]',
     ["timeline[0] (Election).begins[0].start", "2026-01-01", "end of the run"]),
])
def test_an_entry_that_would_silently_do_nothing_is_refused(tmp_path, body, needles):
    path = _timeline(tmp_path, body)
    _refused(path, str(path), *needles)


def test_an_election_may_end_a_policy_that_begins_before_it(tmp_path):
    ok = _timeline(tmp_path, 'type = "Sanction"\nstart = 2024-03-01\nnote = "seed F24"',
                   'type = "Election"\nstart = 2024-06-01\nends = ["seed F24", "Sanction"]')
    assert _check(ok)[0] == 0
    late = _timeline(tmp_path, 'type = "Sanction"\nstart = 2024-09-01\nnote = "seed F24"',
                     'type = "Election"\nstart = 2024-06-01\nends = ["seed F24"]')
    _refused(late, "timeline[1] (Election).ends[0]", "'seed F24'")


@pytest.mark.parametrize("month, floods", [(12, True), (1, True), (2, True), (3, False), (7, False), (10, False)])
def test_a_flood_season_across_the_new_year_floods_in_its_months_only(month, floods):
    season = FloodSeason(start=dt.date(2024, 1, 1), from_month=11, to_month=2, share=1.0)
    flooded = []
    model = SimpleNamespace(date=dt.date(2025, month, 15), sites_in=lambda areas: np.arange(5),
                            streams={"events": np.random.default_rng(0)}, flood_sites=flooded.append)
    season.apply(model)
    assert bool(flooded) == floods
    if floods:
        assert flooded[0].size == 5


def test_a_run_shorter_than_its_scenario_warns_which_entries_will_not_happen(caplog):
    from model.model import RareEarthModel

    with caplog.at_level(logging.WARNING, logger="model.model"):
        RareEarthModel("myanmar_2025", seed=1, weeks=2)
    text = caplog.text
    assert "will not happen" in text and "timeline[0] (SiteSeizure) on 2024-10-19" in text, text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="model.model"):
        RareEarthModel("baseline", seed=1, weeks=2)
    assert "will not happen" not in caplog.text


def test_the_page_loads_only_shipped_scenarios():
    from ui.session import DEFAULT_SCENARIO, parse_scenario_name, parse_seed

    assert parse_scenario_name("myanmar_2025") == ("myanmar_2025", "")
    for bad in ("/etc/passwd", "../model/data/world_2024.toml", "", None, "baseline.toml"):
        name, notice = parse_scenario_name(bad)
        assert name == DEFAULT_SCENARIO and "not a shipped scenario" in notice, (bad, notice)
    seed, notice = parse_seed(str(2**64))
    assert seed != 2**64 and "whole number" in notice
