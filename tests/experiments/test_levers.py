"""Policy levers (issue 13 item 2): a field of a timeline entry, ``policy.<Type>[<actor>(#n)].<field>``, is a
sweep parameter and a results column; bad keys name the key and the fix; two levels give different runs
and different run keys; ``ree check`` warns when two entries of one type and actor overlap, and the rule
it states is what the model does."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.levers import apply_levers, entries, overlaps, parse_lever, without
from experiments.run import run_one
from experiments.sweep import load_sweep, run_key, sweep
from model.model import RareEarthModel
from model.params import ConfigError
from model.scenario import load_scenario

WEEKS = 8
SCENARIO = """name = "levers"
start = 2025-01-06
weeks = 60
seeds = [1, 2]

[[timeline]]
type = "Stockpile"
actor = "US"
start = 2025-01-06
target_days = 30.0
budget_musd = 1000.0

[[timeline]]
type = "Stockpile"
actor = "US"
start = 2025-06-02
end = 2025-12-01
target_days = 90.0

[[timeline]]
type = "ExportControl"
actor = "CN"
start = 2025-03-03
approval_rate = 0.39
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    p = tmp_path / "levers.toml"
    p.write_text(SCENARIO)
    return p


@pytest.fixture
def sc(scenario_file):
    return load_scenario(scenario_file)


def test_good_keys_address_the_entry_they_name(sc):
    assert parse_lever("policy.Stockpile[US#2].target_days", sc)[1] == 1
    assert parse_lever("policy.Stockpile[US#1].budget_musd", sc)[1] == 0
    lever, i = parse_lever("policy.ExportControl[CN].approval_rate", sc)
    assert (lever.kind, lever.actor, lever.index, lever.field, i) == ("ExportControl", "CN", None, "approval_rate", 2)
    assert [name for name, _ in entries(sc)] == ["Stockpile[US#1]", "Stockpile[US#2]", "ExportControl[CN]"]
    levered, world = apply_levers(sc, {"policy.Stockpile[US#2].target_days": 120, "behaviour.site_entry_rate": 0.05})
    assert world == {"behaviour.site_entry_rate": 0.05}
    assert levered.timeline[1]["target_days"] == 120 and sc.timeline[1]["target_days"] == 90.0  # a copy
    assert levered.build_timeline()[1].target_days == 120
    dated, _ = apply_levers(sc, {"policy.Stockpile[US#2].start": "2025-07-07"})
    assert dated.timeline[1]["start"] == dt.date(2025, 7, 7)
    off, _ = apply_levers(sc, {"policy.ExportControl[CN].enabled": False})
    assert [d["type"] for d in off.timeline] == ["Stockpile", "Stockpile"]
    assert [d["type"] for d in without(sc, "ExportControl[CN]").timeline] == ["Stockpile", "Stockpile"]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("policy:Stockpile:US:target_days", 60, ["colon form", "policy.Stockpile[US].target_days",
                                             "policy.ExportControl[CN].{"]),
    ("policy.Stockpile[US].target_days", 60, ["2 Stockpile entries", "policy.Stockpile[US#1].target_days",
                                              "policy.Stockpile[US#2].target_days"]),
    ("policy.Stockpile[US#3].target_days", 60, ["#3 is out of range", "#1 to #2"]),
    ("policy.Stockpile[JP].target_days", 60, ["no Stockpile entry with actor 'JP'", "Levers of",
                                              "policy.Stockpile[US#1].{"]),
    ("policy.Stockpile[US#1].target_dayz", 60, ["no field 'target_dayz'", "target_days", "enabled"]),
    ("policy.Stockpyle[US].target_days", 60, ["unknown policy type 'Stockpyle'", "Stockpile"]),
    ("policy.Stockpile[US#1].actor", "JP", ["cannot be varied", "enabled = false"]),
    ("policy.Stockpile.US.target_days", 60, ["not a policy lever", "policy.<Type>[<actor>].<field>"]),
    ("policy.Stockpile[US#1].target_days", -5, ["policy.Stockpile[US#1].target_days = -5",
                                                "greater than or equal to 0"]),
    ("policy.Stockpile[US#1].enabled", "maybe", ["policy.Stockpile[US#1].enabled", "true or false"]),
])
def test_bad_keys_name_the_key_and_the_fix(sc, key, value, says):
    with pytest.raises(ConfigError) as exc:
        apply_levers(sc, {key: value})
    for text in [key.split("]")[0] if "[" in key else key, *says]:
        assert text in str(exc.value), str(exc.value)


def test_a_sweep_refuses_a_bad_lever_before_running(tmp_path, scenario_file):
    spec = tmp_path / "s.toml"
    spec.write_text(f'scenario = "{scenario_file}"\nweeks = 4\nseeds = [1]\n'
                    '[grid]\n"policy.Stockpile[US#2].end" = [2025-01-01]\n')
    result = CliRunner().invoke(app, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "policy.Stockpile[US#2].end" in result.output and "is before start" in result.output


def test_two_levels_give_different_runs_and_keys(tmp_path, scenario_file):
    """Sweeping the first US stockpile's target: the lever is a column of the results, each level a run of
    its own key, and the levels differ where a stockpile acts (the agency's stock)."""
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "lev"\nscenario = "{scenario_file}"\nweeks = {WEEKS}\nseeds = [1]\n'
                    '[grid]\n"policy.Stockpile[US#1].target_days" = [0, 120]\n')
    summary = sweep(spec, tmp_path / "out", workers=1, progress=False)
    assert summary.done == 2 and summary.failed == 0
    df = load_sweep(tmp_path / "out", variables=["stockpile"])
    lever = "policy.Stockpile[US#1].target_days"
    assert sorted(df[lever].unique()) == [0, 120]
    assert df.groupby(lever)["run_id"].nunique().to_dict() == {0: 1, 120: 1}
    us = df[df["region"] == "US"].groupby(lever)["value"].sum()
    assert us[0] == 0 and us[120] > 0
    sc = load_scenario(scenario_file)
    keys = {run_key(sc, {lever: v}, 1, WEEKS) for v in (0, 120, 120.0)}
    assert len(keys) == 2  # 120 and 120.0 are one run; 0 another
    assert run_key(sc, {}, 1, WEEKS) not in keys


def test_run_one_takes_levers_like_world_overrides(scenario_file):
    a = run_one(scenario_file, 1, WEEKS, {"policy.Stockpile[US#1].enabled": False})
    b = run_one(scenario_file, 1, WEEKS, {"policy.Stockpile[US#1].target_days": 120})
    stock = "stockpile"
    assert a[(a.variable == stock) & (a.region == "US")]["value"].sum() == 0
    assert b[(b.variable == stock) & (b.region == "US")]["value"].sum() > 0


def test_check_warns_about_overlaps_and_states_the_rule(scenario_file):
    result = CliRunner().invoke(app, ["check", str(scenario_file)])
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: levers")
    warning = result.stderr
    assert "warning: timeline[0] and timeline[1] are both Stockpile of US from 2025-06-02 to 2025-12-01" in warning
    assert "the one begun last" in warning and "policy.Stockpile[US#2].<field>" in warning
    # entries that do not overlap in time, or differ in type or actor, are not reported
    sc = load_scenario(scenario_file)
    later, _ = apply_levers(sc, {"policy.Stockpile[US#1].end": "2025-06-02"})
    assert overlaps(later) == []
    shipped = CliRunner().invoke(app, ["check", "us_japan_framework"])
    assert shipped.exit_code == 0 and "warning" not in shipped.output


def test_the_documented_stockpile_rule_is_what_the_model_does(sc):
    """The mandate begun last rules while both are in force; the earlier one rules again after it ends."""
    model = RareEarthModel(scenario=sc, seed=1, weeks=60)
    targets = {}
    while model.steps < 60:
        model.step()
        targets[model.date] = model.state_by_id["US"].mandate.target_weeks
    assert targets[dt.date(2025, 3, 3)] == pytest.approx(30 / 7)
    assert targets[dt.date(2025, 6, 2)] == pytest.approx(90 / 7)
    assert targets[dt.date(2025, 11, 24)] == pytest.approx(90 / 7)
    assert targets[dt.date(2025, 12, 1)] == pytest.approx(30 / 7)
    assert np.isfinite(list(targets.values())).all()


def test_a_lever_is_a_sensitivity_parameter(tmp_path, scenario_file):
    """Morris over a stockpile's target (real) and an export control's delay (an integer field: sampled
    values are rounded, as for the world's integer fields)."""
    from experiments import sensitivity as sa

    spec = tmp_path / "sens.toml"
    spec.write_text(f'name = "lev"\nscenario = "{scenario_file}"\nweeks = 10\nseeds = [1]\nmethods = ["morris"]\n'
                    'outputs = ["sum:stockpile:US:*"]\n[parameters]\n"policy.Stockpile[US#1].target_days" = [0, 120]\n'
                    '"policy.ExportControl[CN].delay_weeks" = [2, 8]\n[morris]\ntrajectories = 2\nlevels = 4\n')
    res = sa.run(spec, tmp_path / "out", workers=1, progress=False, formats=("png",))
    mu = res.indices["morris"].set_index("parameter")["mu_star"]
    assert mu["policy.Stockpile[US#1].target_days"] > 0  # the stockpile's target moves its stock
    samples = pd.read_csv(next((tmp_path / "out").glob("samples_morris*.csv")))
    assert set(samples["policy.ExportControl[CN].delay_weeks"]) <= set(range(2, 9))


def test_check_notes_listed_elements_the_world_does_not_model(tmp_path):
    """The official lists are data as published (FACTS D1: Lu, Sc; D9: Ho, Er, Tm, Eu, Yb): a control naming
    an element the world lacks is noted and skipped, not refused; controls on disjoint lists do not overlap."""
    result = CliRunner().invoke(app, ["check", "magnets_2025"])
    assert result.exit_code == 0 and result.stdout.startswith("ok: magnets_2025")
    assert "note: timeline[3] ExportControl names Ho, Er, Tm, Eu, Yb, which this world does not model" in result.stderr
    assert "note: timeline[0] ExportControl names Lu, Sc" in result.stderr
    assert "timeline[0] and timeline[2]" not in result.stderr, "April and December lists do not meet in time"
    shipped = (Path(load_scenario("china_controls_2025").source)).read_text()
    on_oxide = tmp_path / "china_controls_2025.toml"  # the April list on the oxide world, whatever the file's own
    text, n = re.subn(r'(?m)^world = ".*"$', 'world = "world_2024.toml"', shipped, count=1)
    assert n == 1
    on_oxide.write_text(text)
    oxide_world = CliRunner().invoke(app, ["check", str(on_oxide)])
    assert oxide_world.exit_code == 0
    assert "note: timeline[0] ExportControl names Sm, Gd, Lu, Sc, Y, which this world does not model" in oxide_world.stderr
    clean = CliRunner().invoke(app, ["check", "myanmar_2025"])
    assert clean.exit_code == 0 and "note" not in clean.stderr
