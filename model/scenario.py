"""Scenarios are data: a world, a start date, a horizon, seeds, overrides and a timeline.

A scenario file (TOML, under ``model/data/scenarios/`` or anywhere on disk) looks like::

    name = "myanmar_2025"
    description = "Kachin supply shock, Feb 2025"
    cites = ["seed F15", "seed F16", "FACTS C13"]
    world = "world_2024_magnets.toml"
    start = 2024-01-01
    weeks = 156
    seeds = [1, 2, 3]
    demand_path = "iea_aps"      # optional: how demand grows (model/data/demand/demand_paths.toml)
    [overrides]
    "behaviour.site_entry_rate" = 0.03
    [[timeline]]
    type = "MiningHalt"
    start = 2025-02-03
    ...

Every timeline entry is a policy or an event from :mod:`model.policies`, validated by its own fields.
A wrong file raises :class:`~model.params.ConfigError` naming each bad field and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model.demand import demand_growth, path_names
from model.params import (
    DATA_DIR,
    DEFAULT_WORLD,
    EARLIEST_DATE,
    MAX_DATE,
    ConfigError,
    Int,
    World,
    _read_toml,
    format_validation_error,
    load_world,
)

SCENARIO_DIR = DATA_DIR / "scenarios"
MAX_SEED = 2**63 - 1  # seeds are stored in int64 columns of the results
MAX_WEEKS = 5200  # a hundred years
WORLD_KEYS = frozenset({"products", "regions", "ore_types", "states", "nodes", "edges", "miners", "refiners",
                        "traders", "armed_groups", "buyers", "behaviour"})  # keys only a world file has


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    description: str = ""
    cites: list[str] = Field(default_factory=list)
    world: str = Field(default=DEFAULT_WORLD.name,
                       description="world file: a path relative to the scenario file's folder, an absolute "
                                   "path, or the name of a world shipped in model/data/")
    start: dt.date = Field(default=dt.date(2024, 1, 1), ge=EARLIEST_DATE, le=MAX_DATE,
                           description=f"first date of the run, {EARLIEST_DATE} to {MAX_DATE}")
    weeks: Int = Field(default=520, ge=1, le=MAX_WEEKS, description="horizon, 1 to 5200 weeks")
    seeds: list[Annotated[Int, Field(ge=0, le=MAX_SEED)]] = Field(
        default_factory=lambda: list(range(1, 11)), description="random seeds, whole numbers 0 to 2**63 - 1")
    demand_path: str = Field(default="", description="how demand grows: a path named in "
                             "model/data/demand/demand_paths.toml ('' = stationary, or "
                             "behaviour.demand_growth_per_year if set)")
    overrides: dict[str, Any] = Field(default_factory=dict)
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    source: str = ""  # the file it came from (set by the loader)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed, e.g. seeds = [1, 2, 3]")
        return v

    @field_validator("demand_path")
    @classmethod
    def _demand_path(cls, v: str) -> str:
        if v and v not in path_names():
            raise ValueError(f"unknown demand path {v!r}; allowed: {', '.join(path_names())} "
                             f"(the paths of model/data/demand/demand_paths.toml), or leave it out for none")
        return v

    @model_validator(mode="after")
    def _end_in_range(self) -> Scenario:
        if self.start + dt.timedelta(weeks=self.weeks) > MAX_DATE + dt.timedelta(weeks=MAX_WEEKS):
            raise ValueError(f"start {self.start} + {self.weeks} weeks ends after "
                             f"{MAX_DATE + dt.timedelta(weeks=MAX_WEEKS)}; start earlier or run fewer weeks")
        return self

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(weeks=self.weeks)

    def with_overrides(self, extra: dict[str, Any]) -> Scenario:
        return self.model_copy(update={"overrides": {**self.overrides, **extra}})

    def world_path(self) -> Path:
        """The world file: an absolute path as written; a relative one in the scenario file's folder, else
        a world shipped in ``model/data/`` (which is how shipped scenarios name ``world_2024.toml``). A
        scenario built in code (no file) looks in the working folder first."""
        where = self.source or self.name
        if not self.world.strip():
            raise ConfigError(f"{where}: world: empty (got {self.world!r}); give a world file, "
                              f"e.g. world = \"world_2024.toml\"")
        path = Path(self.world).expanduser()
        if path.is_absolute():
            return path
        base = Path(self.source).parent if self.source else Path.cwd()
        looked = [base / path, DATA_DIR / path]
        found = next((p for p in looked if p.exists()), None)
        if found is None:
            raise ConfigError(f"{where}: world: {self.world!r}: file not found; looked in "
                              f"{' and '.join(str(p.parent) for p in looked)}")
        return found

    def load_world(self) -> World:
        where = self.source or self.name
        return load_world(self.world_path(), self.overrides, overrides_source=where,
                          named_by=f"{where}: world = {self.world!r}")

    def build_timeline(self) -> list:
        from model.policies import parse_timeline

        return parse_timeline(self.timeline, source=self.source or self.name)

    def check(self) -> World:
        """Validate everything against the world: raises ConfigError naming each problem."""
        world = self.load_world()
        from model.policies import check_timeline

        check_timeline(self.build_timeline(), world, self.start, self.end, source=self.source or self.name)
        demand_growth(world, self.demand_path, self.start, self.weeks, source=self.source or self.name)
        return world

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"source"})
        return d


def _exists(p: Path) -> bool:
    """Whether a file is there; a name the system cannot look up (too long for a file name) is not."""
    try:
        return p.exists()
    except OSError:
        return False


def scenario_path(name: str | Path) -> Path:
    if not str(name).strip():
        raise ConfigError(f"scenario {str(name)!r}: empty; give a shipped name ({', '.join(list_scenarios())}) "
                          f"or the path of a scenario file")
    p = Path(name)
    if (p.suffix == ".toml" or len(p.parts) > 1) and (_exists(p) or p.is_symlink()):
        return p  # a path (the reader refuses folders, devices and other files that are not TOML text)
    cand = SCENARIO_DIR / f"{p.stem if p.suffix == '.toml' else name}.toml"
    if _exists(cand):
        return cand
    known = ", ".join(list_scenarios())
    raise ConfigError(f"scenario {str(name)!r}: no such file or shipped scenario; shipped: {known}")


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name: str | Path, check: bool = True) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path; validate it fully."""
    path = scenario_path(name)
    raw = _read_toml(path, "scenario file")
    try:
        sc = Scenario.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    if check:
        sc.check()
    return sc


def check_file(name: str | Path) -> str:
    """``ree check``: validate a scenario (a shipped name or a file) or a world file, which is told apart by
    its keys (``[[products]]``, ``[[miners]]``, ... are only in worlds). Returns the one-line report;
    raises :class:`ConfigError` naming each problem."""
    p = Path(name)
    if str(name).strip() and p.suffix == ".toml" and not p.exists() and (DATA_DIR / p).is_file():
        p = DATA_DIR / p  # a shipped world by name: ree check world_2024.toml
    if str(name).strip() and (p.suffix == ".toml" or len(p.parts) > 1) and (p.exists() or p.is_symlink()):
        raw = _read_toml(p, "scenario or world file")
        if WORLD_KEYS & raw.keys():
            world = load_world(p)
            return (f"ok: world {world.name} ({len(world.products)} products, {len(world.regions)} regions, "
                    f"{len(world.miners)} miner entries, {len(world.refiners)} refiners, {len(world.buyers)} buyers)")
    sc = load_scenario(name)
    return f"ok: {sc.name} ({len(sc.timeline)} timeline entries, world {sc.world})"
