"""A run is a pure function: ``run_one(scenario, seed) -> table``; saving adds provenance.

Everything a sweep or a test needs to reproduce a run is in its arguments: the scenario (a name, a path
or a :class:`~model.scenario.Scenario`), the seed, the horizon and world overrides. The result is the
tidy long table of :mod:`model.results`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
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
