"""``python -m benchmarks.run`` (``make bench``): how fast ree-abm is, printed as one table.

Sections (issue 6), each a median over ``--repeats`` (default 5) with min-max:

a. one 520-week run of the default world, the magnet world (``baseline``, seed 1: ten products, magnet makers,
   term contracts): wall and CPU time, and the agent count; then the same for the oxide world (``baseline`` on
   ``world_2024.toml``: three oxides, no magnet stage);
b. time per week by stage, the nine stages of ``RareEarthModel.step``'s docstring (stage 5 in two parts:
   refining, then magnets), timed by wrapping the model's bound stage methods (and ``datacollector.collect``)
   in this process: no timing code in the model; the default world, then the oxide world;
c. agent-steps per second (agents x weeks / run time) beside Mesa's bundled ``BoltzmannWealth`` example
   (default 100 agents, the same number of steps), and the ratio, for the default and the oxide world;
d. time per week with the world scaled x1, x4, x16, x40 in agents (:mod:`benchmarks.scaling`) and the
   exponent of a least-squares fit ``time/week ~ agents^k``;
e. sweep throughput with 1 and 2 workers through ``experiments.sweep.run_tasks`` (results written to a
   temporary folder), and the ratio. Each timed sweep starts its own process pool, as a user's sweep does;
   the forkserver the pools fork from is started once by an untimed warm-up sweep;
m. peak memory: of a 520-week run (a fresh subprocess: ``ru_maxrss`` and ``tracemalloc``), and the
   resident memory of a 1,000-run sweep (4 weeks each, 2 workers, writing results) every 100 runs: the
   sweep process and the largest of its children (workers and the forkserver they fork from);
f. rendered steps per second during Play in headless chromium, once the classroom view (``app.py``) exists;
g. a class on one server: weeks per second per page with 1, 10 and 30 pages playing at once (headless
   chromium, one server; median over the pages), the server's resident memory per open page (RSS with the
   pages open minus before, over the pages), and whether closing the pages frees them (the server's own
   count of pages and Play loops, ``REE_STATUS_FILE``).

Benchmarks print figures; nothing fails on time. ``--only a,b`` runs some sections, ``--quick`` fewer
repeats and shorter workloads (for trying things out, not for quoting).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STAGES = [  # (label, model attribute); the numbering is the step docstring's
    ("1 calendar", "_calendar"),
    ("2 states act", "_states_act"),
    ("3 armed groups act", "_armed_groups_act"),
    ("4 ore markets", "_ore_markets"),
    ("5 processing", "_process"),
    ("5 magnets made, swarf recycled", "_make_magnets"),
    ("6 exchanges (incl. cost of supply)", "_exchanges"),
    ("7 consumption", "_consume"),
    ("8 pipeline", "_pipeline"),
    ("9 record (observer)", "observer.record"),
]
SCALES = (1, 4, 16, 40)


# ------------------------------------------------------------------------------------------------ table
@dataclass
class Row:
    section: str
    measure: str
    values: list[float] = field(default_factory=list)  # one per repeat (or a single figure)
    unit: str = ""
    note: str = ""
    fmt: str = "{:.3g}"

    def cells(self) -> tuple[str, str, str]:
        if not self.values:
            return "n/a", "", self.unit
        med = statistics.median(self.values)
        if len(self.values) == 1:
            return self.fmt.format(med), "", self.unit
        lo, hi = min(self.values), max(self.values)
        return self.fmt.format(med), f"[{self.fmt.format(lo)} - {self.fmt.format(hi)}]", self.unit


class Table:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, section: str, measure: str, values, unit: str = "", note: str = "",
            fmt: str = "{:.3g}") -> Row:
        vals = [float(v) for v in (values if isinstance(values, list | tuple) else [values])]
        row = Row(section, measure, vals, unit, note, fmt)
        self.rows.append(row)
        med, rng, unit = row.cells()
        print(f"  {section:<2} {measure:<46} {med:>10} {rng:<23} {unit:<14} {note}", flush=True)
        return row

    def render(self) -> str:
        lines = [f"{'':<2} {'measure':<46} {'median':>10} {'[min - max]':<23} {'unit':<14} note",
                 "-" * 118]
        for r in self.rows:
            med, rng, unit = r.cells()
            lines.append(f"{r.section:<2} {r.measure:<46} {med:>10} {rng:<23} {unit:<14} {r.note}")
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = ["| | measure | median | min - max | unit | note |", "|---|---|---:|---|---|---|"]
        for r in self.rows:
            med, rng, unit = r.cells()
            lines.append(f"| {r.section} | {r.measure} | {med} | {rng.strip('[]')} | {unit} | {r.note} |")
        return "\n".join(lines)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _header() -> str:
    try:
        import mesa

        mesa_v = mesa.__version__
    except Exception:  # noqa: BLE001
        mesa_v = "?"
    from experiments.run import git_commit
    from model.market import KERNEL

    load = os.getloadavg()
    return (f"ree-abm benchmarks  {dt.datetime.now().isoformat(timespec='seconds')}  host {socket.gethostname()}, "
            f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
            f"python {platform.python_version()}, numpy {np.__version__}, mesa {mesa_v}; "
            f"auction kernel: {KERNEL}; commit {git_commit()}")


# ---------------------------------------------------------------------------------------- a, b, c: runs
def _new_model(scenario="baseline", seed: int = 1):
    from model.model import RareEarthModel

    return RareEarthModel(scenario, seed=seed)


def _timed_runs(sc, repeats: int, weeks: int) -> tuple[list[float], list[float], list[float], int]:
    """Wall and CPU seconds of ``repeats`` runs of ``weeks`` (model construction timed apart), and the agents."""
    wall, cpu, init = [], [], []
    agents = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        m = _new_model(sc)
        t1, c1 = time.perf_counter(), time.process_time()
        m.run(weeks)
        wall.append(time.perf_counter() - t1)
        cpu.append(time.process_time() - c1)
        init.append(t1 - t0)
        agents = len(m.agents)
    return wall, cpu, init, agents


def bench_run(table: Table, repeats: int, weeks: int) -> dict:
    """(a) a full run of the default world (the magnet world), wall and CPU seconds: the issue 11 target (<= 1.0 s
    for 520 weeks, >= 1.5x BoltzmannWealth in agent-steps) is this world's."""
    from model.scenario import load_scenario

    sc = load_scenario("baseline")
    wall, cpu, init, agents = _timed_runs(sc, repeats, weeks)
    table.add("a", f"{weeks}-week run, default world (wall)", wall, "s", "target <= 1.0 s" if weeks == 520 else "")
    table.add("a", f"{weeks}-week run, default world (CPU)", cpu, "s")
    table.add("a", "model construction (scenario loaded)", [x * 1e3 for x in init], "ms")
    table.add("a", "agents in the default world", agents, "agents", "states, miners, refiners, groups, buyers, makers",
              fmt="{:.0f}")
    _bench_fallback(table, sc, repeats, weeks, wall)
    return {"wall": wall, "agents": agents, "weeks": weeks}


OXIDE_WORLD = "world_2024.toml"


def _oxide_baseline():
    """``baseline`` on the oxide world (three oxides bought directly, no magnet stage), the default world's base."""
    from model.scenario import load_scenario

    return load_scenario("baseline").model_copy(update={"world": OXIDE_WORLD})


def bench_run_oxides(table: Table, repeats: int, weeks: int) -> dict:
    """(a) a full run of the oxide world (``baseline`` on ``world_2024.toml``, seed 1), wall and CPU seconds,
    beside the default world's."""
    wall, cpu, _, agents = _timed_runs(_oxide_baseline(), repeats, weeks)
    table.add("a", f"{weeks}-week run, oxide world (wall)", wall, "s", f"baseline on {OXIDE_WORLD}")
    table.add("a", f"{weeks}-week run, oxide world (CPU)", cpu, "s")
    table.add("a", "agents in the oxide world", agents, "agents", "no magnet makers", fmt="{:.0f}")
    return {"wall": wall, "agents": agents, "weeks": weeks}


def _bench_fallback(table: Table, sc, repeats: int, weeks: int, wall: list[float]) -> None:
    """(a) the same run with the auctions cleared by the numpy reference (what a machine without a C
    compiler gets), and how much the compiled kernel saves; the results are the same either way."""
    from model import market

    kernel = market._auction
    if kernel is None:
        table.add("a", "  auction kernel", [], "", "not built: the runs above used the numpy fallback")
        return
    fallback = []
    market._auction = None
    try:
        for _ in range(repeats):
            m = _new_model(sc)
            t1 = time.perf_counter()
            m.run(weeks)
            fallback.append(time.perf_counter() - t1)
    finally:
        market._auction = kernel
    table.add("a", "  same run, numpy auctions (no compiler)", fallback, "s", "the fallback; same results")
    table.add("a", "  ratio numpy / compiled kernel", _median(fallback) / _median(wall), "x", "medians",
              fmt="{:.2f}")


def _timed(fn: Callable, acc: list[float]) -> Callable:
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[0] += time.perf_counter() - t
    return wrapper


def bench_stages(table: Table, repeats: int, weeks: int) -> None:
    """(b) time per week of each stage, by wrapping the model's bound stage methods: the default world (the
    magnet world), then the oxide world."""
    from model.scenario import load_scenario

    _stages(table, repeats, weeks, load_scenario("baseline"), "")
    _stages(table, repeats, weeks, _oxide_baseline(), "oxide world: ")


def _stages(table: Table, repeats: int, weeks: int, sc, prefix: str) -> None:
    per: dict[str, list[float]] = {label: [] for label, _ in STAGES}
    per["9 DataCollector.collect"] = []
    per["other (Mesa step, loop)"] = []
    per["whole week"] = []
    for _ in range(repeats):
        m = _new_model(sc)
        accs = {}
        for label, path in STAGES:
            accs[label] = [0.0]
            *owner, attr = path.split(".")
            obj = m
            for name in owner:
                obj = getattr(obj, name)
            setattr(obj, attr, _timed(getattr(obj, attr), accs[label]))
        accs["9 DataCollector.collect"] = [0.0]
        m.datacollector.collect = _timed(m.datacollector.collect, accs["9 DataCollector.collect"])
        t = time.perf_counter()
        m.run(weeks)
        total = time.perf_counter() - t
        staged = 0.0
        for label, acc in accs.items():
            per[label].append(acc[0] / weeks * 1e6)
            staged += acc[0]
        per["other (Mesa step, loop)"].append((total - staged) / weeks * 1e6)
        per["whole week"].append(total / weeks * 1e6)
    whole = _median(per["whole week"])
    for label, vals in per.items():
        share = f"{_median(vals) / whole:.0%} of a week" if label != "whole week" else f"{weeks} weeks"
        table.add("b", prefix + (f"stage {label}" if label[0].isdigit() else label), vals, "us/week", share)


def bench_boltzmann(table: Table, repeats: int, steps: int, ours: dict | None,
                    oxides: dict | None = None) -> None:
    """(c) agent-steps per second, ours (the default world, and the oxide world) against Mesa's BoltzmannWealth."""
    from mesa.examples import BoltzmannWealth

    rates = []
    n = 0
    for _ in range(repeats):
        m = BoltzmannWealth()
        n = len(m.agents)
        t = time.perf_counter()
        for _ in range(steps):
            m.step()
        rates.append(n * steps / (time.perf_counter() - t))
    table.add("c", f"BoltzmannWealth agent-steps/s ({n} agents)", rates, "agent-steps/s", f"{steps} steps",
              fmt="{:,.0f}")
    for run, name, ratio in ((ours, "ree-abm", "ree-abm"), (oxides, "ree-abm oxide world", "oxide world")):
        if not run:
            continue
        mine = [run["agents"] * run["weeks"] / w for w in run["wall"]]
        table.add("c", f"{name} agent-steps/s ({run['agents']} agents)", mine, "agent-steps/s",
                  "from (a)", fmt="{:,.0f}")
        table.add("c", f"ratio {ratio} / BoltzmannWealth", _median(mine) / _median(rates), "x",
                  "medians; target >= 1.5", fmt="{:.2f}")


def bench_scaling(table: Table, repeats: int, weeks: int) -> None:
    """(d) time per week with the world scaled in agents; fitted exponent."""
    from benchmarks.scaling import scaled_scenario
    from model.model import RareEarthModel

    agents, med = [], []
    for f in SCALES:
        sc = scaled_scenario("baseline", f)
        vals = []
        n = 0
        for _ in range(repeats):
            m = RareEarthModel(sc, seed=1)
            n = len(m.agents)
            t = time.perf_counter()
            m.run(weeks)
            vals.append((time.perf_counter() - t) / weeks * 1e3)
        agents.append(n)
        med.append(_median(vals))
        table.add("d", f"time per week, world x{f} ({n:,} agents)", vals, "ms/week",
                  f"{_median(vals) / n * 1e6:.0f} ns per agent-week")
    k = float(np.polyfit(np.log(agents), np.log(med), 1)[0])
    table.add("d", "scaling exponent (fit of time/week ~ agents^k)", k, "k", "x1..x40; target <= 1.0",
              fmt="{:.2f}")
    k_top = float(np.log(med[-1] / med[-2]) / np.log(agents[-1] / agents[-2]))
    table.add("d", "local exponent x16 -> x40", k_top, "k", "", fmt="{:.2f}")


# ------------------------------------------------------------------------------------------ e: sweeps
def _tasks(n: int, weeks: int, first_seed: int = 1):
    from experiments.sweep import parse_spec, plan

    spec = parse_spec({"name": "bench", "scenario": "baseline", "weeks": weeks,
                       "seeds": list(range(first_seed, first_seed + n))}, source="benchmark")
    return plan(spec)


def bench_sweep(table: Table, repeats: int, runs: int, weeks: int) -> None:
    """(e) sweep throughput, 1 and 2 workers, through the project's sweep runner.

    Each timed sweep starts its own pool (about a quarter of a second), so the workload must be long enough
    for that not to dominate: 32 runs of 104 weeks (16 before the compiled kernel made runs 2-5x faster)."""
    from experiments.sweep import run_tasks

    tasks = _tasks(runs, weeks)
    tmp = Path(tempfile.mkdtemp(prefix="ree-bench-sweep-"))
    try:
        run_tasks(_tasks(2, 1, 10_000), tmp / "warm", workers=2, progress=False)  # starts the forkserver
        thr: dict[int, list[float]] = {1: [], 2: []}
        for i in range(repeats):
            for w in (1, 2):
                out = tmp / f"w{w}_{i}"
                t = time.perf_counter()
                s = run_tasks(tasks, out, workers=w, progress=False)
                el = time.perf_counter() - t
                if s.failed:
                    raise RuntimeError(f"benchmark sweep failed: {s.errors[:1]}")
                thr[w].append(runs / el)
                shutil.rmtree(out, ignore_errors=True)
        for w in (1, 2):
            table.add("e", f"sweep throughput, {w} worker{'s' if w > 1 else ''}", thr[w], "runs/s",
                      f"{runs} runs x {weeks} weeks, results written", fmt="{:.2f}")
        table.add("e", "ratio 2 workers / 1 worker", _median(thr[2]) / _median(thr[1]), "x",
                  "medians; target >= 1.8", fmt="{:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ m: memory
_RUN_MEMORY = r"""
import json, resource, sys, tracemalloc
import psutil
proc = psutil.Process()
rss = lambda: proc.memory_info().rss / 2**20
from model.model import RareEarthModel
from model.scenario import load_scenario
sc = load_scenario("baseline")
after_import = rss()
if sys.argv[1] == "trace":
    tracemalloc.start()
m = RareEarthModel(sc, seed=1)
m.run(int(sys.argv[2]))
df = m.results()
out = {"import": after_import, "end": rss(), "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "rows": len(df)}
if sys.argv[1] == "trace":
    out["traced_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps(out))
"""


def _subprocess_json(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_memory_run(table: Table, repeats: int, weeks: int) -> None:
    peak, inc, traced = [], [], []
    for _ in range(repeats):
        r = _subprocess_json(_RUN_MEMORY, "rss", str(weeks))
        peak.append(r["peak"])
        inc.append(r["end"] - r["import"])
    traced.append(_subprocess_json(_RUN_MEMORY, "trace", str(weeks))["traced_peak"])
    table.add("m", f"peak RSS of a {weeks}-week run (whole process)", peak, "MB", "ru_maxrss, fresh process")
    table.add("m", "  RSS added by the run (end - after imports)", inc, "MB", "model + results table")
    table.add("m", "  Python allocations, peak (tracemalloc)", traced, "MB", "incl. results table")


def bench_memory_sweep(table: Table, runs: int, weeks: int, every: int) -> None:
    """Resident memory of a long sweep that writes its results, sampled every ``every`` runs."""
    import psutil

    from experiments.sweep import run_tasks

    tasks = _tasks(runs, weeks, first_seed=1)
    tmp = Path(tempfile.mkdtemp(prefix="ree-bench-mem-"))
    me = psutil.Process()
    samples: list[tuple[int, float, float, float]] = []
    count = [0]
    t0 = time.perf_counter()

    def on_outcome(_o) -> None:
        count[0] += 1
        if count[0] % every == 0:
            kids = me.children(recursive=True)
            rss_kids = []
            for k in kids:
                with contextlib.suppress(psutil.Error):
                    rss_kids.append(k.memory_info().rss / 2**20)
            samples.append((count[0], me.memory_info().rss / 2**20, max(rss_kids, default=0.0),
                            time.perf_counter() - t0))

    try:
        s = run_tasks(tasks, tmp / "sweep", workers=2, progress=False, on_outcome=on_outcome)
        disk = sum(p.stat().st_size for p in (tmp / "sweep" / "runs").glob("*.parquet")) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"     runs   sweep process RSS   largest child RSS   elapsed   ({s.done} done, {s.failed} failed)")
    for n, parent, kid, el in samples:
        print(f"     {n:>4}   {parent:>14.1f} MB   {kid:>15.1f} MB   {el:>6.1f} s")
    if samples:
        first, last = samples[0], samples[-1]
        table.add("m", f"{runs}-run sweep: sweep process RSS at end", last[1], "MB",
                  f"{first[1]:.0f} MB after {first[0]} runs", fmt="{:.0f}")
        table.add("m", f"{runs}-run sweep: largest child RSS at end", last[2], "MB",
                  f"{first[2]:.0f} MB after {first[0]} runs", fmt="{:.0f}")
        growth = (last[1] - first[1]) / max(last[0] - first[0], 1) * 1024
        table.add("m", f"  growth per run after the first {first[0]}", growth, "KB/run", "sweep process",
                  fmt="{:.1f}")
        table.add("m", f"  sweep throughput, {weeks}-week runs", runs / last[3], "runs/s",
                  f"{disk:.0f} MB written", fmt="{:.1f}")


# ------------------------------------------------------------------------------------ f: browser (Play)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_COUNT_FRAMES = """() => { window.__benchFrames = null; const el = document.querySelector('div.ree-prices');
    if (!el) return; window.__benchFrames = 0; let last = el.dataset.week;
    new MutationObserver(() => { if (el.dataset.week !== last) { last = el.dataset.week; window.__benchFrames++; } })
        .observe(el, {attributes: true, attributeFilter: ['data-week']}); }"""


def bench_browser(table: Table, repeats: int, seconds: float) -> None:
    """(f) steps per second while Play runs in headless chromium (needs app.py and /usr/bin/chromium)."""
    import urllib.request

    if not (ROOT / "app.py").exists():
        table.add("f", "rendered steps/s during Play (chromium)", [], "steps/s", "n/a (no app yet)")
        return
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        table.add("f", "rendered steps/s during Play (chromium)", [], "steps/s", "n/a (no chromium)")
        return
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "SOLARA_ASSETS_CDN": "http://127.0.0.1:9/"}
    solara = str(Path(sys.executable).parent / "solara")
    server = subprocess.Popen([solara, "run", "app.py", "--host", "127.0.0.1", "--port", str(port), "--production",
                               "--no-open", "--no-check-version"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rates: list[float] = []
    frames: list[float] = []
    errors: list[str] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the solara server did not become ready in 60 s")
        tmp = tempfile.mkdtemp(prefix="ree-bench-browser-")
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                tmp, executable_path=chromium, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.locator(".ree-clock").first.wait_for(timeout=60_000)

            def now() -> float:  # the sidebar's week (ui.panels.RunClock)
                return float(page.locator(".ree-clock").first.get_attribute("data-week"))

            def button(name: str):
                return page.get_by_role("button", name=name, exact=True)

            def playing() -> bool:  # a Pause button shown and enabled, read in one go: the page redraws it
                # while Play runs, so a locator found a moment ago may be gone when asked if it is enabled
                return bool(page.evaluate("() => [...document.querySelectorAll('button')].some("
                                          "b => b.textContent.trim() === '❚❚' && !b.disabled)"))

            for i in range(repeats):
                if i:  # start each repeat from week 0, so Play never reaches the horizon
                    button("Reset").click()
                    page.locator(".ree-clock[data-week='0']").wait_for(timeout=60_000)
                    page.wait_for_timeout(1000)
                page.evaluate(_COUNT_FRAMES)
                t0, s0 = time.perf_counter(), now()
                button("▶").click()
                pause = button("❚❚")
                with contextlib.suppress(Exception):  # Play started (or already ran to the horizon)
                    page.wait_for_function("() => [...document.querySelectorAll('button')].some("
                                           "b => b.textContent.trim() === '❚❚') || /horizon/.test(document.body.innerText)",
                                           timeout=60_000)
                # until the time is up or the run reaches its horizon (Play then stops by itself)
                # (at the horizon the button shows ▶ again, disabled: a fast page can get there in time)
                while time.perf_counter() - t0 < seconds and playing():
                    page.wait_for_timeout(100)
                s1, t1 = now(), time.perf_counter()
                n_frames = page.evaluate("window.__benchFrames")
                if playing():
                    pause.click()
                    button("▶").wait_for(timeout=60_000)
                rates.append((s1 - s0) / (t1 - t0))
                if n_frames is not None:
                    frames.append(n_frames / (t1 - t0))
            ctx.close()
        shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not measure
        table.add("f", "rendered steps/s during Play (chromium)", [], "steps/s",
                  f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})")
        return
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
    note = (f"weeks of model time per second, {seconds:.0f} s of Play each"
            + (f"; {len(errors)} page error(s)" if errors else ""))
    table.add("f", "rendered steps/s during Play (chromium)", rates, "weeks/s", note, fmt="{:.1f}")
    if frames:
        table.add("f", "  chart redraws per second", frames, "frames/s", "the price chart's week changes", fmt="{:.1f}")


# ------------------------------------------------------------------------------------- g: a class on one server
CLASS_SIZES = (1, 10, 30)
_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-renderer-backgrounding",
                  "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]
_WEEK = "() => { const el = document.querySelector('.ree-date'); const m = el && /week (\\d+)/.exec(el.textContent);" \
        " return m ? parseInt(m[1]) : -1; }"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _browser_cpu_s() -> float:
    """CPU seconds so far of every chromium process on the machine (the benchmark's pages)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if (d / "comm").read_text().strip() in ("chromium", "chrome", "headless_shell"):
                    total += _cpu_s(int(d.name))
    return total


def _serve(env_extra: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = _free_port()
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "SOLARA_ASSETS_CDN": "http://127.0.0.1:9/",
           **env_extra}
    solara = str(Path(sys.executable).parent / "solara")
    server = subprocess.Popen([solara, "run", "app.py", "--host", "127.0.0.1", "--port", str(port), "--production",
                               "--no-open", "--no-check-version"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/readyz", timeout=2)
            return server, url + "/"
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the solara server did not become ready in 60 s")


def _wait_status(path: Path, ok: Callable[[dict], bool], timeout: float = 120.0) -> dict:
    deadline = time.time() + timeout
    status: dict = {}
    while time.time() < deadline:
        with contextlib.suppress(OSError, ValueError):
            status = json.loads(path.read_text())
            if ok(status):
                return status
        time.sleep(0.2)
    return status


def class_of_pages(n: int, seconds: float, chromium: str) -> dict:
    """One server, ``n`` pages (each its own browser context, so its own Solara session) playing the default
    run at once for ``seconds``: each page's weeks shown per second, the server's RSS per page, and the
    server's count of pages and loops once every page is closed."""
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="ree-bench-class-"))
    status_file = tmp / "status.json"
    server, url = _serve({"REE_STATUS_FILE": str(status_file)})
    out: dict = {"n": n}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=_CHROMIUM_ARGS)
            # one page opened and closed first: the server's imports and first-render caches are not per page
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(url, timeout=120_000)
            page.get_by_role("button", name="Step", exact=True).wait_for(timeout=120_000)
            ctx.close()
            _wait_status(status_file, lambda s: s.get("pages") == 0)
            time.sleep(2)
            rss0 = _rss_mb(server.pid)
            pages = []
            for _ in range(n):
                ctx = browser.new_context(viewport={"width": 1280, "height": 900})
                page = ctx.new_page()
                page.set_default_timeout(300_000)
                page.goto(url)
                page.get_by_role("button", name="Step", exact=True).wait_for()
                pages.append((ctx, page))
            _wait_status(status_file, lambda s: s.get("pages") == n)
            time.sleep(2)
            out["rss_per_page_mb"] = (_rss_mb(server.pid) - rss0) / n
            for _, page in pages:
                page.get_by_role("button", name="▶", exact=True).click()
            for _, page in pages:  # every page has shown a frame of Play: all loops run
                page.wait_for_function(f"() => ({_WEEK})() > 0")
            w0, t0 = [page.evaluate(_WEEK) for _, page in pages], time.perf_counter()
            c0, b0 = _cpu_s(server.pid), _browser_cpu_s()
            time.sleep(seconds)
            c1, b1 = _cpu_s(server.pid), _browser_cpu_s()
            w1 = [page.evaluate(_WEEK) for _, page in pages]
            t1 = time.perf_counter()
            out["rates"] = [(b - a) / (t1 - t0) for a, b in zip(w0, w1, strict=True)]
            weeks = sum(b - a for a, b in zip(w0, w1, strict=True))
            out["server_cpu"] = (c1 - c0) / (t1 - t0)  # cores
            out["browser_cpu"] = (b1 - b0) / (t1 - t0)
            out["server_ms_per_week"] = 1000 * (c1 - c0) / weeks if weeks else float("nan")
            out["load"] = os.getloadavg()[0]
            out["rss_playing_per_page_mb"] = (_rss_mb(server.pid) - rss0) / n
            for ctx, page in pages:
                page.close()  # the tab closes: Solara's close beacon ends the page's kernel
                ctx.close()
            # by each tab's close beacon at once, or, for a tab whose beacon was lost, by Solara's cull of a
            # disconnected page after ui.config.SESSION_KEEP (2 min)
            status = _wait_status(status_file, lambda s: s.get("pages") == 0 and s.get("loops") == 0, timeout=240.0)
            out["freed"] = status.get("pages") == 0 and status.get("loops") == 0
            out["status"] = status
            time.sleep(3)  # Solara collects a closed kernel's objects shortly after it closes
            out["rss_after_close_per_page_mb"] = (_rss_mb(server.pid) - rss0) / n
            browser.close()
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_class(table: Table, seconds: float, sizes: tuple[int, ...] = CLASS_SIZES) -> None:
    """(g) weeks/s per page with 1, 10 and 30 pages playing on one server, and the server's memory per page."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists() or not (ROOT / "app.py").exists():
        table.add("g", "weeks/s per page, pages playing at once", [], "weeks/s", "n/a (no chromium or app)")
        return
    for n in sizes:
        try:
            r = class_of_pages(n, seconds, chromium)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports what it could not measure
            table.add("g", f"weeks/s per page, {n} page(s) playing", [], "weeks/s",
                      f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})")
            continue
        rates = r["rates"]
        table.add("g", f"weeks/s per page, {n} page(s) playing", rates, "weeks/s",
                  f"median over the pages [slowest - fastest], {seconds:.0f} s of Play; goal >= 5 with 30", fmt="{:.1f}")
        table.add("g", f"  server CPU per week shown, {n} page(s)", [r["server_ms_per_week"]], "ms",
                  f"server {r['server_cpu']:.2f} cores, chromium {r['browser_cpu']:.2f} cores, "
                  f"load {r['load']:.1f}", fmt="{:.1f}")
        table.add("g", f"  server RSS per page, {n} page(s)", [r["rss_per_page_mb"]], "MB",
                  f"open, before Play; {r['rss_playing_per_page_mb']:.1f} MB/page while playing, "
                  f"{r.get('rss_after_close_per_page_mb', float('nan')):.1f} MB/page kept after closing",
                  fmt="{:.1f}")
        table.add("g", f"  pages freed after closing {n}", [1.0 if r["freed"] else 0.0], "",
                  f"server's count after the tabs closed: {r['status']}", fmt="{:.0f}")


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repeats per timing (>= 5 for quoted figures)")
    ap.add_argument("--only", default="a,b,c,d,e,m,f,g", help="sections to run, e.g. a,b,c")
    ap.add_argument("--pages", default=",".join(map(str, CLASS_SIZES)), help="(g) numbers of pages, e.g. 1,10,30")
    ap.add_argument("--quick", action="store_true", help="short workloads, 2 repeats (not for quoting)")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    args = ap.parse_args(argv)
    only = set(args.only.replace(" ", "").split(","))
    r = 2 if args.quick else max(1, args.repeats)
    weeks = 104 if args.quick else 520
    os.chdir(ROOT)
    print(_header())
    print(f"medians over {r} repeats [min - max]; wall-clock unless marked CPU\n", flush=True)
    table = Table()
    ours = oxides = None
    if "a" in only or "c" in only:
        ours = bench_run(table, r, weeks)
        oxides = bench_run_oxides(table, r, weeks)
    if "b" in only:
        bench_stages(table, r, weeks)
    if "c" in only:
        bench_boltzmann(table, r, weeks, ours, oxides)
    if "d" in only:
        bench_scaling(table, r, 13 if args.quick else 52)
    if "e" in only:
        bench_sweep(table, r, 4 if args.quick else 32, 52 if args.quick else 104)
    if "m" in only:
        bench_memory_run(table, 1 if args.quick else 3, weeks)
        bench_memory_sweep(table, 100 if args.quick else 1000, 4, 10 if args.quick else 100)
    if "f" in only:
        bench_browser(table, r, 5.0 if args.quick else 10.0)
    if "g" in only:
        bench_class(table, 10.0 if args.quick else 30.0, tuple(int(x) for x in args.pages.split(",")))
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"(figures on a shared machine vary with load)\n")
    print(table.render())
    if args.markdown:
        args.markdown.write_text(table.markdown() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
