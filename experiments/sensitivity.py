"""Global sensitivity analysis with SALib: Morris screening and Sobol indices for scalar outputs.

A spec file (TOML) names the scenario, the parameters with their bounds and the outputs::

    name = "behaviour"
    scenario = "baseline"
    weeks = 104
    seeds = [1]              # every sample point runs with each seed (common random numbers);
                             # an output is the mean over seeds
    burn_in_weeks = 0        # weeks left out of every output
    methods = ["morris", "sobol"]
    outputs = ["peak_cn_dy_price", "mean_china_refined_share", "total_shortage", "max:price:ROW:Tb"]

    [parameters]             # dotted world-override keys, [low, high]
    "behaviour.full_cost_markup" = [0.6, 0.85]
    "armed_groups.KIA.levy_usd_per_kg" = [2.5, 9.0]

    [morris]
    trajectories = 10        # runs: trajectories x (parameters + 1) x seeds
    levels = 4
    seed = 1
    [sobol]
    n = 32                   # runs: n x (parameters + 2) x seeds (n x (2 x parameters + 2) with second_order)
    second_order = false
    seed = 1

An output is ``STAT:VARIABLE[:REGION[:PRODUCT]]`` over the weekly series of :mod:`model.results`
(weeks 1 to the horizon after ``burn_in_weeks``; step 0, the initial state, is never part of it):
STAT is one of mean, max, min, sum, last, std; an omitted REGION/PRODUCT means the row with none
(``""``), ``*`` sums over all of them each week. ``sum:shortage:*:Dy`` is the total Dy shortage over all
buyer states and weeks (t). Named aliases are in :data:`ALIASES`.

Runs go through the sweep machinery (:mod:`experiments.sweep`): they are written one file per run, so an
interrupted analysis resumes, and they run on a process pool or a Dask cluster. The runs are counted
before sampling (:func:`design_size`) and refused above the sweep limit
(:data:`experiments.sweep.MAX_RUNS`, raised by ``--max-runs``). Results in ``OUT``:
``samples_<method>.csv`` (inputs and outputs per sample point), ``indices_<method>.csv`` and the figure
``sensitivity_<method>.{pdf,svg,png}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from experiments.paths import ensure_dir, inside, writing
from experiments.run import atomic_write_bytes
from experiments.sweep import (
    FAILED,
    RunTask,
    SampleSpec,
    SweepSpec,
    _check_name,
    _resolve_scenario,
    _spec_fingerprint,
    _Strict,
    check_design,
    check_executor,
    check_max_runs,
    check_size,
    connect_scheduler,
    output_lock,
    plan,
    run_tasks,
    write_manifest,
)
from model.params import ConfigError, _read_toml, format_validation_error
from model.results import OUTPUTS

log = logging.getLogger(__name__)

STATS = ("mean", "max", "min", "sum", "last", "std")
ALIASES = {
    "peak_cn_dy_price": "max:price:CN:Dy",
    "peak_row_dy_price": "max:price:ROW:Dy",
    "peak_row_tb_price": "max:price:ROW:Tb",
    "mean_row_ndpr_price": "mean:price:ROW:NdPr",
    "mean_china_refined_share": "mean:china_refined_share",
    "total_shortage": "sum:shortage:*:*",
    "total_dy_shortage": "sum:shortage:*:Dy",
    "mean_myanmar_ore_to_china": "mean:myanmar_ore_to_china",
    "total_kia_levy": "sum:levy_revenue:KIA",
    "total_dy_exports": "sum:exports:*:Dy",
    "mean_dy_export_allowed": "mean:export_allowed::Dy",
}


# ------------------------------------------------------------------------------------------- outputs
@dataclasses.dataclass(frozen=True)
class Metric:
    """A scalar output of a run: ``stat`` over weeks of ``variable`` at ``region``/``product``."""

    name: str
    stat: str
    variable: str
    region: str = ""
    product: str = ""
    effect_of: str = ""  # a timeline entry (Stockpile[US]): the output is this run minus its twin without it

    @classmethod
    def parse(cls, text: str) -> Metric:
        expr = ALIASES.get(text, text)
        parts = expr.split(":")
        if len(parts) < 2 or len(parts) > 4 or parts[0] not in STATS or parts[1] not in OUTPUTS:
            raise ConfigError(
                f"output {text!r}: expected STAT:VARIABLE[:REGION[:PRODUCT]] with STAT in {', '.join(STATS)} "
                f"and VARIABLE one of model.results.OUTPUTS, or an alias ({', '.join(ALIASES)})")
        parts += [""] * (4 - len(parts))
        return cls(text, *parts)

    @property
    def unit(self) -> str:
        u = OUTPUTS[self.variable].unit
        if self.stat == "sum":
            return u[: -len("/week")] if u.endswith("/week") else f"{u} x week"
        return u

    @property
    def label(self) -> str:
        """``Oxide price (peak, China-domestic, Dy)``."""
        from experiments.figures import pretty

        o = OUTPUTS[self.variable]
        what = {"mean": "mean", "max": "peak", "min": "lowest", "sum": "total", "last": "final",
                "std": "s.d."}[self.stat]
        region = f"all {o.by}s" if self.region == "*" else pretty(self.region, market=o.by == "market region")
        product = "all products" if self.product == "*" else self.product
        level = f"{o.label} ({', '.join(x for x in (what, region if self.region else '', product) if x)})"
        return f"Effect of {self.effect_of} on {level[0].lower()}{level[1:]}" if self.effect_of else level

    def series(self, df: pd.DataFrame) -> pd.DataFrame:
        """Weekly values per run (index step, columns run_id)."""
        d = df[df["variable"] == self.variable]
        if self.region != "*":
            d = d[d["region"] == self.region]
        if self.product != "*":
            d = d[d["product"] == self.product]
        return d.groupby(["step", "run_id"])["value"].sum().unstack("run_id")

    def compute(self, df: pd.DataFrame, burn_in_weeks: int = 0) -> pd.Series:
        """The metric per run_id (NaN where a run has no row for it)."""
        s = self.series(df[df["step"] > burn_in_weeks])
        runs = df["run_id"].unique()
        if s.empty:
            return pd.Series(np.nan, index=runs, name=self.name)
        if self.stat == "last":
            out = s.ffill().iloc[-1]
        else:
            out = getattr(s, self.stat)()
        return out.reindex(runs).rename(self.name)


def compute_metrics(df: pd.DataFrame, metrics: list[Metric], burn_in_weeks: int = 0) -> pd.DataFrame:
    """One row per run_id, one column per metric."""
    return pd.concat([m.compute(df, burn_in_weeks) for m in metrics], axis=1)


# ---------------------------------------------------------------------------------------------- spec
class MorrisSpec(_Strict):
    trajectories: int = Field(default=10, ge=2, le=10_000)
    levels: int = Field(default=4, ge=2, le=20)
    seed: int = Field(default=1, ge=0)


class SobolSpec(_Strict):
    n: int = Field(default=32, ge=2, le=1_000_000)
    second_order: bool = False
    seed: int = Field(default=1, ge=0)


class ConvergenceSpec(_Strict):
    top: int = Field(default=3, ge=1)  # how many top-ranked parameters must hold still
    sobol_tolerance: float = Field(default=0.05, gt=0, le=1)  # largest change of their S1/ST (absolute)
    morris_tolerance: float = Field(default=0.10, gt=0, le=1)  # of their mu*, as a share of the largest mu*


_ENTRY = re.compile(r"^[A-Za-z_]\w*\[[^\]#\s]+(#[0-9]+)?\]$")


class OutputSpec(_Strict):
    """An output written as a table: ``{ output = "mean_row_dy_price", effect_of = "Stockpile[US]" }`` is the
    policy's effect on it, the run minus its twin without that timeline entry on the same seed and point."""

    output: str
    effect_of: str | None = None
    name: str | None = None

    @property
    def metric(self) -> Metric:
        m = Metric.parse(self.output)
        if self.effect_of is None:
            return dataclasses.replace(m, name=self.name or self.output)
        return dataclasses.replace(m, name=self.name or f"effect_of:{self.effect_of}:{self.output}",
                                   effect_of=self.effect_of)


def twin_key(entry: str) -> str:
    """The lever that removes ``entry`` from the timeline (what ``ree compare --without`` applies)."""
    from experiments.levers import ENABLED, PREFIX

    return f"{PREFIX}{entry}.{ENABLED}"


class SensitivitySpec(_Strict):
    name: str
    scenario: str
    weeks: int | None = Field(default=None, ge=1, le=5200)
    seeds: list[int] = Field(default_factory=lambda: [1], min_length=1)
    burn_in_weeks: int = Field(default=0, ge=0)
    methods: list[Literal["morris", "sobol"]] = Field(default_factory=lambda: ["morris", "sobol"], min_length=1)
    outputs: list[str | OutputSpec] = Field(default_factory=lambda: ["peak_cn_dy_price", "mean_china_refined_share",
                                                                     "mean_myanmar_ore_to_china"], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, tuple[float, float]] = Field(min_length=1)
    morris: MorrisSpec = Field(default_factory=MorrisSpec)
    sobol: SobolSpec = Field(default_factory=SobolSpec)
    convergence: ConvergenceSpec = Field(default_factory=ConvergenceSpec)
    source: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("parameters")
    @classmethod
    def _bounds(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for k, (lo, hi) in v.items():
            if not hi > lo:
                raise ValueError(f"{k}: bounds must be [low, high] with high > low (got [{lo}, {hi}])")
        return v

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, v: list[str | OutputSpec]) -> list[str | OutputSpec]:
        names = []
        for i, o in enumerate(v):
            try:
                Metric.parse(o if isinstance(o, str) else o.output)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if isinstance(o, OutputSpec) and o.effect_of is not None and not _ENTRY.match(o.effect_of):
                raise ValueError(f"outputs[{i}].effect_of = {o.effect_of!r}: name a timeline entry as Type[actor] "
                                 "or Type[actor#n], e.g. \"Stockpile[US]\" (the entry `ree compare --without` "
                                 "removes)")
            names.append(o if isinstance(o, str) else o.metric.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"outputs: {dup[0]!r} is named twice; give one of them another name = \"...\"")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> SensitivitySpec:
        both = set(self.overrides) & set(self.parameters)
        if both:
            raise ValueError(f"overrides and parameters both set {sorted(both)}")
        for entry in self.effects:
            if twin_key(entry) in {**self.overrides, **self.parameters}:
                raise ValueError(f"{twin_key(entry)} is set while an output is the effect of {entry} (its twin "
                                 "runs without it): remove that key, or the effect_of")
        return self

    @property
    def metrics(self) -> list[Metric]:
        return [Metric.parse(o) if isinstance(o, str) else o.metric for o in self.outputs]

    @property
    def effects(self) -> list[str]:
        """The timeline entries whose effects are outputs: each adds a twin run to every run."""
        return sorted({o.effect_of for o in self.outputs if isinstance(o, OutputSpec) and o.effect_of})

    @property
    def problem(self) -> dict[str, Any]:
        """SALib's problem dict."""
        return {"num_vars": len(self.parameters), "names": list(self.parameters),
                "bounds": [list(b) for b in self.parameters.values()]}

    def sweep_spec(self) -> SweepSpec:
        """The runs as a sweep (the sample ranges only serve the up-front override check)."""
        return SweepSpec(name=self.name, scenarios=[self.scenario], weeks=self.weeks, seeds=self.seeds,
                         overrides=self.overrides, source=self.source,
                         sample=SampleSpec(n=1, ranges={k: {"low": lo, "high": hi,
                                                            "integer": k.rsplit(".", 1)[-1] in INTEGER_FIELDS}
                                                        for k, (lo, hi) in self.parameters.items()}))


def load_spec(path: str | Path) -> SensitivitySpec:
    """Read and validate a sensitivity spec TOML (ConfigError names each bad field)."""
    path = Path(path)
    raw = _read_toml(path)
    try:
        return SensitivitySpec.model_validate({"name": path.stem, **raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


# ------------------------------------------------------------------------------------------- samples
def design_size(spec: SensitivitySpec, methods: list[str]) -> tuple[int, str]:
    """Runs of the analysis and how they were counted (SALib's sample sizes), without sampling: Morris
    trajectories x (k + 1), Sobol n x (2k + 2) with second order or n x (k + 2) without, for k parameters,
    each point with every seed. Points shared by the methods run once, so this is an upper bound."""
    k, seeds = len(spec.parameters), len(spec.seeds)
    sizes, parts = [], []
    for m in methods:
        if m == "morris":
            sizes.append(spec.morris.trajectories * (k + 1))
            parts.append(f"morris {spec.morris.trajectories:,} trajectories x ({k} parameters + 1)")
        else:
            per = 2 * k + 2 if spec.sobol.second_order else k + 2
            sizes.append(spec.sobol.n * per)
            two = "2 x " if spec.sobol.second_order else ""
            parts.append(f"sobol n {spec.sobol.n:,} x ({two}{k} parameters + 2)")
    how = f"({' + '.join(parts)}) x {seeds} seed{'s' if seeds > 1 else ''}"
    twins = len(spec.effects)
    if twins:
        how += f" x (1 + {twins} twin{'s' if twins > 1 else ''} without {', '.join(spec.effects)})"
    return sum(sizes) * seeds * (1 + twins), how


def sample(spec: SensitivitySpec, method: str) -> np.ndarray:
    """SALib sample matrix (rows = model evaluations, columns = parameters)."""
    if method == "morris":
        from SALib.sample import morris as ms

        return ms.sample(spec.problem, spec.morris.trajectories, num_levels=spec.morris.levels,
                         seed=spec.morris.seed)
    from SALib.sample import sobol as ss

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*power of 2.*")  # SALib prefers 2^k; small n is fine here
        return ss.sample(spec.problem, spec.sobol.n, calc_second_order=spec.sobol.second_order,
                         seed=spec.sobol.seed)


def _integer_fields() -> frozenset[str]:
    """Names of the world's and the policies' integer-valued fields (``count``, ``price_grid_points``,
    ``delay_weeks``, ...), read from the pydantic models of :mod:`model.params` and :mod:`model.policies`,
    so a new integer field needs no edit here."""
    import typing

    from pydantic import BaseModel

    import model.params as world

    def is_int(ann: Any) -> bool:
        if typing.get_origin(ann) is typing.Annotated:
            return is_int(typing.get_args(ann)[0])
        if ann is int:
            return True
        args = [a for a in typing.get_args(ann) if a is not type(None)]  # Optional[int], int | None
        return bool(args) and typing.get_origin(ann) is not list and all(is_int(a) for a in args)

    from model.policies import REGISTRY  # policy levers (policy.ExportControl[CN].delay_weeks) as well

    classes = [cls for cls in vars(world).values()
               if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == world.__name__]
    return frozenset(name for cls in [*classes, *REGISTRY.values()]
                     for name, f in cls.model_fields.items() if is_int(f.annotation))


INTEGER_FIELDS = _integer_fields()  # world fields that are ints: sampled values are rounded for them


def _points(spec: SensitivitySpec, x: np.ndarray) -> list[dict[str, Any]]:
    """Sample rows as override dicts (integer world fields rounded)."""
    names = list(spec.parameters)
    return [{k: (int(round(v)) if k.rsplit(".", 1)[-1] in INTEGER_FIELDS else float(v))
             for k, v in zip(names, row, strict=True)} for row in x]


INDEX_COLUMNS = {"morris": ("mu", "mu_star", "sigma", "mu_star_conf"), "sobol": ("S1", "S1_conf", "ST", "ST_conf")}
MAIN_INDEX = {"morris": "mu_star", "sobol": "ST"}  # the index that ranks parameters


def _flat(yv: np.ndarray) -> bool:
    return not np.isfinite(yv).all() or np.nanstd(yv) <= 1e-12 * max(1.0, np.nanmax(np.abs(yv)))


def _indices(spec: SensitivitySpec, method: str, x: np.ndarray, yv: np.ndarray) -> dict[str, np.ndarray] | None:
    """SALib's indices of one output (arrays over parameters), None where the output does not vary."""
    if _flat(yv):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "morris":
            from SALib.analyze import morris as ma

            r = ma.analyze(spec.problem, x, yv, num_levels=spec.morris.levels, seed=spec.morris.seed)
        else:
            from SALib.analyze import sobol as sa

            warnings.filterwarnings("ignore", message=".*power of 2.*")
            r = sa.analyze(spec.problem, yv, calc_second_order=spec.sobol.second_order, seed=spec.sobol.seed)
    return {k: np.asarray(r[k], dtype=float) for k in INDEX_COLUMNS[method]}


def analyse(spec: SensitivitySpec, method: str, x: np.ndarray, y: pd.DataFrame,
            per_seed: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Indices per output and parameter (long table).

    ``y``: the output per sample point (the mean over seeds), the values analysed. ``per_seed``: for each
    output, its values per point and seed (points x seeds); with two seeds or more the table also has the
    seed noise beside the indices: ``seed_sd``, the pooled seed-to-seed standard deviation of the output at a
    sample point; ``noise_share``, the share of the variance of ``y`` over the sample that is seed noise
    (``seed_sd**2 / seeds`` over the variance of the point means); and per index ``<index>_seed_sd``, the
    standard deviation over seeds of the index computed on each seed's runs alone. With one seed they are
    NaN (not measured)."""
    rows = []
    for m in spec.metrics:
        yv = y[m.name].to_numpy(dtype=float)
        base = {"method": method, "output": m.name, "label": m.label, "unit": m.unit}
        r = _indices(spec, method, x, yv)
        if r is None:
            log.warning("output %s does not vary over the sample (or has gaps): indices are undefined", m.name)
        noise = {"seed_sd": np.nan, "noise_share": np.nan}
        seed_sd = {k: np.full(len(spec.parameters), np.nan) for k in INDEX_COLUMNS[method] if not k.endswith("_conf")}
        ys = None if per_seed is None else per_seed.get(m.name)
        if ys is not None and ys.shape[1] >= 2 and np.isfinite(ys).all():
            within = float(np.mean(np.var(ys, axis=1, ddof=1)))
            between = float(np.var(ys.mean(axis=1), ddof=1))
            noise = {"seed_sd": within ** 0.5,
                     "noise_share": (within / ys.shape[1]) / between if between > 0 else np.nan}
            each = [_indices(spec, method, x, ys[:, j]) for j in range(ys.shape[1])]
            if all(e is not None for e in each):
                seed_sd = {k: np.std([e[k] for e in each], axis=0, ddof=1) for k in seed_sd}
        for i, p in enumerate(spec.parameters):
            rows.append({**base, "parameter": p,
                         **{k: (np.nan if r is None else float(r[k][i])) for k in INDEX_COLUMNS[method]},
                         **noise, **{f"{k}_seed_sd": float(v[i]) for k, v in seed_sd.items()}})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------- checks
# What each warning means, one line, as the CLI prints it and checks.json / checks.md record it.
MATERIAL = 0.05  # a Sobol interval is "wide" when its half-width exceeds both the estimate and this
NOISE_SHARE = 0.10  # seed noise above this share of the output's variance over the sample is reported
MEANINGS = {
    "wide_interval": "N too small for this output: the interval is wider than the index, so it does not tell "
                     "this parameter's effect from none; raise sobol.n",
    "s1_sum_above_1": "impossible for exact indices (first-order shares add up to at most 1): estimation error, "
                      "N too small for this output; raise sobol.n",
    "st_below_s1": "impossible for exact indices (a parameter's total effect includes its first-order effect): "
                   "estimation error, N too small for this output; raise sobol.n",
    "seed_noise": "the indices partly divide up seed-to-seed noise, not the parameters' effects: add seeds",
    "one_seed": "seed-to-seed noise is not measured with one seed: the indices may be noise; use two seeds or more",
    "not_converged": "the ranking or the indices still move with the sample size: N too small for this output; "
                     "raise sobol.n or morris.trajectories",
}


def checks(spec: SensitivitySpec, method: str, ind: pd.DataFrame) -> list[dict[str, Any]]:
    """The guard rails on an index table: Sobol intervals wider than their estimate (half-width above both
    the estimate and :data:`MATERIAL`), S1 summing to more than 1 beyond its interval (half-widths added in
    quadrature), ST below S1 beyond both intervals, and seed noise above :data:`NOISE_SHARE` of the output's
    variance (or not measured: one seed). Each is a dict with ``check``, ``method``, ``output``,
    ``parameters``, ``detail`` and ``meaning`` (:data:`MEANINGS`)."""
    out: list[dict[str, Any]] = []

    def add(check: str, output: str, detail: str, parameters: list[str] | None = None) -> None:
        out.append({"check": check, "method": method, "output": output, "parameters": parameters or [],
                    "detail": detail, "meaning": MEANINGS[check]})

    if len(spec.seeds) < 2:
        add("one_seed", "*", f"seeds = {spec.seeds}")
    for output, d in ind.groupby("output", sort=False):
        share = d["noise_share"].iloc[0]
        if np.isfinite(share) and share > NOISE_SHARE:
            add("seed_noise", output, f"seed noise is {share:.0%} of the output's variance over the sample "
                                      f"(s.d. {d['seed_sd'].iloc[0]:.4g} between seeds at a point; "
                                      f"threshold {NOISE_SHARE:.0%})")
        if method != "sobol" or not np.isfinite(d["ST"]).any():
            continue
        for idx in ("S1", "ST"):
            wide = d[d[f"{idx}_conf"] > np.maximum(d[idx].abs(), MATERIAL)]
            if len(wide):
                add("wide_interval", output, f"{idx} " + "; ".join(
                    f"{r.parameter} {getattr(r, idx):.3f} ± {getattr(r, f'{idx}_conf'):.3f}" for r in wide.itertuples()),
                    list(wide["parameter"]))
        total, half = float(d["S1"].sum()), float(np.sqrt((d["S1_conf"] ** 2).sum()))
        if total - half > 1:
            add("s1_sum_above_1", output, f"sum of S1 {total:.3f} ± {half:.3f}")
        below = d[d["S1"] - d["ST"] > np.sqrt(d["S1_conf"] ** 2 + d["ST_conf"] ** 2)]
        if len(below):
            add("st_below_s1", output, "; ".join(f"{r.parameter} ST {r.ST:.3f} < S1 {r.S1:.3f}"
                                                 for r in below.itertuples()), list(below["parameter"]))
    return out


# ------------------------------------------------------------------------------------------ convergence
def subset_sizes(total: int) -> list[int]:
    """The sample sizes the convergence check uses: total/4, total/2 and total (Sobol base samples or
    Morris trajectories), those of at least 2."""
    return sorted({n for n in (total // 4, total // 2, total) if n >= 2})


def convergence(spec: SensitivitySpec, method: str, x: np.ndarray, y: pd.DataFrame) -> pd.DataFrame:
    """Indices recomputed on growing leading subsets of the sample (:func:`subset_sizes`): the first n base
    samples of a Sobol design (each block of k + 2 rows, or 2k + 2 with second order, is one base sample, so
    the first n blocks are the design SALib draws for n) or the first t Morris trajectories (k + 1 rows each).
    Long table: method, output, parameter, size, runs (points), the indices and ``rank`` (1 = largest ST or
    mu*)."""
    k = len(spec.parameters)
    if method == "sobol":
        total, per = spec.sobol.n, (2 * k + 2 if spec.sobol.second_order else k + 2)
    else:
        total, per = spec.morris.trajectories, k + 1
    rows = []
    for m in spec.metrics:
        yv = y[m.name].to_numpy(dtype=float)
        for size in subset_sizes(total):
            r = _indices(spec, method, x[: size * per], yv[: size * per])
            if r is None:
                continue
            rank = pd.Series(r[MAIN_INDEX[method]]).rank(ascending=False, method="first").astype(int).to_numpy()
            for i, p in enumerate(spec.parameters):
                rows.append({"method": method, "output": m.name, "parameter": p, "size": size, "runs": size * per,
                             **{c: float(r[c][i]) for c in INDEX_COLUMNS[method]}, "rank": int(rank[i])})
    cols = ["method", "output", "parameter", "size", "runs", *INDEX_COLUMNS[method], "rank"]
    return pd.DataFrame(rows, columns=cols)


def convergence_checks(spec: SensitivitySpec, method: str, conv: pd.DataFrame) -> list[dict[str, Any]]:
    """``not_converged`` where, between the last two sizes, the top-ranked parameters (``convergence.top``)
    change or their order does, or one of their indices moves by more than the tolerance: Sobol S1 and ST
    by ``sobol_tolerance`` (absolute), Morris mu* by ``morris_tolerance`` x the largest mu* at full size."""
    out = []
    for output, d in conv.groupby("output", sort=False):
        sizes = sorted(d["size"].unique())
        if len(sizes) < 2:
            continue
        prev, last = (d[d["size"] == n].set_index("parameter") for n in sizes[-2:])
        top = list(last.sort_values("rank").index[: spec.convergence.top])
        before = list(prev.sort_values("rank").index[: spec.convergence.top])
        why = []
        if top != before:
            why.append(f"top {len(top)} by {MAIN_INDEX[method]} {', '.join(before)} at {sizes[-2]} -> "
                       f"{', '.join(top)} at {sizes[-1]}")
        if method == "sobol":
            tol, idx = spec.convergence.sobol_tolerance, ("S1", "ST")
            scale = 1.0
        else:
            tol, idx = spec.convergence.morris_tolerance, ("mu_star",)
            scale = float(last["mu_star"].max())
        for c in idx:
            moved = (last.loc[top, c] - prev.loc[top, c]).abs() / (scale or 1.0)
            worst = moved.idxmax()
            if moved[worst] > tol:
                what = f"{moved[worst]:.3f}" if method == "sobol" else f"{moved[worst]:.0%} of the largest mu*"
                why.append(f"{c} of {worst} moved by {what} from {sizes[-2]} to {sizes[-1]} "
                           f"(tolerance {tol:g}{'' if method == 'sobol' else ' of the largest'})")
        if why:
            unit = "base samples" if method == "sobol" else "trajectories"
            out.append({"check": "not_converged", "method": method, "output": output, "parameters": top,
                        "detail": f"{unit}: " + "; ".join(why), "meaning": MEANINGS["not_converged"]})
    return out


def format_check(c: dict[str, Any]) -> str:
    """``warning: sobol peak_cn_dy_price: wide_interval: ...`` and the meaning on a second line."""
    where = c["method"] if c["output"] == "*" else f"{c['method']} {c['output']}"
    return f"warning: {where}: {c['check']}: {c['detail']}\n  means: {c['meaning']}"


def checks_markdown(found: list[dict[str, Any]]) -> str:
    lines = ["# Sensitivity checks", ""]
    if not found:
        return "\n".join([*lines, "No warnings.", ""])
    lines += ["| method | output | check | detail | what it means |", "|---|---|---|---|---|"]
    lines += [f"| {c['method']} | {c['output']} | {c['check']} | {c['detail']} | {c['meaning']} |" for c in found]
    return "\n".join([*lines, ""])


# ------------------------------------------------------------------------------------------------ run
@dataclasses.dataclass
class SensitivityResult:
    out: Path
    indices: dict[str, pd.DataFrame]
    samples: dict[str, pd.DataFrame]
    figures: list[Path]
    runs: Any  # the SweepSummary of the runs
    checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # the warnings (see :func:`checks`)

    def table(self) -> str:
        """A compact text table for the terminal."""
        lines = []
        for method, ind in self.indices.items():
            for out, d in ind.groupby("output", sort=False):
                lines.append(f"{method}: {out} ({d['label'].iloc[0]}, {d['unit'].iloc[0]})")
                noisy = "noise_share" in d and np.isfinite(d["seed_sd"].iloc[0])
                if noisy:
                    share = d["noise_share"].iloc[0]
                    lines.append(f"  seed noise: s.d. {d['seed_sd'].iloc[0]:.4g} between seeds at a point"
                                 + (f", {share:.1%} of the output's variance over the sample" if np.isfinite(share) else ""))
                if method == "morris":
                    d = d.sort_values("mu_star", ascending=False)
                    lines += [f"  {r.parameter:45s} mu* {r.mu_star:10.4g} ± {r.mu_star_conf:<9.3g} sigma {r.sigma:10.4g}"
                              + (f"   seed s.d. of mu* {r.mu_star_seed_sd:.3g}" if noisy else "")
                              for r in d.itertuples()]
                else:
                    d = d.sort_values("ST", ascending=False)
                    lines += [f"  {r.parameter:45s} S1 {r.S1:6.3f} ± {r.S1_conf:5.3f}   ST {r.ST:6.3f} ± {r.ST_conf:5.3f}"
                              + (f"   seed s.d. of S1 {r.S1_seed_sd:.3f}, ST {r.ST_seed_sd:.3f}" if noisy else "")
                              for r in d.itertuples()]
        return "\n".join(lines)


def run(spec: SensitivitySpec | str | Path, out: str | Path | None = None, methods: list[str] | None = None,
        workers: int | None = None, scheduler: str | None = None, cluster: str | None = None,
        progress: bool = True, formats: tuple[str, ...] = ("pdf", "svg", "png"),
        max_runs: int | None = None) -> SensitivityResult:
    """Sample, run (or resume), analyse and plot; returns the index tables.

    Bad executor options, an unreachable scheduler or more than ``max_runs`` runs (default
    :data:`experiments.sweep.MAX_RUNS`, counted by :func:`design_size`) raise ConfigError before anything
    is sampled or written."""
    if not isinstance(spec, SensitivitySpec):
        spec = load_spec(spec)
    methods = list(methods or spec.methods)
    for m in methods:
        if m not in ("morris", "sobol"):
            raise ConfigError(f"method {m!r}: choose morris or sobol")
    check_executor(workers, scheduler, cluster)
    check_max_runs(max_runs)
    check_size(*design_size(spec, methods), spec.source or spec.name, max_runs)
    if scheduler is not None:
        connect_scheduler(scheduler)
    out = Path(out) if out is not None else inside(Path("results") / "sensitivity", spec.name)
    ensure_dir(out)
    with output_lock(out):
        return _run(spec, out, methods, workers, scheduler, cluster, progress, formats)


def _run(spec: SensitivitySpec, out: Path, methods: list[str], workers: int | None, scheduler: str | None,
         cluster: str | None, progress: bool, formats: tuple[str, ...]) -> SensitivityResult:
    import os

    from experiments import figures
    from experiments.sweep import load_sweep

    sweep_spec = spec.sweep_spec()
    sc = _resolve_scenario(spec.scenario, sweep_spec)  # fail early on a bad scenario
    _check_effects(spec, sc)
    xs = {m: sample(spec, m) for m in methods}
    designs: dict[str, list[RunTask]] = {m: plan(sweep_spec, _points(spec, xs[m]), allow_repeats=True)
                                         for m in methods}
    twins = {m: _twins(spec, sweep_spec, _points(spec, xs[m])) for m in methods}
    tasks = list({t.key: t for m in methods for t in [*designs[m], *(t for ts in twins[m].values() for t in ts)]}
                 .values())
    fingerprint = _spec_fingerprint(spec.model_dump(mode="json", exclude={"source"}))
    points = [t.point for t in tasks]
    # runs of the spec's other method belong in this folder too (`--method morris` after `both`)
    others = []
    for m in ("morris", "sobol"):
        if m not in designs:
            pts = _points(spec, sample(spec, m))
            others += plan(sweep_spec, pts, allow_repeats=True)
            others += [t for ts in _twins(spec, sweep_spec, pts).values() for t in ts]
    keys = {t.key for t in tasks} | {t.key for t in others}
    changed = check_design(out, tasks, fingerprint, keys, also=others)
    write_manifest(out, sweep_spec, tasks, points, fingerprint, kind="sensitivity",
                   extra={"sensitivity": spec.model_dump(mode="json", exclude={"source"}), "methods": methods})
    try:
        summary = run_tasks(tasks, out, workers or os.cpu_count() or 1, scheduler, cluster, progress,
                            name=spec.name)
    finally:
        write_manifest(out, sweep_spec, tasks, points, fingerprint, kind="sensitivity",
                       extra={"sensitivity": spec.model_dump(mode="json", exclude={"source"}), "methods": methods})
    if changed:
        summary.notes.append(changed)
    if summary.failed:
        raise RuntimeError(f"{summary.failed} run(s) failed (see {out / FAILED}); run the same command again "
                           f"to retry them. First error: {summary.errors[0]}")
    variables = sorted({m.variable for m in spec.metrics})
    df = load_sweep(out, variables=variables)
    per_run = compute_metrics(df, spec.metrics, spec.burn_in_weeks)
    indices, samples, paths, found = {}, {}, [], []
    for m in methods:
        x = xs[m]
        per_seed = _per_seed(spec, designs[m], per_run, twins[m])
        y = pd.DataFrame({name: v.mean(axis=1) for name, v in per_seed.items()})
        table = pd.DataFrame(x, columns=list(spec.parameters))
        table = pd.concat([table, y], axis=1)
        samples[m] = table
        atomic_write_bytes(out / f"samples_{m}.csv", table.to_csv(index_label="point").encode())
        ind = analyse(spec, m, x, y, per_seed)
        indices[m] = ind
        atomic_write_bytes(out / f"indices_{m}.csv", ind.to_csv(index=False).encode())
        found += checks(spec, m, ind)
        chart = figures.morris_chart if m == "morris" else figures.sobol_chart
        seeds = f"{len(spec.seeds)} seed{'s' if len(spec.seeds) > 1 else ''}"
        horizon = f"{spec.weeks} weeks" if spec.weeks else "full horizon"
        title = f"{spec.scenario}, {horizon}, {len(x)} points x {seeds}"
        with writing(out / f"sensitivity_{m}"):
            paths += figures.save(chart(ind, title=title), out / f"sensitivity_{m}", formats)
        conv = convergence(spec, m, x, y)
        atomic_write_bytes(out / f"convergence_{m}.csv", conv.to_csv(index=False).encode())
        found += convergence_checks(spec, m, conv)
        if len(conv):
            with writing(out / f"convergence_{m}"):
                paths += figures.save(figures.convergence_chart(conv, title=title), out / f"convergence_{m}",
                                      formats)
    atomic_write_bytes(out / "checks.json", (json.dumps(found, indent=1) + "\n").encode())
    atomic_write_bytes(out / "checks.md", checks_markdown(found).encode())
    for c in found:
        log.info(format_check(c))
    return SensitivityResult(out, indices, samples, paths, summary, found)


def _per_seed(spec: SensitivitySpec, tasks: list[RunTask], per_run: pd.DataFrame,
              twins: dict[str, list[RunTask]] | None = None) -> dict[str, np.ndarray]:
    """Each output's values per sample point and seed (points x seeds) of one method's runs, which
    :func:`experiments.sweep.plan` orders point by point, each point's seeds in the spec's order. An effect
    output is the run's value minus its twin's (the same point and seed without the entry)."""
    s = len(spec.seeds)

    def values(name: str, ts: list[RunTask]) -> np.ndarray:
        return per_run[name].reindex([t.key for t in ts]).to_numpy(dtype=float).reshape(-1, s)

    return {m.name: values(m.name, tasks) - (values(m.name, (twins or {})[m.effect_of]) if m.effect_of else 0.0)
            for m in spec.metrics}


def _check_effects(spec: SensitivitySpec, sc: Any) -> None:
    """Each effect_of names an entry of the scenario's timeline: checked as ``ree compare --without`` checks
    it (:func:`experiments.levers.without`), before anything runs (ConfigError listing the entries)."""
    from experiments.levers import without

    for m in spec.metrics:
        if m.effect_of:
            try:
                without(sc, m.effect_of)
            except ConfigError as exc:
                raise ConfigError(f"{spec.source or spec.name}: output {m.name!r}: effect_of: {exc}") from None


def _twins(spec: SensitivitySpec, sweep_spec: SweepSpec, points: list[dict[str, Any]]) -> dict[str, list[RunTask]]:
    """Per effect entry, the twin of every run (same point and seeds, in the same order) without that entry:
    the lever ``policy.<entry>.enabled = false``, which is how :func:`experiments.levers.without` (and so
    ``ree compare --without``) removes it. Twins are runs like the others: keyed, cached, resumed."""
    return {e: plan(sweep_spec, [{**p, twin_key(e): False} for p in points], allow_repeats=True)
            for e in spec.effects}

