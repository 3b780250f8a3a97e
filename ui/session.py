"""The model as one classroom page drives it: start-of-run switches, interventions, errors kept on the page.

:class:`ClassroomModel` is :class:`~model.model.RareEarthModel` with three additions for the page, none of
which changes the model's behaviour:

- its keyword arguments are the page's controls (``scenario_name``, ``seed``, ``setup``), because Mesa's
  Reset rebuilds the model as ``type(model)(**params)``. (The page cannot use the model's ``scenario``
  argument: Mesa 3.5's own ``Model.scenario`` makes SolaraViz pass a ``mesa`` Scenario object there.)
- :meth:`intervene` schedules one of the :data:`INTERVENTIONS` for the next week; it shows in
  ``model.events`` when it takes effect, like any policy. A press is held until the next step, which hands
  it to the model through its commands (``add_policy``, ``end_policy``), so a press withdrawn before then
  leaves no trace and the page never edits the model's timeline or a policy's fields.
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
    RouteChange,
    Stockpile,
    StockpileRelease,
    TimelineItem,
)
from model.scenario import MAX_SEED, list_scenarios, load_scenario
from ui.policy_controls import PolicySetup

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
        "Exports of dysprosium and terbium need a licence; few are approved (seed F18, FACTS D1, D8).",
        lambda m: [ExportControl(start=m.date, actor="CN", products=["Dy", "Tb"], mode="licence", note=NOTE)]),
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
        super().__init__(scenario=spec, seed=seed_used, policies=policies)
        self.scenario_name = scenario_name
        self.setup_summary = setup.summary() if setup is not None else "none"
        self.error: StepError | None = None
        self.interventions: dict[str, list[TimelineItem]] = {}  # key -> items of a toggle now on
        self._to_start: list[TimelineItem] = []  # pressed since the last step: added at the next one
        self._to_end: list[TimelineItem] = []  # toggles switched off since the last step: ended at the next one
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
            super().step()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the server must keep serving
            log.exception("week %s of %s (seed %s) failed", int(self.steps), self.scenario_name, self.seed)
            self.error = StepError(int(self.steps), self.date, f"{type(exc).__name__}: {exc}")
            self.running = False

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

    def intervene(self, key: str) -> list[TimelineItem]:
        """Press an intervention button: schedule its items for the next week, or end a toggle that is on.

        Returns the items scheduled or ended. Items start at ``self.date`` and so take effect at the next
        step (stage 1 of the week), which logs them in ``self.events``.
        """
        iv = INTERVENTION_BY_KEY[key]
        if iv.undo_label is not None and key in self.interventions:
            items = self.interventions.pop(key)
            for item in items:
                if any(x is item for x in self._to_start):  # not handed over yet: simply withdraw it
                    self._to_start = [x for x in self._to_start if x is not item]
                else:
                    self._to_end.append(item)  # ends (and is logged) at the next step
            return items
        items = iv.make(self)
        self._to_start.extend(items)
        if iv.undo_label is not None:
            self.interventions[key] = items
        return items

    def pending(self) -> list[str]:
        """What will happen at the next step because of the page: items due to start or end."""
        nxt = self.date + dt.timedelta(weeks=1)
        out = [f"starts: {i.describe()}" for i in self._to_start]
        out += [f"ends: {i.describe()}" for i in self._to_end]
        out += [f"ends: {i.describe()}" for i in self.active if i.end is not None and i.end < nxt and i.note == NOTE]
        return out
