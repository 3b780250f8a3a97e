"""The ``ree`` command: what ``run`` writes (issue 2 item 7), and bad input (issue 2 item 11, issue 3
item 6): a malformed world or scenario file gives a message naming the field, exit code 2, no traceback.

Most cases call the Typer app in-process (fast); a few run the installed console script in a fresh
process, which is what a user types.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from model.params import DATA_DIR
from model.results import COLUMNS, series
from model.scenario import list_scenarios

ROOT = Path(__file__).resolve().parents[1]
REE = Path(sys.executable).parent / "ree"
WORLD_TEXT = (DATA_DIR / "world_2024.toml").read_text()
HEAD = 'name = "bad"\nworld = "world_2024.toml"\nstart = 2024-01-01\nweeks = 52\nseeds = [1]\n'


def _policy(body: str) -> str:
    return HEAD + "\n[[timeline]]\n" + body + "\n"


def _world(old: str, new: str) -> str:
    assert old in WORLD_TEXT, old
    return WORLD_TEXT.replace(old, new, 1)


# name -> (scenario text, world text or None, substrings the message must contain)
SCENARIO_CASES = {
    "unknown key": (HEAD + 'colour = "red"\n', None, ["colour", "unknown key"]),
    "wrong type": (HEAD.replace("weeks = 52", 'weeks = "many"'), None, ["weeks"]),
    "seeds wrong type": (HEAD.replace("seeds = [1]", 'seeds = "one"'), None, ["seeds"]),
    "unknown state (actor)": (_policy('type = "ExportControl"\nstart = 2024-03-01\nactor = "XX"'), None,
                              ["actor", "XX", "allowed"]),
    "unknown state (list)": (_policy('type = "Sanction"\nstart = 2024-03-01\ncompliers = ["JP", "ZZ"]'), None,
                             ["compliers", "ZZ"]),
    "unknown product": (_policy('type = "ExportControl"\nstart = 2024-03-01\nproducts = ["Nd"]'), None,
                        ["products", "NdPr"]),
    "date outside the horizon": (_policy('type = "ExportControl"\nstart = 2030-01-01'), None,
                                 ["start", "outside"]),
    "date before the start": (_policy('type = "MiningHalt"\nstart = 2023-06-01\nactor = "KIA"'), None,
                              ["start", "outside"]),
    "negative budget": (_policy('type = "Financing"\nstart = 2024-03-01\nbudget_musd = -5.0'), None,
                        ["budget_musd"]),
    "parameter out of bounds": (_policy('type = "ExportControl"\nstart = 2024-03-01\napproval_rate = 1.5'), None,
                                ["approval_rate"]),
    "unknown policy field": (_policy('type = "ExportControl"\nstart = 2024-03-01\napproval = 0.5'), None,
                             ["approval", "unknown key"]),
    "unknown policy type": (_policy('type = "Embargo"\nstart = 2024-03-01'), None, ["type", "Embargo", "ExportControl"]),
    "end before start": (_policy('type = "ExportControl"\nstart = 2024-05-01\nend = 2024-03-01'), None,
                         ["end", "before start"]),
    "unknown armed group": (_policy('type = "MiningHalt"\nstart = 2024-03-01\nactor = "ABC"'), None, ["actor", "ABC"]),
    "unknown corridor": (_policy('type = "RouteChange"\nstart = 2024-03-01\naction = "open"\ncorridor = "silk_road"'),
                         None, ["corridor", "silk_road"]),
    "not TOML": ("name = 'bad'\nthis is [not toml\n", None, ["not valid TOML"]),
    "override names no entry": (HEAD + '[overrides]\n"refiners.nowhere.capacity_t_per_week" = 5.0\n', None,
                                ["nowhere"]),
    "override negative capacity": (HEAD + '[overrides]\n"refiners.cn_baotou.capacity_t_per_week" = -1.0\n', None,
                                   ["capacity_t_per_week"]),
    "override unknown behaviour rate": (HEAD + '[overrides]\n"behaviour.speed" = 1.0\n', None, ["speed"]),
    "world: unknown key": (None, _world('id = "cn_baotou"', 'id = "cn_baotou"\ncolour = "red"'),
                           ["colour", "unknown key"]),
    "world: wrong type": (None, _world("capacity_t_per_week = 5400.0", 'capacity_t_per_week = "big"'),
                          ["capacity_t_per_week"]),
    "world: negative capacity": (None, _world("capacity_t_per_week = 5400.0", "capacity_t_per_week = -5.0"),
                                 ["capacity_t_per_week"]),
    "world: unknown state": (None, _world('name = "Lynas Malaysia"                        # FACTS E7: NdPr 10,500 t/yr capacity\ncountry = "MY"',
                                          'name = "Lynas Malaysia"\ncountry = "XX"'), ["country", "XX"]),
    "world: unknown product": (None, _world("basket = { NdPr = 0.22,", "basket = { Nd = 0.22,"), ["basket", "Nd"]),
    "world: not TOML": (None, "products = [[[\n", ["not valid TOML"]),
}


def _write_case(tmp_path: Path, name: str) -> Path:
    scenario, world, _ = SCENARIO_CASES[name]
    if world is not None:
        wpath = tmp_path / "world.toml"
        wpath.write_text(world)
        scenario = HEAD.replace('world = "world_2024.toml"', f'world = "{wpath}"')
    path = tmp_path / "bad.toml"
    path.write_text(scenario)
    return path


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", list(SCENARIO_CASES))
def test_bad_file_exits_2_naming_the_field(tmp_path, case, command):
    path = _write_case(tmp_path, case)
    args = [command, str(path)] + (["--out", str(tmp_path / "out"), "--weeks", "2"] if command == "run" else [])
    result = _invoke(args)
    assert result.exit_code == 2, f"exit {result.exit_code}; output:\n{result.output}\nexception: {result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    message = result.stderr
    for needle in SCENARIO_CASES[case][2]:
        assert needle in message, f"{case}: {needle!r} not in the message:\n{message}"
    assert not (tmp_path / "out").exists(), "nothing runs half-configured"


@pytest.mark.parametrize("command", ["check", "run"])
def test_missing_files_exit_2(tmp_path, command):
    result = _invoke([command, str(tmp_path / "nowhere.toml")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "nowhere" in result.stderr and "no such file" in result.stderr, result.stderr
    path = tmp_path / "s.toml"
    path.write_text(HEAD.replace('world = "world_2024.toml"', f'world = "{tmp_path / "no_world.toml"}"'))
    result = _invoke([command, str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no_world.toml" in result.stderr and "not found" in result.stderr, result.stderr


@pytest.mark.parametrize("case", ["not TOML", "unknown key", "world: wrong type"])
def test_console_script_reports_bad_files_without_traceback(tmp_path, case):
    path = _write_case(tmp_path, case)
    for command in ("check", "run"):
        proc = subprocess.run([str(REE), command, str(path)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout
        assert SCENARIO_CASES[case][2][0] in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", list_scenarios())
def test_shipped_scenarios_check_clean(name):
    result = _invoke(["check", name])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {name}")


def test_scenarios_lists_every_shipped_scenario_with_a_line_each():
    result = _invoke(["scenarios"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    shipped = list_scenarios()
    assert {"baseline", "myanmar_2025", "china_controls_2025", "us_japan_framework", "asean_mous",
            "northern_corridor", "election_reconnect", "combined_2025"} <= set(shipped)
    assert len(lines) == len(shipped)
    for name, line in zip(shipped, lines, strict=True):
        assert line.split()[0] == name and len(line.split()) > 3, line


def test_run_writes_results_provenance_and_chart(tmp_path):
    out = tmp_path / "tmp"
    proc = subprocess.run([str(REE), "run", "baseline", "--weeks", "26", "--seed", "3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "baseline" in proc.stdout and "Traceback" not in proc.stderr
    assert {p.name for p in out.iterdir()} >= {"results.parquet", "provenance.json", "prices.png"}

    df = pd.read_parquet(out / "results.parquet")
    assert list(df.columns) == COLUMNS
    assert df["step"].min() == 0 and df["step"].max() == 26
    assert (df["seed"] == 3).all() and (df["scenario"] == "baseline").all()
    assert series(df, "price", "CN", "Dy").size == 27

    prov = json.loads((out / "provenance.json").read_text())
    for key in ("version", "git_commit", "scenario", "parameters", "seeds"):
        assert key in prov, f"provenance lacks {key!r}: {sorted(prov)}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", prov["version"]), prov["version"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", prov["git_commit"]), prov["git_commit"]
    assert prov["scenario"]["name"] == "baseline"
    assert prov["seeds"] == [3]
    assert prov["weeks"] == 26
    assert isinstance(prov["parameters"], dict)
    assert prov["auction_kernel"] in ("compiled", "numpy")

    png = (out / "prices.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
