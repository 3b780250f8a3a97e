"""Parameter sweeps that scale out and resume: a design (grid and/or sample) x an explicit seed list.

A sweep is many independent runs of :func:`experiments.run.run_one`. A spec file (TOML) names the
scenario(s), the horizon, the seeds and the parameters::

    name = "markup_entry"               # optional, default: the spec file's stem
    scenario = "baseline"               # or: scenarios = ["baseline", "myanmar_2025"]
    weeks = 104                         # optional, default: each scenario's horizon
    seeds = [1, 2, 3]                   # optional, default: each scenario's seed list

    [overrides]                         # fixed for every run (dotted keys into the world file;
    "behaviour.demand_growth_per_year" = 0.03       # list entries by id or name)
    "states.CN.reserve.max_weeks" = 39.0

    [grid]                              # full factorial over these values
    "behaviour.full_cost_markup" = [0.6, 0.72, 0.85]

    [sample]                            # n sampled points, crossed with the grid
    n = 8
    seed = 42                           # the design is reproducible
    method = "lhs"                      # lhs | sobol | uniform
    [sample.ranges]
    "behaviour.site_entry_rate" = [0.01, 0.06]                           # uniform
    "behaviour.thrift_rate_per_week" = { low = 0.0005, high = 0.005, log = true }
    "miners.mm_pangwa.count" = { low = 300, high = 450, integer = true }

Runs = scenarios x (grid points x sample points) x seeds, counted before the design is built: a design of
more than :data:`MAX_RUNS` (100,000) runs is refused with a ConfigError giving the count (``--max-runs`` /
``max_runs=`` raises the limit), so a typo in a grid or in ``sample.n`` fails at once instead of
exhausting memory. Each run has a stable key, ``<scenario>_s<seed>_<hash>``, the hash covering
everything its output depends on (see :func:`run_key`: the scenario's content with its timeline, the
world file's content, overrides, seed, weeks and the model code's fingerprint), and is written when it finishes, atomically (temporary file + rename),
to ``OUT/runs/<key>.parquet``: the tidy table of :mod:`model.results` with ``run_id`` = key, plus the run's
provenance in the Parquet schema metadata (``ree_run``). A run that raises is recorded in
``OUT/failed/<key>.json`` (error and traceback) and the sweep goes on. Running the same spec again skips
every run whose file exists and retries the failed ones, so a sweep killed at any moment (``kill -9`` of
the sweep or of a worker) resumes where it stopped; half-written temporary files are ignored and removed.

``OUT/manifest.json`` holds the provenance (package version, git commit, spec, scenarios, seeds) and the
run table (key, scenario, seed, weeks, parameters, status); ``OUT/design.csv`` is the same table for other
tools. The ``runs/`` folder is a Parquet dataset; :func:`load_sweep` reads it with the parameter columns
joined.

With ``posterior=`` (``ree sweep --posterior CSV --draws K``) every scenario, design point and seed runs
under K parameter sets drawn by weight from a calibration posterior (:func:`posterior_sets`); the drawn
values and the set's number (``draw``) are design columns and part of each run's key.

Runs go to a local process pool (``workers``; start method ``forkserver``, or ``spawn`` where there is
no fork) or to a Dask cluster (``scheduler="tcp://host:8786"`` or ``cluster="local:4"``). Workers return
each finished table to the sweep process, which writes it: a cluster needs the package installed on its
workers but no shared file system.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import itertools
import json
import logging
import math
import multiprocessing as mp
import os
import re
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.levers import apply_levers
from experiments.paths import ensure_dir, inside, name_problem, safe_name, writing
from experiments.run import atomic_write_bytes, atomic_write_json, progress_bar, provenance, run_one, version
from model.params import ConfigError, _read_toml, format_validation_error
from model.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

RUNS, FAILED, MANIFEST, DESIGN = "runs", "failed", "manifest.json", "design.csv"
CORRUPT = "corrupt"  # unreadable run files are moved here (out of the runs/ dataset) and recomputed
SUPERSEDED = "superseded"  # runs computed from an earlier scenario, world file or model code are moved here
LOCK = ".ree-lock"  # held (flock) by the process writing into an output folder
META_KEY = b"ree_run"  # Parquet schema metadata key holding a run's provenance
MAX_STRIKES = 2  # a run in flight when the pool broke this many times is recorded as failed


# ------------------------------------------------------------------------------------------------- spec
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A sampled parameter: uniform on [low, high], or log-uniform, or integer-valued."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _order(self) -> Range:
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    def value(self, u: float) -> float | int:
        """Map u in [0, 1) to the range."""
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.integer:
            lo, hi = math.ceil(self.low), math.floor(self.high)
            return int(min(hi, lo + math.floor(u * (hi - lo + 1))))
        return float(x)


def _as_range(v: Any) -> Any:
    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise ValueError("a range is [low, high] or { low = ..., high = ... }")
        both_int = all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        return {"low": v[0], "high": v[1], "integer": both_int}
    return v


class SampleSpec(_Strict):
    n: int = Field(ge=1, le=1_000_000)
    seed: int = Field(default=0, ge=0)
    method: Literal["lhs", "sobol", "uniform"] = "lhs"
    ranges: dict[str, Range]

    @field_validator("ranges", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        if not isinstance(v, dict) or not v:
            raise ValueError('give at least one range, e.g. "behaviour.full_cost_markup" = [0.6, 0.85]')
        return {k: _as_range(x) for k, x in v.items()}

    def points(self) -> list[dict[str, Any]]:
        """The sampled design: ``n`` dicts of override values, reproducible from ``seed``."""
        from scipy.stats import qmc

        keys = list(self.ranges)
        d = len(keys)
        if self.method == "lhs":
            u = qmc.LatinHypercube(d, rng=np.random.default_rng(self.seed)).random(self.n)
        elif self.method == "sobol":
            u = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(self.seed)).random(self.n)
        else:
            u = np.random.default_rng(self.seed).random((self.n, d))
        return [{k: self.ranges[k].value(float(row[j])) for j, k in enumerate(keys)} for row in u]


def _check_name(v: str) -> str:
    """A spec's ``name`` names its default output folder: it must be a safe file name."""
    problem = name_problem(v)
    if problem:
        from experiments.paths import RULE

        raise ValueError(f"not usable as a folder name because {problem}; {RULE} (without a name = ... line "
                         "the name is the spec file's name without .toml)")
    return v


class SweepSpec(_Strict):
    name: str
    scenarios: list[str] = Field(min_length=1)
    weeks: int | None = Field(default=None, ge=1, le=5200)
    seeds: list[int] | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    sample: SampleSpec | None = None
    source: str = ""  # the file it came from

    @model_validator(mode="before")
    @classmethod
    def _scenario(cls, data: Any) -> Any:
        if isinstance(data, dict) and "scenario" in data:
            data = dict(data)
            if "scenarios" in data:
                raise ValueError("give either scenario = \"name\" or scenarios = [...], not both")
            s = data.pop("scenario")
            data["scenarios"] = s if isinstance(s, list) else [s]
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("give at least one seed, e.g. seeds = [1, 2, 3]")
            if any(s < 0 for s in v) or len(set(v)) != len(v):
                raise ValueError("seeds must be distinct non-negative integers")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for k, vals in v.items():
            if not vals:
                raise ValueError(f"grid {k!r}: give at least one value")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> SweepSpec:
        sampled = set(self.sample.ranges) if self.sample else set()
        for a, b, what in ((self.grid, sampled, "grid and sample.ranges"),
                           (self.overrides, set(self.grid) | sampled, "overrides and grid/sample")):
            both = set(a) & set(b)
            if both:
                raise ValueError(f"{what} both set {sorted(both)}; set each parameter in one place")
        return self

    def points(self) -> list[dict[str, Any]]:
        """Design points (override dicts, without the fixed overrides): grid x sample."""
        grid = [dict(zip(self.grid, combo, strict=True)) for combo in itertools.product(*self.grid.values())]
        sample = self.sample.points() if self.sample else [{}]
        return [{**g, **s} for g in grid for s in sample]

    @property
    def parameters(self) -> list[str]:
        """The varied parameters, in spec order."""
        return [*self.grid, *(self.sample.ranges if self.sample else {})]


def parse_spec(raw: dict[str, Any], source: str = "sweep spec", name: str = "sweep") -> SweepSpec:
    try:
        return SweepSpec.model_validate({"name": name, **raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec TOML (raises ConfigError naming each bad field)."""
    path = Path(path)
    return parse_spec(_read_toml(path), source=str(path), name=path.stem)


# ------------------------------------------------------------------------------------------------- runs
@dataclasses.dataclass(frozen=True)
class RunTask:
    """Everything a worker needs for one run (picklable; the scenario travels as data)."""

    key: str
    scenario: Scenario
    seed: int
    weeks: int
    overrides: dict[str, Any]  # fixed + design point
    point: dict[str, Any]  # the design point alone (the varied parameters; with a posterior, its draw too)
    draw: int | None = None  # index of the posterior parameter set (``--posterior``), None without one


@dataclasses.dataclass
class RunOutcome:
    key: str
    status: Literal["done", "failed"]
    data: bytes = b""  # the run's Parquet file
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


def _canon(v: Any) -> Any:
    """Numbers hash by value: 2 and 2.0 name the same run (also inside lists and tables)."""
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_canon(x) for x in v]
    if isinstance(v, bool) or not isinstance(v, int | float):
        return v
    return float(v)


def _digest(obj: Any) -> str:
    blob = json.dumps(_canon(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def scenario_content(scenario: Scenario) -> str:
    """Hash of what a scenario contributes to its runs' output: its name (it labels the output), start,
    validated timeline and the validated world its file resolves to (the world's content, not its path).

    Left out: its own ``overrides`` (a run key covers the merged overrides), ``weeks`` and ``seeds`` (each
    run has its own), ``description``, ``cites`` and the file's location. So a scenario copied to another
    path is the same scenario; renamed, it is another one (the name is in every output row).
    """
    world = scenario.model_copy(update={"overrides": {}}).load_world()
    return _digest({"name": scenario.name, "start": scenario.start.isoformat(),
                    "timeline": [item.to_dict() for item in scenario.build_timeline()],
                    "world": world.model_dump(mode="json")})


def run_key(scenario: Scenario | str, overrides: dict[str, Any], seed: int, weeks: int,
            content: str | None = None, draw: int | None = None) -> str:
    """Stable name of a run: ``<scenario>_s<seed>_<hash>``, the hash covering everything the run's output
    depends on: the scenario's content (:func:`scenario_content`: name, start, timeline, world), the merged
    overrides (the scenario's own, the sweep's fixed ones and the design point), seed, weeks and the model
    code (:func:`code_fingerprint`). Editing a scenario, its world file or the model gives new keys, so
    a sweep never serves a run computed from other inputs. ``scenario``: a Scenario, or a name/path to
    load; ``content``: its :func:`scenario_content`, when the caller has it already. ``draw``: the index
    of a posterior parameter set (``ree sweep --posterior``; its values are in ``overrides``): a set drawn
    twice (draws are with replacement) is two runs, as it counts twice; without a posterior it is left
    out, so keys are what they were.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    merged = {**scenario.overrides, **overrides}
    body = {"scenario": content or scenario_content(scenario),
            "overrides": {k: merged[k] for k in sorted(merged)},
            "seed": int(seed), "weeks": int(weeks), "code": code_fingerprint()}
    if draw is not None:
        body["draw"] = int(draw)
    h = _digest(body)[:12]
    # the key is a file name: a scenario name with '/' or a leading '.' or '_' (which Parquet datasets
    # skip) is made safe here; ordinary names are kept
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", scenario.name)
    if not prefix or prefix[0] in "._-" or len(prefix) > 60:
        prefix = prefix.lstrip("._-")[:60] or "run"
    return f"{prefix}_s{seed}_{h}"


def _resolve_scenario(ref: str, spec: SweepSpec) -> Scenario:
    """A shipped name, or a path (relative to the spec file first). A problem is reported against the spec
    that names the scenario (ConfigError)."""
    try:
        if spec.source and ref.endswith(".toml"):
            p = Path(spec.source).parent / ref
            if p.exists():
                return load_scenario(p)
        return load_scenario(ref)
    except ConfigError as exc:
        raise ConfigError(f"{spec.source or spec.name}: {exc}") from None


def _check_overrides(sc: Scenario, spec: SweepSpec, draws: list[dict[str, Any]] | None = None,
                     posterior: str = "--posterior") -> None:
    """Fail before any run if an override key or an extreme value is wrong (ConfigError naming it).
    ``draws``: posterior parameter sets (``--posterior``, named ``posterior`` in messages), each column
    probed at its lowest and highest drawn value."""
    varied: dict[str, list[Any]] = {k: list(vals) for k, vals in spec.grid.items()}
    if spec.sample:
        varied.update({k: [r.value(0.0), r.value(1.0 - 1e-12)] for k, r in spec.sample.ranges.items()})
    drawn = {k: sorted({d[k] for d in draws}) for k in draws[0]} if draws else {}
    where = spec.source or spec.name

    def probe(ov: dict[str, Any], what: str) -> None:
        try:
            # policy levers (policy.Stockpile[US].target_days) go into the timeline, checked against the
            # world and the run's dates; the rest are world overrides
            levered, world = apply_levers(sc, {**spec.overrides, **ov})
            if levered is sc:
                sc.with_overrides(world).load_world()
            else:
                levered.with_overrides(world).check()
        except ConfigError as exc:
            text = str(exc)
            for k in ov:  # a lever's message names its key already
                text = text.removeprefix(f"{k!r}: ")
            if what.startswith(posterior):
                raise ConfigError(f"{what} is not a parameter the world of scenario {sc.name} accepts: {text}; "
                                  "give the posterior.csv that ree calibrate wrote for this world (its "
                                  "parameter columns come before 'weight'), or sweep a scenario whose world "
                                  "has the parameter") from None
            raise ConfigError(f"{where}: {what}: {text}") from None

    probe({}, "[overrides]" if spec.overrides else f"scenario {sc.name}")
    for k, vals in (varied | drawn).items():
        probe({k: vals[0]}, f"{posterior}: column {k!r}" if k in drawn else f"parameter {k!r}")
    for k, vals in (varied | drawn).items():
        for v in vals[1:]:
            probe({k: v}, f"{posterior}: column {k!r} = {v!r}" if k in drawn else f"parameter {k!r} = {v!r}")


# A design is sized arithmetically before anything is built: a bigger one is refused (``--max-runs`` raises
# the limit). 100,000 runs are ~2 days on 2 cores (~2 s a run); planning them (keys, manifest, design.csv)
# takes seconds and a few hundred MB, and both grow linearly: 10^7 runs would need minutes and gigabytes
# before the first run, and a typo in a grid or in sample.n easily asks for that.
MAX_RUNS = 100_000


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def design_size(spec: SweepSpec) -> tuple[int, str]:
    """Number of runs of a sweep spec and how it was counted, without building the design."""
    grid = [len(v) for v in spec.grid.values()]
    parts = [_count(len(spec.scenarios), "scenario")]
    if grid:
        how = f" ({' x '.join(map(str, grid))})" if len(grid) > 1 else ""
        parts.append(_count(math.prod(grid), "grid point") + how)
    if spec.sample:
        parts.append(_count(spec.sample.n, "sample point"))
    points = math.prod(grid) * (spec.sample.n if spec.sample else 1)
    if spec.seeds is not None:
        parts.append(_count(len(spec.seeds), "seed"))
        return len(spec.scenarios) * points * len(spec.seeds), " x ".join(parts)
    seeds = [len(_resolve_scenario(ref, spec).seeds) for ref in spec.scenarios]  # each scenario's own list
    parts[0] = f"({' + '.join(map(str, seeds))} seeds of the {_count(len(spec.scenarios), 'scenario')})"
    return points * sum(seeds), " x ".join(parts)


def check_size(total: int, how: str, where: str, max_runs: int | None = None) -> None:
    """Refuse a design of more than ``max_runs`` (default :data:`MAX_RUNS`) runs (ConfigError)."""
    limit = MAX_RUNS if max_runs is None else max_runs
    if total > limit:
        raise ConfigError(f"{where}: the design has {total:,} runs = {how}, more than the limit of {limit:,} "
                          f"runs; make the design smaller or raise the limit with --max-runs {total}")


def check_max_runs(max_runs: int | None) -> None:
    if max_runs is not None and max_runs < 1:
        raise ConfigError(f"--max-runs {max_runs}: must be a positive number of runs (default {MAX_RUNS:,})")


def plan(spec: SweepSpec, points: list[dict[str, Any]] | None = None, allow_repeats: bool = False,
         draws: list[dict[str, Any]] | None = None, posterior: str = "--posterior") -> list[RunTask]:
    """All runs of a spec, in a stable order (scenario, design point, posterior draw, seed).

    A design that names the same run twice is an error unless ``allow_repeats`` (Morris trajectories
    can cross); repeated runs share one key and run once. ``draws``: parameter sets from a calibration
    posterior (:func:`posterior_sets`); every design point and seed runs under each, its values
    overriding the world's like the design's parameters, its index in the key (:func:`run_key`) and in
    the point as ``draw``.
    """
    points = spec.points() if points is None else points
    sets: list[tuple[int | None, dict[str, Any]]] = list(enumerate(draws)) if draws else [(None, {})]
    tasks: list[RunTask] = []
    for ref in spec.scenarios:
        sc = _resolve_scenario(ref, spec)
        _check_overrides(sc, spec, draws, posterior)
        weeks = spec.weeks or sc.weeks
        content = scenario_content(sc)  # once per scenario: it validates the world
        for point in points:
            for d, drawn in sets:
                overrides = {**spec.overrides, **point, **drawn}
                row = point if d is None else {**point, DRAW: d, **drawn}
                for seed in spec.seeds or sc.seeds:
                    key = run_key(sc, overrides, seed, weeks, content, draw=d)
                    tasks.append(RunTask(key, sc, int(seed), weeks, overrides, row, d))
    keys = [t.key for t in tasks]
    if not allow_repeats and len(set(keys)) != len(keys):
        from collections import Counter  # not keys.count(k) per key: quadratic in the design size

        dup = sorted(k for k, c in Counter(keys).items() if c > 1)
        raise ConfigError(f"{spec.source or spec.name}: the design repeats runs ({len(dup)} duplicate keys, "
                          f"e.g. {dup[0]}); remove repeated grid values or seeds")
    return tasks


# ------------------------------------------------------------------------------- calibration posterior
DRAW = "draw"  # design column: index of the posterior parameter set a run used
DRAW_SEED = 0  # the draw's generator seed: the same as ``ree validate --posterior``


def posterior_sets(path: str | Path, k: int | None, spec: SweepSpec) -> list[dict[str, Any]]:
    """``k`` parameter sets drawn by weight from a ``posterior.csv`` that ``ree calibrate`` wrote (seeded:
    the same sets every time, those ``ree validate --posterior PATH --draws K`` uses). ConfigError naming
    the option and the fix for a missing or malformed file, ``k`` < 1, or a column the spec also sets
    (whether each column is a parameter of the scenarios' worlds is checked by :func:`plan`)."""
    from experiments.validate import posterior_draws

    if k is not None and k < 1:
        raise ConfigError(f"--draws {k}: must be at least 1 parameter set drawn from --posterior (default 10)")
    sets = posterior_draws(path, 10 if k is None else k, seed=DRAW_SEED)
    both = [c for c in sets[0] if c in {*spec.overrides, *spec.parameters}]
    if both:
        raise ConfigError(f"--posterior {str(path)!r}: column {both[0]!r} is also set by the spec "
                          f"{spec.source or spec.name} ([overrides], [grid] or [sample.ranges]); set each "
                          "parameter in one place: drop it from the spec (the posterior's draws then vary it)")
    if DRAW in sets[0]:
        raise ConfigError(f"--posterior {str(path)!r}: a column is named {DRAW!r}, the design's own column "
                          "for the draw's number; rename it")
    return sets


def _posterior_extra(path: str | Path | None, sets: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What the manifest records of a posterior (file, its hash, the draws)."""
    if not sets:
        return {}
    return {"posterior": {"path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                          "draws": len(sets), "seed": DRAW_SEED, "sets": sets}}


def _parquet_bytes(df: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    md = dict(table.schema.metadata or {})
    md[META_KEY] = json.dumps(meta, default=str).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(md), buf, compression="zstd")
    return buf.getvalue()


@functools.cache
def code_fingerprint() -> str:
    """Hash of the model's code and data (``model/``, ``agents/``, the kernel's ``.pyx`` and its build):
    what a run's numbers depend on. Computed once per process.

    Run keys include it (:func:`run_key`): after any edit there (a docstring too; telling a harmless edit
    from a real one is not attempted) a sweep recomputes its runs and moves the old ones to
    ``superseded/``. Every run file records it as well.
    """
    import model.params

    # located through a submodule: a tests/model folder can shadow the top-level package under pytest
    base = Path(model.params.__file__).resolve().parent.parent
    h = hashlib.sha256()
    for root in (base / "model", base / "agents"):
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
                h.update(p.relative_to(root.parent).as_posix().encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def execute(task: RunTask) -> RunOutcome:
    """Run one task in a worker; never raises (an error becomes a ``failed`` outcome)."""
    t0 = time.perf_counter()
    meta = {"key": task.key, "scenario": task.scenario.name, "seed": task.seed, "weeks": task.weeks,
            "overrides": task.overrides, "host": socket.gethostname(), "pid": os.getpid(),
            "version": version(), "code": code_fingerprint()}
    try:
        df = run_one(task.scenario, task.seed, task.weeks, task.overrides, run_id=task.key)
        meta["seconds"] = round(time.perf_counter() - t0, 3)
        meta["finished_utc"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return RunOutcome(task.key, "done", _parquet_bytes(df, meta), meta)
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded and the sweep goes on
        meta.update(seconds=round(time.perf_counter() - t0, 3), error=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(),
                    finished_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        return RunOutcome(task.key, "failed", meta=meta)


def read_run_meta(path: str | Path) -> dict[str, Any]:
    """The provenance a sweep stored inside one run file."""
    import pyarrow.parquet as pq

    md = pq.read_schema(path).metadata or {}
    return json.loads(md[META_KEY]) if META_KEY in md else {}


# -------------------------------------------------------------------------------------------- executors
def _mp_context() -> mp.context.BaseContext:
    """forkserver where it exists (workers fork from a server that has imported the model), else spawn."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["experiments.sweep"])
        return ctx
    return mp.get_context("spawn")


@contextlib.contextmanager
def _workers_skip_main() -> Iterator[None]:
    """Worker processes re-run the parent's ``__main__`` from its path; when that path is no file
    (``python - < script``) they would die at start. They need nothing from it, so hide it meanwhile."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended: no such process, another user's (the pid was reused), or a zombie
    (dead, not yet reaped by its parent, which may be reading our pipes until we exit)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):  # no /proc: kill(pid, 0) is all there is
        return False


def _leave_on_interrupt(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def quiet_worker() -> None:
    """Pool-worker initializer: Ctrl-C (SIGINT to the terminal's whole process group) ends a worker with
    ``SystemExit`` instead of ``KeyboardInterrupt``. The sweep process reports the interrupt; a worker that
    was idle, waiting on the pool's queue, used to print a KeyboardInterrupt traceback from
    ``multiprocessing`` as it died, and one in a run still does nothing else (the pool catches what a task
    raises)."""
    import signal

    signal.signal(signal.SIGINT, _leave_on_interrupt)


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A local pool of ``workers`` processes for runs (``ree run-all``, ``validate``, ``calibrate``): forked
    from the forkserver (:func:`_mp_context`), leaving quietly on Ctrl-C (:func:`quiet_worker`). The sweep's
    own pool also watches its parent (:func:`_watch_parent`)."""
    return cf.ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=quiet_worker)


def _watch_parent(pid: int, every_s: float = 1.0) -> None:
    """Pool-worker initializer: exit when the sweep process is gone (``kill -9`` of the sweep would
    otherwise leave idle workers behind, blocked on a queue that no one will ever fill); leave quietly on
    Ctrl-C (:func:`quiet_worker`)."""
    import threading

    quiet_worker()

    def watch() -> None:
        while True:
            time.sleep(every_s)
            if _gone(pid):
                os._exit(1)

    threading.Thread(target=watch, name="ree-parent-watch", daemon=True).start()


def _failed(t: RunTask, error: str) -> RunOutcome:
    """The record of a run that died outside :func:`execute` (worker killed, result lost)."""
    return RunOutcome(t.key, "failed", meta={"key": t.key, "scenario": t.scenario.name, "seed": t.seed,
                                             "weeks": t.weeks, "overrides": t.overrides, "error": error,
                                             "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})


def _in_process(tasks: list[RunTask]) -> Iterator[RunOutcome]:
    for t in tasks:
        yield execute(t)


def _process_pool(tasks: list[RunTask], workers: int) -> Iterator[RunOutcome]:
    """A process pool that survives the death of a worker.

    At most ``workers + 1`` runs are in flight. If a worker dies (killed, out of memory) the pool breaks;
    the runs in flight are resubmitted to a new pool, and a run that was in flight during
    ``MAX_STRIKES`` breaks is recorded as failed.
    """
    with _workers_skip_main():
        yield from _pool_rounds(tasks, workers)


def _pool_rounds(tasks: list[RunTask], workers: int) -> Iterator[RunOutcome]:
    pending = list(reversed(tasks))
    strikes: dict[str, int] = {}
    while pending:
        inflight: dict[cf.Future, RunTask] = {}
        broken = False
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_watch_parent,
                                    initargs=(os.getpid(),)) as pool:
            try:
                while pending or inflight:
                    while pending and len(inflight) < workers + 1:
                        t = pending.pop()
                        try:
                            fut = pool.submit(execute, t)
                        except cf.process.BrokenProcessPool:  # a worker died since the last wait: the run
                            pending.append(t)  # was never in flight, so it goes back to the queue, not lost
                            raise
                        inflight[fut] = t
                    done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        t = inflight.pop(fut)
                        try:
                            outcome = fut.result()
                        except cf.process.BrokenProcessPool:
                            inflight[fut] = t
                            raise
                        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                            outcome = _failed(t, f"{type(exc).__name__}: {exc}")
                        yield outcome
            except cf.process.BrokenProcessPool:
                broken = True
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if broken:
            log.warning("a worker process died; restarting the pool and resubmitting %d run(s)", len(inflight))
            for t in inflight.values():
                strikes[t.key] = strikes.get(t.key, 0) + 1
                if strikes[t.key] >= MAX_STRIKES:
                    yield _failed(t, f"WorkerDied: the worker process died {MAX_STRIKES} times while this run "
                                     "was in flight (killed, out of memory or crashed)")
                else:
                    pending.append(t)


# ------------------------------------------------------------------------------- executor options
# Local worker processes (``--workers N``, ``--cluster local:N``) run on this machine: more than 4 per
# core only costs memory (each holds a model), and a typo such as 10000 would fork that many processes.
MAX_WORKERS_PER_CORE = 4
SCHEDULER_CONNECT_S = 10.0  # how long to wait for a Dask scheduler to answer before giving up


def max_local_workers() -> int:
    return MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)


def check_workers(workers: int, option: str = "--workers") -> int:
    """A count of local worker processes: 1 .. :func:`max_local_workers` (ConfigError naming ``option``)."""
    hi = max_local_workers()
    if not 1 <= workers <= hi:
        raise ConfigError(f"{option} {workers}: must be between 1 and {hi} worker processes "
                          f"({MAX_WORKERS_PER_CORE} x this machine's {os.cpu_count() or 1} cores)")
    return workers


def parse_cluster(cluster: str) -> int:
    """``local:N`` -> N (1 .. :func:`max_local_workers`)."""
    m = re.fullmatch(r"local:(-?\d+)", cluster.strip())
    if not m:
        raise ConfigError(f"--cluster {cluster!r}: expected local:N (N worker processes), e.g. local:4")
    n, hi = int(m.group(1)), max_local_workers()
    if not 1 <= n <= hi:
        raise ConfigError(f"--cluster {cluster}: N must be between 1 and {hi} worker processes "
                          f"({MAX_WORKERS_PER_CORE} x this machine's {os.cpu_count() or 1} cores)")
    return n


def parse_scheduler(address: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (or ``tls://``, or ``HOST:PORT``) -> (host, port); ConfigError if malformed."""
    m = re.fullmatch(r"(?:(?:tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?", address.strip())
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise ConfigError(f"--scheduler {address!r}: expected a Dask scheduler address tcp://HOST:PORT "
                          f"(port 1-65535), e.g. tcp://10.0.0.5:8786")
    return m.group(1).strip("[]"), int(m.group(2))


def connect_scheduler(address: str, timeout: float = SCHEDULER_CONNECT_S) -> None:
    """Fail fast (ConfigError) when nothing listens at the scheduler's address."""
    host, port = parse_scheduler(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:  # refused, unknown host, unreachable, TimeoutError
        raise ConfigError(f"--scheduler {address}: cannot connect ({exc.strerror or str(exc) or type(exc).__name__}); "
                          f"is a Dask scheduler running there (dask scheduler --port {port}) and reachable?"
                          ) from None


def check_executor(workers: int | None, scheduler: str | None, cluster: str | None) -> None:
    """Validate the executor options together, before anything is planned or run (no network)."""
    if scheduler is not None and cluster is not None:
        raise ConfigError(f"--scheduler {scheduler} and --cluster {cluster}: give one of them, not both")
    if workers is not None:
        check_workers(workers)
        if scheduler is not None or cluster is not None:
            where = f"--scheduler {scheduler}" if scheduler is not None else f"--cluster {cluster}"
            raise ConfigError(f"--workers {workers}: local worker processes do not apply with {where}; "
                              "give one of them")
    if cluster is not None:
        parse_cluster(cluster)
    if scheduler is not None:
        parse_scheduler(scheduler)


def _dask(tasks: list[RunTask], scheduler: str | None, cluster: str | None) -> Iterator[RunOutcome]:
    """Submit every run to a Dask cluster; a run whose worker died repeatedly is recorded as failed."""
    with _workers_skip_main():
        yield from _dask_runs(tasks, scheduler, cluster)


def dask_log_level() -> int:
    """How much of Dask's own logging (``distributed.*``) to show: INFO when this process logs INFO (``ree
    sweep --verbose``, or a caller's ``logging.basicConfig(level=logging.INFO)``), else only errors. Dask
    logs every scheduler, worker and connection start and stop at INFO, and warns about slow event loops and
    workers killed at shutdown; a sweep reports its own failures."""
    return logging.INFO if logging.getLogger().getEffectiveLevel() <= logging.INFO else logging.ERROR


@contextlib.contextmanager
def quiet_dask(level: int | None = None) -> Iterator[int]:
    """Dask's loggers at ``level`` (default :func:`dask_log_level`) for the block, then as they were.

    Importing ``distributed`` sets its loggers' levels (``distributed`` at INFO) from Dask's config, so this
    runs after the import; loggers Dask gave a level of their own (``distributed.client``) are raised too.
    """
    import distributed  # noqa: F401 - its import sets the levels changed here

    level = dask_log_level() if level is None else level
    names = ["distributed", *(n for n, lg in logging.root.manager.loggerDict.items()
                              if n.startswith("distributed.") and isinstance(lg, logging.Logger)
                              and lg.level != logging.NOTSET)]
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(level if n == "distributed" else max(level, old[n]))
    try:
        yield level
    finally:
        for n, lv in old.items():
            logging.getLogger(n).setLevel(lv)


def _dask_runs(tasks: list[RunTask], scheduler: str | None, cluster: str | None) -> Iterator[RunOutcome]:
    with quiet_dask() as level:
        yield from _dask_client_runs(tasks, scheduler, cluster, level)


@contextlib.contextmanager
def dask_client(scheduler: str | None, cluster: str | None, log_level: int) -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler at ``scheduler``, or on a ``LocalCluster`` of
    ``cluster="local:N"`` single-threaded worker processes started (and closed) here; the workers' model
    code is compared with this process's (a warning when it differs)."""
    from distributed import Client, LocalCluster

    local = None
    if cluster:
        # silence_logs: the level of the worker processes' log handler. --verbose: INFO, as here; otherwise
        # CRITICAL, not ERROR: a worker whose heartbeat is in flight while the cluster closes logs "Failed to
        # communicate with scheduler during heartbeat" with a traceback at ERROR (dask/distributed#7105, seen
        # under load); a run's own failure comes back to this process and the sweep records it. The
        # scheduler's HTTP server (no dashboard) on a free port, not 8787, so two sweeps (or anything on 8787)
        # do not collide with a warning
        local = LocalCluster(n_workers=parse_cluster(cluster), threads_per_worker=1, processes=True,
                             dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                             silence_logs=log_level if log_level <= logging.INFO else logging.CRITICAL)
        client = Client(local)
    else:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_CONNECT_S:g}s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({exc})") from None
    try:
        _check_workers(client)
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


def _dask_client_runs(tasks: list[RunTask], scheduler: str | None, cluster: str | None,
                      log_level: int) -> Iterator[RunOutcome]:
    from distributed import as_completed

    with dask_client(scheduler, cluster, log_level) as client:
        futures: dict = {}
        try:
            futures = {client.submit(execute, t, key=f"ree-run-{t.key}", pure=False): t for t in tasks}
            for fut in as_completed(futures):
                t = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection to a worker, ...
                    outcome = _failed(t, f"{type(exc).__name__}: {exc}")
                fut.release()
                yield outcome
        except BaseException:
            client.cancel(list(futures))
            raise


def _worker_version() -> str:
    return f"ree-abm {version()}, code {code_fingerprint()}"


def _check_workers(client) -> None:
    """Warn when cluster workers run other model code than this sweep (see :func:`code_fingerprint`)."""
    mine = _worker_version()
    try:
        theirs = client.run(_worker_version)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not ask the Dask workers for their ree-abm version: %s", exc)
        return
    other = {w: v for w, v in theirs.items() if v != mine}
    if other:
        log.warning("Dask workers run a different ree-abm (%s) than this sweep (%s): results may differ",
                    sorted(set(other.values())), mine)


# ------------------------------------------------------------------------------------------------ sweep
@dataclasses.dataclass
class SweepSummary:
    name: str
    out: Path
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    errors: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"sweep {self.name}: {self.total} runs: {self.done} done, {self.failed} failed, "
                 f"{self.skipped} skipped (already done) in {self.seconds:.1f} s",
                 f"  wrote {self.out}/{RUNS}/ (one Parquet file per run), {MANIFEST}, {DESIGN}"]
        if self.failed:
            lines.append(f"  failed runs are recorded in {self.out}/{FAILED}/; first error: {self.errors[0]}")
            lines.append("  run the same command again to retry them")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _clean_temp(folder: Path) -> int:
    """Remove half-written temporary files left by a killed sweep (they are never read)."""
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


# ----------------------------------------------------------------------------------- folder safety
_HELD: dict[Path, list] = {}  # output folders this process has locked: [file object, depth]


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.ree-lock`` (``fcntl.flock``) while writing into ``out``.

    A second sweep or sensitivity analysis into the same folder fails at once with a ConfigError naming
    the folder and the pid and host holding it (exit code 2), instead of computing every run twice.
    The kernel releases the lock when its holder dies (``kill -9`` included), so a killed sweep resumes
    without cleanup; the lock file itself stays. Re-entrant within one process.
    """
    out = Path(out)
    key = out.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no lock
        yield
        return
    path = out / LOCK
    with writing(path):
        fh = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ConfigError(f"{out}: another sweep is writing into this folder ({holder}); wait for it to "
                              "finish or choose another --out") from None
        with writing(path):
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on host {socket.gethostname()}, since "
                     f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n")
            fh.flush()
        _HELD[key] = [fh, 1]
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def check_run_file(path: Path, key: str) -> str:
    """Why the run file ``path`` cannot be the finished run ``key`` ("" if it can): its Parquet footer
    must read, and the provenance stored in it must name the key."""
    import pyarrow.parquet as pq

    try:
        md = pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError...: any unreadable footer
        return f"unreadable Parquet file ({type(exc).__name__}: {exc})"
    meta = (md.metadata or {}).get(META_KEY)
    if meta is None:
        return "no run provenance in the file (not written by a sweep)"
    try:
        stored = json.loads(meta).get("key")
    except (ValueError, AttributeError):
        return "unreadable run provenance in the file"
    if stored != key:
        return f"the file holds run {stored!r}"
    return ""


def _move_aside(out: Path, path: Path) -> Path:
    """Move a bad run file to ``out/corrupt/<name>.corrupt`` (never overwriting an earlier one)."""
    dest_dir = out / CORRUPT
    with writing(dest_dir):
        dest_dir.mkdir(exist_ok=True)
        dest = dest_dir / f"{path.name}.corrupt"
        n = 1
        while dest.exists():
            n += 1
            dest = dest_dir / f"{path.name}.{n}.corrupt"
        os.replace(path, dest)
    return dest


def _signature(scenario: str, seed: Any, weeks: Any, overrides: dict[str, Any]) -> tuple[str, int, int, str]:
    """What a run is in the design (scenario name, seed, weeks, overrides), apart from the content its key
    also covers."""
    return str(scenario), int(seed), int(weeks), _digest(overrides or {})


def _superseded_by(path: Path, signatures: set[tuple[str, int, int, str]]) -> bool:
    """Whether the run file ``path`` is a run of this design computed from other content (another version of
    its scenario, world file or the model code): its stored provenance names one of ``signatures``."""
    try:
        m = read_run_meta(path)
        return _signature(m["scenario"], m["seed"], m["weeks"], m.get("overrides") or {}) in signatures
    except Exception:  # noqa: BLE001 - unreadable or foreign provenance: not a run of this design
        return False


def _supersede(out: Path, paths: list[Path], old: dict[str, Any]) -> str:
    """Move run files (and the manifest that listed them) to ``out/superseded/``, never overwriting."""
    dest_dir = out / SUPERSEDED
    with writing(dest_dir):
        dest_dir.mkdir(exist_ok=True)
        for path in paths:
            dest, n = dest_dir / path.name, 1
            while dest.exists():
                n += 1
                dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
            os.replace(path, dest)
        if old:
            dest, n = dest_dir / MANIFEST, 1
            while dest.exists():
                n += 1
                dest = dest_dir / f"manifest.{n}.json"
            atomic_write_json(old, dest)
    return (f"{len(paths)} run(s) in {out / RUNS} were computed from another version of the scenario, its world "
            f"file or the model code: they are moved to {dest_dir}/ (kept, never read with this sweep's runs) "
            "and computed again")


def check_design(out: Path, tasks: list[RunTask], fingerprint: str, keys: set[str] | None = None,
                 also: Iterable[RunTask] = ()) -> str:
    """Refuse a folder whose runs/ holds runs that are not part of this design; set aside runs of this
    design that were computed from other content; a note when the design changed but only grew (more
    seeds, grid values, methods: finished runs are reused).

    Mixing designs in one runs/ folder would make ``pd.read_parquet(OUT/runs)`` and arrow datasets
    return runs of both, so that is a ConfigError (exit 2) naming the folder and the earlier spec. A run
    file whose key is not in the design but whose stored provenance (scenario name, seed, weeks,
    overrides) is a run of it was computed from an earlier scenario, world file or model code (all in the
    key, see :func:`run_key`): it is moved to ``out/superseded/`` (with the manifest that listed it) and
    its run is computed again; nothing is lost and nothing mixes. ``keys``: every run key the spec may
    write (default: the tasks'); ``also``: further runs the spec may write (other sensitivity methods).
    """
    keys = {t.key for t in tasks} if keys is None else keys
    foreign = sorted(p for p in (out / RUNS).glob("*.parquet") if p.stem not in keys) \
        if (out / RUNS).is_dir() else []
    old: dict[str, Any] = {}
    if (out / MANIFEST).is_file():
        try:
            old = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            old = {}
    stale: list[Path] = []
    if foreign:
        signatures = {_signature(t.scenario.name, t.seed, t.weeks, t.overrides) for t in (*tasks, *also)}
        stale = [p for p in foreign if _superseded_by(p, signatures)]
        foreign = [p for p in foreign if p not in set(stale)]
    if foreign:
        was = (f"{old.get('kind', 'sweep')} {old.get('name')!r} from {old.get('spec_source') or '?'}"
               if old else "runs without a manifest")
        raise ConfigError(f"{out}: this folder holds another design ({was}): {len(foreign)} of its run files "
                          f"(e.g. {RUNS}/{foreign[0].name}) are not runs of this spec, and one runs/ folder "
                          "must hold one design; choose another --out, or delete that folder to replace it")
    notes = []
    if stale:
        notes.append(_supersede(out, stale, old))
        log.warning(notes[-1])
    if old and old.get("spec_fingerprint") not in (None, fingerprint):
        notes.append(f"the spec changed since this folder was last written (its runs are all part of the new "
                     f"design and are reused); the previous manifest is kept as {_archive_manifest(out, old)}")
    return "; ".join(notes)


def _archive_manifest(out: Path, old: dict[str, Any]) -> str:
    name = f"manifest-{old.get('spec_fingerprint', 'old')}.json"
    atomic_write_json(old, out / name)
    return name


def _spec_fingerprint(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _design(spec: SweepSpec, out: Path, fingerprint: str) -> list[dict[str, Any]]:
    """The design points; reused from the manifest when the spec is unchanged (sampling is not redone)."""
    m = out / MANIFEST
    if m.exists():
        try:
            old = json.loads(m.read_text())
            if old.get("spec_fingerprint") == fingerprint and "points" in old:
                return old["points"]
        except (OSError, json.JSONDecodeError):
            log.warning("%s is unreadable; rebuilding the design from the spec", m)
    return spec.points()


def _status(out: Path, key: str) -> str:
    if (out / RUNS / f"{key}.parquet").exists():
        return "done"
    if (out / FAILED / f"{key}.json").exists():
        return "failed"
    return "pending"


def write_manifest(out: Path, spec: SweepSpec, tasks: list[RunTask], points: list[dict[str, Any]],
                   fingerprint: str, kind: str = "sweep", extra: dict[str, Any] | None = None) -> dict:
    """Provenance plus the run table (status read from the files on disk); also writes design.csv."""
    scenarios = {t.scenario.name: t.scenario for t in tasks}
    first = next(iter(scenarios.values()))
    runs = [{"key": t.key, "scenario": t.scenario.name, "seed": t.seed, "weeks": t.weeks, **t.point,
             "status": _status(out, t.key)} for t in tasks]
    prov = provenance(first, sorted({t.seed for t in tasks}), spec.weeks, spec.overrides, extra={
        "kind": kind,
        "name": spec.name,
        "spec": spec.model_dump(mode="json", exclude={"source"}),
        "spec_source": spec.source,
        "spec_fingerprint": fingerprint,
        "scenarios": {n: s.to_dict() for n, s in scenarios.items()},
        "varied": spec.parameters,
        "code": code_fingerprint(),
        "points": points,
        **(extra or {}),
    })
    prov["counts"] = {s: sum(r["status"] == s for r in runs) for s in ("done", "failed", "pending")}
    prov["runs"] = runs
    atomic_write_json(prov, out / MANIFEST)
    buf = io.StringIO()
    pd.DataFrame(runs).to_csv(buf, index=False)
    atomic_write_bytes(out / DESIGN, buf.getvalue().encode())
    return prov


def run_tasks(tasks: list[RunTask], out: Path, workers: int = 1, scheduler: str | None = None,
              cluster: str | None = None, progress: bool = True, retry_failed: bool = True,
              on_outcome: Callable[[RunOutcome], None] | None = None, name: str = "sweep") -> SweepSummary:
    """Run the tasks whose files do not exist yet, writing each one as it finishes.

    A run file already on disk counts as done only if :func:`check_run_file` accepts it; a truncated or
    foreign file is moved to ``out/corrupt/`` and its run is computed again (the summary says so).
    """
    out = Path(out)
    ensure_dir(out)
    with output_lock(out):
        return _run_tasks(tasks, out, workers, scheduler, cluster, progress, retry_failed, on_outcome, name)


def _run_tasks(tasks: list[RunTask], out: Path, workers: int, scheduler: str | None, cluster: str | None,
               progress: bool, retry_failed: bool, on_outcome: Callable[[RunOutcome], None] | None,
               name: str) -> SweepSummary:
    for sub in (RUNS, FAILED):
        with writing(out / sub):
            (out / sub).mkdir(parents=True, exist_ok=True)
    removed = _clean_temp(out / RUNS) + _clean_temp(out / FAILED)
    if removed:
        log.info("removed %d half-written temporary file(s) from an interrupted sweep", removed)
    summary = SweepSummary(name, out, len(tasks))
    todo = []
    moved = []
    for t in tasks:
        st = _status(out, t.key)
        if st == "done":
            path = out / RUNS / f"{t.key}.parquet"
            problem = check_run_file(path, t.key)
            if problem:
                dest = _move_aside(out, path)
                log.warning("run file %s is unusable (%s): moved to %s, computing the run again", path, problem,
                            dest)
                moved.append(f"{path.name} ({problem})")
                st = _status(out, t.key)
        if st == "done" or (st == "failed" and not retry_failed):
            summary.skipped += 1
        else:
            todo.append(t)
    if moved:
        summary.notes.append(f"{len(moved)} run file(s) were unusable and are recomputed; the bad files are in "
                             f"{out / CORRUPT}/: " + "; ".join(moved[:5]) + (" ..." if len(moved) > 5 else ""))
    t0 = time.perf_counter()
    if scheduler or cluster:
        outcomes = _dask(todo, scheduler, cluster)
    elif workers <= 1 or len(todo) <= 1:
        outcomes = _in_process(todo)
    else:
        outcomes = _process_pool(todo, min(workers, len(todo)))
    bar = progress_bar(len(tasks), name, progress, initial=summary.skipped)
    try:
        for o in outcomes:
            if o.status == "done":
                atomic_write_bytes(inside(out / RUNS, f"{safe_name(o.key, 'run key')}.parquet"), o.data)
                (out / FAILED / f"{o.key}.json").unlink(missing_ok=True)
                summary.done += 1
            else:
                atomic_write_json(o.meta, inside(out / FAILED, f"{safe_name(o.key, 'run key')}.json"))
                summary.failed += 1
                summary.errors.append(f"{o.key}: {o.meta.get('error', '?')}")
                log.warning("run %s failed: %s", o.key, o.meta.get("error"))
            if on_outcome is not None:
                on_outcome(o)
            bar.update()
            bar.set_postfix(failed=summary.failed, refresh=False)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _with_posterior(spec: SweepSpec, posterior: str | Path | None, draws: int | None, max_runs: int | None,
                    ) -> tuple[list[dict[str, Any]] | None, str, dict[str, Any]]:
    """Check the size of the design (times the posterior's draws) and draw the posterior's parameter sets:
    (sets or None, spec fingerprint, manifest extras)."""
    if posterior is None and draws is not None:
        raise ConfigError(f"--draws {draws}: draws are taken from a calibration posterior; give --posterior "
                          "results/calibrate/NAME/posterior.csv with it, or drop --draws")
    if posterior is not None and draws is not None and draws < 1:  # before the file is read
        raise ConfigError(f"--draws {draws}: must be at least 1 parameter set drawn from --posterior (default 10)")
    total, how = design_size(spec)
    sets = posterior_sets(posterior, draws, spec) if posterior is not None else None
    if sets:
        total, how = total * len(sets), f"{how} x {_count(len(sets), 'posterior draw')}"
    check_size(total, how, spec.source or spec.name, max_runs)
    dump = spec.model_dump(mode="json", exclude={"source"})
    extra = _posterior_extra(posterior, sets)
    if sets:  # another posterior (or K) is another design: its points are not reused from the manifest
        dump = {**dump, "posterior": {k: v for k, v in extra["posterior"].items() if k != "path"}}
        extra["varied"] = [*spec.parameters, *sets[0]]
    return sets, _spec_fingerprint(dump), extra


def sweep(spec: SweepSpec | str | Path, out: str | Path | None = None, workers: int | None = None,
          scheduler: str | None = None, cluster: str | None = None, progress: bool = True,
          retry_failed: bool = True, max_runs: int | None = None, posterior: str | Path | None = None,
          draws: int | None = None) -> SweepSummary:
    """Run (or resume) a sweep into ``out`` (default ``results/sweeps/<name>``) and return its summary.

    ``workers`` processes on this machine (default: all cores), or a Dask cluster: ``scheduler`` is an
    address (``tcp://host:8786``), ``cluster="local:N"`` starts a ``distributed.LocalCluster`` of N
    single-threaded worker processes. ``posterior``: a ``posterior.csv`` written by ``ree calibrate``;
    every scenario, design point and seed then runs under ``draws`` (default 10) parameter sets drawn from
    it by weight (:func:`posterior_sets`), which become columns of the design (with ``draw``, the set's
    number). Raises ConfigError for a bad spec, bad executor options, a bad posterior, an unreachable
    scheduler or a design of more than ``max_runs`` (default :data:`MAX_RUNS`) runs before any run starts.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    check_executor(workers, scheduler, cluster)
    check_max_runs(max_runs)
    sets, fingerprint, post = _with_posterior(spec, posterior, draws, max_runs)
    if scheduler is not None:
        connect_scheduler(scheduler)
    out = Path(out) if out is not None else inside(Path("results") / "sweeps", spec.name)
    points = _design(spec, out, fingerprint)
    tasks = plan(spec, points, draws=sets, posterior=f"--posterior {str(posterior)!r}")
    ensure_dir(out)
    with output_lock(out):
        changed = check_design(out, tasks, fingerprint)
        # every run in runs/ now has this code in its key (runs of other code were set aside)
        extra = {"executor": {"workers": workers, "scheduler": scheduler, "cluster": cluster},
                 "codes": [code_fingerprint()], **post}
        write_manifest(out, spec, tasks, points, fingerprint, extra=extra)
        summary = SweepSummary(spec.name, out, len(tasks))
        try:
            summary = run_tasks(tasks, out, workers or os.cpu_count() or 1, scheduler, cluster, progress,
                                retry_failed, name=spec.name)
        finally:
            write_manifest(out, spec, tasks, points, fingerprint, extra=extra)
    if changed:
        summary.notes.append(changed)
    return summary


# ------------------------------------------------------------------------------------------------ read
def read_manifest(folder: str | Path) -> dict[str, Any]:
    m = Path(folder) / MANIFEST
    if not m.exists():
        raise ConfigError(f"{folder}: no {MANIFEST}; is this a sweep folder (written by `ree sweep`)?")
    try:
        return json.loads(m.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{m}: cannot read the sweep's manifest ({type(exc).__name__}: {exc}); run the same "
                          "`ree sweep` command again to rewrite it") from None


def design_table(folder: str | Path) -> pd.DataFrame:
    """One row per run of the sweep: key, scenario, seed, weeks, the varied parameters and the status
    (refreshed from the files on disk)."""
    folder = Path(folder)
    runs = pd.DataFrame(read_manifest(folder)["runs"])
    runs["status"] = [_status(folder, k) for k in runs["key"]]
    return runs


def load_sweep(folder: str | Path, variables: Iterable[str] | None = None,
               include_failed: bool = False) -> pd.DataFrame:
    """The sweep's tidy table (finished runs) with the varied parameters joined as columns.

    Columns: those of :data:`model.results.COLUMNS` (``run_id`` is the run key), then one column per
    varied parameter (named by its dotted key) and ``weeks``. ``variables`` limits the rows read (fast
    on big sweeps). Runs of earlier designs written to the same folder are not included.
    """
    import pyarrow.dataset as ds

    from model.results import COLUMNS

    folder = Path(folder)
    design = design_table(folder)
    done = design[design["status"] == "done"]
    if done.empty:
        raise ConfigError(f"{folder}: no finished runs yet")
    files = [str(folder / RUNS / f"{k}.parquet") for k in done["key"]]
    flt = ds.field("variable").isin(list(variables)) if variables is not None else None
    try:
        df = ds.dataset(files, format="parquet").to_table(filter=flt).to_pandas()
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError: a truncated or corrupt run file
        bad = [(f, p) for f, k in zip(files, done["key"], strict=True) if (p := check_run_file(Path(f), k))]
        where, why = bad[0] if bad else (str(folder / RUNS), f"{type(exc).__name__}: {exc}")
        raise ConfigError(f"{where}: cannot read this run file: {why}; run the same `ree sweep` command "
                          "again to move it aside and recompute it") from None
    params = done.drop(columns=["scenario", "seed", "status"]).rename(columns={"key": "run_id"})
    df = df.merge(params, on="run_id", how="left", validate="many_to_one")
    df = df.sort_values(["run_id", "step", "variable", "region", "product"], kind="stable").reset_index(drop=True)
    return df[[*COLUMNS, *[c for c in df.columns if c not in COLUMNS]]]


# ------------------------------------------------------------------------------------------- interop
def batch_run(parameters: dict[str, Any], seeds: Iterable[int] = (1,), number_processes: int = 1,
              data_collection_period: int = -1, max_steps: int = 1_000_000,
              display_progress: bool = False) -> pd.DataFrame:
    """:func:`mesa.batch_run` on :class:`~model.model.RareEarthModel`, returned as a DataFrame.

    ``parameters`` are the model's keyword arguments, each a value or a list to cross:
    ``scenario``, ``weeks``, and world overrides by dotted key, e.g.
    ``{"scenario": "baseline", "weeks": 52, "behaviour.full_cost_markup": [0.6, 0.85]}``. Seeds go in
    ``seeds`` (Mesa passes them to the model as ``seed``; a ``seed`` entry in ``parameters`` would be
    overwritten). The columns are Mesa's (``RunId``, ``iteration``, ``Step``, the parameters) and the
    model's DataCollector reporters (``price_CN_Dy``, ``shortage_US_Dy``, ...); with
    ``data_collection_period=1`` there is one row per week. The model stops at ``weeks``.

    ``number_processes > 1`` makes Mesa switch the whole process to the ``spawn`` start method: call it
    from an importable script under ``if __name__ == "__main__":``. Mesa 4 removes ``batch_run``;
    :func:`sweep` is the supported way to run many runs.
    """
    import mesa

    from model.model import RareEarthModel

    if "seed" in parameters or "rng" in parameters:
        raise ConfigError("pass seeds through the seeds argument, not parameters['seed']")
    rows = mesa.batch_run(RareEarthModel, parameters=parameters, rng=list(seeds),
                          number_processes=number_processes, data_collection_period=data_collection_period,
                          max_steps=max_steps, display_progress=display_progress)
    return pd.DataFrame(rows)


def describe(spec: SweepSpec | str | Path, out: str | Path | None = None, max_runs: int | None = None,
             posterior: str | Path | None = None, draws: int | None = None) -> str:
    """What a sweep would run (and how much of it is already done in ``out``), without running it; a
    design of more than ``max_runs`` runs is refused (ConfigError) before it is built."""
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    check_max_runs(max_runs)
    sets, fingerprint, post = _with_posterior(spec, posterior, draws, max_runs)
    out = Path(out) if out is not None else inside(Path("results") / "sweeps", spec.name)
    points = _design(spec, out, fingerprint)
    tasks = plan(spec, points, draws=sets, posterior=f"--posterior {str(posterior)!r}")
    done_keys = [t.key for t in tasks if _status(out, t.key) == "done"]
    bad = sum(bool(check_run_file(out / RUNS / f"{k}.parquet", k)) for k in done_keys)
    done = len(done_keys) - bad
    failed = sum(_status(out, t.key) == "failed" for t in tasks)
    scen = sorted({t.scenario.name for t in tasks})
    seeds = sorted({t.seed for t in tasks})
    weeks = sorted({t.weeks for t in tasks})
    drawn = f" x {len(sets)} posterior draw(s)" if sets else ""
    lines = [f"sweep {spec.name}: {len(tasks)} runs = {len(scen)} scenario(s) x {len(points)} design point(s)"
             f"{drawn} x {len(seeds)} seed(s); weeks {', '.join(map(str, weeks))}",
             f"  scenarios: {', '.join(scen)}; seeds: {', '.join(map(str, seeds))}",
             f"  varied: {', '.join(post.get('varied', spec.parameters)) or '(nothing: seeds only)'}"]
    if sets:
        lines.append(f"  posterior: {posterior} ({len(sets)} parameter sets drawn by weight, seed {DRAW_SEED})")
    if spec.overrides:
        lines.append(f"  fixed: {', '.join(f'{k} = {v!r}' for k, v in spec.overrides.items())}")
    keys = {t.key for t in tasks}
    stale = 0
    if (out / RUNS).is_dir():
        signatures = {_signature(t.scenario.name, t.seed, t.weeks, t.overrides) for t in tasks}
        stale = sum(_superseded_by(p, signatures) for p in (out / RUNS).glob("*.parquet") if p.stem not in keys)
    lines.append(f"  in {out}: {done} done, {failed} failed, {len(tasks) - done - failed} to run"
                 + (f" ({bad} unreadable run file(s) will be moved aside and recomputed)" if bad else "")
                 + (f" ({stale} run file(s) from an earlier scenario, world file or model code will be moved to "
                    f"{SUPERSEDED}/)" if stale else ""))
    return "\n".join(lines)
