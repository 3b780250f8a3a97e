"""The ``ree`` command line.

Every command turns a bad scenario or world file into a message that names the field and what is
allowed, with exit code 2 and no traceback; a bad option value likewise names the option as typed, the
value and what is allowed (``--weeks 0: must be between 1 and 5200 weeks``), before anything runs. A
failure to write an output (no permission, a path that is a file, a full disk) is reported as
``error: cannot write <path>: <reason>`` with exit code 1; every command that writes checks its output
folder before it computes anything.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from pathlib import Path

import typer

from experiments.paths import OutputError
from model.params import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Agent-based model of the geopolitical rare-earth market.")
log = logging.getLogger("ree")


def friendly(fn):
    """Report configuration errors as a clear message and exit 2, and write failures (OutputError,
    raised by the writers in experiments/) as ``error: cannot write <path>: <reason>`` and exit 1; no
    traceback. Other exceptions, including a bare OSError from code that is not a writer, still raise:
    they are bugs to see, not conditions to hide."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        except OutputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper


# --------------------------------------------------------------------------------------- option values
# Command-line values obey the scenario file's schema (model.scenario.Scenario): the bounds of its
# ``weeks`` field and of its ``seeds`` items, and its validators, are read from there, so a bound added to
# the file is a bound here too. What the schema leaves open is limited here, in this one place:
SEED_MAX = 2**63 - 1  # seeds are stored as 64-bit integers (run tables, design.csv, Parquet metadata)
MAX_SEED_COUNT = 1000  # compare/validate --seeds N: N full runs of every scenario (~2 s each), hours at most


def _schema_limits(field: str, lo: int, hi: int) -> tuple[int, int]:
    """``lo``/``hi`` narrowed by the ge/gt/le/lt constraints of Scenario.<field> (or of its list items)."""
    import typing

    from model.scenario import Scenario

    info = Scenario.model_fields[field]
    metadata = list(info.metadata)
    for arg in typing.get_args(info.annotation):  # list[Annotated[int, Field(ge=0)]]
        for m in getattr(arg, "__metadata__", ()):
            metadata += getattr(m, "metadata", [m])
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            lo = max(lo, m.ge)
        if getattr(m, "gt", None) is not None:
            lo = max(lo, m.gt + 1)
        if getattr(m, "le", None) is not None:
            hi = min(hi, m.le)
        if getattr(m, "lt", None) is not None:
            hi = min(hi, m.lt - 1)
    return lo, hi


def _as_scenario_field(option: str, value: int, field: str, lo: int, hi: int, unit: str = "") -> None:
    """Check a command-line value as the scenario file's ``field`` would be checked (ConfigError)."""
    from pydantic import ValidationError

    from model.scenario import Scenario

    lo, hi = _schema_limits(field, lo, hi)
    if not lo <= value <= hi:
        raise ConfigError(f"{option} {value}: must be between {lo} and {hi}{unit}")
    try:
        Scenario.model_validate({"name": "command line", field: [value] if field == "seeds" else value})
    except ValidationError as exc:
        raise ConfigError(f"{option} {value}: {exc.errors()[0]['msg']}") from None


def check_weeks(weeks: int | None, option: str = "--weeks") -> None:
    """A horizon: the bounds of the scenario file's ``weeks``."""
    if weeks is not None:
        _as_scenario_field(option, weeks, "weeks", 1, 2**31, " weeks")


def check_seed(seed: int | None, option: str = "--seed") -> None:
    """A seed: what the scenario file's ``seeds`` accept, at most :data:`SEED_MAX`."""
    if seed is not None:
        _as_scenario_field(option, seed, "seeds", 0, SEED_MAX, " (seeds are non-negative 64-bit integers)")


def check_seed_count(n: int, option: str = "--seeds") -> None:
    """A number of seeds (the runs use seeds 1..n): 1 .. :data:`MAX_SEED_COUNT`."""
    if not 1 <= n <= MAX_SEED_COUNT:
        raise ConfigError(f"{option} {n}: must be between 1 and {MAX_SEED_COUNT} seeds (the runs use seeds 1..N)")


SEED_LIST_RULE = "write a range (1-30), a list (1,2,5) or both (1-3,7)"


def parse_seed_list(text: str, option: str = "--seeds") -> list[int]:
    """``1-30``, ``1,2,5`` or both (``1-3,7``) -> the seeds, in the order written (ConfigError naming the
    option for a malformed item, a range that runs backwards, a seed given twice, a seed out of bounds
    (:func:`check_seed`) or more than :data:`MAX_SEED_COUNT` seeds). A bare number is refused: ``ree
    compare`` and ``ree validate`` read ``--seeds N`` as seeds 1..N, so it would mean two things."""
    import re

    spans = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if not m:
            raise ConfigError(f"{option} {text}: {item.strip()!r} is not a seed or a range of seeds; {SEED_LIST_RULE}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"{option} {text}: the range {item.strip()} runs backwards; write {hi}-{lo}")
        for s in (lo, hi):
            check_seed(s, option)
        spans.append((lo, hi, m.group(2) is not None))
    if len(spans) == 1 and not spans[0][2]:
        n = spans[0][0]
        many = f"1-{n} for seeds 1 to {n}, or " if n > 1 else ""
        raise ConfigError(f"{option} {text}: one number is ambiguous here (ree compare and ree validate run "
                          f"seeds 1..N for --seeds N); write {many}--seed {n} for seed {n} alone")
    count = sum(hi - lo + 1 for lo, hi, _ in spans)
    if count > MAX_SEED_COUNT:
        raise ConfigError(f"{option} {text}: {count:,} seeds; at most {MAX_SEED_COUNT} in one command")
    seeds = [s for lo, hi, _ in spans for s in range(lo, hi + 1)]
    if len(set(seeds)) != len(seeds):
        twice = next(s for i, s in enumerate(seeds) if s in seeds[:i])
        raise ConfigError(f"{option} {text}: seed {twice} is given twice; give each seed once")
    return seeds


def seed_text(seeds: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3, 7`` (consecutive seeds as a range)."""
    parts: list[str] = []
    start = prev = seeds[0]
    for s in [*seeds[1:], None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ", ".join(parts)


def check_workers(workers: int | None, option: str = "--workers") -> None:
    if workers is not None:
        from experiments.sweep import check_workers as check

        check(workers, option)


@contextlib.contextmanager
def verbosity(verbose: bool):
    """``--verbose``: log INFO (this tool's and Dask's own, see :func:`experiments.sweep.dask_log_level`)
    for the command; without it warnings only, and Dask's errors only."""
    root = logging.getLogger()
    old = root.level
    if verbose:
        root.setLevel(min(old or logging.WARNING, logging.INFO))
    try:
        yield
    finally:
        root.setLevel(old)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be; the exit code is 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.code = 128 + signum


@contextlib.contextmanager
def stoppable():
    """SIGTERM (``kill PID``, a batch scheduler's time limit) and SIGHUP (a closed terminal) stop the block
    the way Ctrl-C does, so its ``finally`` clauses run: a sweep rewrites manifest.json and design.csv from
    the run files on disk instead of leaving them as they were when it started. (``kill -9`` runs nothing:
    then the next command that reads the folder, or runs the sweep again, takes the status from the files.)
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signal handlers: main thread only
        yield
        return

    def stop(signum, frame):
        raise Stopped(signum)

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def peak_4wk(x) -> float:
    """The largest 4-week mean of a weekly series (of the whole series when it is shorter)."""
    from experiments.compare import WINDOW_WEEKS, rolling_mean

    return float(rolling_mean(x, min(WINDOW_WEEKS, len(x))).max())


def _summary(df, scenario: str, seeds: list[int], seconds: float, world) -> str:
    """A few lines per run: every market region's prices (first week, last week and the peak 4-week mean,
    never a single week's extreme), China's refining share, shortages (products and regions are the run's
    world's). Over several seeds: the median over the runs of each figure."""
    import numpy as np

    from model.results import series

    runs = dict(tuple(df.groupby("seed", sort=False))) if len(seeds) > 1 else {seeds[0]: df}
    weeks = df["step"].max()
    if len(seeds) == 1:
        head = f"{scenario} (seed {seeds[0]}): {weeks} weeks"
    else:
        head = f"{scenario} (seeds {seed_text(seeds)}): {len(seeds)} runs of {weeks} weeks"
    lines = [f"{head}, {len(df):,} rows in {seconds:.1f} s" + ("; medians over the runs" if len(seeds) > 1 else "")]
    products = world.product_names
    width = max(len(r.name) for r in world.regions)
    for region in world.region_ids:
        parts = []
        for p in products:
            s = [series(d, "price", region, p) for d in runs.values()]
            if not s[0].empty:
                first, last, top = (np.median([f(x) for x in s]) for f in (lambda x: x.iloc[0],
                                                                           lambda x: x.iloc[-1], peak_4wk))
                parts.append(f"{p} {first:.0f}->{last:.0f} (4-wk peak {top:.0f})")
        lines.append(f"  {world.region(region).name:{width}s} USD/kg: " + ", ".join(parts))
    share = series(df, "china_refined_share")
    lines.append(f"  China share of refined output: median {share.median():.3f}")
    short = df[df["variable"] == "shortage"].groupby(["seed", "product"])["value"].sum().groupby("product").median()
    lines.append("  total shortage (t): " + ", ".join(f"{p} {short.get(p, 0.0):.0f}" for p in products))
    return "\n".join(lines)


def _run_and_save(scenario: str, seeds: list[int] | None, weeks: int | None, out: Path, workers: int = 1,
                  progress: bool = False) -> None:
    import pandas as pd

    from experiments.figures import price_chart
    from experiments.paths import ensure_dir, writing
    from experiments.run import atomic_write_json, atomic_write_parquet, provenance, run_seeds
    from model.scenario import load_scenario

    sc = load_scenario(scenario)
    ensure_dir(out)
    seeds = seeds or sc.seeds[:1]
    t0 = time.perf_counter()
    runs = run_seeds(sc, seeds, weeks, workers, progress)
    seconds = time.perf_counter() - t0
    df = runs[0].table if len(runs) == 1 else pd.concat([r.table for r in runs], ignore_index=True)
    atomic_write_parquet(df, out / "results.parquet")
    if len(runs) == 1:
        extra = {"wall_seconds": round(runs[0].seconds, 3), "agents": runs[0].agents, "events": runs[0].events}
    else:
        extra = {"wall_seconds": round(seconds, 3),
                 "runs": [{"seed": r.seed, "wall_seconds": round(r.seconds, 3), "agents": r.agents,
                           "events": r.events} for r in runs]}
    atomic_write_json(provenance(sc, seeds, runs[0].weeks, extra=extra), out / "provenance.json")
    with writing(out / "prices.png"):
        price_chart(df, out / "prices.png", title=f"{sc.name}, seed{'s' if len(seeds) > 1 else ''} {seed_text(seeds)}")
    typer.echo(_summary(df, sc.name, seeds, runs[0].seconds if len(runs) == 1 else seconds, sc.load_world()))
    typer.echo(f"  wrote {out}/results.parquet, provenance.json, prices.png")


@app.command()
@friendly
def run(scenario: str = typer.Argument(..., help="shipped scenario name or path to a scenario TOML"),
        seed: int = typer.Option(None, help="seed (default: the scenario's first seed)"),
        seeds: str = typer.Option(None, "--seeds", metavar="LIST",
                                  help="several seeds into one table: a range 1-30, a list 1,2,5 or both (1-3,7)"),
        weeks: int = typer.Option(None, help="horizon in weeks (default: the scenario's)"),
        out: Path = typer.Option(None, help="output folder (default: results/SCENARIO)"),
        workers: int = typer.Option(2, help="worker processes (with --seeds)"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar (with --seeds)")
        ) -> None:
    """Run one scenario and write results.parquet, provenance.json and prices.png; with --seeds, one run per
    seed, all in the one results.parquet (run_id and seed tell them apart) and the chart's median and band."""
    from experiments.paths import inside, label

    check_seed(seed)
    if seed is not None and seeds is not None:
        raise ConfigError(f"--seed {seed} and --seeds {seeds}: give one of them (--seeds {seed}-{seed} is seed {seed} alone)")
    seed_list = parse_seed_list(seeds) if seeds is not None else ([seed] if seed is not None else None)
    check_weeks(weeks)
    check_workers(workers)
    _run_and_save(scenario, seed_list, weeks, out or inside(Path("results"), label(Path(scenario).stem)), workers,
                  progress)


@app.command("run-all")
@friendly
def run_all(out: Path = typer.Option(Path("results"), help="output folder"),
            weeks: int = typer.Option(None, help="horizon in weeks (default: each scenario's)")) -> None:
    """Run every shipped scenario (first seed) into OUT/NAME/."""
    from experiments.paths import ensure_dir, inside
    from model.scenario import list_scenarios

    check_weeks(weeks)
    ensure_dir(out)
    for name in list_scenarios():
        _run_and_save(name, None, weeks, inside(out, name))


@app.command()
@friendly
def scenarios() -> None:
    """List the shipped scenarios, one line each."""
    from model.scenario import list_scenarios, load_scenario

    for name in list_scenarios():
        sc = load_scenario(name, check=False)
        typer.echo(f"{name:22s} {sc.start} +{sc.weeks:>3d} wk  {sc.description}")


@app.command()
@friendly
def check(path: str = typer.Argument(..., help="scenario name, scenario TOML or world TOML path")) -> None:
    """Validate a scenario (and its world), or a world file, without running it. Warns (on stderr, exit 0)
    when two policies of one type and actor are in force at once, saying which one acts, and notes entries
    that name what the world does not model (e.g. an element on a control list)."""
    from experiments.levers import notes, overlaps
    from model.scenario import check_file, load_scenario

    report = check_file(path)
    typer.echo(report)
    if not report.startswith("ok: world"):
        scenario = load_scenario(path, check=False)
        for w in overlaps(scenario):
            typer.echo(f"warning: {w}", err=True)
        for w in notes(scenario):
            typer.echo(f"note: {w}", err=True)


@app.command()
@friendly
def validate(seeds: int = typer.Option(20, help="number of seeds (1..N)"),
             out: Path = typer.Option(Path("results/validation"), help="output folder"),
             workers: int = typer.Option(2, help="worker processes"),
             world: str = typer.Option(None, help="run every target's scenario on this world file instead of "
                                       "its own (e.g. world_2024_magnets.toml, or an edited copy)"),
             progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
             posterior: Path = typer.Option(None, help="posterior.csv from ree calibrate: run every seed under "
                                            "--draws parameter sets drawn from it by weight"),
             draws: int = typer.Option(10, help="parameter sets drawn from --posterior (seeded: the same draws "
                                       "every time)")) -> None:
    """Run the calibration scenarios over N seeds; write a table (md, csv) and a figure."""
    from experiments.paths import ensure_dir
    from experiments.validate import (
        posterior_draws,
        resolve_world,
        run_validation,
        targets_on_world,
        to_markdown,
    )

    check_seed_count(seeds)
    check_workers(workers)
    targets = None
    if world is not None:
        world = resolve_world(world)
        targets, skipped = targets_on_world(world)
        for name, why in skipped:
            typer.echo(f"skipped: {name} does not run on {world}: {why}", err=True)
        if not targets:
            raise ConfigError(f"--world {world}: no target's scenario runs on it (see the lines above)")
    sets = posterior_draws(posterior, draws) if posterior is not None else None
    ensure_dir(out)
    table = run_validation(list(range(1, seeds + 1)), out, workers, world=world, targets=targets, progress=progress,
                           draws=sets)
    for name in table.loc[table["median"].isna(), "target"]:
        typer.echo(f"no data: {name} (its scenario's run on {world} does not report what it measures)", err=True)
    typer.echo(to_markdown(table.rename(columns={"pass": "pass_"})))
    gaps = int((~table["pass"] & (table["known_gap"] != "")).sum()) if "known_gap" in table.columns else 0
    known = f" ({gaps} of the misses known gaps, README Known limits)" if gaps else ""
    typer.echo(f"{int(table['pass'].sum())}/{len(table)} targets pass{known}; wrote {out}/validation.md, .csv, .png")


@app.command()
@friendly
def compare(a: str = typer.Argument(..., help="first scenario (with --without: the policy scenario)"),
            b: str = typer.Argument(None, help="second scenario (omit with --without)"),
            seeds: int = typer.Option(5, help="number of seeds (1..N), the same for both"),
            weeks: int = typer.Option(None, help="horizon in weeks (default: the shorter scenario's)"),
            without: str = typer.Option(None, "--without", help="compare A with A minus this timeline entry, "
                                        "e.g. 'Stockpile[US]' or 'ExportControl[CN#2]', or 'policies' (all "
                                        "of them: the default when no B is given)"),
            precision: float = typer.Option(0.01, help="target half-width of the intervals, as a fraction of "
                                            "the twin's value, for the seeds-needed column"),
            out: Path = typer.Option(None, help="also write effects.csv and the paired-difference figure here")
            ) -> None:
    """Key outputs of two scenarios side by side (medians over the same seeds), then the paired differences
    B minus A over those seeds with 95 % bootstrap intervals and the seeds needed for a given precision.
    With --without ENTRY: the paired effects of scenario A against A without that policy (its twin). With A
    alone: A against its no-policy twin (every policy removed, its events kept)."""
    from experiments.compare import compare_scenarios, format_effects, paired_effects
    from experiments.paths import ensure_dir

    check_seed_count(seeds)
    check_weeks(weeks)
    if not 0 < precision <= 10:
        raise ConfigError(f"--precision {precision}: must be a fraction above 0 (0.01 = 1 % of the twin's value)")
    if without is None and b is None:
        without = "policies"  # a policy scenario alone: against its no-policy twin
    if without is not None:
        if b is not None:
            raise ConfigError(f"--without {without}: compares {a} with itself minus that entry; give no second "
                              f"scenario ({b}), or drop --without to compare {a} with {b}")
        if out is not None:
            ensure_dir(out)
        table = paired_effects(a, without=without, seeds=range(1, seeds + 1), weeks=weeks, precision=precision,
                               out=out)
        typer.echo(format_effects(table, precision))
        if out is not None:
            typer.echo(f"wrote effects.csv, paired_price.pdf, .svg, .png in {out}")
        return
    if out is not None:
        ensure_dir(out)
    typer.echo(compare_scenarios(a, b, list(range(1, seeds + 1)), weeks, precision=precision, out=out))


@app.command()
@friendly
def golden(update: bool = typer.Option(False, "--update", help="rewrite the golden files (default: only check)"),
           scenario: list[str] = typer.Option(None, "--scenario", help="only this shipped scenario (repeatable)"),
           workers: int = typer.Option(2, help="worker processes")) -> None:
    """Check every shipped scenario (seeds 1-2) against tests/golden/, or rewrite it after an intended change.

    Exit code 1 if a check finds differences (each is printed: scenario, seed, series, statistic, values).
    """
    from experiments import golden as g
    from model.scenario import list_scenarios

    check_workers(workers)
    bad = [s for s in scenario or [] if s not in list_scenarios()]
    if bad:
        raise ConfigError(f"--scenario {bad[0]!r}: not a shipped scenario; choose from {', '.join(list_scenarios())}")
    code = (g.update if update else g.check)(scenario or None, workers=workers, echo=typer.echo)
    if code:
        raise typer.Exit(code=code)


_DEFAULT_SENSITIVITY_SPEC = Path(__file__).parent / "specs" / "sensitivity_behaviour.toml"


@app.command()
@friendly
def sweep(spec: Path = typer.Argument(..., help="sweep spec TOML (examples in experiments/specs/)"),
          workers: int = typer.Option(None, "--workers", "-w", help="local worker processes (default: all cores)"),
          scheduler: str = typer.Option(None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"),
          cluster: str = typer.Option(None, help="start a local Dask cluster of N processes: local:N"),
          out: Path = typer.Option(None, help="output folder (default: results/sweeps/NAME)"),
          retry_failed: bool = typer.Option(True, "--retry-failed/--keep-failed",
                                            help="rerun runs that failed last time (default) or leave them"),
          progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
          dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and what is done, run nothing"),
          max_runs: int = typer.Option(None, "--max-runs",
                                       help="refuse a design of more runs than this (default 100,000)"),
          posterior: Path = typer.Option(None, help="posterior.csv from ree calibrate: run every scenario, design "
                                         "point and seed under --draws parameter sets drawn from it by weight"),
          draws: int = typer.Option(None, help="parameter sets drawn from --posterior (default 10; seeded: the "
                                    "same sets every time, as ree validate --posterior)"),
          verbose: bool = typer.Option(False, "--verbose", help="log INFO, Dask's own logging included")
          ) -> None:
    """Run or resume a sweep: scenario(s) x grid/sampled parameters x seeds, one Parquet file per run.

    Running the same command again skips finished runs and retries failed ones. Exit code 1 if any run
    failed (each is recorded in OUT/failed/KEY.json with its traceback). The options and the design's
    size are checked first, also with --dry-run (which does not contact a --scheduler). With --posterior,
    the drawn parameters are columns of design.csv (with draw, the set's number) and part of each run's key.
    """
    from experiments.sweep import check_executor, check_max_runs, describe
    from experiments.sweep import sweep as run_sweep

    check_executor(workers, scheduler, cluster)
    check_max_runs(max_runs)
    if dry_run:
        typer.echo(describe(spec, out, max_runs, posterior, draws))
        return
    try:
        with verbosity(verbose), stoppable():
            summary = run_sweep(spec, out, workers, scheduler, cluster, progress=progress,
                                retry_failed=retry_failed, max_runs=max_runs, posterior=posterior, draws=draws)
    except KeyboardInterrupt as exc:
        typer.echo("interrupted: finished runs are saved; run the same command again to resume", err=True)
        raise typer.Exit(code=getattr(exc, "code", 130)) from None
    typer.echo(str(summary))
    if summary.failed:
        raise typer.Exit(code=1)


@app.command()
@friendly
def sensitivity(spec: Path = typer.Argument(_DEFAULT_SENSITIVITY_SPEC, help="sensitivity spec TOML"),
                method: str = typer.Option(None, help="morris, sobol or both (default: the spec's methods)"),
                workers: int = typer.Option(None, "--workers", "-w", help="local worker processes"),
                scheduler: str = typer.Option(None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"),
                cluster: str = typer.Option(None, help="start a local Dask cluster of N processes: local:N"),
                out: Path = typer.Option(None, help="output folder (default: results/sensitivity/NAME)"),
                progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
                max_runs: int = typer.Option(None, "--max-runs",
                                             help="refuse an analysis of more runs than this (default 100,000)"),
                verbose: bool = typer.Option(False, "--verbose", help="log INFO, Dask's own logging included")
                ) -> None:
    """Morris and/or Sobol indices (SALib) for the spec's outputs: CSV tables and a figure per method."""
    from experiments import sensitivity as sa
    from experiments.sweep import check_executor, check_max_runs

    if method is not None and method not in ("morris", "sobol", "both"):
        raise ConfigError(f"--method {method!r}: choose morris, sobol or both")
    check_executor(workers, scheduler, cluster)
    check_max_runs(max_runs)
    methods = None if method is None else (["morris", "sobol"] if method == "both" else [method])
    try:
        with verbosity(verbose), stoppable():
            res = sa.run(spec, out, methods, workers, scheduler, cluster, progress=progress, max_runs=max_runs)
    except KeyboardInterrupt as exc:
        typer.echo("interrupted: finished runs are saved; run the same command again to resume", err=True)
        raise typer.Exit(code=getattr(exc, "code", 130)) from None
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(str(res.runs).splitlines()[0])
    typer.echo(res.table())
    for c in res.checks:
        typer.echo(sa.format_check(c), err=True)
    typer.echo(f"wrote {res.out}/indices_*.csv, samples_*.csv, checks.json, checks.md, "
               + ", ".join(sorted({p.stem + ".{pdf,svg,png}" for p in res.figures})))


@app.command()
@friendly
def calibrate(spec: Path = typer.Argument(..., help="calibration spec TOML (example: "
                                          "experiments/specs/calibrate_demo.toml)"),
              out: Path = typer.Option(None, help="output folder (default: results/calibrate/NAME)"),
              workers: int = typer.Option(None, "--workers", "-w", help="local worker processes (default 2)"),
              scheduler: str = typer.Option(None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786"),
              cluster: str = typer.Option(None, help="start a local Dask cluster of N processes: local:N"),
              progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
              verbose: bool = typer.Option(False, "--verbose", help="log INFO, Dask's own logging included")
              ) -> None:
    """ABC-SMC of the spec's parameters against validation targets: posterior.csv, .md, pairs.png.

    Every evaluation is cached in OUT/evaluations.jsonl: the same command again resumes an interrupted
    calibration without redoing a run. The runs go to --workers local processes or, as for ree sweep, to a
    Dask cluster (--scheduler, --cluster); the same spec gives the same posterior on any of them."""
    from experiments import calibrate as cal
    from experiments.sweep import check_executor

    check_executor(workers, scheduler, cluster)
    s = cal.check_spec(cal.load_spec(spec))
    try:
        with verbosity(verbose), stoppable():
            res = cal.run(s, out, 2 if workers is None else workers, progress=progress, scheduler=scheduler,
                          cluster=cluster)
    except KeyboardInterrupt as exc:
        typer.echo("interrupted: finished evaluations are saved; run the same command again to resume", err=True)
        raise typer.Exit(code=getattr(exc, "code", 130)) from None
    typer.echo(f"{len(res.generations)} generations ({res.stopped}); {res.runs} evaluations run, "
               f"{res.cached} read from {cal.CACHE}")
    typer.echo(cal.summary(res.posterior, s).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    typer.echo(f"wrote {res.out}/" + ", ".join(cal.OUTPUTS))


@app.command()
@friendly
def figures(results: Path = typer.Argument(Path("results"), help="a run, sweep or run-all folder"),
            out: Path = typer.Option(None, help="output folder (default: RESULTS/figures)"),
            formats: str = typer.Option("pdf,svg,png", help="comma-separated: pdf, svg, png (300 dpi)"),
            kind: list[str] = typer.Option(None, "--kind", help="only these figure types (repeatable)"),
            progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar")) -> None:
    """Publication figures (PDF, SVG, 300-dpi PNG) for every scenario found under RESULTS."""
    from experiments.figures import FIGURES, make_figures

    bad = [k for k in kind or [] if k not in FIGURES]
    if bad:
        raise ConfigError(f"--kind {bad[0]!r}: choose from {', '.join(FIGURES)}")
    fmts = tuple(dict.fromkeys(f.strip().lower() for f in formats.split(",") if f.strip()))  # each once
    bad_fmt = [f for f in fmts if f not in ("pdf", "svg", "png")]
    if not fmts or bad_fmt:
        what = f"{bad_fmt[0]!r} is not a format; " if bad_fmt else ""
        raise ConfigError(f"--formats {formats!r}: {what}choose one or more of pdf, svg, png, comma-separated")
    paths = make_figures(results, out, fmts, kind or None, progress=progress)
    folders = sorted({str(p.parent) for p in paths})
    typer.echo(f"wrote {len(paths)} files ({len(paths) // len(fmts)} figures x {', '.join(fmts)}) in:")
    for f in folders:
        typer.echo(f"  {f}/")


@app.command()
@friendly
def archive(results: Path = typer.Argument(..., help="a run, sweep or run-all folder"),
            out: Path = typer.Option(None, help="the zip to write (default: RESULTS.zip beside the folder)")) -> None:
    """Pack a results folder into one zip a second person can use without this repository: the data
    with a Frictionless datapackage.json, a codebook, the scenario and spec files, the environment
    (package versions, model code fingerprint), the figures and a README."""
    from experiments.archive import archive as pack

    typer.echo(str(pack(results, out)))


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
