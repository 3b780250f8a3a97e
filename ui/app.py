"""The classroom page: our own sidebar controls (Step/Play/Reset from :mod:`ui.play`, the weeks per step,
Mesa's scenario and seed inputs, downloads) and the panels of :mod:`ui.panels`.

Each browser page gets its own model and its own policy switches (:func:`Page` builds them per page), so
a class can open the view on many screens from one server. The page does not use SolaraViz's
``ModelController`` (issue 15: its Play loop ran ahead of the page, which then froze until the horizon),
nor the developer's controls of SolaraViz's sidebar (issue 15 item 5): no "Play Interval (ms)" (the pause
between frames is ``ui.config.PLAY_INTERVAL_MS``; drawing takes far longer), no "Use Threads", and the week
and date in words (:func:`ui.panels.RunClock`) instead of "Time: 30.0".
"""

from __future__ import annotations

import os
from collections.abc import Callable

import solara
import solara.server.settings
from mesa.visualization.solara_viz import ModelCreator
from mesa.visualization.utils import force_update, update_counter

from model.scenario import list_scenarios
from ui import classmode
from ui.config import PLAY_INTERVAL_MS, RENDER_INTERVAL, SESSION_KEEP, TITLE
from ui.panels import RunClock, SidebarCards
from ui.play import FrameGate, PageSession, advance_until, play_loop
from ui.policy_controls import PolicySetup
from ui.session import DEFAULT_SCENARIO, DEFAULT_SEED, ClassroomModel

# Solara keeps a page's kernel (its model, its Play loop) for 24 h after its connection drops without the tab's
# close beacon; a class opens and reloads many tabs, so keep it SESSION_KEEP (an explicit setting wins)
if "SOLARA_KERNEL_CULL_TIMEOUT" not in os.environ:
    solara.server.settings.kernel.cull_timeout = SESSION_KEEP
# a render thread writes its websocket frames itself instead of handing each message to the event loop and
# waiting for it there (Solara's option; with many pages the one event loop was a queue every frame waited in)
if "SOLARA_SERVER_SYNC_WS_WRITE" not in os.environ:
    solara.server.settings.server.sync_ws_write = True
# reacton's own faster renderer (opt-in): a render pass skips the subtrees in which nothing changed, instead
# of walking and reconciling every widget of the page (~120) on every frame: ~17 ms a pass instead of ~40
os.environ.setdefault("REACTON_FAST", "1")


def model_params(setup: PolicySetup) -> dict:
    """The model's inputs on the page: every one is a keyword argument of ClassroomModel (Reset rebuilds
    from them)."""
    return {
        "scenario_name": {"type": "Select", "value": DEFAULT_SCENARIO, "values": list_scenarios(),
                          "label": "Scenario (applies with Reset)"},
        "seed": {"type": "InputText", "value": str(DEFAULT_SEED), "label": "Seed, a whole number (applies with Reset)"},
        "setup": setup,  # fixed: this page's policy switches, read at Reset
    }


@solara.component
def WeeksPerStep(render_interval: solara.Reactive[int]):
    """How many weeks Step advances, and Play per frame (the value in the label: Vuetify shows it only while
    dragging)."""
    solara.SliderInt(label=f"Weeks per Step (and per frame of Play): {render_interval.value}", value=render_interval,
                     min=1, max=100, step=2)


@solara.component
def PlayControls(model: solara.Reactive[ClassroomModel], params: solara.Reactive[dict], gate: FrameGate,
                 render_interval: solara.Reactive[int], play_interval: solara.Reactive[int], session: PageSession,
                 stop: Callable[[ClassroomModel], bool] | None = None):
    """Reset, ▶/❚❚ and Step. Play runs :func:`ui.play.play_loop` in a worker thread of this page's session;
    the loop ends by itself at the horizon (or an error), when paused, when the model is replaced, when
    the page's tab closed (``session``), or at the week ``stop`` says (class mode's "pause at the next
    event", which also ends a Step there)."""
    playing = solara.use_reactive(False)
    paused_at = solara.use_reactive(-1)  # the week Play or Step stopped at for an event (-1: none)
    update_counter.get()  # redrawn with every frame: the buttons follow the run (its horizon, an error)
    m = model.value

    def play():
        if not playing.value:
            return
        current = model.value

        def keep_playing() -> bool:
            return not session.closed.is_set() and playing.value and model.value is current

        why = play_loop(current, lambda: render_interval.value, lambda: play_interval.value / 1000, redraw, gate,
                        keep_playing, stop)
        if not session.closed.is_set() and model.value is current:
            paused_at.value = int(current.steps) if why == "event" else -1
            playing.value = False  # paused, or the run ended: the button shows ▶ again

    redraw = solara.use_memo(lambda: session.redraw_with(force_update), [])
    solara.lab.use_task(play, dependencies=[playing.value, m], prefer_threaded=True)

    def do_step():
        with gate.stepping:
            _, stopped = advance_until(model.value, render_interval.value, stop)
        paused_at.value = int(model.value.steps) if stopped else -1
        redraw()

    def do_reset():
        playing.value = False
        paused_at.value = -1
        model.value = type(model.value)(**params.value)

    def do_play_pause():
        with gate.stepping:  # not in the middle of a frame: the render this causes shows where Play stopped
            if not playing.value:
                paused_at.value = -1
            playing.value = not playing.value

    can_step = m.running and m.error is None
    with solara.Row(justify="space-between"):
        solara.Button(label="Reset", color="primary", on_click=do_reset)
        solara.Button(label="❚❚" if playing.value else "▶", color="primary", on_click=do_play_pause,
                      disabled=not can_step and not playing.value)
        solara.Button(label="Step", color="primary", on_click=do_step, disabled=playing.value or not can_step)
    if paused_at.value >= 0 and paused_at.value == int(m.steps) and not playing.value:
        solara.HTML(tag="div", classes=["ree-paused-event"], attributes={"data-week": str(paused_at.value)},
                    unsafe_innerHTML=f"Paused at an event in week {paused_at.value}: see the event log.")


def make_page(model_cls: type[ClassroomModel] = ClassroomModel):
    """The page component for a model class (tests pass a class that fails on purpose): the classroom page,
    or with ``?follow=CODE`` a student's read-only view of a class run (:mod:`ui.classmode`)."""

    @solara.component
    def Page():
        code = classmode.follow_code(solara.use_router().search)
        if code is not None:
            return classmode.FollowPage(code)
        return ClassroomPage()

    @solara.component
    def ClassroomPage():
        setup = solara.use_memo(PolicySetup, [])
        gate = solara.use_memo(FrameGate, [])
        session = solara.use_memo(PageSession, [])
        solara.use_memo(session.attach_to_kernel, [])  # closed with the page's kernel (tab closed, reloaded)
        solara.use_effect(lambda: session.close, [])  # or when the page is unmounted (no kernel: unit tests)
        first = solara.use_memo(lambda: model_cls(DEFAULT_SCENARIO, DEFAULT_SEED, setup), [])
        model = solara.use_reactive(first)
        params = solara.use_reactive({})
        render_interval = solara.use_reactive(RENDER_INTERVAL)
        play_interval = solara.use_reactive(PLAY_INTERVAL_MS)
        pause_at_event = solara.use_reactive(False)
        stop = solara.use_memo(lambda: classmode.event_stop(lambda: pause_at_event.value), [])
        mode = classmode.use_class_mode(session)
        with solara.Column(style={"padding": "0", "gap": "0"}) as main:
            with solara.AppBar():
                solara.AppBarTitle(TITLE)
            with solara.Sidebar(), solara.Column():
                with solara.Card("Run"):
                    RunClock(model)
                    WeeksPerStep(render_interval)
                    classmode.PauseAtEvent(pause_at_event)
                    PlayControls(model, params, gate, render_interval, play_interval, session, stop)
                classmode.ClassCard(mode)
                with solara.Card("Scenario and seed"):
                    ModelCreator(model, model_params(setup), model_parameters=params)
                SidebarCards(setup, model, gate)
            classmode.ClassMain(model, setup, gate, mode)  # the dashboard, or class mode's projector layout
        return main

    return Page


Page = make_page()
