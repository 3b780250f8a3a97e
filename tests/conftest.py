"""Shared fixtures for the model, agent, scenario and CLI tests (no browser fixtures here).

- ``invariant_checker``: the class :class:`InvariantChecker`, which steps a model week by week and
  checks the runnable-model issue's invariants after every week (ore and oxide mass balance, traded
  <= offered, no negative stock, finite positive prices). Used by the 10-year invariant test and by the
  hypothesis property test, so both check exactly the same things.
- ``run_cached``: a cached runner, ``run_cached(scenario, seed, weeks=..., overrides=..., extra=...,
  drop=..., trace=...) -> RunRecord``. Multi-seed runs are expensive, so every run is made once per
  test session and shared by all tests (and both xdist workers) that ask for the same arguments;
  ``run_cached.prefetch([...])`` splits a batch of runs between the workers.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from model.model import RareEarthModel
from model.params import PRODUCTS, REGIONS
from model.scenario import Scenario, load_scenario

SEEDS = list(range(1, 11))  # the issues ask for >= 10 seeds; medians over these
RTOL = 1e-6  # relative tolerance of every balance (issue 2: "to 1e-6 relative")
NEG_TOL = 1e-9  # "no negative stock": nothing below -1e-9 t


# ================================================================================================ invariants
def _close(a: float, b: float, scale: float = 0.0) -> bool:
    """|a - b| <= RTOL x max(1, |a|, |b|, scale): a relative check that still works near zero."""
    return abs(a - b) <= RTOL * max(1.0, abs(a), abs(b), abs(scale))


class InvariantChecker:
    """Steps a model and checks the runnable-model issue's invariants after every week.

    It wraps each refiner's ``receive_ore`` and ``process`` (pure spies: they record arguments and
    state, then call the original) so that the element balance of each plant's feed can be checked
    exactly, not only in aggregate. Every failed check raises ``AssertionError`` naming the week, the
    quantity and both sides of the balance.
    """

    def __init__(self, model: RareEarthModel):
        self.m = model
        self.weeks_checked = 0
        self.failures: dict[str, tuple[str, int]] = {}  # kind of check -> (first message, weeks failed)
        self._spy_refiners()
        self._snapshot()

    # -- instrumentation -------------------------------------------------------------------------------
    def _spy_refiners(self) -> None:
        self.recv_reo: dict[str, float] = {}
        self.recv_el: dict[str, np.ndarray] = {}
        self.pre: dict[str, tuple[float, np.ndarray, float]] = {}
        for r in self.m.refiners:
            self._wrap(r)

    def _wrap(self, r) -> None:
        orig_receive, orig_process = r.receive_ore, r.process
        checker = self

        def receive_ore(tonnes, basket, *args, **kwargs):
            checker.recv_reo[r.rid] = checker.recv_reo.get(r.rid, 0.0) + float(tonnes)
            checker.recv_el[r.rid] = checker.recv_el.get(r.rid, np.zeros(len(PRODUCTS))) + np.asarray(
                basket, dtype=float) * float(tonnes)
            return orig_receive(tonnes, basket, *args, **kwargs)

        def process(*args, **kwargs):
            checker.pre[r.rid] = (float(r.feed_reo), r.feed_el.copy(), float(r.capacity_t_per_week * r.utilisation))
            return orig_process(*args, **kwargs)

        r.receive_ore = receive_ore
        r.process = process

    def _snapshot(self) -> None:
        m = self.m
        self.ledger = dict(m.ledger)
        self.feed = {r.rid: (float(r.feed_reo), r.feed_el.copy()) for r in m.refiners}
        self.inv_refiners = sum((r.inventory for r in m.refiners), np.zeros(len(PRODUCTS)))
        self.inv_buyers = sum((b.inventory for b in m.buyers), np.zeros(len(PRODUCTS)))
        self.stockpiles = sum((s.stockpile for s in m.states), np.zeros(len(PRODUCTS)))
        self.recv_reo, self.recv_el, self.pre = {}, {}, {}

    # -- stepping ----------------------------------------------------------------------------------------
    def step(self) -> None:
        self.m.step()
        self.check()
        self._snapshot()

    def run(self, weeks: int) -> None:
        """Step ``weeks`` weeks checking each, then fail if any check failed in any week."""
        for _ in range(weeks):
            self.step()
        self.assert_ok()

    # -- checks ------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Run every check for the week just stepped; failures are collected per kind of check."""
        m = self.m
        w = f"week {int(m.steps)} ({m.date}, seed {m.seed}, {m.spec.name})"
        d = {k: m.ledger[k] - self.ledger[k] for k in m.ledger}
        for name, fn in (("ore balance", self._check_ore), ("routes", self._check_routes),
                         ("ore -> oxide", self._check_processing), ("oxide balance", self._check_oxides),
                         ("markets", self._check_markets), ("non-negative", self._check_non_negative),
                         ("prices", self._check_prices)):
            try:
                fn(w, d)
            except AssertionError as exc:
                first, n = self.failures.get(name, (str(exc).splitlines()[0], 0))
                self.failures[name] = (first, n + 1)
        self.weeks_checked += 1

    def assert_ok(self) -> None:
        """Fail with every kind of violation seen: how many weeks and the first occurrence."""
        if self.failures:
            lines = [f"{name}: {n} week(s); first: {first}" for name, (first, n) in self.failures.items()]
            raise AssertionError(f"invariants violated in {len(self.failures)} kind(s) of check over "
                                 f"{self.weeks_checked} weeks:\n  " + "\n  ".join(lines))

    def _check_ore(self, w: str, d: dict[str, float]) -> None:
        """Mined == delivered; sites sell within capacity, nothing while halted; feed balances."""
        m, f = self.m, self.m.fleet
        mined = float(f.sold.sum())
        received = sum(self.recv_reo.values())
        assert _close(d["mined"], mined), f"{w}: ledger mined +{d['mined']} != ore sold by sites {mined}"
        assert _close(d["mined"], d["delivered"]), f"{w}: mined {d['mined']} t != delivered {d['delivered']} t"
        assert _close(d["delivered"], received), f"{w}: ledger delivered {d['delivered']} != received {received}"
        # sites sell no more than they offer, and nothing while halted
        cap = f.capacity * np.where(f.country == "CN", max(f.quota_factor, 1.0), 1.0)
        over = f.sold - cap
        assert over.max(initial=0.0) <= RTOL * max(1.0, cap.max()), f"{w}: a site sold {over.max()} t above capacity"
        assert float(f.sold[f.halted].sum()) <= NEG_TOL, f"{w}: halted sites sold {f.sold[f.halted].sum()} t"
        assert f.sold.min(initial=0.0) >= -NEG_TOL, f"{w}: negative site sale {f.sold.min()}"
        # feed balance per plant and in total: feed change == delivered - processed
        total_change, total_proc = 0.0, 0.0
        for r in m.refiners:
            old_reo, _ = self.feed[r.rid]
            got = self.recv_reo.get(r.rid, 0.0)
            change = r.feed_reo - old_reo
            assert _close(change, got - r.processed, old_reo), (
                f"{w}: {r.rid} feed change {change} != received {got} - processed {r.processed}")
            total_change += change
            total_proc += r.processed
        assert _close(total_change, d["delivered"] - d["processed"], sum(v[0] for v in self.feed.values())), (
            f"{w}: sum of feed change {total_change} != delivered {d['delivered']} - processed {d['processed']}")
        assert _close(d["processed"], total_proc), f"{w}: ledger processed {d['processed']} != plants' {total_proc}"

    def _check_routes(self, w: str, d: dict[str, float]) -> None:
        """Ore moves only over open edges, and no edge carries more than its capacity."""
        m = self.m
        flow = m.edge_flow
        closed = ~m.routes.edge_open
        assert float(np.abs(flow[closed]).sum()) <= NEG_TOL, (
            f"{w}: {flow[closed].sum()} t of ore moved over closed edges "
            f"{[(m.routes.edge_src[i], m.routes.edge_dst[i]) for i in np.flatnonzero(closed & (flow > 0))]}")
        excess = flow - m.routes.edge_capacity
        e = int(np.argmax(excess))
        assert excess[e] <= RTOL * m.routes.edge_capacity[e], (
            f"{w}: edge {m.routes.edge_src[e]}->{m.routes.edge_dst[e]} carried {flow[e]:.3f} t "
            f"> capacity {m.routes.edge_capacity[e]:.1f} t")

    def _check_processing(self, w: str, d: dict[str, float]) -> None:
        m = self.m
        produced_total = np.zeros(len(PRODUCTS))
        for r in m.refiners:
            old_reo, old_el = self.feed[r.rid]
            recv_el = self.recv_el.get(r.rid, np.zeros(len(PRODUCTS)))
            if r.rid not in self.pre:  # not processed this week: feed only grows by deliveries
                assert r.processed == 0.0, f"{w}: {r.rid} processed {r.processed} t without processing"
                assert np.allclose(r.feed_el, old_el + recv_el, rtol=RTOL, atol=RTOL), (
                    f"{w}: {r.rid} element feed {r.feed_el} != {old_el} + received {recv_el}")
                assert not np.asarray(r.produced).any(), f"{w}: {r.rid} produced {r.produced} without processing"
                continue
            pre_reo, pre_el, planned = self.pre[r.rid]
            # what was in the feed when processing began = last week's feed + this week's deliveries
            assert _close(pre_reo, old_reo + self.recv_reo.get(r.rid, 0.0), pre_reo), (
                f"{w}: {r.rid} feed before processing {pre_reo} != {old_reo} + deliveries")
            assert np.allclose(pre_el, old_el + recv_el, rtol=RTOL, atol=RTOL * max(1.0, pre_reo)), (
                f"{w}: {r.rid} element feed before processing {pre_el} != {old_el} + received {recv_el}")
            assert pre_el.sum() <= pre_reo * (1 + RTOL) + NEG_TOL, (
                f"{w}: {r.rid} feed holds {pre_el.sum()} t of oxides in {pre_reo} t REO")
            x = r.processed
            assert -NEG_TOL <= x <= min(pre_reo, planned) * (1 + RTOL) + NEG_TOL, (
                f"{w}: {r.rid} processed {x} t with {pre_reo} t feed and {planned} t/wk planned")
            share = pre_el / pre_reo if pre_reo > 0 else np.zeros(len(PRODUCTS))
            out = np.asarray(r.produced, dtype=float)
            # ore -> oxide: each oxide <= processed x its share of the feed x recovery (separated ones only)
            bound = x * share * r.recovery * r.separates
            assert np.all(out <= bound * (1 + RTOL) + NEG_TOL), (
                f"{w}: {r.rid} produced {out} t > processed {x} x feed share {share} x recovery {r.recovery}")
            assert np.allclose(out, bound, rtol=RTOL, atol=NEG_TOL), (
                f"{w}: {r.rid} produced {out} t, expected processed x share x recovery = {bound}")
            assert out.sum() <= x * share.sum() * (1 + RTOL) + NEG_TOL, (
                f"{w}: {r.rid} produced {out.sum()} t oxide from {x} t REO holding {x * share.sum()} t")
            # the element feed left behind is the feed less what was processed
            expect_left = pre_el * (1 - x / pre_reo) if pre_reo > 0 else pre_el
            if r.feed_reo > 0:
                assert np.allclose(r.feed_el, expect_left, rtol=RTOL, atol=RTOL * max(1.0, pre_reo)), (
                    f"{w}: {r.rid} element feed after processing {r.feed_el} != {expect_left}")
            produced_total += out
        for k, p in enumerate(PRODUCTS):
            assert _close(d[f"produced_{p}"], produced_total[k]), (
                f"{w}: ledger produced_{p} +{d[f'produced_{p}']} != plants' {produced_total[k]}")
        tot = sum(d[f"produced_{p}"] for p in PRODUCTS)
        assert tot <= d["processed"] * (1 + RTOL) + NEG_TOL, (
            f"{w}: {tot} t oxide produced from {d['processed']} t REO processed")

    def _check_oxides(self, w: str, d: dict[str, float]) -> None:
        m = self.m
        inv_r = sum((r.inventory for r in m.refiners), np.zeros(len(PRODUCTS)))
        inv_b = sum((b.inventory for b in m.buyers), np.zeros(len(PRODUCTS)))
        stock = sum((s.stockpile for s in m.states), np.zeros(len(PRODUCTS)))
        for k, p in enumerate(PRODUCTS):
            dr = inv_r[k] - self.inv_refiners[k]
            expect = d[f"produced_{p}"] - d[f"sold_{p}"]
            assert _close(dr, expect, self.inv_refiners[k]), (
                f"{w}: {p} refiner inventory change {dr} != produced {d[f'produced_{p}']} - sold {d[f'sold_{p}']}")
            db = inv_b[k] - self.inv_buyers[k]
            expect = d[f"bought_{p}"] - d[f"consumed_{p}"]
            assert _close(db, expect, self.inv_buyers[k]), (
                f"{w}: {p} buyer inventory change {db} != bought {d[f'bought_{p}']} - consumed {d[f'consumed_{p}']}")
            ds = stock[k] - self.stockpiles[k]
            # stock a policy hands an agency without buying it must be ledgered too (if the model
            # ledgers it, under ``stock_endowed_<P>``)
            expect = d[f"stock_in_{p}"] - d[f"stock_out_{p}"] + d.get(f"stock_endowed_{p}", 0.0)
            assert _close(ds, expect, self.stockpiles[k]), (
                f"{w}: {p} stockpile change {ds} != in {d[f'stock_in_{p}']} - out {d[f'stock_out_{p}']}")
            # what sellers sold is what buyers bought
            out_ = d[f"sold_{p}"] + d[f"stock_out_{p}"]
            in_ = d[f"bought_{p}"] + d[f"stock_in_{p}"]
            assert _close(out_, in_), f"{w}: {p} sold {out_} t but bought {in_} t"
        for b in m.buyers:
            assert b.consumed.min() >= -NEG_TOL and b.shortage.min() >= -NEG_TOL, (
                f"{w}: buyer {b.bid_id} consumed {b.consumed}, shortage {b.shortage}")

    def _check_markets(self, w: str, d: dict[str, float]) -> None:
        clearing = self.m.week.get("clearing", {})
        assert set(clearing) == {(r, p) for r in REGIONS for p in PRODUCTS}, f"{w}: markets {sorted(clearing)}"
        for p in PRODUCTS:
            traded = 0.0
            for reg in REGIONS:
                c = clearing[(reg, p)]
                tag = f"{w}: {reg}/{p} market"
                scale = max(c.offered, c.demanded)
                assert c.volume >= 0.0, f"{tag}: volume {c.volume}"
                assert c.volume <= c.offered * (1 + RTOL) + NEG_TOL, f"{tag}: traded {c.volume} > offered {c.offered}"
                assert c.volume <= c.demanded * (1 + RTOL) + NEG_TOL, f"{tag}: traded {c.volume} > demanded {c.demanded}"
                assert _close(float(c.ask_fill.sum()), c.volume, scale), f"{tag}: ask fills {c.ask_fill.sum()} != {c.volume}"
                assert _close(float(c.bid_fill.sum()), c.volume, scale), f"{tag}: bid fills {c.bid_fill.sum()} != {c.volume}"
                assert c.ask_fill.min(initial=0.0) >= 0.0 and c.bid_fill.min(initial=0.0) >= 0.0, f"{tag}: negative fill"
                if c.volume > 0:
                    assert np.isfinite(c.price) and c.price > 0, f"{tag}: traded {c.volume} t at price {c.price}"
                traded += c.volume
            assert _close(traded, d[f"sold_{p}"] + d[f"stock_out_{p}"]), (
                f"{w}: {p} auction volume {traded} != ledger sales {d[f'sold_{p}'] + d[f'stock_out_{p}']}")

    def _check_non_negative(self, w: str, d: dict[str, float]) -> None:
        m = self.m
        for r in m.refiners:
            assert r.feed_reo >= -NEG_TOL, f"{w}: {r.rid} feed {r.feed_reo}"
            assert r.feed_el.min() >= -NEG_TOL, f"{w}: {r.rid} element feed {r.feed_el}"
            assert r.inventory.min() >= -NEG_TOL, f"{w}: {r.rid} inventory {r.inventory}"
        for b in m.buyers:
            assert b.inventory.min() >= -NEG_TOL, f"{w}: buyer {b.bid_id} inventory {b.inventory}"
        for s in m.states:
            assert s.stockpile.min() >= -NEG_TOL, f"{w}: {s.sid} stockpile {s.stockpile}"
        for g in m.armed_groups:
            assert g.revenue_usd >= -NEG_TOL, f"{w}: {g.gid} levy revenue {g.revenue_usd}"
        assert m.edge_flow.min(initial=0.0) >= -NEG_TOL, f"{w}: negative edge flow {m.edge_flow.min()}"

    def _check_prices(self, w: str, d: dict[str, float]) -> None:
        for reg in REGIONS:
            p = self.m.prices[reg]
            assert np.all(np.isfinite(p)) and np.all(p > 0), f"{w}: {reg} prices {p}"


def check_table(df: pd.DataFrame) -> None:
    """Invariants of a finished run's results table: every value finite, every price > 0."""
    bad = df[~np.isfinite(df["value"].to_numpy(dtype=float))]
    assert bad.empty, f"non-finite values in the results table:\n{bad.head(10)}"
    prices = df.loc[df["variable"] == "price", "value"]
    assert len(prices) > 0 and (prices > 0).all(), f"non-positive prices:\n{df[(df['variable'] == 'price') & (df['value'] <= 0)].head()}"


@pytest.fixture(scope="session")
def invariant_checker() -> type[InvariantChecker]:
    return InvariantChecker


@pytest.fixture(scope="session")
def table_checker() -> Callable[[pd.DataFrame], None]:
    return check_table


# ================================================================================================ cached runs
@dataclass
class RunRecord:
    """What the scenario tests need from one run, without keeping the model alive."""

    scenario: str
    seed: int
    df: pd.DataFrame
    events: list[tuple[dt.date, str]]
    financing: dict[str, list[str]] = field(default_factory=dict)  # lender -> selected projects
    deliveries: pd.DataFrame | None = None  # per-week ore deliveries by pool and refiner (trace=True)

    def series(self, variable: str, region: str = "", product: str = "") -> pd.Series:
        """One output indexed by calendar date."""
        df = self.df
        m = (df["variable"] == variable) & (df["region"] == region) & (df["product"] == product)
        return df.loc[m].set_index("date")["value"]

    def by_region(self, variable: str, product: str = "") -> pd.DataFrame:
        """One output as a date x region frame."""
        df = self.df
        m = (df["variable"] == variable) & (df["product"] == product)
        return df.loc[m].pivot_table(index="date", columns="region", values="value", aggfunc="sum")


DELIVERY_COLUMNS = ["step", "date", "origin", "node", "controller", "licensed", "state_linked",
                    "refiner", "refiner_country", "corridor", "t"]


def build_scenario(scenario: str | Scenario, weeks: int | None = None, overrides: dict | None = None,
                   extra: Iterable[dict] = (), drop: Iterable[str] = ()) -> Scenario:
    """A shipped scenario with world overrides, extra timeline entries (dicts, as in a scenario file)
    and the entries of the given types removed; validated like a file (``Scenario.check``)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    drop = set(drop)
    timeline = [t for t in sc.timeline if t.get("type") not in drop] + [dict(e) for e in extra]
    update: dict[str, Any] = {"timeline": timeline}
    if weeks is not None:
        update["weeks"] = max(weeks, sc.weeks)
    sc = sc.model_copy(update=update)
    if overrides:
        sc = sc.with_overrides(overrides)
    sc.check()
    return sc


def _run(scenario: str, seed: int, weeks: int | None, overrides: dict | None, extra: tuple[dict, ...],
         drop: tuple[str, ...], trace: bool) -> RunRecord:
    sc = build_scenario(scenario, weeks, overrides, extra, drop)
    m = RareEarthModel(scenario=sc, seed=seed, weeks=weeks)
    rows: list[tuple] = []
    if trace:
        orig = m._deliver

        def spy(pool, r, path, got, *args, **kwargs):  # records each delivery, then makes it
            rows.append((int(m.steps), m.date, pool["country"], pool["node"], pool["controller"],
                         bool(pool["licensed"]), bool(pool["state_linked"]), r.rid, r.country,
                         path.corridor, float(got)))
            return orig(pool, r, path, got, *args, **kwargs)

        m._deliver = spy
    m.run()
    items = list(m.active) + list(m.timeline)
    financing = {}
    for it in items:
        if type(it).__name__ == "Financing":
            financing[it.lender] = list(it.selected)
    deliveries = pd.DataFrame(rows, columns=DELIVERY_COLUMNS) if trace else None
    if deliveries is not None:
        deliveries["date"] = pd.to_datetime(deliveries["date"])
    df = m.results()
    return RunRecord(sc.name, seed, df, list(m.events), financing, deliveries)


class RunStore:
    """Runs kept for the session and shared between pytest-xdist workers.

    Each run is computed once per test session: in memory for this worker, and on disk (Parquet +
    JSON under the session's shared temporary folder) for the other worker. A run being computed is
    locked (``fcntl.flock``), so a second worker waits for it instead of computing it again, and
    :meth:`prefetch` lets two workers split a list of runs between them.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.memory: dict[str, RunRecord] = {}

    @staticmethod
    def key(scenario: str, seed: int, weeks: int | None = None, overrides: dict | None = None,
            extra: Iterable[dict] = (), drop: Iterable[str] = (), trace: bool = False) -> tuple[str, dict]:
        args = {"scenario": scenario, "seed": int(seed), "weeks": weeks, "overrides": dict(overrides or {}),
                "extra": [dict(e) for e in extra], "drop": sorted(drop), "trace": bool(trace)}
        text = json.dumps(args, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16], args

    def __call__(self, scenario: str, seed: int, **kw) -> RunRecord:
        return self._get(*self.key(scenario, seed, **kw), block=True)

    def prefetch(self, runs: Iterable[dict]) -> None:
        """Compute every run not yet available; with two workers each takes the ones the other is not
        already computing, then waits for the rest."""
        keys = [self.key(**r) for r in runs]
        pending = [k for k in keys if self._get(*k, block=False) is None]
        for k in pending:
            self._get(*k, block=True)

    def _paths(self, h: str) -> tuple[Path, Path, Path, Path]:
        return (self.folder / f"{h}.json", self.folder / f"{h}.parquet", self.folder / f"{h}.deliveries.parquet",
                self.folder / f"{h}.lock")

    def _get(self, h: str, args: dict, block: bool) -> RunRecord | None:
        if h in self.memory:
            return self.memory[h]
        meta, _, _, lock = self._paths(h)
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
            except BlockingIOError:
                return None  # the other worker is computing it
            try:
                if meta.exists():
                    rec = self._load(h)
                else:
                    rec = _run(args["scenario"], args["seed"], args["weeks"], args["overrides"],
                               tuple(args["extra"]), tuple(args["drop"]), args["trace"])
                    self._save(h, rec)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        self.memory[h] = rec
        return rec

    def _save(self, h: str, rec: RunRecord) -> None:
        meta, table, deliveries, _ = self._paths(h)
        rec.df.to_parquet(table)
        if rec.deliveries is not None:
            rec.deliveries.to_parquet(deliveries)
        body = {"scenario": rec.scenario, "seed": rec.seed, "financing": rec.financing,
                "events": [(d.isoformat(), t) for d, t in rec.events], "trace": rec.deliveries is not None}
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(meta)  # written last: its presence means the run is complete

    def _load(self, h: str) -> RunRecord:
        meta, table, deliveries, _ = self._paths(h)
        body = json.loads(meta.read_text())
        return RunRecord(body["scenario"], body["seed"], pd.read_parquet(table),
                         [(dt.date.fromisoformat(d), t) for d, t in body["events"]], body["financing"],
                         pd.read_parquet(deliveries) if body["trace"] else None)


@pytest.fixture(scope="session")
def run_cached(tmp_path_factory, request) -> RunStore:
    """``run_cached(scenario, seed, weeks=, overrides=, extra=, drop=, trace=) -> RunRecord``, once per
    session; ``run_cached.prefetch([dict(scenario=..., seed=...), ...])`` splits a batch between workers."""
    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker
        root = root.parent  # shared by all workers of this session
    return RunStore(root / "ree_runs")


@pytest.fixture(scope="session")
def scenario_builder() -> Callable[..., Scenario]:
    return build_scenario


@pytest.fixture(scope="session")
def seeds() -> list[int]:
    return list(SEEDS)
