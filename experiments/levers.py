"""Policy levers: a field of a policy in a scenario's timeline, addressed by name, set like a world override.

Grammar (a sweep's ``[grid]``, ``[sample.ranges]`` or ``[overrides]`` key, a sensitivity parameter, and
the column of that name in :func:`experiments.sweep.load_sweep`)::

    policy.<Type>[<actor>].<field>          policy.Stockpile[US].target_days
    policy.<Type>[<actor>#<n>].<field>      policy.ExportControl[CN#2].approval_rate

``<Type>`` is the entry's ``type`` (a class of :mod:`model.policies`, events included), ``<actor>`` its
``actor`` as the scenario writes it (or the class default when the entry leaves it out), ``<field>`` one
of the class's fields (``start`` and ``end`` too; ``actor``, ``type`` and ``note`` address the entry and
cannot be set). When a scenario has several entries of one type and actor, ``#<n>`` picks the n-th of
them in timeline order, counting from 1; without it such a key is refused, listing the choices.

The pseudo-field ``enabled`` (true/false) keeps or removes the entry: ``policy.Stockpile[US].enabled =
[true, false]`` runs the scenario with and without its US stockpile (the no-policy twin, on the same
seeds). A lever changes an entry that the scenario has; it never adds one (write the entry in the
scenario file, at any value, and sweep it from there). Levers address the top-level timeline only, not
the ``begins`` of an ``Election``.

A lever's value is validated as the scenario file's field would be (bounds, type, dates inside the run),
and the run key (:func:`experiments.sweep.run_key`) covers it, as it covers every override.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from model.params import ConfigError
from model.policies import REGISTRY, parse_item
from model.scenario import Scenario

PREFIX = "policy."
OLD_PREFIX = "policy:"  # the EMA adapter's form, which adds a policy instead of changing one
ENABLED = "enabled"
FIXED = ("type", "actor", "note", "selected")  # they name the entry, describe it or are the run's output
_KEY = re.compile(r"^policy\.(?P<kind>[A-Za-z_]\w*)\[(?P<actor>[^\]#\s]+)(?:#(?P<n>[0-9]+))?\]\.(?P<field>\w+)$")
GRAMMAR = "policy.<Type>[<actor>].<field>, or policy.<Type>[<actor>#<n>].<field> for the n-th of several"

# Which one acts when two entries of one type and actor are in force at once, as the code does it
# (model/policies.py, model/rules.py, agents/state.py). Documented in the README; `ree check` quotes it.
OVERLAP_RULES: dict[str, str] = {
    "Stockpile": "the agency follows one mandate, the one begun last (on the same date, the later in the "
                 "timeline); when it ends, the earlier one rules again with what is left of its own budget",
    "ExportControl": "both act; for each destination and product the tighter weekly allowance holds "
                     "(each draws its own licence approvals)",
    "PriceFloor": "both act; the higher floor holds",
    "PermitStreamlining": "the smaller factor holds for new projects; a project under construction when "
                          "each begins is shortened by each, so the factors multiply for it",
    "Traceability": "both act; their audit costs add up",
    "Sanction": "both act; a refiner may buy ore only if no ban of either blocks it",
    "ImportBan": "both act; a refiner may buy ore only if no ban of either blocks it",
    "Financing": "both act: two facilities, each with its own budget and selection",
    "RouteChange": "both act; an edge stays closed while any closure of it is in force",
    "ConflictEscalation": "the one begun last sets the conflict state while both are in force",
    "MiningHalt": "both act; a site halted by either stops",
    "FloodSeason": "both act, each floods its own random share of sites",
    "StockpileRelease": "the one begun last sets the release speed",
}
DEFAULT_RULE = "both act each week, in the order they began"


@dataclasses.dataclass(frozen=True)
class Lever:
    """A parsed lever key."""

    key: str
    kind: str
    actor: str
    index: int | None  # 1-based among entries of this kind and actor; None: the only one
    field: str

    @property
    def entry(self) -> str:
        """The entry it addresses, e.g. ``Stockpile[US]`` or ``ExportControl[CN#2]``."""
        return f"{self.kind}[{self.actor}{'' if self.index is None else f'#{self.index}'}]"


def is_lever(key: str) -> bool:
    """Whether an override key is meant as a policy lever (the old colon form included, to be refused)."""
    return isinstance(key, str) and (key.startswith(PREFIX) or key.startswith(OLD_PREFIX))


def _actor(entry: dict[str, Any]) -> str:
    """An entry's actor as the run sees it: the file's value, else its class's default."""
    if isinstance(entry.get("actor"), str):
        return entry["actor"]
    cls = REGISTRY.get(entry.get("type", ""))
    return str(cls.model_fields["actor"].default) if cls is not None else ""


def entries(scenario: Scenario) -> list[tuple[str, int]]:
    """Every timeline entry's address (``Stockpile[US]``, or ``Stockpile[US#2]`` when an actor has several
    of one type) and its position in the timeline."""
    seen: dict[tuple[str, str], list[int]] = {}
    for i, d in enumerate(scenario.timeline):
        if isinstance(d, dict) and d.get("type") in REGISTRY:
            seen.setdefault((d["type"], _actor(d)), []).append(i)
    out = []
    for (kind, actor), idx in seen.items():
        for n, i in enumerate(idx, 1):
            out.append((f"{kind}[{actor}{f'#{n}' if len(idx) > 1 else ''}]", i))
    return sorted(out, key=lambda x: x[1])


def available(scenario: Scenario) -> str:
    """The levers a scenario has, for error messages: each entry with its settable fields."""
    rows = []
    for name, i in entries(scenario):
        cls = REGISTRY[scenario.timeline[i]["type"]]
        fields = [f for f in cls.model_fields if f not in FIXED]
        rows.append(f"policy.{name}.{{{', '.join([*fields, ENABLED])}}}")
    return "; ".join(rows) if rows else "(none: the scenario's timeline is empty)"


def parse_lever(key: str, scenario: Scenario) -> tuple[Lever, int]:
    """Parse ``key`` and find its entry in ``scenario``'s timeline: (lever, timeline index). A ConfigError
    names the key and the fix (the grammar, or the levers this scenario has)."""
    where = scenario.source or scenario.name
    if key.startswith(OLD_PREFIX):
        parts = key[len(OLD_PREFIX):].split(":")
        hint = (f"; write {PREFIX}{parts[0]}[{parts[1]}].{parts[2]}" if len(parts) == 3 else "")
        raise ConfigError(f"{key!r}: the colon form adds a policy in the EMA adapter only; a sweep or sensitivity "
                          f"lever changes an entry of the scenario's timeline and is written {GRAMMAR}{hint}. "
                          f"Levers of {where}: {available(scenario)}")
    m = _KEY.match(key)
    if m is None:
        raise ConfigError(f"{key!r}: not a policy lever; write {GRAMMAR}, e.g. policy.Stockpile[US].target_days. "
                          f"Levers of {where}: {available(scenario)}")
    kind, actor, field = m["kind"], m["actor"], m["field"]
    index = int(m["n"]) if m["n"] is not None else None
    lever = Lever(key, kind, actor, index, field)
    if kind not in REGISTRY:
        raise ConfigError(f"{key!r}: unknown policy type {kind!r}; types: {', '.join(REGISTRY)}. "
                          f"Levers of {where}: {available(scenario)}")
    cls = REGISTRY[kind]
    if field in FIXED:
        raise ConfigError(f"{key!r}: {field!r} names the entry and cannot be varied; to run without the entry "
                          f"use policy.{lever.entry}.{ENABLED} = false")
    if field != ENABLED and field not in cls.model_fields:
        fields = [f for f in cls.model_fields if f not in FIXED]
        raise ConfigError(f"{key!r}: {kind} has no field {field!r}; its fields: {', '.join([*fields, ENABLED])}")
    matches = [i for i, d in enumerate(scenario.timeline)
               if isinstance(d, dict) and d.get("type") == kind and _actor(d) == actor]
    if not matches:
        raise ConfigError(f"{key!r}: {where} has no {kind} entry with actor {actor!r} (a lever changes an entry "
                          f"the scenario has; add one to its timeline to sweep it). Levers of {where}: "
                          f"{available(scenario)}")
    if index is None and len(matches) > 1:
        choices = ", ".join(f"policy.{kind}[{actor}#{n}].{field} (timeline[{i}], from "
                            f"{scenario.timeline[i].get('start')})" for n, i in enumerate(matches, 1))
        raise ConfigError(f"{key!r}: {where} has {len(matches)} {kind} entries with actor {actor!r}; say which: "
                          f"{choices}")
    if index is not None and not 1 <= index <= len(matches):
        raise ConfigError(f"{key!r}: #{index} is out of range; {where} has {len(matches)} {kind} "
                          f"entr{'y' if len(matches) == 1 else 'ies'} with actor {actor!r} (#1"
                          f"{f' to #{len(matches)}' if len(matches) > 1 else ''})")
    return lever, matches[0 if index is None else index - 1]


def split(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(levers, world overrides) of a dict of overrides."""
    lev = {k: v for k, v in overrides.items() if is_lever(k)}
    return lev, {k: v for k, v in overrides.items() if k not in lev}


def _enabled(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{key} = {value!r}: must be true or false (false runs the scenario without this entry)")


def apply_levers(scenario: Scenario, overrides: Mapping[str, Any]) -> tuple[Scenario, dict[str, Any]]:
    """The scenario with every lever in ``overrides`` set in its timeline, and the remaining (world)
    overrides. Each changed entry is validated as in a scenario file (ConfigError naming the key)."""
    levers, world = split(overrides)
    if not levers:
        return scenario, world
    from model.policies import parse_item

    timeline = [dict(d) if isinstance(d, dict) else d for d in scenario.timeline]
    drop: set[int] = set()
    touched: dict[int, list[str]] = {}
    for key, value in levers.items():
        lever, i = parse_lever(key, scenario)
        if lever.field == ENABLED:
            if not _enabled(key, value):
                drop.add(i)
            continue
        if isinstance(value, str) and lever.field in ("start", "end"):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"{key} = {value!r}: not a date; write YYYY-MM-DD") from None
        timeline[i][lever.field] = value
        touched.setdefault(i, []).append(f"{key} = {value!r}")
    for i, keys in touched.items():
        try:
            parse_item(timeline[i], f"{' and '.join(keys)}: timeline[{i}]")
        except ConfigError as exc:
            raise ConfigError(f"{scenario.source or scenario.name}: {exc}") from None
    timeline = [d for i, d in enumerate(timeline) if i not in drop]
    return scenario.model_copy(update={"timeline": timeline}), world


def without(scenario: Scenario, entry: str) -> Scenario:
    """The scenario with one timeline entry removed (its no-policy twin): ``entry`` is ``Stockpile[US]``
    or ``ExportControl[CN#2]`` (the lever grammar without ``policy.`` and the field)."""
    key = f"{PREFIX}{entry.removeprefix(PREFIX)}.{ENABLED}"
    if "[" not in entry or not entry.endswith("]"):
        raise ConfigError(f"without {entry!r}: name a timeline entry as Type[actor] or Type[actor#n], e.g. "
                          f"Stockpile[US]; entries of {scenario.source or scenario.name}: "
                          f"{', '.join(n for n, _ in entries(scenario)) or '(none)'}")
    try:
        twin, _ = apply_levers(scenario, {key: False})
    except ConfigError as exc:
        raise ConfigError(f"without {entry!r}: {str(exc).removeprefix(f'{key!r}: ')}") from None
    return twin.model_copy(update={"name": f"{scenario.name} without {entry.removeprefix(PREFIX)}"})


POLICIES = "policies"  # --without policies: every policy entry of the timeline (events stay)


def without_policies(scenario: Scenario) -> Scenario:
    """The scenario's no-policy twin: every timeline entry that is a policy removed, its scripted events
    (halts, elections, floods) kept, so the twin lives through the same shocks on the same seeds."""
    kept = [d for i, kind, item in _entries(scenario) if item.kind != "policy" for d in [scenario.timeline[i]]]
    if len(kept) == len(scenario.timeline):
        raise ConfigError(f"{scenario.source or scenario.name}: has no policy in its timeline, so it has no "
                          f"no-policy twin; give a second scenario to compare it with")
    return scenario.model_copy(update={"timeline": kept, "name": f"{scenario.name} without its policies"})


# --------------------------------------------------------------------------------------------- overlaps
def _entries(scenario: Scenario):
    """``(i, type, item)`` for each timeline entry that parses (the scenario's own check reports the others)."""
    for i, d in enumerate(scenario.timeline):
        try:
            item = parse_item(d)
        except ConfigError:
            continue
        yield i, d["type"], item


def notes(scenario: Scenario) -> list[str]:
    """Non-fatal remarks of the timeline's entries on the scenario's world (e.g. a control list naming an
    element the world does not model), as ``timeline[i] Type: remark``."""
    world = scenario.load_world()
    return [f"timeline[{i}] {kind} {r}" for i, kind, item in _entries(scenario) for r in item.notes(world)]


def overlaps(scenario: Scenario) -> list[str]:
    """Warnings for two timeline entries of one type and actor in force at the same time, each with the
    rule that decides what happens (:data:`OVERLAP_RULES`). One-shot events never overlap."""
    end = scenario.end
    ordinal = {i: name for name, i in entries(scenario)}
    items = [(i, kind, item.actor, item.start, item.end or end, item) for i, kind, item in _entries(scenario)
             if item.persistent]
    out = []
    for a, (i, kind, actor, s1, e1, x) in enumerate(items):
        for j, kind2, actor2, s2, e2, y in items[a + 1:]:
            if kind == kind2 and actor == actor2 and s1 < e2 and s2 < e1 and x.shares_ground(y):
                out.append(f"timeline[{i}] and timeline[{j}] are both {kind} of {actor} from {max(s1, s2)} to "
                           f"{min(e1, e2)}: {OVERLAP_RULES.get(kind, DEFAULT_RULE)} (as levers: "
                           f"policy.{ordinal[i]}.<field>, policy.{ordinal[j]}.<field>)")
    return out
