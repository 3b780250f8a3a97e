"""Outputs (issue 14): names from files never leave the output root, write failures exit 1 with a message,
unusable run files are recomputed, one sweep at a time per folder, files honour the umask."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiments import paths as P
from experiments.cli import app
from experiments.run import atomic_write_bytes
from experiments.sweep import CORRUPT, LOCK, META_KEY, RUNS, check_run_file, load_sweep, run_key, sweep
from model.params import ConfigError
from model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
WEEKS = 3
SWEEP = f'name = "{{name}}"\nscenario = "baseline"\nweeks = {WEEKS}\nseeds = [1, 2]\n'
SENSITIVITY = ('name = "{name}"\nscenario = "baseline"\nweeks = 2\nmethods = ["morris"]\n'
               '[parameters]\n"behaviour.full_cost_markup" = [0.6, 0.85]\n[morris]\ntrajectories = 2\n')
BAD_NAMES = ["../outside", "../../x", "/tmp/abs", "a/b", ".hidden", "_private", "", "x" * 101, "a b"]


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _no_traceback(r) -> None:
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory) -> Path:
    """A finished two-run sweep, copied by the tests that damage it."""
    base = tmp_path_factory.mktemp("sweep")
    spec = base / "s.toml"
    spec.write_text(SWEEP.format(name="s"))
    s = sweep(spec, base / "out", workers=1, progress=False)
    assert (s.done, s.failed) == (2, 0)
    return base


def _copy(done_sweep: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(done_sweep, tmp_path / "w")
    return tmp_path / "w" / "s.toml", tmp_path / "w" / "out"


# ------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command, text", [("sweep", SWEEP), ("sensitivity", SENSITIVITY)])
def test_a_spec_name_that_is_no_safe_folder_name_exits_2(tmp_path, monkeypatch, command, text, name):
    cwd = tmp_path / "a" / "b" / "c"  # ../../x from here is still under tmp_path, where we can look
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    (cwd / "spec.toml").write_text(text.format(name=name))
    before = _tree(tmp_path)
    absolute = Path("/tmp/abs").exists()
    r = _invoke([command, "spec.toml", "--no-progress"])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert "spec.toml" in r.stderr and "name" in r.stderr and repr(name)[:60] in r.stderr, r.stderr  # long values are shortened
    assert "letters, digits" in r.stderr  # what is allowed
    assert _tree(tmp_path) == before, "nothing may be written for a refused spec"
    assert Path("/tmp/abs").exists() == absolute


def test_the_default_name_from_a_hidden_spec_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "_draft.toml").write_text(SWEEP.replace('name = "{name}"\n', ""))
    r = _invoke(["sweep", "_draft.toml", "--dry-run"])
    assert r.exit_code == 2 and "'_draft'" in r.stderr and "file's name" in r.stderr, r.stderr


def test_safe_name_label_and_inside(tmp_path):
    for bad in BAD_NAMES:
        with pytest.raises(ConfigError, match="spec.toml: name"):
            P.safe_name(bad, "spec.toml: name")
        safe = P.label(bad)
        assert P.safe_name(safe, "label") == safe
        assert P.inside(tmp_path, safe).resolve().parent == tmp_path.resolve()
    assert P.safe_name("lhs_behaviour.v2", "x") == "lhs_behaviour.v2"
    assert P.label("baseline") == "baseline"  # safe names are kept as they are
    assert P.label("../a") != P.label("../../a")  # two labels never share a folder
    for bad in ("../x", "/etc", "a/../../x"):
        with pytest.raises(ConfigError, match="outside the output folder"):
            P.inside(tmp_path / "root", bad)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="outside the output folder"):
        P.inside(tmp_path / "root", "link", "x")
    assert P.inside(tmp_path / "root", "a", "b") == tmp_path / "root" / "a" / "b"


@pytest.mark.parametrize("scenario", [".hidden", "_private", "a/b", "../up", "", "x" * 200])
def test_run_keys_are_visible_file_names(scenario):
    key = run_key(Scenario(name=scenario), {}, 1, 5)
    assert P.safe_name(key, "key") == key and len(key) <= P.MAX_NAME
    assert run_key("baseline", {}, 1, 5).startswith("baseline_s1_")  # ordinary names are kept


def _rename_scenarios(out: Path, names: list[str]) -> None:
    """Give each run file of a sweep another scenario name (as a hand-written world could)."""
    for f, name in zip(sorted((out / RUNS).glob("*.parquet")), names, strict=True):
        t = pq.read_table(f)
        i = t.schema.get_field_index("scenario")
        t = t.set_column(i, t.schema.field(i), pa.array([name] * len(t)).cast(t.schema.field(i).type))
        pq.write_table(t, f)


def test_figures_out_writes_only_under_out(done_sweep, tmp_path):
    _, out = _copy(done_sweep, tmp_path)
    _rename_scenarios(out, ["../../x", "_hidden"])
    figs = tmp_path / "figs"
    before = _tree(tmp_path)
    r = _invoke(["figures", str(out), "--out", str(figs), "--formats", "png", "--kind", "price_paths"])
    assert r.exit_code == 0, r.output
    new = _tree(tmp_path) - before
    assert new and all(p == "figs" or p.startswith("figs/") for p in new), sorted(new)
    folders = {p.split("/")[1] for p in new if p.count("/") >= 1}
    assert {P.label("../../x"), P.label("_hidden"), "comparison"} <= folders, folders
    assert all(not part.startswith((".", "_")) for p in new for part in p.split("/")), sorted(new)


# ------------------------------------------------------------------------------------ write errors
def _make_unwritable(folder: Path) -> None:
    """chmod 0o500; root ignores modes, so as root the folder is made immutable (chattr +i) instead."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available here: root may write anywhere")


def _make_writable(folder: Path) -> None:
    if os.geteuid() != 0:
        folder.chmod(0o700)
    else:
        subprocess.run([shutil.which("chattr") or "chattr", "-i", str(folder)], capture_output=True)


@pytest.mark.parametrize("command", [
    ["sweep", "{spec}", "--no-progress", "--workers", "1"],
    ["sensitivity", "{sens}", "--no-progress", "--workers", "1"],
    ["run", "baseline", "--weeks", "2"],
    ["run-all", "--weeks", "2"],
    ["validate", "--seeds", "1"],
    ["figures", "{results}"],
])
@pytest.mark.parametrize("kind", ["existing file", "under a file", "no permission"])
def test_an_unwritable_out_exits_1_with_a_message(done_sweep, tmp_path, command, kind):
    (tmp_path / "spec.toml").write_text(SWEEP.format(name="s"))
    (tmp_path / "sens.toml").write_text(SENSITIVITY.format(name="t"))
    locked = tmp_path / "locked"
    if kind == "no permission":
        locked.mkdir()
        _make_unwritable(locked)
        out = locked / "o"
    else:
        (tmp_path / "afile").write_text("not a folder")
        out = tmp_path / "afile" if kind == "existing file" else tmp_path / "afile" / "o"
    args = [a.format(spec=tmp_path / "spec.toml", sens=tmp_path / "sens.toml", results=done_sweep / "out")
            for a in command]
    try:
        r = _invoke([*args, "--out", str(out)])
    finally:
        if kind == "no permission":
            _make_writable(locked)
    assert r.exit_code == 1, (r.exit_code, r.output, r.exception)
    _no_traceback(r)
    reason = {"existing file": "not a folder", "under a file": "Not a directory",
              "no permission": "Operation not permitted" if os.geteuid() == 0 else "Permission denied"}[kind]
    assert "error: cannot write" in r.stderr and reason in r.stderr, r.stderr
    assert str(tmp_path / ("locked" if kind == "no permission" else "afile")) in r.stderr


def test_a_full_disk_during_a_sweep_exits_1_with_a_message(tmp_path, monkeypatch):
    (tmp_path / "spec.toml").write_text(SWEEP.format(name="s"))

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    r = _invoke(["sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o"), "--no-progress",
                 "--workers", "1"])
    assert r.exit_code == 1, (r.output, r.exception)
    _no_traceback(r)
    assert f"error: cannot write {tmp_path / 'o'}" in r.stderr and "No space left on device" in r.stderr
    assert not list((tmp_path / "o").rglob("*.tmp")), "no temporary file is left behind"


def test_a_bare_oserror_in_non_writing_code_is_not_hidden(monkeypatch):
    """friendly() reports OutputError, not every OSError: a bug must still show its traceback."""
    import experiments.compare

    def boom(*a, **k):
        raise FileNotFoundError("a bug, not a write failure")

    monkeypatch.setattr(experiments.compare, "compare_scenarios", boom)
    r = _invoke(["compare", "baseline", "baseline"])
    assert r.exit_code == 1 and isinstance(r.exception, FileNotFoundError)


# ----------------------------------------------------------------------------------- resume safety
def test_a_truncated_run_file_is_recomputed_on_resume(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    files = sorted((out / RUNS).glob("*.parquet"))
    good = {f.name: pd.read_parquet(f) for f in files}
    victim = files[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # a torn write
    assert check_run_file(victim, victim.stem)

    r = _invoke(["figures", str(out), "--formats", "png", "--kind", "price_paths"])  # before the resume
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert victim.name in r.stderr and "again" in r.stderr, r.stderr

    s = sweep(spec, out, workers=1, progress=False)
    assert (s.done, s.skipped, s.failed) == (1, 1, 0)
    assert any("unusable" in n and victim.name in n for n in s.notes), s.notes
    assert (out / CORRUPT / f"{victim.name}.corrupt").is_file(), "the bad file is kept, out of runs/"
    assert check_run_file(victim, victim.stem) == ""
    for name, df in good.items():
        pd.testing.assert_frame_equal(pd.read_parquet(out / RUNS / name), df, check_exact=True)
    assert len(pd.read_parquet(out / RUNS)) == sum(len(d) for d in good.values())
    assert load_sweep(out)["run_id"].nunique() == 2


def test_a_run_file_holding_another_run_is_recomputed(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    a, b = sorted((out / RUNS).glob("*.parquet"))
    shutil.copyfile(a, b)  # b's name, a's rows
    assert "holds run" in check_run_file(b, b.stem)
    s = sweep(spec, out, workers=1, progress=False)
    assert (s.done, s.skipped) == (1, 1)
    meta = json.loads(pq.read_schema(b).metadata[META_KEY])
    assert meta["key"] == b.stem and set(pd.read_parquet(b)["run_id"]) == {b.stem}


def test_dry_run_counts_unreadable_files_as_to_do(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    next((out / RUNS).glob("*.parquet")).write_bytes(b"PAR1 not really")
    r = _invoke(["sweep", str(spec), "--out", str(out), "--dry-run"])
    assert r.exit_code == 0 and "1 done" in r.stdout and "1 unreadable" in r.stdout, r.stdout


def test_a_corrupt_results_file_makes_figures_exit_2(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.parquet").write_bytes(b"PAR1 half a file")
    r = _invoke(["figures", str(tmp_path / "r")])
    assert r.exit_code == 2 and "results.parquet" in r.stderr, r.output
    _no_traceback(r)


# ---------------------------------------------------------------------------------- one sweep per folder
def test_a_locked_folder_makes_a_second_sweep_exit_2(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from experiments.sweep import output_lock\n"
         f"with output_lock(Path({str(out)!r})):\n    print('locked', flush=True); time.sleep(120)"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (["sweep", str(spec)], ["sensitivity", str(tmp_path / "w" / "sens.toml")]):
            (tmp_path / "w" / "sens.toml").write_text(SENSITIVITY.format(name="t"))
            r = _invoke([*args, "--out", str(out), "--no-progress", "--workers", "1"])
            assert r.exit_code == 2, r.output
            _no_traceback(r)
            assert str(out) in r.stderr and f"pid {holder.pid}" in r.stderr, r.stderr
    finally:
        holder.kill()  # as kill -9: the kernel releases the lock
        holder.wait(timeout=30)
    s = sweep(spec, out, workers=1, progress=False)
    assert (s.done, s.skipped) == (0, 2)
    assert (out / LOCK).is_file()


def test_a_folder_holding_another_design_is_refused_and_a_grown_design_reuses_it(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(SWEEP.format(name="s").replace("weeks = 3", "weeks = 4"))
    r = _invoke(["sweep", str(other), "--out", str(out), "--no-progress", "--workers", "1"])
    assert r.exit_code == 2, r.output
    assert "another design" in r.stderr and str(out) in r.stderr and "s.toml" in r.stderr, r.stderr
    assert len(list((out / RUNS).glob("*.parquet"))) == 2
    # more seeds: the folder's runs are all part of the new design, so they are reused, with a note
    grown = tmp_path / "grown.toml"
    grown.write_text(SWEEP.format(name="s").replace("seeds = [1, 2]", "seeds = [1, 2, 3]"))
    old_fp = json.loads((out / "manifest.json").read_text())["spec_fingerprint"]
    s = sweep(grown, out, workers=1, progress=False)
    assert (s.done, s.skipped) == (1, 2)
    assert any("spec changed" in n for n in s.notes), s.notes
    assert (out / f"manifest-{old_fp}.json").is_file(), "the previous manifest is kept"


# ------------------------------------------------------------------------------------------- umask
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"x")
        assert (tmp_path / "f.bin").stat().st_mode & 0o777 == mode
    finally:
        os.umask(old)


@pytest.mark.parametrize("writer", ["bytes", "json", "parquet"])
def test_every_atomic_writer_honours_the_umask(tmp_path, writer):
    from experiments import run as R

    write = {"bytes": lambda p: R.atomic_write_bytes(p, b"x"), "json": lambda p: R.atomic_write_json({"a": 1}, p),
             "parquet": lambda p: R.atomic_write_parquet(pd.DataFrame({"a": [1]}), p)}[writer]
    old = os.umask(0o027)
    try:
        write(tmp_path / "new" / "f")  # a folder it creates too
        write(tmp_path / "new" / "f")  # and over a file that exists
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "f").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("mask", [0o077, 0o002])
def test_run_and_figures_files_honour_the_umask(tmp_path, mask):
    """What ``ree run`` (one seed and several) and ``ree figures`` write, Parquet, JSON and images alike."""
    old = os.umask(mask)
    try:
        for args in (["--seed", "1"], ["--seeds", "1-2", "--workers", "1", "--no-progress"]):
            out = tmp_path / args[0].strip("-")
            assert _invoke(["run", "baseline", "--weeks", "2", "--out", str(out), *args]).exit_code == 0
        r = _invoke(["figures", str(tmp_path), "--formats", "png,svg", "--kind", "price_paths", "--no-progress"])
        assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".parquet", ".json", ".png", ".svg"}
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
    for d in [p for p in tmp_path.rglob("*") if p.is_dir()]:
        assert d.stat().st_mode & 0o777 == 0o777 & ~mask, d


def test_sweep_files_honour_the_umask(done_sweep):
    mask = P.umask()
    out = done_sweep / "out"
    for f in [*(out / RUNS).glob("*.parquet"), out / "manifest.json", out / "design.csv"]:
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f


def test_an_unreadable_manifest_is_named_and_rewritten_by_the_next_sweep(done_sweep, tmp_path):
    spec, out = _copy(done_sweep, tmp_path)
    (out / "manifest.json").write_text('{"runs": [')  # torn
    with pytest.raises(ConfigError, match="manifest.json: cannot read"):
        load_sweep(out)
    s = sweep(spec, out, workers=1, progress=False)
    assert (s.done, s.skipped) == (0, 2)
    assert load_sweep(out)["run_id"].nunique() == 2
