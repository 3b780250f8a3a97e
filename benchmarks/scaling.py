"""A world scaled in agents, for the scaling benchmark.

:func:`scale_world` multiplies the number of agents of every kind that populates the market (mine sites,
refiners, buyers) by ``factor`` while keeping the market itself the same size: each copy carries
``1/factor`` of the original's capacity or demand, so total supply, total demand, route loads and prices
stay where they were and only the number of agents (and orders in each auction) grows.

- **Mine sites**: a population of ``count`` sites becomes ``count x factor`` sites (``active_at_start``
  likewise), each with ``capacity / factor``; a single mine becomes ``factor`` identical sites of one
  entry. Pools (same area, ore, controller, status, offtake) are unchanged, so each ore auction has
  ``factor`` times the asks. An offtake stays with the original plant; what it does not take is
  auctioned to all plants.
- **Refiners** and **buyers**: each entry is copied ``factor`` times (copies get new ids
  ``<id>__x<k>``), capacity, capex and magnet demand divided by ``factor``.
- **States, armed groups, nodes and edges** are the geography and the institutions: unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from model.params import DATA_DIR, ConfigError, World, _read_toml, apply_overrides, format_validation_error
from model.scenario import Scenario, load_scenario


def scale_world(world_raw: dict[str, Any], factor: int) -> dict[str, Any]:
    """A copy of a raw world dict (as read from its TOML file) with ``factor`` x the agents (see module)."""
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    out = copy.deepcopy(world_raw)
    if factor == 1:
        return out
    for m in out["miners"]:
        m["count"] = int(m.get("count", 1)) * factor
        if m.get("active_at_start") is not None:
            m["active_at_start"] = int(m["active_at_start"]) * factor
        m["capacity_t_per_week"] = float(m["capacity_t_per_week"]) / factor
    refiners = []
    for r in out["refiners"]:
        for k in range(factor):
            c = copy.deepcopy(r)
            c["capacity_t_per_week"] = float(r["capacity_t_per_week"]) / factor
            if "capex_musd" in r:
                c["capex_musd"] = float(r["capex_musd"]) / factor
            if k:
                c["id"], c["name"] = f"{r['id']}__x{k}", f"{r['name']} (copy {k})"
            refiners.append(c)
    out["refiners"] = refiners
    buyers = []
    for b in out["buyers"]:
        for k in range(factor):
            c = copy.deepcopy(b)
            c["magnet_t_per_year"] = float(b["magnet_t_per_year"]) / factor
            if k:
                c["id"] = f"{b['id']}__x{k}"
            buyers.append(c)
    out["buyers"] = buyers
    return out


class ScaledScenario(Scenario):
    """A scenario whose world is its file's world passed through :func:`scale_world`."""

    factor: int = 1

    def load_world(self) -> World:
        path = Path(self.world)
        if not path.is_absolute() and not path.exists():
            path = DATA_DIR / self.world
        raw = _read_toml(path)
        if self.overrides:
            raw = apply_overrides(raw, self.overrides, source=str(path))
        raw = scale_world(raw, self.factor)
        try:
            return World.model_validate(raw)
        except Exception as exc:  # pydantic ValidationError: name the fields, as load_world does
            if hasattr(exc, "errors"):
                raise ConfigError(format_validation_error(exc, f"{path} x{self.factor}")) from None
            raise


def scaled_scenario(name: str = "baseline", factor: int = 1) -> ScaledScenario:
    """A shipped (or file) scenario with its world scaled ``factor`` x in agents."""
    sc = load_scenario(name)
    return ScaledScenario(**{**sc.model_dump(), "factor": int(factor)})
