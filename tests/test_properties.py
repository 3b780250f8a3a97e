"""Issue 3, item 7: random policy timelines and world perturbations keep the runnable-model invariants.

Hypothesis draws (200 examples, one simulated year each):

- a timeline of 0-6 items of any class in ``model.policies.REGISTRY``, every number drawn inside the
  bounds its field declares (``field_specs``), references (states, armed groups, mine areas, corridors,
  route nodes, products) drawn from the world, start dates within the year and end dates after them;
- world perturbations: up to four behaviour rates inside their pydantic bounds (one-sided bounds: the
  default x 0.5-2) and up to four refiner or mine capacities x 0.5-2;
- a seed.

Every example must pass the scenario validator (the generator only draws valid values) and then the
invariants of ``tests/conftest.py::InvariantChecker`` every week, and the finished table must hold
only finite values with positive prices.
"""

from __future__ import annotations

import datetime as dt
import typing

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.model import RareEarthModel
from model.params import PRODUCTS, Behaviour, load_world
from model.policies import REGISTRY, field_specs
from model.scenario import load_scenario

WORLD = load_world("world_2024.toml")
STATES = sorted(s.id for s in WORLD.states)
GROUPS = sorted(g.id for g in WORLD.armed_groups)
MINE_AREAS = sorted(n.id for n in WORLD.nodes if n.kind == "mine_area")
NODES = sorted(n.id for n in WORLD.nodes)
CORRIDORS = sorted({e.corridor for e in WORLD.edges if e.corridor})
EDGES = [[e.src, e.dst] for e in WORLD.edges]
GROUP_ACTORS = {"ConflictEscalation", "SiteSeizure", "MiningHalt"}
YEAR = dt.date(2024, 1, 1)  # the baseline's start; each example runs 52 weeks
WEEKS = 52


def _subset(items: list[str], min_size: int = 0, max_size: int = 4):
    return st.lists(st.sampled_from(items), min_size=min_size, max_size=max_size, unique=True)


def _number(spec: dict, kind: type):
    lo = spec.get("ge", spec.get("gt"))
    hi = spec.get("le", spec.get("lt"))
    default = spec["default"]
    if hi is None:  # one-sided bound: stay near the default
        hi = max(2.0 * default, lo + 1.0) if default else lo + 10.0
    if kind is int:
        return st.integers(int(lo) + ("gt" in spec), int(hi) - ("lt" in spec))
    return st.floats(lo, hi, exclude_min="gt" in spec, exclude_max="lt" in spec, allow_nan=False)


def _field(cls_name: str, name: str, spec: dict):
    """A strategy for one field: world references by name, then by annotation and declared bounds."""
    ann = spec["annotation"]
    if name == "actor":
        return st.sampled_from(GROUPS if cls_name in GROUP_ACTORS else STATES)
    if name in ("states", "compliers", "destinations", "exempt", "eligible_hosts"):
        return _subset(STATES, min_size=1 if name in ("states", "eligible_hosts") else 0)
    if name == "origin":
        return st.sampled_from(STATES)
    if name == "target_controllers":
        return _subset(GROUPS)
    if name == "areas":
        return _subset(MINE_AREAS, min_size=1)
    if name == "lender":
        return st.sampled_from(["US EXIM", "JBIC/JICA", "test lender"])
    if name == "ends":
        return _subset([*REGISTRY, "seed F24", "nothing"], max_size=2)
    if name == "begins":
        return st.lists(st.sampled_from([
            {"type": "RouteChange", "action": "open", "corridor": "northern_corridor"},
            {"type": "RouteChange", "action": "close", "between": ["MM", "CN"]},
            {"type": "Sanction", "compliers": ["JP"], "target_controllers": ["KIA"]},
        ]), max_size=2)
    if name in ("corridor", "between", "edges"):
        return st.just(spec["default"])  # RouteChange: drawn together in _route_targets
    if ann is bool:
        return st.booleans()
    if ann in (int, float):
        return _number(spec, ann)
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is list and args and typing.get_origin(args[0]) is typing.Literal:
        return st.lists(st.sampled_from(typing.get_args(args[0])), min_size=1, unique=True)
    if origin is list and args and args[0] in (PRODUCTS[0].__class__,):
        return st.lists(st.sampled_from([str(p) for p in PRODUCTS]), min_size=1, unique=True)
    if ann is PRODUCTS[0].__class__:
        return st.sampled_from([str(p) for p in PRODUCTS])
    raise AssertionError(f"no strategy for {cls_name}.{name}: {ann!r}; extend tests/test_properties.py")


_route_targets = st.one_of(
    st.fixed_dictionaries({"corridor": st.sampled_from(CORRIDORS)}),
    st.fixed_dictionaries({"between": st.lists(st.sampled_from(STATES), min_size=2, max_size=2, unique=True)}),
    st.fixed_dictionaries({"edges": st.lists(st.sampled_from(EDGES), min_size=1, max_size=3)}),
)


@st.composite
def timeline_item(draw) -> dict:
    cls_name = draw(st.sampled_from(sorted(REGISTRY)))
    specs = field_specs(REGISTRY[cls_name])
    names = draw(st.lists(st.sampled_from(sorted(specs)), unique=True))  # the rest keep their defaults
    item = {"type": cls_name}
    for name in names:
        item[name] = draw(_field(cls_name, name, specs[name]))
    if cls_name == "RouteChange":
        item.update(draw(_route_targets))
    start = YEAR + dt.timedelta(days=draw(st.integers(0, 363)))
    item["start"] = start
    if draw(st.booleans()):
        item["end"] = start + dt.timedelta(weeks=draw(st.integers(1, 52)))
    return item


def _behaviour_value(name: str):
    f = Behaviour.model_fields[name]
    if f.annotation is bool:
        return st.booleans()
    if name == "demand_growth_per_year":  # unbounded in the schema
        return st.floats(-0.05, 0.10)
    spec = {"default": f.default}
    for m in f.metadata:
        for bound in ("ge", "gt", "le", "lt"):
            if getattr(m, bound, None) is not None:
                spec[bound] = getattr(m, bound)
    if "le" not in spec and "lt" not in spec and f.default:  # one-sided: the default x 0.5-2
        return st.floats(0.5 * f.default, 2.0 * f.default)
    return _number(spec, f.annotation)


CAPACITY_KEYS = ([f"refiners.{r.id}.capacity_t_per_week" for r in WORLD.refiners if r.capacity_t_per_week > 0]
                 + [f"miners.{m.id}.capacity_t_per_week" for m in WORLD.miners])
DEFAULT_CAPACITY = {**{f"refiners.{r.id}.capacity_t_per_week": r.capacity_t_per_week for r in WORLD.refiners},
                    **{f"miners.{m.id}.capacity_t_per_week": m.capacity_t_per_week for m in WORLD.miners}}


@st.composite
def perturbation(draw) -> dict:
    out = {}
    for name in draw(st.lists(st.sampled_from(sorted(Behaviour.model_fields)), max_size=4, unique=True)):
        out[f"behaviour.{name}"] = draw(_behaviour_value(name))
    for key in draw(st.lists(st.sampled_from(CAPACITY_KEYS), max_size=4, unique=True)):
        out[key] = DEFAULT_CAPACITY[key] * draw(st.floats(0.5, 2.0))
    return out


BASELINE = load_scenario("baseline")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timeline=st.lists(timeline_item(), max_size=6), overrides=perturbation(), seed=st.integers(0, 2**31 - 1))
def test_random_timelines_and_worlds_keep_the_invariants(invariant_checker, table_checker, timeline, overrides, seed):
    sc = BASELINE.model_copy(update={"name": "property", "weeks": WEEKS, "timeline": timeline})
    sc = sc.with_overrides(overrides)
    sc.check()  # in-bounds values and world references must be accepted
    model = RareEarthModel(sc, seed=seed)
    checker = invariant_checker(model)
    checker.run(WEEKS)
    assert checker.weeks_checked == WEEKS
    table_checker(model.results())
