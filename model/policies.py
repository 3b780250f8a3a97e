"""Policies and scripted events: small objects with a lifecycle, written as data in scenario timelines.

Every item has a ``start`` date, an optional ``end``, an acting state (or armed group) and a ``note``
citing the fact it models. The model calls :meth:`begin` once when its start date arrives,
:meth:`apply` every week while it is active (stage 2 of the week, before anyone else acts: it sets
rules), then :meth:`act` (decisions that read those rules) and :meth:`stop` once at its end. A policy changes
*rules* (the rules board, :mod:`model.rules`) or *agents' options* through their named methods and the
model's commands — what a refiner may buy, how many tonnes a destination may import, how long a project
takes, what a stock agency is mandated to do — and never writes another object's fields or an output. The
model knows no policy by name: it asks each active item to act, and no agent checks a policy's class.

Each class is a pydantic model: fields carry bounds and descriptions (the UI builds its controls from
them), ``to_dict``/``from_dict`` round-trip, and :func:`parse_timeline` turns a scenario's
``[[timeline]]`` tables into objects with errors that name the field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError

from agents.state import StockMandate
from model.params import MAX_TONNES, ConfigError, Date, Int, Num, World, format_validation_error
from model.projects import fund_project, select_jointly, start_on_policy
from model.rules import OreBan

if TYPE_CHECKING:
    from model.model import RareEarthModel

Frac = Annotated[Num, Field(ge=0.0, le=1.0)]


class TimelineItem(BaseModel):
    """Base of policies and events."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    start: Date = Field(description="date it takes effect")
    end: Date | None = Field(default=None, description="date it ends (none: to the horizon)")
    actor: str = Field(default="", description="acting state (or armed group for events)")
    note: str = Field(default="", description="the fact it models, e.g. 'seed F18'")

    persistent: ClassVar[bool] = True  # False: a one-shot event (begin only)
    kind: ClassVar[str] = "policy"

    # -- lifecycle ------------------------------------------------------------------------------------
    def begin(self, model: RareEarthModel) -> None:  # noqa: B027 - optional hook
        pass

    def apply(self, model: RareEarthModel) -> None:  # noqa: B027 - optional hook
        pass

    def act(self, model: RareEarthModel) -> None:  # noqa: B027 - optional hook
        """Decisions that need this week's rules in place (called after every policy's ``apply``)."""

    def stop(self, model: RareEarthModel) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> str:
        return f"{self.actor or 'world'}: {type(self).__name__}"

    # -- data -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude_defaults=False)
        return {"type": type(self).__name__, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimelineItem:
        return parse_item(d)

    def notes(self, world: World) -> list[str]:
        """What ``ree check`` should say about this entry in this world without refusing it."""
        return []

    def shares_ground(self, other: TimelineItem) -> bool:
        """Whether ``other`` (same type and actor) can act on what this entry acts on (``ree check`` warns
        about overlapping entries only then)."""
        return True

    def problems(self, world: World) -> list[str]:
        """References to check against the world (states, products, nodes, groups)."""
        out = []
        if self.end is not None and self.end < self.start:
            out.append(f"end ({self.end}) is before start ({self.start})")
        return out


def _states(world: World) -> set[str]:
    return {s.id for s in world.states}


def _products(world: World) -> set[str]:
    return set(world.product_names)


# the rare-earth elements (and Sc, Y): an export control may name any of them, as the official lists do,
# whether or not a world models it (FACTS D1 names Lu and Sc, D9 Ho, Er, Tm, Eu, Yb)
RARE_EARTH_ELEMENTS = frozenset({"La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
                                 "Lu", "Sc", "Y"})


def _need(values, allowed: set[str], field: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    bad = [v for v in values if v not in allowed]
    return [f"{field}: unknown {b!r}; allowed: {', '.join(sorted(allowed))}" for b in bad]


# ================================================================================================ policies
@dataclass(frozen=True, slots=True)
class Licence:
    """Export tonnes approved for one destination: while under review ``until`` is the week the review
    ends; once granted, the week the licence expires. ``tonnes`` is per product; exports use it up (the
    policy replaces a licence by its balance)."""

    until: int
    destination: str
    tonnes: np.ndarray


class ExportControl(TimelineItem):
    """Export ban, quota or licence regime on products leaving the actor's region, per destination state
    (seed F18; FACTS D1 controls of 4 Apr 2025; D3 controlled exports -61 % y/y in May 2025, so about 0.39 of
    the tonnage applied for was approved; D8 19 of 141 EU applications in autumn 2025, a stricter case). It rations *tonnes*: each week the
    rules board gets, per controlled destination and product, the tonnes its importers may buy abroad.

    - **licence**: each week the importers of every controlled destination apply to export what they would
      buy at free trade (their requests of the week before), split into ``applications_per_week``
      applications of equal size per product. After ``delay_weeks`` (the review) each is approved with
      probability ``approval_rate`` x the acting state's licence factor (its retaliation rule), drawn from
      the model's policy stream; approved tonnes may be shipped during ``licence_valid_weeks``, oldest
      licences first. The allowance is the balance of valid licences. With many applications the
      approved share is close to ``approval_rate`` every week, so approval noise does not drive prices.
    - **quota**: ``quota_t_per_week`` of each product to all controlled destinations together, shared in
      proportion to their requests.
    - **ban**: nothing to controlled destinations.

    Destinations not listed (``[]`` = every state with an importer) or exempt ship freely. With ``forms``
    the list names elements and the forms they are controlled in (the 4 April 2025 list covers oxides, metals
    and magnets containing them, FACTS D1): ``products = ["Dy", "Tb"], forms = ["oxide", "magnet"]`` also
    licenses every magnet with Dy or Tb in it. ``leakage`` is the share of the refused tonnage that reaches
    the destination anyway through third countries (re-export via Thailand and others): a documented
    parameter, 0 unless a scenario sets it.
    """

    actor: str = "CN"
    products: list[str] = Field(default_factory=lambda: ["Dy", "Tb"], description="controlled products")
    mode: Literal["licence", "ban", "quota"] = Field(default="licence", description="instrument")
    approval_rate: Frac = Field(default=0.39, description="share of applied tonnage approved (FACTS D3; D8: 0.135)")
    delay_weeks: Annotated[Int, Field(ge=0, le=52)] = Field(default=6, description="licence processing delay")
    applications_per_week: Annotated[Int, Field(ge=1, le=1000)] = Field(
        default=20, description="applications per destination and product each week")
    licence_valid_weeks: Annotated[Int, Field(ge=1, le=104)] = Field(
        default=13, description="weeks an approved licence may be used (assumption)")
    quota_t_per_week: Annotated[Num, Field(ge=0.0, le=MAX_TONNES)] = Field(
        default=0.0, description="export quota (mode quota), t per week, 0 to 1e7")
    destinations: list[str] = Field(default_factory=list, description="controlled destinations ([] = all)")
    exempt: list[str] = Field(default_factory=list, description="destinations exempt from control")
    forms: list[Literal["oxide", "magnet"]] = Field(
        default_factory=list, description="forms covered: [] = the named products only; ['oxide', 'magnet'] = "
                                          "the named elements' oxides and every magnet containing them (FACTS D1)")
    leakage: Frac = Field(default=0.0, description="share of the refused tonnage that still arrives by re-export "
                                                   "through third countries (assumption)")
    refused_end_users: list[Literal["civil", "military"]] = Field(
        default_factory=list, description="end-user classes refused licences (FACTS P7: military from 1 Dec 2025)")

    _pending: list[Licence] = PrivateAttr(default_factory=list)  # approved, still under review (until = due week)
    _licences: list[Licence] = PrivateAttr(default_factory=list)  # valid licences (until = expiry week)
    _allowed: dict[str, np.ndarray] = PrivateAttr(default_factory=dict)  # destination -> last week's allowance

    def describe(self) -> str:
        prods = "/".join(self.products) + (f" ({', '.join(self.forms)})" if self.forms else "")
        to = f" to {', '.join(self.destinations)}" if self.destinations else ""
        if self.mode == "licence":
            return f"{self.actor} requires licences for {prods} exports{to} (approval {self.approval_rate:.0%})"
        if self.mode == "ban":
            return f"{self.actor} bans {prods} exports{to}"
        return f"{self.actor} caps {prods} exports{to} at {self.quota_t_per_week:.0f} t/week"

    def controlled(self, model: RareEarthModel) -> list[str]:
        """Destinations under control: those whose importers buy in the actor's market region (what leaves
        that region), listed ones only if ``destinations`` is given, less exempt ones."""
        reached = model.import_destinations(source=model.region_of_state(self.actor))
        dests = [d for d in self.destinations if d in reached] if self.destinations else reached
        return [d for d in dests if d not in self.exempt and d != self.actor]

    def _mask(self, model: RareEarthModel) -> np.ndarray:
        """The controlled products: those named, and with ``forms``, the named elements in each form listed
        (an element's oxide; any magnet whose bill of materials contains a named element, so that a magnet
        licence also holds back the NdPr inside the magnets)."""
        if not self.forms:
            return np.array([p in self.products for p in model.products], dtype=bool)
        named = set(self.products)
        out = []
        for p in model.products:
            spec = model.world.product(p)
            if spec.stage == "magnet":
                out.append("magnet" in self.forms and (p in named or any(
                    e in named and c > 0 for e, c in spec.bill_of_materials.items())))
            else:
                out.append("oxide" in self.forms and p in named)
        return np.array(out, dtype=bool)

    def apply(self, model: RareEarthModel) -> None:
        now = int(model.steps)
        mask = self._mask(model)
        if not mask.any():  # it names nothing this world models: no licences to draw, nothing to limit
            return
        dests = self.controlled(model)
        if self.mode == "ban":
            allow = {d: np.zeros(mask.size) for d in dests}
        else:
            civil = {d: self._civil_share(model, d) for d in dests}
            if self.mode == "quota":
                req = {d: model.export_requests(d) for d in dests}
                tot = sum(req.values(), np.zeros(mask.size))
                share = {d: np.where(tot > 0, req[d] / np.maximum(tot, 1e-12), 1.0 / max(len(dests), 1))
                         for d in dests}
                allow = {d: self.quota_t_per_week * share[d] * civil[d] for d in dests}
            else:
                allow = self._licence_week(model, now, dests, mask, civil)
        for d in dests:
            for cls in self.refused_end_users:
                model.rules.refuse_end_use(d, cls, mask)
        self._allowed = allow
        if self.leakage > 0:  # part of what is refused still arrives, re-exported through third countries
            allow = {d: allow[d] + self.leakage * np.maximum(model.export_requests(d) - allow[d], 0.0) for d in dests}
        for d in dests:
            model.rules.limit_exports(d, np.where(mask, allow[d], np.inf))

    def stop(self, model: RareEarthModel) -> None:
        """A licence regime that ends leaves its licences in hand and its applications under review to a
        licence control of the same actor that begins the same week (:meth:`begin`)."""
        if self.mode == "licence":
            model.rules.hand_over_licences(self.actor, int(model.steps), (
                self._mask(model), list(self._licences), list(self._pending), dict(self._allowed)))

    def begin(self, model: RareEarthModel) -> None:
        """A change of licence rules does not void what was granted (China's general licences of Dec 2025
        replaced case-by-case review, FACTS P7): a licence control that begins the week another of its actor's
        ended takes over that one's valid licences and applications under review for the products both
        cover, less the share of its destinations' users whose class the new rules refuse. Without it every
        change of rules stopped all controlled exports for ``delay_weeks``."""
        if self.mode != "licence":
            return
        mask = self._mask(model)
        for old_mask, licences, pending, allowed in model.rules.take_over_licences(self.actor, int(model.steps)):
            both = (old_mask & mask).astype(float)
            if not both.any():
                continue
            dests = {x.destination for x in licences + pending} | set(allowed)
            keep = {d: both * self._civil_share(model, d) for d in dests}
            self._licences += [Licence(x.until, x.destination, x.tonnes * keep[x.destination]) for x in licences]
            self._pending += [Licence(x.until, x.destination, x.tonnes * keep[x.destination]) for x in pending]
            for d, a in allowed.items():
                self._allowed[d] = self._allowed.get(d, 0.0) + a * keep[d]

    def _civil_share(self, model: RareEarthModel, destination: str) -> np.ndarray | float:
        """Share of ``destination``'s need of each product held by users whose class is not refused (1 when
        no class is refused): the part of its importers' requests that can be licensed."""
        if not self.refused_end_users:
            return 1.0
        total = model.need_of_state(destination)
        refused = sum((model.need_of_state(destination, end_users=c) for c in self.refused_end_users),
                      np.zeros(total.size))
        return np.where(total > 1e-12, 1.0 - np.minimum(refused / np.maximum(total, 1e-12), 1.0), 1.0)

    def _licence_week(self, model: RareEarthModel, now: int, dests: list[str],
                      mask: np.ndarray, civil: dict[str, np.ndarray | float]) -> dict[str, np.ndarray]:
        # 1. what was shipped last week used the oldest licences first
        for d in dests:
            used = np.minimum(model.exports_last_week(d), self._allowed.get(d, 0.0)) * mask
            kept = []
            for lic in self._licences:
                if lic.destination == d and used.any():
                    take = np.minimum(lic.tonnes, used)
                    lic = Licence(lic.until, d, lic.tonnes - take)
                    used = used - take
                kept.append(lic)
            self._licences = kept
        # 2. licences expire
        self._licences = [lic for lic in self._licences if lic.until > now and lic.tonnes.any()]
        # 3. this week's applications: the importers' requests, reviewed for delay_weeks
        rng = model.streams["policies"]
        rate = min(1.0, self.approval_rate * model.state_by_id[self.actor].licence_factor())
        n = self.applications_per_week
        for d in dests:
            request = model.export_requests(d) * mask * civil[d]  # refused end users' part is not licensed
            approved = rng.binomial(n, rate, size=mask.size) / n * request
            self._pending.append(Licence(now + self.delay_weeks, d, approved))
        # 4. reviewed applications become licences
        due = [x for x in self._pending if x.until <= now]
        self._pending = [x for x in self._pending if x.until > now]
        for x in due:
            self._licences.append(Licence(now + self.licence_valid_weeks, x.destination, x.tonnes))
        return {d: sum((lic.tonnes for lic in self._licences if lic.destination == d), np.zeros(mask.size))
                for d in dests}

    def problems(self, world: World) -> list[str]:
        st = _states(world)
        known = _products(world)
        unmodelled, inside = self._unmodelled(world)
        out = []
        for b in self.products:
            if b in known or b in unmodelled:
                continue
            hint = f"it is part of {inside[b]!r} here, name that; " if b in inside else ""
            out.append(f"products: unknown {b!r}; {hint}allowed: the world's products ({', '.join(sorted(known))}) "
                       f"or a rare-earth element symbol it does not model (noted and skipped)")
        return (super().problems(world) + _need(self.actor, st, "actor") + out
                + _need(self.destinations, st, "destinations") + _need(self.exempt, st, "exempt"))

    def shares_ground(self, other: TimelineItem) -> bool:
        """Two controls meet on a product both name, or on magnets when both cover the magnet form."""
        return bool(set(self.products) & set(getattr(other, "products", []))) or (
            "magnet" in self.forms and "magnet" in getattr(other, "forms", []))

    def _unmodelled(self, world: World) -> tuple[list[str], dict[str, str]]:
        """The listed rare-earth elements the world does not model, and the element symbols that are part
        of a modelled product's name (Nd, Pr -> NdPr), which are not 'unmodelled' but a wrong name. An element
        inside several products' names (Nd in NdPr and NdFeB) is said to be part of the first oxide in the
        world's order, else the first product: read from the world's list, not from a set, whose order
        changes with the interpreter's hash seed."""
        known = _products(world)
        inside: dict[str, str] = {}
        oxides_first = sorted(world.products, key=lambda p: p.stage != "oxide")  # stable: world order kept
        for p in (q.name for q in oxides_first):
            for e in re.findall(r"[A-Z][a-z]?", p):
                if e != p:
                    inside.setdefault(e, p)
        return [p for p in self.products if p not in known and p in RARE_EARTH_ELEMENTS and p not in inside], inside

    def notes(self, world: World) -> list[str]:
        absent = self._unmodelled(world)[0]
        if not absent:
            return []
        return [f"names {', '.join(absent)}, which this world does not model: the control skips "
                f"{'it' if len(absent) == 1 else 'them'} (add the element to the world file to include it)"]


class Sanction(TimelineItem):
    """Sanctions on targeted entities, with exemptions and a list of complying third states (seed F24;
    FACTS E9). Refiners in the imposing and complying states may not buy ore from targeted sites:
    sites run by state- or military-linked enterprises and sites controlled by the listed groups.
    Audited civilian operations are exempt when ``exempt_civilian`` is set."""

    actor: str = "US"
    compliers: list[str] = Field(default_factory=lambda: ["JP", "AU", "EU"],
                                 description="third states that comply")
    origin: str = Field(default="MM", description="targeted country")
    target_state_linked: bool = Field(default=True, description="target state/military-linked enterprises")
    target_controllers: list[str] = Field(default_factory=lambda: ["NDAK"],
                                          description="armed groups whose sites are targeted")
    exempt_civilian: bool = Field(default=True, description="civilian, education and environment exemptions")

    def describe(self) -> str:
        return f"{self.actor} sanctions {self.origin} military-linked flows (complying: {', '.join(self.compliers)})"

    def apply(self, model: RareEarthModel) -> None:
        importers = frozenset([self.actor, *self.compliers])
        if self.target_state_linked:
            model.rules.ore_bans.append(OreBan(importers, self.origin, state_linked_only=True,
                                               exempt_licensed=self.exempt_civilian))
        for g in self.target_controllers:
            model.rules.ore_bans.append(OreBan(importers, self.origin, controller=g,
                                               exempt_licensed=self.exempt_civilian))

    def problems(self, world: World) -> list[str]:
        st = _states(world)
        groups = {g.id for g in world.armed_groups}
        return (super().problems(world) + _need(self.actor, st, "actor") + _need(self.compliers, st, "compliers")
                + _need(self.origin, st, "origin") + _need(self.target_controllers, groups, "target_controllers"))


class ImportBan(TimelineItem):
    """A state bars its refiners from ore of one origin, by whatever route it comes (FACTS C11: China
    closed its Myanmar border posts). Closing border posts alone (``RouteChange``) leaves transit through
    third countries open; this closes that too."""

    actor: str = "CN"
    origin: str = Field(default="MM", description="country whose ore is barred")

    def describe(self) -> str:
        return f"{self.actor} bans ore imports from {self.origin}"

    def apply(self, model: RareEarthModel) -> None:
        model.rules.ore_bans.append(OreBan(frozenset([self.actor]), self.origin))

    def problems(self, world: World) -> list[str]:
        st = _states(world)
        return super().problems(world) + _need(self.actor, st, "actor") + _need(self.origin, st, "origin")


class Traceability(TimelineItem):
    """Only audited flows qualify (seed F25: 'responsible, limited engagement'): refiners in ``states``
    take ore only from licensed, audited sites and pay an audit cost per kg of feed."""

    actor: str = "JP"
    states: list[str] = Field(default_factory=lambda: ["JP"], description="states whose refiners require audits")
    audit_cost_usd_per_kg: Annotated[Num, Field(ge=0.0, le=10.0)] = Field(
        default=0.5, description="audit and logistics-tracing cost per kg ore REO")

    def describe(self) -> str:
        return f"{self.actor}: traceability required for refiners in {', '.join(self.states)}"

    def apply(self, model: RareEarthModel) -> None:
        model.rules.audited_only.update(self.states)
        for s in self.states:
            model.rules.audit_cost[s] = model.rules.audit_cost.get(s, 0.0) + self.audit_cost_usd_per_kg

    def problems(self, world: World) -> list[str]:
        st = _states(world)
        return super().problems(world) + _need(self.actor, st, "actor") + _need(self.states, st, "states")


class Stockpile(TimelineItem):
    """A state's stockpile agency (FACTS E5: JOGMEC 60 days; seed F4 rapid response). It buys toward
    ``target_days`` of its buyers' consumption while the price is below ``buy_below_ratio`` x the market's
    cost of supply and its budget lasts, and releases above ``release_above_ratio`` x that cost, or, with
    ``rapid_response``, as soon as its region's buyers report shortages above ``shortage_trigger``."""

    actor: str = "JP"
    target_days: Annotated[Num, Field(ge=0.0, le=365.0)] = Field(default=60.0, description="target, days of use")
    buy_below_ratio: Annotated[Num, Field(gt=0.0, le=3.0)] = Field(default=1.1, description="buy below x cost of supply")
    release_above_ratio: Annotated[Num, Field(gt=0.0, le=5.0)] = Field(default=1.5, description="release above x cost of supply")
    rapid_response: bool = Field(default=True, description="release on a shortage signal (seed F4)")
    shortage_trigger: Frac = Field(default=0.02, description="regional shortage share that triggers release")
    budget_musd: Annotated[Num, Field(ge=0.0, le=1e5)] = Field(default=500.0, description="purchase budget")
    fill_weeks: Annotated[Num, Field(ge=1.0, le=520.0)] = Field(default=26.0, description="weeks to fill")
    release_weeks: Annotated[Num, Field(ge=1.0, le=104.0)] = Field(default=8.0, description="weeks to empty")
    initial_days: Annotated[Num, Field(ge=0.0, le=365.0)] = Field(default=0.0, description="stock on hand at start")
    products: list[str] = Field(default_factory=list,
                                description="products it holds ([] = every oxide: no finished magnets, FACTS E5)")

    def describe(self) -> str:
        rr = ", rapid response" if self.rapid_response else ""
        return f"{self.actor} stockpiles {self.target_days:.0f} days{rr}"

    def begin(self, model: RareEarthModel) -> None:
        state = model.state_by_id[self.actor]
        md = self.mandate(model)
        state.set_stock_mandate(md, owner=self)
        if self.initial_days > 0:
            state.endow(state.consumption_per_week() * self.initial_days / 7.0 * md.mask)

    def mandate(self, model: RareEarthModel) -> StockMandate:
        """The agency's standing orders (read by the state's agency each week). With no ``products`` listed it
        holds every oxide the world defines and no magnet: JOGMEC and the NDS stock rare metals as oxides and
        metals (FACTS E5, E6), so in a magnet world an agency does not buy finished NdFeB (name it to)."""
        w = model.world
        mask = np.array([p in self.products if self.products else w.product(p).stage == "oxide"
                         for p in model.products], dtype=float)
        return StockMandate(
            target_weeks=self.target_days / 7.0, buy_below_ratio=self.buy_below_ratio,
            release_above_ratio=self.release_above_ratio, fill_weeks=self.fill_weeks,
            release_weeks=self.release_weeks, mask=mask, budget_usd=self.budget_musd * 1e6,
            shortage_trigger=self.shortage_trigger if self.rapid_response else np.inf)

    def stop(self, model: RareEarthModel) -> None:
        model.state_by_id[self.actor].clear_stock_mandate(owner=self)

    def problems(self, world: World) -> list[str]:
        return (super().problems(world) + _need(self.actor, _states(world), "actor")
                + _need(self.products, _products(world), "products"))


class StockpileRelease(TimelineItem):
    """Rapid response ordered now (seed F4): the listed states' agencies release their stocks over
    ``release_weeks`` whatever the price, for as long as the order lasts."""

    kind: ClassVar[str] = "event"
    actor: str = "JP"
    states: list[str] = Field(default_factory=lambda: ["JP", "US"], description="agencies that release")
    release_weeks: Annotated[Num, Field(ge=1.0, le=52.0)] = Field(default=8.0, description="weeks to empty")

    def describe(self) -> str:
        return f"{', '.join(self.states)} release stockpiles (rapid response)"

    def apply(self, model: RareEarthModel) -> None:
        for sid in self.states:
            model.state_by_id[sid].order_release(self.release_weeks)

    def stop(self, model: RareEarthModel) -> None:
        for sid in self.states:
            model.state_by_id[sid].order_release(None)

    def problems(self, world: World) -> list[str]:
        return super().problems(world) + _need(self.states, _states(world), "states")


class Financing(TimelineItem):
    """A lender's facility for projects outside China (seed F3, F5, F23; FACTS E1-E3).

    Selection rule (documented in :func:`model.projects.select_jointly`): at the deadline, the planned
    projects (plants, mines and magnet plants) in eligible host states are appraised on the feed they can secure, ranked by
    expected annual margin / capital charge at the concessional rate, and funded in that order while the
    budget lasts, skipping those whose ratio is below ``min_cover_ratio`` (strategic value lets it accept some
    shortfall). Facilities whose deadlines fall in the same week select jointly and share the projects they
    both fund in proportion to their money left, so the order of the scenario file does not matter. A funded
    project gets the concessional cost of capital and starts permitting at once; capacity arrives after the
    (streamlined) permitting and the construction. The money is disbursed over that time (outputs
    ``finance_committed``, ``finance_spent``, ``finance_stranded``).

    Instruments: a loan, guarantee or equity stake gives the concessional rate; ``offtake`` also
    guarantees the plant's sales at the ex-China price the lender saw at selection (a plant-level
    floor for as long as the facility runs), which removes its price risk."""

    actor: str = "US"
    lender: str = Field(default="US EXIM", description="lending institution")
    budget_musd: Annotated[Num, Field(ge=0.0, le=1e5)] = Field(default=2200.0, description="budget, M USD (seed F5)")
    instruments: list[Literal["loan", "equity", "guarantee", "offtake"]] = Field(
        default_factory=lambda: ["loan", "guarantee"])
    eligible_hosts: list[str] = Field(default_factory=lambda: ["US", "JP", "AU", "MY", "TH", "LA", "VN"])
    selection_deadline_weeks: Annotated[Int, Field(ge=0, le=260)] = Field(default=26, description="seed F3")
    concessional_rate: Annotated[Num, Field(ge=0.0, le=0.3)] = Field(default=0.03, description="cost of capital")
    max_share_of_capex: Frac = Field(default=0.8, description="largest share of a project it funds")
    min_cover_ratio: Annotated[Num, Field(ge=0.0, le=5.0)] = Field(default=0.5)

    _started: int = PrivateAttr(default=0)
    _done: bool = PrivateAttr(default=False)
    _offtake: dict = PrivateAttr(default_factory=dict)
    _committed: float = PrivateAttr(default=0.0)

    @property
    def committed_musd(self) -> float:
        """Money it has committed to the projects it funds (M USD), filled in by the run."""
        return self._committed
    selected: list[str] = Field(default_factory=list, description="filled in by the run")

    def apply(self, model: RareEarthModel) -> None:
        for rid, floor in self._offtake.items():
            model.rules.guarantee(rid, floor)

    def describe(self) -> str:
        return f"{self.lender} opens a US${self.budget_musd:,.0f}M facility (selection within {self.selection_deadline_weeks} weeks)"

    def begin(self, model: RareEarthModel) -> None:
        self._started = int(model.steps)

    def due(self, model: RareEarthModel) -> bool:
        return not self._done and int(model.steps) - self._started >= self.selection_deadline_weeks

    def close_selection(self) -> None:
        """It selects once: at its deadline, alone or jointly with other facilities due that week."""
        self._done = True

    def act(self, model: RareEarthModel) -> None:
        if self.due(model):
            self.select(model)

    def select(self, model: RareEarthModel) -> list[str]:
        """Select now, jointly with every other facility in force whose deadline has come."""
        due = [f for f in model.active if isinstance(f, Financing) and f is not self and f.due(model)]
        group = [self, *due]
        for f in group:
            f.close_selection()
        select_jointly(model, group)
        for f in group:
            if not f.selected:
                model.log_event(f"{f.lender}: no eligible project met the selection rule")
        return self.selected

    def record_selection(self, model: RareEarthModel, project, musd: float) -> None:
        """A project this facility funds (``musd`` of it): selected, and guaranteed its offtake if that is
        among the instruments (the prices its market expected at selection, as a plant-level floor)."""
        self.selected = [*self.selected, project.id]
        self._committed += musd
        if "offtake" in self.instruments and project.kind == "plant":
            self._offtake[project.id] = model.signals.memory[project.agent.home_region].copy()

    def problems(self, world: World) -> list[str]:
        return (super().problems(world) + _need(self.actor, _states(world), "actor")
                + _need(self.eligible_hosts, _states(world), "eligible_hosts"))


class BuildProjects(TimelineItem):
    """Announced projects go ahead (FACTS R7: the IEA's announced-projects case): at ``start`` the sponsors of
    the planned projects named in ``ids`` (empty: every planned project hosted in ``states``; both empty: every
    planned project of the world) start them whatever their appraisal: permits (x any streamlining), then
    construction, with the planned mines that feed them. Nothing else is decided for them: once built, a plant
    still has to win feed and cover its cash cost to run. A project started this way is not cancelled on its
    numbers (its decision required no cover)."""

    persistent: ClassVar[bool] = False
    actor: str = Field(default="", description="deciding state ('' = each project's own sponsor)")
    states: list[str] = Field(default_factory=list, description="host states whose planned projects go ahead")
    ids: list[str] = Field(default_factory=list, description="project ids (plants or mines) that go ahead")

    def describe(self) -> str:
        what = ", ".join(self.ids) if self.ids else (
            f"the planned projects in {', '.join(self.states)}" if self.states else "every planned project")
        return f"{self.actor or 'sponsors'}: go ahead with {what}"

    def chosen(self, model: RareEarthModel) -> list:
        """The planned projects it starts (a companion mine goes with its plant)."""
        out = []
        for p in model.projects:
            if p.status != "planned":
                continue
            named = p.id in self.ids or any(c.id in self.ids for c in p.companions)
            if (self.ids and named) or (not self.ids and (not self.states or p.country in self.states)):
                out.append(p)
        return out

    def begin(self, model: RareEarthModel) -> None:
        for p in self.chosen(model):
            started, weeks = start_on_policy(model, p, financed_by=self.actor)
            if started:
                model.log_event(f"{self.actor or model.state_by_id[p.sponsor].name} starts {p.name} "
                                f"(permits and construction: online in {weeks} weeks)")

    def problems(self, world: World) -> list[str]:
        known = {r.id for r in world.refiners} | {m.id for m in world.miners} | {k.id for k in world.magnet_makers}
        out = super().problems(world) + _need(self.states, _states(world), "states") + _need(self.ids, known, "ids")
        if self.actor:
            out += _need(self.actor, _states(world), "actor")
        return out


class ProjectFinance(TimelineItem):
    """A lender funds one named project at once (seed F23; FACTS E3: EXIM's letters of interest named their
    projects): a state's decision, not a facility's selection, so the project's appraisal is not asked.

    When it begins, a planned plant (with its own planned mines: an integrated project) or a planned mine
    starts permitting, x its host's permit factor, then construction, and comes online after both at half
    utilisation, like any decided project (:func:`model.projects.fund_project`). The lender commits
    ``share_of_capex`` x its capex, disbursed over that time (outputs ``finance_committed``,
    ``finance_spent``), and the project gets ``concessional_rate`` as its cost of capital; its sponsor does
    not cancel it on its numbers. A project no longer planned when it begins is left as it is (the event log
    says so). One-shot: it acts once, at its start."""

    actor: str = "US"
    lender: str = Field(default="US EXIM", description="lending institution")
    project: str = Field(default="th_udon_thani",
                         description="id of a planned plant, mine or magnet plant (a plant is built with its own planned mines)")
    share_of_capex: Frac = Field(default=0.8, description="share of the project's capex it lends")
    concessional_rate: Annotated[Num, Field(ge=0.0, le=0.3)] = Field(default=0.03, description="cost of capital")

    persistent: ClassVar[bool] = False

    def describe(self) -> str:
        return f"{self.lender} funds {self.project} ({self.share_of_capex:.0%} of capex at {self.concessional_rate:.1%})"

    def begin(self, model: RareEarthModel) -> None:
        fund_project(model, self.project, self.lender, self.share_of_capex, self.concessional_rate)

    def problems(self, world: World) -> list[str]:
        planned = sorted({r.id for r in world.refiners if r.status == "planned"}
                         | {m.id for m in world.miners if m.status == "planned"}
                         | {k.id for k in world.magnet_makers if k.status == "planned"})
        out = super().problems(world) + _need(self.actor, _states(world), "actor")
        if self.project not in planned:
            out.append(f"project: {self.project!r} is not a planned plant, mine or magnet plant of this world; allowed: "
                       f"{', '.join(planned) or '(none)'}")
        return out


class PermitStreamlining(TimelineItem):
    """Shorter permitting (seed F4): the permitting time of projects in ``states`` x ``factor``: projects
    decided while it is in force, and the permit time left of those in permitting when it begins.
    Construction is not shortened (a plant or mine already building keeps its schedule)."""

    actor: str = "US"
    states: list[str] = Field(default_factory=lambda: ["US", "JP", "AU"])
    factor: Annotated[Num, Field(gt=0.0, le=1.0)] = Field(default=0.7, description="lead-time multiplier")

    def describe(self) -> str:
        return f"{self.actor}: permitting streamlined in {', '.join(self.states)} (permit times x{self.factor:g})"

    def begin(self, model: RareEarthModel) -> None:
        for p in model.projects:
            if p.country in self.states:
                p.streamline_permits(self.factor)

    def apply(self, model: RareEarthModel) -> None:
        for s in self.states:
            model.rules.lead_time_factor_by_state[s] = min(model.rules.lead_time_factor_by_state.get(s, 1.0),
                                                           self.factor)

    def problems(self, world: World) -> list[str]:
        return super().problems(world) + _need(self.states, _states(world), "states")


class PriceFloor(TimelineItem):
    """A guaranteed minimum price for a product made in ``states``, or by the named ``plants`` alone
    (FACTS E1: the DoD's NdPr floor of US$110/kg for ten years covers MP Materials' output, not every US
    plant). The acting state pays the difference between the floor and the market price on the covered
    plants' sales, so those plants value their output at least at the floor (ore bids, project decisions).
    The payments are recorded as a subsidy (output ``floor_payments``)."""

    actor: str = "US"
    product: str = "NdPr"
    floor_usd_per_kg: Annotated[Num, Field(gt=0.0, le=10000.0)] = Field(default=110.0, description="FACTS E1")
    states: list[str] = Field(default_factory=lambda: ["US"], description="where covered plants are")
    plants: list[str] = Field(default_factory=list,
                              description="refiner ids the floor covers (empty: every plant in `states`)")

    def describe(self) -> str:
        where = ", ".join(self.plants) if self.plants else "plants in " + ", ".join(self.states)
        return f"{self.actor}: {self.product} price floor US${self.floor_usd_per_kg:.0f}/kg for {where}"

    def apply(self, model: RareEarthModel) -> None:
        k = model.products.index(self.product)
        if self.plants:
            floor = np.zeros(len(model.products))
            floor[k] = self.floor_usd_per_kg
            for rid in self.plants:
                model.rules.guarantee(rid, floor)
            return
        for s in self.states:
            floors = model.rules.price_floor.setdefault(s, np.zeros(len(model.products)))
            floors[k] = max(floors[k], self.floor_usd_per_kg)

    def problems(self, world: World) -> list[str]:
        out = (super().problems(world) + _need(self.states, _states(world), "states")
               + _need(self.product, _products(world), "product"))
        plants = {r.id: r.country for r in world.refiners}
        for rid in self.plants:
            if rid not in plants:
                out.append(f"plants: {rid!r} is not a refiner of this world; allowed: {', '.join(sorted(plants))}")
            elif plants[rid] not in self.states:
                out.append(f"plants: {rid!r} is in {plants[rid]}, not in states {self.states}; add "
                           f"{plants[rid]!r} to states or leave the plant out")
        return out


class RouteChange(TimelineItem):
    """Close or open route edges: a border closure (FACTS C11: China closed border posts, late Oct 2024)
    or a new corridor (seed F19-F22). Edges are chosen by corridor label, by (from, to) node ids, or by
    the countries they connect."""

    actor: str = "CN"
    action: Literal["close", "open"] = "close"
    corridor: str = Field(default="", description="corridor label (e.g. 'northern_corridor')")
    between: list[str] = Field(default_factory=list, description="two country ids, e.g. ['MM', 'CN']")
    edges: list[list[str]] = Field(default_factory=list, description="[from, to] node id pairs")

    _ids: list[int] = PrivateAttr(default_factory=list)

    def describe(self) -> str:
        what = self.corridor or (" - ".join(self.between) if self.between else f"{len(self.edges)} edges")
        return f"{self.actor}: {'closes' if self.action == 'close' else 'opens'} {what}"

    def _edge_ids(self, model: RareEarthModel) -> list[int]:
        routes = model.routes
        ids: set[int] = set()
        if self.corridor:
            ids.update(routes.edges_matching(corridor=self.corridor))
        if self.between:
            a, b = self.between
            ids.update(routes.edges_matching(countries=(a, b)))
            ids.update(routes.edges_matching(countries=(b, a)))
        for src, dst in self.edges:
            ids.update(routes.edges_matching(src=src, dst=dst))
        return sorted(ids)

    def begin(self, model: RareEarthModel) -> None:
        self._ids = self._edge_ids(model)
        reason = f"policy:{id(self)}"
        for e in self._ids:
            (model.routes.close if self.action == "close" else model.routes.force_open)(e, reason)

    def stop(self, model: RareEarthModel) -> None:
        reason = f"policy:{id(self)}"
        for e in self._ids:
            (model.routes.reopen if self.action == "close" else model.routes.unforce_open)(e, reason)

    def problems(self, world: World) -> list[str]:
        out = super().problems(world)
        corridors = {e.corridor for e in world.edges if e.corridor}
        if self.corridor:
            out += _need(self.corridor, corridors, "corridor")
        country = {n.id: n.country for n in world.nodes}
        if self.between:
            if len(self.between) != 2:
                out.append("between: give exactly two country ids, e.g. ['MM', 'CN']")
            bad = _need(self.between, _states(world), "between")
            out += bad
            if len(self.between) == 2 and not bad:
                a, b = self.between
                pairs = {(country.get(e.src), country.get(e.dst)) for e in world.edges}
                if (a, b) not in pairs and (b, a) not in pairs:
                    out.append(f"between: no route edge connects {a} and {b} (got {self.between!r}); "
                               f"it would change nothing")
        existing = {(e.src, e.dst) for e in world.edges}
        for k, pair in enumerate(self.edges):
            if len(pair) != 2:
                out.append(f"edges[{k}]: each entry is [from, to] (got {pair!r})")
                continue
            bad = _need(pair, set(country), f"edges[{k}]")
            out += bad
            if not bad and tuple(pair) not in existing:
                leaving = sorted(f"[{e.src!r}, {e.dst!r}]" for e in world.edges if e.src == pair[0])
                out.append(f"edges[{k}]: no route edge from {pair[0]!r} to {pair[1]!r} (got {pair!r}); edges from "
                           f"{pair[0]!r}: {', '.join(leaving) or '(none)'}")
        if not (self.corridor or self.between or self.edges):
            out.append("give corridor, between or edges to say which routes change")
        return out


# ================================================================================================== events
class ConflictEscalation(TimelineItem):
    """An armed group's conflict state is forced to ``level`` until the end date (then it evolves freely)."""

    kind: ClassVar[str] = "event"
    actor: str = "KIA"
    level: Literal["calm", "tense", "fighting"] = "fighting"

    def describe(self) -> str:
        return f"{self.actor}: conflict {self.level}"

    def apply(self, model: RareEarthModel) -> None:
        model.group_by_id[self.actor].force_conflict(self.level)

    def stop(self, model: RareEarthModel) -> None:
        model.group_by_id[self.actor].force_conflict(None)

    def problems(self, world: World) -> list[str]:
        return super().problems(world) + _need(self.actor, {g.id for g in world.armed_groups}, "actor")


class SiteSeizure(TimelineItem):
    """An armed group takes the sites (and the roads out) of mine areas (FACTS C11: KIA took Pangwa on
    19 Oct 2024 and Kanpaiti in Nov 2024). Sites change controller, so levies and sanctions follow."""

    kind: ClassVar[str] = "event"
    persistent: ClassVar[bool] = False
    actor: str = "KIA"
    areas: list[str] = Field(default_factory=lambda: ["pangwa"], description="mine-area node ids")

    def describe(self) -> str:
        return f"{self.actor} seizes {', '.join(self.areas)}"

    def begin(self, model: RareEarthModel) -> None:
        model.seize_areas(self.actor, self.areas)

    def problems(self, world: World) -> list[str]:
        areas = {n.id for n in world.nodes if n.kind == "mine_area"}
        return (super().problems(world) + _need(self.actor, {g.id for g in world.armed_groups}, "actor")
                + _need(self.areas, areas, "areas"))


class MiningHalt(TimelineItem):
    """An armed group (or the state) halts mining at its sites until the end date (seed F15: a halt of
    illegal mining and worse security in Feb 2025; FACTS C11: the KIA halted mining after its capture).
    ``share`` of the group's sites stop (the most expensive first: they are the marginal pits)."""

    kind: ClassVar[str] = "event"
    actor: str = "KIA"
    share: Frac = Field(default=1.0, description="share of the group's sites halted")

    _sites: Any = PrivateAttr(default=None)

    def describe(self) -> str:
        return f"{self.actor} halts mining at {self.share:.0%} of its sites"

    def begin(self, model: RareEarthModel) -> None:
        sites = model.group_sites(self.actor)
        order = np.argsort(-model.fleet.cost[sites], kind="stable")
        self._sites = sites[order[: round(self.share * sites.size)]]

    def apply(self, model: RareEarthModel) -> None:
        model.group_by_id[self.actor].order_halt(self._sites)

    def problems(self, world: World) -> list[str]:
        return super().problems(world) + _need(self.actor, {g.id for g in world.armed_groups}, "actor")


class FloodSeason(TimelineItem):
    """The monsoon stops a share of open-pit leaching sites in the listed areas each year from
    ``from_month`` to ``to_month`` inclusive; a season may run across the new year (11 to 2 is November to
    February). Shipments surge before the rains (FACTS C16)."""

    kind: ClassVar[str] = "event"
    actor: str = "MM"
    areas: list[str] = Field(default_factory=lambda: ["pangwa", "momauk", "kanpaiti"])
    share: Frac = 0.4
    from_month: Annotated[Int, Field(ge=1, le=12)] = 6
    to_month: Annotated[Int, Field(ge=1, le=12)] = 9

    def describe(self) -> str:
        return f"flood season halts {self.share:.0%} of sites in {', '.join(self.areas)} (months {self.from_month}-{self.to_month})"

    def apply(self, model: RareEarthModel) -> None:
        month = model.date.month
        if self.from_month <= self.to_month:
            in_season = self.from_month <= month <= self.to_month
        else:  # across the new year
            in_season = month >= self.from_month or month <= self.to_month
        if not in_season:
            return
        sites = model.sites_in(self.areas)
        rng = model.streams["events"]
        model.flood_sites(sites[rng.random(sites.size) < self.share])

    def problems(self, world: World) -> list[str]:
        # only mine areas have sites; a border or hub listed here would flood nothing
        return super().problems(world) + _need(self.areas, {n.id for n in world.nodes if n.kind == "mine_area"},
                                               "areas")


class Election(TimelineItem):
    """A change of government (seed F26: phased elections from 2025-12-28). At the start date it ends
    the listed policies (by their ``note`` or type name) and begins the listed new ones."""

    kind: ClassVar[str] = "event"
    persistent: ClassVar[bool] = False
    actor: str = "MM"
    ends: list[str] = Field(default_factory=list, description="policies to end (note or type name)")
    begins: list[dict[str, Any]] = Field(default_factory=list, description="policies to start")

    def describe(self) -> str:
        return f"{self.actor}: elections; {len(self.ends)} policies end, {len(self.begins)} begin"

    def begin(self, model: RareEarthModel) -> None:
        for item in list(model.active):
            if item.note in self.ends or type(item).__name__ in self.ends:
                model.end_policy(item, "ends after the election")
        for d in self.begins:
            item = parse_item({**d, "start": d.get("start", model.date)})
            model.add_policy(item)

    def problems(self, world: World) -> list[str]:
        out = super().problems(world)
        for i, d in enumerate(self.begins):
            try:
                out += [f"begins[{i}].{p}" for p in parse_item({**d, "start": d.get("start", self.start)}).problems(world)]
            except ConfigError as exc:
                out.append(f"begins[{i}]: {exc}")
        return out


REGISTRY: dict[str, type[TimelineItem]] = {c.__name__: c for c in (
    ExportControl, Sanction, ImportBan, Traceability, Stockpile, StockpileRelease, Financing, BuildProjects,
    ProjectFinance, PermitStreamlining, PriceFloor, RouteChange,
    ConflictEscalation, SiteSeizure, MiningHalt, FloodSeason, Election)}


def parse_item(d: dict[str, Any], where: str = "timeline entry") -> TimelineItem:
    """Build one policy or event from a dict with a ``type`` key; ConfigError names the bad field."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: must be a table with a 'type' key")
    kind = d.get("type")
    if not isinstance(kind, str) or kind not in REGISTRY:
        raise ConfigError(f"{where}.type: unknown {kind!r}; allowed: {', '.join(REGISTRY)}")
    cls = REGISTRY[kind]
    body = {k: v for k, v in d.items() if k != "type"}
    try:
        return TypeAdapter(cls).validate_python(body)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{where} ({kind})")) from None


def parse_timeline(entries: list[dict[str, Any]], source: str = "") -> list[TimelineItem]:
    """Parse every entry; one ConfigError lists the problems of all bad entries, not just the first."""
    items, problems = [], []
    for i, d in enumerate(entries):
        try:
            items.append(parse_item(d, f"{source}: timeline[{i}]"))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return items


def check_timeline(items: list[TimelineItem], world: World, start: dt.date, end: dt.date,
                   source: str = "") -> None:
    """Every entry against the world and the run: dates inside ``start..end`` (an entry after the horizon
    would never happen), references that exist, and an election's ``ends`` naming a policy that begins
    before it (by note or type name: otherwise it would end nothing)."""
    problems = []
    for i, item in enumerate(items):
        where = f"timeline[{i}] ({type(item).__name__})"
        if not (start <= item.start <= end):
            problems.append(f"{where}.start: {item.start} is outside the run ({start} to {end}); "
                            f"move it inside or change the scenario's start/weeks")
        problems += [f"{where}.{p}" for p in item.problems(world)]
        if isinstance(item, Election):
            for k, d in enumerate(item.begins):
                when = d.get("start", item.start) if isinstance(d, dict) else item.start
                if isinstance(when, dt.date) and not (item.start <= when <= end):
                    problems.append(f"{where}.begins[{k}].start: {when} is outside {item.start} (the election) "
                                    f"to {end} (the end of the run)")
            before = [x for x in items if x is not item and x.start <= item.start]
            names = sorted({x.note for x in before if x.note} | {type(x).__name__ for x in before})
            for k, name in enumerate(item.ends):
                if name not in names:
                    problems.append(f"{where}.ends[{k}]: no policy with note or type {name!r} begins before "
                                    f"the election ({item.start}), so it would end nothing; "
                                    f"allowed: {', '.join(map(repr, names)) or '(none)'}")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


def field_specs(cls: type[TimelineItem]) -> dict[str, dict[str, Any]]:
    """Parameter metadata for UIs: name -> {default, description, ge, le, type}."""
    out = {}
    for name, f in cls.model_fields.items():
        if name in ("start", "end", "note", "selected"):
            continue
        meta = {"default": f.get_default(call_default_factory=True), "description": f.description or "",
                "annotation": f.annotation}
        for m in f.metadata:
            for bound in ("ge", "gt", "le", "lt"):
                if hasattr(m, bound) and getattr(m, bound) is not None:
                    meta[bound] = getattr(m, bound)
        out[name] = meta
    return out
