"""The examples in the code's own documentation run ("Documentation runs", issue 13 item 7), as the README's
do in tests/test_readme.py.

Every literal block (a docstring paragraph ending in ``::``) in ``experiments/``, ``model/``, ``agents/``
and ``ui/`` is found when the tests are collected and must be one of the kinds checked here, so a new
example is either checked or fails ``test_every_docstring_example_is_checked``:

- Python: runs in a temporary folder (the EMA example on smaller sizes, as in tests/test_readme.py);
- a scenario file: passes ``ree check`` (a ``...`` line, "more entries", is left out);
- a sweep spec: ``ree sweep --dry-run`` plans it (its overrides and ranges checked against the world);
- a sensitivity spec: loads, and its run count is computed;
- a calibration spec: loads, and its parameters and targets check against the world;
- commands (``make``, ``python -m``): the make target exists and the module's ``--help`` lists each option;
- the policy-lever grammar: each example key is a lever some shipped scenario accepts.

And the libraries they (and the README's examples) run on are inside the ranges pyproject.toml pins.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments.cli import app

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("experiments", "model", "agents", "ui")


@dataclass(frozen=True)
class Example:
    path: Path
    owner: str  # "<module>" or the function/class name
    line: int  # the block's first line in the file
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.owner})"


def _blocks(doc: str) -> list[tuple[int, str]]:
    """reST literal blocks: the indented lines after a line ending in ``::`` (offset in the docstring, text)."""
    lines, out, i = doc.splitlines(), [], 0
    while i < len(lines):
        if not lines[i].rstrip().endswith("::"):
            i += 1
            continue
        base = len(lines[i]) - len(lines[i].lstrip())
        k, body = i + 1, []
        while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > base):
            body.append(lines[k])
            k += 1
        while body and not body[-1].strip():
            body.pop()
        lead = next((n for n, x in enumerate(body) if x.strip()), 0)  # blank lines before the block
        if body:
            out.append((i + 1 + lead, textwrap.dedent("\n".join(body[lead:]))))
        i = k
    return out


def _examples() -> list[Example]:
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text())
            nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef
                                                                      | ast.ClassDef))]
            for node in nodes:
                doc = ast.get_docstring(node)
                if doc:
                    start = node.body[0].lineno if getattr(node, "body", None) else 1
                    found += [Example(path, getattr(node, "name", "<module>"), start + off, text)
                              for off, text in _blocks(doc)]
    return found


EXAMPLES = _examples()


def _toml(ex: Example) -> dict | None:
    try:
        return tomllib.loads("\n".join(x for x in ex.text.splitlines() if x.strip() != "..."))
    except tomllib.TOMLDecodeError:
        return None


def _python(ex: Example) -> bool:
    try:
        tree = ast.parse(ex.text)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body)


def kind(ex: Example) -> str:
    data = _toml(ex)
    if data is not None and data:
        if "timeline" in data or "world" in data:
            return "scenario"
        if "parameters" in data and "methods" in data:
            return "sensitivity"
        if "parameters" in data and "particles" in data:
            return "calibration"
        if "scenario" in data or "scenarios" in data:
            return "sweep"
    if _python(ex):
        return "python"
    lines = [x for x in ex.text.splitlines() if x.strip()]
    if lines and all(re.match(r"(make|python -m) ", x) for x in lines):
        return "commands"
    if lines and all(re.match(r"policy\.<Type>", x) for x in lines):
        return "levers"
    return "unknown"


def _of(k: str) -> list:
    slow = {"python": lambda ex: "perform_experiments(" in ex.text}
    return [pytest.param(ex, id=ex.where, marks=[pytest.mark.slow] if slow.get(k, lambda _: False)(ex) else [])
            for ex in EXAMPLES if kind(ex) == k]


def test_every_docstring_example_is_checked():
    assert len(EXAMPLES) >= 7, [e.where for e in EXAMPLES]
    unknown = [e.where for e in EXAMPLES if kind(e) == "unknown"]
    assert not unknown, f"docstring examples of no kind checked here (add a check): {unknown}"


# The EMA example as written runs 50 scenarios x 4 policies of 104 weeks; as in tests/test_readme.py it runs
# here with 8 x 2 of 52 weeks, and PRIM's threshold at the lower quartile of the outcome (few short runs
# reach US$300, and PRIM needs cases of interest).
EMA_SUBSTITUTIONS = [
    (r"\bscenarios=\d+", "scenarios=8"),
    (r"\bpolicies=\d+", "policies=2"),
    (r"(make_model\([^)]*\bweeks=)\d+", r"\g<1>52"),
    (r"(outcomes\[[^\]]+\])\s*>\s*\d+(?:\.\d+)?", r"\1 > _threshold(\1)"),
]


@pytest.mark.parametrize("ex", _of("python"))
def test_python_example_runs(ex, tmp_path, monkeypatch):
    src = ex.text
    if "perform_experiments(" in src:
        pytest.importorskip("ema_workbench")
        for pattern, repl in EMA_SUBSTITUTIONS:
            src, n = re.subn(pattern, repl, src)
            assert n >= 1, f"{ex.where}: nothing to substitute for {pattern!r}"
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__docstring__", "_threshold": lambda y: float(np.quantile(y, 0.25))}
    exec(compile("\n" * (ex.line - 1) + src, str(ex.path), "exec"), ns)  # noqa: S102 - the example is the test
    if "m.run(52)" in ex.text:  # model/model.py: a year of the baseline, as the tidy table
        assert ns["table"]["step"].max() == 52 and not ns["table"].empty


@pytest.mark.parametrize("ex", _of("scenario"))
def test_scenario_example_checks(ex, tmp_path):
    path = tmp_path / "example.toml"
    path.write_text("\n".join(x for x in ex.text.splitlines() if x.strip() != "...") + "\n")
    r = CliRunner().invoke(app, ["check", str(path)])
    assert r.exit_code == 0 and r.stdout.startswith("ok: "), f"{ex.where}: ree check: {r.output}"


@pytest.mark.parametrize("ex", _of("sweep"))
def test_sweep_spec_example_plans(ex, tmp_path):
    path = tmp_path / "example.toml"
    path.write_text(ex.text + "\n")
    r = CliRunner().invoke(app, ["sweep", str(path), "--dry-run", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, f"{ex.where}: ree sweep --dry-run: {r.output}"
    assert re.search(r"\d+ runs = ", r.stdout), r.stdout
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


@pytest.mark.parametrize("ex", _of("calibration"))
def test_calibration_spec_example_checks(ex, tmp_path):
    """A calibration spec (``ree calibrate``) loads and its parameters and targets check against the world."""
    from experiments import calibrate as cal

    path = tmp_path / "example.toml"
    path.write_text(ex.text + "\n")
    spec = cal.check_spec(cal.load_spec(path))
    assert spec.parameters and spec.target_list(), ex.where


@pytest.mark.parametrize("ex", _of("sensitivity"))
def test_sensitivity_spec_example_loads(ex, tmp_path):
    from experiments import sensitivity as sa

    path = tmp_path / "example.toml"
    path.write_text(ex.text + "\n")
    spec = sa.load_spec(path)
    runs, _ = sa.design_size(spec, list(spec.methods))
    assert runs > 0 and spec.metrics, ex.where


@pytest.mark.parametrize("ex", _of("commands"))
def test_commands_exist(ex):
    for line in (x.split("#", 1)[0].split() for x in ex.text.splitlines() if x.strip()):
        if line[0] == "make":
            proc = subprocess.run(["make", "-n", *line[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0 and proc.stdout.strip(), f"{ex.where}: make -n {' '.join(line[1:])}: {proc.stderr}"
            continue
        module = line[2]
        proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"{ex.where}: python -m {module} --help: {proc.stderr}"
        missing = [o for o in line[3:] if o.startswith("--") and not re.search(rf"(?<![\w-]){o}(?![\w-])", proc.stdout)]
        assert not missing, f"{ex.where}: python -m {module} --help lists no {missing}"


@pytest.mark.parametrize("ex", _of("levers"))
def test_lever_examples_are_levers_of_a_shipped_scenario(ex):
    from experiments.levers import is_lever, parse_lever
    from model.params import ConfigError
    from model.scenario import list_scenarios, load_scenario

    scenarios = [load_scenario(n, check=False) for n in list_scenarios()]
    for line in ex.text.splitlines():
        key = line.split()[-1]
        assert is_lever(key), f"{ex.where}: {key} is no lever"
        accepted = []
        for sc in scenarios:
            try:
                parse_lever(key, sc)
                accepted.append(sc.name)
            except ConfigError:
                pass
        assert accepted, f"{ex.where}: no shipped scenario has the lever {key}"


# ------------------------------------------------------------------------------ the versions the examples ran on
def test_installed_versions_are_inside_the_pinned_ranges():
    """The examples here and in tests/test_readme.py run against the installed libraries, so those must be
    inside the ranges pyproject.toml declares: a range that leaves them out (or an environment that drifted
    out of it) would claim versions the examples never passed on."""
    from importlib.metadata import PackageNotFoundError, version

    requirements = pytest.importorskip("packaging.requirements")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *(r for group in project["optional-dependencies"].values() for r in group)]
    outside, checked = [], 0
    for text in declared:
        req = requirements.Requirement(text)
        try:
            have = version(req.name)
        except PackageNotFoundError:  # an optional group that is not installed
            continue
        checked += 1
        if not req.specifier.contains(have, prereleases=True):
            outside.append(f"{req.name} {have} (pyproject.toml: {req.specifier})")
    assert checked >= len(project["dependencies"]), "the core dependencies are not installed?"
    assert not outside, f"installed outside the pinned ranges: {outside}"
