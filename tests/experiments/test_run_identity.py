"""A run's identity is its content (issue 13 item 1): the run key covers the scenario's timeline, start and
name, the world file's content, the overrides, seed, weeks and the model code, so a sweep never serves a
run computed from other inputs as "already done", and superseded runs never mix with current ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.run import run_one
from experiments.sweep import RUNS, SUPERSEDED, describe, load_sweep, read_manifest, run_key, sweep
from model.params import DATA_DIR
from model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """name = "stock"
start = 2025-10-27
weeks = 4
seeds = [1]
world = "{world}"

[[timeline]]
type = "Stockpile"
start = 2025-10-28
actor = "JP"
target_days = {days}
rapid_response = true
budget_musd = 800.0
"""

SPEC = """name = "identity"
scenario = "stock.toml"
weeks = 4
seeds = [1, 2]
"""


def _write(folder: Path, days: float = 60.0, world: str = "world_2024.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stock.toml").write_text(SCENARIO.format(days=days, world=world))
    (folder / "sweep.toml").write_text(SPEC)
    return folder / "sweep.toml"


def _key(path: Path, seed: int = 1) -> str:
    return run_key(load_scenario(path), {}, seed, 4)


def test_an_edited_timeline_is_recomputed_not_served_from_the_old_run(tmp_path):
    spec = _write(tmp_path)
    out = tmp_path / "out"
    first = sweep(spec, out, workers=1, progress=False)
    assert (first.done, first.skipped) == (2, 0)
    old_keys = sorted(p.stem for p in (out / RUNS).glob("*.parquet"))
    before = load_sweep(out)

    _write(tmp_path, days=120.0)  # the stockpile target doubles: 60 -> 120 days
    assert "0 done, 0 failed, 2 to run (2 run file(s) from an earlier scenario" in describe(spec, out)
    second = sweep(spec, out, workers=1, progress=False)
    assert (second.done, second.skipped) == (2, 0), str(second)  # not "already done"
    assert "superseded" in str(second)
    after = load_sweep(out)
    new_keys = sorted(after["run_id"].unique())
    assert not set(new_keys) & set(old_keys)
    # the results are those of the edited scenario: the same as a fresh run of it, and not the old ones
    fresh = run_one(load_scenario(tmp_path / "stock.toml"), 1, 4, run_id=new_keys[0])
    order = ["step", "variable", "region", "product"]
    mine = after[after["run_id"] == new_keys[0]][fresh.columns].sort_values(order).reset_index(drop=True)
    fresh = fresh.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, fresh, check_exact=True, check_dtype=False)
    bought = {k: df[df["variable"] == "stockpile_bought"]["value"].sum() for k, df in
              (("before", before), ("after", after))}
    assert bought["after"] > bought["before"], bought
    # nothing mixes: runs/ holds only the new design; the old runs and their manifest are kept aside
    assert sorted(p.stem for p in (out / RUNS).glob("*.parquet")) == new_keys
    assert sorted(p.stem for p in (out / SUPERSEDED).glob("*.parquet")) == old_keys
    assert (out / SUPERSEDED / "manifest.json").is_file()
    assert pd.read_parquet(out / RUNS)["run_id"].nunique() == 2
    m = read_manifest(out)
    assert [r["key"] for r in m["runs"]] == sorted(new_keys, key=lambda k: k.split("_s")[1])
    assert m["scenarios"]["stock"]["timeline"][0]["target_days"] == 120.0
    # and a third sweep of the unchanged files resumes
    third = sweep(spec, out, workers=1, progress=False)
    assert (third.done, third.skipped) == (0, 2)

    _write(tmp_path, days=60.0)  # back to 60 days: those runs are computed again, nothing is overwritten
    fourth = sweep(spec, out, workers=1, progress=False)
    assert (fourth.done, fourth.skipped) == (2, 0)
    assert len(list((out / SUPERSEDED).glob("*.parquet"))) == 4
    assert sorted(p.stem for p in (out / RUNS).glob("*.parquet")) == old_keys


def test_a_policy_date_is_part_of_the_key(tmp_path):
    _write(tmp_path)
    k = _key(tmp_path / "stock.toml")
    p = tmp_path / "stock.toml"
    p.write_text(p.read_text().replace("start = 2025-10-28", "start = 2025-11-04"))
    assert _key(p) != k


def test_the_world_files_content_is_part_of_the_key(tmp_path):
    world = tmp_path / "my_world.toml"
    shutil.copy(DATA_DIR / "world_2024.toml", world)
    _write(tmp_path, world="my_world.toml")
    shipped = tmp_path / "shipped"
    _write(shipped)
    k = _key(tmp_path / "stock.toml")
    assert k == _key(shipped / "stock.toml")  # an identical copy of the world is the same world
    text = world.read_text()
    world.write_text("# a comment changes no number\n" + text)
    assert _key(tmp_path / "stock.toml") == k
    assert "export_cost_usd_per_kg = 5.0 " in text
    world.write_text(text.replace("export_cost_usd_per_kg = 5.0 ", "export_cost_usd_per_kg = 6.0 ", 1))
    assert _key(tmp_path / "stock.toml") != k


def test_scenario_identity_is_its_content_and_name_not_its_path(tmp_path):
    """Decision: the scenario's file path is not part of a run's identity (a copy elsewhere, with any file
    name, makes the same runs), but its ``name`` is: it labels every row of the output."""
    _write(tmp_path)
    k = _key(tmp_path / "stock.toml")
    other = tmp_path / "elsewhere" / "copy_of_stock.toml"
    other.parent.mkdir()
    shutil.copy(tmp_path / "stock.toml", other)
    assert _key(other) == k
    other.write_text((tmp_path / "stock.toml").read_text().replace(
        'name = "stock"', 'name = "stock"\ndescription = "words change no number"'))
    assert _key(other) == k  # the description does not change the output
    other.write_text((tmp_path / "stock.toml").read_text().replace('name = "stock"', 'name = "stock2"'))
    renamed = _key(other)
    assert renamed != k and renamed.startswith("stock2_s1_")


def test_a_changed_code_fingerprint_changes_every_key(tmp_path, monkeypatch):
    _write(tmp_path)
    sc = load_scenario(tmp_path / "stock.toml")
    base = load_scenario("baseline")
    cases = [(sc, {}, 1), (sc, {"behaviour.site_entry_rate": 0.02}, 2), (base, {}, 1)]
    before = [run_key(s, ov, seed, 4) for s, ov, seed in cases]
    monkeypatch.setattr("experiments.sweep.code_fingerprint", lambda: "0" * 16)
    after = [run_key(s, ov, seed, 4) for s, ov, seed in cases]
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert [k.rsplit("_", 1)[0] for k in after] == [k.rsplit("_", 1)[0] for k in before]  # readable prefix kept


def test_keys_are_the_same_in_another_process(tmp_path):
    _write(tmp_path)
    here = [_key(tmp_path / "stock.toml", 1), run_key("baseline", {"behaviour.site_entry_rate": 0.02}, 3, 4)]
    code = ("import json, sys; from experiments.sweep import run_key; from model.scenario import load_scenario; "
            "print(json.dumps([run_key(load_scenario(sys.argv[1]), {}, 1, 4), "
            "run_key('baseline', {'behaviour.site_entry_rate': 0.02}, 3, 4)]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "stock.toml")], capture_output=True,
                          text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_another_design_in_the_folder_is_still_refused(tmp_path):
    """Setting runs aside is only for runs of this design made from other content; runs of another spec
    (other seeds here) still make the sweep exit with the 'another design' error."""
    from model.params import ConfigError

    spec = _write(tmp_path)
    out = tmp_path / "out"
    sweep(spec, out, workers=1, progress=False)
    (tmp_path / "sweep.toml").write_text(SPEC.replace("seeds = [1, 2]", "seeds = [3]"))
    with pytest.raises(ConfigError, match="another design"):
        sweep(spec, out, workers=1, progress=False)
    assert not (out / SUPERSEDED).exists()
