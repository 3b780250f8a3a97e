"""The model as one classroom page drives it: start-of-run switches, interventions, errors kept on the page.

:class:`ClassroomModel` is :class:`~model.model.RareEarthModel` with three additions for the page, none of
which changes the model's behaviour:

- its keyword arguments are the page's controls (``scenario_name``, ``seed``, ``setup``), because Mesa's
  Reset rebuilds the model as ``type(model)(**params)``. (The page cannot use the model's ``scenario``
  argument: Mesa 3.5's own ``Model.scenario`` makes SolaraViz pass a ``mesa`` Scenario object there.)
- :meth:`intervene` schedules one of the :data:`INTERVENTIONS` for the next week; it shows in
  ``model.events`` when it takes effect, like any policy. A press is held until the next step, which hands
  it to the model through its commands (``add_policy``, ``end_policy``), so a press withdrawn before then
  leaves no trace and the page never edits the model's timeline or a policy's fields. A press that repeats
  one already made (a double click: the same one-shot twice in a week, a toggle switched on twice) is
  ignored. :meth:`end_item` ends a policy the scenario (or a start-of-run switch) began, the same way.
- :meth:`fund` has a lender fund one planned project of the teacher's choice (a
  :class:`~model.policies.ProjectFinance` scheduled for the next week like any intervention), and
  :attr:`watch` follows every plant and project mine week by week for the map and the project table
  (:mod:`ui.projects`: how long a plant has had no feed, when it came online).
- every line the model logs is also kept in words (:attr:`told`, :mod:`ui.words`): the model's own text is
  matched to the policy that began or ended, so the page can say it with place and country names.
- an exception inside a week is caught, logged and kept in :attr:`error`; the run stops there and the
  page says so, while the server goes on serving every other page.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

from model.model import RareEarthModel
from model.policies import (
    ExportControl,
    Financing,
    MiningHalt,
    ProjectFinance,
    RouteChange,
    Stockpile,
    StockpileRelease,
    TimelineItem,
)
from model.scenario import MAX_SEED, list_scenarios, load_scenario
from ui.policy_controls import SWITCH_NOTE, PolicySetup
from ui.projects import KINDS, Watch
from ui.words import SOURCE_CLASS, SOURCE_SCENARIO, SOURCE_START, Told, Words

log = logging.getLogger(__name__)

_MODEL_DEFAULTS = inspect.signature(RareEarthModel.__init__).parameters
DEFAULT_SCENARIO: str = _MODEL_DEFAULTS["scenario"].default
DEFAULT_SEED: int = _MODEL_DEFAULTS["seed"].default
NOTE = "classroom"  # the note on every item the page schedules


@dataclass(frozen=True)
class StepError:
    week: int
    date: dt.date
    message: str


@dataclass(frozen=True)
class Intervention:
    """A button on the page. ``make`` builds the items to schedule now; a toggle's second press ends them."""

    key: str
    label: str
    undo_label: str | None  # None: a one-shot action
    help: str
    make: Callable[[ClassroomModel], list[TimelineItem]]


def _release(m: ClassroomModel) -> list[TimelineItem]:
    """Order the stock agencies among the release order's states (Japan's JOGMEC reserve is in the world)
    to release their stocks for the order's ``release_weeks``. If none of them has an agency, Japan's
    stockpile agency (FACTS E5) is set up first with its target stock on hand.

    States without an agency are left out of the order: they hold no stock, so ordering them would only
    give each an empty release-only mandate."""
    d = m.date
    default = StockpileRelease(start=d)
    states = [s for s in default.states if m.state_by_id[s].mandate is not None]
    items: list[TimelineItem] = []
    if not states:
        reserve = Stockpile(start=d, note=NOTE)
        items.append(reserve.model_copy(update={"initial_days": reserve.target_days}))
        states = [reserve.actor]
    items.append(StockpileRelease(start=d, end=d + dt.timedelta(weeks=default.release_weeks), states=states,
                                  note=NOTE))
    return items


INTERVENTIONS: tuple[Intervention, ...] = (
    Intervention(
        "border", "Close the Myanmar–China border", "Reopen the Myanmar–China border",
        "China closes every crossing from Myanmar (FACTS C11). Kachin ore must find another way or stop.",
        lambda m: [RouteChange(start=m.date, actor="CN", action="close", between=["MM", "CN"], note=NOTE)]),
    Intervention(
        "licences", "China licenses Dy/Tb exports", "China lifts the Dy/Tb licences",
        "Exports of dysprosium and terbium need a licence, and so do magnets containing them (FACTS D1); few are "
        "approved (seed F18, FACTS D1, D8).",
        # in every form the world has, as the April 2025 list (oxides and, in a world with a magnet stage, the
        # magnets that contain them); on the oxide world the same control as naming the oxides alone
        lambda m: [ExportControl(start=m.date, actor="CN", products=["Dy", "Tb"], forms=["oxide", "magnet"],
                                 mode="licence", note=NOTE)]),
    Intervention(
        "release", "Release stockpiles", None,
        "Japan's and the US's agencies sell their stocks into the market (seed F4 rapid response).",
        _release),
    Intervention(
        "finance", "Finance a Thai refinery", None,
        "JBIC funds the planned NE Thailand refinery at once; it comes online after its build time (seed F23).",
        lambda m: [Financing(start=m.date, actor="JP", lender="JBIC", eligible_hosts=["TH"],
                             selection_deadline_weeks=0, min_cover_ratio=0.0, note=NOTE)]),
    Intervention(
        "halt", "Kachin mining halt (KIA)", "Kachin mining resumes",
        "The Kachin Independence Army stops mining at its sites (seed F15: the halt of February 2025).",
        lambda m: [MiningHalt(start=m.date, actor="KIA", note=NOTE)]),
    Intervention(
        "corridor", "Open the Northern Corridor", "Close the Northern Corridor",
        "Kachin ore may leave through Laos: by rail into China at Boten, or south to Thailand (seed F19-F22).",
        lambda m: [RouteChange(start=m.date, actor="LA", action="open", corridor="northern_corridor", note=NOTE)]),
)
INTERVENTION_BY_KEY = {i.key: i for i in INTERVENTIONS}
# the lenders a teacher may have fund a project of their choice (ClassroomModel.fund), and their states
LENDERS: dict[str, str] = {"US EXIM": "US", "JBIC": "JP"}


def parse_seed(seed: int | str) -> tuple[int, str]:
    """The seed as a non-negative integer, and a notice for the page if the text was not one."""
    try:
        value = int(str(seed).strip())
        if 0 <= value <= MAX_SEED:
            return value, ""
    except ValueError:
        pass
    shown = str(seed)[:40] + ("..." if len(str(seed)) > 40 else "")
    return DEFAULT_SEED, (f"The seed must be a whole number from 0 to {MAX_SEED}; {shown!r} is not, so seed "
                          f"{DEFAULT_SEED} was used.")


def parse_scenario_name(name: object) -> tuple[str, str]:
    """The scenario as one of the shipped names, and a notice for the page if the browser sent another value
    (the page loads shipped scenarios only, never a path)."""
    shipped = list_scenarios()
    if isinstance(name, str) and name in shipped:
        return name, ""
    shown = str(name)[:40] + ("..." if len(str(name)) > 40 else "")
    return DEFAULT_SCENARIO, (f"{shown!r} is not a shipped scenario (choose from {', '.join(shipped)}), so "
                              f"{DEFAULT_SCENARIO} was loaded.")


class ClassroomModel(RareEarthModel):
    """``RareEarthModel`` with the page's controls as keyword arguments (see the module docstring)."""

    def __init__(self, scenario_name: str = DEFAULT_SCENARIO, seed: int | str = DEFAULT_SEED,
                 setup: PolicySetup | None = None):
        scenario_name, scenario_notice = parse_scenario_name(scenario_name)
        spec = load_scenario(scenario_name)
        policies = setup.items(spec.start) if setup is not None else []
        seed_used, seed_notice = parse_seed(seed)
        self.notice = " ".join(x for x in (scenario_notice, seed_notice) if x)
        self.told: list[Told] = []  # every logged line in words (ui.words), in the order logged
        # the start-of-run switches' items as built, before the run changes them (class mode's twin run)
        self.start_items: tuple[TimelineItem, ...] = tuple(p.model_copy(deep=True) for p in policies)
        self._beginning: list[TimelineItem] = []  # the timeline as this week's calendar found it
        self._begun: list[TimelineItem] = []  # of which already told (two items may log the same text)
        self._ending: tuple[TimelineItem, str] | None = None  # the item end_policy is ending, and why
        self._ended_by_class: list[TimelineItem] = []  # scenario items the class ended (end_item)
        super().__init__(scenario=spec, seed=seed_used, policies=policies)
        self.words = Words(self.world)
        self.watch = Watch(self)  # plants and project mines week by week (ui.projects), read after each step
        self.scenario_name = scenario_name
        self.setup_summary = setup.summary() if setup is not None else "none"
        # the scenario's own timeline (not the start-of-run switches): what the run is before the class acts
        self.scripted: list[TimelineItem] = [x for x in self.timeline if x.note != SWITCH_NOTE]
        self.error: StepError | None = None
        self.interventions: dict[str, list[TimelineItem]] = {}  # key -> items of a toggle now on
        self._to_start: list[TimelineItem] = []  # pressed since the last step: added at the next one
        self._to_end: list[TimelineItem] = []  # toggles switched off since the last step: ended at the next one
        self._pressed: dict[str, dt.date] = {}  # one-shot key -> the date it was last pressed (double clicks)
        # Mesa's step wrapper advances the clock before it calls step(); after a failure the clock must
        # stay where the run stopped, and at the horizon once it is reached (a caller may call step() several
        # times in a row: the run must not go past its horizon, issue 15)
        advance = self.step

        def step_unless_failed() -> None:
            if self.error is None and self.running:
                advance()
            self.running = self.running and self.error is None

        self.step = step_unless_failed

    def step(self) -> None:
        """One week; an exception stops the run and is kept for the page instead of escaping."""
        try:
            self._hand_over_presses()
            self._beginning, self._begun = list(self.timeline), []
            super().step()
            self.watch.update(self)
        except Exception as exc:  # noqa: BLE001 - shown on the page; the server must keep serving
            log.exception("week %s of %s (seed %s) failed", int(self.steps), self.scenario_name, self.seed)
            self.error = StepError(int(self.steps), self.date, f"{type(exc).__name__}: {exc}")
            self.running = False

    # -- the event log in words ---------------------------------------------------------------------------
    def log_event(self, text: str) -> None:
        """The model's log line, and the same line in words (:attr:`told`). Wording never stops a week."""
        super().log_event(text)
        try:
            told = self._tell(text)
        except Exception:  # noqa: BLE001 - a sentence that fails is shown as the model wrote it
            log.exception("could not put %r in words", text)
            told = Told(text, "", text[:24], "news", self.date, int(self.steps), text)
        self.told.append(told)

    def end_policy(self, item, why: str = "ends") -> None:
        self._ending = (item, why)
        try:
            super().end_policy(item, why)
        finally:
            self._ending = None

    def source_of(self, item: TimelineItem) -> str:
        """Who put an item in the run: the class (an intervention), a start-of-run switch, or the scenario."""
        if item.note == NOTE or any(x is item for x in self._ended_by_class):
            return SOURCE_CLASS
        return SOURCE_START if item.note == SWITCH_NOTE else SOURCE_SCENARIO

    def _tell(self, text: str) -> Told:
        date, week = self.date, int(self.steps)
        if self._ending is not None:
            item, why = self._ending
            if text == f"{why}: {item.describe()}":
                return self.words.item(item, "ends", why, self.source_of(item), date, week, text)
        for item in self._beginning:  # began this week: left the timeline, logged with its describe()
            if (item.describe() == text and not any(x is item for x in self._begun)
                    and not any(x is item for x in self.timeline)):
                self._begun.append(item)
                source = SOURCE_CLASS if item.note == NOTE else self.source_of(item)
                return self.words.item(item, "begins", "", source, date, week, text)
        return self.words.news(text, date, week)

    def class_changes(self) -> list[Told]:
        """What the class changed in this run, as it took effect (interventions, scenario policies ended)."""
        return [t for t in self.told if t.source == SOURCE_CLASS]

    # -- interventions ------------------------------------------------------------------------------------
    def _hand_over_presses(self) -> None:
        """Give the model what was pressed since the last step, before its week begins (the date is already
        the new week's): toggles switched off end now, as a policy reaching its end date would at stage 1;
        new items are scheduled and begin at stage 1 (their start is the date they were pressed)."""
        ending, self._to_end = self._to_end, []
        starting, self._to_start = self._to_start, []
        for item in ending:
            self.end_policy(item)
        for item in starting:
            self.add_policy(item)

    def is_on(self, key: str) -> bool:
        """Whether a toggle intervention is on (scheduled or in force)."""
        return key in self.interventions

    def intervene(self, key: str, on: bool | None = None) -> list[TimelineItem]:
        """Press an intervention button: schedule its items for the next week, or end a toggle that is on.

        ``on`` is what the pressed button asked for (True: the action, False: its undo; None: toggle).
        A press that asks for what is already so is ignored (returns []): a toggle switched on twice, or a
        one-shot pressed again in the same week, as a double click does. Returns the items scheduled or
        ended. Items start at ``self.date`` and so take effect at the next step (stage 1 of the week),
        which logs them in ``self.events``.
        """
        iv = INTERVENTION_BY_KEY[key]
        toggle = iv.undo_label is not None
        if toggle and on is not None and on == (key in self.interventions):
            return []  # already as asked
        if not toggle and self._pressed.get(key) == self.date:
            return []  # pressed already this week: applied once
        if toggle and key in self.interventions:
            items = self.interventions.pop(key)
            for item in items:
                if any(x is item for x in self._to_start):  # not handed over yet: simply withdraw it
                    self._to_start = [x for x in self._to_start if x is not item]
                else:
                    self._to_end.append(item)  # ends (and is logged) at the next step
            return items
        items = iv.make(self)
        self._to_start.extend(items)
        if toggle:
            self.interventions[key] = items
        else:
            self._pressed[key] = self.date
        return items

    def financeable(self) -> list:
        """Planned projects outside China the class may fund (:meth:`fund`), refineries (with their own
        planned mines) first, then magnet plants, then mines alone; not those already funded for the next step."""
        china = self.region_of_state("CN") if "CN" in self.state_by_id else None
        pending = {x.project for x in self._to_start if isinstance(x, ProjectFinance)}
        out = [p for p in self.projects if p.status == "planned" and p.id not in pending
               and self.region_of_state(p.country) != china]
        return sorted(out, key=lambda p: (KINDS.index(p.kind), p.name))

    def fund(self, project_id: str, lender: str = "US EXIM") -> list[TimelineItem]:
        """Have ``lender`` (one of :data:`LENDERS`) fund a planned project at the next step
        (:class:`~model.policies.ProjectFinance`: permits, then construction, then it comes online). Ignored
        (returns []) unless the project is among :meth:`financeable`: a second press for it in the same week,
        as a double click does, or a project already decided."""
        if project_id not in {p.id for p in self.financeable()}:
            return []
        item = ProjectFinance(start=self.date, actor=LENDERS[lender], lender=lender, project=project_id, note=NOTE)
        self._to_start.append(item)
        return [item]

    def endable(self) -> list[TimelineItem]:
        """Policies in force that the scenario or a start-of-run switch began (the class's own have their
        toggles), not already due to end at the next step."""
        return [x for x in self.active if x.note != NOTE and not any(x is y for y in self._to_end)]

    def end_item(self, item: TimelineItem) -> list[TimelineItem]:
        """End a policy the scenario began, at the next step, through the model's ``end_policy`` (as a toggle
        ends). Ignored (returns []) unless it is in force and not already due to end: a second press."""
        if not any(x is item for x in self.endable()):
            return []
        self._to_end.append(item)
        self._ended_by_class.append(item)
        return [item]

    def pending_told(self) -> list[Told]:
        """What will happen at the next step because of the page (items due to start or end), in words."""
        nxt = self.date + dt.timedelta(weeks=1)
        ending = self._to_end + [i for i in self.active if i.end is not None and i.end < nxt and i.note == NOTE]
        return ([self.words.item(i, "begins", source=SOURCE_CLASS) for i in self._to_start]
                + [self.words.item(i, "ends", source=SOURCE_CLASS) for i in ending])

    def pending(self) -> list[str]:
        """The same as sentences."""
        return [t.text for t in self.pending_told()]
