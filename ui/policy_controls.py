"""Policy switches for the start of a run, with controls generated from the policies' field metadata.

A :class:`PolicySwitch` names a policy class, the fixed choices that make it a classroom preset (who acts,
which corridor) and the fields a teacher may tune. Everything else — the control's range, step, default
and label — comes from :func:`model.policies.field_specs`, so no default is restated here. A
:class:`PolicySetup` holds one page's switch positions and values and turns them into policy objects for
``RareEarthModel(policies=...)`` when the page is reset. This module knows nothing about Solara.
"""

from __future__ import annotations

import datetime as dt
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from model.policies import (
    ExportControl,
    Financing,
    PermitStreamlining,
    PriceFloor,
    RouteChange,
    Sanction,
    Stockpile,
    TimelineItem,
    Traceability,
    field_specs,
)

# an upper bound more than this many times the default makes a useless slider (budget 0..100,000 M USD
# for a default of 2,200): the slider then stops at SLIDER_CAP_FACTOR x the default
WIDE_RANGE_FACTOR = 20.0
SLIDER_CAP_FACTOR = 5.0
SWITCH_NOTE = "classroom switch"  # the note on every policy a start-of-run switch builds


UNIT_SUFFIXES = (("_usd_per_kg", "USD/kg"), ("_t_per_week", "t/week"), ("_musd", "M USD"), ("_weeks", "weeks"),
                 ("_days", "days"))


def humanize(name: str) -> str:
    """'floor_usd_per_kg' -> 'floor (USD/kg)': units are in the field names (STYLE lesson 1)."""
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return f"{name.removesuffix(suffix).replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


@dataclass(frozen=True)
class Control:
    """One generated control: a slider (``float``/``int``), a switch (``bool``) or a choice."""

    name: str
    kind: Literal["float", "int", "bool", "choice"]
    label: str  # the field name, humanized
    help: str  # the field's description
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple = ()


def _nice_step(span: float) -> float:
    """A round step giving ~100 positions over ``span``."""
    raw = span / 100.0
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _base_type(annotation: Any) -> Any:
    """``Annotated[int, ...]`` -> int; ``X | None`` -> X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else annotation
    return annotation


def control_for(cls: type[TimelineItem], name: str) -> Control:
    """The control for one field of a policy class, from its metadata (bounds, default, description)."""
    spec = field_specs(cls)[name]
    label, help_ = humanize(name), spec["description"]
    default = spec["default"]
    base = _base_type(spec["annotation"])
    if typing.get_origin(base) is Literal:
        return Control(name, "choice", label, help_, default, choices=tuple(typing.get_args(base)))
    if base is bool:
        return Control(name, "bool", label, help_, bool(default))
    if base not in (int, float):
        raise TypeError(f"{cls.__name__}.{name}: no control for a {base!r} field")
    lo = spec.get("ge", spec.get("gt"))
    hi = spec.get("le", spec.get("lt"))
    if lo is None or hi is None:
        raise TypeError(f"{cls.__name__}.{name}: a slider needs both bounds in the field's metadata")
    if default and (hi - lo) > WIDE_RANGE_FACTOR * abs(default):
        hi = lo + SLIDER_CAP_FACTOR * abs(default)
    if base is int:
        lo_i = int(lo) + (1 if "gt" in spec else 0)
        hi_i = int(hi) - (1 if "lt" in spec and "le" not in spec else 0)
        return Control(name, "int", label, help_, int(default), lo_i, hi_i, 1)
    step = _nice_step(hi - lo)
    if "gt" in spec:
        lo = lo + step
    if "lt" in spec and "le" not in spec:
        hi = hi - step
    return Control(name, "float", label, help_, float(default), float(lo), float(hi), step)


@dataclass(frozen=True)
class PolicySwitch:
    """A policy a teacher can switch on for the start of a run."""

    key: str
    title: str  # what switching it on means, in the classroom's words
    cls: type[TimelineItem]
    preset: dict[str, Any] = field(default_factory=dict)  # fixed choices (actor, corridor), not defaults
    fields: tuple[str, ...] = ()  # tunable fields; their controls come from the metadata

    def controls(self) -> list[Control]:
        return [control_for(self.cls, f) for f in self.fields]

    def build(self, start: dt.date, values: dict[str, Any]) -> TimelineItem:
        """The policy object, starting at ``start``; raises ``ValidationError`` for a bad value."""
        tuned = {k: v for k, v in values.items() if k in self.fields}
        return self.cls(start=start, note=SWITCH_NOTE, **self.preset, **tuned)


SWITCHES: tuple[PolicySwitch, ...] = (
    PolicySwitch("china_licences", "China licenses Dy/Tb exports", ExportControl, {"actor": "CN"},
                 ("mode", "approval_rate", "delay_weeks")),
    PolicySwitch("japan_stockpile", "Japan's stockpile agency (JOGMEC)", Stockpile, {"actor": "JP"},
                 ("target_days", "initial_days", "rapid_response")),
    PolicySwitch("us_price_floor", "US price floor for its refiners", PriceFloor, {"actor": "US"},
                 ("floor_usd_per_kg",)),
    PolicySwitch("us_financing", "US EXIM finances refineries", Financing, {"actor": "US"},
                 ("budget_musd", "selection_deadline_weeks", "min_cover_ratio")),
    PolicySwitch("permits", "Faster permits for new plants", PermitStreamlining, {"actor": "US"}, ("factor",)),
    PolicySwitch("us_sanctions", "US sanctions Myanmar military-linked ore", Sanction, {"actor": "US"},
                 ("target_state_linked", "exempt_civilian")),
    PolicySwitch("japan_traceability", "Japan buys audited ore only", Traceability, {"actor": "JP"},
                 ("audit_cost_usd_per_kg",)),
    PolicySwitch("open_corridor", "Open the Northern Mineral Corridor", RouteChange,
                 {"actor": "LA", "action": "open", "corridor": "northern_corridor"}),
)
SWITCH_BY_KEY = {s.key: s for s in SWITCHES}


class PolicySetup:
    """One page's switch positions and tuned values; read when the page is reset.

    Mesa's Reset rebuilds the model from keyword arguments captured when the page opened, so the page
    passes this (mutable, per-page) object as the ``setup`` argument and the model reads its state then.
    """

    def __init__(self, switches: tuple[PolicySwitch, ...] = SWITCHES):
        self.switches = switches
        self.on: dict[str, bool] = {s.key: False for s in switches}
        self.values: dict[str, dict[str, Any]] = {s.key: {c.name: c.default for c in s.controls()} for s in switches}

    def set_on(self, key: str, on: bool) -> None:
        self.on[key] = bool(on)

    def set_value(self, key: str, name: str, value: Any) -> None:
        self.values[key] = {**self.values[key], name: value}

    def preview(self, key: str, start: dt.date) -> str:
        """What the switch will do, in the model's own words (or why its values are invalid)."""
        try:
            return SWITCH_BY_KEY[key].build(start, self.values[key]).describe()
        except ValidationError as exc:
            return f"invalid: {exc.errors()[0]['msg']}"

    def items(self, start: dt.date) -> list[TimelineItem]:
        """Policy objects for every switch that is on, starting at ``start``."""
        return [s.build(start, self.values[s.key]) for s in self.switches if self.on[s.key]]

    def summary(self) -> str:
        on = [s.title for s in self.switches if self.on[s.key]]
        return ", ".join(on) if on else "none"
