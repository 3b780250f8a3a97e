"""The world as typed, validated data.

A *world* is everything that exists at the start date: products, ore types, states, the route network,
and the agents (miners, refiners, armed groups, buyers) with their calibrated numbers. It lives in a TOML
file under ``model/data/`` and is loaded through the pydantic models below. Units are in field names
(``capacity_t_per_week``, ``cost_usd_per_kg``); every calibrated number in the data file carries its
source as a comment (``# FACTS B1``, ``# seed F12``).

Unknown keys are rejected, and every validator that fails says which field is wrong and what is allowed;
:func:`load_world` turns pydantic's errors into one :class:`ConfigError` whose message names each field.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_WORLD = DATA_DIR / "world_2024.toml"


class Product(StrEnum):
    """Marketed magnet rare-earth oxides (quantities in tonnes REO, prices in USD/kg)."""

    NDPR = "NdPr"
    DY = "Dy"
    TB = "Tb"


PRODUCTS: tuple[Product, ...] = tuple(Product)


class Region(StrEnum):
    """Oxide market regions: China-domestic and ex-China (mechanism M2)."""

    CN = "CN"
    ROW = "ROW"


REGIONS: tuple[Region, ...] = tuple(Region)


class ConfigError(ValueError):
    """A world or scenario file is wrong; the message names each field and what is allowed."""


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: ``source: field.path: what is wrong (got value)``."""
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check the spelling against the documented fields"
        got = e.get("input")
        got_s = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc}: {msg}{got_s}")
    return "\n".join(lines)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Frac = Annotated[float, Field(ge=0.0, le=1.0)]
Pos = Annotated[float, Field(gt=0.0)]
NonNeg = Annotated[float, Field(ge=0.0)]


class ProductSpec(Strict):
    name: Product
    price_2024_usd_per_kg: Pos  # initial ask/bid anchor only; prices then come from the auctions
    export_cost_usd_per_kg: NonNeg  # freight, insurance and paperwork from a Chinese plant to an ex-China buyer


class OreType(Strict):
    """Fixed element basket per tonne of REO in the ore (joint production, FACTS L6)."""

    name: str
    basket: dict[Product, Frac]
    heavy: bool  # ionic clay (heavy-rich) vs hard rock (light-rich)

    @field_validator("basket")
    @classmethod
    def _basket_sums(cls, v: dict[Product, float]) -> dict[Product, float]:
        if sum(v.values()) > 1.0:
            raise ValueError("element fractions of REO must sum to <= 1 (the rest is La, Ce, Y, ...)")
        return v


class StateSpec(Strict):
    id: str
    name: str
    region: Region
    bloc: Literal["china", "partner", "asean", "myanmar", "other"]


class NodeSpec(Strict):
    id: str
    name: str
    kind: Literal["mine_area", "border", "hub", "refinery", "port", "buyer_hub"]
    country: str
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class EdgeSpec(Strict):
    src: str
    dst: str
    mode: Literal["road", "rail", "sea", "river"]
    capacity_t_per_week: Pos
    cost_usd_per_kg: NonNeg
    border_fee_usd_per_kg: NonNeg = 0.0
    controller: str  # a state id or an armed-group id
    corridor: str = ""  # label for flow outputs (e.g. "pangwa", "northern_corridor")
    open: bool = True


class MinerSpec(Strict):
    """One mine, or a population of ``count`` small sites drawn around the given means."""

    id: str
    name: str
    country: str
    node: str
    ore: str
    capacity_t_per_week: Pos  # REO content, per site
    unit_cost_usd_per_kg: Pos  # cash cost per kg REO at the mine gate
    count: Annotated[int, Field(ge=1)] = 1
    active_at_start: Annotated[int, Field(ge=0)] | None = None  # for populations; default: all
    offtake: str = ""  # refiner with first call on the ore (owner or long-term contract)
    capacity_cv: NonNeg = 0.0  # coefficient of variation of site capacity (lognormal)
    cost_cv: NonNeg = 0.0
    controller: str = ""  # armed group controlling the site ("" = the host state)
    entry_exit: bool = False  # small artisanal sites open and close as margins move (seed F12)
    licensed: bool = True  # a legal, auditable operation (traceability, seed F25)
    state_linked: bool = False  # state- or military-linked enterprise (sanctions, seed F24)

    @model_validator(mode="after")
    def _active(self) -> MinerSpec:
        if self.active_at_start is not None and self.active_at_start > self.count:
            raise ValueError(f"active_at_start ({self.active_at_start}) must be <= count ({self.count})")
        return self


class RefinerSpec(Strict):
    id: str
    name: str
    country: str
    node: str
    capacity_t_per_week: NonNeg  # separation feed capacity, t REO per week
    processing_cost_usd_per_kg: Pos
    recovery: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    separates: list[Product]  # oxides this plant can separate; the rest of the basket is not marketed
    status: Literal["operating", "building", "planned"] = "operating"
    online_date: dt.date | None = None  # for a plant already building: when it comes online
    capex_musd: NonNeg = 0.0
    lead_time_weeks: Annotated[int, Field(ge=0)] = 0
    sponsor_state: str = ""  # who would build a planned project
    needs_policy_support: bool = False  # not built on private terms: waits for financing or a floor


class ArmedGroupSpec(Strict):
    id: str
    name: str
    home_state: str
    levy_usd_per_kg: NonNeg  # per kg of ore REO crossing its territory (FACTS C12)
    conflict_start: Literal["calm", "tense", "fighting"] = "calm"
    # weekly Markov transition probabilities (calm->tense, tense->fighting, fighting->tense, tense->calm)
    p_escalate: Frac = 0.01
    p_fight: Frac = 0.05
    p_deescalate: Frac = 0.2
    p_calm: Frac = 0.1
    halt_share_fighting: Frac = 0.6  # share of its sites that stop in a fighting week


class BuyerSpec(Strict):
    id: str
    state: str
    segment: Literal["ev", "wind", "electronics", "defence", "industrial"]
    magnet_t_per_year: Pos  # NdFeB magnet demand
    content_kg_per_kg: dict[Product, Frac]  # element oxide per kg magnet, before thrifting
    min_content_frac: dict[Product, Frac] = Field(default_factory=dict)  # floor after full thrifting
    value_usd_per_kg_magnet: Pos  # value of the magnet in use: bounds the willingness to pay
    target_cover_weeks: Pos = 8.0


class Behaviour(Strict):
    """Behavioural rates shared by all agents of a kind; each documents the target that set it."""

    seller_markup_rate: Pos = 0.3  # ask = 2-yr price x (1 + this x cover shortfall) (C15 band)
    seller_markup_cap: Pos = 3.0  # x rate when short: an empty shelf asks +90 % (seed F16 +60 %/4 wk)  # ... times this when short: an empty shelf asks +rate x cap (seed F16)
    seller_target_cover_weeks: Pos = 6.0
    buyer_urgency: Pos = 2.0  # bid = 2-yr price x (1 + this x cover shortfall), capped at WTP
    buyer_price_memory_weeks: Pos = 8.0
    thrift_rate_per_week: NonNeg = 0.0025  # content reduction speed when prices stay high (FACTS L5)
    thrift_trigger_ratio: Pos = 1.3  # price / reference above which buyers thrift
    demand_growth_per_year: float = 0.0  # FACTS B6 gives ~5 %/yr to 2030; 0 keeps the baseline stationary
    export_share_sensitivity: Pos = 6.0  # logit slope of Chinese sellers' home/export split
    ore_bid_share: Frac = 0.45  # seed F14: ore at ~US$14.5/kg vs ~US$31/kg of oxide it contains
    site_entry_rate: Frac = 0.1  # weekly probability a dormant profitable site opens (seed F12)
    site_exit_rate: Frac = 0.05
    site_margin_memory_weeks: Pos = 8.0
    seller_reservation_ratio: Frac = 0.7  # sellers hold stock rather than sell below this x 2-year price memory
    china_quota_rule: bool = True  # China moves its mining quota to steady domestic NdPr prices
    china_quota_step_per_week: NonNeg = 0.002
    china_quota_band: Frac = 0.1
    china_quota_min: Pos = 0.8
    china_quota_max: Pos = 1.2
    seller_forward_weeks: NonNeg = 8.0  # sellers' cover looks this far ahead at their output run-rate
    buyer_forward_weeks: NonNeg = 8.0  # buyers count this many weeks of a drop in market depth as lost
    rival_stockpile_trigger_weeks: NonNeg = 2.0  # China's leverage rule: rivals' Dy/Tb buying in 4 weeks
    ladder_steps: Annotated[int, Field(ge=1, le=20)] = 5
    ladder_spread: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


class World(Strict):
    name: str
    as_of: dt.date = dt.date(2024, 1, 1)  # the date the world describes
    description: str = ""
    currency_cny_per_usd: Pos = 7.2
    products: list[ProductSpec]
    ore_types: list[OreType]
    states: list[StateSpec]
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]
    miners: list[MinerSpec]
    refiners: list[RefinerSpec]
    armed_groups: list[ArmedGroupSpec]
    buyers: list[BuyerSpec]
    behaviour: Behaviour = Field(default_factory=Behaviour)

    @model_validator(mode="after")
    def _references(self) -> World:
        states = {s.id for s in self.states}
        nodes = {n.id for n in self.nodes}
        ores = {o.name for o in self.ore_types}
        groups = {g.id for g in self.armed_groups}
        controllers = states | groups
        problems: list[str] = []

        def need(value: str, allowed: set[str], where: str) -> None:
            if value not in allowed:
                problems.append(f"{where}: unknown {value!r}; allowed: {', '.join(sorted(allowed))}")

        if {p.name for p in self.products} != set(Product):
            problems.append(f"products: must list exactly {', '.join(Product)}")
        for i, n in enumerate(self.nodes):
            need(n.country, states, f"nodes[{i}].country")
        for i, e in enumerate(self.edges):
            need(e.src, nodes, f"edges[{i}].src")
            need(e.dst, nodes, f"edges[{i}].dst")
            need(e.controller, controllers, f"edges[{i}].controller")
        for i, m in enumerate(self.miners):
            need(m.country, states, f"miners[{i}].country")
            need(m.node, nodes, f"miners[{i}].node")
            need(m.ore, ores, f"miners[{i}].ore")
            if m.controller:
                need(m.controller, groups, f"miners[{i}].controller")
            if m.offtake:
                need(m.offtake, {r.id for r in self.refiners}, f"miners[{i}].offtake")
        for i, r in enumerate(self.refiners):
            if r.status == "building" and r.online_date is None:
                problems.append(f"refiners[{i}].online_date: a plant that is building needs an online_date")
            need(r.country, states, f"refiners[{i}].country")
            need(r.node, nodes, f"refiners[{i}].node")
            if r.sponsor_state:
                need(r.sponsor_state, states, f"refiners[{i}].sponsor_state")
        for i, g in enumerate(self.armed_groups):
            need(g.home_state, states, f"armed_groups[{i}].home_state")
        for i, b in enumerate(self.buyers):
            need(b.state, states, f"buyers[{i}].state")
        for kind, items in (("miners", self.miners), ("refiners", self.refiners), ("buyers", self.buyers),
                            ("states", self.states), ("nodes", self.nodes)):
            ids = [x.id for x in items]
            dup = {x for x in ids if ids.count(x) > 1}
            if dup:
                problems.append(f"{kind}: duplicate id(s) {sorted(dup)}")
        if "CN" not in states:
            problems.append("states: the world needs China with id 'CN' (the controlling refiner state)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- lookups ---------------------------------------------------------------------------------------
    def state(self, sid: str) -> StateSpec:
        return next(s for s in self.states if s.id == sid)

    def product(self, p: Product) -> ProductSpec:
        return next(x for x in self.products if x.name == p)

    def ore(self, name: str) -> OreType:
        return next(o for o in self.ore_types if o.name == name)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_world(path: str | Path = DEFAULT_WORLD, overrides: dict[str, Any] | None = None) -> World:
    """Load and validate a world file; ``overrides`` patch it first (dotted keys, see :func:`apply_overrides`)."""
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (DATA_DIR / path).exists():
        path = DATA_DIR / path
    raw = _read_toml(path)
    if overrides:
        raw = apply_overrides(raw, overrides, source=str(path))
    try:
        return World.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], source: str = "overrides") -> dict[str, Any]:
    """Patch a raw world dict with dotted keys.

    ``behaviour.seller_markup_rate = 0.25`` sets a scalar; ``miners.kachin_pangwa.count = 500`` finds the
    list entry whose ``id`` (or ``name`` for products/ore types) matches and sets its field.
    """
    import copy

    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        node: Any = out
        for j, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                match = [x for x in node if isinstance(x, dict) and part in (x.get("id"), x.get("name"))]
                if not match:
                    raise ConfigError(f"{source}: override {key!r}: no entry {part!r} in {'.'.join(parts[:j])}")
                node = match[0]
            elif isinstance(node, dict):
                if part not in node:
                    if part == "behaviour":
                        node[part] = {}
                    else:
                        raise ConfigError(f"{source}: override {key!r}: unknown key {part!r}; "
                                          f"allowed: {', '.join(sorted(node))}")
                node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override {key!r} does not name a field")
        node[parts[-1]] = value
    return out
