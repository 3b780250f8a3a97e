"""Seeded regression baseline: golden summaries of every shipped scenario, checked by a test.

For every shipped scenario (:func:`model.scenario.list_scenarios`) and each seed in :data:`SEEDS`, the
scenario is run over its full horizon (:func:`experiments.run.run_one`) and every recorded series
(``variable, region, product`` of the tidy table, none picked by hand, so a new output, product or region is
covered as soon as the files are regenerated) is reduced to four numbers:

- ``n``: how many weeks it was recorded,
- ``mean``: its mean over the run,
- ``last4``: the mean of its last four recorded weeks,
- ``max4``: the largest 4-week mean (the mean of its values when recorded for fewer than four weeks),

plus the table's row and step counts. Floats are rounded to 9 significant digits, keys sorted, one series a
line: ``tests/golden/<scenario>.json`` reads well in a diff. The files hold no date, commit or timing, so
regenerating them without a model change changes nothing.

``tests/test_golden.py`` compares the current model with these files (relative tolerance :data:`RTOL`,
absolute :data:`ATOL` near zero). After an intended change of the model's behaviour, regenerate them and
commit the diff with the change::

    make golden                                             # = python -m experiments.golden --update
    python -m experiments.golden --update --scenario NAME   # one scenario
    python -m experiments.golden --check                    # what differs, without writing (exit 1 if any)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
SEEDS: tuple[int, ...] = (1, 2)
RTOL = 1e-6  # relative tolerance of every statistic
ATOL = 1e-9  # absolute tolerance, for values near zero
DIGITS = 9  # significant digits kept in the files
WINDOW = 4  # weeks of the last and largest means
COMMAND = "make golden"
MODULE_COMMAND = "python -m experiments.golden --update"
KEY_COLUMNS = ["variable", "region", "product"]


def regenerate_hint(scenario: str | None = None) -> str:
    """The command that rewrites the golden files (of one scenario, if given)."""
    one = f"; this scenario only: {MODULE_COMMAND} --scenario {scenario}" if scenario else ""
    return (f"if the change is intended (or the scenario new), regenerate with `{COMMAND}` (= {MODULE_COMMAND})"
            f"{one}, review `git diff tests/golden` and commit it with the change")


# ================================================================================================ summaries
def _round(x: float) -> float:
    """``x`` to :data:`DIGITS` significant digits (``-0.0`` becomes ``0.0``)."""
    x = float(x)
    if not math.isfinite(x):
        return x
    return float(f"{x:.{DIGITS}g}") + 0.0


def series_key(variable: str, region: str = "", product: str = "") -> str:
    """``variable/region/product`` with empty trailing parts left out: ``price/CN/Dy``, ``exports/JP``,
    ``china_refined_share//Dy``, ``myanmar_ore_to_china``."""
    return "/".join([variable, region, product]).rstrip("/")


def _stats(values: np.ndarray) -> dict[str, float | int]:
    n = len(values)
    if n >= WINDOW:
        means = np.convolve(values, np.full(WINDOW, 1.0 / WINDOW), mode="valid")
        last4, max4 = float(means[-1]), float(means.max())
    else:
        last4 = max4 = float(values.mean())
    return {"last4": _round(last4), "max4": _round(max4), "mean": _round(float(values.mean())), "n": n}


def summarise(df: pd.DataFrame) -> dict[str, Any]:
    """The golden summary of one run's tidy table (only ``step, variable, region, product, value`` are
    read, so a table loaded from Parquet, with other dtypes or extra columns, gives the same summary)."""
    d = pd.DataFrame({
        "step": df["step"].to_numpy(dtype=np.int64),
        **{c: df[c].astype(str).to_numpy(dtype=object) for c in KEY_COLUMNS},
        "value": df["value"].to_numpy(dtype=float),
    })
    d = d.sort_values([*KEY_COLUMNS, "step"], kind="stable")
    series: dict[str, dict] = {}
    for (variable, region, product), g in d.groupby(KEY_COLUMNS, sort=True):
        series[series_key(variable, region, product)] = _stats(g["value"].to_numpy())
    return {"rows": len(df), "series": series, "steps": int(d["step"].nunique())}


def _summarise_run(job: tuple[str, int]) -> tuple[str, int, dict[str, Any]]:
    from experiments.run import run_one

    scenario, seed = job
    return scenario, seed, summarise(run_one(scenario, seed))


def compute(scenarios: Iterable[str], seeds: Iterable[int] = SEEDS, workers: int = 2) -> dict[str, dict[int, dict]]:
    """``{scenario: {seed: summary}}``, each run over the scenario's full horizon, on ``workers`` processes."""
    jobs = [(sc, s) for sc in scenarios for s in seeds]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as ex:
            done = list(ex.map(_summarise_run, jobs))
    else:
        done = [_summarise_run(j) for j in jobs]
    out: dict[str, dict[int, dict]] = {}
    for sc, seed, summary in done:
        out.setdefault(sc, {})[seed] = summary
    return out


# ================================================================================================ files
def golden_path(scenario: str, folder: Path = GOLDEN_DIR) -> Path:
    return Path(folder) / f"{scenario}.json"


def _show(path: Path) -> str:
    """A path relative to the working directory when it is under it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def document(scenario: str, summaries: Mapping[int, dict]) -> dict[str, Any]:
    """The content of one golden file: a header (not compared) and the seeds' summaries."""
    return {
        "about": {
            "what": f"golden summary of the shipped scenario {scenario!r}, one entry per seed; "
                    "checked by tests/test_golden.py",
            "statistics": f"per series (variable/region/product): n weeks recorded, mean over the run, "
                          f"last{WINDOW} = mean of the last {WINDOW} weeks, max{WINDOW} = largest {WINDOW}-week "
                          f"mean; {DIGITS} significant digits",
            "tolerance": f"relative {RTOL:g}, absolute {ATOL:g}",
            "regenerate": f"{COMMAND} (all scenarios) or {MODULE_COMMAND} --scenario {scenario}",
        },
        "scenario": scenario,
        "seeds": {str(s): summaries[s] for s in sorted(summaries)},
    }


def _dumps(obj: Any, indent: int = 0) -> str:
    """JSON with a dict of numbers on one line (one series a line), everything else indented."""
    if isinstance(obj, dict):
        if obj and all(isinstance(v, int | float) and not isinstance(v, bool) for v in obj.values()):
            return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items()) + "}"
        if not obj:
            return "{}"
        pad = "  " * (indent + 1)
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    return json.dumps(obj)


def write(scenario: str, summaries: Mapping[int, dict], folder: Path = GOLDEN_DIR) -> bool:
    """Write one golden file; return whether its content changed."""
    path = golden_path(scenario, folder)
    text = _dumps(document(scenario, summaries)) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    from experiments.paths import writing

    with writing(path):  # a read-only checkout: "cannot write <path>: <reason>", exit 1
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return True


def load(scenario: str, folder: Path = GOLDEN_DIR) -> dict[str, Any] | None:
    path = golden_path(scenario, folder)
    return json.loads(path.read_text()) if path.exists() else None


# ================================================================================================ comparison
def close(old: float, new: float, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """``|old - new| <= max(rtol * max(|old|, |new|), atol)``; two NaNs are equal."""
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return abs(old - new) <= max(rtol * max(abs(old), abs(new)), atol)


def _fmt(old: float, new: float) -> str:
    rel = "" if old == 0 else f" ({(new - old) / abs(old):+.2e} relative)"
    return f"golden {old!r}, now {new!r}{rel}"


def diff_seed(scenario: str, seed: int, old: Mapping[str, Any], new: Mapping[str, Any],
              rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    """Every difference between two summaries of one (scenario, seed), a line each."""
    tag = f"{scenario} seed {seed}"
    lines = [f"{tag} {k}: golden {old.get(k)}, now {new.get(k)}" for k in ("rows", "steps")
             if old.get(k) != new.get(k)]
    a, b = old.get("series", {}), new.get("series", {})
    lines += [f"{tag} {k}: in the golden file, no longer recorded" for k in sorted(set(a) - set(b))]
    lines += [f"{tag} {k}: recorded now, not in the golden file" for k in sorted(set(b) - set(a))]
    for k in sorted(set(a) & set(b)):
        for stat in sorted(set(a[k]) | set(b[k])):
            x, y = a[k].get(stat), b[k].get(stat)
            if x is None or y is None:
                lines.append(f"{tag} {k} {stat}: golden {x}, now {y}")
            elif not close(x, y, rtol, atol):
                lines.append(f"{tag} {k} {stat}: {_fmt(x, y)}")
    return lines


def compare(scenario: str, summaries: Mapping[int, dict], folder: Path = GOLDEN_DIR,
            rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    """Differences between fresh summaries ``{seed: summary}`` of a scenario and its golden file (only the
    given seeds are compared); a missing file or seed is a difference naming the command that makes it."""
    doc = load(scenario, folder)
    if doc is None:
        return [f"{scenario}: no golden file {_show(golden_path(scenario, folder))}; {regenerate_hint(scenario)}"]
    lines = []
    for seed in sorted(summaries):
        old = doc.get("seeds", {}).get(str(seed))
        if old is None:
            lines.append(f"{scenario} seed {seed}: not in {_show(golden_path(scenario, folder))}; "
                         f"{regenerate_hint(scenario)}")
        else:
            lines += diff_seed(scenario, seed, old, summaries[seed], rtol, atol)
    return lines


def audit(folder: Path = GOLDEN_DIR, scenarios: Iterable[str] | None = None,
          seeds: Iterable[int] = SEEDS) -> list[str]:
    """Problems of the golden folder as a whole, without running anything: a shipped scenario without a
    file, a seed missing from a file, a file for a scenario that is no longer shipped."""
    from model.scenario import list_scenarios

    shipped = list(list_scenarios() if scenarios is None else scenarios)
    present = {p.stem for p in Path(folder).glob("*.json")}
    lines = [f"{sc}: shipped scenario without a golden file {_show(golden_path(sc, folder))}; {regenerate_hint(sc)}"
             for sc in shipped if sc not in present]
    for sc in shipped:
        if sc in present:
            have = set((load(sc, folder) or {}).get("seeds", {}))
            missing = [s for s in seeds if str(s) not in have]
            if missing:
                lines.append(f"{sc}: seeds {missing} missing from {_show(golden_path(sc, folder))}; {regenerate_hint(sc)}")
    lines += [f"{sc}: golden file {_show(golden_path(sc, folder))} for a scenario that is not shipped; "
              f"delete it (`{COMMAND}` does)" for sc in sorted(present - set(shipped))]
    return lines


# ================================================================================================ commands
def update(scenarios: Iterable[str] | None = None, folder: Path = GOLDEN_DIR, workers: int = 2,
           echo=print) -> int:
    """Rewrite the golden files of ``scenarios`` (default: every shipped one, and delete files of scenarios
    no longer shipped); report per file what changed. Returns 0."""
    from model.scenario import list_scenarios

    full = scenarios is None
    names = list(list_scenarios() if full else scenarios)
    t0 = time.perf_counter()
    fresh = compute(names, SEEDS, workers)
    for sc in names:
        before = compare(sc, fresh[sc], folder) if golden_path(sc, folder).exists() else None
        changed = write(sc, fresh[sc], folder)
        if before is None:
            state = "new"
        elif before:
            state = f"updated: {len(before)} difference(s) beyond tolerance"
        else:
            state = "rewritten (no statistic beyond tolerance)" if changed else "unchanged"
        echo(f"{_show(golden_path(sc, folder))}: {state}")
    if full:
        for p in sorted(Path(folder).glob("*.json")):
            if p.stem not in names:
                p.unlink()
                echo(f"{_show(p)}: deleted (no such shipped scenario)")
    echo(f"{len(names)} scenario(s) x seeds {list(SEEDS)} in {time.perf_counter() - t0:.1f} s; "
         "review `git diff tests/golden` and commit it with the change that caused it")
    return 0


def check(scenarios: Iterable[str] | None = None, folder: Path = GOLDEN_DIR, workers: int = 2,
          echo=print) -> int:
    """Run the scenarios and print every difference from the golden files. Returns 1 if any, else 0."""
    from model.scenario import list_scenarios

    full = scenarios is None
    names = list(list_scenarios() if full else scenarios)
    t0 = time.perf_counter()
    fresh = compute(names, SEEDS, workers)
    lines = audit(folder) if full else []  # files missing, seeds missing, files of no shipped scenario
    for sc in names:
        if not (full and load(sc, folder) is None):  # the audit already named a missing file
            lines += compare(sc, fresh[sc], folder)
    for line in lines:
        echo(line)
    took = f"{len(names)} scenario(s) x seeds {list(SEEDS)} in {time.perf_counter() - t0:.1f} s"
    if lines:
        echo(f"{len(lines)} difference(s) from {_show(folder)} ({took}); {regenerate_hint()}")
        return 1
    echo(f"ok: {took} match {_show(folder)} (relative tolerance {RTOL:g}, absolute {ATOL:g})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.golden", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--update", action="store_true", help="rewrite the golden files from the current model")
    mode.add_argument("--check", action="store_true", help="compare with the golden files (the default)")
    parser.add_argument("--scenario", action="append", metavar="NAME",
                        help="only this shipped scenario (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--dir", type=Path, default=GOLDEN_DIR, help=f"golden folder (default {GOLDEN_DIR})")
    args = parser.parse_args(argv)
    from experiments.sweep import check_workers
    from model.params import ConfigError

    try:
        check_workers(args.workers)
    except ConfigError as exc:
        parser.error(str(exc))  # exit 2 with the usage line, like the other bad arguments
    if args.scenario:
        from model.scenario import list_scenarios

        unknown = [s for s in args.scenario if s not in list_scenarios()]
        if unknown:
            parser.error(f"--scenario {unknown[0]!r}: not a shipped scenario; choose from {', '.join(list_scenarios())}")
    run = update if args.update else check
    return run(args.scenario, args.dir, args.workers)


if __name__ == "__main__":
    sys.exit(main())
