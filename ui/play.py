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

A page's :class:`PageSession` closes with its Solara kernel (the tab closed or reloaded: Solara's close
beacon; or a dropped connection after ``ui.config.SESSION_KEEP``), which stops its loop between frames too;
:data:`STATUS` counts pages and loops for tests and benchmarks.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ui.session import ClassroomModel

log = logging.getLogger(__name__)
STATUS_FILE_ENV = "REE_STATUS_FILE"  # tests: where the server writes :data:`STATUS` (JSON) when it changes
FRAME_WAIT_S = 0.1  # how often a loop waiting for its frame looks whether it was paused
REDRAW_AGAIN_S = 2.0  # a frame not on the page after this long is asked for again


def weeks_to_step(model: ClassroomModel, interval: int) -> int:
    """How many weeks the next frame steps: ``interval`` (at least 1), never past the horizon, none once the
    run stopped (its horizon, or an error)."""
    if not model.running or model.error is not None:
        return 0
    return max(0, min(max(1, int(interval)), model.weeks - int(model.steps)))


def advance(model: ClassroomModel, interval: int, stop: Callable[[ClassroomModel], bool] | None = None) -> int:
    """Step one frame (see :func:`weeks_to_step`); returns the number of weeks stepped. ``stop(model)`` is
    asked after every week: True ends the frame at that week (class mode's "pause at the next event")."""
    return advance_until(model, interval, stop)[0]


def advance_until(model: ClassroomModel, interval: int,
                  stop: Callable[[ClassroomModel], bool] | None = None) -> tuple[int, bool]:
    """:func:`advance`, week by week; returns (weeks stepped, whether ``stop`` ended the frame)."""
    n = weeks_to_step(model, interval)
    done = 0
    for _ in range(n):
        if not model.running:  # an error inside a week stops the frame there
            break
        model.step()
        done += 1
        if stop is not None and stop(model):
            return done, True
    return done, False


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
              redraw: Callable[[], None], gate: FrameGate, keep_playing: Callable[[], bool],
              stop: Callable[[ClassroomModel], bool] | None = None) -> str:
    """Play ``model`` until ``keep_playing()`` turns False or the run stops; returns why it ended
    ("paused", "horizon", "error", or "event": ``stop(model)``, asked after every week, said so and the loop
    stopped at that very week). Each frame: step (:func:`advance`), ``redraw()``, wait for the page
    to show the frame (``gate``), pause ``pause_s()`` seconds. Counted in :data:`STATUS` while it runs."""
    STATUS.change(loops=1)
    try:
        return _frames(model, interval, pause_s, redraw, gate, keep_playing, stop)
    finally:
        STATUS.change(loops=-1, loops_ended=1)


def _frames(model: ClassroomModel, interval: Callable[[], int], pause_s: Callable[[], float],
            redraw: Callable[[], None], gate: FrameGate, keep_playing: Callable[[], bool],
            stop: Callable[[ClassroomModel], bool] | None = None) -> str:
    while True:
        with gate.stepping:
            if not keep_playing():
                return "paused"
            stepped, stopped = advance_until(model, interval(), stop)
        if stepped == 0 or not model.running:
            redraw()
            return "error" if model.error is not None else "horizon"
        if stopped:
            redraw()
            return "event"
        week = int(model.steps)
        redraw()
        STATUS.change(frames=1)
        # a redraw asked for while another thread of the session renders is left to that thread: ask
        # again now and then until the page has shown this week
        while not gate.wait_shown(model, week, keep_playing, REDRAW_AGAIN_S):
            if not keep_playing():
                return "paused"
            redraw()
            STATUS.change(redraws_again=1)
        time.sleep(max(0.0, pause_s()))


class ServerStatus:
    """How many pages this server process holds and how many of their Play loops run (every page's
    :class:`PageSession` and :func:`play_loop` report here). With ``REE_STATUS_FILE`` set, each change is
    written there as JSON, so a browser test can wait until a closed tab's loop has stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pages = 0  # PageSessions open (a tab whose kernel Solara has not closed)
        self.pages_closed = 0
        self.loops = 0  # Play loops running
        self.loops_ended = 0
        self.frames = 0  # frames Play asked the pages to draw
        self.redraws_again = 0  # of which asked again: not on the page after REDRAW_AGAIN_S

    def change(self, **deltas: int) -> None:
        path = os.environ.get(STATUS_FILE_ENV)
        with self._lock:
            for k, d in deltas.items():
                setattr(self, k, getattr(self, k) + d)
            if path and not deltas.keys() <= {"frames", "redraws_again"}:  # pages and loops: not every frame
                # written under the lock: two loops ending at once (tabs closed together) otherwise could
                # write in the other order than they counted, and leave the file at a stale count
                tmp = Path(f"{path}.tmp")
                tmp.write_text(json.dumps(self.snapshot()))
                tmp.replace(path)

    def snapshot(self) -> dict[str, int]:
        return {"pages": self.pages, "pages_closed": self.pages_closed, "loops": self.loops,
                "loops_ended": self.loops_ended, "frames": self.frames, "redraws_again": self.redraws_again}


STATUS = ServerStatus()


def dump_stacks_on_signal() -> None:
    """With ``REE_STATUS_FILE`` set (tests, benchmarks): write this process's id beside the status file
    (``<file>.pid``) and every thread's stack to ``<file>.stacks`` on SIGUSR1, so a test that waited in vain
    for a loop to stop can show where that loop is."""
    path = os.environ.get(STATUS_FILE_ENV)
    if not path or not hasattr(signal, "SIGUSR1"):
        return
    global _STACKS
    _STACKS = open(f"{path}.stacks", "w")  # noqa: SIM115 - open for the process's life: faulthandler writes here
    faulthandler.register(signal.SIGUSR1, file=_STACKS, all_threads=True)
    Path(f"{path}.pid").write_text(str(os.getpid()))


_STACKS = None
dump_stacks_on_signal()


class PageSession:
    """One browser page's life on the server. :meth:`close` is called when Solara closes the page's kernel:
    at once when the tab closes or reloads (the page's ``pagehide`` beacon), or after
    ``SESSION_KEEP`` when its connection dropped without one (:mod:`ui.app` sets Solara's cull timeout).
    A closed session stops its Play loop between frames; the model goes with the kernel's state."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._on_close: list[Callable[[], None]] = []
        STATUS.change(pages=1)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the page closes (at once if it already has): class mode frees its run here."""
        with self._lock:
            if not self.closed.is_set():
                self._on_close.append(fn)
                return
        fn()

    def close(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            callbacks, self._on_close = self._on_close, []
        STATUS.change(pages=-1, pages_closed=1)
        for fn in callbacks:
            try:
                fn()
            except Exception:  # noqa: BLE001 - one failing callback must not keep the page open
                log.exception("a page-close callback failed")
        log.info("page closed: its Play loop stops and its model is released")

    def redraw_with(self, force_update: Callable[[], None]) -> Callable[[], None]:
        """``force_update`` as one render of the page. Three components of a page follow Mesa's update counter
        (the dashboard, the Play buttons, the ``Time:`` line); outside a batch each of them re-rendered the
        whole page in turn: three render passes per frame instead of one (~3x the server's time)."""
        try:
            import reacton.core

            rc = reacton.core.get_render_context()
        except Exception:  # noqa: BLE001 - not rendering: each change renders by itself
            return lambda: None if self.closed.is_set() else force_update()

        def redraw() -> None:
            if self.closed.is_set():  # the page is gone: nothing to draw (and its render context is closing)
                return
            with rc:  # a batch: the page renders once, when it ends
                force_update()

        return redraw

    def attach_to_kernel(self) -> None:
        """Close with the Solara kernel (virtual kernel context) this page renders in, if there is one."""
        try:
            from solara.server import kernel_context

            kernel_context.get_current_context().on_close(self.close)
        except Exception:  # noqa: BLE001 - outside a server (solara.render in unit tests) there is no kernel
            log.debug("no kernel context: the page session closes with its render context only")

