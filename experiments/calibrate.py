"""Calibration with uncertainty: ABC-SMC of behavioural parameters against the validation targets.

A spec file (TOML) names the parameters with their prior ranges, the targets and the sampler's sizes::

    name = "calibrate_demo"
    seeds = [1, 2]                 # model seeds of every evaluation (common random numbers)
    targets = ["China share of refined output"]   # names in experiments.validate.TARGETS, and/or
    scenarios = ["myanmar_2025_record"]           # every target of these scenarios
    # world = "world_2024_magnets.toml"           # optional: every target's scenario on this world
    particles = 8                  # population size
    generations = 3                # populations, the first drawn from the prior
    quantile = 0.5                 # next tolerance = this quantile of the last population's distances
    seed = 2024                    # master seed of the sampler's own randomness
    max_evaluations = 200          # per generation; the calibration stops there with what it has

    [parameters]                   # dotted world-override keys: uniform prior on [low, high]
    "behaviour.full_cost_markup" = [0.6, 0.85]

    [overrides]                    # fixed overrides of every evaluation (optional)

**Method: ABC-SMC** (Toni et al. 2009, with the adaptive tolerance and the covariance kernel of Beaumont
et al. 2009), chosen over the simulated method of moments because the targets are *bands* (a range of
published figures, "remained stable", "< 1 %"), not point moments with standard errors: SMM needs a weighting
matrix from moment covariances that the record does not give, and it returns one optimum, where the question
is which parameter sets keep every target inside its band and how wide that set is. ABC answers exactly
that: the distance of a parameter set is 0 when the median over the seeds of every target lies inside its
band, and the final population is a weighted sample of the parameters that come closest.

It is written here (~300 lines of numpy) rather than taken from ``pyabc`` because pyabc needs a SQL database
for its history, a dozen packages (sqlalchemy, redis client, cloudpickle, gitpython, ...) and its own
samplers, while this model already has a process pool, content-keyed run caching and atomic writers;
and because the sampler's randomness must be one numpy Generator from the spec's master seed so that a
posterior is reproducible bit for bit whatever the number of workers.

**Distance.** For target *i* with band [lo, hi] and median *m* over the seeds,
``d_i = max(lo - m, m - hi, 0) / (hi - lo)`` (how far outside the band, in band widths; a one-sided band
such as [0, 0.01] is handled the same way); the distance is the root mean square of the d_i. A target the
run cannot measure (nan) counts as infinitely far.

**Sampler.** Generation 0 draws ``particles`` sets from the uniform prior and accepts them all (tolerance
∞). Generation t > 0 sets its tolerance ε_t to the ``quantile`` of generation t-1's distances, then draws
candidates in batches of ``particles``: an ancestor by weight, moved by a Gaussian kernel with twice the
weighted covariance of generation t-1, redrawn (without running the model) until it lies inside the prior
ranges. Every candidate of a batch is evaluated (in parallel), and accepted *in draw order* while d <= ε_t,
until ``particles`` are accepted. Weights: w_i ∝ prior(θ_i) / Σ_j w_j K(θ_i | θ_j). Because batches are
drawn before they are evaluated and accepted in draw order, the posterior depends on the master seed only,
not on the number of workers, on whether the runs go to a process pool or a Dask cluster
(``scheduler=``/``cluster=``, as for sweeps), or on which run finishes first. The calibration stops after ``generations``
populations, when ε reaches 0 (every accepted set is inside every band; later generations could only
spread within that set), or when a generation needs more than ``max_evaluations`` candidates.

**Resume.** Every evaluation is appended to ``evaluations.jsonl`` in the output folder (one JSON line,
flushed and fsynced) under a key of its content: the parameter values and fixed overrides, the seeds, the
targets, the world and the model code fingerprint (:func:`experiments.sweep.code_fingerprint`). Running
the same command again replays the sampler from its master seed: every evaluation already on file is
read, not run, so an interrupted calibration continues where it stopped and a finished one costs nothing.
A changed model code changes every key (nothing stale is reused); a torn last line (kill -9) is skipped.

**Outputs** (``results/calibrate/<name>/`` by default): ``posterior.csv`` (the final population: parameters,
weight, distance, each target's median), ``posterior.md`` (weighted mean, median and 90 % credible interval
per parameter, and tolerance, evaluations and acceptance per generation), ``pairs.png`` (pair plot of the
final population), ``provenance.json``; also ``population_<t>.csv`` and ``state.json`` after each
generation, and the cache ``evaluations.jsonl``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from experiments.sweep import _check_name, _Strict
from model.params import ConfigError, _read_toml, format_validation_error

CACHE = "evaluations.jsonl"
OUTPUTS = ("posterior.csv", "posterior.md", "pairs.png", "provenance.json")


# ---------------------------------------------------------------------------------------------- spec
class CalibrationSpec(_Strict):
    name: str
    seeds: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    targets: list[str] = Field(default_factory=list)
    scenarios: list[str] = Field(default_factory=list)
    world: str | None = None
    particles: int = Field(default=16, ge=2, le=10_000)
    generations: int = Field(default=4, ge=1, le=100)
    quantile: float = Field(default=0.5, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0)
    max_evaluations: int = Field(default=1000, ge=1, le=1_000_000)
    parameters: dict[str, tuple[float, float]] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    source: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError("seeds must be distinct non-negative integers, e.g. seeds = [1, 2]")
        return v

    @field_validator("parameters")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for k, (lo, hi) in v.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"{k}: the prior range must be [low, high] with high > low (got [{lo}, {hi}]); "
                                 f"widen it, or move the parameter to [overrides] to fix it")
        return v

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        from experiments.validate import TARGETS

        names = [t.name for t in TARGETS]
        for name in v:
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ValueError(f"{name!r} is not a validation target; {hint}use a name from the validation "
                                 f"table (experiments.validate.TARGETS, README 'Validation')")
        if len(set(v)) != len(v):
            raise ValueError("a target is named twice; name each once")
        return v

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, v: list[str]) -> list[str]:
        from experiments.validate import TARGETS

        known = list(dict.fromkeys(t.scenario for t in TARGETS))
        for s in v:
            if s not in known:
                raise ValueError(f"{s!r} has no validation target; choose from {', '.join(known)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> CalibrationSpec:
        if not self.targets and not self.scenarios:
            raise ValueError('name the targets to fit: targets = ["..."] (names from the validation table) '
                             'and/or scenarios = ["baseline"] (all targets of those scenarios)')
        both = set(self.overrides) & set(self.parameters)
        if both:
            raise ValueError(f"overrides and parameters both set {sorted(both)}; set each parameter in one place")
        return self

    @property
    def keys(self) -> list[str]:
        return list(self.parameters)

    def target_list(self):
        """The validation targets fitted, in the validation table's order."""
        from experiments.validate import TARGETS

        return [t for t in TARGETS if t.name in self.targets or t.scenario in self.scenarios]


def load_spec(path: str | Path) -> CalibrationSpec:
    """Read and validate a calibration spec TOML (ConfigError names each bad field and the fix)."""
    path = Path(path)
    raw = _read_toml(path, "calibration spec")
    try:
        spec = CalibrationSpec.model_validate({"name": path.stem, **raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    return spec


def check_spec(spec: CalibrationSpec) -> CalibrationSpec:
    """What needs the model: every parameter key and both ends of its range, and the fixed overrides, are
    accepted by every scenario the targets need (on the spec's world); ConfigError naming the key."""
    from experiments.sweep import SampleSpec, SweepSpec, _check_overrides
    from experiments.validate import resolve_world, scenario_on_world, targets_on_world

    where = spec.source or spec.name
    world = None
    if spec.world is not None:
        try:
            world = resolve_world(spec.world)
        except ConfigError as exc:
            raise ConfigError(f"{where}: world: {str(exc).removeprefix('--world ')}") from None
        _, skipped = targets_on_world(world, spec.target_list())
        if skipped:
            raise ConfigError(f"{where}: world: scenario {skipped[0][0]} does not run on {spec.world}: "
                              f"{skipped[0][1]}; drop its targets from the spec")
    sweep = SweepSpec(name=spec.name, scenarios=["baseline"], overrides=spec.overrides, source=where,
                      sample=SampleSpec(n=1, ranges={k: [lo, hi] for k, (lo, hi) in spec.parameters.items()}))
    for sc in dict.fromkeys(t.scenario for t in spec.target_list()):
        _check_overrides(scenario_on_world(sc, world), sweep)
    return spec


# ---------------------------------------------------------------------------------------- distance
def distance(medians: dict[str, float], targets) -> float:
    """Root mean square over targets of how far the median lies outside its band, in band widths (0 inside
    every band; inf when a target could not be measured)."""
    d = []
    for t in targets:
        m = medians.get(t.name, float("nan"))
        if m is None or not math.isfinite(m):
            return float("inf")
        d.append(max(t.lo - m, m - t.hi, 0.0) / (t.hi - t.lo))
    return float(math.sqrt(sum(x * x for x in d) / len(d)))


# --------------------------------------------------------------------------------------- evaluation
def _canon(x: Any) -> Any:
    if isinstance(x, float):
        return float(repr(x)) if math.isfinite(x) else repr(x)
    if isinstance(x, dict):
        return {str(k): _canon(v) for k, v in sorted(x.items())}
    if isinstance(x, list | tuple):
        return [_canon(v) for v in x]
    return x


def evaluation_key(point: dict[str, Any], spec: CalibrationSpec, code: str) -> str:
    """Content key of one evaluation: parameters and fixed overrides, seeds, targets, world, model code."""
    body = {"overrides": {**spec.overrides, **point}, "seeds": list(spec.seeds),
            "targets": sorted(t.name for t in spec.target_list()), "world": spec.world, "code": code}
    return hashlib.sha256(json.dumps(_canon(body), sort_keys=True).encode()).hexdigest()[:24]


def _run_metrics(job: tuple[int, str, int, dict[str, Any], str | None, tuple[str, ...]]) -> tuple[int, dict[str, float]]:
    """One run in a worker: (point index, scenario, seed, overrides, world, target names) -> metric values."""
    from experiments.run import run_one
    from experiments.validate import TARGETS, measure_runs, scenario_for

    i, scenario, seed, overrides, world, names = job
    targets = [t for t in TARGETS if t.name in names]
    keys = dict.fromkeys(k for t in targets for k in t.runs)  # the scenario, and its twin for a paired target
    runs = {k: run_one(scenario_for(k, world), seed, overrides=overrides or None) for k in keys}
    return i, {t.name: float(measure_runs(t, runs, world)) for t in targets}


def simulate(points: list[dict[str, Any]], spec: CalibrationSpec, executor: Executor | None,
             on_run: Callable[[], None] = lambda: None) -> list[dict[str, float]]:
    """Each point's target medians over the spec's seeds (every scenario the targets need, every seed)."""
    from experiments.validate import resolve_world

    targets = spec.target_list()
    world = resolve_world(spec.world) if spec.world else None
    names = tuple(t.name for t in targets)
    jobs = [(i, sc, s, {**spec.overrides, **p}, world, tuple(t.name for t in targets if t.scenario == sc))
            for i, p in enumerate(points) for sc in dict.fromkeys(t.scenario for t in targets) for s in spec.seeds]
    values: list[dict[str, list[float]]] = [{n: [] for n in names} for _ in points]
    results = executor.map(_run_metrics, jobs) if executor is not None else map(_run_metrics, jobs)
    for i, vals in results:
        for n, v in vals.items():
            values[i][n].append(v)
        on_run()
    out = []
    for per in values:
        med = {}
        for n, v in per.items():
            a = np.asarray(v, dtype=float)
            med[n] = float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")
        out.append(med)
    return out


class Cache:
    """``evaluations.jsonl``: one line per evaluation, appended and fsynced; read once when opened."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict[str, dict[str, float]] = {}
        if self.path.exists():
            text = self.path.read_bytes()
            if text and not text.endswith(b"\n"):  # torn by kill -9 mid-line: cut it, so the next line starts clean
                with open(self.path, "r+b") as fh:
                    fh.truncate(text.rfind(b"\n") + 1)
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    self.data[rec["key"]] = {k: (float("nan") if v is None else float(v))
                                             for k, v in rec["medians"].items()}
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a line torn by kill -9: that evaluation runs again

    def add(self, key: str, point: dict[str, Any], medians: dict[str, float]) -> None:
        from experiments.paths import writing

        self.data[key] = medians
        rec = {"key": key, "parameters": point,
               "medians": {k: (v if math.isfinite(v) else None) for k, v in medians.items()}}
        with writing(self.path), open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# ------------------------------------------------------------------------------------------ sampler
@dataclasses.dataclass
class Generation:
    t: int
    tolerance: float
    evaluations: int  # candidates evaluated (cached or run)
    theta: np.ndarray  # (particles, parameters)
    weights: np.ndarray
    distances: np.ndarray
    medians: list[dict[str, float]]

    @property
    def ess(self) -> float:
        return float(1.0 / np.sum(self.weights ** 2))

    def table(self, spec: CalibrationSpec) -> pd.DataFrame:
        df = pd.DataFrame(self.theta, columns=spec.keys)
        df["weight"] = self.weights
        df["distance"] = self.distances
        med = pd.DataFrame(self.medians, columns=[t.name for t in spec.target_list()])
        return pd.concat([df, med], axis=1)


@dataclasses.dataclass
class Calibration:
    out: Path
    spec: CalibrationSpec
    generations: list[Generation]
    runs: int  # evaluations computed now
    cached: int  # evaluations read from evaluations.jsonl
    stopped: str

    @property
    def posterior(self) -> Generation:
        return self.generations[-1]


def _mvn_logpdf_rows(x: np.ndarray, centres: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """log N(x | centre_j, L L^T) for every centre j (up to the shared constant)."""
    z = np.linalg.solve(chol, (x[None, :] - centres).T)
    return -0.5 * np.sum(z * z, axis=0)


def _point(spec: CalibrationSpec, row: np.ndarray) -> dict[str, Any]:
    from experiments.sensitivity import INTEGER_FIELDS

    return {k: (int(round(v)) if k.rsplit(".", 1)[-1] in INTEGER_FIELDS else float(v))
            for k, v in zip(spec.keys, row, strict=True)}


def abc_smc(spec: CalibrationSpec, evaluate: Callable[[list[dict[str, Any]]], list[dict[str, float]]],
            on_generation: Callable[[Generation], None] = lambda g: None) -> tuple[list[Generation], str]:
    """Run the sampler; ``evaluate`` maps parameter sets to target medians. Returns the populations and why
    it stopped."""
    rng = np.random.default_rng(spec.seed)
    targets = spec.target_list()
    lo = np.array([spec.parameters[k][0] for k in spec.keys])
    hi = np.array([spec.parameters[k][1] for k in spec.keys])
    n, k = spec.particles, len(spec.keys)
    gens: list[Generation] = []

    # generation 0: the prior
    theta = lo + rng.random((n, k)) * (hi - lo)
    med = evaluate([_point(spec, r) for r in theta])
    dist = np.array([distance(m, targets) for m in med])
    g = Generation(0, float("inf"), n, theta, np.full(n, 1.0 / n), dist, med)
    gens.append(g)
    on_generation(g)
    for t in range(1, spec.generations):
        prev = gens[-1]
        finite = prev.distances[np.isfinite(prev.distances)]
        if finite.size == 0:
            return gens, f"generation {t - 1}: no candidate could be measured on every target"
        eps = float(np.quantile(finite, spec.quantile))
        cov = 2.0 * np.atleast_2d(np.cov(prev.theta.T, aweights=prev.weights, ddof=0))
        cov += np.diag((1e-9 * (hi - lo)) ** 2)  # a population of one point still has a kernel
        chol = np.linalg.cholesky(cov)
        acc_theta, acc_med, acc_dist = [], [], []
        used = 0
        while len(acc_theta) < n:
            if used >= spec.max_evaluations:
                return gens, (f"generation {t}: {used} evaluations (max_evaluations) accepted only "
                              f"{len(acc_theta)} of {n} within tolerance {eps:.4g}; the posterior is generation {t - 1}")
            batch = []
            for _ in range(min(n, spec.max_evaluations - used)):
                while True:
                    j = rng.choice(n, p=prev.weights)
                    cand = prev.theta[j] + chol @ rng.standard_normal(k)
                    if np.all(cand >= lo) and np.all(cand <= hi):
                        break
                batch.append(cand)
            med = evaluate([_point(spec, r) for r in batch])
            used += len(batch)
            for cand, m in zip(batch, med, strict=True):
                d = distance(m, targets)
                if d <= eps and len(acc_theta) < n:
                    acc_theta.append(cand)
                    acc_med.append(m)
                    acc_dist.append(d)
        theta = np.array(acc_theta)
        logw = np.array([-np.log(np.sum(prev.weights * np.exp(_mvn_logpdf_rows(x, prev.theta, chol))) + 1e-300)
                         for x in theta])
        w = np.exp(logw - logw.max())
        g = Generation(t, eps, used, theta, w / w.sum(), np.array(acc_dist), acc_med)
        gens.append(g)
        on_generation(g)
        if eps <= 0.0:
            return gens, f"generation {t}: tolerance 0 (every accepted set is inside every band)"
    return gens, f"{spec.generations} generations"


# ------------------------------------------------------------------------------------------ summary
def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """Quantile of a weighted sample (inverse of the midpoint-interpolated weighted CDF)."""
    order = np.argsort(x)
    x, w = x[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cdf, x))


def summary(gen: Generation, spec: CalibrationSpec) -> pd.DataFrame:
    rows = []
    for j, key in enumerate(spec.keys):
        x, w = gen.theta[:, j], gen.weights
        lo, hi = spec.parameters[key]
        rows.append({"parameter": key, "prior": f"[{lo:g}, {hi:g}]", "mean": float(np.sum(w * x)),
                     "median": weighted_quantile(x, w, 0.5), "ci5": weighted_quantile(x, w, 0.05),
                     "ci95": weighted_quantile(x, w, 0.95)})
    return pd.DataFrame(rows)


def to_markdown(res: Calibration) -> str:
    spec, post = res.spec, res.posterior
    s = summary(post, spec)
    lines = [f"# Posterior: {spec.name}", "",
             f"ABC-SMC, {spec.particles} particles, master seed {spec.seed}, model seeds {spec.seeds}, "
             f"world {spec.world or 'each scenario’s own'}; stopped after {res.stopped}.", "",
             "| parameter | prior (uniform) | weighted mean | median | 90 % credible interval |",
             "|---|---|---|---|---|"]
    lines += [f"| {r.parameter} | {r.prior} | {r.mean:.4g} | {r.median:.4g} | [{r.ci5:.4g}, {r.ci95:.4g}] |"
              for r in s.itertuples()]
    lines += ["", "| generation | tolerance | evaluations | accepted | acceptance | ESS | best distance |",
              "|---|---|---|---|---|---|---|"]
    for g in res.generations:
        lines.append(f"| {g.t} | {g.tolerance:.4g} | {g.evaluations} | {len(g.weights)} | "
                     f"{len(g.weights) / g.evaluations:.0%} | {g.ess:.1f} | {np.min(g.distances):.4g} |")
    inside = int(np.sum(post.distances == 0))
    lines += ["", f"Targets ({len(spec.target_list())}): " + "; ".join(t.name for t in spec.target_list()) + ".",
              f"{inside} of {len(post.weights)} final particles put every target's median inside its band "
              "(distance 0).", ""]
    return "\n".join(lines)


def pairs_figure(gen: Generation, spec: CalibrationSpec, path: Path) -> None:
    """Pair plot of the final population: weighted histograms on the diagonal, particles below (area ~ weight)."""
    from matplotlib.figure import Figure

    k = len(spec.keys)
    fig = Figure(figsize=(2.4 * k + 0.6, 2.4 * k + 0.6), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False)
    size = 10 + 200 * gen.weights / gen.weights.max()
    for i, ki in enumerate(spec.keys):
        for j, kj in enumerate(spec.keys):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(gen.theta[:, i], bins=min(20, max(5, len(gen.weights) // 2)), weights=gen.weights,
                        range=spec.parameters[ki], color="0.5")
                ax.set_yticks([])
            else:
                ax.scatter(gen.theta[:, j], gen.theta[:, i], s=size, c="black", alpha=0.5, linewidths=0)
                ax.set_ylim(*spec.parameters[ki])
            ax.set_xlim(*spec.parameters[kj])
            ax.tick_params(labelsize=7)
            if i == k - 1:
                ax.set_xlabel(kj.rsplit(".", 1)[-1], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(ki.rsplit(".", 1)[-1], fontsize=8)
    fig.suptitle(f"{spec.name}: generation {gen.t}, tolerance {gen.tolerance:.3g}, axes = prior ranges", fontsize=9)
    fig.savefig(path, dpi=130)


# -------------------------------------------------------------------------------------------- run
@contextlib.contextmanager
def _executor(workers: int, scheduler: str | None, cluster: str | None) -> Iterator[Executor | None]:
    """Where the runs go: a Dask cluster (``scheduler`` address, or ``cluster="local:N"``, as
    :func:`experiments.sweep.sweep`), a local process pool of ``workers`` > 1, or this process (None)."""
    from experiments.sweep import _workers_skip_main, dask_client, process_pool, quiet_dask

    with _workers_skip_main():
        if scheduler or cluster:
            with quiet_dask() as level, dask_client(scheduler, cluster, level) as client:
                yield client.get_executor(pure=False)
        elif workers > 1:
            with process_pool(workers) as ex:
                yield ex
        else:
            yield None


def run(spec: CalibrationSpec | str | Path, out: str | Path | None = None, workers: int = 1,
        progress: bool = False, evaluate: Callable[..., list[dict[str, float]]] | None = None,
        scheduler: str | None = None, cluster: str | None = None) -> Calibration:
    """Calibrate (or resume) into ``out``; ``evaluate`` replaces :func:`simulate` (tests: a toy model).

    The runs go to ``workers`` local processes, or to a Dask cluster: ``scheduler`` is an address
    (``tcp://host:8786``), ``cluster="local:N"`` starts a local one of N processes (as ``ree sweep``).
    The posterior is the same on any of them: candidates are drawn before they are evaluated and
    accepted in draw order, and each evaluation's runs are collected by index."""
    from experiments.paths import ensure_dir, inside, writing
    from experiments.run import atomic_write_bytes, atomic_write_json, git_commit, progress_bar, version
    from experiments.sweep import check_executor, code_fingerprint, connect_scheduler, output_lock

    if not isinstance(spec, CalibrationSpec):
        spec = load_spec(spec)
    check_executor(None if scheduler or cluster else workers, scheduler, cluster)
    if evaluate is None:
        check_spec(spec)
    if scheduler is not None:
        connect_scheduler(scheduler)
    out = Path(out) if out is not None else inside(Path("results") / "calibrate", spec.name)
    ensure_dir(out)
    t0 = dt.datetime.now()
    code = code_fingerprint()
    evaluate = evaluate or simulate
    counts = {"runs": 0, "cached": 0}
    runs_per_eval = len(spec.seeds) * len({t.scenario for t in spec.target_list()})
    with output_lock(out):
        cache = Cache(out / CACHE)
        with _executor(workers, scheduler, cluster) as ex:
            bar_state = {"t": 0}

            def cached_evaluate(points: list[dict[str, Any]]) -> list[dict[str, float]]:
                keys = [evaluation_key(p, spec, code) for p in points]
                todo = list(dict.fromkeys(k for k in keys if k not in cache.data))
                counts["cached"] += len(points) - sum(1 for k in keys if k in todo)
                if todo:
                    first = {k: p for k, p in zip(keys, points, strict=True)}
                    pts = [first[k] for k in todo]
                    with progress_bar(len(pts) * runs_per_eval, f"generation {bar_state['t']}", progress) as bar:
                        try:
                            med = evaluate(pts, spec, ex, bar.update)
                        except BaseException:  # Ctrl-C: stop now, not after the runs still queued
                            if isinstance(ex, ProcessPoolExecutor):
                                ex.shutdown(wait=False, cancel_futures=True)
                            elif ex is not None:  # Dask's executor cancels its futures
                                ex.shutdown(wait=False)
                            raise
                    for key, p, m in zip(todo, pts, med, strict=True):
                        cache.add(key, p, m)
                    counts["runs"] += len(todo)
                return [cache.data[k] for k in keys]

            def save_generation(g: Generation) -> None:
                bar_state["t"] = g.t + 1
                atomic_write_bytes(out / f"population_{g.t}.csv", g.table(spec).to_csv(index=False).encode())
                atomic_write_json({"spec": spec.model_dump(mode="json", exclude={"source"}), "generation": g.t,
                                   "tolerance": g.tolerance, "evaluations": g.evaluations, "ess": g.ess},
                                  out / "state.json")

            gens, stopped = abc_smc(spec, cached_evaluate, save_generation)
        res = Calibration(out, spec, gens, counts["runs"], counts["cached"], stopped)
        atomic_write_bytes(out / "posterior.csv", res.posterior.table(spec).to_csv(index=False).encode())
        atomic_write_bytes(out / "posterior.md", to_markdown(res).encode())
        with writing(out / "pairs.png"):
            pairs_figure(res.posterior, spec, out / "pairs.png")
        atomic_write_json({
            "package": "ree-abm", "version": version(), "git_commit": git_commit(), "code": code,
            "method": "ABC-SMC (uniform priors, band distance, adaptive quantile tolerance, Gaussian kernel)",
            "spec": spec.model_dump(mode="json", exclude={"source"}), "spec_source": spec.source,
            "targets": [{"name": t.name, "scenario": t.scenario, "lo": t.lo, "hi": t.hi}
                        for t in spec.target_list()],
            "generations": [{"t": g.t, "tolerance": g.tolerance, "evaluations": g.evaluations, "ess": g.ess}
                            for g in gens],
            "stopped": stopped, "evaluations_run": res.runs, "evaluations_cached": res.cached,
            "executor": {"workers": None if scheduler or cluster else workers, "scheduler": scheduler,
                         "cluster": cluster},
            "wall_seconds": (dt.datetime.now() - t0).total_seconds(),
            "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }, out / "provenance.json")
    return res

