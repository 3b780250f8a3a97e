"""A run is a pure function: ``run_one(scenario, seed) -> table``; saving adds provenance.

Everything a sweep or a test needs to reproduce a run is in its arguments: the scenario (a name, a path
or a :class:`~model.scenario.Scenario`), the seed, the horizon and world overrides. The result is the
tidy long table of :mod:`model.results`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from model.market import KERNEL
from model.model import RareEarthModel
from model.scenario import Scenario, load_scenario

PACKAGE = "ree-abm"


def run_one(scenario: str | Path | Scenario, seed: int, weeks: int | None = None,
            overrides: dict[str, Any] | None = None, run_id: str = "") -> pd.DataFrame:
    """Run one scenario with one seed to its horizon (or ``weeks``) and return the tidy table."""
    sc = _with_overrides(scenario, overrides)
    model = RareEarthModel(scenario=sc, seed=seed, weeks=weeks, run_id=run_id)
    model.run()
    return model.results()


def run_model(scenario: str | Path | Scenario, seed: int, weeks: int | None = None,
              overrides: dict[str, Any] | None = None) -> RareEarthModel:
    """Like :func:`run_one`, but returns the model (events, agents) as well."""
    sc = _with_overrides(scenario, overrides)
    return RareEarthModel(scenario=sc, seed=seed, weeks=weeks).run()


@dataclasses.dataclass
class SeedRun:
    """One seed's run of :func:`run_seeds`: its table and what ``ree run`` reports and records about it."""

    seed: int
    table: pd.DataFrame
    weeks: int
    agents: int
    events: list[str]
    seconds: float
    warnings: list[tuple[str, int, str]]  # (logger, level, message) the run logged at WARNING or above


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _run_seed(args: tuple[Scenario, int, int | None]) -> SeedRun:
    """One seed, with the model's warnings kept (not printed) so that the caller prints each once."""
    sc, seed, weeks = args
    collect = _Collect()
    loggers = [logging.getLogger(n) for n in ("model", "agents")]
    saved = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.addHandler(collect)
        lg.propagate = False
    try:
        t0 = time.perf_counter()
        model = run_model(sc, seed, weeks)
        seconds = time.perf_counter() - t0
    finally:
        for lg, p in zip(loggers, saved, strict=True):
            lg.removeHandler(collect)
            lg.propagate = p
    return SeedRun(seed, model.results(), model.weeks, len(model.agents), [f"{d}: {t}" for d, t in model.events],
                   seconds, collect.records)


def run_seeds(scenario: str | Path | Scenario, seeds: Sequence[int], weeks: int | None = None, workers: int = 1,
              progress: bool = False) -> list[SeedRun]:
    """Run ``scenario`` once per seed (on ``workers`` processes when there are several seeds), in seed order.

    A warning the model logs (e.g. a timeline entry after a shortened horizon) is logged once, not once per
    seed. ``progress`` shows a bar on stderr (:func:`progress_bar`).
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    jobs = [(sc, int(s), weeks) for s in seeds]
    runs: list[SeedRun] = []
    seen: set[tuple[str, int, str]] = set()
    with progress_bar(len(jobs), sc.name, progress and len(jobs) > 1) as bar:
        for r in _seed_runs(jobs, workers):
            for w in r.warnings:
                if w not in seen:
                    seen.add(w)
                    logging.getLogger(w[0]).log(w[1], "%s", w[2])
            bar.update()
            runs.append(r)
    return runs


def _seed_runs(jobs: list[tuple[Scenario, int, int | None]], workers: int) -> Iterator[SeedRun]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_run_seed, jobs)
        return
    from experiments.sweep import _workers_skip_main, process_pool

    with _workers_skip_main(), process_pool(min(workers, len(jobs))) as ex:
        try:
            yield from ex.map(_run_seed, jobs)
        except BaseException:  # Ctrl-C: stop now, not after the runs still queued
            ex.shutdown(wait=False, cancel_futures=True)
            raise


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "run", initial: int = 0):
    """The progress bar of every long command (sweep, sensitivity, run --seeds, validate, figures): tqdm on
    stderr, so that what a command prints on stdout stays clean; ``enabled=False`` (``--no-progress``)
    draws nothing."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, desc=desc, dynamic_ncols=True,
                file=sys.stderr)


def _with_overrides(scenario: str | Path | Scenario, overrides: dict[str, Any] | None) -> Scenario:
    """The scenario with its overrides: policy levers (``policy.Stockpile[US].target_days``, see
    :mod:`experiments.levers`) set in its timeline, the rest as world overrides."""
    from experiments.levers import apply_levers

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if overrides:
        sc, world = apply_levers(sc, overrides)
        if world:
            sc = sc.with_overrides(world)
    return sc


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v(PACKAGE)
    except Exception:  # noqa: BLE001 - running from a source tree without installing
        return "0+unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent.parent)
        sha = out.stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent.parent).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(scenario: Scenario, seeds: list[int], weeks: int | None, overrides: dict | None = None,
               extra: dict | None = None) -> dict[str, Any]:
    """What a saved result needs to be reproduced (covasim's ``set_metadata``, in spirit): with the model
    code's fingerprint (the one run keys use) and the scenario file named, so ``ree archive`` can tell
    whether this code made the results and copy the file."""
    from experiments.sweep import code_fingerprint

    return {
        "package": PACKAGE,
        "version": version(),
        "git_commit": git_commit(),
        "code": code_fingerprint(),
        "scenario": scenario.to_dict(),
        "scenario_source": scenario.source,
        "parameters": {**scenario.overrides, **(overrides or {})},
        "seeds": list(seeds),
        "weeks": weeks if weeks is not None else scenario.weeks,
        "python": platform.python_version(),
        "auction_kernel": KERNEL,  # compiled or numpy: the same results, different run times
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder and rename: readers never see half a file.

    The file gets the mode an ordinary ``open()`` would give it (``0o666`` less the umask), not the
    ``0o600`` of a temporary file. Any OSError (no permission, not a folder, disk full) is raised as
    :class:`experiments.paths.OutputError` naming ``path``.
    """
    from experiments.paths import umask, writing

    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), 0o666 & ~umask())
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(obj: Any, path: Path) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())
