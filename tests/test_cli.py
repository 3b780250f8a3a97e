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
from model.params import DATA_DIR, World, load_world
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


def _world_entry(entry_id: str, key: str, value: str) -> str:
    """The world file with ``key = value`` in the list entry ``id = entry_id`` (whatever its comments)."""
    pattern = rf'(\nid = "{re.escape(entry_id)}"\n(?:(?!\[\[).*\n)*?){re.escape(key)} = [^\n]*'
    text, n = re.subn(pattern, lambda m: f"{m.group(1)}{key} = {value}", WORLD_TEXT, count=1)
    assert n == 1, f"no {key} in the world entry {entry_id!r}"
    return text


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
    "world: unknown key": (None, _world('id = "cn_recycling"', 'id = "cn_recycling"\ncolour = "red"'),
                           ["colour", "unknown key"]),
    "world: wrong type": (None, _world("capacity_t_per_week = 700.0", 'capacity_t_per_week = "big"'),
                          ["capacity_t_per_week"]),
    "world: negative capacity": (None, _world("capacity_t_per_week = 700.0", "capacity_t_per_week = -5.0"),
                                 ["capacity_t_per_week"]),
    "world: unknown state": (None, _world_entry("oth_separation", "country", '"XX"'), ["country", "XX"]),
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
            "northern_corridor", "election_reconnect", "combined_2025", "myanmar_2025_record",
            "licence_one_year"} <= set(shipped)
    assert len(lines) == len(shipped)
    for name, line in zip(shipped, lines, strict=True):
        assert line.split()[0] == name and len(line.split()) > 3, line


def test_run_writes_results_provenance_and_chart(tmp_path):
    out = tmp_path / "tmp"
    proc = subprocess.run([str(REE), "run", "baseline", "--weeks", "26", "--seed", "3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "baseline" in proc.stdout and "Traceback" not in proc.stderr
    _check_summary(proc.stdout, load_world())
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


def _check_summary(stdout: str, world: World) -> None:
    """``ree run``'s summary: a price line per market region naming every product, in the world's order,
    and a shortage line with every product."""
    lines = stdout.splitlines()
    for region in world.regions:
        line = next((ln for ln in lines if ln.strip().startswith(f"{region.name} ")), None)
        assert line is not None and "USD/kg" in line, (region.name, stdout)
        named = [part.split()[0] for part in line.split("USD/kg:")[1].split(",")]
        assert named == list(world.product_names), line
    short = next(ln for ln in lines if "total shortage (t)" in ln)
    assert [part.split()[0] for part in short.split(":")[1].split(",")] == list(world.product_names)


def _world_with_product(name: str) -> str:
    """The default world with one more product, mined in every ore, separated wherever Dy is and used by
    every buyer: what adding an element to the world file takes (nothing outside the file changes)."""
    text = WORLD_TEXT.replace("[[products]]\n", f"[[products]]\nname = \"{name}\"\nprice_2024_usd_per_kg = 70.0\n"
                              "export_cost_usd_per_kg = 2.0\n[[products]]\n", 1)
    edits = [(r"basket = \{ ", f"basket = {{ {name} = 0.004, "),
             (r'(separates = \[[^\]]*"Dy")', rf'\1, "{name}"'),
             (r"content_kg_per_kg = \{ ", f"content_kg_per_kg = {{ {name} = 0.001, ")]
    for pattern, repl in edits:
        text, n = re.subn(pattern, repl, text)
        assert n > 0, pattern
    return text


def test_a_product_added_to_the_world_file_reaches_every_command(tmp_path):
    """Products are data: run, summary, results and figures follow a fourth (fifth, ...) product."""
    from experiments import figures

    world_path = tmp_path / "world_ho.toml"
    world_path.write_text(_world_with_product("Ho"))
    world = load_world(world_path)
    assert "Ho" in world.product_names and len(world.product_names) == len(load_world("world_2024.toml").product_names) + 1
    scenario = tmp_path / "ho.toml"
    scenario.write_text(HEAD.replace('world = "world_2024.toml"', f'world = "{world_path}"'))
    out = tmp_path / "run"
    result = _invoke(["run", str(scenario), "--weeks", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    _check_summary(result.stdout, world)
    df = pd.read_parquet(out / "results.parquet")
    for region in world.region_ids:
        assert series(df, "price", region, "Ho").size == 7
    result = _invoke(["figures", str(out), "--formats", "png", "--kind", "price_paths"])
    assert result.exit_code == 0, result.output
    assert (out / "figures" / "price_paths.png").stat().st_size > 5000
    titles = [ax.get_title() for ax in figures.price_paths(df).axes]
    assert sorted(titles) == sorted(f"{p} oxide" for p in world.product_names)


# ------------------------------------------------------------------------------ ree run --seeds (issue 13 item 7)
def _bar(stderr: str) -> bool:
    """A tqdm bar was drawn (its 'n/total' count)."""
    return re.search(r"\d+/\d+ \[", stderr) is not None


def test_run_seeds_writes_every_seed_into_one_table(tmp_path, caplog):
    """``--seeds 1-2,5``: one results.parquet holding each seed's run as ``ree run --seed`` makes it, the same
    on a process pool as in one process; the summary gives medians over the runs; the model's warning about
    a shortened horizon is printed once, not once per seed; the bar goes to stderr only when asked for."""
    import io

    import numpy as np

    from experiments.run import run_one

    tables, outputs = {}, {}
    for workers, bar in (("2", "--no-progress"), ("1", "--progress")):
        out = tmp_path / f"w{workers}"
        caplog.clear()
        r = _invoke(["run", "myanmar_2025", "--seeds", "1-2,5", "--weeks", "3", "--out", str(out),
                     "--workers", workers, bar])
        assert r.exit_code == 0, r.output
        assert _bar(r.stderr) == (bar == "--progress"), r.stderr
        assert not _bar(r.stdout), r.stdout
        warned = [rec for rec in caplog.records if "will not happen" in rec.getMessage()]
        assert len(warned) == 1, [rec.getMessage() for rec in warned]
        tables[workers] = pd.read_parquet(out / "results.parquet")
        outputs[workers] = r.stdout
        prov = json.loads((out / "provenance.json").read_text())
        assert prov["seeds"] == [1, 2, 5] and prov["weeks"] == 3
        assert [x["seed"] for x in prov["runs"]] == [1, 2, 5] and all(x["agents"] > 0 for x in prov["runs"])
        assert (out / "prices.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pd.testing.assert_frame_equal(tables["1"], tables["2"], check_exact=True)
    df = tables["1"]
    assert list(df.columns) == COLUMNS
    assert df.groupby("seed")["run_id"].nunique().to_dict() == {1: 1, 2: 1, 5: 1}
    for seed in (2, 5):  # each seed's rows are its own run, through the same Parquet round trip
        buf = io.BytesIO()
        run_one("myanmar_2025", seed, 3).to_parquet(buf, index=False)
        pd.testing.assert_frame_equal(df[df["seed"] == seed].reset_index(drop=True), pd.read_parquet(buf),
                                      check_exact=True)
    text = outputs["1"]
    assert text.startswith(f"myanmar_2025 (seeds 1-2, 5): 3 runs of 3 weeks, {len(df):,} rows in "), text
    _check_summary(text, load_world())
    dy = [series(d, "price", "ROW", "Dy") for _, d in df.groupby("seed")]
    peak = [s.rolling(min(4, len(s))).mean().max() for s in dy]  # the peak 4-week mean (here the 3 weeks')
    assert all(p == pytest.approx(s.mean()) for p, s in zip(peak, dy, strict=True))
    medians = [np.median([f(s) for s in dy]) for f in (lambda s: s.iloc[0], lambda s: s.iloc[-1])] + [np.median(peak)]
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("ex-China"))
    assert "Dy {:.0f}->{:.0f} (4-wk peak {:.0f})".format(*medians) in line, line


def test_run_with_one_seed_is_unchanged_by_seed_lists(tmp_path):
    """``--seeds 4-4`` is ``--seed 4``: the same table, summary and provenance fields as before."""
    a, b = tmp_path / "a", tmp_path / "b"
    ra = _invoke(["run", "baseline", "--seed", "4", "--weeks", "2", "--out", str(a)])
    rb = _invoke(["run", "baseline", "--seeds", "4-4", "--weeks", "2", "--out", str(b)])
    assert ra.exit_code == rb.exit_code == 0, ra.output + rb.output
    assert ra.stdout.startswith("baseline (seed 4): 2 weeks") and not _bar(ra.stderr + rb.stderr)
    strip = re.compile(r"in \d+\.\d s|\S+/(?:a|b)/")
    assert strip.sub("", ra.stdout) == strip.sub("", rb.stdout)
    pd.testing.assert_frame_equal(pd.read_parquet(a / "results.parquet"), pd.read_parquet(b / "results.parquet"))
    pa_, pb = (json.loads((p / "provenance.json").read_text()) for p in (a, b))
    assert pa_["seeds"] == pb["seeds"] == [4] and "runs" not in pa_ and pa_["agents"] == pb["agents"]


@pytest.mark.parametrize(("text", "seeds"), [("1-3", [1, 2, 3]), ("1,2,5", [1, 2, 5]), (" 1 - 3 , 7 ", [1, 2, 3, 7]),
                                             ("0-0", [0]), ("9,3-4", [9, 3, 4]), ("1-1000", list(range(1, 1001)))])
def test_seed_lists_parse(text, seeds):
    from experiments.cli import parse_seed_list, seed_text

    assert parse_seed_list(text) == seeds
    if len(seeds) > 1:
        assert parse_seed_list(seed_text(seeds).replace(" ", "")) == seeds


def test_seed_text_writes_runs_as_ranges():
    from experiments.cli import seed_text

    assert seed_text([1, 2, 3, 7]) == "1-3, 7"
    assert seed_text([5]) == "5" and seed_text([2, 1]) == "2, 1" and seed_text([0, 1]) == "0-1"


# ------------------------------------------------------------ progress bars: figures and validate (issue 13 item 7)
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> Path:
    """Two short run folders of two scenarios: figures draw both and a comparison."""
    from experiments.run import atomic_write_parquet, run_one

    root = tmp_path_factory.mktemp("runs")
    for name in ("baseline", "myanmar_2025"):
        atomic_write_parquet(run_one(name, 1, 3), root / name / "results.parquet")
    return root


@pytest.mark.parametrize("flag", ["--progress", "--no-progress"])
def test_figures_progress_bar_goes_to_stderr_when_asked(two_runs, tmp_path, flag):
    r = _invoke(["figures", str(two_runs), "--out", str(tmp_path / "f"), "--formats", "png", "--kind", "price_paths",
                 flag])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("wrote ") and not _bar(r.stdout), r.stdout
    if flag == "--progress":  # two scenarios and the comparison, counted to the end
        assert "figures" in r.stderr and "3/3 [" in r.stderr, r.stderr
    else:
        assert not _bar(r.stderr), r.stderr
    assert (tmp_path / "f" / "comparison").is_dir()


@pytest.mark.parametrize("flag", ["--progress", "--no-progress"])
def test_validate_progress_bar_goes_to_stderr_when_asked(tmp_path, monkeypatch, flag):
    """The bar counts runs (scenario x seed); the table on stdout is the same with or without it. Two cheap
    targets stand in for the calibration set, run in this process."""
    from experiments import validate as V
    from experiments.run import run_one

    def last_dy(df):
        return float(series(df, "price", "CN", "Dy").iloc[-1])

    monkeypatch.setattr(V, "TARGETS", [V.Target("Dy level", "baseline", "test", 0.0, 1e6, last_dy, "USD/kg"),
                                       V.Target("Dy level, 2025", "myanmar_2025", "test", 0.0, 1e6, last_dy, "USD/kg")])
    monkeypatch.setattr(V._Runner, "__call__", lambda self, job: (job[0], job[1], run_one(job[0], job[1], weeks=2)))
    out = tmp_path / "v"
    r = _invoke(["validate", "--seeds", "2", "--workers", "1", "--out", str(out), flag])
    assert r.exit_code == 0, r.output
    assert "2/2 targets pass" in r.stdout and not _bar(r.stdout), r.stdout
    assert _bar(r.stderr) == (flag == "--progress"), r.stderr
    if flag == "--progress":
        assert "validate" in r.stderr and "4/4 [" in r.stderr, r.stderr  # 2 scenarios x 2 seeds
    assert {p.name for p in out.iterdir()} >= {"validation.md", "validation.csv", "validation.png"}
