"""The page's own Step / Play / Reset (issue 15: Play froze a page, and ran past the horizon).

Mesa's SolaraViz stepped the model in one thread and never waited for a redraw to reach the page: with
"Use Threads" a second thread redrew while the first kept stepping, and without it ``force_update()``
returns at once whenever another thread of the same session holds reacton's render lock (the redraw is
left to that thread). Either way the stepping thread ran free of the page: in headless chromium, 4 tabs
with Use Threads showed weeks 6-8, then ~380, then 520; 6 tabs without it, 2 stayed at week 0 until 520.
It also stepped ``render_interval`` weeks per frame whatever remained, so runs went past their horizon.

Here one loop per page (:func:`play_loop`, run in a worker thread of the page's session) repeats: step at
most ``render_interval`` weeks and never past the horizon (:func:`weeks_to_step`), ask for a redraw, and
**wait until the page's tree has rendered that week** (:class:`FrameGate`, opened by an effect of the
dashboard, which runs after the widgets were updated and their messages sent) before the next frame. So a
page never skips more than one frame, the model never runs ahead of what the page shows, and Pause, Reset
and the horizon stop the loop between frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ui.session import ClassroomModel

FRAME_WAIT_S = 0.1  # how often a loop waiting for its frame looks whether it was paused
REDRAW_AGAIN_S = 2.0  # a frame not on the page after this long is asked for again


def weeks_to_step(model: ClassroomModel, interval: int) -> int:
    """How many weeks the next frame steps: ``interval`` (at least 1), never past the horizon, none once the
    run stopped (its horizon, or an error)."""
    if not model.running or model.error is not None:
        return 0
    return max(0, min(max(1, int(interval)), model.weeks - int(model.steps)))


def advance(model: ClassroomModel, interval: int) -> int:
    """Step one frame (see :func:`weeks_to_step`); returns the number of weeks stepped."""
    n = weeks_to_step(model, interval)
    done = 0
    for _ in range(n):
        if not model.running:  # an error inside a week stops the frame there
            break
        model.step()
        done += 1
    return done


class FrameGate:
    """What the page has rendered: the model and week of its last render (the dashboard's effect calls
    :meth:`shown`), so the Play loop can wait for a frame to be on the page before it steps again."""

    def __init__(self) -> None:
        # held while a frame is stepped: Pause takes it, so when the page shows ▶ again it also shows the
        # last week stepped (the model never stands past what the page shows)
        self.stepping = threading.Lock()
        self._cond = threading.Condition()
        self._shown: tuple[ClassroomModel | None, int] = (None, -1)  # (model, week) of the last render

    def shown(self, model: ClassroomModel, week: int) -> None:
        with self._cond:
            self._shown = (model, week)
            self._cond.notify_all()

    def wait_shown(self, model: ClassroomModel, week: int, keep_waiting: Callable[[], bool],
                   timeout: float) -> bool:
        """Wait until the page rendered ``week`` of ``model``; False if ``keep_waiting()`` turned False or
        ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._shown[0] is model and self._shown[1] >= week):
                left = deadline - time.monotonic()
                if left <= 0 or not keep_waiting():
                    return False
                self._cond.wait(min(FRAME_WAIT_S, left))
        return True


def play_loop(model: ClassroomModel, interval: Callable[[], int], pause_s: Callable[[], float],
              redraw: Callable[[], None], gate: FrameGate, keep_playing: Callable[[], bool]) -> str:
    """Play ``model`` until ``keep_playing()`` turns False or the run stops; returns why it ended
    ("paused", "horizon" or "error"). Each frame: step (:func:`advance`), ``redraw()``, wait for the page
    to show the frame (``gate``), pause ``pause_s()`` seconds."""
    while True:
        with gate.stepping:
            if not keep_playing():
                return "paused"
            stepped = advance(model, interval())
        if stepped == 0 or not model.running:
            redraw()
            return "error" if model.error is not None else "horizon"
        week = int(model.steps)
        redraw()
        # a redraw asked for while another thread of the session renders is left to that thread: ask
        # again now and then until the page has shown this week
        while not gate.wait_shown(model, week, keep_playing, REDRAW_AGAIN_S):
            if not keep_playing():
                return "paused"
            redraw()
        time.sleep(max(0.0, pause_s()))
