"""Hostile and malformed inputs, generated (hypothesis): the input contract of the command line.

Every scenario file, world override and sweep spec the user can write gets one of two answers: it is
accepted (exit 0), or it is refused with exit code 2 and a message that starts ``error:`` and names the file
it came from. Never a traceback, never an uncaught exception, and nothing written outside the output root.

The generator starts from the shipped scenarios and sweep specs and breaks them: a value replaced by a
hostile one (inf, nan, 1e308, 2**80, booleans for numbers, empty strings, paths such as ``../../x``,
``/dev/zero`` or an absolute path, deep nesting, odd text), keys deleted or made up, timeline entries of
made-up types, overrides with real and made-up dotted keys. Examples are derandomized (the same 500+ cases
every run, so CI never meets a new case by chance); set ``REE_HYPOTHESIS=explore`` to draw new ones.

A smaller set of *accepted* scenarios is then run for a few weeks: a file that passes validation must not
break the run (finite, non-negative results) -- numbers that validate and then crash are the same defect.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
import tomllib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from experiments.cli import app
from model.params import Behaviour

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["baseline", "combined_2025", "china_controls_2025", "northern_corridor"]
SPECS = ["demo", "lhs_behaviour", "scenarios"]
EXPLORE = os.environ.get("REE_HYPOTHESIS") == "explore"
N_CHECK = 500  # the floor per run


def _profile(n: int):
    return settings(max_examples=n, deadline=None, derandomize=not EXPLORE, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------------------- TOML out
def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "-_" for c in k) else json.dumps(k, ensure_ascii=False)


def _value(v) -> str:
    if isinstance(v, Deep):
        return "[" * v.depth + "1" + "]" * v.depth
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(doc: dict) -> str:
    """A small TOML writer (tables and arrays of tables one level deep, the rest inline). What it cannot
    write faithfully still makes a file, and a malformed file is one more hostile input."""
    lines, tables, arrays = [], [], []
    for k, v in doc.items():
        if isinstance(v, dict) and v:
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables:
        lines.append(f"\n[{_key(k)}]")
        lines += [f"{_key(a)} = {_value(b)}" for a, b in v.items()]
    for k, v in arrays:
        for item in v:
            lines.append(f"\n[[{_key(k)}]]")
            lines += [f"{_key(a)} = {_value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- generator
def _base(kind: str, name: str) -> dict:
    folder = ROOT / ("model/data/scenarios" if kind == "scenario" else "experiments/specs")
    return tomllib.loads((folder / f"{name}.toml").read_text())


class Deep:
    """An array nested ``depth`` deep, written out as text (too deep for Python's own recursion)."""

    def __init__(self, depth: int):
        self.depth = depth


NUMBERS = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 1e300, 5e-324, -1.0, -5.0, 0.0, 0, -1,
                     2**63, 2**63 - 1, 2**64, -(2**63) - 1, 10**9, True, False]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80))
STRINGS = st.one_of(
    st.sampled_from(["", " ", "../../x", "../../../../../../tmp/ree-escape", "/dev/zero", "/dev/null", "/",
                     ".", "..", ".hidden", "_private", "a/b", "a\\b", "nul\x00byte", "é" * 3, "NaN", "1e999",
                     "world_2024.toml", "baseline", "CN", "Dy", "x" * 300]),
    st.text(max_size=20))
HOSTILE = st.one_of(
    NUMBERS, STRINGS,
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.lists(st.one_of(NUMBERS, STRINGS), max_size=4),
    st.dictionaries(st.text(max_size=8), st.one_of(NUMBERS, STRINGS), max_size=3),
    st.integers(min_value=50, max_value=3000).map(Deep))
BEHAVIOUR_KEYS = sorted(f"behaviour.{k}" for k in Behaviour.model_fields)
OVERRIDE_KEYS = st.one_of(
    st.sampled_from(BEHAVIOUR_KEYS),
    st.sampled_from(["miners.0.count", "refiners.0.capacity_t_per_week", "states.CN.reserve.max_weeks",
                     "armed_groups.KIA.levy_usd_per_kg", "products.0.price_usd_per_kg", "products", "regions",
                     "behaviour", "states.ZZ.reserve", "miners.999.count", "refiners.-1.capacity_t_per_week",
                     "..", "a..b", "", "behaviour.", ".behaviour"]),
    st.text(max_size=25))


def _paths(doc, prefix=()):
    """Every (container, key) pair in a parsed TOML document, nested lists and tables included (to depth 6)."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for k, v in items:
        out.append((doc, k, (*prefix, k)))
        if isinstance(v, dict | list) and len(prefix) < 6:
            out += _paths(v, (*prefix, k))
    return out


@st.composite
def broken(draw, kind: str):
    """A shipped scenario or sweep spec, broken by one to three mutations."""
    name = draw(st.sampled_from(SCENARIOS if kind == "scenario" else SPECS))
    doc = _base(kind, name)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "override", "override", "timeline"]))
        places = _paths(doc)
        if op in ("replace", "delete") and places:
            container, key, _ = draw(st.sampled_from(places))
            if op == "replace":
                container[key] = draw(HOSTILE)
            elif isinstance(container, dict):
                del container[key]
            else:
                container.pop(key)
        elif op == "add":
            tables = [doc] + [v for c, k, _ in places if isinstance(v := c[k], dict)]
            draw(st.sampled_from(tables))[draw(st.text(min_size=1, max_size=12))] = draw(HOSTILE)
        elif op == "override":
            table = doc.setdefault("overrides", {})
            if not isinstance(table, dict):
                doc["overrides"] = table = {}
            table[draw(OVERRIDE_KEYS)] = draw(HOSTILE)
        elif op == "timeline" and kind == "scenario":
            timeline = doc.setdefault("timeline", [])
            if isinstance(timeline, list):
                entry = dict(draw(st.sampled_from([t for t in timeline if isinstance(t, dict)] or [{}])))
                entry[draw(st.sampled_from(["type", "start", "end", "actor", "edges", "areas", "products",
                                            "policy", "share", "months", "weeks"]))] = draw(HOSTILE)
                timeline.append(entry)
    return name, to_toml(doc)


RAW = st.one_of(  # files that are not TOML text at all
    st.binary(max_size=200),
    st.text(max_size=80).map(lambda s: ("name = \"" + s + "\"\n").encode("utf-16")),
    st.just("name = \"caf\xe9\"\nworld = \"world_2024.toml\"\n".encode("latin-1")),
    st.just(b"\xef\xbb\xbfname = \"bom\"\n"),
    st.integers(300, 5000).map(lambda n: ("x = " + "[" * n + "]" * n + "\n").encode()))


# ------------------------------------------------------------------------------------------------ check
def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _invoke(args: list[str], cwd: Path):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, catch_exceptions=True)
    finally:
        os.chdir(old)


def _assert_contract(res, what: str, file_name: str) -> None:
    event(f"exit code {res.exit_code}")  # the mix of accepted and refused cases (--hypothesis-show-statistics)
    shown = f"{what}\nexit {res.exit_code}\n{res.output[-3000:]}"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"uncaught {type(res.exception).__name__}: {res.exception!r}\n{shown}")
    assert res.exit_code in (0, 2), shown
    assert "Traceback" not in res.output, shown
    if res.exit_code == 2:
        assert "error:" in res.output, shown
        assert file_name in res.output or "Usage:" in res.output, f"the message does not name the file\n{shown}"


@_profile(N_CHECK)
@given(case=broken("scenario"))
def test_broken_scenarios_are_refused_clearly_or_accepted(case):
    """``ree check FILE`` on a broken scenario: exit 0, or exit 2 with a message naming the file; nothing
    written anywhere."""
    base, text = case
    with tempfile.TemporaryDirectory(prefix="ree-hostile-") as tmp:
        root = Path(tmp)
        cwd = root / "a" / "b" / "c"
        cwd.mkdir(parents=True)
        f = cwd / "hostile.toml"
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = _tree(root)
        res = _invoke(["check", str(f)], cwd)
        _assert_contract(res, f"(from {base})\n{text[:3000]}", "hostile.toml")
        assert _tree(root) == before, f"ree check wrote files: {_tree(root) - before}"


@_profile(200)
@given(data=RAW)
def test_files_that_are_not_toml_text_are_refused(data):
    with tempfile.TemporaryDirectory(prefix="ree-hostile-") as tmp:
        f = Path(tmp) / "hostile.toml"
        f.write_bytes(data)
        res = _invoke(["check", str(f)], Path(tmp))
        _assert_contract(res, repr(data[:300]), "hostile.toml")


@_profile(N_CHECK)
@given(case=broken("spec"))
def test_broken_sweep_specs_are_refused_clearly_or_planned(case):
    """``ree sweep SPEC --dry-run`` (with and without ``--out``): exit 0 or 2 as above, and nothing written
    outside the output root (the spec's ``name`` is a path component of the default output folder)."""
    base, text = case
    with tempfile.TemporaryDirectory(prefix="ree-hostile-") as tmp:
        root = Path(tmp)
        cwd = root / "a" / "b" / "c"
        (cwd / "experiments" / "specs").mkdir(parents=True)
        f = cwd / "hostile.toml"
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = _tree(root)
        res = _invoke(["sweep", str(f), "--dry-run"], cwd)
        _assert_contract(res, f"(from {base})\n{text[:3000]}", "hostile.toml")
        outside = {p for p in _tree(root) - before if not p.is_relative_to(cwd / "results")}
        assert not outside, f"written outside {cwd / 'results'}: {outside}"


ACCEPTED_RUN_WEEKS = 6


@st.composite
def renumbered(draw):
    """A shipped scenario with one to three numbers changed (leaves or behaviour overrides): many of these
    pass validation, and then they must run."""
    name = draw(st.sampled_from(SCENARIOS))
    doc = _base("scenario", name)
    for _ in range(draw(st.integers(1, 3))):
        numeric = [(c, k) for c, k, _ in _paths(doc) if isinstance(c[k], int | float) and not isinstance(c[k], bool)]
        if numeric and draw(st.booleans()):
            c, k = draw(st.sampled_from(numeric))
            c[k] = draw(NUMBERS)
        else:
            doc.setdefault("overrides", {})[draw(st.sampled_from(BEHAVIOUR_KEYS))] = draw(NUMBERS)
    return name, to_toml(doc)


@settings(max_examples=40, deadline=None, derandomize=not EXPLORE, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=renumbered())
def test_accepted_scenarios_run_to_finite_results(case):
    """A scenario that ``ree check`` accepts runs a few weeks and gives finite, non-negative quantities and
    positive prices (validation that lets a number through promises the run can use it)."""
    from hypothesis import assume

    from experiments.run import run_model
    from model.params import ConfigError
    from model.scenario import load_scenario

    base, text = case
    with tempfile.TemporaryDirectory(prefix="ree-hostile-") as tmp:
        f = Path(tmp) / "hostile.toml"
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            sc = load_scenario(f)
        except ConfigError:
            assume(False)
        model = run_model(sc, sc.seeds[0] if sc.seeds else 1, ACCEPTED_RUN_WEEKS)
        df = model.results()
        values = df["value"].to_numpy(dtype=float)
        assert np.isfinite(values).all(), df[~np.isfinite(values)].head()
        prices = df[df["variable"] == "price"]["value"]
        assert (prices > 0).all(), prices.describe()
