"""Adapter for the EMA Workbench (``ema_workbench``): run its experiments and scenario discovery on this model.

:func:`make_model` returns an EMA ``Model`` (one seed) or ``ReplicatorModel`` (several seeds) whose
function runs :func:`experiments.run.run_one`. Every EMA parameter maps to the model through its
``variable_name``:

- a dotted world-override key, e.g. ``RealParameter("full_cost_markup", 0.6, 0.85,
  variable_name="behaviour.full_cost_markup")`` or ``states.CN.reserve.max_weeks`` (list entries by id;
  EMA names must be Python identifiers, the keys need not be);
- ``policy:<Type>:<actor>:<field>``: adds a policy of that type from :mod:`model.policies`, acting
  from the scenario's start, to the scenario's timeline, e.g. ``"policy:Stockpile:US:target_days"``.
  Levers naming the same type and actor build one policy; the extra field ``enabled`` (a
  ``BooleanParameter``) switches it off when false;
- ``policy.<Type>[<actor>].<field>`` (:mod:`experiments.levers`): changes a field of an entry the
  scenario's timeline already has, as in sweeps, e.g. ``"policy.Stockpile[JP].target_days"``.

Defaults: uncertainties are the behavioural rates and levy with the bounds in
``experiments/specs/sensitivity_behaviour.toml`` (:func:`default_uncertainties`); levers are a US
stockpile, Japan's JOGMEC reserve and ex-China refining capacity (:func:`default_levers`); outcomes are scalars from
:mod:`experiments.sensitivity` (``peak_cn_dy_price``, ``total_shortage``, ...) and weekly series
(``price_ROW_Dy``: a ``TimeSeriesOutcome`` of length weeks + 1). Example::

    from ema_workbench import perform_experiments
    from experiments.ema import make_model

    model = make_model("baseline", weeks=104)
    experiments, outcomes = perform_experiments(model, scenarios=50, policies=4)

    from ema_workbench.analysis import prim      # scenario discovery (ema_workbench 3: no threshold=)
    x = experiments[[u.name for u in model.uncertainties]]
    box = prim.Prim(x, outcomes["peak_row_dy_price"] > 300).find_box()
    traj = box.peeling_trajectory                # pick the widest box with density >= 0.6
    box.select(int(traj.loc[traj["density"] >= 0.6, "coverage"].idxmax()))
    box.inspect()                                # box.box_lim: the limits as a DataFrame

With several seeds (``seeds=[1, 2, 3]``) every experiment runs each seed and reports the mean of each
scalar and the weekly median of each series, so outcomes stay one value per experiment (what PRIM and
CART want). For per-seed outcomes, wrap :class:`ModelFunction` in an EMA ``ReplicatorModel`` with
``replications = [{"seed": s} for s in seeds]`` and ``ArrayOutcome`` outcomes. For parallel runs use
``MultiprocessingEvaluator(model)``; the model function is picklable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.levers import apply_levers
from experiments.run import run_one
from experiments.sensitivity import INTEGER_FIELDS, Metric
from model.params import ConfigError, _read_toml
from model.scenario import Scenario, load_scenario

SPEC_DIR = Path(__file__).parent / "specs"
DEFAULT_UNCERTAINTY_SPEC = SPEC_DIR / "sensitivity_behaviour.toml"
DEFAULT_SCALARS = ("peak_cn_dy_price", "peak_row_dy_price", "mean_china_refined_share",
                   "mean_myanmar_ore_to_china", "total_shortage")
DEFAULT_SERIES = ("price:ROW:Dy", "price:CN:Dy", "myanmar_ore_to_china")
POLICY_PREFIX = "policy:"


def ident(key: str) -> str:
    """An EMA-safe name for a dotted key: ``armed_groups.KIA.levy_usd_per_kg`` -> ``KIA_levy_usd_per_kg``."""
    parts = key.replace(POLICY_PREFIX, "").replace(":", ".").split(".")
    core = parts[1:] if len(parts) > 1 and parts[0] in ("behaviour", "armed_groups", "miners", "refiners",
                                                         "traders", "states", "edges", "buyers", "products",
                                                         "regions", "Stockpile") else parts
    name = re.sub(r"\W", "_", "_".join(core))
    return name if name.isidentifier() else f"p_{name}"


def series_name(spec: str) -> str:
    """``price:ROW:Dy`` -> ``price_ROW_Dy`` (the name of a TimeSeriesOutcome)."""
    return re.sub(r"\W", "_", "_".join(x for x in spec.split(":") if x))


class ModelFunction:
    """The callable EMA runs: keyword parameters in (variable names), outcomes dict out.

    Picklable (a plain object with data attributes), so EMA's multiprocessing evaluator can ship it.
    """

    def __init__(self, scenario: str | Path | Scenario = "baseline", weeks: int | None = None,
                 scalars: Sequence[str] = DEFAULT_SCALARS, series: Sequence[str] = DEFAULT_SERIES,
                 burn_in_weeks: int = 0):
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.weeks = weeks or self.scenario.weeks
        self.metrics = [Metric.parse(s) for s in scalars]
        self.series = list(series)
        self.burn_in_weeks = burn_in_weeks
        for s in self.series:
            Metric.parse(f"mean:{s}")  # validates variable / region / product

    def scenario_for(self, params: dict[str, Any]) -> tuple[Scenario, dict[str, Any]]:
        """Split parameters into world overrides and policies added to the timeline."""
        overrides: dict[str, Any] = {}
        policies: dict[tuple[str, str], dict[str, Any]] = {}
        for key, value in params.items():
            if key.startswith(POLICY_PREFIX):
                try:
                    kind, actor, field = key[len(POLICY_PREFIX):].split(":")
                except ValueError:
                    raise ConfigError(f"{key!r}: expected policy:<Type>:<actor>:<field>") from None
                policies.setdefault((kind, actor), {})[field] = _plain(value)
            else:
                overrides[key] = _plain(value)
        timeline = list(self.scenario.timeline)
        for (kind, actor), fields in policies.items():
            if fields.pop("enabled", True) in (False, 0, "False", "false"):
                continue
            timeline.append({"type": kind, "actor": actor, "start": self.scenario.start,
                             "note": "EMA lever", **fields})
        sc = self.scenario.model_copy(update={"timeline": timeline}) if policies else self.scenario
        return sc, overrides

    def __call__(self, seed: int | Sequence[int] = 1, **params: Any) -> dict[str, Any]:
        """Run one experiment; with several seeds, scalars are the mean over seeds and series the
        week-by-week median (common random numbers: every experiment uses the same seeds)."""
        sc, overrides = self.scenario_for(params)
        seeds = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
        runs = [run_one(sc, s, self.weeks, overrides, run_id=f"ema-s{s}") for s in seeds]
        out: dict[str, Any] = {}
        for m in self.metrics:
            out[m.name] = float(np.mean([m.compute(df, self.burn_in_weeks).iloc[0] for df in runs]))
        steps = np.arange(self.weeks + 1)
        for s in self.series:
            metric = Metric.parse(f"mean:{s}")
            rows = []
            for df in runs:
                weekly = metric.series(df)
                rows.append(weekly.iloc[:, 0].reindex(steps).to_numpy(dtype=float) if not weekly.empty
                            else np.full(len(steps), np.nan))
            out[series_name(s)] = np.median(np.vstack(rows), axis=0)
        return out


def _plain(v: Any) -> Any:
    """numpy scalars (what EMA samples) as plain Python values, so world validation and hashing accept them."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def default_uncertainties(spec: str | Path = DEFAULT_UNCERTAINTY_SPEC) -> list:
    """RealParameters from a sensitivity spec's [parameters] table (bounds included)."""
    from ema_workbench import IntegerParameter, RealParameter

    raw = _read_toml(Path(spec)).get("parameters", {})
    out = []
    for key, (lo, hi) in raw.items():
        if isinstance(lo, int) and isinstance(hi, int) and key.rsplit(".", 1)[-1] in INTEGER_FIELDS:
            out.append(IntegerParameter(ident(key), lo, hi, variable_name=key))
        else:
            out.append(RealParameter(ident(key), float(lo), float(hi), variable_name=key))
    return out


def default_levers() -> list:
    """Policy and world levers: a US stockpile (a policy, days of use), the size of Japan's JOGMEC reserve
    (in the world, weeks of use; FACTS E5's 60-day target is ~8.6) and ex-China separation capacity."""
    from ema_workbench import CategoricalParameter, RealParameter

    return [
        RealParameter("us_stockpile_days", 0.0, 120.0, variable_name="policy:Stockpile:US:target_days"),
        RealParameter("jp_reserve_weeks", 6.0, 17.0, variable_name="states.JP.reserve.max_weeks"),
        RealParameter("lynas_malaysia_capacity", 280.0, 840.0,
                      variable_name="refiners.my_lynas.capacity_t_per_week"),
        CategoricalParameter("eneabba_status", ["planned", "building", "operating"],
                             variable_name="refiners.au_iluka_eneabba.status"),
    ]


def make_model(scenario: str | Path | Scenario = "baseline", weeks: int | None = None,
               seeds: Iterable[int] = (1,), uncertainties: list | None = None, levers: list | None = None,
               scalars: Sequence[str] = DEFAULT_SCALARS, series: Sequence[str] = DEFAULT_SERIES,
               burn_in_weeks: int = 0, name: str = "ree"):
    """An EMA model of a scenario (see the module docstring for what maps to what)."""
    from ema_workbench import Constant, Model, ScalarOutcome, TimeSeriesOutcome

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("give at least one seed")
    fn = ModelFunction(scenario, weeks, scalars, series, burn_in_weeks)
    _check_parameters(fn, [*(uncertainties if uncertainties is not None else default_uncertainties()),
                           *(levers if levers is not None else default_levers())])
    model = Model(name, function=fn)
    model.constants = [Constant("seed", seeds[0] if len(seeds) == 1 else tuple(seeds))]
    model.uncertainties = uncertainties if uncertainties is not None else default_uncertainties()
    model.levers = levers if levers is not None else default_levers()
    model.outcomes = [*(ScalarOutcome(m.name if m.name.isidentifier() else series_name(m.name),
                                      variable_name=m.name) for m in fn.metrics),
                      *(TimeSeriesOutcome(series_name(s)) for s in fn.series)]
    return model


def _check_parameters(fn: ModelFunction, params: list) -> None:
    """Fail early (ConfigError naming it) when a parameter does not map onto the world or a policy."""
    for p in params:
        bounds = getattr(p, "categories", None)
        values = [c.value for c in bounds] if bounds is not None else [p.lower_bound, p.upper_bound]
        for var in p.variable_name:
            for v in values:
                sc, overrides = fn.scenario_for({var: v})
                try:
                    sc, overrides = apply_levers(sc, overrides)  # policy.<Type>[<actor>].<field> levers
                    sc.with_overrides(overrides).check()
                except ConfigError as exc:
                    raise ConfigError(f"EMA parameter {p.name!r} ({var} = {v!r}): {exc}") from None
