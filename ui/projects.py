"""Plants and mines by where they stand, as the page shows them: the map's markers and the project table.

The model keeps each project's phase in its pipelines (:mod:`model.projects`: planned, permitting, building,
operating, cancelled; a mine with a reserve is depleted once worked out). The page adds what a class asks
next about a plant that runs: is it still ramping up, and does it get ore at all? A :class:`Watch` reads
the model after every week (the page draws only every few weeks) and keeps, per plant, how many weeks in a
row it has processed (almost) nothing and when it came online; :func:`phase` turns a status and those
into one of the :data:`PHASES`, each with its colour and the words of the map's legend. Nothing here
imports Solara or changes the model.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Phase:
    """How the page shows one phase: its legend words and its marker's fill colour."""

    key: str
    label: str
    colour: str


# the map's legend order (a project's way through its pipeline); colours told apart on a projector, and
# none of them the teal of an unmarked refinery or the brown of a mine area
PHASES: dict[str, Phase] = {p.key: p for p in (
    Phase("planned", "planned", "#ffffff"),
    Phase("permitting", "permitting", "#f5d33b"),
    Phase("building", "building", "#f07d1a"),
    Phase("ramping", "ramping up", "#9dd46b"),
    Phase("operating", "operating", "#1a7f37"),
    Phase("no_feed", "no feed (idle)", "#d62728"),
    Phase("closed", "closed, cancelled, spent", "#9a9a9a"),
)}
KINDS = ("plant", "magnet", "mine")  # facilities and projects, in the order the map's legend and the lists give them
NO_FEED_WEEKS = 3  # a plant with capacity that processed (almost) nothing this many weeks in a row: no feed
IDLE_SHARE = 0.01  # "almost nothing": under this share of its capacity in a week


def phase(status: str, capacity: float = 0.0, idle_weeks: int = 0, ramping: bool = False) -> str:
    """The phase the page shows for a facility (a key of :data:`PHASES`): its pipeline status, and for one
    that operates, whether it has had no feed for :data:`NO_FEED_WEEKS` weeks (capacity but nothing
    processed), or is ramping up after coming online in this run."""
    if status in ("cancelled", "depleted", "closed"):
        return "closed"
    if status in ("planned", "permitting", "building"):
        return status
    if status != "operating":
        raise ValueError(f"unknown status {status!r}")
    if capacity > 0 and idle_weeks >= NO_FEED_WEEKS:
        return "no_feed"
    return "ramping" if ramping else "operating"


@dataclass(frozen=True)
class Facility:
    """One plant or (project) mine as the page shows it this week."""

    id: str
    name: str
    kind: str  # "plant" (a refinery), "magnet" (a magnet plant) or "mine", as a project's kind
    country: str
    node: str
    status: str  # the model's pipeline status
    phase: str  # a key of PHASES
    project: bool  # not simply operating since the run's start (the project table lists these)
    weeks_left: int  # permitting and construction left (0 unless on its way)
    lead_weeks: int  # permitting (x its host's permit factor today) and construction, once decided
    capacity_t: float  # t REO/week it can process (plants) or mine (mines), t of magnets it can make, now
    nameplate_t: float
    utilisation: float  # plants: planned share of capacity; mines and magnet plants: this week's output / capacity
    output_t: float  # this week: ore processed (plants), mined (mines), t REO; magnets made (magnet plants), t
    financed_by: str
    online_week: int | None  # the week it came online in this run (None: not in this run)


def mine_sites(m) -> np.ndarray:
    """Mine sites the page follows one by one: projects, and sites with a reserve that can be worked out."""
    f = m.fleet
    return np.union1d(f.project_site, np.flatnonzero(np.isfinite(f.remaining))).astype(int)


class Watch:
    """What the page needs to remember from week to week about each plant and followed mine (module
    docstring). :meth:`update` runs after every week of the run, before anything is drawn."""

    def __init__(self, m) -> None:
        book, makers = m.refiner_book, m.maker_book
        self.sites = mine_sites(m)
        self.idle = np.zeros(book.n, dtype=int)  # weeks in a row with (almost) nothing processed
        self.maker_idle = np.zeros(makers.n, dtype=int)  # magnet plants: weeks in a row with (almost) nothing made
        self.start_status = {book.ids[i]: book.status[i] for i in range(book.n)}
        self.start_status |= {makers.ids[i]: makers.status[i] for i in range(makers.n)}
        self.start_status |= {self._site_id(m, s): m.miners[int(s)].project_status for s in self.sites}
        self.online_week: dict[str, int] = {}
        b = m.behaviour
        self.ramp_weeks = math.ceil((1.0 - 0.5) / max(b.utilisation_step, 1e-9))  # online at half utilisation

    @staticmethod
    def _site_id(m, site: int) -> str:
        return m.fleet.specs[m.fleet.spec[int(site)]].id

    def update(self, m) -> None:
        """Read the week the model just ran."""
        book = m.refiner_book
        idle = (book.capacity > 0) & (book.processed < IDLE_SHARE * book.capacity)
        self.idle = np.where(idle, self.idle + 1, 0)
        makers = m.maker_book
        if makers.n:
            idle = (makers.capacity > 0) & (makers.made < IDLE_SHARE * makers.capacity)  # t of magnets this week
            self.maker_idle = np.where(idle, self.maker_idle + 1, 0)
        week = int(m.steps)
        for ids, status in ((book.ids, book.status), (makers.ids, makers.status)):
            for i, st in enumerate(status):
                if st == "operating" and self.start_status[ids[i]] != "operating":
                    self.online_week.setdefault(ids[i], week)
        for s in self.sites:
            sid = self._site_id(m, s)
            if m.miners[int(s)].project_status == "operating" and self.start_status[sid] != "operating":
                self.online_week.setdefault(sid, week)

    def ramping(self, m, facility_id: str, utilisation: float) -> bool:
        """The plant (a refinery, or a magnet plant, which plans ``behaviour.maker_ramp_up_share`` of its
        capacity until its sales say more) came online in this run, less than the ramp's length ago, and is not
        yet at full utilisation."""
        since = self.online_week.get(facility_id)
        return since is not None and int(m.steps) - since < self.ramp_weeks and utilisation < 0.999


def facilities(m, watch: Watch) -> list[Facility]:
    """Every refinery, magnet plant and followed mine of the model, as it stands this week."""
    book, f = m.refiner_book, m.fleet
    out = []
    for i, r in enumerate(m.refiners):
        st = book.status[i]
        out.append(Facility(
            r.rid, r.spec.name, "plant", r.country, r.node, st,
            phase(st, float(book.capacity[i]), int(watch.idle[i]), watch.ramping(m, r.rid, float(book.utilisation[i]))),
            watch.start_status[r.rid] != "operating" or st != "operating", book.pipeline.weeks_left(i),
            _lead(m, r.spec, r.country), float(book.capacity[i]), float(book.nameplate[i]),
            float(book.utilisation[i]) if book.capacity[i] > 0 else 0.0, float(book.processed[i]),
            book.financed_by[i], watch.online_week.get(r.rid)))
    makers = m.maker_book
    made = makers.made  # t of magnets made this week, per plant
    for i, spec in enumerate(makers.specs):
        st, cap = makers.status[i], float(makers.capacity[i])
        out.append(Facility(
            spec.id, spec.name, "magnet", spec.country, spec.node, st,
            phase(st, cap, int(watch.maker_idle[i]), watch.ramping(m, spec.id, float(made[i]) / cap if cap > 0 else 0.0)),
            watch.start_status[spec.id] != "operating" or st != "operating", makers.pipeline.weeks_left(i),
            _lead(m, spec, spec.country), cap, float(makers.nameplate[i]),
            float(made[i]) / cap if cap > 0 else 0.0, float(made[i]), makers.pipeline.financed_by[i],
            watch.online_week.get(spec.id)))
    for s in watch.sites:
        miner = m.miners[int(s)]
        spec = miner.spec
        st = miner.project_status
        r = f.project_row.get(int(s))
        cap = float(f.capacity[s]) if st == "operating" else 0.0
        mined = float(f.mined[s])
        out.append(Facility(
            spec.id, spec.name, "mine", spec.country, miner.node, st, phase(st), watch.start_status[spec.id] !=
            "operating" or st != "operating", f.pipeline.weeks_left(r) if r is not None else 0,
            _lead(m, spec, spec.country), cap, float(f.capacity[s]), mined / cap if cap > 0 else 0.0, mined,
            f.pipeline.financed_by[r] if r is not None else "", watch.online_week.get(spec.id)))
    return out


def _lead(m, spec, country: str) -> int:
    """Permitting (x the host's permit factor in force) and construction, once decided (weeks)."""
    return round(spec.permit_weeks * m.rules.lead_time_factor_for(country)) + int(spec.lead_time_weeks)


def online_words(fac: Facility, today: dt.date, week: int) -> str:
    """When it comes (or came) online, for the project table: 'in 87 weeks (Mar 2027)', 'since week 12'."""
    if fac.status in ("permitting", "building"):
        when = today + dt.timedelta(weeks=fac.weeks_left)
        return f"in {fac.weeks_left} weeks ({when.strftime('%b %Y')})"
    if fac.status == "planned":
        return f"{fac.lead_weeks} weeks after it is funded"
    if fac.status == "operating":
        return f"since week {fac.online_week}" if fac.online_week is not None else "at the start"
    return "never" if fac.status == "cancelled" else "-"
