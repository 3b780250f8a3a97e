"""``ree validate --world``: every target's scenario run on another world (an edited copy, or the magnet world),
so that an analyst who edits a world checks it against the same targets."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from experiments import validate as v
from experiments.cli import app
from model.params import DATA_DIR, ConfigError
from model.scenario import load_scenario

MAGNETS = "world_2024_magnets.toml"


def _has_magnets(df) -> float:
    return float("NdFeB" in set(df["product"]))


PROBE = v.Target("magnet stage present", "baseline", "test", 0.5, 1.0, _has_magnets)


def test_a_world_is_a_shipped_name_or_a_file_made_absolute(tmp_path, monkeypatch):
    assert v.resolve_world(MAGNETS) == MAGNETS
    copy = tmp_path / "mine.toml"
    copy.write_text((DATA_DIR / MAGNETS).read_text())
    monkeypatch.chdir(tmp_path)
    assert v.resolve_world("mine.toml") == str(copy.resolve())
    with pytest.raises(ConfigError, match="--world 'nope.toml': file not found"):
        v.resolve_world("nope.toml")


def test_every_scenario_runs_on_the_world_given():
    own = v.validate([1], workers=1, targets=[PROBE])
    magnets = v.validate([1], workers=1, targets=[PROBE], world=MAGNETS)
    oxide = v.validate([1], workers=1, targets=[PROBE], world="world_2024.toml")
    has = float(any(p.name == "NdFeB" for p in load_scenario("baseline").load_world().products))
    assert own["median"].iloc[0] == has and own["pass"].iloc[0] == bool(has), "baseline on its own world"
    assert magnets["median"].iloc[0] == 1.0 and magnets["pass"].iloc[0], "the same target on the magnet world"
    assert oxide["median"].iloc[0] == 0.0 and not oxide["pass"].iloc[0], "and on the oxide world"


def test_a_metric_that_finds_nothing_on_another_world_is_no_data_not_a_crash():
    def reads_holmium(df):  # a product neither shipped world models
        return float(v.series(df, "price", "CN", "Ho").iloc[0])

    target = v.Target("Ho price", "baseline", "test", 0.0, 1e9, reads_holmium)
    table = v.validate([1], workers=1, targets=[target], world="world_2024.toml")
    assert math.isnan(table["median"].iloc[0]) and not table["pass"].iloc[0]
    with pytest.raises(IndexError):  # on the scenarios' own worlds an error in a metric is not hidden
        v.validate([1], workers=1, targets=[target])


def test_the_command_refuses_a_missing_world_naming_the_option(tmp_path):
    res = CliRunner().invoke(app, ["validate", "--seeds", "1", "--world", "nope.toml", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "--world 'nope.toml': file not found" in res.output and "Traceback" not in res.output
