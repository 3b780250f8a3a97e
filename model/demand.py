"""Demand paths: how buyers' demand grows, by segment, region and calendar year, as data.

A *demand path* (a named table in ``model/data/demand/demand_paths.toml``) gives annual growth rates of demand
(t of magnet, or of the product a buyer buys, per year) by buyer ``segment`` (ev, wind, defence, catalysts ...),
with optional overrides for one state or market region, and with year breakpoints: each rate holds from its
``from_year`` until the next breakpoint (piecewise constant by calendar year; before the first breakpoint
demand does not grow). A segment the path does not name takes its ``default`` schedule. Every rate carries
its source (a FACTS or seed id) or says ``assumption``. A scenario picks one with ``demand_path = "iea_aps"``.

Which schedule a buyer follows, most specific first: an override naming its segment and its state, one
naming its segment and its region, one naming only its state, one naming only its region; then the path's
schedule for its segment; then the path's ``default``.

The multiplier of a buyer's demand on a date is the product over calendar years of (1 + that year's rate)
raised to the share of the year that has passed since the scenario's start, so after whole calendar years
it is the product of the yearly rates, and a week across New Year grows at each year's rate for its own
days. The model keeps one multiplier per buyer (:class:`DemandGrowth`), worked out afresh from the start
each week (no compounding error), and applies it to the buyer book's need.

``behaviour.demand_growth_per_year`` (the older single rate) is a uniform path: every buyer, every year.
A scenario may use one or the other, not both.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from model.params import DATA_DIR, ConfigError, Int, Num, Strict, _read_toml, format_validation_error

if TYPE_CHECKING:
    from model.params import World

DEMAND_PATHS_FILE = DATA_DIR / "demand" / "demand_paths.toml"
# a rate's source: a FACTS row (FACTS B6), a seed fact (seed F7), or the word assumption
SOURCE = re.compile(r"\b(FACTS [A-Z]\d{1,2}|seed F\d{1,2}|assumption)\b")
GrowthRate = Annotated[Num, Field(ge=-0.5, le=1.0, description="growth per year, -0.5 to 1 (-50 % to +100 %)")]
Year = Annotated[Int, Field(ge=1900, le=2200)]
Segment = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]


class RateStep(Strict):
    """From ``from_year`` on (until the next step), demand grows by ``rate`` a year."""

    from_year: Year
    rate: GrowthRate
    source: str  # a FACTS/seed id with how the number follows from it, or "assumption: why"

    @field_validator("source")
    @classmethod
    def _cites(cls, v: str) -> str:
        if not SOURCE.search(v):
            raise ValueError("name the source of the rate (e.g. 'FACTS B6: 93 kt -> 131 kt') or say 'assumption'")
        return v


def _schedule(v: list[RateStep]) -> list[RateStep]:
    if not v:
        raise ValueError("give at least one step, e.g. [{ from_year = 2024, rate = 0.05, source = \"FACTS B6\" }]")
    years = [s.from_year for s in v]
    if any(b <= a for a, b in zip(years, years[1:], strict=False)):
        raise ValueError(f"from_year must increase from step to step (got {years})")
    return v


Schedule = Annotated[list[RateStep], Field(max_length=200), AfterValidator(_schedule)]


class Override(Strict):
    """A schedule for the buyers of one state or one market region (and of one segment, if named)."""

    segment: Segment | None = None  # None: every segment
    state: str = ""
    region: str = ""
    rates: Schedule

    @model_validator(mode="after")
    def _one_place(self) -> Override:
        if bool(self.state) == bool(self.region):
            raise ValueError("name exactly one of state (e.g. state = \"CN\") or region (a market region id)")
        return self

    @property
    def rank(self) -> int:
        """Specificity: segment and state 3, segment and region 2, state 1, region 0."""
        return 2 * (self.segment is not None) + bool(self.state)


class DemandPath(Strict):
    description: str = ""
    cites: list[str] = Field(default_factory=list)
    default: Schedule
    segments: dict[Segment, Schedule] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> DemandPath:
        seen: dict[tuple, int] = {}
        for i, o in enumerate(self.overrides):
            key = (o.segment, o.state, o.region)
            if key in seen:
                raise ValueError(f"overrides[{i}] names the same segment and place as overrides[{seen[key]}]; "
                                 f"merge them into one schedule")
            seen[key] = i
        return self

    def schedule_for(self, segment: str, state: str, region: str) -> list[RateStep]:
        """The schedule a buyer of ``segment`` in ``state`` (in market ``region``) follows (module docstring)."""
        best: Override | None = None
        for o in self.overrides:
            if o.segment not in (None, segment) or (o.state and o.state != state) or (o.region and o.region != region):
                continue
            if best is None or o.rank > best.rank:
                best = o
        if best is not None:
            return best.rates
        return self.segments.get(segment, self.default)


class DemandPaths(Strict):
    paths: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)], DemandPath]


def rates_by_year(schedule: list[RateStep], years: range) -> np.ndarray:
    """The schedule's rate in each of ``years`` (0 before its first step)."""
    out = np.zeros(len(years))
    for step in schedule:  # steps in increasing from_year: each overwrites from its year on
        out[max(step.from_year - years.start, 0):] = step.rate
    return out


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> DemandPaths:
    raw = _read_toml(path, "demand paths file")
    try:
        return DemandPaths.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None


def load_demand_paths(path: str | Path | None = None) -> DemandPaths:
    """The named demand paths of ``path`` (default :data:`DEMAND_PATHS_FILE`), validated; cached per file
    version. A wrong file is a :class:`ConfigError` naming the file and each bad field."""
    p = Path(DEMAND_PATHS_FILE if path is None else path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = 0  # the reader reports the problem
    return _load(str(p), mtime)


def path_names() -> list[str]:
    return sorted(load_demand_paths().paths)


class DemandGrowth:
    """Per-buyer demand multipliers on the calendar: rows are buyers, columns calendar years from the start's.

    ``factor(date)`` is exp(log(1 + rates) @ exposure), exposure being the share of each calendar year between
    the start and ``date``; with every rate 0 it is exactly 1.0 for every buyer."""

    def __init__(self, rates: np.ndarray, start: dt.date):
        self.start = start
        self.rates = np.asarray(rates, dtype=float)
        self.log_growth = np.log1p(self.rates)
        self.grows = bool(self.rates.any())

    @property
    def years(self) -> range:
        return range(self.start.year, self.start.year + self.rates.shape[1])

    def exposure(self, date: dt.date) -> np.ndarray:
        """Share of each calendar year (columns) that lies between the start and ``date``; the last column
        also takes any years beyond it (its rate holds on)."""
        e = np.zeros(self.rates.shape[1])
        last = self.start.year + e.size - 1
        for year in range(self.start.year, date.year + 1):
            lo = max(self.start, dt.date(year, 1, 1))
            hi = min(date, dt.date(year + 1, 1, 1))
            if hi > lo:
                e[min(year, last) - self.start.year] += (hi - lo).days / (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
        return e

    def factor(self, date: dt.date) -> np.ndarray:
        """Each buyer's demand on ``date`` relative to the start (read-only array)."""
        out = np.exp(self.log_growth @ self.exposure(date))
        out.flags.writeable = False
        return out


def demand_growth(world: World, demand_path: str, start: dt.date, weeks: int, source: str = "",
                  paths: DemandPaths | None = None) -> DemandGrowth | None:
    """The demand growth of a run: the scenario's ``demand_path`` (a name in the demand paths file), or the
    world's ``behaviour.demand_growth_per_year`` as a uniform path, or None when neither is set (demand is
    stationary and the model keeps its scalar multiplier of 1). Raises :class:`ConfigError` when both are
    set or the path names a state or region the world does not have."""
    where = source or "scenario"
    uniform = world.behaviour.demand_growth_per_year
    if not demand_path:
        if not uniform:
            return None
        end_year = (start + dt.timedelta(weeks=weeks)).year
        return DemandGrowth(np.full((len(world.buyers), end_year - start.year + 1), uniform), start)
    if uniform:
        raise ConfigError(f"{where}: demand_path = {demand_path!r} and behaviour.demand_growth_per_year = "
                          f"{uniform} both make demand grow; keep one (remove the override, or the demand_path)")
    paths = load_demand_paths() if paths is None else paths
    if demand_path not in paths.paths:
        raise ConfigError(f"{where}: demand_path: unknown {demand_path!r}; allowed: {', '.join(sorted(paths.paths))}")
    path = paths.paths[demand_path]
    states = {s.id: s.region for s in world.states}
    regions = {r.id for r in world.regions}
    for i, o in enumerate(path.overrides):
        if o.state and o.state not in states:
            raise ConfigError(f"{where}: demand_path {demand_path!r}: overrides[{i}].state: unknown {o.state!r} in "
                              f"world {world.name}; allowed: {', '.join(sorted(states))}")
        if o.region and o.region not in regions:
            raise ConfigError(f"{where}: demand_path {demand_path!r}: overrides[{i}].region: unknown {o.region!r} "
                              f"in world {world.name}; allowed: {', '.join(sorted(regions))}")
    # columns: from the start's year to the last breakpoint or the horizon's year, whichever is later
    last = max([(start + dt.timedelta(weeks=weeks)).year]
               + [s.from_year for sched in (path.default, *path.segments.values(), *(o.rates for o in path.overrides))
                  for s in sched])
    years = range(start.year, max(last, start.year) + 1)
    rates = np.array([rates_by_year(path.schedule_for(b.segment, b.state, states[b.state]), years)
                      for b in world.buyers]).reshape(len(world.buyers), len(years))
    return DemandGrowth(rates, start)
