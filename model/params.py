"""The world as typed, validated data.

A *world* is everything that exists at the start date: products, regions, ore types, states, the route
network and the agents (miners, refiners, traders, armed groups, buyers, magnet makers) with their calibrated numbers. It
lives in a TOML file under ``model/data/`` and is loaded through the pydantic models below. Units are in
field names (``capacity_t_per_week``, ``cost_usd_per_kg``); every calibrated number in the data file carries
its source as a comment (``# FACTS B1``, ``# seed F12``) or says ``assumption``.

Products, regions and stages are data: the model, the outputs and the experiments read them from the world,
so adding a product (an element with its price, export cost and place in the ore baskets) is an edit of the
world file. Every behavioural constant of the agents is a field of :class:`Behaviour` (reachable by sweeps
as ``behaviour.<name>``), documented with the fact that sets it or ``assumption``.

Unknown keys are rejected, and every validator that fails says which field is wrong and what is allowed;
:func:`load_world` turns pydantic's errors into one :class:`ConfigError` whose message names each field.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DATA_DIR = Path(__file__).parent / "data"
# the default world carries the chain through to magnets (eight oxides, NdFeB and SmCo, magnet makers, term
# contracts); world_2024.toml, its base file, is the oxide world: three oxides bought directly, no magnet stage
DEFAULT_WORLD = DATA_DIR / "world_2024_magnets.toml"


class ConfigError(ValueError):
    """A world or scenario file is wrong; the message names each field and what is allowed."""


def show_value(v: Any) -> str:
    """A value as a TOML file writes it (true, 2024-01-01, 1.5, 'text')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str) and len(v) > 80:
        return repr(v[:80] + "...")
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _error_line(e: dict[str, Any]) -> tuple[str, str]:
    """(field path, 'what is wrong (got value)') of one pydantic error."""
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check the spelling against the documented fields"
    got = e.get("input")
    got_s = "" if e["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {show_value(got)})"
    return loc, f"{msg}{got_s}"


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: ``source: field.path: what is wrong (got value)``."""
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc, what = _error_line(e)
        lines.append(f"  {loc}: {what}")
    return "\n".join(lines)


class Strict(BaseModel):
    """Base of every world model: unknown keys are refused, and so are ``inf`` and ``nan`` in any number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):  # pydantic's lax mode would read true as 1 and false as 0
        raise ValueError("must be a number, not true/false")
    return v


# Numbers: finite (the models' config), never a boolean; the upper bounds below are far beyond any real
# value and are there so that a typo (1e300 t/week) is refused instead of running to meaningless output.
Num = Annotated[float, BeforeValidator(_not_bool)]
Int = Annotated[int, BeforeValidator(_not_bool)]
MAX_TONNES = 1e7  # t per week: about 300 x the world's 2024 REO mine output
MAX_USD_PER_KG = 1e6  # about 1,000 x the dearest oxide (Tb) in 2024
MAX_WEEKS = 520.0  # ten years, the model's longest memory, cover or delay
MAX_RATIO = 1000.0  # a multiple of a price, cost or stock
MAX_EXPONENT = 100.0  # elasticities and response factors (x ** 100 already spans any price range)
MAX_COUNT = 100_000  # sites of one miner population (each is a row in the model's arrays)

Frac = Annotated[Num, Field(ge=0.0, le=1.0, description="a share, 0 to 1")]
Pos = Annotated[Num, Field(gt=0.0)]
NonNeg = Annotated[Num, Field(ge=0.0)]
Weeks = Annotated[Num, Field(ge=1.0, le=MAX_WEEKS, description="weeks, 1 to 520")]
CoverWeeks = Annotated[Num, Field(ge=0.0, le=MAX_WEEKS, description="weeks of use or output, 0 to 520")]
PosCoverWeeks = Annotated[Num, Field(gt=0.0, le=MAX_WEEKS, description="weeks of use or output, above 0, at most 520")]
Tonnes = Annotated[Num, Field(ge=0.0, le=MAX_TONNES, description="t REO per week, 0 to 1e7")]
PosTonnes = Annotated[Num, Field(gt=0.0, le=MAX_TONNES, description="t REO per week, above 0, at most 1e7")]
UsdPerKg = Annotated[Num, Field(ge=0.0, le=MAX_USD_PER_KG, description="USD per kg, 0 to 1e6")]
PosUsdPerKg = Annotated[Num, Field(gt=0.0, le=MAX_USD_PER_KG, description="USD per kg, above 0, at most 1e6")]
Ratio = Annotated[Num, Field(gt=0.0, le=MAX_RATIO, description="a multiple, above 0, at most 1000")]
Exponent = Annotated[Num, Field(ge=0.0, le=MAX_EXPONENT, description="an elasticity or response, 0 to 100")]
PosExponent = Annotated[Num, Field(gt=0.0, le=MAX_EXPONENT, description="an elasticity, above 0, at most 100")]
# the sellers' stock elasticity enters their offers as reservation^e x price^-e, the price part precomputed on
# the grid: at e = 100 a reservation of a few hundred USD/kg overflows (a property test found ROW trading more
# than was offered, NaN offers); 10 already halves the stock kept for a 7 % price rise
StockExponent = Annotated[Num, Field(gt=0.0, le=10.0, description="an elasticity, above 0, at most 10")]
RatePerYear = Annotated[Num, Field(ge=0.0, le=10.0, description="a rate per year, 0 to 10 (1,000 %)")]
EARLIEST_DATE = dt.date(1900, 1, 1)  # dates of the world and its plants; a run ends before MAX_DATE
MAX_DATE = dt.date(2200, 12, 31)
Date = Annotated[dt.date, Field(ge=EARLIEST_DATE, le=MAX_DATE)]


class ProductSpec(Strict):
    """A marketed product: one element's oxide (stage ``oxide``, made by refiners from ore) or a magnet
    (stage ``magnet``, made by magnet makers from oxides by its ``bill_of_materials``)."""

    name: str
    stage: Literal["oxide", "magnet"] = "oxide"
    price_2024_usd_per_kg: PosUsdPerKg  # starting price and the centre of the exchange's price grid; then auctions
    export_cost_usd_per_kg: UsdPerKg  # freight, insurance and paperwork from the exporting to the importing region
    # the incremental cost of separating this element from the others (USD/kg): a refiner never sells below it,
    # so a co-product in surplus (La, Ce) settles near it instead of following its own falling price down
    separation_cost_usd_per_kg: UsdPerKg = 0.0
    disposable: bool = False  # a co-product in surplus that refiners dispose of (behaviour.co_product_disposal_weeks)
    # magnets only: oxide (kg) contained in a kg of finished magnet, before thrifting, and the share of each a
    # maker can thrift away at most (grain-boundary diffusion cuts Dy/Tb; FACTS L5-L6)
    bill_of_materials: dict[str, Frac] = Field(default_factory=dict)
    min_content_frac: dict[str, Frac] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _stage(self) -> ProductSpec:
        if self.stage == "magnet" and not self.bill_of_materials:
            raise ValueError("a magnet needs a bill_of_materials (oxide kg per kg magnet, e.g. { NdPr = 0.28 })")
        if self.stage == "oxide" and (self.bill_of_materials or self.min_content_frac):
            raise ValueError("an oxide has no bill_of_materials or min_content_frac (they belong to a magnet)")
        if sum(self.bill_of_materials.values()) > 1.0:
            raise ValueError("bill_of_materials: oxides in a kg of magnet must sum to <= 1 kg")
        return self


class RegionSpec(Strict):
    """A market region: one spot exchange per product. A region that imports buys through its traders in
    ``imports_from`` (paying each product's export cost), under that region's export rules."""

    id: str
    name: str
    imports_from: str = ""


class OreType(Strict):
    """Fixed element basket per tonne of REO in the ore (joint production, FACTS L6)."""

    name: str
    basket: dict[str, Frac]  # product -> share of REO; the rest (La, Ce, Y, ...) is not marketed yet
    heavy: bool  # ionic clay (heavy-rich) vs hard rock (light-rich)

    @field_validator("basket")
    @classmethod
    def _basket_sums(cls, v: dict[str, float]) -> dict[str, float]:
        if sum(v.values()) > 1.0:
            raise ValueError("element fractions of REO must sum to <= 1 (the rest is La, Ce, Y, ...)")
        return v


class ReserveSpec(Strict):
    """A standing state reserve that leans against its home market both ways (FACTS P5: China's State
    Reserve Bureau bought ~10,000 t in 2014; heavy-RE stockpiling loans in 2012)."""

    products: list[str]
    initial_weeks: CoverWeeks = 8.0  # stock at the start, in weeks of its region's use (assumption: levels are secret)
    max_weeks: PosCoverWeeks = 26.0  # it stops buying at this many weeks of use
    buy_below_ratio: Ratio = 0.87  # buys while the price is below this x the market's cost of supply
    release_above_ratio: Ratio = 1.3  # releases everything while the price is above this x that cost (a spike)
    sell_back_ratio: Ratio = 1.07  # sells stock bought in gluts (above initial_weeks) back above this x that cost ...
    sell_back_weeks: Weeks = 4.0  # ... over this many weeks (assumption)
    buy_weeks: Weeks = 26.0  # closes its gap to max_weeks over this many weeks
    release_weeks: Weeks = 13.0  # empties over this many weeks when releasing


class StateSpec(Strict):
    id: str
    name: str
    region: str
    bloc: Literal["china", "partner", "asean", "myanmar", "other"]
    reserve: ReserveSpec | None = None


class NodeSpec(Strict):
    id: str
    name: str
    kind: Literal["mine_area", "border", "hub", "refinery", "port", "buyer_hub"]
    country: str
    lat: Annotated[Num, Field(ge=-90, le=90)]
    lon: Annotated[Num, Field(ge=-180, le=180)]


class EdgeSpec(Strict):
    src: str
    dst: str
    mode: Literal["road", "rail", "sea", "river"]
    capacity_t_per_week: PosTonnes
    cost_usd_per_kg: UsdPerKg
    border_fee_usd_per_kg: UsdPerKg = 0.0
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
    capacity_t_per_week: PosTonnes  # REO content, per site
    unit_cost_usd_per_kg: PosUsdPerKg  # cash cost per kg REO at the mine gate
    count: Annotated[Int, Field(ge=1, le=MAX_COUNT)] = 1
    active_at_start: Annotated[Int, Field(ge=0, le=MAX_COUNT)] | None = None  # for populations; default: all
    offtake: str = ""  # refiner with first call on the ore (owner or long-term contract)
    capacity_cv: Annotated[Num, Field(ge=0.0, le=10.0)] = 0.0  # coefficient of variation of site capacity (lognormal)
    cost_cv: Annotated[Num, Field(ge=0.0, le=10.0)] = 0.0
    controller: str = ""  # armed group controlling the site ("" = the host state)
    entry_exit: bool = False  # small artisanal sites open and close as margins move (seed F12)
    licensed: bool = True  # a legal, auditable operation (traceability, seed F25)
    state_linked: bool = False  # state- or military-linked enterprise (sanctions, seed F24)
    # -- a mine (or a plant's stockpile of concentrate) as a project: see RefinerSpec for the pipeline fields
    status: Literal["operating", "building", "planned"] = "operating"
    online_date: Date | None = None  # for a mine already building: when it starts producing
    capex_musd: Annotated[Num, Field(ge=0.0, le=1e6)] = 0.0  # M USD
    permit_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # permitting before construction can start
    lead_time_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # construction, once permitted
    sponsor_state: str = ""  # whose financing or decision it waits for ("" = its country)
    needs_policy_support: bool = False  # not built on private terms: waits for financing or a floor
    reserve_t: Annotated[Num, Field(gt=0.0, le=1e9)] | None = None  # t REO left to mine (None: not binding)
    captive_only: bool = False  # sells only to its offtake plant (a plant's own stockpile, a dedicated mine)
    owner: str = ""  # the company (for tables; the model does not read it)
    source: str = ""  # where its numbers come from: FACTS/seed ids or "assumption"
    counted_in: str = ""  # a project database entry already counted in this aggregate entry of a world (see ProjectsSpec)
    # a plant's unseparated stream, sold as a concentrate of its own: the site "mines" what the refiner named
    # here leaves unseparated of the elements its ore basket lists (its capacity: the most it takes a week)
    residue_of: str = ""

    @model_validator(mode="after")
    def _active(self) -> MinerSpec:
        if self.active_at_start is not None and self.active_at_start > self.count:
            raise ValueError(f"active_at_start ({self.active_at_start}) must be <= count ({self.count})")
        if self.status != "operating" and (self.count != 1 or self.entry_exit):
            raise ValueError(f"status: a mine project ({self.status!r}) is one site (count = 1) without "
                             f"entry_exit; populations of small sites enter through entry_exit instead")
        if self.captive_only and not self.offtake:
            raise ValueError("captive_only: a mine that sells only to its offtake plant needs offtake = a refiner id")
        if self.residue_of and (self.count != 1 or self.entry_exit or self.reserve_t is not None):
            raise ValueError("residue_of: a plant's unseparated stream is one site (count = 1) without entry_exit "
                             "or reserve_t; it holds what its plant leaves unseparated")
        return self


class RefinerSpec(Strict):
    id: str
    name: str
    country: str
    node: str
    capacity_t_per_week: Tonnes  # separation feed capacity, t REO per week
    processing_cost_usd_per_kg: PosUsdPerKg  # per kg REO of feed (chemicals, energy, labour, waste)
    recovery: Annotated[Num, Field(gt=0.0, le=1.0)] = 0.95
    separates: list[str]  # products this plant can separate; the rest of the basket is not marketed
    ores: list[str] = Field(default_factory=list)  # ore types it can process ([] = any ore)
    status: Literal["operating", "building", "planned"] = "operating"
    online_date: Date | None = None  # for a plant already building: when it comes online
    capex_musd: Annotated[Num, Field(ge=0.0, le=1e6)] = 0.0  # M USD; 1e6 = a trillion dollars
    permit_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # permitting before construction can start
    lead_time_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # construction, once permitted (up to 20 years)
    sponsor_state: str = ""  # who would build a planned project
    needs_policy_support: bool = False  # not built on private terms: waits for financing or a floor
    quota: Literal["", "light", "heavy"] = ""  # which of China's separation quotas caps it (FACTS P6)
    owner: str = ""  # the company (for tables; the model does not read it)
    source: str = ""  # where its numbers come from: FACTS/seed ids or "assumption"
    counted_in: str = ""  # a project database entry already counted in this aggregate entry of a world (see ProjectsSpec)


class MagnetMakerSpec(Strict):
    """A magnet plant: turns oxides (reduced to metal and alloyed in house or by a toller) into one magnet
    product. Of every kg of elements it puts in, ``material_yield`` ends in finished magnets; the rest is
    swarf that recyclers return as oxide (FACTS R1: swarf is 25-30 % of magnet output)."""

    id: str
    name: str
    country: str
    makes: str  # a product of stage "magnet"
    capacity_t_per_week: Tonnes  # finished magnets, t per week
    processing_cost_usd_per_kg: PosUsdPerKg  # per kg magnet: reduction to metal, other materials (Fe, B, Co), sintering, machining
    material_yield: Annotated[Num, Field(gt=0.0, le=1.0)] = 0.75  # FACTS R1 (swarf 25-30 %)
    swarf_recovery: Frac = 0.8  # share of the elements in swarf recycled back to oxide (calibrated: FACTS R1, China's recycled PrNd)
    # a planned plant is a project (model/projects.py): its sponsor, a lender or a policy decides it, then it is
    # permitted and built as a refinery is; a plant that is building comes online on online_date
    status: Literal["operating", "building", "planned"] = "operating"
    online_date: Date | None = None  # for a plant that is building: when it comes online
    capex_musd: Annotated[Num, Field(ge=0.0, le=1e6)] = 0.0  # M USD: its capital charge in appraisal and what lenders commit
    permit_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # permitting before construction (x its host's permit factor)
    lead_time_weeks: Annotated[Int, Field(ge=0, le=1040)] = 0  # construction, once permitted
    needs_policy_support: bool = False  # a private sponsor never starts it on its numbers alone
    sponsor_state: str = ""  # the state that decides it ('' = its host)
    end_users: Literal["civil", "military"] = "civil"  # its customers' class, for end-user licence rules (FACTS P7)
    node: str = ""  # where the page's map draws it: a node of the network ('' = not on the map; the model does not read it)
    owner: str = ""  # the company (for tables; the model does not read it)
    source: str = ""  # where its numbers come from: FACTS/seed ids or "assumption"
    counted_in: str = ""  # a project database entry already counted in this aggregate entry of a world (see ProjectsSpec)
    # what a kg a year of new lines at this plant costs (USD), for its expansion (agents/magnet_maker.py); unset:
    # its own capex_musd over its capacity, and a plant with neither does not expand
    expansion_capex_usd_per_kg_year: Annotated[Num, Field(gt=0.0, le=1e5)] | None = None

    def expansion_capex(self) -> float | None:
        """USD per kg a year of capacity that new lines cost: ``expansion_capex_usd_per_kg_year``, else its own
        capex over its capacity (a greenfield project's cost per kg a year), else None (it does not expand)."""
        if self.expansion_capex_usd_per_kg_year is not None:
            return float(self.expansion_capex_usd_per_kg_year)
        if self.capex_musd > 0 and self.capacity_t_per_week > 0:
            return self.capex_musd * 1e6 / (self.capacity_t_per_week * 52.0 * 1000.0)
        return None


class ProjectsSpec(Strict):
    """Project database files a world takes its named mines, refineries and magnet plants from (besides its
    own lists), merged by :func:`load_world` before the world is validated.

    ``files`` are TOML files beside the world file (else in the shipped data folder) with ``[[miners]]``,
    ``[[refiners]]`` and ``[[magnet_makers]]`` entries (each with a ``source``) and the ``[[nodes]]``,
    ``[[edges]]`` and ``[[ore_types]]`` they need. The world takes every entry whose ``status`` is in
    ``statuses`` and every entry named in ``ids`` whatever its status, except:

    - a mine whose ``offtake`` plant is in a database but not taken (its ore is that plant's);
    - a plant that separates none of the world's products, a magnet plant whose ``makes`` it lacks;
    - an entry ``counted_in`` an aggregate entry the world has (``oth_separation`` counts Silmet).

    Elements are data: an entry's ``separates`` and an ore type's ``basket`` keep only the world's products,
    so one entry serves a three-oxide and an eight-oxide world. Nodes, edges and ore types come with the
    entries that use them (a mine's routes onward, a plant's routes in); one the world defines too must
    agree with it. A scenario switches announced projects on with
    ``[overrides] "projects.statuses" = ["operating", "building", "planned"]``.
    """

    files: list[str] = Field(default_factory=list)
    statuses: list[Literal["operating", "building", "planned"]] = Field(
        default_factory=lambda: ["operating", "building", "planned"])
    ids: list[str] = Field(default_factory=list)  # entries taken whatever their status


class TraderSpec(Strict):
    """A stockholder or trading house: holds oxide stock in its state's region, buys when prices are low
    against what it expects and sells when high (competitive storage); an importer also buys in the region
    its region imports from and sells at home (it is the exporter of record for its state's licences); an
    exporter buys at home and sells in the market region ``exports_to`` (the route back into China)."""

    id: str
    name: str
    state: str  # where it holds stock; the destination of what it imports
    imports: bool = False
    exports_to: str = ""  # a market region it sells into what it buys at home ("" = none)
    storage_weeks: CoverWeeks = 0.0  # room for speculative stock, weeks of its region's use (assumption)
    # working stock: an importer's, weeks of its state's buyers' need; an exporter's, weeks of its home
    # region's use (assumption)
    working_weeks: CoverWeeks = 0.0


class ArmedGroupSpec(Strict):
    id: str
    name: str
    home_state: str
    levy_usd_per_kg: UsdPerKg  # per kg of ore REO crossing its territory (FACTS C12)
    conflict_start: Literal["calm", "tense", "fighting"] = "calm"
    # weekly Markov transition probabilities (calm->tense, tense->fighting, fighting->tense, tense->calm)
    p_escalate: Frac = 0.01
    p_fight: Frac = 0.05
    p_deescalate: Frac = 0.2
    p_calm: Frac = 0.1
    halt_share_fighting: Frac = 0.6  # share of its sites that stop in a fighting week


class BuyerSpec(Strict):
    """A user of rare earths in one state and segment. In a world without a magnet stage a buyer stands for
    magnet makers and OEMs together and buys element oxides per kg of magnet; with one, an OEM buys magnets
    (``content_kg_per_kg = { NdFeB = 1.0 }``) and users of the other elements buy oxides directly (yttrium for
    coatings, La/Ce for catalysts). ``unit`` names what a shortage stops being made (EV motors, MW of wind
    turbines, fighter aircraft) and ``kg_per_unit`` how much of its main product one unit takes."""

    id: str
    state: str
    segment: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]  # ev, wind, defence, catalysts ...
    magnet_t_per_year: Annotated[Num, Field(gt=0.0, le=52 * MAX_TONNES)]  # units of demand: t of magnet (or of the product it buys)
    content_kg_per_kg: dict[str, Frac]  # product kg per kg of demand (element oxides per kg magnet, or 1.0 of what it buys)
    min_content_frac: dict[str, Frac] = Field(default_factory=dict)  # floor after full thrifting/substitution
    value_usd_per_kg_magnet: PosUsdPerKg  # value of a kg of demand in use: one budget shared by its contents
    target_cover_weeks: PosCoverWeeks = 8.0
    unit: str = ""  # the downstream unit a shortage stops ("EV motors"), for outputs
    kg_per_unit: Annotated[Num, Field(ge=0.0, le=1e6)] = 0.0  # kg of its demand in one unit
    end_users: Literal["civil", "military"] = "civil"


class Behaviour(Strict):
    """Behavioural constants shared by all agents of a kind. Each field says what it does and the fact
    that set it (FACTS/seed id), ``calibrated`` to which target, or ``assumption``; the README's
    calibration table lists which target fixed which rate."""

    # -- the exchange ----------------------------------------------------------------------------------
    price_grid_points: Annotated[Int, Field(ge=8, le=2000)] = 400  # points of each market's log-price grid (1.4 % apart)
    price_grid_low: Annotated[Num, Field(gt=0.0, lt=1.0)] = 0.1  # grid spans low..high x the starting price
    price_grid_high: Annotated[Num, Field(gt=1.0, le=1000.0)] = 25.0
    price_memory_weeks: Weeks = 13.0  # expected prices (refiners' ore netbacks, project appraisal): EMA span (assumption)
    long_memory_weeks: Weeks = 104.0  # what the market has paid: joint-cost value shares, thrifting reference (assumption)
    outlook_short_weeks: Weeks = 3.0  # supply outlook = supply EMA(short) / EMA(long) (assumption)
    outlook_long_weeks: Weeks = 26.0
    # -- refiners (sellers) ----------------------------------------------------------------------------
    full_cost_markup: Annotated[Num, Field(ge=0.0, le=MAX_RATIO)] = 0.72  # full cost = cash cost x (1 + this): taxes, capital, overheads (calibrated: FACTS C15, P3)
    seller_target_cover_weeks: PosCoverWeeks = 6.0  # oxide stock a plant wants, weeks of sales (assumption)
    seller_stock_elasticity: StockExponent = 1.5  # stock kept ~ (price / reservation)^-this (calibrated: seed F16)
    seller_outlook_response: Exponent = 3.5  # stock wanted x (1 + this x (1 - supply outlook)) (calibrated: seed F16)
    feed_target_weeks: PosCoverWeeks = 4.0  # ore feed stock a plant wants, weeks of processing (assumption)
    ore_bid_share: Frac = 0.5  # a plant bids this share of its netback for ore (calibrated: seed F12 370 sites break even; F14)
    start_orders: Annotated[Int, Field(ge=1, le=256)] = 8  # the start's ore allocation averages this many auction orders (assumption: numerical, not behavioural)
    ore_bid_urgency: Exponent = 0.5  # ... raised by this x its feed shortfall (0-1): a plant short of feed pays more (assumption)
    utilisation_step: Frac = 0.02  # weekly change in utilisation (assumption)
    overstock_ratio: Ratio = 1.5  # a plant slows down when its stock exceeds this x the stock it wants (assumption)
    utilisation_min: Frac = 0.3  # lowest utilisation of an operating plant (assumption)
    sales_memory_weeks: Weeks = 8.0  # EMA span of a seller's expected sales (assumption)
    # a plant processes at most what keeps its feed near its target: its recent ore receipts (EMA over
    # sales_memory_weeks) plus 1/sales_memory_weeks of the gap between its feed and feed_target_weeks of its
    # throughput (off by default: plants plan their capacity and run their opening feed down, which the ore
    # market's calibration rests on; README Known limits, "A calm run does not start fully at rest") (assumption)
    plants_process_within_feed: bool = False
    # -- buyers ----------------------------------------------------------------------------------------
    wtp_share_of_magnet_value: Frac = 0.165  # most a magnet's elements together may cost, share of its value (calibrated: FACTS D5)
    buyer_stock_elasticity: PosExponent = 1.0  # stock wanted ~ (price / expected)^-this (calibrated: FACTS D5)
    buyer_min_cover_weeks: CoverWeeks = 2.0  # safety stock defended at any price below the budget (assumption)
    buyer_max_cover_weeks: PosCoverWeeks = 20.0  # most stock held when prices look cheap (assumption)
    buyer_outlook_response: Exponent = 1.0  # cover wanted x (1 + this x (1 - supply outlook)) (calibrated: FACTS D5)
    buyer_price_memory_weeks: Weeks = 8.0  # the price a buyer expects: EMA span (assumption)
    thrift_rate_per_week: Frac = 0.0025  # content cut per week of high prices, share of base (assumption: FACTS L5 names grain-boundary diffusion, not its pace)
    thrift_trigger_ratio: Ratio = 1.3  # thrift when the recent price exceeds this x the long memory (assumption)
    thrift_irreversible_share: Frac = 0.5  # share of thrifting that stays when prices fall (redesigns; assumption)
    # Dy and Tb both hold a magnet's coercivity: recipes lean toward the cheaper (model/substitution.py)
    coercivity_substitutes: dict[str, Ratio] = Field(default_factory=lambda: {"Dy": 1.0, "Tb": 1.7})  # kg of Dy a kg does the work of (assumption: Tb ~1.5-2x Dy per kg in grain-boundary diffusion, FACTS L5); {} = no substitution
    substitution_elasticity: Exponent = 1.0  # CES elasticity of the Dy/Tb split to their relative price (assumption)
    substitution_rate_per_week: Frac = 0.02  # share of the way a recipe moves to the chosen split each week (assumption: motors re-qualified over months, half-life ~8 months)
    substitution_max_tilt: Annotated[Num, Field(ge=1.0, le=MAX_RATIO)] = 3.0  # a recipe leans at most this x its 2024 split either way (assumption)
    # one rate for every buyer and year, a uniform demand path (model/demand.py; a scenario's demand_path
    # instead gives rates by segment, region and year, and the two are not combined)
    demand_growth_per_year: Annotated[Num, Field(ge=-0.5, le=1.0)] = 0.0  # FACTS B6/R6 give 5-7.5 %/yr; 0 = stationary
    # -- magnet makers (worlds with a magnet stage) -------------------------------------------------------
    maker_full_cost_markup: Annotated[Num, Field(ge=0.0, le=MAX_RATIO)] = 0.2  # magnet full cost = cash cost x (1 + this) (assumption)
    maker_target_cover_weeks: PosCoverWeeks = 8.0  # oxide stock a maker wants, weeks of its use (assumption)
    maker_magnet_cover_weeks: PosCoverWeeks = 4.0  # magnet stock it wants, weeks of sales (assumption)
    maker_restock_weeks: Weeks = 13.0  # closes the gap to its magnet stock over this many weeks (assumption; 4 weeks cycles)
    maker_ramp_up_share: Frac = 0.5  # a plant coming online plans this share of its capacity until its own sales say more (assumption: as a refinery's ramp-up at utilisation 0.5)
    # brownfield expansion (agents/magnet_maker.py, Expansion): a plant adds lines while the sales it expects
    # by the time new lines would run press on its capacity and its magnets' margin over cash cost pays the
    # capital charge of new lines (its spec's expansion capex at private_cost_of_capital over project_life_years)
    maker_expansion_utilisation: Frac = 0.95  # expected sales at this share of capacity (with lines on order) press on it (assumption)
    maker_expansion_trend_weeks: Annotated[Num, Field(gt=8.0, le=520.0)] = 52.0  # EMA span of the long sales memory the sales trend is read against (assumption; must exceed sales_memory_weeks)
    maker_expansion_signal_weeks: Annotated[Int, Field(ge=1, le=520)] = 13  # ... for this many weeks running before it orders (assumption: a quarter's results)
    maker_expansion_step: Annotated[Num, Field(ge=0.0, le=1.0)] = 0.1  # one order adds this share of its capacity; 0 = no expansion (assumption)
    maker_expansion_lead_weeks: Annotated[Int, Field(ge=1, le=1040)] = 52  # new lines come online after this many weeks (FACTS L4: a brownfield retrofit took ~11 months, MP's greenfield 10X ~3 years)
    recycling_weeks: Weeks = 8.0  # swarf goes back to oxide over about this many weeks (FACTS R1: within months)
    recycling_cost_usd_per_kg: UsdPerKg = 6.0  # per kg of oxide recovered from swarf; held while worth less (assumption)
    co_product_disposal_weeks: Annotated[Num, Field(gt=0.0)] = 26.0  # a refiner disposes of a disposable co-product beyond this many weeks of output (assumption; FACTS L6)
    # -- traders and stockholders ----------------------------------------------------------------------
    trader_carry_cost_per_year: RatePerYear = 0.1  # interest, storage and insurance on stock (assumption)
    trader_reversion_weeks: Weeks = 26.0  # half-life of the gap to the normal price traders expect (assumption)
    trader_horizon_weeks: Weeks = 13.0  # how far ahead traders hold (assumption)
    trader_return_band: Ratio = 0.25  # expected excess return at which a trader's room is full (assumption)
    import_margin: RatePerYear = 0.01  # importers' margin over landed cost (assumption)
    import_restock_weeks: Weeks = 6.0  # importers close the gap to their working stock over this (assumption)
    import_max_appetite: Ratio = 2.0  # most working stock an importer seeks when imports look cheap (assumption)
    # importers start with sales of their state's use less what their region's own plants supply, contracts or
    # not (off by default: without contracts they start at their state's whole use; README Known limits)
    # (assumption)
    importers_start_net_of_home_output: bool = False
    # an importing region's cost of supply weights the import cost by the share of its use it imports (its own
    # producers' sales against its need; false: the lower of theirs and importing, whatever share of the use
    # they make, so Lynas's first few tonnes of Dy, ~2 % of ex-China use, took ex-China Dy's cost of supply
    # from ~230 to ~140 USD/kg, no agency bought Dy and Japan's sold its reserve in calm weeks) (assumption)
    cost_of_supply_weights_imports: bool = True
    # traders who carry oxide between markets ship more at once when the spread is wide (agents/trader.py); 0 =
    # only their restocking rule (the default world's calibration); the magnet world sets 10
    arbitrage_response: Annotated[Num, Field(ge=0.0, le=1000.0)] = 0.0  # weeks of its market's use a trader adds to a week's purchases of an oxide per unit of spread (last price where it sells / landed cost - 1, at most 1) (assumption)
    # term contracts: this share of an importing state's weekly use is contracted with its importers at the source
    # market's price x (1 + contract_premium) + export cost, filled from their stock before the spot auction
    # (FACTS P4: most ex-China volume paid China-linked prices in 2025); 0 = every tonne trades spot
    contract_share: Frac = 0.0
    contract_premium: Annotated[Num, Field(ge=0.0, le=1.0)] = 0.05  # over the source price (assumption)
    # -- mines, ore and armed groups -------------------------------------------------------------------
    # ore a site keeps mining into (mine or border yard), weeks of output (calibrated: FACTS C16, the surge on
    # reopening); at least one week, since a site mines into its yard before it sells: a smaller yard would cut
    # every site's output
    ore_stock_max_weeks: Weeks = 12.0
    ore_release_weeks: Weeks = 2.0  # a yard's stock goes out over this many weeks (calibrated: FACTS C16, with the yard size)
    site_entry_rate: Frac = 0.03  # x margin/cost: weekly chance a dormant site opens (calibrated: seed F12, ~220 new sites in ~3.5 yr)
    site_exit_rate: Frac = 0.05  # weekly chance a site under water closes (assumption)
    site_margin_memory_weeks: Weeks = 8.0  # EMA span of the area netback sites watch (assumption)
    levy_price_elasticity: Exponent = 0.5  # levy target ~ (ore price / price at start)^this (assumption; FACTS C12)
    levy_min_ratio: Ratio = 0.5  # levy stays within these multiples of its base (assumption)
    levy_max_ratio: Ratio = 2.0
    levy_adjust_rate: Frac = 0.25  # share of the gap to its target closed each week (assumption)
    road_block_probability: Frac = 0.3  # chance an open road an armed group controls is blocked in a fighting week (assumption)
    road_reopen_probability: Frac = 0.25  # chance a blocked road reopens in a fighting week: blockades last ~4 weeks (assumption)
    # -- China's own rules -----------------------------------------------------------------------------
    china_quota_rule: bool = True  # China moves its quotas to steady domestic prices (FACTS P6)
    china_quota_product: str = "NdPr"  # watched for the light quota (hard-rock mining and its separators)
    china_heavy_quota_product: str = "Dy"  # watched for the heavy quota (ionic-clay mining and separation)
    china_quota_step_per_week: Frac = 0.002  # quota change per week at one band of deviation (assumption)
    china_quota_band: Frac = 0.1  # deviation from the cost of supply China tolerates (assumption)
    china_quota_min: Ratio = 0.7  # quotas stay within these multiples of 2024 (assumption; FACTS B1 for 2024)
    china_quota_max: Ratio = 1.2  # (assumption, as china_quota_min)
    # quota groups whose band moves with the magnet demand China plans for (the band x the demand index): the
    # hard-rock quota grew with demand while the ionic-clay quota stayed flat (FACTS P6)
    china_quota_follows_demand: list[Literal["light", "heavy"]] = Field(default_factory=lambda: ["light"])
    # quota groups whose *separation* quota's band moves up with that demand even where their mining quota's
    # does not (assumption: FACTS P6 holds the ionic-clay *mining* quota flat and brings imported ore under
    # total quantity control; it says nothing of the heavy separation quota, which this lets follow demand
    # upward, never below the mines' flat band). With the heavy separators held at 1.2x 2024 as well, Myanmar
    # ore sat unsold in the yards at 2029's prices while Chinese buyers were 10-14 % short of Dy for a year
    # (demand_growth_aps). Stationary demand: no effect (the index is 1)
    china_separation_follows_demand: list[Literal["light", "heavy"]] = Field(
        default_factory=lambda: ["light", "heavy"])
    # quota groups China steers by the value of a tonne of the group's ore at recent domestic prices against its
    # value at 2024 prices (the margin its mines and separators earned in 2024 over costs that have not moved;
    # FACTS P2, P6) instead of one product's price against the cost of supply: a joint-product basket whose
    # cost of supply is split by prices cannot see a glut of the whole basket (assumption)
    # (none by default: measured, this rule overshoots, README Known limits)
    china_quota_anchored: list[Literal["light", "heavy"]] = Field(default_factory=list)
    # quota groups whose band is centred on the 2024 price's markup over the cost of supply (the ratio at which
    # the starting market is at rest) instead of on the cost itself: the 2024 prices sit 9-12 % above China's
    # plants' output-weighted reservation, at the top of a 10 % band, so the cost-centred rule raises the light
    # quota ~5 % in the first calm weeks (assumption; none by default: measured in README Known limits)
    china_quota_at_2024_markup: list[Literal["light", "heavy"]] = Field(default_factory=list)
    rival_stockpile_trigger_weeks: CoverWeeks = 2.0  # retaliation: rivals' purchases in 4 weeks, weeks of their use (assumption)
    retaliation_products: list[str] = Field(default_factory=lambda: ["Dy", "Tb"])
    retaliation_factor: Frac = 0.5  # licence approvals x this while retaliating (assumption)
    retaliation_weeks: Annotated[Int, Field(ge=0, le=520)] = 13  # how long a retaliation lasts (assumption)
    # -- investment ------------------------------------------------------------------------------------
    private_cost_of_capital: Annotated[Num, Field(ge=0.0, le=1.0)] = 0.15  # assumption
    project_life_years: Annotated[Num, Field(ge=1.0, le=100.0)] = 15.0  # assumption
    project_ore_share_of_value: Frac = 0.45  # ore's share of a plant's revenue in appraisal (seed F14)
    project_review_weeks: Annotated[Int, Field(ge=1, le=52)] = 4  # how often sponsors review their projects (assumption)
    project_cancel_cover: Frac = 0.5  # a project in permitting is cancelled when its cover falls below this share of the cover its decision required (assumption)
    plant_exit_weeks: Annotated[Int, Field(ge=1, le=1040)] = 104  # an operating plant outside China's quota groups closes after this many weeks in a row without feed or with output worth less than its cash cost (assumption)
    # -- observation -----------------------------------------------------------------------------------
    heavy_marker_product: str = "Dy"  # product whose content measures "heavy feed" (FACTS C1)


class World(Strict):
    name: str
    as_of: Date = dt.date(2024, 1, 1)  # the date the world describes
    description: str = ""
    currency_cny_per_usd: Annotated[Num, Field(gt=0.0, le=1e6)] = 7.2
    products: list[ProductSpec]
    regions: list[RegionSpec]
    ore_types: list[OreType]
    states: list[StateSpec]
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]
    miners: list[MinerSpec]
    refiners: list[RefinerSpec]
    traders: list[TraderSpec] = Field(default_factory=list)
    armed_groups: list[ArmedGroupSpec]
    buyers: list[BuyerSpec]
    magnet_makers: list[MagnetMakerSpec] = Field(default_factory=list)
    projects: ProjectsSpec | None = None  # project database files it includes (already merged once loaded)
    behaviour: Behaviour = Field(default_factory=Behaviour)

    @model_validator(mode="after")
    def _references(self) -> World:
        products = [p.name for p in self.products]
        pset = set(products)
        regions = {r.id for r in self.regions}
        states = {s.id for s in self.states}
        nodes = {n.id for n in self.nodes}
        ores = {o.name for o in self.ore_types}
        groups = {g.id for g in self.armed_groups}
        controllers = states | groups
        problems: list[str] = []

        def need(value: str, allowed: set[str], where: str) -> None:
            if value not in allowed:
                problems.append(f"{where}: unknown {value!r}; allowed: {', '.join(sorted(allowed)) or '(none)'}")

        if not products:
            problems.append("products: list at least one product")
        for i, r in enumerate(self.regions):
            if r.imports_from:
                need(r.imports_from, regions, f"regions[{i}].imports_from")
                if r.imports_from == r.id:
                    problems.append(f"regions[{i}].imports_from: a region cannot import from itself")
        for i, o in enumerate(self.ore_types):
            for p in o.basket:
                need(p, pset, f"ore_types[{i}].basket")
        for i, s in enumerate(self.states):
            need(s.region, regions, f"states[{i}].region")
            if s.reserve is not None:
                for p in s.reserve.products:
                    need(p, pset, f"states[{i}].reserve.products")
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
            if m.status == "building" and m.online_date is None:
                problems.append(f"miners[{i}].online_date: a mine that is building needs an online_date")
            if m.sponsor_state:
                need(m.sponsor_state, states, f"miners[{i}].sponsor_state")
            if m.residue_of:
                host = next((r for r in self.refiners if r.id == m.residue_of), None)
                need(m.residue_of, {r.id for r in self.refiners}, f"miners[{i}].residue_of")
                ore = next((o for o in self.ore_types if o.name == m.ore), None)
                both = sorted(p for p in (host.separates if host else []) if ore and ore.basket.get(p, 0.0) > 0)
                if both:
                    problems.append(f"miners[{i}].ore: {m.ore!r} holds {', '.join(both)}, which its plant "
                                    f"{m.residue_of!r} separates; a residue's basket lists only what its plant "
                                    f"leaves unseparated (remove them from the basket)")
        for i, r in enumerate(self.refiners):
            if r.status == "building" and r.online_date is None:
                problems.append(f"refiners[{i}].online_date: a plant that is building needs an online_date")
            need(r.country, states, f"refiners[{i}].country")
            need(r.node, nodes, f"refiners[{i}].node")
            for p in r.separates:
                need(p, pset, f"refiners[{i}].separates")
            for o in r.ores:
                need(o, ores, f"refiners[{i}].ores")
            if r.sponsor_state:
                need(r.sponsor_state, states, f"refiners[{i}].sponsor_state")
        by_state = {s.id: s for s in self.states}
        for i, t in enumerate(self.traders):
            need(t.state, states, f"traders[{i}].state")
            if t.imports and t.state in by_state:
                reg = next((r for r in self.regions if r.id == by_state[t.state].region), None)
                if reg is not None and not reg.imports_from:
                    problems.append(f"traders[{i}].imports: its region {reg.id!r} imports from nowhere; "
                                    f"set regions.imports_from or imports = false")
            if t.exports_to:
                need(t.exports_to, regions, f"traders[{i}].exports_to")
                home = by_state[t.state].region if t.state in by_state else None
                if t.exports_to == home:
                    problems.append(f"traders[{i}].exports_to: {t.exports_to!r} is its own region; name another "
                                    f"market region or remove exports_to")
                if t.imports:
                    problems.append(f"traders[{i}]: a trader either imports or exports; set imports = false or "
                                    f"remove exports_to (make two traders)")
                if t.storage_weeks:
                    problems.append(f"traders[{i}].storage_weeks: an exporter holds stock only to export it; "
                                    f"set 0 (a stockholder is another trader)")
        for i, g in enumerate(self.armed_groups):
            need(g.home_state, states, f"armed_groups[{i}].home_state")
        for i, b in enumerate(self.buyers):
            need(b.state, states, f"buyers[{i}].state")
            for p in (*b.content_kg_per_kg, *b.min_content_frac):
                need(p, pset, f"buyers[{i}].content_kg_per_kg")
        oxides = {p.name for p in self.products if p.stage == "oxide"}
        magnets = {p.name for p in self.products if p.stage == "magnet"}
        for i, p in enumerate(self.products):
            for q in (*p.bill_of_materials, *p.min_content_frac):
                need(q, oxides, f"products[{i}].bill_of_materials")
        for i, o in enumerate(self.ore_types):
            for p in o.basket:
                if p in magnets:
                    problems.append(f"ore_types[{i}].basket: {p!r} is a magnet; ores hold oxides")
        for i, r in enumerate(self.refiners):
            for p in r.separates:
                if p in magnets:
                    problems.append(f"refiners[{i}].separates: {p!r} is a magnet; refiners make oxides "
                                    f"(a magnet_makers entry makes magnets)")
        for i, mk in enumerate(self.magnet_makers):
            need(mk.country, states, f"magnet_makers[{i}].country")
            need(mk.makes, magnets, f"magnet_makers[{i}].makes")
            if mk.status == "building" and mk.online_date is None:
                problems.append(f"magnet_makers[{i}].online_date: a plant that is building needs an online_date")
            if mk.sponsor_state:
                need(mk.sponsor_state, states, f"magnet_makers[{i}].sponsor_state")
            if mk.node:
                need(mk.node, nodes, f"magnet_makers[{i}].node")
        b = self.behaviour
        need(b.china_quota_product, pset, "behaviour.china_quota_product")
        need(b.china_heavy_quota_product, pset, "behaviour.china_heavy_quota_product")
        need(b.heavy_marker_product, pset, "behaviour.heavy_marker_product")
        for p in b.coercivity_substitutes:
            need(p, oxides, "behaviour.coercivity_substitutes")
        for p in b.retaliation_products:
            need(p, pset, "behaviour.retaliation_products")
        if b.levy_min_ratio > b.levy_max_ratio:
            problems.append("behaviour.levy_min_ratio: must be <= levy_max_ratio")
        if b.buyer_min_cover_weeks > b.buyer_max_cover_weeks:
            problems.append("behaviour.buyer_min_cover_weeks: must be <= buyer_max_cover_weeks")
        if self.magnet_makers and b.maker_expansion_trend_weeks <= b.sales_memory_weeks:
            problems.append(f"behaviour.maker_expansion_trend_weeks: must exceed sales_memory_weeks "
                            f"({b.sales_memory_weeks:g}) in a world with magnet makers: their sales trend is read "
                            f"from the gap between the two memories")
        for kind, items in (("products", self.products), ("regions", self.regions), ("miners", self.miners),
                            ("refiners", self.refiners), ("buyers", self.buyers), ("traders", self.traders),
                            ("magnet_makers", self.magnet_makers),
                            ("states", self.states), ("nodes", self.nodes)):
            ids = [getattr(x, "id", getattr(x, "name", None)) for x in items]
            dup = {x for x in ids if ids.count(x) > 1}
            if dup:
                problems.append(f"{kind}: duplicate id(s) {sorted(dup)}")
        if "CN" not in states:
            problems.append("states: the world needs China with id 'CN' (the controlling refiner state)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- lookups ---------------------------------------------------------------------------------------
    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.products)

    @property
    def region_ids(self) -> tuple[str, ...]:
        """Regions in clearing order: a region comes after the region it imports from."""
        order: list[str] = []
        todo = {r.id: r for r in self.regions}
        while todo:
            ready = [rid for rid, r in todo.items() if not r.imports_from or r.imports_from in order]
            if not ready:  # a cycle: keep the file's order for the rest
                ready = list(todo)
            for rid in ready:
                order.append(rid)
                todo.pop(rid)
        return tuple(order)

    def region(self, rid: str) -> RegionSpec:
        return next(r for r in self.regions if r.id == rid)

    def state(self, sid: str) -> StateSpec:
        return next(s for s in self.states if s.id == sid)

    def product(self, name: str) -> ProductSpec:
        return next(x for x in self.products if x.name == name)

    def element_content(self) -> list[list[float]]:
        """Oxide kg in a kg of each product (products x products, both in ``product_names`` order): 1 for an
        oxide itself, a magnet's bill of materials (before thrifting)."""
        names = self.product_names
        return [[1.0 * (e == p.name) if p.stage == "oxide" else p.bill_of_materials.get(e, 0.0) for e in names]
                for p in self.products]

    def ore(self, name: str) -> OreType:
        return next(o for o in self.ore_types if o.name == name)


MAX_FILE_BYTES = 10 * 1024 * 1024  # a world, scenario or spec file is a few hundred kB; refuse anything over 10 MB


def read_text_file(path: str | Path, what: str = "file") -> str:
    """The text of a world, scenario or spec file, or a :class:`ConfigError` that names the file.

    Only a regular file is read (a folder, device such as ``/dev/zero``, pipe or socket is refused before
    any byte is read), at most :data:`MAX_FILE_BYTES` of it, and it must be UTF-8 text (a UTF-8 byte-order
    mark is allowed); the message for other encodings gives the byte offset of the first bad byte.
    """
    if not str(path).strip():
        raise ConfigError(f"{what} path is empty; give the path of a TOML file")
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below refuses it anyway
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a file; give the path of a TOML file") from None
    except (OSError, ValueError) as exc:  # permission denied, a name too long, a NUL byte in the path ...
        raise ConfigError(f"{p}: cannot open: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{p}: is a folder, not a file; give the path of a TOML file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{p}: not a regular file (a device, pipe or socket); give the path of a TOML file")
        if st.st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{p}: too large ({st.st_size:,} bytes); a {what} must be at most "
                              f"{MAX_FILE_BYTES // 2**20} MB")
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        raise ConfigError(f"{p}: too large (over {MAX_FILE_BYTES:,} bytes); a {what} must be at most "
                          f"{MAX_FILE_BYTES // 2**20} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1]
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(f"{p}: not UTF-8 text{hint}: byte {exc.start} is {bad!r}; a {what} must be a "
                          f"UTF-8 text file (save it as UTF-8)") from None


def _read_toml(path: str | Path, what: str = "TOML file") -> dict[str, Any]:
    """Read and parse a TOML file; every way it can be wrong is a :class:`ConfigError` naming the file."""
    text = read_text_file(path, what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits: Python refuses to convert it
        raise ConfigError(f"{path}: not valid TOML: {str(exc).split(';')[0]}") from None
    deep = _too_deep(data)
    if deep is not None:
        raise ConfigError(f"{path}: {deep}: arrays or tables nested more than {MAX_NESTING} deep; no input of "
                          f"ree-abm needs more than a few levels")
    return data


MAX_NESTING = 16  # levels of arrays and tables in an input file (the deepest real input uses 4)


def _too_deep(data: Any) -> str | None:
    """Where a parsed document nests deeper than :data:`MAX_NESTING` (its dotted path), else None; iterative,
    so any depth the TOML parser accepted is measured without recursion."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_NESTING:
            return where or "(top level)"
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, dict | list):
                stack.append((v, f"{where}.{k}" if where else str(k), depth + 1))
    return None


def load_world(path: str | Path = DEFAULT_WORLD, overrides: dict[str, Any] | None = None,
               overrides_source: str = "", named_by: str = "") -> World:
    """Load and validate a world file; ``overrides`` patch it first (dotted keys, see :func:`apply_overrides`).

    A world with a ``[projects]`` table takes entries from its project database files (see
    :class:`ProjectsSpec`): overrides of ``projects.*`` apply first (they choose what is taken), then the
    database's entries are appended to the world's lists, then the other overrides apply, so a database entry
    is addressed by its id like the world's own (``refiners.au_iluka_eneabba.capacity_t_per_week``).

    A problem in the file is reported against the file (``world.toml: miners.3.count: ...``), one in a
    database entry against the database and the entry (``projects_2024.toml: refiners[3].node: ...``); a
    problem an override causes is reported against ``overrides_source`` (the scenario file) with the key as
    written: ``scenario.toml: [overrides] miners.mm_pangwa.count = -3: ...``. A file that cannot be read or
    parsed is reported after ``named_by``, where the world was named (``bad.toml: world = '/dev/zero': ...``).
    """
    if not str(path).strip():
        raise ConfigError("world path is empty; give a world file, e.g. world_2024.toml")
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (DATA_DIR / path).exists():
        path = DATA_DIR / path
    try:
        raw = _read_toml(path, "world file")
    except ConfigError as exc:
        if not named_by:
            raise
        raise ConfigError(f"{named_by}: {exc}") from None
    source = overrides_source or str(path)
    overrides = overrides or {}
    locs: dict[str, tuple[Any, ...]] = {}
    first = {k: v for k, v in overrides.items() if k.split(".")[0] == "projects"}
    rest = {k: v for k, v in overrides.items() if k not in first}
    if first:
        raw = apply_overrides(raw, first, source=source, locs=locs)
    origins: dict[tuple[str, int], str] = {}
    if "projects" in raw:
        try:
            spec = _WithProjects.model_validate(raw).projects
        except ValidationError as exc:
            _raise_world_error(exc, path, source, overrides, locs, origins)
        if spec is not None:
            files_from = source if "projects.files" in first or "projects" in first else str(path)
            raw, origins = _merge_projects(raw, spec, path, files_from)
    if rest:
        raw = apply_overrides(raw, rest, source=source, locs=locs)
    try:
        return World.model_validate(raw)
    except ValidationError as exc:
        _raise_world_error(exc, path, source, overrides, locs, origins)


def _raise_world_error(exc: ValidationError, path: Path, source: str, overrides: dict[str, Any],
                       locs: dict[str, tuple[Any, ...]], origins: dict[tuple[str, int], str]) -> NoReturn:
    if not locs:
        text = format_validation_error(exc, str(path))
    else:
        text = _split_override_errors(exc, str(path), source, overrides, locs)
    raise ConfigError(_name_origins(text, origins)) from None


class _WithProjects(BaseModel):
    """The ``[projects]`` table alone, validated before the database is merged (errors keep their place)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    projects: ProjectsSpec | None = None


# -- project databases ---------------------------------------------------------------------------------
PROJECT_KINDS: dict[str, type[Strict]] = {"miners": MinerSpec, "refiners": RefinerSpec,
                                          "magnet_makers": MagnetMakerSpec}
NETWORK_KINDS: dict[str, type[Strict]] = {"nodes": NodeSpec, "edges": EdgeSpec, "ore_types": OreType}
DATABASE_KEYS = (*PROJECT_KINDS, *NETWORK_KINDS, "description")


def _entry_key(kind: str, item: dict[str, Any]) -> Any:
    """What names a list item: an edge its (src, dst), an ore type its name, the rest their id."""
    if kind == "edges":
        return (item.get("src"), item.get("dst"))
    return item.get("name") if kind == "ore_types" else item.get("id")


def _show_key(kind: str, key: Any) -> str:
    return f"{key[0]!r} -> {key[1]!r}" if kind == "edges" else repr(key)


def database_path(name: str, world_path: str | Path) -> Path:
    """A project database named in a world: beside the world file, else in the shipped data folder."""
    p = Path(name)
    if p.is_absolute():
        return p
    beside = Path(world_path).parent / p
    return beside if beside.exists() or not (DATA_DIR / p).exists() else DATA_DIR / p


def read_project_database(path: str | Path, label: str = "") -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """The entries of one project database file, each ``(index in its list, raw table)`` by kind.

    Every entry must be valid on its own (the same fields and bounds as in a world) and every mine, plant
    and magnet plant must name its ``source``; otherwise a :class:`ConfigError` lists each problem as
    ``label: refiners[3].capacity_t_per_week: ...``. References (nodes, ores, offtakes) are checked when a
    world takes the entries.
    """
    label = label or Path(path).name
    data = _read_toml(path, "project database")
    problems = [f"{label}: {k}: unknown key; a project database holds {', '.join(DATABASE_KEYS)}"
                for k in data if k not in DATABASE_KEYS]
    out: dict[str, list[tuple[int, dict[str, Any]]]] = {k: [] for k in (*PROJECT_KINDS, *NETWORK_KINDS)}
    for kind, cls in {**PROJECT_KINDS, **NETWORK_KINDS}.items():
        items = data.get(kind, [])
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            problems.append(f"{label}: {kind}: must be a list of tables ([[{kind}]])")
            continue
        for j, item in enumerate(items):
            try:
                model = cls.model_validate(item)
            except ValidationError as exc:
                for e in exc.errors():
                    loc, what = _error_line(e)
                    where = f"{kind}[{j}]" if loc == "(top level)" else f"{kind}[{j}].{loc}"
                    problems.append(f"{label}: {where}: {what}")
                continue
            if kind in PROJECT_KINDS and not str(getattr(model, "source", "")).strip():
                problems.append(f"{label}: {kind}[{j}].source: {item.get('id')!r} has no source; a database "
                                f"entry names where its numbers come from (FACTS/seed ids, or 'assumption')")
                continue
            out[kind].append((j, item))
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _same(kind: str, world_item: dict[str, Any], db_item: dict[str, Any], products: set[str]) -> bool:
    """Whether a world's node, edge or ore type agrees with the database's copy (the database's, already
    cut to the world's products: a world may add elements to a basket that the database does not name)."""
    cls = NETWORK_KINDS[kind]
    try:
        mine, theirs = cls.model_validate(world_item), cls.model_validate(db_item)
    except ValidationError:
        return True  # the world's own entry is wrong: World validation reports it against the world
    if kind == "ore_types":
        if not set(mine.basket) <= products:
            return True  # an element the world does not have: World validation names it
        return mine.heavy == theirs.heavy and all(mine.basket.get(p) == v for p, v in theirs.basket.items())
    return mine == theirs


def _merge_projects(raw: dict[str, Any], spec: ProjectsSpec, world_path: Path,
                    files_from: str) -> tuple[dict[str, Any], dict[tuple[str, int], str]]:
    """The world's raw tables with the project databases' entries appended (see :class:`ProjectsSpec`), and
    where each appended entry came from (``(kind, index in the merged list) -> 'file: kind[j]'``)."""
    lists = {k: raw.get(k, []) for k in (*PROJECT_KINDS, *NETWORK_KINDS)}
    if not all(isinstance(v, list) for v in lists.values()) or not isinstance(raw.get("products", []), list):
        return raw, {}  # a malformed world: its own validation says what is wrong
    world_name = world_path.name
    products = {p.get("name") for p in raw.get("products", []) if isinstance(p, dict)}
    own = {k: {_entry_key(k, x): i for i, x in enumerate(v) if isinstance(x, dict)} for k, v in lists.items()}
    own_ids = {key for k in PROJECT_KINDS for key in own[k]}
    problems: list[str] = []
    entries: dict[str, list[tuple[str, int, dict[str, Any]]]] = {k: [] for k in lists}
    seen: dict[tuple[str, Any], tuple[str, int, dict[str, Any]]] = {}
    for name in spec.files:
        path = database_path(name, world_path)
        try:
            db = read_project_database(path, label=name)
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith(f"{name}: ") else
                              f"{files_from}: projects.files: {name!r}: {text}") from None
        for kind, items in db.items():
            for j, item in items:
                key = _entry_key(kind, item)
                if (kind, key) in seen:
                    label, i, other = seen[(kind, key)]
                    if kind in PROJECT_KINDS or other != item:
                        problems.append(f"{kind}: {_show_key(kind, key)} is in {label} ({kind}[{i}]) and in {name} "
                                        f"({kind}[{j}]); keep one")
                    continue
                seen[(kind, key)] = (name, j, item)
                if kind in PROJECT_KINDS and key in own[kind]:
                    problems.append(f"{kind}: id {key!r} is in {world_name} ({kind}[{own[kind][key]}]) and in "
                                    f"{name} ({kind}[{j}]); keep one (a scenario changes a database entry with "
                                    f"an override: {kind}.{key}.<field>)")
                    continue
                if kind in NETWORK_KINDS and key in own[kind]:
                    cut = _cut_basket(item, products) if kind == "ore_types" else item
                    if not _same(kind, lists[kind][own[kind][key]], cut, products):
                        problems.append(f"{name}: {kind}[{j}]: {_show_key(kind, key)} is also in {world_name} "
                                        f"({kind}[{own[kind][key]}]) and differs; make them identical or rename one")
                    continue
                entries[kind].append((name, j, item))
    known = {_entry_key(k, x) for k in PROJECT_KINDS for _, _, x in entries[k]}
    for x in spec.ids:
        if x not in known and x not in own_ids:
            problems.append(f"{files_from}: projects.ids: {x!r} is in no project database of this world "
                            f"({', '.join(spec.files) or 'none named'})")
    if problems:
        raise ConfigError("\n".join(problems))

    statuses, ids = set(spec.statuses), set(spec.ids)
    taken: dict[str, list[tuple[str, int, dict[str, Any]]]] = {k: [] for k in lists}

    def skip(kind: str, label: str, j: int, item: dict[str, Any], why: str) -> None:
        if item.get("id") in ids:
            problems.append(f"{files_from}: projects.ids: {item.get('id')!r} ({label}: {kind}[{j}]) {why}")

    def wanted(kind: str, label: str, j: int, item: dict[str, Any]) -> bool:
        """Whether the world takes a database entry: by status or by id, unless an aggregate of the world
        already counts it."""
        if item.get("status", "operating") not in statuses and item.get("id") not in ids:
            return False
        if item.get("counted_in") in own_ids:
            skip(kind, label, j, item, f"is counted in {item['counted_in']!r}, which {world_name} has")
            return False
        return True

    for label, j, item in entries["refiners"]:
        if not wanted("refiners", label, j, item):
            continue
        separates = [p for p in item.get("separates", []) if p in products]
        if not separates:
            skip("refiners", label, j, item, "separates none of the world's products")
            continue
        taken["refiners"].append((label, j, {**item, "separates": separates}))
    plants = {item["id"] for _, _, item in taken["refiners"]} | set(own["refiners"])
    db_plants = {item.get("id") for _, _, item in entries["refiners"]}
    for label, j, item in entries["miners"]:
        if not wanted("miners", label, j, item):
            continue
        if item.get("offtake") in db_plants and item["offtake"] not in plants:
            skip("miners", label, j, item, f"feeds {item['offtake']!r}, which this world does not take; "
                                           f"name that plant in projects.ids too")
            continue
        if item.get("residue_of") in db_plants and item["residue_of"] not in plants:
            skip("miners", label, j, item, f"is the unseparated stream of {item['residue_of']!r}, which this "
                                           f"world does not take")
            continue
        taken["miners"].append((label, j, item))
    for label, j, item in entries["magnet_makers"]:
        if not wanted("magnet_makers", label, j, item):
            continue
        if item.get("makes") not in products:
            skip("magnet_makers", label, j, item, f"makes {item.get('makes')!r}, which is not a product of the world")
            continue
        taken["magnet_makers"].append((label, j, item))
    if problems:
        raise ConfigError("\n".join(problems))

    # nodes and edges: a taken mine's routes onward and a taken plant's routes in, through the database's own
    # nodes (the world's network takes over at its nodes); ore types: those the taken entries name
    world_nodes = set(own["nodes"])
    db_edges = entries["edges"]
    edges_taken: set[int] = set()
    nodes_taken: set[str] = set()
    for starts, forward in (({x.get("node") for _, _, x in taken["miners"]}, True),
                            ({x.get("node") for _, _, x in taken["refiners"]}, False)):
        stack, visited = sorted(str(n) for n in starts), set()
        while stack:
            n = stack.pop()
            if n in visited:
                continue
            visited.add(n)
            for k, (_, _, e) in enumerate(db_edges):
                a, b = (e.get("src"), e.get("dst")) if forward else (e.get("dst"), e.get("src"))
                if a == n:
                    edges_taken.add(k)
                    if b not in world_nodes:
                        stack.append(b)
        nodes_taken |= visited - world_nodes
    taken["nodes"] = [x for x in entries["nodes"] if x[2].get("id") in nodes_taken]
    taken["edges"] = [x for k, x in enumerate(db_edges) if k in edges_taken]
    ores = ({x.get("ore") for _, _, x in taken["miners"]}
            | {o for _, _, x in taken["refiners"] for o in x.get("ores", [])})
    taken["ore_types"] = [(label, j, _cut_basket(x, products)) for label, j, x in entries["ore_types"]
                          if x.get("name") in ores]

    out = dict(raw)
    origins: dict[tuple[str, int], str] = {}
    for kind in (*NETWORK_KINDS, *PROJECT_KINDS):
        if not taken[kind]:
            continue
        merged = list(lists[kind])
        for label, j, item in taken[kind]:
            origins[(kind, len(merged))] = f"{label}: {kind}[{j}]"
            merged.append(dict(item))
        out[kind] = merged
    return out, origins


def _cut_basket(ore: dict[str, Any], products: set[str]) -> dict[str, Any]:
    basket = ore.get("basket")
    if not isinstance(basket, dict):
        return ore
    return {**ore, "basket": {p: v for p, v in basket.items() if p in products}}


_ORIGIN = re.compile(r"\b(miners|refiners|magnet_makers|nodes|edges|ore_types)(?:\[(\d+)\]|\.(\d+)\b)")


def _name_origins(text: str, origins: dict[tuple[str, int], str]) -> str:
    """A problem in an entry taken from a project database names the database and the entry's place in it
    (``projects_2024.toml: refiners[3]``) instead of its place in the merged list."""
    if not origins:
        return text

    def repl(m: re.Match[str]) -> str:
        at = origins.get((m.group(1), int(m.group(2) or m.group(3))))
        return at if at is not None else m.group(0)

    return _ORIGIN.sub(repl, text)


def _override_line(source: str, key: str, value: Any, problem: str) -> str:
    return f"{source}: [overrides] {key} = {show_value(value)}: {problem}"


def _split_override_errors(err: ValidationError, path: str, source: str, overrides: dict[str, Any],
                           locs: dict[str, tuple[Any, ...]]) -> str:
    """Problems caused by an override are named by the override's key as written; the rest by the world
    file and the field's place in it."""
    def owner(loc: tuple[Any, ...]) -> str | None:
        best = None
        for key, at in locs.items():
            if loc[:len(at)] == at and (best is None or len(at) > len(locs[best])):
                best = key
        return best

    # the world's cross-reference check reports "miners[3].offtake: ..." at the top level
    dotted = {key: at[0] + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at[1:])
              for key, at in locs.items()}
    mine: list[str] = []
    theirs: list[dict[str, Any]] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = owner(loc) if loc else None
        if key is not None:
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key; check the spelling against the documented fields"
            rest = ".".join(str(p) for p in loc[len(locs[key]):])
            mine.append(_override_line(source, key, overrides[key], f"{rest}: {msg}" if rest else msg))
            continue
        if not loc and e["type"] == "value_error":
            parts: list[str] = []  # World._references joins its problems with "; ", as a problem joins "allowed: ..."
            for piece in str(e["msg"]).removeprefix("Value error, ").split("; "):
                if parts and not re.match(r"(?!allowed:)[a-z_]+(\[\d+\])?(\.[a-z_]+)*:", piece):
                    parts[-1] += "; " + piece
                else:
                    parts.append(piece)
            left = []
            for part in parts:
                key = next((k for k, d in dotted.items() if part.startswith(d + ":") or part.startswith(d + " ")), None)
                if key is None:  # a rule between fields ("min_cover: must be <= max_cover") that an override broke
                    key = next((k for k, at in locs.items()
                                if isinstance(at[-1], str) and re.search(rf"\b{re.escape(at[-1])}\b", part)), None)
                    if key is not None:
                        mine.append(_override_line(source, key, overrides[key], part))
                        continue
                if key is not None:
                    mine.append(_override_line(source, key, overrides[key], part[len(dotted[key]):].lstrip(": ")))
                else:
                    left.append(part)
            if not left:
                continue
            e = {**e, "msg": "; ".join(left)}
        theirs.append(e)
    lines = mine
    if theirs:
        lines.append(f"{path} with the [overrides] of {source}: {len(theirs)} problem(s)")
        for e in theirs:
            loc, what = _error_line(e)
            lines.append(f"  {loc}: {what}")
    return "\n".join(lines)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], source: str = "overrides",
                    locs: dict[str, tuple[Any, ...]] | None = None) -> dict[str, Any]:
    """Patch a raw world dict with dotted keys.

    ``behaviour.seller_stock_elasticity = 2`` sets a scalar; ``miners.mm_pangwa.count = 500`` finds the
    list entry whose ``id`` (or ``name`` for products/ore types) matches and sets its field. A key that
    names nothing is a :class:`ConfigError` naming ``source``'s ``[overrides]`` and the key as written;
    ``locs``, if given, receives each key's place in the world (``("miners", 3, "count")``).
    """
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(_override_line(source, key, value, "not a dotted key such as "
                                             "behaviour.full_cost_markup or miners.<id>.count"))
        node: Any = out
        at: list[Any] = []
        for j, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                idx = [i for i, x in enumerate(node) if isinstance(x, dict) and part in (x.get("id"), x.get("name"))]
                if not idx:
                    ids = [str(x.get("id", x.get("name"))) for x in node if isinstance(x, dict)]
                    raise ConfigError(_override_line(source, key, value, f"no entry {part!r} in "
                                                     f"{'.'.join(parts[:j])}; allowed: {', '.join(ids) or '(none)'}"))
                node = node[idx[0]]
                at.append(idx[0])
            elif isinstance(node, dict):
                if part not in node:
                    if part == "behaviour" and j == 0:
                        node[part] = {}
                    else:
                        raise ConfigError(_override_line(source, key, value, f"unknown key {part!r}; "
                                                         f"allowed: {', '.join(sorted(node))}"))
                node = node[part]
                at.append(part)
            else:
                raise ConfigError(_override_line(source, key, value, f"{'.'.join(parts[:j])} is a single "
                                                 "value, not a table"))
        if isinstance(node, list):
            raise ConfigError(_override_line(source, key, value, f"{'.'.join(parts[:-1])} is a list; name an "
                                             f"entry by its id and then a field, e.g. {'.'.join(parts[:-1])}.<id>.{parts[-1]}"))
        if not isinstance(node, dict):
            raise ConfigError(_override_line(source, key, value, "does not name a field"))
        node[parts[-1]] = value
        if locs is not None:
            locs[key] = (*at, parts[-1])
    return out
