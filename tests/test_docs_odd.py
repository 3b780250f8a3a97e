"""docs/ODD.md against the code: the ODD+D description's tables are read and compared with what the code declares.

Nothing is generated and nothing of the document is copied here: the test reads docs/ODD.md and the code, so the
prose may change freely and a table row fails as soon as it and the code disagree. What is checked:

- the seven ODD sections (``## 1.`` to ``## 7.``) are there, in order;
- agents (section 2, the table headed ``| agent class | module |``): the Mesa agent classes defined in
  ``agents/*.py``, both ways, each in the module it is defined in; one column per world shipped in
  ``model/data/`` (``world_*.toml``; ``projects_*.toml`` are project databases) gives the number of agents of the class a run of that world creates;
- stages (section 3, ``| # | stage | code |``): the numbered stages of ``RareEarthModel.step``'s docstring, same
  count and order (a stage is named by the first words of its docstring item, up to the first ``:``, ``;``,
  ``,`` or ``(``); the code column lists the calls ``step()`` makes, in order, each under the stage whose
  ``# -- N --`` marker in ``model/model.py`` stands above its definition;
- random streams (section 4.9): ``model.model.STREAMS``, in order (the order fixes each stream's seed);
- outputs (section 4.10, Observation): ``model.results.OUTPUTS``, both ways, each with its unit and what its
  region column holds (``(none)`` for ``""``);
- patterns (section 1): ``experiments.validate.TARGETS`` by scenario: the number of targets and the FACTS/seed
  ids their sources cite;
- policies (section 7): ``model.policies.REGISTRY``, both ways, each with its kind (policy or event);
- behavioural parameters (section 7, every table headed ``| parameter | default |``): ``Behaviour.model_fields``,
  both ways; the default, written as a TOML value, equals the code's; the source cell cites the same FACTS/seed
  ids as the field's comment in ``model/params.py``, says ``assumption``/``calibrated`` where that comment does,
  and says ``no source in code`` exactly when the comment gives neither an id nor either word.

Every failure names the line of docs/ODD.md and says what to add, change or remove.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import textwrap
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import mesa

from experiments.validate import TARGETS
from model.model import STREAMS, RareEarthModel
from model.params import DATA_DIR, Behaviour
from model.policies import REGISTRY
from model.results import OUTPUTS
from model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ODD.md"
LINES = DOC.read_text().splitlines()
SECTIONS = ("Purpose and patterns", "Entities, state variables and scales", "Process overview and scheduling",
            "Design concepts", "Initialisation", "Input data", "Submodels")
# FACTS row ids (B1, C15, D5, E1, L6, P4, R1) and the seed's facts and mechanisms (F1-F26, M1-M7)
FACT_ID = re.compile(r"\b(?:[BCDELPR]\d{1,2}|F\d{1,2}|M\d)\b")
NO_SOURCE = "no source in code"


# ================================================================================================ reading the doc
@dataclass(frozen=True)
class Row:
    line: int  # line of docs/ODD.md (1-based)
    cells: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.cells[column]

    @property
    def at(self) -> str:
        return f"docs/ODD.md:{self.line}"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables(header_start: str) -> list[list[Row]]:
    """Every Markdown table whose header line starts with ``header_start``, as rows of {column: cell}."""
    found = []
    i = 0
    while i < len(LINES):
        if not LINES[i].startswith(header_start):
            i += 1
            continue
        header = _cells(LINES[i])
        rows = []
        j = i + 2  # past the |---| line
        while j < len(LINES) and LINES[j].startswith("|"):
            cells = _cells(LINES[j])
            assert len(cells) == len(header), (f"docs/ODD.md:{j + 1}: {len(cells)} cells, but its table's header "
                                               f"(line {i + 1}) has {len(header)}; a '|' inside a cell splits it")
            rows.append(Row(j + 1, dict(zip(header, cells, strict=True))))
            j += 1
        found.append(rows)
        i = j
    return found


def _table(header_start: str, section: int, subsection: str = "") -> list[Row]:
    """The one table headed ``header_start``; it must stand in ODD section ``section`` (and in the subsection
    whose heading contains ``subsection``)."""
    found = _tables(header_start)
    assert len(found) == 1, (f"docs/ODD.md: expected one table headed {header_start!r} (section {section}), found "
                             f"{len(found)}")
    rows = found[0]
    assert rows, f"docs/ODD.md: the table headed {header_start!r} has no rows"
    top, sub = _section_of(rows[0].line)
    assert top == section and subsection in sub, (
        f"{rows[0].at}: the table headed {header_start!r} belongs in section {section}"
        f"{f' ({subsection})' if subsection else ''}, not under {sub or f'section {top}'!r}")
    return rows


def _section_of(line: int) -> tuple[int, str]:
    """(number of the ``## N.`` section, text of the last ``###`` heading in it) for a line of the doc."""
    top, sub = 0, ""
    for text in LINES[:line]:
        m = re.match(r"## (\d+)\.\s", text)
        if m:
            top, sub = int(m.group(1)), ""
        elif text.startswith("### "):
            sub = text[4:]
    return top, sub


def _code(cell: str) -> list[str]:
    """The names a cell gives in backticks, in order."""
    return re.findall(r"`([^`]+)`", cell)


def _one_name(row: Row, column: str) -> str:
    names = _code(row[column])
    assert len(names) == 1, f"{row.at}: the {column!r} cell should hold one `name` in backticks (got {row[column]!r})"
    return names[0]


def _plain(cell: str) -> str:
    return re.sub(r"[`*]", "", cell).strip()


def _ids(text: str) -> set[str]:
    return set(FACT_ID.findall(text))


def _both_ways(documented: dict[str, Row], declared: set[str], what: str, where: str, add_hint: str) -> list[str]:
    """Problems of a table that must list exactly the names the code declares."""
    problems = [f"docs/ODD.md: {what} {name!r} is not in the table of {where}; add a row for it {add_hint}"
                for name in sorted(declared - set(documented))]
    problems += [f"{documented[name].at}: {name!r} is in the table of {where}, but the code declares no {what} by "
                 f"that name; remove the row or fix the name" for name in sorted(set(documented) - declared)]
    return problems


def _rows_by_name(rows: list[Row], column: str) -> tuple[dict[str, Row], list[str]]:
    out: dict[str, Row] = {}
    problems = []
    for r in rows:
        name = _one_name(r, column)
        if name in out:
            problems.append(f"{r.at}: {name!r} is listed twice (also line {out[name].line}); remove one row")
        out[name] = r
    return out, problems


# ================================================================================================ sections
def test_the_seven_odd_sections_are_there_in_order():
    found = [(int(m.group(1)), m.group(2).strip()) for m in (re.match(r"## (\d+)\.\s+(.*)", x) for x in LINES) if m]
    expected = list(enumerate(SECTIONS, 1))
    assert found == expected, ("docs/ODD.md: the ODD sections should be, in order:\n"
                               + "\n".join(f"  ## {n}. {t}" for n, t in expected)
                               + "\nfound:\n" + "\n".join(f"  ## {n}. {t}" for n, t in found))


# ================================================================================================ 2: agents
def _agent_classes() -> dict[str, str]:
    """Mesa agent classes defined in agents/*.py -> the file that defines them."""
    out = {}
    for path in sorted((ROOT / "agents").glob("*.py")):
        module = importlib.import_module(f"agents.{path.stem}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, mesa.Agent) and obj.__module__ == module.__name__:
                out[name] = f"agents/{path.name}"
    return out


@functools.cache
def _agent_counts(world: str) -> Counter:
    """How many agents of each class a run of a shipped world creates (built, not run)."""
    scenario = Scenario(name=f"odd-{world}", world=str(DATA_DIR / f"{world}.toml"), weeks=1)
    model = RareEarthModel(scenario, seed=0)
    return Counter(type(a).__name__ for a in model.agents)


AGENT_HEADER = "| agent class | module |"


def test_every_agent_class_is_in_the_entities_section_and_nothing_else():
    rows = _table(AGENT_HEADER, section=2)
    documented, problems = _rows_by_name(rows, "agent class")
    declared = _agent_classes()
    problems += _both_ways(documented, set(declared), "agent class", "agents (section 2)",
                           "(its module, its count in each world, what it represents)")
    for name, row in documented.items():
        if name in declared and _plain(row["module"]) != declared[name]:
            problems.append(f"{row.at}: {name} is defined in {declared[name]}, not {_plain(row['module'])}")
    assert not problems, "\n".join(problems)


def test_agent_counts_are_those_of_the_shipped_worlds():
    rows = _table(AGENT_HEADER, section=2)
    header = list(rows[0].cells)
    worlds = header[header.index("module") + 1:header.index("represents")]
    shipped = sorted(p.stem for p in DATA_DIR.glob("world_*.toml"))  # projects_*.toml are databases, not worlds
    assert sorted(worlds) == shipped, (f"docs/ODD.md:{rows[0].line - 2}: the agent table's world columns are "
                                       f"{worlds}; the worlds shipped in model/data/ are {shipped}: add or remove "
                                       f"a column")
    problems = []
    for world in worlds:
        counts = _agent_counts(world)
        for row in rows:
            name = _one_name(row, "agent class")
            cell = _plain(row[world])
            if not cell.isdigit() or int(cell) != counts[name]:
                problems.append(f"{row.at}: a run of {world}.toml creates {counts[name]} {name} agent(s); the "
                                f"{world} cell says {row[world]!r}")
    assert not problems, "\n".join(problems)


# ================================================================================================ 3: the week
def _docstring_stages() -> list[str]:
    """The numbered stages of RareEarthModel.step's docstring, each named by its first words."""
    items: list[tuple[int, str]] = []
    for line in (inspect.getdoc(RareEarthModel.step) or "").splitlines():
        m = re.match(r"(\d+)\.\s+(.*)", line)
        if m:
            items.append((int(m.group(1)), m.group(2)))
    numbers = [n for n, _ in items]
    assert numbers == list(range(1, len(items) + 1)), (
        f"RareEarthModel.step's docstring numbers its stages {numbers}; expected 1 to {len(items)} in order")
    return [re.split(r"[:;,(]", text, maxsplit=1)[0].strip() for _, text in items]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _step_calls() -> list[str]:
    """The calls on ``self`` that step() makes as statements, in order (``_calendar``, ..., ``observer.record``)."""
    fn = ast.parse(textwrap.dedent(inspect.getsource(RareEarthModel.step))).body[0]
    calls = []
    for stmt in fn.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            name = _dotted(stmt.value.func)
            if name.startswith("self."):
                calls.append(name.removeprefix("self."))
    return calls


def _stage_marker(method: str) -> int | None:
    """The N of the last ``# -- N --`` marker above ``RareEarthModel.<method>`` in model/model.py."""
    source = Path(inspect.getsourcefile(RareEarthModel)).read_text().splitlines()
    _, start = inspect.getsourcelines(getattr(RareEarthModel, method))
    for text in reversed(source[:start - 1]):
        m = re.match(r"\s*# -- (\d+) -", text)
        if m:
            return int(m.group(1))
    return None


STAGE_HEADER = "| # | stage | code |"


def test_stage_list_matches_the_step_docstring():
    rows = _table(STAGE_HEADER, section=3)
    stages = _docstring_stages()
    documented = [_plain(r["stage"]) for r in rows]
    problems = []
    for k, row in enumerate(rows, 1):
        if _plain(row["#"]) != str(k):
            problems.append(f"{row.at}: row {k} of the stage table is numbered {row['#']!r}; number it {k}")
    if len(documented) != len(stages):
        problems.append(f"RareEarthModel.step's docstring has {len(stages)} stages, docs/ODD.md's stage table "
                        f"{len(documented)}: add or remove rows so that they are the same")
    for k, (said, doc) in enumerate(zip(stages, documented, strict=False), 1):
        if said != doc:
            problems.append(f"{rows[k - 1].at}: stage {k} is {said!r} in RareEarthModel.step's docstring, {doc!r} in "
                            f"the document; write {said!r} (the docstring item's first words)")
    for k in range(len(documented), len(stages)):
        problems.append(f"docs/ODD.md: add stage {k + 1}, {stages[k]!r}, to the stage table (section 3)")
    for row in rows[len(stages):]:
        problems.append(f"{row.at}: stage {_plain(row['stage'])!r} is not in RareEarthModel.step's docstring; "
                        f"remove the row")
    assert not problems, "\n".join(problems)


def test_stage_code_column_is_what_step_calls_in_order():
    rows = _table(STAGE_HEADER, section=3)
    listed = [(name, row) for row in rows for name in _code(row["code"])]
    calls = _step_calls()
    assert [n for n, _ in listed] == calls, (
        "docs/ODD.md: the stage table's code column (read top to bottom) should name the calls "
        f"RareEarthModel.step makes, in order:\n  step():   {calls}\n  the doc:  {[n for n, _ in listed]}")
    problems = []
    for name, row in listed:
        if "." in name:  # a call on another object (observer.record): no marker in model.py
            continue
        marker = _stage_marker(name)
        if marker is not None and str(marker) != _plain(row["#"]):
            problems.append(f"{row.at}: `{name}` is listed in stage {_plain(row['#'])}, but model/model.py defines it "
                            f"under the '# -- {marker} --' marker; move it to stage {marker}")
    assert not problems, "\n".join(problems)


# ================================================================================================ 4: streams, outputs
def test_random_streams_are_the_models_in_order():
    rows = _table("| stream | what draws from it |", section=4, subsection="Stochasticity")
    documented = [_one_name(r, "stream") for r in rows]
    assert documented == list(STREAMS), (
        f"{rows[0].at}: the stream table should list model.model.STREAMS in order (the order decides each "
        f"stream's seed):\n  code: {list(STREAMS)}\n  doc:  {documented}")


def test_every_output_is_in_the_observation_section_with_its_unit():
    rows = _table("| output | unit | region column |", section=4, subsection="Observation")
    documented, problems = _rows_by_name(rows, "output")
    problems += _both_ways(documented, set(OUTPUTS), "output", "outputs (section 4.10)",
                           "(unit, region column, what it records)")
    for name, row in documented.items():
        out = OUTPUTS.get(name)
        if out is None:
            continue
        if _plain(row["unit"]) != out.unit:
            problems.append(f"{row.at}: {name} is in {out.unit!r} (model/results.py), the document says "
                            f"{_plain(row['unit'])!r}")
        by = out.by or "(none)"
        if _plain(row["region column"]) != by:
            problems.append(f"{row.at}: {name}'s region column holds {by!r} (model/results.py), the document says "
                            f"{_plain(row['region column'])!r}")
    assert not problems, "\n".join(problems)


# ================================================================================================ 1: patterns
def test_patterns_are_the_validation_targets():
    rows = _table("| scenario | targets | patterns | sources |", section=1)
    documented, problems = _rows_by_name(rows, "scenario")
    by_scenario: dict[str, list] = {}
    for t in TARGETS:
        by_scenario.setdefault(t.scenario, []).append(t)
    problems += _both_ways(documented, set(by_scenario), "validated scenario", "patterns (section 1)",
                           "(its number of targets, the patterns, the ids their sources cite)")
    for name, row in documented.items():
        targets = by_scenario.get(name)
        if targets is None:
            continue
        if _plain(row["targets"]) != str(len(targets)):
            problems.append(f"{row.at}: experiments/validate.py has {len(targets)} target(s) on {name}; the "
                            f"document says {_plain(row['targets'])}")
        cited = set().union(*(_ids(t.source) for t in targets))
        doc = _ids(row["sources"])
        if doc != cited:
            problems.append(f"{row.at}: {name}'s targets cite {sorted(cited)} (TARGETS' sources); the document "
                            f"cites {sorted(doc)}")
    assert not problems, "\n".join(problems)


# ================================================================================================ 7: policies
def test_every_policy_class_is_described_with_its_kind():
    rows = _table("| policy class | kind |", section=7)
    documented, problems = _rows_by_name(rows, "policy class")
    problems += _both_ways(documented, set(REGISTRY), "policy class", "policies and events (section 7)",
                           "(its kind, what it changes, the facts it models)")
    for name, row in documented.items():
        cls = REGISTRY.get(name)
        if cls is not None and _plain(row["kind"]) != cls.kind:
            problems.append(f"{row.at}: {name}'s kind in model/policies.py is {cls.kind!r}, the document says "
                            f"{_plain(row['kind'])!r}")
    assert not problems, "\n".join(problems)


# ================================================================================================ 7: Behaviour
PARAM_HEADER = "| parameter | default |"


def _parameter_rows() -> dict[str, Row]:
    tables = _tables(PARAM_HEADER)
    assert tables, f"docs/ODD.md: no table headed {PARAM_HEADER!r} (the Behaviour parameters, section 7)"
    rows = [r for t in tables for r in t]
    for r in rows:
        assert _section_of(r.line)[0] == 7, f"{r.at}: parameter tables belong in section 7 (Submodels)"
    documented, problems = _rows_by_name(rows, "parameter")
    assert not problems, "\n".join(problems)
    return documented


def _field_comments() -> dict[str, str]:
    """Each Behaviour field's comment in model/params.py: the comment on its line, and the comment lines right
    above it (not the ``# -- section --`` rulers)."""
    lines, _ = inspect.getsourcelines(Behaviour)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    out = {}
    for node in tree.body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        parts = []
        k = node.lineno - 2  # 0-based index of the line above
        while k >= 0 and lines[k].strip().startswith("#") and not lines[k].strip().startswith("# --"):
            parts.insert(0, lines[k].strip())
            k -= 1
        for text in lines[node.lineno - 1:node.end_lineno]:
            if "#" in text:
                parts.append(text[text.index("#"):].strip())
        out[node.target.id] = " ".join(parts)
    return out


def test_every_behaviour_field_is_in_the_parameter_table_and_nothing_else():
    documented = _parameter_rows()
    problems = _both_ways(documented, set(Behaviour.model_fields), "Behaviour field",
                          f"parameters (section 7, a table headed {PARAM_HEADER!r})",
                          "(default, what it sets, its source in model/params.py)")
    assert not problems, "\n".join(problems)


def _same_value(doc, code) -> bool:
    """A TOML value equals a default: booleans only to booleans, numbers by value (13 == 13.0)."""
    if isinstance(code, bool) or isinstance(doc, bool):
        return doc is code
    if isinstance(code, int | float):
        return isinstance(doc, int | float) and doc == code
    return doc == code


def test_parameter_defaults_are_the_codes():
    problems = []
    for name, row in _parameter_rows().items():
        field = Behaviour.model_fields.get(name)
        if field is None:
            continue
        code = field.get_default(call_default_factory=True)
        cell = row["default"].strip().strip("`")
        try:
            doc = tomllib.loads(f"v = {cell}")["v"]
        except tomllib.TOMLDecodeError:
            problems.append(f"{row.at}: {name}'s default {cell!r} is not a TOML value (write it as in a world file: "
                            f"0.72, 13, true, \"Dy\", [\"Dy\", \"Tb\"])")
            continue
        if not _same_value(doc, code):
            problems.append(f"{row.at}: {name} defaults to {code!r} in model/params.py, the document says {cell}")
    assert not problems, "\n".join(problems)


def test_parameter_sources_are_those_the_code_gives():
    comments = _field_comments()
    problems = []
    for name, row in _parameter_rows().items():
        if name not in comments:
            continue
        comment, cell = comments[name], row["source in code"]
        code_ids, doc_ids = _ids(comment), _ids(cell)
        if code_ids != doc_ids:
            problems.append(f"{row.at}: {name}'s comment in model/params.py cites {sorted(code_ids) or 'no id'}, "
                            f"the document {sorted(doc_ids) or 'no id'}; cite what the code cites")
        words = [w for w in ("assumption", "calibrated") if w in comment.lower()]
        for w in words:
            if w not in cell.lower():
                problems.append(f"{row.at}: {name}'s comment in model/params.py says {w!r}; so should the document")
        sourced = bool(code_ids or words)
        if not sourced and NO_SOURCE not in cell.lower():
            problems.append(f"{row.at}: {name}'s comment in model/params.py gives no source (no id, no "
                            f"'assumption' or 'calibrated'); say {NO_SOURCE!r}")
        if sourced and NO_SOURCE in cell.lower():
            problems.append(f"{row.at}: {name}'s comment in model/params.py now gives a source ({comment!r}); "
                            f"replace {NO_SOURCE!r} with it")
    assert not problems, "\n".join(problems)
