"""Two scenarios side by side on the same seeds: the key outputs a policy debate asks about, and the paired
effects of a policy against its no-policy twin with bootstrap intervals (:func:`paired_effects`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.labels import market_regions, products, region_name
from experiments.run import run_one
from experiments.validate import HEAVY, MAGNET_REES, region_share
from model.scenario import Scenario, load_scenario


def key_outputs(df: pd.DataFrame) -> dict[str, float]:
    """Scalar summaries of one run (names carry their units); products and market regions are the
    table's own, in the world's order."""
    out: dict[str, float] = {}
    price = df[df["variable"] == "price"]
    prods = products(df)
    for region in market_regions(df):
        for p in prods:
            s = price[(price["region"] == region) & (price["product"] == p)]["value"]
            out[f"{p} {region} price, mean (USD/kg)"] = float(s.mean())
            out[f"{p} {region} price, peak (USD/kg)"] = float(s.max())
    short = df[df["variable"] == "shortage"]
    for p in prods:
        out[f"{p} shortage, total (t)"] = float(short[short["product"] == p]["value"].sum())
    exports = df[df["variable"] == "exports"]
    for p in prods:
        out[f"{p} China's exports, total (t)"] = float(exports[exports["product"] == p]["value"].sum())
    share = df[(df["variable"] == "china_refined_share") & (df["product"] == "")]["value"]
    out["China share of refining, last year"] = float(share.iloc[-52:].mean())
    cap = df[(df["variable"] == "capacity_online") & (df["region"] != "CN")]
    last = cap[cap["step"] == cap["step"].max()]["value"].sum()
    out["ex-China capacity at end (t REO/week)"] = float(last)
    mm = df[df["variable"] == "myanmar_ore_to_china"]["value"]
    out["Myanmar ore to China, total (t)"] = float(mm.sum())
    lev = df[df["variable"] == "levy_revenue"]["value"]
    out["armed-group levies, total (M USD)"] = float(lev.sum())
    return out


def compare_scenarios(a: str, b: str, seeds: list[int], weeks: int | None = None, paired: bool = True,
                      precision: float = 0.01, out: str | Path | None = None) -> str:
    """The key outputs of ``a`` and ``b`` side by side (medians over ``seeds``), then, with ``paired``, the
    paired effects of ``b`` against ``a`` with bootstrap intervals (:func:`paired_effects`), from the same
    runs."""
    sa, sb = load_scenario(a), load_scenario(b)
    if weeks is None:
        weeks = min(sa.weeks, sb.weeks)
    cols = {}
    runs = []
    for sc in (sa, sb):
        tables = _runs(sc, seeds, weeks)
        runs.append(tables)
        rows = [key_outputs(t) for t in tables.values()]
        name = sc.name if sc.name not in cols else f"{sc.name} (2)"  # a scenario against itself
        cols[name] = pd.DataFrame(rows).median()
    table = pd.DataFrame(cols)
    first, second = table.columns
    table["change"] = np.where(table[first].abs() > 1e-9, table[second] / table[first] - 1.0, np.nan)
    lines = [f"{first} vs {second}: medians over seeds {seeds[0]}..{seeds[-1]}, {weeks} weeks"]
    width = max(len(i) for i in table.index)
    lines.append(f"{'':{width}}  {first:>14}  {second:>14}  {'change':>8}")
    for name, r in table.iterrows():
        ch = "" if not np.isfinite(r["change"]) else f"{r['change']:+.0%}"
        lines.append(f"{name:{width}}  {_num(r[first])}  {_num(r[second])}  {ch:>8}")
    if paired:
        effects = _effects_from_runs(runs[1], runs[0], sb.name, sa.name, weeks, precision=precision)
        lines += ["-" * 40, format_effects(effects, precision)]
        if out is not None:
            written = write_effects(out, runs[1], runs[0], sb, sa, weeks, precision)
            lines.append(f"wrote {', '.join(p.name for p in written)} in {out}")
    return "\n".join(lines)


def _num(x: float) -> str:
    """Width 14: shares and other small numbers with three decimals, the rest with one."""
    return f"{x:14,.3f}" if abs(x) < 10 else f"{x:14,.1f}"


# ============================================================================= paired effects with intervals
# A policy's effect is estimated on common random numbers: the policy scenario and its twin (the scenario
# without the policy, or a baseline) run on the same seeds, so each seed gives one paired difference and
# the seed-to-seed noise common to both cancels. Outcomes are computed on 4-week means, never on a single
# week's extreme, and the interval is a percentile bootstrap over seeds with its own seeded Generator.
WINDOW_WEEKS = 4
LEVEL = 0.95  # confidence level of the intervals
N_BOOT = 4000  # bootstrap resamples
BOOT_SEED = 20_251_203  # the bootstrap's own stream (never the global np.random)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A scalar outcome of one run: ``name`` (an identifier), ``label`` and ``unit`` for tables and axes;
    ``stat`` (``peak``: the largest 4-week mean; ``mean``: the mean over weeks; ``last``: the last week's) of
    the weekly series of ``variable`` summed over the rows of ``region`` and ``product`` (None: every one).
    ``share``: ``region``'s share of ``variable`` summed over the whole run and over ``products`` (e.g. China's
    share of the Dy and Tb refined)."""

    name: str
    label: str
    unit: str
    stat: str
    variable: str
    region: str | None
    product: str | None
    products: tuple[str, ...] = ()


def rolling_mean(weekly: pd.Series, window: int = WINDOW_WEEKS) -> pd.Series:
    """Trailing ``window``-week means of a weekly series (the first ``window - 1`` weeks have none)."""
    return weekly.rolling(window, min_periods=window).mean()


def _weekly(df: pd.DataFrame, o: Outcome, steps: np.ndarray) -> pd.Series:
    """One run's weekly series for an outcome, summed over the rows that match (e.g. every buyer state);
    weeks with no row are zero (a shortage is recorded only where there is one)."""
    d = df[df["variable"] == o.variable]
    if o.region is not None:
        d = d[d["region"] == o.region]
    if o.product is not None:
        d = d[d["product"] == o.product]
    return d.groupby("step")["value"].sum().reindex(steps, fill_value=0.0)


def outcome_catalogue(df: pd.DataFrame) -> list[Outcome]:
    """The outcomes of a table, read from its products and market regions (generic over the world)."""
    out = []
    for region in market_regions(df):
        name = region_name(region, df)
        for p in products(df):
            out.append(Outcome(f"peak_price_{region}_{p}", f"{p} {name} price, peak 4-week mean", "USD/kg",
                               "peak", "price", region, p))
            out.append(Outcome(f"mean_price_{region}_{p}", f"{p} {name} price, mean", "USD/kg", "mean", "price",
                               region, p))
    for p in products(df):
        out.append(Outcome(f"mean_shortage_{p}", f"{p} shortage, mean", "t/week", "mean", "shortage", None, p))
        out.append(Outcome(f"peak_shortage_{p}", f"{p} shortage, peak 4-week mean", "t/week", "peak", "shortage",
                           None, p))
    out.append(Outcome("mean_china_refined_share", "China's share of refined output, mean", "fraction", "mean",
                       "china_refined_share", None, ""))
    if (df["variable"] == "refined_output").any():
        # who refines the magnet rare earths (the IEA's basis, FACTS R7: the share over every oxide is mostly La
        # and Ce from Bayan Obo) and the heavy ones among them (issue 12: what financing changes)
        for name, group in (("china_magnet_ree_refined_share", MAGNET_REES), ("china_heavy_refined_share", HEAVY)):
            have = tuple(p for p in group if p in products(df))
            if have:
                out.append(Outcome(name, f"China's share of {'+'.join(have)} refined", "fraction", "share",
                                   "refined_output", "CN", None, have))
    for v, what in (("finance_committed", "committed"), ("finance_spent", "spent"), ("finance_stranded", "stranded")):
        # the money, every lender's, at the end: zero in a run without lenders (a twin), so the effect is the money
        out.append(Outcome(v, f"financing {what}, all lenders, at the end", "M USD", "last", v, None, None))
    return out


def run_outcomes(df: pd.DataFrame) -> dict[str, float]:
    """Every outcome of :func:`outcome_catalogue` for one run's table (4-week means; NaN if too short)."""
    res: dict[str, float] = {}
    steps = np.sort(df["step"].unique())
    for o in outcome_catalogue(df):
        if o.stat == "share":
            v = region_share(df, o.variable, o.region, o.products)
        else:
            s = _weekly(df, o, steps)
            v = rolling_mean(s).max() if o.stat == "peak" else (s.iloc[-1] if o.stat == "last" else s.mean())
        res[o.name] = float(v) if np.isfinite(v) else float("nan")
    return res


def outcomes_by_seed(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Outcomes of several runs: one row per seed (index ``seed``), one column per outcome."""
    rows = {int(seed): run_outcomes(t) for seed, t in tables.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("seed").sort_index()


def bootstrap_ci(diffs: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (one value per seed): the seeds are resampled
    with replacement ``n_boot`` times from ``rng``. A constant difference gives a zero-width interval."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), float("nan")
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def seeds_needed(sd: float, half_width: float, level: float = LEVEL) -> int:
    """Seeds for a ``level`` interval of the mean paired difference of half-width ``half_width``, from the
    difference's standard deviation over seeds ``sd``: n = ceil((z * sd / h)^2), z the normal quantile
    (z = 1.96 at 95 %), at least 2 (a spread needs two seeds). None of the estimate is known if ``h`` <= 0."""
    from statistics import NormalDist

    if not (half_width > 0) or not np.isfinite(sd):
        return -1
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return max(2, math.ceil((z * sd / half_width) ** 2 - 1e-9))


def effect_table(policy: pd.DataFrame, twin: pd.DataFrame, n_boot: int = N_BOOT, level: float = LEVEL,
                 boot_seed: int = BOOT_SEED, precision: float = 0.01,
                 half_width: dict[str, float] | None = None) -> pd.DataFrame:
    """Paired effects (policy - twin) from per-seed outcome tables (:func:`outcomes_by_seed`) on the seeds
    both have. Columns: ``policy`` and ``twin`` (means over seeds), ``effect`` (mean paired difference),
    ``ci_low``/``ci_high`` (percentile bootstrap, ``level``), ``sd`` (of the differences), ``n_seeds``,
    ``target_half_width`` (``half_width[outcome]``, else ``precision`` x |twin|) and ``seeds_needed`` for it
    (-1 where the target is zero). The bootstrap draws from ``numpy.random.default_rng(boot_seed)``."""
    from model.params import ConfigError

    common = policy.index.intersection(twin.index)
    if len(common) == 0:
        raise ConfigError("no common seeds: paired effects need the policy and its twin run on the same seeds")
    rng = np.random.default_rng(boot_seed)
    rows = []
    for name in [c for c in policy.columns if c in twin.columns]:
        d = (policy.loc[common, name] - twin.loc[common, name]).to_numpy(dtype=float)
        lo, hi = bootstrap_ci(d, rng, n_boot, level)
        sd = float(np.std(d[np.isfinite(d)], ddof=1)) if np.isfinite(d).sum() > 1 else float("nan")
        base = float(twin.loc[common, name].mean())
        h = (half_width or {}).get(name, precision * abs(base))
        rows.append({"outcome": name, "policy": float(policy.loc[common, name].mean()), "twin": base,
                     "effect": float(np.nanmean(d)) if np.isfinite(d).any() else float("nan"),
                     "ci_low": lo, "ci_high": hi, "sd": sd, "n_seeds": int(np.isfinite(d).sum()),
                     "target_half_width": h, "seeds_needed": seeds_needed(sd if np.isfinite(sd) else 0.0, h, level)})
    return pd.DataFrame(rows).set_index("outcome")


def _runs(scenario: Scenario, seeds: list[int], weeks: int, overrides: dict | None = None) -> dict[int, pd.DataFrame]:
    return {s: run_one(scenario, s, weeks, overrides) for s in seeds}


def twin_of(scenario: str | Path | Scenario, twin: str | Path | Scenario | None = None,
            without_entry: str | None = None) -> tuple[Scenario, Scenario]:
    """(policy scenario, its twin): ``twin`` as given (a baseline), or the scenario with the timeline entry
    ``without_entry`` (``Stockpile[US]``, ``ExportControl[CN#2]``) removed, or with ``"policies"``: every
    policy removed (its no-policy twin; events stay). Exactly one of the two."""
    from experiments.levers import POLICIES, without, without_policies
    from model.params import ConfigError

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if (twin is None) == (without_entry is None):
        raise ConfigError("give the twin: a second scenario (a baseline) or --without ENTRY (the scenario with "
                          "that policy removed, e.g. --without 'Stockpile[US]'), not both")
    if without_entry == POLICIES:
        return sc, without_policies(sc)
    if without_entry is not None:
        return sc, without(sc, without_entry)
    return sc, twin if isinstance(twin, Scenario) else load_scenario(twin)


def paired_effects(scenario: str | Path | Scenario, twin: str | Path | Scenario | None = None, *,
                   without: str | None = None, seeds: Iterable[int] = range(1, 11), weeks: int | None = None,
                   n_boot: int = N_BOOT, level: float = LEVEL, boot_seed: int = BOOT_SEED,
                   precision: float = 0.01, half_width: dict[str, float] | None = None,
                   out: str | Path | None = None) -> pd.DataFrame:
    """Effects of a policy scenario against its no-policy twin over common seeds, with bootstrap intervals.

    ``twin`` is a second scenario (e.g. ``"baseline"``) or ``without="Stockpile[US]"`` removes that entry
    from ``scenario``'s timeline. Both run every seed in ``seeds`` for ``weeks`` (default: the shorter
    horizon). Returns :func:`effect_table` with ``label`` and ``unit`` columns; ``attrs`` records the
    scenarios, seeds, weeks, level and bootstrap seed. With ``out``, also writes :func:`write_effects`.
    """
    sc, tw = twin_of(scenario, twin, without)
    seeds = [int(s) for s in seeds]
    weeks = weeks or min(sc.weeks, tw.weeks)
    a, b = _runs(sc, seeds, weeks), _runs(tw, seeds, weeks)
    if out is not None:
        write_effects(out, a, b, sc, tw, weeks, precision)
    return _effects_from_runs(a, b, sc.name, tw.name, weeks, n_boot, level, boot_seed, precision, half_width)


def write_effects(out: str | Path, policy: dict[int, pd.DataFrame], twin: dict[int, pd.DataFrame],
                  policy_sc: Scenario, twin_sc: Scenario, weeks: int, precision: float = 0.01) -> list[Path]:
    """``effects.csv`` (the paired-effects table) and ``paired_price`` (figure: policy minus twin, 4-week
    mean prices, with the policy scenario's events marked) in ``out``."""
    from experiments.figures import paired_difference, save
    from experiments.paths import ensure_dir
    from experiments.run import atomic_write_bytes

    out = ensure_dir(Path(out))
    table = _effects_from_runs(policy, twin, policy_sc.name, twin_sc.name, weeks, precision=precision)
    atomic_write_bytes(out / "effects.csv", table.reset_index().to_csv(index=False).encode())
    paths = paired_paths(policy, twin, "price")
    n = int(paths["seed"].nunique()) if len(paths) else 0
    twin_events = set(timeline_events(twin_sc))
    events = [e for e in timeline_events(policy_sc) if e not in twin_events]  # what the twin lacks
    fig = paired_difference(paths, "price", events=events,
                            title=f"{policy_sc.name} minus {twin_sc.name}: oxide price, 4-week means, median "
                                  f"and p10–p90 over {n} paired seeds")
    return [out / "effects.csv", *save(fig, out / "paired_price")]


def _effects_from_runs(a: dict[int, pd.DataFrame], b: dict[int, pd.DataFrame], policy: str, twin: str, weeks: int,
                       n_boot: int = N_BOOT, level: float = LEVEL, boot_seed: int = BOOT_SEED,
                       precision: float = 0.01, half_width: dict[str, float] | None = None) -> pd.DataFrame:
    seeds = sorted(set(a) & set(b))
    table = effect_table(outcomes_by_seed(a), outcomes_by_seed(b), n_boot, level, boot_seed, precision, half_width)
    meta = {o.name: o for o in outcome_catalogue(next(iter(a.values())))}
    table.insert(0, "unit", [meta[n].unit if n in meta else "" for n in table.index])
    table.insert(0, "label", [meta[n].label if n in meta else n for n in table.index])
    table.attrs.update(policy=policy, twin=twin, seeds=seeds, weeks=weeks, level=level, boot_seed=boot_seed,
                       n_boot=n_boot)
    return table


def format_effects(table: pd.DataFrame, precision: float = 0.01) -> str:
    """The text ``ree compare`` prints for :func:`paired_effects`."""
    at = table.attrs
    pct = f"{at.get('level', LEVEL):.0%}"
    seeds = at.get("seeds", [])
    lines = [f"{at.get('policy', 'policy')} minus {at.get('twin', 'twin')}: paired differences over seeds "
             f"{seeds[0]}..{seeds[-1]} ({len(seeds)} seeds), {at.get('weeks')} weeks; {pct} percentile-bootstrap "
             f"intervals; prices are 4-week means",
             f"seeds needed: for a {pct} interval of half-width {precision:.0%} of the twin's value"]
    width = max(len(f"{r['label']} ({r['unit']})") for _, r in table.iterrows())
    lines.append(f"{'':{width}}  {'policy':>11}  {'twin':>11}  {'difference':>11}  {pct + ' interval':>25}  "
                 f"{'seeds needed':>12}")
    zero = [r["label"] for _, r in table.iterrows() if _zero_in_both(r)]
    for _, r in table.iterrows():
        if _zero_in_both(r):
            continue
        need = "" if r["seeds_needed"] < 0 else f"{r['seeds_needed']:,}"
        ci = f"[{_short(r['ci_low'])}, {_short(r['ci_high'])}]"
        lines.append(f"{r['label'] + ' (' + r['unit'] + ')':{width}}  {_short(r['policy']):>11}  "
                     f"{_short(r['twin']):>11}  {_short(r['effect'], sign=True):>11}  {ci:>25}  {need:>12}".rstrip())
    if zero:
        lines.append(f"zero in both on every seed (not listed above): {_zero_summary(zero)}")
    return "\n".join(lines)


def _zero_in_both(r: pd.Series) -> bool:
    """An outcome zero in the policy's runs and the twin's on every seed (a shortage no one had, money no one
    lent): ``policy`` and ``twin`` are means of non-negative values, so both zero means zero on every seed."""
    return r["policy"] == 0.0 and r["twin"] == 0.0 and r["ci_low"] == 0.0 and r["ci_high"] == 0.0


def _zero_summary(labels: list[str]) -> str:
    """``NdPr, Dy shortage, mean and peak 4-week mean; financing stranded, ...``: the labels grouped by what
    follows the product."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        head, _, tail = label.partition(" ")
        key, prod = (tail, head) if tail.startswith("shortage") else (label, "")
        groups.setdefault(key, []).append(prod)
    by_measure: dict[str, list[str]] = {}
    for key, prods in groups.items():  # "shortage, mean" and "shortage, peak ..." with the same products merge
        what, _, stat = key.partition(", ")
        by_measure.setdefault((", ".join(p for p in prods if p) + " " + what).strip(), []).append(stat)
    return "; ".join(f"{k}, {' and '.join(v)}" if v[0] else k for k, v in by_measure.items())


def _short(x: float, sign: bool = False) -> str:
    if not np.isfinite(x):
        return "n/a"
    s = f"{x:+,.3f}" if abs(x) < 10 else f"{x:+,.1f}"
    return s if sign else s.lstrip("+")


# ===================================================================================== effects along a lever
def level_order(values: Iterable) -> list:
    """Levels in numeric order (0, 30, 60, 120, not 0, 120, 30, 60); booleans false first; names with
    numbers in them by those numbers (``sp30`` before ``sp120``)."""
    return sorted(dict.fromkeys(values), key=natural_key)


def natural_key(value) -> tuple:
    """Sort key that orders numbers by value and names by their text and embedded numbers."""
    import re

    if isinstance(value, bool | np.bool_):
        return (0, float(value), ())
    if isinstance(value, int | float | np.integer | np.floating):
        return (0, float(value), ())
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return (1, 0.0, tuple((0, float(p), "") if i % 2 else (1, 0.0, p.lower()) for i, p in enumerate(parts) if p))


def import_outcomes(df: pd.DataFrame) -> list[str]:
    """The outcomes a supply-security question asks about first, for every product: the peak 4-week-mean
    price in each importing market region (ex-China in the 2024 world) and the mean shortage."""
    from experiments.labels import import_pairs

    importers = [imp for imp, _ in import_pairs(df)] or market_regions(df)
    return [*(f"peak_price_{r}_{p}" for p in products(df) for r in importers),
            *(f"mean_shortage_{p}" for p in products(df))]


def lever_effects(df: pd.DataFrame, lever: str, reference=None, n_boot: int = N_BOOT, level: float = LEVEL,
                  boot_seed: int = BOOT_SEED) -> pd.DataFrame:
    """Outcomes along one varied parameter of a sweep (a lever such as ``policy.Stockpile[US].target_days``,
    or any other column :func:`experiments.sweep.load_sweep` joins), with intervals.

    For each level (in numeric order) and outcome: ``mean`` over the runs at that level with a percentile
    bootstrap interval over seeds (``ci_low``/``ci_high``), and the paired ``effect`` against ``reference``
    (default: the first level; e.g. 0 days, or ``False`` for ``.enabled``) over the seeds both have, with
    its interval (``effect_low``/``effect_high``). Runs are paired on the seed and every other varied
    parameter, so each pair differs only in the lever. One tidy row per level x outcome."""
    from model.params import ConfigError

    if lever not in df.columns:
        varied = [c for c in df.columns if c not in ("run_id", "scenario", "seed", "step", "date", "variable",
                                                     "region", "product", "value", "weeks")]
        raise ConfigError(f"{lever!r}: not a varied parameter of this sweep; varied: {', '.join(varied) or '(none)'}")
    others = [c for c in df.columns if c not in ("run_id", "scenario", "step", "date", "variable", "region",
                                                 "product", "value", "weeks", lever)]
    runs = df.groupby("run_id", sort=False)
    rows = []
    for run_id, t in runs:
        first = t.iloc[0]
        rows.append({"run_id": run_id, "level": first[lever], **{c: first[c] for c in others}, **run_outcomes(t)})
    wide = pd.DataFrame(rows)
    names = [o.name for o in outcome_catalogue(df)]
    meta = {o.name: o for o in outcome_catalogue(df)}
    levels = level_order(wide["level"])
    ref = levels[0] if reference is None else reference
    if ref not in levels:
        raise ConfigError(f"reference {ref!r}: not a level of {lever}; levels: {', '.join(map(str, levels))}")
    keyed = wide.set_index(others)
    base = keyed[keyed["level"] == ref]
    rng = np.random.default_rng(boot_seed)
    out = []
    for lv in levels:
        at = keyed[keyed["level"] == lv]
        common = at.index.intersection(base.index)
        for name in names:
            x = at[name].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(x, rng, n_boot, level)
            d = (at.loc[common, name] - base.loc[common, name]).to_numpy(dtype=float)
            elo, ehi = bootstrap_ci(d, rng, n_boot, level)
            out.append({"level": lv, "outcome": name, "label": meta[name].label, "unit": meta[name].unit,
                        "mean": float(np.nanmean(x)) if np.isfinite(x).any() else float("nan"),
                        "ci_low": lo, "ci_high": hi, "n_runs": int(np.isfinite(x).sum()),
                        "effect": float(np.nanmean(d)) if np.isfinite(d).any() else float("nan"),
                        "effect_low": elo, "effect_high": ehi, "n_pairs": int(np.isfinite(d).sum())})
    table = pd.DataFrame(out)
    table.attrs.update(lever=lever, reference=ref, level=level, boot_seed=boot_seed, n_boot=n_boot)
    return table


def paired_paths(policy: dict[int, pd.DataFrame], twin: dict[int, pd.DataFrame], variable: str = "price",
                 window: int = WINDOW_WEEKS) -> pd.DataFrame:
    """Week-by-week paired differences (policy - twin) of ``variable``'s 4-week means, per seed, region and
    product: tidy rows ``seed, step, date, region, product, value`` for :func:`experiments.figures.paired_difference`."""
    parts = []
    for seed in sorted(set(policy) & set(twin)):
        a, b = (x[x["variable"] == variable] for x in (policy[seed], twin[seed]))
        keys = ["step", "date", "region", "product"]
        m = a[[*keys, "value"]].merge(b[[*keys, "value"]], on=keys, suffixes=("_p", "_t"))
        m = m.sort_values([*keys[2:], "step"])
        for col in ("value_p", "value_t"):
            m[col] = m.groupby(["region", "product"])[col].transform(lambda s: rolling_mean(s, window))
        m["value"] = m["value_p"] - m["value_t"]
        m["seed"] = seed
        parts.append(m[["seed", *keys, "value"]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["seed", "step", "date", "region", "product", "value"])


def timeline_events(scenario: Scenario | dict) -> list[tuple[dt.date, str]]:
    """Start and end dates of a scenario's timeline entries, for markers on time axes: ``(date, text)``."""
    timeline = scenario.timeline if isinstance(scenario, Scenario) else scenario.get("timeline", [])
    out = []
    for d in timeline:
        if not isinstance(d, dict) or "start" not in d:
            continue
        who = f"{d.get('type', '?')}{f' {d['actor']}' if d.get('actor') else ''}"
        for k, verb in (("start", "starts"), ("end", "ends")):
            when = d.get(k)
            if isinstance(when, str):
                try:
                    when = dt.date.fromisoformat(when)
                except ValueError:
                    continue
            if isinstance(when, dt.date):
                out.append((when, f"{who} {verb}"))
    return sorted(out)
