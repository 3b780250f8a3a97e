"""The README runs: every command and code example in README.md is exercised here ("Documentation runs").

README.md is parsed when the tests are collected; nothing of it is copied into this file, so the prose and
the measured numbers may change freely, and a new block or command is picked up as soon as it is written.
What is checked:

- fenced ``toml`` blocks: a block headed ``# <path>`` parses to the same TOML as that file; any other is a
  scenario and passes ``ree check``;
- fenced ``python`` blocks run for real in a temporary folder (the EMA example on smaller sizes, said where);
  a trailing comment that lists numbers (``# 260, 267, 291 USD/kg``) or columns (``# columns RunId, ...``) is
  checked against what the statement produced;
- ``$ command`` blocks run in a temporary folder laid out like the repository (``experiments/specs/``) and
  print the README's lines, measured times (``in 4.3 s``) aside; a command "killed with kill -9 after N runs"
  is killed after N runs; the ``make run`` summary is reproduced by ``ree run``;
- every command mentioned (``ree``, ``python -m``, ``dask``, ``make``), in blocks or inline: the subcommand,
  module or target exists and every option shown (also options named in the prose that follows it) is in its
  ``--help``; the ``ree`` synopsis matches the app (subcommands both ways, arguments, defaults shown);
- the golden, dask, benchmark and browser-test commands, without rewriting ``tests/golden`` or opening a
  browser;
- the tables: validation targets = ``experiments.validate.TARGETS`` (measured medians are not recomputed),
  calibrated rates = ``model.params.Behaviour`` / policy defaults, shipped scenarios = ``ree scenarios``;
- dotted override keys, files, modules, test names and policy classes the README names exist and are
  accepted.

Not run, because they are heavy or rewrite files: ``make golden`` and the full ``golden --check`` (baseline
stands for every scenario, on a copy of tests/golden), ``ree sensitivity`` (352 runs; its spec, run count,
options and output names are checked), ``make run/test/bench/validate/figures/app`` (``make -n`` only), a real
Dask cluster and the browser (tests/experiments and tests/browser do those). Measured figures (timings,
validation medians, the classroom demos) are read, not recomputed.

Runs that take more than a few seconds are marked ``slow`` (``make test`` runs them; ``make test-fast`` not).
Nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from experiments.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINES = README.read_text().splitlines()
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
       "COLUMNS": "200", "NO_COLOR": "1", "MPLBACKEND": "Agg"}
COMMAND_WORDS = ("ree", "make", "python", ".venv/bin/python", "dask")
EXECUTABLES = {"ree": str(BIN / "ree"), "python": sys.executable, ".venv/bin/python": sys.executable,
               "dask": str(BIN / "dask")}
TIMEOUT = 600


# ================================================================================================ README parsing
@dataclass(frozen=True)
class Block:
    """A fenced block: its language tag and lines, ``line`` = README line of its first content line."""

    lang: str
    line: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def _blocks() -> list[Block]:
    out, lang, start, buf = [], None, 0, []
    for i, line in enumerate(LINES, 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, buf = line[3:].strip(), i + 1, []
            else:
                out.append(Block(lang, start, tuple(buf)))
                lang = None
        elif lang is not None:
            buf.append(line)
    assert lang is None, "README.md: a fenced block is not closed"
    return out


BLOCKS = _blocks()
_IN_BLOCK = {b.line + k for b in BLOCKS for k in range(-1, len(b.lines) + 1)}
PROSE = [("" if i in _IN_BLOCK else line) for i, line in enumerate(LINES, 1)]  # same line numbers, blocks blank


def _spans() -> list[tuple[int, str]]:
    """Inline code spans outside fenced blocks, with their README line."""
    return [(i, m.group(1)) for i, line in enumerate(PROSE, 1) for m in re.finditer(r"`([^`]+)`", line)]


SPANS = _spans()


def _table(header_start: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of the Markdown table whose header line starts with ``header_start``: (line, {column: cell})."""
    starts = [i for i, line in enumerate(PROSE) if line.startswith(header_start)]
    assert len(starts) == 1, f"README.md: expected one table headed {header_start!r}, found {len(starts)}"
    i = starts[0]
    header = [c.strip() for c in PROSE[i].strip().strip("|").split("|")]
    rows = []
    for j in range(i + 2, len(PROSE)):
        if not PROSE[j].startswith("|"):
            break
        cells = [c.strip() for c in PROSE[j].strip().strip("|").split("|")]
        assert len(cells) == len(header), f"README.md:{j + 1}: {len(cells)} cells, the header has {len(header)}"
        rows.append((j + 1, dict(zip(header, cells, strict=True))))
    return rows


def _strip_comment(line: str) -> str:
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def _is_command(text: str) -> bool:
    return text.split(" ", 1)[0] in COMMAND_WORDS


# ------------------------------------------------------------------------------------------- commands mentioned
@dataclass(frozen=True)
class Mention:
    """A command the README shows (in a block or inline), with the options the prose names after it."""

    line: int
    text: str
    prose_options: tuple[str, ...] = ()

    @property
    def tokens(self) -> list[str]:
        return shlex.split(re.sub(r"[\[\]|]", " ", self.text))

    @property
    def options(self) -> list[str]:
        own = [t.split("=", 1)[0] for t in self.tokens if t.startswith("--")]
        return own + [o.split()[0] for o in self.prose_options]


def _mentions() -> list[Mention]:
    events: list[tuple[int, int, str]] = []  # (line, order within line, text)
    for b in BLOCKS:
        if b.lang in ("", "console", "sh", "bash", "shell"):
            for k, raw in enumerate(b.lines):
                line = raw[2:] if raw.startswith("$ ") else raw
                for part in _strip_comment(line).split("&&"):
                    if _is_command(part.strip()):
                        events.append((b.line + k, 0, part.strip()))
    for n, (i, span) in enumerate(SPANS):
        for part in span.split("&&"):
            part = part.strip()
            if _is_command(part) or part.startswith("--"):
                events.append((i, n + 1, part))
    events.sort()
    mentions: list[Mention] = []
    for line, _, text in events:
        if text.startswith("--"):
            assert mentions, f"README.md:{line}: option `{text}` before any command"
            last = mentions[-1]
            mentions[-1] = Mention(last.line, last.text, (*last.prose_options, text))
        else:
            mentions.append(Mention(line, text))
    return mentions


MENTIONS = _mentions()


def _mentions_of(word: str) -> list[Mention]:
    return [m for m in MENTIONS if m.text.split(" ", 1)[0] == word]


# ================================================================================================ helpers
def run(cmd: str | list[str], cwd: Path = ROOT, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Run a README command line as a user would (``ree`` = the venv's console script; ``python`` = this
    interpreter), with this checkout's packages first on the path."""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    argv[0] = EXECUTABLES.get(argv[0], argv[0])
    return subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _show(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}"


def _is_progress(line: str) -> bool:
    return "\r" in line or bool(re.search(r"\d+%\|", line)) or "it/s]" in line


def printed(proc: subprocess.CompletedProcess) -> list[str]:
    """What the user sees: stdout, then stderr without progress bars; trailing blank lines dropped."""
    lines = proc.stdout.splitlines() + [x for x in proc.stderr.splitlines() if x.strip() and not _is_progress(x)]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def measured(lines: list[str]) -> list[str]:
    """Lines with measured durations ("in 4.3 s") replaced: they differ legitimately from run to run."""
    return [re.sub(r"\bin \d+(?:\.\d+)? s\b", "in <seconds> s", x.rstrip()) for x in lines]


def same_lines(expected: list[str], actual: list[str], where: str) -> None:
    exp, act = measured(expected), measured(actual)
    if exp != act:
        import difflib

        diff = "\n".join(difflib.unified_diff(exp, act, "README", "actual", lineterm=""))
        pytest.fail(f"{where}: the command prints something else than the README shows:\n{diff}")


@functools.cache
def ree_command(sub: str):
    return typer.main.get_command(app).commands.get(sub)  # type: ignore[attr-defined]


@functools.cache
def ree_help(sub: str) -> str:
    res = CliRunner().invoke(app, [sub, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert res.exit_code == 0, f"ree {sub} --help: exit {res.exit_code}\n{res.output}"
    return res.output


@functools.cache
def command_help(*argv: str) -> str:
    proc = run([*argv, "--help"], timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)} --help: {_show(proc)}"
    return proc.stdout + proc.stderr


def has_option(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def _placeholder(value: str) -> bool:
    """``N``, ``DIR``, ``local:N``, ``tcp://HOST:PORT``: a metavariable, not a value to take literally."""
    return any(c.isupper() for c in value)


# ================================================================================================ 1. toml blocks
TOML_BLOCKS = [b for b in BLOCKS if b.lang == "toml"]


def _headed_file(block: Block) -> Path | None:
    m = re.fullmatch(r"#\s*(\S+)\s*", block.lines[0]) if block.lines else None
    return ROOT / m.group(1) if m and (ROOT / m.group(1)).is_file() else None


def test_the_readme_has_the_kinds_of_examples_checked_here():
    kinds = {b.lang for b in BLOCKS}
    assert {"toml", "python", ""} <= kinds, kinds
    assert any(x.startswith("$ ") for b in BLOCKS for x in b.lines), "no `$ command` block found"
    assert _mentions_of("ree") and _mentions_of("make"), "no ree/make commands found"


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=lambda b: b.where)
def test_toml_block(block, tmp_path):
    data = tomllib.loads(block.text)
    path = _headed_file(block)
    if path is not None:  # "# experiments/specs/demo.toml": the block is that file
        assert data == tomllib.loads(path.read_text()), (
            f"{block.where}: the block headed {path.relative_to(ROOT)} differs from the file")
        return
    scenario = tmp_path / "example.toml"
    scenario.write_text(block.text)
    proc = run(["ree", "check", str(scenario)], cwd=tmp_path)
    assert proc.returncode == 0, f"{block.where}: `ree check` on the example scenario: {_show(proc)}"
    assert proc.stdout.startswith("ok: "), _show(proc)


# ================================================================================================ 2. python blocks
PY_BLOCKS = [b for b in BLOCKS if b.lang == "python"]

# The EMA example as written runs 100 scenarios x 4 policies of 104 weeks (~4 minutes). Substituted here,
# and only here: scenarios=8, policies=2 and weeks=52 (16 runs), and PRIM's threshold (`outcome > 300`):
# few if any of 16 short runs reach the documented US$300, and PRIM needs cases of interest; the lower
# quartile of the outcome makes 3/4 of the runs of interest, so the first box already has density >= 0.6
# and the README's selection line (density >= 0.6, widest coverage) finds a box.
EMA_SUBSTITUTIONS = [
    (r"\bscenarios=\d+", "scenarios=8", "perform_experiments(scenarios=...)"),
    (r"\bpolicies=\d+", "policies=2", "perform_experiments(policies=...)"),
    (r"(make_model\([^)]*\bweeks=)\d+", r"\g<1>52", "make_model(weeks=...)"),
    (r"(outcomes\[[^\]]+\])\s*>\s*\d+(?:\.\d+)?", r"\1 > _readme_threshold(\1)", "the PRIM threshold"),
]


def _needs_sweep(block: Block) -> bool:
    return "load_sweep(" in block.text


def _is_ema(block: Block) -> bool:
    return "perform_experiments(" in block.text


def _py_param(block: Block):
    slow = _needs_sweep(block) or _is_ema(block)
    return pytest.param(block, id=block.where, marks=[pytest.mark.slow] if slow else [])


def exec_block(block: Block, cwd: Path, monkeypatch, substitutions=()) -> tuple[str, dict]:
    """Execute a README python block in ``cwd``; tracebacks point at README lines."""
    src = block.text
    for pattern, repl, what in substitutions:
        src, n = re.subn(pattern, repl, src)
        assert n >= 1, f"{block.where}: found nothing to substitute for {what} (pattern {pattern!r})"
    monkeypatch.chdir(cwd)
    ns: dict = {"__name__": "__readme__", "_readme_threshold": lambda y: float(np.quantile(y, 0.25))}
    code = compile("\n" * (block.line - 1) + src, str(README), "exec")
    exec(code, ns)  # noqa: S102 - running the README's example is the point
    return src, ns


def _commented_assignments(block: Block, pattern: str):
    """``(statement, match)`` for each assignment to a name whose last line ends in a comment matching
    ``pattern``."""
    for stmt in ast.parse(block.text).body:
        m = re.search(pattern, block.lines[stmt.end_lineno - 1])
        if m and isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            yield stmt, m


def _number_comments(block: Block, ns: dict) -> None:
    """A statement ending in ``# 260, 267, 291 USD/kg`` must produce those numbers (to the digits shown)."""
    for stmt, m in _commented_assignments(block, r"#\s*(-?\d[\d.]*(?:\s*,\s*-?\d[\d.]*)+)\b"):
        shown = [x.strip() for x in m.group(1).split(",")]
        got = np.asarray(ns[stmt.targets[0].id], dtype=float).ravel()
        assert len(got) == len(shown), f"README.md:{block.line + stmt.end_lineno - 1}: {len(got)} values, shown {shown}"
        digits = [len(x.split(".")[1]) if "." in x else 0 for x in shown]
        assert [round(float(v), d) for v, d in zip(got, digits, strict=True)] == [float(x) for x in shown], (
            f"README.md:{block.line + stmt.end_lineno - 1}: the comment says {', '.join(shown)}, "
            f"the code gives {', '.join(f'{v:.{d}f}' for v, d in zip(got, digits, strict=True))}")


def _column_comments(block: Block, ns: dict) -> None:
    """A statement ending in ``# columns A, B, parameters, ...`` gives a table with those columns
    (``parameters`` = the keys of the parameter dict passed in the call)."""
    for stmt, m in _commented_assignments(block, r"#\s*columns\s+(.+)$"):
        df = ns[stmt.targets[0].id]
        wanted = []
        for tok in (t.strip() for t in m.group(1).split(",")):
            if tok in ("...", "…", ""):
                continue
            if tok == "parameters":
                calls = [n for n in ast.walk(stmt.value) if isinstance(n, ast.Call) and n.args
                         and isinstance(n.args[0], ast.Dict)]
                assert calls, f"README.md:{block.line + stmt.end_lineno - 1}: no parameter dict in the call"
                wanted += [k.value for k in calls[0].args[0].keys if isinstance(k, ast.Constant)]
            else:
                wanted.append(tok)
        missing = [c for c in wanted if c not in df.columns]
        assert not missing, (f"README.md:{block.line + stmt.end_lineno - 1}: the comment names columns "
                             f"{missing} that the result lacks; it has {list(df.columns)[:20]}...")


@pytest.mark.parametrize("block", [_py_param(b) for b in PY_BLOCKS])
def test_python_block(block, tmp_path, monkeypatch, request):
    if _needs_sweep(block):
        # the demo sweep, made by the README's own `$ ree sweep experiments/specs/demo.toml` commands
        # (see `console`), in a folder laid out like the repository: the block's paths work unchanged
        cwd = request.getfixturevalue("console").workspace
        assert (cwd / "results" / "sweeps").is_dir(), "the README's sweep commands made no sweep"
    else:
        cwd = tmp_path
    subs = EMA_SUBSTITUTIONS if _is_ema(block) else ()
    _, ns = exec_block(block, cwd, monkeypatch, subs)
    if not subs:  # documented results hold for the example as written, not for a smaller one
        _number_comments(block, ns)
    _column_comments(block, ns)


def test_ema_prose_matches_the_adapter():
    """The text after the EMA example: its run count, outcome names and variable names."""
    from experiments.ema import ModelFunction, make_model
    from model import policies

    block = next(b for b in PY_BLOCKS if _is_ema(b))
    after = "\n".join(PROSE[block.line + len(block.lines): block.line + len(block.lines) + 12])
    sizes = {k: int(v) for k, v in re.findall(r"\b(scenarios|policies)=(\d+)", block.text)}
    m = re.search(r"these (\d+) runs", after)
    if m and {"scenarios", "policies"} <= set(sizes):
        assert int(m.group(1)) == sizes["scenarios"] * sizes["policies"], (
            f"README.md:{block.line}: 'these {m.group(1)} runs' but the example asks for "
            f"{sizes['scenarios']} x {sizes['policies']}")
    model = make_model("baseline", weeks=4)
    outcomes = {o.name for o in model.outcomes}
    m = re.search(r"Outcomes are scalars\s*\((.*?)\)\s*and weekly series\s*\((.*?)\)", after, re.S)
    if m:
        named = [x for x in re.findall(r"`([^`]+)`", m.group(1) + m.group(2))]
        assert named and set(named) <= outcomes, f"outcomes named {named}; the adapter has {sorted(outcomes)}"
    for key in re.findall(r'`"(policy:[^"`]+)"`', after):
        kind, actor, field = key.split(":")[1:]
        default = getattr(policies, kind).model_fields[field].default
        sc, _ = ModelFunction("baseline", weeks=4).scenario_for({key: default})
        sc.check()  # the added policy validates against the world


# ================================================================================================ 3b. $ commands
@dataclass(frozen=True)
class Console:
    line: int
    command: str
    expected: tuple[str, ...]
    kill_after: int | None  # "killed with kill -9 after N runs"

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def _console() -> list[Console]:
    out = []
    for b in BLOCKS:
        k = 0
        while k < len(b.lines):
            if b.lines[k].startswith("$ "):
                raw = b.lines[k][2:]
                j = k + 1
                while j < len(b.lines) and b.lines[j].strip() and not b.lines[j].startswith("$ "):
                    j += 1
                m = re.search(r"killed with kill -9 after (\d+) runs?", raw)
                out.append(Console(b.line + k, _strip_comment(raw), tuple(b.lines[k + 1:j]),
                                   int(m.group(1)) if m else None))
                k = j
            else:
                k += 1
    return out


CONSOLE = _console()
SHOWN = [c for c in CONSOLE if c.expected]  # commands whose output the README shows


def _bad_toml(expected: tuple[str, ...]) -> str:
    """A scenario file with the problems the README lists ("FIELD: ... (got 'X')", "KEY: unknown key")."""
    lines = ['name = "bad"']
    for x in expected[1:]:
        m = re.fullmatch(r"\s+(\w+): (.*)", x)
        assert m, f"cannot make an input for the documented problem line {x!r}"
        key, msg = m.groups()
        got = re.search(r"\(got '([^']*)'\)", msg)
        if "unknown key" in msg:
            lines.append(f"{key} = 1")
        elif got:
            lines.append(f'{key} = "{got.group(1)}"')
        else:
            pytest.fail(f"cannot make an input for the documented problem line {x!r}")
    return "\n".join(lines) + "\n"


@dataclass
class Session:
    workspace: Path
    results: dict[int, subprocess.CompletedProcess]
    killed: dict[int, dict]


def _kill_after(argv: str, cwd: Path, n: int) -> tuple[subprocess.CompletedProcess, dict]:
    """Start a sweep, kill -9 its whole process group once ``n`` runs are on disk, then leave exactly the
    ``n`` earliest runs (the kill lands a moment after the n-th file; a later one may have finished too)."""
    args = shlex.split(argv)
    args[0] = EXECUTABLES.get(args[0], args[0])
    proc = subprocess.Popen(args, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    runs = lambda: sorted(cwd.glob("results/sweeps/*/runs/*.parquet"), key=lambda p: p.stat().st_mtime)  # noqa: E731
    deadline = time.monotonic() + TIMEOUT
    while len(runs()) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    finished_first = proc.poll() is not None
    if not finished_first:
        os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    done = runs()
    for extra in done[n:]:
        extra.unlink()
    info = {"finished_before_kill": finished_first, "runs_at_kill": len(done), "returncode": proc.returncode}
    return subprocess.CompletedProcess(args, proc.returncode, out, err), info


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Session:
    """Every ``$ command`` of the README, in README order, in one folder laid out like the repository
    (``experiments/specs/`` copied; the README's relative paths and outputs work unchanged)."""
    ws = tmp_path_factory.mktemp("readme_console")
    shutil.copytree(ROOT / "experiments" / "specs", ws / "experiments" / "specs")
    session = Session(ws, {}, {})
    for c in CONSOLE:
        for path in re.findall(r"(\S+\.toml)\b", c.command):
            if not (ws / path).exists() and c.expected and c.expected[0].startswith("error: "):
                (ws / path).write_text(_bad_toml(c.expected))
        if c.kill_after is not None:
            session.results[c.line], session.killed[c.line] = _kill_after(c.command, ws, c.kill_after)
        elif c.expected:
            session.results[c.line] = run(c.command, cwd=ws)
    return session


@pytest.mark.slow
@pytest.mark.parametrize("c", SHOWN, ids=lambda c: f"{c.where} {c.command}")
def test_console_example_prints_what_the_readme_shows(console, c):
    proc = console.results[c.line]
    actual = printed(proc)
    same_lines(list(c.expected), actual, f"{c.where} `{c.command}`")
    if c.expected[0].startswith("error: "):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, _show(proc)
    else:
        assert proc.returncode == 0, _show(proc)


@pytest.mark.slow
@pytest.mark.parametrize("c", [c for c in CONSOLE if c.kill_after], ids=lambda c: c.where)
def test_killed_sweep_leaves_finished_runs(console, c):
    info = console.killed[c.line]
    assert not info["finished_before_kill"], f"{c.where}: the sweep ended before {c.kill_after} runs: {info}"
    assert info["returncode"] == -signal.SIGKILL, info
    assert info["runs_at_kill"] >= c.kill_after, info
    # after the resume (the next command), nothing half-written is left in runs/
    leftovers = [p.name for p in console.workspace.glob("results/sweeps/*/runs/*") if p.suffix != ".parquet"]
    assert not leftovers, f"temporary files left after the resume: {leftovers}"


@pytest.mark.slow
def test_sweep_folder_is_laid_out_as_documented(console):
    """The "What it writes" tree, design.csv's and the manifest's documented fields, and the inline
    ``pd.read_parquet(...)`` of the runs folder."""
    from experiments.sweep import read_run_meta

    tree = next(b for b in BLOCKS if b.lines and b.lines[0].rstrip().endswith("/")
                and any("runs/" in x for x in b.lines))
    base = console.workspace / tree.lines[0].strip()
    assert base.is_dir(), f"{tree.where}: no {tree.lines[0].strip()} after the README's sweep commands"
    varied = list(tomllib.loads((ROOT / "experiments/specs/demo.toml").read_text()).get("grid", {}))
    for k, raw in enumerate(tree.lines[1:], 1):
        entry, _, comment = raw.strip().partition("#")
        entry, comment = entry.strip(), comment.strip()
        where = f"README.md:{tree.line + k}"
        if "<" in entry:  # runs/<scenario>_s<seed>_<hash>.parquet, failed/<key>.json
            folder, pattern = entry.rsplit("/", 1)
            assert (base / folder).is_dir(), f"{where}: no {folder}/ in the sweep folder"
            rx = re.compile("".join(".+?" if re.fullmatch(r"<\w+>", p) else re.escape(p)
                                    for p in re.split(r"(<\w+>)", pattern)))
            files = list((base / folder).iterdir())
            assert all(rx.fullmatch(f.name) for f in files), (where, [f.name for f in files][:5])
            if folder == "runs":
                assert len(files) == len(pd.read_csv(base / "design.csv")), where
                for f in files[:3]:
                    df = pd.read_parquet(f)
                    if "run_id = key" in comment:
                        assert set(df["run_id"]) == {f.stem}, where
                    if "provenance" in comment:
                        assert read_run_meta(f).get("key") == f.stem, where
        else:
            assert (base / entry).exists(), f"{where}: no {entry} in the sweep folder"
            if entry == "design.csv":
                cols = list(pd.read_csv(base / entry).columns)
                for tok in (t.strip() for t in comment.split(",")):
                    want = varied if "varied parameter" in tok else [tok] if re.fullmatch(r"\w+", tok) else []
                    assert set(want) <= set(cols), f"{where}: design.csv lacks {tok!r}; columns {cols}"
            if entry == "manifest.json":
                keys = set(json.loads((base / entry).read_text()))
                for tok in (t.strip() for t in comment.split(",") if t.strip()):
                    first = tok.split()[0]
                    assert {re.sub(r"\W+", "_", tok), first, first + "s"} & keys, (
                        f"{where}: the manifest has nothing for {tok!r}; keys {sorted(keys)}")
    for _, span in SPANS:
        if span.startswith("pd.read_parquet("):
            cwd = os.getcwd()
            os.chdir(console.workspace)
            try:
                df = eval(span, {"pd": pd})  # noqa: S307 - the README's one-liner
            finally:
                os.chdir(cwd)
            assert len(df) == sum(len(pd.read_parquet(f)) for f in (base / "runs").glob("*.parquet")), span


@pytest.mark.slow
def test_figures_options_shown_work(console, tmp_path):
    """"Options: `--formats png`, `--kind shortage`, `--out DIR`": together, on the demo sweep."""
    shown = [m for m in MENTIONS if m.text.startswith("ree figures") and m.prose_options]
    assert shown, "no options named for `ree figures`"
    sweep = next(p for p in (console.workspace / "results" / "sweeps").iterdir() if (p / "runs").is_dir())
    argv = ["ree", "figures", str(sweep)]
    for option in (o for m in shown for o in m.prose_options):
        opt, *value = option.split()
        argv += [opt, *(str(tmp_path / "figs") if _placeholder(v) else v for v in value)]
    proc = run(argv, cwd=console.workspace)
    assert proc.returncode == 0, _show(proc)
    if "--out" in argv:
        assert any((tmp_path / "figs").rglob("*.png")), _show(proc)


# ------------------------------------------------------------------------------------- 3c. the make-run summary
def _summary_block() -> Block:
    found = [b for b in BLOCKS if b.lang == "" and b.lines and re.match(r"\S+ \(seed \d+\): \d+ weeks", b.lines[0])]
    assert len(found) == 1, "expected one `make run` summary block ('NAME (seed N): W weeks, ...')"
    return found[0]


@pytest.mark.slow
def test_make_run_summary_is_what_ree_run_prints(tmp_path):
    """``make run`` = ``ree run-all`` prints, per scenario, what ``ree run NAME`` prints (first seed)."""
    from model.scenario import load_scenario

    block = _summary_block()
    name, seed = re.match(r"(\S+) \(seed (\d+)\)", block.lines[0]).groups()
    assert load_scenario(name).seeds[0] == int(seed), f"{block.where}: `make run` runs the first seed"
    proc = run(["ree", "run", name], cwd=tmp_path)  # in an empty folder: writes results/NAME/, as make run does
    assert proc.returncode == 0, _show(proc)
    same_lines(list(block.lines), printed(proc), f"{block.where} (`make run` summary)")
    row = next(r for _, r in _table("| command | what it does |") if r["command"] == "`make run`")
    for span in re.findall(r"`([^`]+)`", row["what you get"]):
        path = span.replace("<scenario>", name)
        path = path if "/" in path else f"results/{name}/{path}"
        assert (tmp_path / path).is_file(), f"`make run` should give {span}; no {path}"


# ------------------------------------------------------------------------------------- 3a. the ree synopsis
def _synopsis() -> Block:
    found = [b for b in BLOCKS if b.lang == "" and b.lines and all(x.startswith("ree ") for x in b.lines)]
    assert len(found) == 1, "expected one block listing the `ree` subcommands"
    return found[0]


def test_ree_synopsis_matches_the_command_line():
    block = _synopsis()
    group = typer.main.get_command(app)
    listed = []
    for k, raw in enumerate(block.lines):
        where = f"README.md:{block.line + k}"
        line = _strip_comment(raw)
        tokens = re.findall(r"\[[^\]]*\]|\S+", line)[1:]
        sub = tokens.pop(0)
        listed.append(sub)
        cmd = ree_command(sub)
        assert cmd is not None, f"{where}: `ree {sub}` is no subcommand; there are {sorted(group.commands)}"
        help_text = ree_help(sub)
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        shown_args = []  # (name, required)
        for tok in tokens:
            inner = tok[1:-1] if tok.startswith("[") else tok
            if "--" in inner:
                for piece in inner.split("|"):
                    opt, *value = piece.split()
                    assert has_option(help_text, opt), f"{where}: `ree {sub} --help` has no {opt}"
                    if value and not _placeholder(value[0]):  # a default shown: [--seeds 5]
                        param = next(p for p in cmd.params if opt in p.opts)
                        assert str(param.default) == value[0], (
                            f"{where}: the synopsis shows {opt} {value[0]}; the default is {param.default}")
            else:
                shown_args.append((inner, not tok.startswith("[")))
        assert len(shown_args) == len(args), f"{where}: shows {shown_args}; `ree {sub}` takes {[a.name for a in args]}"
        for (shown, required), a in zip(shown_args, args, strict=True):
            assert required == a.required, (
                f"{where}: the synopsis shows {shown} as {'required' if required else 'optional ([...])'}; `ree {sub}` "
                f"makes it {'required' if a.required else f'optional (default {a.default}): write [{shown}]'}")
    assert sorted(listed) == sorted(group.commands), (
        f"{block.where}: the synopsis lists {sorted(listed)}; `ree` has {sorted(group.commands)}")


# ------------------------------------------------------------------------------------- every command mentioned
CHECKED = [m for m in MENTIONS if m.text.split(" ", 1)[0] in ("ree", "python", ".venv/bin/python", "dask")
           and len(m.tokens) > 1]


@functools.cache
def dry_run(spec: str) -> subprocess.CompletedProcess:
    """``ree sweep SPEC --dry-run`` (reads, writes nothing) into a folder that does not exist."""
    return run(["ree", "sweep", spec, "--dry-run", "--out", str(Path(tempfile.gettempdir()) / "ree-readme-nowhere")])


@pytest.mark.parametrize("m", CHECKED, ids=lambda m: f"README.md:{m.line} {m.text[:60]}")
def test_command_and_options_exist(m):
    tokens = m.tokens
    word = tokens[0]
    if word == "ree":
        if len(tokens) == 1:
            return
        sub = tokens[1]
        assert ree_command(sub) is not None, f"README.md:{m.line}: `ree {sub}` is no subcommand"
        help_text = ree_help(sub)
        label = f"ree {sub}"
        spec = next((t for t in tokens[2:] if t.endswith(".toml") and not _placeholder(t)), None)
        if sub == "sweep" and spec:  # the spec is valid and plans its runs
            proc = dry_run(spec)
            assert proc.returncode == 0, f"README.md:{m.line}: {_show(proc)}"
        for t in tokens:
            if t.startswith("local:") and not _placeholder(t):
                from experiments.sweep import parse_cluster

                parse_cluster(t)
    elif word in ("python", ".venv/bin/python"):
        module = tokens[tokens.index("-m") + 1]
        if module == "pytest":  # test_browser_test_selection_exists
            return
        help_text, label = command_help("python", "-m", module), f"python -m {module}"
    else:  # dask SUBCOMMAND
        help_text, label = command_help("dask", tokens[1]), f"dask {tokens[1]}"
    missing = [o for o in m.options if not has_option(help_text, o)]
    assert not missing, f"README.md:{m.line}: `{label} --help` lists no {missing}"


# ------------------------------------------------------------------------------------- 3d. make targets
def _make_invocations() -> list[tuple[int, str]]:
    seen: dict[str, int] = {}
    for m in _mentions_of("make"):
        seen.setdefault(" ".join(m.tokens[1:]), m.line)
    return [(line, args) for args, line in seen.items()]


MAKE = _make_invocations()


@functools.cache
def make_n(args: str) -> str:
    proc = subprocess.run(["make", "-n", *shlex.split(args)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"make -n {args}: {_show(proc)}"
    return proc.stdout.replace(".venv/bin/", "").replace("\\\n", " ")


@pytest.mark.parametrize("line,args", MAKE, ids=[f"README.md:{line} make {a}" for line, a in MAKE])
def test_make_target_exists(line, args):
    assert make_n(args).strip(), f"README.md:{line}: `make {args}` does nothing"


def test_make_targets_do_what_the_readme_says():
    text = "\n".join(PROSE)
    # the classroom view's address (host and port), and PORT=N
    for line, args in MAKE:
        if args.split()[0] != "app":
            continue
        port = re.search(r"\bPORT=(\d+)", args)
        if port:
            assert f"--port {port.group(1)}" in make_n(args), f"README.md:{line}: make {args}"
        else:
            url = re.search(r"http://([\d.]+|localhost):(\d+)", LINES[line - 1])
            assert url, f"README.md:{line}: no address next to `make app`"
            assert f"--host {url.group(1)} --port {url.group(2)}" in make_n(args), (
                f"README.md:{line}: `make app` serves on {url.group(0)}? {make_n(args)}")
    # "`make X` = `CMD`", "`make X` (or `CMD`", "`CMD` (or `make X`)", and "make X  # = CMD: ..." in blocks
    pairs = [(x, c) for x, c in re.findall(r"`make (\w+)` =\s*`([^`]+)`", text)]
    pairs += [(x, c) for x, c in re.findall(r"`make (\w+)` \(or `([^`]+)`", text)]
    pairs += [(x, c) for c, x in re.findall(r"`([^`]+)` \(or `make (\w+)`\)", text)]
    pairs += [(x, c.strip()) for b in BLOCKS for line in b.lines
              for x, c in re.findall(r"^make (\w+)\s+# = ([^:;]+)", line)]
    assert pairs, "no `make X` = `command` statements found"
    for target, cmd in pairs:
        cmd = cmd.replace(".venv/bin/", "")
        made = make_n(target)
        toks = cmd.split()
        head = " ".join(toks[:next((i for i, t in enumerate(toks) if t.startswith("--")), len(toks))])
        assert head in made, f"README: `make {target}` = `{cmd}`, but it runs: {made.strip()}"
        for i, t in enumerate(toks):  # each option is passed, or (ree) left at a default equal to the value shown
            if not t.startswith("--") or has_option(made, t):
                continue
            value = toks[i + 1] if i + 1 < len(toks) and not toks[i + 1].startswith("--") else None
            assert toks[0] == "ree" and value is not None, f"README: `make {target}` = `{cmd}`, but it runs: {made.strip()}"
            param = next(p for p in ree_command(toks[1]).params if t in p.opts)
            assert str(param.default) == value, f"README: `make {target}` = `{cmd}`: the default of {t} is {param.default}"
    # `make test`: ruff, then the test suite
    made = make_n("test")
    assert 0 <= made.find("ruff check") < made.find("-m pytest"), made


# ------------------------------------------------------------------------------------- (e, f) golden
@pytest.mark.slow
def test_golden_commands(tmp_path):
    """``ree golden --scenario baseline`` checks clean; ``python -m experiments.golden --check`` reports a
    difference (exit 1) and ``--update --scenario NAME`` rewrites one file, both on a copy (``--dir``):
    tests/golden is never rewritten. (The full ``--check`` runs every scenario; baseline stands for it.)"""
    golden = ROOT / "tests" / "golden"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in golden.glob("*.json")}
    block = next(b for b in BLOCKS if any(x.startswith("python -m experiments.golden") for x in b.lines))
    module_lines = [_strip_comment(x) for x in block.lines if x.startswith("python -m experiments.golden")]
    assert any("--check" in x for x in module_lines) and any("--update" in x for x in module_lines)

    proc = run(["ree", "golden", "--scenario", "baseline"])
    assert proc.returncode == 0, f"`ree golden --scenario baseline` against tests/golden: {_show(proc)}"

    copy = tmp_path / "golden"
    shutil.copytree(golden, copy)
    doc = json.loads((copy / "baseline.json").read_text())
    stats = doc["seeds"]["1"]["series"]["price/CN/Dy"]
    original = stats["mean"]
    stats["mean"] = original * 1.01
    (copy / "baseline.json").write_text(json.dumps(doc))
    other = {p.name: p.read_bytes() for p in copy.glob("*.json") if p.name != "baseline.json"}

    check = [x for x in module_lines if "--check" in x][0].replace("NAME", "baseline")
    if "--scenario" not in check:
        check += " --scenario baseline"
    proc = run(f"{check} --dir {copy}")
    assert proc.returncode == 1, f"`{check}` with one statistic changed should exit 1: {_show(proc)}"
    assert re.search(r"baseline seed 1 price/CN/Dy mean: golden [\d.]+, now [\d.]+", proc.stdout), (
        f"`{check}` should print scenario, seed, series, statistic, old -> new: {_show(proc)}")

    update = [x for x in module_lines if "--update" in x and "--scenario" in x][0].replace("NAME", "baseline")
    proc = run(f"{update} --dir {copy}")
    assert proc.returncode == 0, _show(proc)
    restored = json.loads((copy / "baseline.json").read_text())["seeds"]["1"]["series"]["price/CN/Dy"]["mean"]
    assert math.isclose(restored, original, rel_tol=1e-6), (restored, original)
    assert other == {p.name: p.read_bytes() for p in copy.glob("*.json") if p.name != "baseline.json"}, (
        "--scenario NAME rewrote other files")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in golden.glob("*.json")}
    assert after == before, "tests/golden changed"


# ------------------------------------------------------------------------------------- (h) browser test id
def test_browser_test_selection_exists():
    """``python -m pytest FILE -k EXPR -s`` selects at least one test (collected only: no browser)."""
    found = [m for m in MENTIONS if "-m pytest" in m.text]
    assert found, "no pytest command in the README"
    for m in found:
        args = m.tokens[m.tokens.index("pytest") + 1:]
        proc = run(["python", "-m", "pytest", *args, "--collect-only", "-q", "-o", "addopts=", "-p", "no:cacheprovider"])
        assert proc.returncode == 0, f"README.md:{m.line}: {_show(proc)}"
        assert re.search(r"::\w+", proc.stdout), f"README.md:{m.line}: `{m.text}` selects no test: {_show(proc)}"


# ------------------------------------------------------------------------------------- (i) benchmarks
def test_benchmarks_quick_run_writes_markdown(tmp_path):
    """``python -m benchmarks.run --quick --only a --markdown FILE`` runs and writes the table (no timing
    is checked)."""
    out = tmp_path / "b.md"
    proc = run(["python", "-m", "benchmarks.run", "--quick", "--only", "a", "--markdown", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, _show(proc)
    assert out.is_file() and any(x.startswith("|") for x in out.read_text().splitlines()), out.read_text()


# ------------------------------------------------------------------------------------- (5) sensitivity
def test_sensitivity_example_and_defaults():
    """``$ ree sensitivity  # default spec ..., Morris then Sobol`` (not run: hundreds of runs): the default
    spec, the method order, the run count the section states and the output names it gives."""
    from experiments import cli
    from experiments.sensitivity import Metric, load_spec, sample

    c = next(c for c in CONSOLE if c.command.split()[:2] == ["ree", "sensitivity"])
    raw = LINES[c.line - 1]
    default = ROOT / re.search(r"default spec (\S+?)[,\s]", raw).group(1)
    assert Path(cli._DEFAULT_SENSITIVITY_SPEC).resolve() == default.resolve(), raw
    spec = load_spec(default)
    order = re.search(r"(\w+) then (\w+)", raw)
    if order:
        assert [x.lower() for x in order.groups()] == list(spec.methods), (raw, spec.methods)
    start = next(i for i in range(c.line, 0, -1) if PROSE[i - 1].startswith("#"))
    end = next((i for i in range(c.line, len(PROSE)) if PROSE[i].startswith("#")), len(PROSE))
    section = "\n".join(PROSE[start:end])
    n = re.search(r"\((\d+) runs", section)
    if n:
        runs = sum(len(sample(spec, method)) for method in spec.methods) * len(spec.seeds)
        assert int(n.group(1)) == runs, f"the section says {n.group(1)} runs; the default spec makes {runs}"
    m = re.search(r"Outputs are (.*?)\n-", section, re.S)
    if m:
        for name in re.findall(r"`([^`]+)`", m.group(1)):
            if re.fullmatch(r"[a-z_]+(:[\w*]+)*", name):
                Metric.parse(name)


# ================================================================================================ 4. validation
def test_validation_table_matches_the_targets():
    from experiments.validate import TARGETS

    rows = _table("| target | scenario | source | band |")
    by_name = {t.name: t for t in TARGETS}
    names = [r["target"] for _, r in rows]
    assert len(names) == len(set(names)), "a target appears twice in the table"
    assert sorted(names) == sorted(by_name), (
        f"table only: {sorted(set(names) - set(by_name))}; TARGETS only: {sorted(set(by_name) - set(names))}")
    passing = 0
    for line, r in rows:
        t = by_name[r["target"]]
        where = f"README.md:{line} ({t.name})"
        assert r["scenario"] == t.scenario, f"{where}: scenario {r['scenario']!r}, TARGETS {t.scenario!r}"
        assert r["source"] == t.source, f"{where}: source {r['source']!r}, TARGETS {t.source!r}"
        m = re.fullmatch(r"\[(\S+), (\S+)\]\s*(.*)", r["band"])
        assert m, f"{where}: band {r['band']!r}"
        lo, hi, unit = float(m.group(1)), float(m.group(2)), m.group(3).strip()
        assert (lo, hi) == (t.lo, t.hi), f"{where}: band [{lo}, {hi}], TARGETS [{t.lo}, {t.hi}]"
        assert unit == t.unit, f"{where}: unit {unit!r}, TARGETS {t.unit!r}"
        if "public figure" in r:
            assert r["public figure"] == t.public, f"{where}: public figure {r['public figure']!r}, TARGETS {t.public!r}"
        median = float(r["model median [p10, p90]"].split()[0])  # measured: not recomputed, only read
        assert (lo <= median <= hi) == (r["pass"] == "pass"), f"{where}: median {median}, band [{lo}, {hi}], {r['pass']}"
        passing += r["pass"] == "pass"
    m = re.search(r"(\d+) of (\d+) targets pass", "\n".join(PROSE))
    if m:
        assert (int(m.group(1)), int(m.group(2))) == (passing, len(TARGETS)), (
            f"the README says {m.group(0)}; the table has {passing} passing of {len(TARGETS)} targets")


# ================================================================================================ 5. calibration
def test_calibration_table_states_the_defaults():
    from model import policies
    from model.params import Behaviour, load_world

    world = load_world().behaviour
    rows = _table("| rate | value | fixed by |")
    checked = 0
    for line, r in rows:
        names = re.findall(r"`([^`]+)`", r["rate"])
        if not names:
            continue
        numeric = re.fullmatch(r"\s*-?\d[\d.]*(\s*,\s*-?\d[\d.]*)*\s*", r["value"])
        values = [float(x) for x in r["value"].split(",")] if numeric else None
        if values is not None:
            assert len(values) == len(names), f"README.md:{line}: {len(names)} rates, {len(values)} values"
        for k, name in enumerate(names):
            where = f"README.md:{line}: `{name}`"
            if "." in name:  # Class.field: a policy's default
                cls, field = name.split(".")
                assert hasattr(policies, cls) and field in getattr(policies, cls).model_fields, f"{where}: no such field"
                default, effective = getattr(policies, cls).model_fields[field].default, None
            else:
                assert name in Behaviour.model_fields, f"{where}: not a field of model.params.Behaviour"
                default, effective = Behaviour.model_fields[name].default, getattr(world, name)
            if values is not None:
                assert math.isclose(default, values[k]), f"{where}: the table says {values[k]}, the default is {default}"
                if effective is not None:
                    assert math.isclose(effective, values[k]), (
                        f"{where}: the table says {values[k]}, the world file makes it {effective}")
                checked += 1
    assert checked, "no numeric rate checked in the calibration table"


def test_documented_policy_and_behaviour_defaults():
    """Prose like "`delay_weeks` (6)", "`approval_rate` (0.39, ...)" or "`demand_growth_per_year` = 0" states a
    field's default."""
    from model.params import Behaviour
    from model.policies import ExportControl

    found = 0
    text_all = "\n".join(PROSE)
    for name, value in (re.findall(r"`(\w+)` \((-?\d+(?:\.\d+)?)[,)]", text_all)
                        + re.findall(r"`(\w+)` =\s*(-?\d+(?:\.\d+)?)\b", text_all)):
        line = next(i for i, x in enumerate(PROSE, 1) if f"`{name}`" in x)
        for cls in (ExportControl, Behaviour):
            if name in cls.model_fields:
                default = cls.model_fields[name].default
                assert math.isclose(default, float(value)), (
                    f"README.md:{line}: `{name}` ({value}); {cls.__name__}.{name} defaults to {default}")
                found += 1
    assert found, "no `field` (value) statements found"


# ================================================================================================ 6. scenarios
def test_scenario_table_lists_the_shipped_scenarios():
    from model.scenario import list_scenarios

    rows = _table("| scenario | what happens |")
    table = [re.fullmatch(r"`(\w+)`", r["scenario"]).group(1) for _, r in rows]
    res = CliRunner().invoke(app, ["scenarios"])
    assert res.exit_code == 0, res.output
    listed = [x.split()[0] for x in res.output.splitlines() if x.strip()]
    assert listed == list_scenarios()
    assert sorted(table) == sorted(listed), (
        f"README only: {sorted(set(table) - set(listed))}; `ree scenarios` only: {sorted(set(listed) - set(table))}")


# ================================================================================================ 7. override keys
WORLD_KEYS = sorted({m for _, span in SPANS for m in re.findall(r'^"([A-Za-z_]\w*(?:\.[\w-]+)+)"$', span)})


def _current(raw, key: str):
    """The value a dotted key names in the loaded world (list entries by id or name)."""
    node = raw
    for part in key.split("."):
        if isinstance(node, list):
            node = next((x for x in node if part in (x.get("id"), x.get("name"))), None)
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            pytest.fail(f"the README names the override key {key!r}; the world has no {part!r} there")
    return node


@pytest.mark.parametrize("key", WORLD_KEYS)
def test_override_key_is_accepted(key):
    """A dotted key the README names is accepted by the sweep's validator (at its current value), and the
    same key misspelt is rejected (so acceptance means something)."""
    from experiments.sweep import parse_spec, plan
    from model.params import ConfigError, load_world

    value = _current(load_world().model_dump(), key)
    spec = parse_spec({"scenario": "baseline", "weeks": 1, "seeds": [1], "grid": {key: [value]}})
    assert len(plan(spec)) == 1
    with pytest.raises(ConfigError):
        plan(parse_spec({"scenario": "baseline", "weeks": 1, "seeds": [1], "grid": {key + "_x": [value]}}))


def test_readme_names_override_keys():
    assert len(WORLD_KEYS) >= 2, WORLD_KEYS


# ================================================================================================ files and names
def test_layout_lists_existing_files():
    block = next(b for b in BLOCKS if b.lines and b.lines[0].startswith("pyproject.toml"))
    folder = ROOT
    for k, raw in enumerate(block.lines):
        where = f"README.md:{block.line + k}"
        line = re.sub(r"`[^`]*`|\([^)]*\)", " ", _strip_comment(raw))
        tokens = line.split()
        if not raw.startswith(" ") and tokens and tokens[0].endswith("/"):
            folder, tokens = ROOT / tokens[0], tokens[1:]
            assert folder.is_dir(), f"{where}: no folder {folder.relative_to(ROOT)}"
        elif not raw.startswith(" "):
            folder = ROOT
        for tok in tokens:
            if re.fullmatch(r"[\w.-]+(\.(py|pyx|toml|md)|/)|Makefile", tok):
                assert (folder / tok).exists() or (ROOT / tok).exists(), f"{where}: no {folder.relative_to(ROOT) / tok}"


def test_named_files_modules_tests_and_policies_exist():
    import importlib

    tops = ("model", "agents", "experiments", "tests", "benchmarks", "ui")
    problems = []
    for line, span in SPANS:
        if re.fullmatch(rf"({'|'.join(tops)})/[\w./-]*", span) and not (ROOT / span).exists():
            problems.append(f"README.md:{line}: no file {span}")
        m = re.fullmatch(rf"((?:{'|'.join(tops)})(?:\.\w+)*)\.(\w+)", span)
        if m and m.group(2) not in ("py", "pyx", "toml", "json", "md", "csv", "png", "pdf", "svg", "parquet"):
            parts = span.split(".")  # the longest importable prefix is the module; the rest are attributes
            for k in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:k]))
                    break
                except ImportError:
                    continue
            for j, attr in enumerate(parts[k:], k):
                if not hasattr(obj, attr):
                    problems.append(f"README.md:{line}: {'.'.join(parts[:j])} has no {attr}")
                    break
                obj = getattr(obj, attr)
        if re.fullmatch(r"test_\w+", span):
            if not any(re.search(rf"def {span}\b", p.read_text()) for p in (ROOT / "tests").rglob("test_*.py")):
                problems.append(f"README.md:{line}: no test named {span}")
    # `model/policies.py`: `ExportControl` (...), `Sanction`, ...: the classes exist; named model commands too
    from model import policies
    from model.model import RareEarthModel

    for i, text in enumerate(PROSE, 1):
        if text.startswith("`model/policies.py`:"):
            para = " ".join(PROSE[i - 1:PROSE.index("", i)])
            for cls in re.findall(r"`([A-Z]\w+)`", para):
                if not hasattr(policies, cls) and not hasattr(RareEarthModel, cls):
                    problems.append(f"README.md:{i}: model.policies has no {cls}")
            cmds = re.search(r"named commands \(([^)]*)\)", para)
            for name in re.findall(r"`(\w+)`", cmds.group(1) if cmds else ""):
                if not hasattr(RareEarthModel, name):
                    problems.append(f"README.md:{i}: RareEarthModel has no command {name}")
    assert not problems, "\n".join(problems)
