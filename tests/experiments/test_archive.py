"""``ree archive``: a bundle a second person can unpack and use without the repository (issue 13, item 6)."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.archive import COLUMN_DOCS, archive
from experiments.cli import app
from model.results import COLUMNS, OUTPUTS
from model.scenario import load_scenario

runner = CliRunner()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "base"
    res = runner.invoke(app, ["run", "baseline", "--weeks", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    from experiments.sweep import sweep

    base = tmp_path_factory.mktemp("sweep")
    spec = base / "tiny.toml"
    spec.write_text('name = "tiny"\nscenario = "baseline"\nweeks = 3\nseeds = [1, 2]\n\n'
                    '[grid]\n"behaviour.full_cost_markup" = [0.6, 0.72]\n')
    sweep(str(spec), base / "tiny", workers=1, progress=False)
    return base / "tiny"


def _unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(dest)
        (top,) = {n.split("/")[0] for n in z.namelist()}
    return dest / top


def test_column_docs_cover_the_columns():
    assert list(COLUMN_DOCS) == COLUMNS


def test_run_archive_is_self_describing(run_folder, tmp_path, umask_022):
    res = runner.invoke(app, ["archive", str(run_folder), "--out", str(tmp_path / "bundle.zip")])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    zpath = tmp_path / "bundle.zip"
    assert stat.S_IMODE(zpath.stat().st_mode) == 0o644
    with zipfile.ZipFile(zpath) as z:
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in z.infolist()}
    assert set(modes.values()) == {0o644}, modes
    b = _unpack(zpath, tmp_path / "unpacked")
    names = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    assert {"README.md", "datapackage.json", "codebook.csv", "codebook.md", "environment.json", "results.parquet",
            "provenance.json", "prices.png", "inputs/scenarios/baseline.toml", "inputs/scenarios/baseline.json",
            f"inputs/worlds/{load_scenario('baseline').world_path().name}"} <= names  # the run's own world

    # the data package lists the table with its fields
    dp = json.loads((b / "datapackage.json").read_text())
    (res_,) = [r for r in dp["resources"] if r["format"] == "parquet"]
    assert res_["path"] == "results.parquet"
    fields = {f["name"]: f for f in res_["schema"]["fields"]}
    assert list(fields) == COLUMNS and all(f["description"] for f in fields.values())
    assert fields["value"]["type"] == "number" and fields["seed"]["type"] == "integer"

    # the codebook covers every variable in the data, with the declared units
    df = pd.read_parquet(b / "results.parquet")
    book = pd.read_csv(b / "codebook.csv", keep_default_na=False)
    assert set(book["variable"]) == set(df["variable"])
    for row in book.itertuples():
        assert (row.unit, row.label, row.region_means) == (OUTPUTS[row.variable].unit, OUTPUTS[row.variable].label,
                                                           OUTPUTS[row.variable].by)
    md = (b / "codebook.md").read_text()
    assert all(f"`{c}`" in md for c in COLUMNS) and all(f"`{v}`" in md for v in df["variable"].unique())

    # the scenario file is the shipped one, verbatim
    from model.scenario import SCENARIO_DIR

    assert (b / "inputs/scenarios/baseline.toml").read_bytes() == (SCENARIO_DIR / "baseline.toml").read_bytes()

    env = json.loads((b / "environment.json").read_text())
    assert {"mesa", "numpy", "pandas", "pyarrow"} <= set(env["distributions"])
    from experiments.sweep import code_fingerprint

    assert env["code_fingerprint"] == code_fingerprint() and env["same_code"] is True
    assert env["python"] and env["platform"]

    # figures are listed with the command that makes them; re-deriving the table from the bundle works
    readme = (b / "README.md").read_text()
    assert "`prices.png` | `ree run baseline --seed 1 --weeks 8 --out base`" in readme
    assert df.equals(pd.read_parquet(run_folder / "results.parquet"))


def test_default_zip_is_beside_the_folder_and_figures_rederive(run_folder, tmp_path, umask_022):
    import shutil

    folder = tmp_path / "base"
    shutil.copytree(run_folder, folder)
    a = archive(folder)
    assert a.path == tmp_path / "base.zip" and a.path.is_file()
    b = _unpack(a.path, tmp_path / "u")
    from experiments.figures import make_figures

    paths = make_figures(b, formats=("png",), kinds=["price_paths"])  # what `ree figures base` does
    assert paths and all(p.is_relative_to(b / "figures") for p in paths)
    # archived again, the unpacked bundle gives the same data and lists the new figure with its command
    again = archive(b, tmp_path / "again.zip")
    assert "results.parquet" in again.names and "figures/price_paths.png" in again.names
    c = _unpack(again.path, tmp_path / "v")
    assert "`figures/price_paths.png` | `ree figures base`" in (c / "README.md").read_text()
    assert sum(n == "README.md" for n in again.names) == 1


def test_sweep_archive(sweep_folder, tmp_path, umask_022):
    a = archive(sweep_folder, tmp_path / "tiny.zip")
    b = _unpack(a.path, tmp_path / "u")
    runs = sorted(p.relative_to(b).as_posix() for p in (b / "runs").glob("*.parquet"))
    assert len(runs) == 4
    dp = json.loads((b / "datapackage.json").read_text())
    parquet = [r for r in dp["resources"] if r["format"] == "parquet"]
    assert len(parquet) == 1 and sorted(parquet[0]["path"]) == runs
    design = next(r for r in dp["resources"] if r["path"] == "design.csv")
    assert "behaviour.full_cost_markup" in {f["name"] for f in design["schema"]["fields"]}
    assert (b / "inputs/specs/tiny.toml").read_text() == (sweep_folder.parent / "tiny.toml").read_text()
    assert (b / "inputs/scenarios/baseline.toml").is_file()
    df = pd.read_parquet(b / "runs")
    book = pd.read_csv(b / "codebook.csv", keep_default_na=False)
    assert set(book["variable"]) == set(df["variable"])
    from experiments.sweep import load_sweep

    assert len(load_sweep(b)) == len(load_sweep(sweep_folder))
    for f in ("manifest.json", "design.csv"):  # up to date: as they are
        assert (b / f).read_bytes() == (sweep_folder / f).read_bytes(), f


def test_a_killed_sweeps_archive_records_the_status_on_disk(sweep_folder, tmp_path):
    """kill -9 leaves manifest.json and design.csv as the sweep wrote them when it started (every run
    pending) and one run file missing: the zip's copies say which runs are done, as the files do."""
    import shutil

    folder = tmp_path / "killed"
    shutil.copytree(sweep_folder, folder)
    m = json.loads((folder / "manifest.json").read_text())
    for r in m["runs"]:
        r["status"] = "pending"
    m["counts"] = {"done": 0, "failed": 0, "pending": len(m["runs"])}
    (folder / "manifest.json").write_text(json.dumps(m, indent=2) + "\n")
    design = pd.read_csv(folder / "design.csv").assign(status="pending")
    design.to_csv(folder / "design.csv", index=False)
    lost = m["runs"][-1]["key"]
    (folder / "runs" / f"{lost}.parquet").unlink()
    b = _unpack(archive(folder, tmp_path / "k.zip").path, tmp_path / "u")
    want = {r["key"]: "pending" if r["key"] == lost else "done" for r in m["runs"]}
    got = json.loads((b / "manifest.json").read_text())
    assert {r["key"]: r["status"] for r in got["runs"]} == want
    assert got["counts"] == {"done": len(want) - 1, "failed": 0, "pending": 1}
    table = pd.read_csv(b / "design.csv")
    assert dict(zip(table["key"], table["status"], strict=True)) == want
    assert list(table.columns) == list(design.columns)
    assert json.loads((folder / "manifest.json").read_text()) == m, "the results folder itself is not changed"


def test_an_edited_scenario_file_is_not_passed_off_as_the_source(tmp_path):
    from model.scenario import SCENARIO_DIR

    sc = tmp_path / "mine.toml"
    sc.write_text((SCENARIO_DIR / "baseline.toml").read_text().replace('name = "baseline"', 'name = "mine"'))
    res = runner.invoke(app, ["run", str(sc), "--weeks", "2", "--out", str(tmp_path / "mine")])
    assert res.exit_code == 0, res.output
    sc.write_text(sc.read_text().replace("weeks = 520", "weeks = 260"))  # edited after the run
    a = archive(tmp_path / "mine")
    assert "inputs/scenarios/mine.json" in a.names and "inputs/scenarios/mine.toml" not in a.names
    assert any("mine" in n and "recorded content" in n for n in a.notes)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "not a results folder"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, make, fragment):
    target = make(tmp_path)
    res = runner.invoke(app, ["archive", str(target)])
    assert res.exit_code == 2
    assert fragment in res.output and str(target) in res.output and "Traceback" not in res.output
    assert not list(tmp_path.glob("*.zip"))


def test_citation_and_license_agree_with_pyproject():
    import tomllib

    import yaml

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["version"] == project["version"]
    assert cff["license"] == project["license"] == "MIT"
    assert cff["title"].startswith("ree-abm") and cff["authors"] == [{"name": "The ree-abm developers"}]
    text = (root / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 The ree-abm developers" in text
