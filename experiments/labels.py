"""What a results table holds, in the world's order and with the world's names.

Products, market regions and states are data (``model/data/world_*.toml``), so the research layer never
lists them: it reads them from a table and orders and names them by the table's world. That world is the
world of the table's scenario when the table holds one shipped scenario, else the default world; names
are cosmetic, so anything the world does not know keeps its code and sorts last.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

import pandas as pd

from model.params import DEFAULT_WORLD, ConfigError, World, load_world

log = logging.getLogger(__name__)


@functools.cache
def _world(scenario: str) -> World:
    """The world of a shipped scenario (``""``: the default world); the default one if it cannot load."""
    if scenario:
        try:
            from model.scenario import load_scenario

            return load_scenario(scenario, check=False).load_world()
        except (ConfigError, OSError):
            pass
    return load_world(DEFAULT_WORLD)


@functools.cache
def shipped_worlds() -> tuple[World, ...]:
    """Every world file shipped in ``model/data`` (the default first)."""
    from model.params import DATA_DIR

    names = [DEFAULT_WORLD, *sorted(p for p in DATA_DIR.glob("world_*.toml") if p != DEFAULT_WORLD)]
    out = []
    for n in names:
        try:
            out.append(load_world(n))
        except (ConfigError, OSError):
            log.warning("shipped world %s does not load", n)
    return tuple(out)


def world_of(df: pd.DataFrame | None = None) -> World:
    """The world a table was run on: its scenario's if it holds one shipped scenario, else the default."""
    name = ""
    if df is not None and "scenario" in df and len(df):
        names = pd.unique(df["scenario"].astype(str))
        if len(names) == 1:
            name = str(names[0])
    return _world(name)


def ordered(found: Iterable[str], order: Iterable[str]) -> list[str]:
    """The non-empty codes in ``found``, in ``order``'s order; codes ``order`` lacks last, sorted."""
    rank = {x: i for i, x in enumerate(order)}
    found = {str(x) for x in found if isinstance(x, str) and x}
    return sorted(found, key=lambda x: (rank.get(x, len(rank)), x))


def products(df: pd.DataFrame, variable: str = "price") -> list[str]:
    """The products a table has ``variable`` rows for (all rows if none), in the world's order."""
    d = df[df["variable"] == variable] if variable and (df["variable"] == variable).any() else df
    return ordered(d["product"].unique(), world_of(df).product_names)


def market_regions(df: pd.DataFrame) -> list[str]:
    """The market regions a table has prices for, in clearing order (exporters before importers)."""
    d = df[df["variable"] == "price"]
    return ordered(d["region"].unique(), world_of(df).region_ids)


def import_pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    """``(importing region, region it imports from)`` for every pair the table has prices for."""
    have = set(market_regions(df))
    return [(r.id, r.imports_from) for r in world_of(df).regions
            if r.imports_from and r.id in have and r.imports_from in have]


def region_name(region: str, df: pd.DataFrame | None = None) -> str:
    """``ROW`` -> ``ex-China`` (the world's name for a market region); other codes unchanged."""
    w = world_of(df)
    return next((r.name for r in w.regions if r.id == region), region)


def state_name(state: str, df: pd.DataFrame | None = None) -> str:
    """``JP`` -> ``Japan``; ``OTH`` -> ``Rest of world`` (the part before any parenthesis)."""
    w = world_of(df)
    return next((s.name.split(" (")[0] for s in w.states if s.id == state), state)
