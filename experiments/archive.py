"""A replication package: ``ree archive RESULTS_DIR`` packs a results folder into one zip that a second
person can unpack and understand without this repository.

The zip holds one folder named like the results folder, with:

- the results as they are (``results.parquet``, ``runs/*.parquet``, ``provenance.json``,
  ``manifest.json``, ``design.csv``, figures...): the unpacked folder is still a results folder, so
  ``ree figures`` and ``pd.read_parquet`` work on it unchanged; a sweep's ``manifest.json`` and
  ``design.csv`` give each run's status as its files on disk do (:func:`current_status`);
- ``datapackage.json``: a Frictionless Data Package describing the tables (path, format, fields with
  types and descriptions), so generic tools can read them without this code;
- ``codebook.csv`` and ``codebook.md``: every variable present in the data with unit, label and what its
  ``region`` column holds (from :data:`model.results.OUTPUTS`, the outputs' one declaration), and the
  meaning of each column (:data:`COLUMN_DOCS`);
- ``inputs/``: the scenario, world and spec files the results came from. Provenance records a scenario's
  content, not always its file, so a file is copied only where its content equals what the results
  recorded (``.toml``, verbatim); the recorded content itself is always there as ``.json``;
- ``environment.json``: Python, platform, every installed distribution's version, and the model code's
  fingerprint (:func:`experiments.sweep.code_fingerprint`, the one run keys use) next to the ones the
  results recorded, so a reader sees whether this code made them;
- ``README.md``: what each file is, which command made each figure and how to re-derive one.

Files in the zip, and the zip, get the mode an ordinary ``open()`` gives (``0o666`` less the umask).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import platform
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from model.params import ConfigError

# What each column of the tidy table (model.results.COLUMNS) holds; a test keeps the two lists equal.
COLUMN_DOCS: dict[str, str] = {
    "run_id": ("the run: a sweep run's key (<scenario>_s<seed>_<hash>, as in design.csv), or "
               "<scenario>-s<seed> for a single run"),
    "scenario": "scenario name",
    "seed": "random seed of the run",
    "step": "week number from the scenario's start (0 = the initial state, before any week has run)",
    "date": "calendar date of the week",
    "variable": "output name; see codebook.csv for its unit and label",
    "region": "what the value belongs to: a market region, buyer state, route, armed group or country "
              "(codebook.csv says which, per variable); empty if none",
    "product": "product (oxide, element or magnet) the value is for; empty if none",
    "value": "the value, in the variable's unit (codebook.csv)",
}
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
SKIP_DIRS = {"superseded", "corrupt"}  # runs of earlier designs or unreadable files: not the results
GENERATED = ("README.md", "datapackage.json", "codebook.csv", "codebook.md", "environment.json")
_ARROW_TYPES = {"string": "string", "large_string": "string", "int64": "integer", "int32": "integer",
                "double": "number", "float": "number", "bool": "boolean", "date32[day]": "date"}


@dataclasses.dataclass
class Archive:
    """What :func:`archive` wrote: the zip and the names inside it."""

    path: Path
    names: list[str]
    notes: list[str]

    def __str__(self) -> str:
        data = sum(n.endswith(".parquet") for n in self.names)
        figs = sum(n.endswith(FIGURE_SUFFIXES) for n in self.names)
        lines = [f"wrote {self.path}: {len(self.names)} files ({data} data files, {figs} figures, "
                 "datapackage.json, codebook, inputs, environment.json, README.md)"]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


# ------------------------------------------------------------------------------------------ the folder
def results_sources(root: Path) -> list[Path]:
    """Run folders (results.parquet) and sweep or sensitivity folders (manifest.json and runs/) under
    ``root``; ConfigError naming the problem if there are none."""
    from experiments.figures import find_results

    if not root.exists():
        raise ConfigError(f"{root}: no such folder")
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; give a results folder (from `ree run`, `ree sweep` or `ree run-all`)")
    found = find_results(root)
    if (root / "manifest.json").is_file() and (root / "runs").is_dir() and root not in found:
        found.insert(0, root)  # a sensitivity folder: runs like a sweep's
    if not found:
        raise ConfigError(f"{root}: not a results folder (expected results.parquet from `ree run` or manifest.json "
                          "and runs/ from `ree sweep`, here or in subfolders)")
    return found


def _files(root: Path, skip: set[Path]) -> list[Path]:
    """The folder's files, relative to it: hidden and temporary files, superseded and corrupt runs, the
    zip being written and the files this module generates (an unpacked bundle archived again) left out."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or p.resolve() in skip or any(x.startswith((".", "_")) for x in rel.parts):
            continue
        if SKIP_DIRS & set(rel.parts[:-1]) or p.suffix == ".tmp" or str(rel) in GENERATED:
            continue
        if rel.parts[0] == "inputs" and (root / "datapackage.json").is_file():
            continue  # an unpacked bundle's inputs/ are rewritten from its provenance
        out.append(rel)
    return out


def current_status(root: Path, files: list[Path]) -> dict[str, bytes]:
    """``manifest.json`` and ``design.csv`` of each sweep or sensitivity folder, where a run's recorded
    status is not what its files on disk say (a sweep killed with ``kill -9`` could not rewrite them): the
    same files with the status and counts as on disk, for the zip. Folders already up to date: nothing."""
    from experiments.sweep import DESIGN, MANIFEST, RUNS, design_table

    out: dict[str, bytes] = {}
    for rel in files:
        folder = root / rel.parent
        if rel.name != MANIFEST or not (folder / RUNS).is_dir():
            continue
        m = _read_json(root / rel)
        if not isinstance(m.get("runs"), list):
            continue
        table = design_table(folder)
        if [r.get("status") for r in m["runs"]] == list(table["status"]):
            continue
        for r, st in zip(m["runs"], table["status"], strict=True):
            r["status"] = st
        m["counts"] = {st: int((table["status"] == st).sum()) for st in ("done", "failed", "pending")}
        out[rel.as_posix()] = _dump(m)
        out[(rel.parent / DESIGN).as_posix()] = table.to_csv(index=False).encode()
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None


# ------------------------------------------------------------------------------------------ data package
def _schema(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read this results file ({type(exc).__name__}: {exc})") from None
    fields = []
    for f in schema:
        t = str(f.type)
        kind = "datetime" if t.startswith("timestamp") else _ARROW_TYPES.get(t, "any")
        fields.append({"name": f.name, "type": kind, "description": COLUMN_DOCS.get(f.name, "")})
    return fields


def _present(root: Path, parquet: list[Path]) -> dict[str, dict[str, set[str]]]:
    """Per variable in the data, the regions and products it has values for."""
    import pyarrow.parquet as pq

    seen: dict[str, dict[str, set[str]]] = {}
    for rel in parquet:
        try:
            t = pq.read_table(root / rel, columns=["variable", "region", "product"]).to_pandas()
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{root / rel}: cannot read this results file ({type(exc).__name__}: {exc})") from None
        for (v, r, p) in t.drop_duplicates().itertuples(index=False):
            d = seen.setdefault(v, {"regions": set(), "products": set()})
            d["regions"].add(r)
            d["products"].add(p)
    return seen


def _csv_fields(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    df = pd.read_csv(path, nrows=1000)
    kinds = {"i": "integer", "f": "number", "b": "boolean"}
    return [{"name": c, "type": kinds.get(df[c].dtype.kind, "string")} for c in df.columns]


def datapackage(name: str, root: Path, files: list[Path], variables: list[str]) -> dict[str, Any]:
    """A Frictionless Data Package (https://specs.frictionlessdata.io/data-package/) for the folder:
    one resource per results table (a sweep's runs are one table in many files), design tables and the
    codebook."""
    from experiments.paths import label
    from experiments.run import version

    parquet = [f for f in files if f.suffix == ".parquet"]
    groups: dict[Path, list[Path]] = {}
    for f in parquet:
        groups.setdefault(f.parent, []).append(f)
    resources = []
    for folder, members in groups.items():
        schema = _schema(root / members[0])
        for field in schema:
            if field["name"] == "variable":
                field["constraints"] = {"enum": variables}
        rname = label(("results" if folder == Path(".") else folder.as_posix()).replace("/", "-").lower())
        paths = [m.as_posix() for m in members]
        resources.append({"name": rname, "path": paths[0] if len(paths) == 1 else paths,
                          "profile": "tabular-data-resource", "format": "parquet",
                          "mediatype": "application/vnd.apache.parquet",
                          "description": "tidy long table: one row per run, week, variable, region and product",
                          "schema": {"fields": schema}})
    for f in files:
        if f.name == "design.csv":
            resources.append({"name": label(f.with_suffix("").as_posix().replace("/", "-").lower()),
                              "path": f.as_posix(), "profile": "tabular-data-resource", "format": "csv",
                              "mediatype": "text/csv",
                              "description": "sweep design: one row per run (key = run_id in the runs), "
                                             "its scenario, seed, weeks, varied parameters and status",
                              "schema": {"fields": _csv_fields(root / f)}})
    resources.append({"name": "codebook", "path": "codebook.csv", "profile": "tabular-data-resource",
                      "format": "csv", "mediatype": "text/csv",
                      "description": "the variables in the results: unit, label, what region holds",
                      "schema": {"fields": [{"name": c, "type": "string"} for c in CODEBOOK_FIELDS]}})
    return {"profile": "tabular-data-package", "name": label(name.lower()),
            "title": f"ree-abm results: {name}",
            "description": "Outputs of ree-abm, an agent-based model of the geopolitical rare-earth market. "
                           "See README.md and codebook.md.",
            "version": version(), "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "licenses": [{"name": "MIT", "title": "MIT License"}],
            "resources": resources}


# ------------------------------------------------------------------------------------------ codebook
CODEBOOK_FIELDS = ["variable", "unit", "label", "region_means", "regions", "products"]


def codebook_rows(present: dict[str, dict[str, set[str]]]) -> list[dict[str, str]]:
    """One row per variable in the data, in the order of :data:`model.results.OUTPUTS`; a variable the
    code no longer declares is listed with its unit unknown."""
    from model.results import OUTPUTS

    order = [v for v in OUTPUTS if v in present] + sorted(v for v in present if v not in OUTPUTS)
    rows = []
    for v in order:
        o = OUTPUTS.get(v)
        rows.append({"variable": v, "unit": o.unit if o else "unknown", "label": o.label if o else "not declared "
                     "by this code", "region_means": o.by if o else "",
                     "regions": " ".join(sorted(x for x in present[v]["regions"] if x)),
                     "products": " ".join(sorted(x for x in present[v]["products"] if x))})
    return rows


def codebook_csv(rows: list[dict[str, str]]) -> str:
    import csv

    buf = io.StringIO()
    w = csv.DictWriter(buf, CODEBOOK_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def codebook_md(rows: list[dict[str, str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|") or "–"

    lines = ["# Codebook", "", "## Columns of the results tables", "", "| column | meaning |", "|---|---|"]
    lines += [f"| `{c}` | {cell(d)} |" for c, d in COLUMN_DOCS.items()]
    lines += ["", "## Variables (the `variable` column)", "",
              "`region` holds what the last-but-two column says (empty where it says –); the last two columns "
              "list the values present in this data.", "",
              "| variable | unit | label | region holds | regions | products |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['variable']}` | {cell(r['unit'])} | {cell(r['label'])} | {cell(r['region_means'])} | "
              f"{cell(r['regions'])} | {cell(r['products'])} |" for r in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ inputs
def _toml_if_same(path: Path, recorded: dict[str, Any]) -> Path | None:
    """``path`` if it is a scenario file whose content equals ``recorded`` (a Scenario.to_dict())."""
    from model.scenario import Scenario, load_scenario

    try:
        return path if load_scenario(path, check=False).to_dict() == Scenario.model_validate(recorded).to_dict() else None
    except (ConfigError, OSError, ValueError):
        return None


def _candidates(name: str, refs: list[str], base: Path | None) -> list[Path]:
    from model.scenario import SCENARIO_DIR

    out = []
    for ref in refs:
        p = Path(ref)
        if base is not None and ref.endswith(".toml"):
            out.append(base / p)
        out += [p, SCENARIO_DIR / f"{p.stem}.toml"]
    return out + [SCENARIO_DIR / f"{name}.toml"]


def inputs(root: Path, sources: list[Path]) -> tuple[dict[str, bytes], list[str]]:
    """The input files for ``inputs/``: scenarios (``.json`` as recorded; ``.toml`` where a file with that
    content is found), their world files, and sweep specs; and notes on what could not be matched."""
    from experiments.paths import label

    files: dict[str, bytes] = {}
    notes: list[str] = []
    scenarios: dict[str, tuple[dict[str, Any], list[str], Path | None]] = {}
    for src in sources:
        rel = src.relative_to(root).as_posix()
        if (src / "manifest.json").is_file():
            m = _read_json(src / "manifest.json")
            spec_src = m.get("spec_source") or ""
            base = Path(spec_src).parent if spec_src else None
            refs = list(m.get("spec", {}).get("scenarios", []))
            for n, d in (m.get("scenarios") or {}).items():
                scenarios.setdefault(n, (d, refs, base))
            name = label(m.get("name") or src.name)
            files[f"inputs/specs/{name}.json"] = _dump(m.get("spec", {}))
            if spec_src and Path(spec_src).is_file() and _same_spec(Path(spec_src), m):
                files[f"inputs/specs/{name}.toml"] = Path(spec_src).read_bytes()
            else:
                notes.append(f"{rel or '.'}: spec file {spec_src or '(none recorded)'} not found or changed "
                             f"since; inputs/specs/{name}.json holds the spec as recorded")
        elif (src / "provenance.json").is_file():
            p = _read_json(src / "provenance.json")
            if isinstance(p.get("scenario"), dict):
                d = p["scenario"]
                refs = [p["scenario_source"]] if p.get("scenario_source") else []
                scenarios.setdefault(d.get("name", src.name), (d, refs, None))
    for n, (d, refs, base) in scenarios.items():
        stem = label(n)
        files[f"inputs/scenarios/{stem}.json"] = _dump(d)
        found = next((c for c in _candidates(n, refs, base) if c.is_file() and _toml_if_same(c, d)), None)
        if found is None:
            notes.append(f"scenario {n}: no scenario file with the recorded content found; "
                         f"inputs/scenarios/{stem}.json holds it")
            continue
        files[f"inputs/scenarios/{stem}.toml"] = found.read_bytes()
        try:
            from model.scenario import load_scenario

            world = load_scenario(found, check=False).world_path()
            files[f"inputs/worlds/{label(world.name)}"] = world.read_bytes()
        except (ConfigError, OSError) as exc:
            notes.append(f"scenario {n}: world file not copied ({exc})")
    return files, notes


def _same_spec(path: Path, manifest: dict[str, Any]) -> bool:
    from experiments.sweep import load_spec

    try:
        return load_spec(path).model_dump(mode="json", exclude={"source"}) == manifest.get("spec")
    except (ConfigError, OSError):
        return False


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=str) + "\n").encode()


# ------------------------------------------------------------------------------------------ environment
def distributions() -> dict[str, str]:
    """Installed distributions and their versions (importlib.metadata), by normalised name."""
    out = {}
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").strip()
        if name:
            out.setdefault(name.lower().replace("_", "-"), d.version)
    return dict(sorted(out.items()))


def recorded_codes(root: Path, sources: list[Path]) -> list[str]:
    """The model-code fingerprints the results recorded (manifests; a run folder's provenance)."""
    codes: list[str] = []
    for src in sources:
        for name in ("manifest.json", "provenance.json"):
            if (src / name).is_file():
                d = _read_json(src / name)
                codes += d.get("codes") or ([d["code"]] if d.get("code") else [])
    return list(dict.fromkeys(codes))


def environment(root: Path, sources: list[Path]) -> dict[str, Any]:
    from experiments.run import git_commit, version
    from experiments.sweep import code_fingerprint
    from model.market import KERNEL

    codes = recorded_codes(root, sources)
    return {
        "package": "ree-abm", "version": version(), "git_commit": git_commit(),
        "code_fingerprint": code_fingerprint(),
        "results_code_fingerprints": codes,
        "same_code": (codes == [code_fingerprint()]) if codes else None,
        "auction_kernel": KERNEL,
        "python": platform.python_version(), "python_implementation": platform.python_implementation(),
        "platform": platform.platform(), "machine": platform.machine(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "distributions": distributions(),
    }


# ------------------------------------------------------------------------------------------ README
def figure_command(rel: Path, root_name: str, sources: list[Path], root: Path) -> str:
    """The command that makes a figure file found at ``rel`` in the results folder."""
    parts = rel.parts
    if "figures" in parts:
        at = parts.index("figures")
        where = "/".join((root_name, *parts[:at]))
        return f"ree figures {where}"
    if rel.name == "prices.png" and (root / rel.parent / "provenance.json").is_file():
        from experiments.paths import label
        from model.scenario import SCENARIO_DIR

        p = _read_json(root / rel.parent / "provenance.json")
        scen = (p.get("scenario") or {}).get("name", "SCENARIO")
        source = Path(p.get("scenario_source") or "")
        if not (source.parent == SCENARIO_DIR and source.stem == scen):  # not a shipped scenario: the copy
            scen = f"{root_name}/inputs/scenarios/{label(scen)}.toml"
        seed = (p.get("seeds") or ["N"])[0]
        out = "/".join((root_name, *rel.parent.parts))
        return f"ree run {scen} --seed {seed} --weeks {p.get('weeks')} --out {out}"
    return "not known (not a file `ree run` or `ree figures` writes)"


def readme(name: str, root: Path, sources: list[Path], files: list[Path], inputs_: dict[str, bytes],
           env: dict[str, Any], rows: list[dict[str, str]], notes: list[str]) -> str:
    parquet = [f for f in files if f.suffix == ".parquet"]
    figures = [f for f in files if f.suffix in FIGURE_SUFFIXES]
    table = "runs" if any(f.parts[0] == "runs" for f in parquet) else (parquet[0].as_posix() if parquet else "")
    example = next((r for r in rows if r["variable"] == "price"), rows[0] if rows else None)
    lines = [f"# {name}: ree-abm results", "",
             "Outputs of ree-abm, an agent-based model of the geopolitical rare-earth market, packed by "
             f"`ree archive` on {env['created_utc']} with ree-abm {env['version']} (git {env['git_commit']}, "
             f"model code {env['code_fingerprint']}).", ""]
    if env["same_code"] is False:
        lines += [f"The results record model code {', '.join(env['results_code_fingerprints'])}, not the code "
                  "that packed them: re-running needs that code.", ""]
    lines += ["## Files", "",
              "| file | what it is |", "|---|---|",
              "| `README.md` | this file |",
              "| `datapackage.json` | Frictionless Data Package: every table, its files, format and fields |",
              "| `codebook.md`, `codebook.csv` | what each column means; each variable's unit, label and what "
              "its `region` holds |",
              "| `environment.json` | Python, platform, installed package versions, model code fingerprint |"]
    describe = {"results.parquet": "tidy table of one run (`ree run`)",
                "provenance.json": "how the run was made: version, git commit, scenario content, seed, weeks",
                "manifest.json": "sweep provenance: spec, scenarios, seeds, code fingerprint, run table with status",
                "design.csv": "one row per run: key, scenario, seed, weeks, varied parameters, status"}
    for f in files:
        if f.suffix in FIGURE_SUFFIXES:
            continue
        if f.parts[0] == "runs" and f.suffix == ".parquet":
            continue
        lines.append(f"| `{f.as_posix()}` | {describe.get(f.name, '')} |")
    n_runs = sum(f.parts[0] == "runs" for f in parquet)
    if n_runs:
        lines.append(f"| `runs/*.parquet` | {n_runs} files: the tidy table of one run each (run_id = the run's key "
                     "in design.csv); together a Parquet dataset |")
    for k in sorted(inputs_):
        what = ("as recorded in the results' provenance" if k.endswith(".json")
                else "the file the results came from (its content equals the recorded one)")
        if k.startswith("inputs/worlds/"):
            what = "the world file the scenario names (shipped with the model code above)"
        lines.append(f"| `{k}` | {what} |")
    if figures:
        lines += ["", "## Figures", "", "| figure | made by |", "|---|---|"]
        lines += [f"| `{f.as_posix()}` | `{figure_command(f, name, sources, root)}` |" for f in figures]
    lines += ["", "## Re-deriving a figure", "",
              "Install ree-abm at the version above (`pip install ree-abm=={v}` or the repository at git "
              "commit {c}), then, in the folder that holds the unpacked `{n}/`:".format(
                  v=env["version"], c=env["git_commit"], n=name), "",
              "```", f"ree figures {name}", "```", "",
              f"writes every figure again to `{name}/figures/`. Without the model, the data are plain Parquet:", "",
              "```python", "import pandas as pd", f'df = pd.read_parquet("{name}/{table}")']
    if example:
        reg = example["regions"].split()[0] if example["regions"] else ""
        prod = example["products"].split()[0] if example["products"] else ""
        lines += [f'x = df[(df.variable == "{example["variable"]}") & (df.region == "{reg}") & '
                  f'(df["product"] == "{prod}")]',
                  'x.groupby("date")["value"].median().plot()   # the median path over runs']
    if table == "runs" and "design.csv" in {f.as_posix() for f in files}:
        lines += [f'design = pd.read_csv("{name}/design.csv")   # the varied parameters, one row per run',
                  'df = df.merge(design.drop(columns=["scenario", "seed"]), left_on="run_id", right_on="key")']
    lines += ["```"]
    specs = sorted(k for k in inputs_ if k.startswith("inputs/specs/") and k.endswith(".toml"))
    if specs:
        lines += ["", "## Re-running the model", "",
                  "The same runs again, with the model code above (a run's key covers its inputs and the code, so "
                  "matching keys in `runs/` mean the same inputs):", "", "```"]
        lines += [f"ree sweep {name}/{k} --out rerun" for k in specs]
        lines += ["```", "", "A scenario the spec names by path must sit where the spec says; its copy is in "
                  "`inputs/scenarios/`."]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ the zip
def _mode() -> int:
    from experiments.paths import umask

    return 0o666 & ~umask()


def _entry(name: str, when: dt.datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    info.external_attr = (0o100000 | _mode()) << 16  # a regular file with the umask's mode
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def archive(results: str | Path, out: str | Path | None = None) -> Archive:
    """Pack the results folder ``results`` into ``out`` (default ``<results>.zip`` beside it).

    ConfigError (exit 2) if the folder is missing or holds no results; OutputError (exit 1) if the zip
    cannot be written. The zip is written to a temporary file and renamed: never half a zip.
    """
    from experiments.paths import ensure_dir, label, writing

    root = Path(results)
    sources = results_sources(root)
    name = label(root.resolve().name, "results")
    beside = root.parent if root.name not in ("", "..") else root.resolve().parent  # as given, for the message
    target = Path(out) if out is not None else beside / f"{name}.zip"
    ensure_dir(target.parent)
    files = _files(root, {target.resolve()})
    current = current_status(root, files)  # after kill -9 of a sweep: its runs' status as on disk
    parquet = [f for f in files if f.suffix == ".parquet"]
    present = _present(root, parquet)
    rows = codebook_rows(present)
    inputs_, notes = inputs(root, sources)
    env = environment(root, sources)
    generated = {
        "datapackage.json": _dump(datapackage(name, root, files, [r["variable"] for r in rows])),
        "codebook.csv": codebook_csv(rows).encode(),
        "codebook.md": codebook_md(rows).encode(),
        "environment.json": _dump(env),
        **inputs_,
    }
    generated["README.md"] = readme(name, root, sources, files, inputs_, env, rows, notes).encode()
    now = dt.datetime.now()
    names = []
    with writing(target):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                with zipfile.ZipFile(fh, "w") as z:
                    for arc, data in sorted(generated.items()):
                        z.writestr(_entry(f"{name}/{arc}", now), data)
                        names.append(arc)
                    for rel in files:
                        if rel.as_posix() in current:
                            z.writestr(_entry(f"{name}/{rel.as_posix()}", now), current[rel.as_posix()])
                            names.append(rel.as_posix())
                            continue
                        mtime = dt.datetime.fromtimestamp((root / rel).stat().st_mtime)
                        with open(root / rel, "rb") as src, z.open(_entry(f"{name}/{rel.as_posix()}", mtime), "w") as dst:
                            while chunk := src.read(1 << 20):
                                dst.write(chunk)
                        names.append(rel.as_posix())
                fh.flush()
                os.fchmod(fh.fileno(), _mode())
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return Archive(target, names, notes)

