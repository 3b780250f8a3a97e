"""The classroom page: Mesa's SolaraViz (controls, Step/Play/Reset, scenario and seed) and the panels of
:mod:`ui.panels`.

Each browser page gets its own model and its own policy switches (:func:`Page` builds them per page), so
a class can open the view on many screens from one server.
"""

from __future__ import annotations

import solara
from mesa.visualization import SolaraViz

from model.scenario import list_scenarios
from ui.config import PLAY_INTERVAL_MS, RENDER_INTERVAL, TITLE
from ui.panels import Dashboard
from ui.policy_controls import PolicySetup
from ui.session import DEFAULT_SCENARIO, DEFAULT_SEED, ClassroomModel


def model_params(setup: PolicySetup) -> dict:
    """SolaraViz's controls: every one is a keyword argument of ClassroomModel (Reset rebuilds from them)."""
    return {
        "scenario_name": {"type": "Select", "value": DEFAULT_SCENARIO, "values": list_scenarios(),
                          "label": "Scenario (applies with Reset)"},
        "seed": {"type": "InputText", "value": str(DEFAULT_SEED), "label": "Seed, a whole number (applies with Reset)"},
        "setup": setup,  # fixed: this page's policy switches, read at Reset
    }


def make_page(model_cls: type[ClassroomModel] = ClassroomModel):
    """The page component for a model class (tests pass a class that fails on purpose)."""

    @solara.component
    def Page():
        setup = solara.use_memo(PolicySetup, [])
        first = solara.use_memo(lambda: model_cls(DEFAULT_SCENARIO, DEFAULT_SEED, setup), [])
        model = solara.use_reactive(first)
        with solara.Column(style={"padding": "0", "gap": "0"}) as main:
            SolaraViz(model, components=[], model_params=model_params(setup), name=TITLE,
                      play_interval=PLAY_INTERVAL_MS, render_interval=RENDER_INTERVAL)
            Dashboard(model, setup)
        return main

    return Page


Page = make_page()
