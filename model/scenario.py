"""Scenarios are data: a world, a start date, a horizon, seeds, overrides and a timeline.

A scenario file (TOML, under ``model/data/scenarios/`` or anywhere on disk) looks like::

    name = "myanmar_2025"
    description = "Kachin supply shock, Feb 2025"
    cites = ["seed F15", "seed F16", "FACTS C13"]
    world = "world_2024.toml"
    start = 2024-01-01
    weeks = 156
    seeds = [1, 2, 3]
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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from model.params import DATA_DIR, ConfigError, World, _read_toml, format_validation_error, load_world

SCENARIO_DIR = DATA_DIR / "scenarios"


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    cites: list[str] = Field(default_factory=list)
    world: str = "world_2024.toml"
    start: dt.date = dt.date(2024, 1, 1)
    weeks: int = Field(default=520, ge=1, le=5200)
    seeds: list[int] = Field(default_factory=lambda: list(range(1, 11)))
    overrides: dict[str, Any] = Field(default_factory=dict)
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    source: str = ""  # the file it came from (set by the loader)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed, e.g. seeds = [1, 2, 3]")
        if any(s < 0 for s in v):
            raise ValueError("seeds must be non-negative integers")
        return v

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(weeks=self.weeks)

    def with_overrides(self, extra: dict[str, Any]) -> Scenario:
        return self.model_copy(update={"overrides": {**self.overrides, **extra}})

    def load_world(self) -> World:
        path = Path(self.world)
        if not path.is_absolute() and not path.exists():
            path = DATA_DIR / self.world
        return load_world(path, self.overrides)

    def build_timeline(self) -> list:
        from model.policies import parse_timeline

        return parse_timeline(self.timeline, source=self.source or self.name)

    def check(self) -> World:
        """Validate everything against the world: raises ConfigError naming each problem."""
        world = self.load_world()
        from model.policies import check_timeline

        check_timeline(self.build_timeline(), world, self.start, self.end, source=self.source or self.name)
        return world

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"source"})
        return d


def scenario_path(name: str | Path) -> Path:
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return p
    cand = SCENARIO_DIR / f"{p.stem if p.suffix == '.toml' else name}.toml"
    if cand.exists():
        return cand
    known = ", ".join(list_scenarios())
    raise ConfigError(f"scenario {str(name)!r}: no such file or shipped scenario; shipped: {known}")


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name: str | Path, check: bool = True) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path; validate it fully."""
    path = scenario_path(name)
    raw = _read_toml(path)
    try:
        sc = Scenario.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    if check:
        sc.check()
    return sc
