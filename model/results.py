"""Outputs, declared once, and the tidy long table they are collected into.

Every output has a name, a unit and a label (:data:`OUTPUTS`). The model records values with
:meth:`Recorder.add`; :meth:`Recorder.frame` returns the tidy table with the columns in :data:`COLUMNS`
(``run_id, scenario, seed, step, date, variable, region, product, value``). ``region`` is the market
region, buyer state, route corridor, armed group or country the value belongs to (``""`` if none);
``product`` is the product (``""`` if none). Plot code reads labels and units from here, never from the model.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    unit: str
    label: str
    by: str  # what ``region`` holds for this output


OUTPUTS: dict[str, Output] = {o.name: o for o in [
    Output("price", "USD/kg", "Price (oxides and magnets)", "market region"),
    Output("volume", "t/week", "Traded volume", "market region"),
    Output("offered", "t/week", "Quantity offered at the clearing price", "market region"),
    Output("cost_of_supply", "USD/kg", "Cost of supply (producers' full cost, or import parity)", "market region"),
    Output("shortage", "t/week", "Unmet need", "buyer state"),
    Output("consumption", "t/week", "Consumption", "buyer state"),
    Output("refined_output", "t/week", "Refined oxide output", "country"),
    Output("china_refined_share", "fraction", "China's share of refined output", ""),
    Output("exports", "t/week", "China's exports (what each importer bought in China)", "destination state"),
    Output("export_allowed", "fraction", "Share of requested exports allowed", "destination state ('' = all)"),
    Output("myanmar_ore_flow", "t REO/week", "Myanmar ore flow by route", "corridor"),
    Output("myanmar_ore_to_china", "t REO/week", "Myanmar ore shipped to China", ""),
    Output("myanmar_share_cn_heavy_feed", "fraction", "Myanmar share of China's heavy-REE feed (Dy content)", ""),
    Output("ore_price", "USD/kg REO", "Ore price at the mine gate (Myanmar's pools)", "mine area"),
    Output("ore_stock", "t REO", "Ore waiting at mines and border yards", "mine area"),
    Output("feed_stock", "t REO", "Ore in refiners' feed stocks", "country"),
    Output("levy_revenue", "M USD/week", "Armed-group levy revenue", "armed group"),
    Output("conflict", "level", "Conflict state (0 calm, 1 tense, 2 fighting)", "armed group"),
    Output("inventory_refiners", "t", "Refiners' oxide inventory", "market region"),
    Output("inventory_buyers", "t", "Buyers' oxide inventory", "market region"),
    Output("trader_stock", "t", "Traders' oxide stock", "market region"),
    Output("trader_bought", "t/week", "Traders' purchases (at home and imported)", "market region"),
    Output("trader_sold", "t/week", "Traders' sales", "market region"),
    Output("stockpile", "t", "State stockpile or reserve", "state"),
    Output("stockpile_bought", "t/week", "State stock agency purchases", "state"),
    Output("stockpile_released", "t/week", "State stock agency releases", "state"),
    Output("capacity_online", "t REO/week", "Refining capacity online", "country"),
    Output("kachin_active_sites", "sites", "Active Kachin mine sites", ""),
    Output("ore_mined", "t REO/week", "Ore mined", "country"),
    Output("floor_payments", "M USD/week", "Price-floor payments", "covered country"),
    Output("finance_committed", "M USD", "Financing committed to projects, cumulative", "lender"),
    Output("finance_spent", "M USD", "Financing disbursed over permitting and construction, cumulative", "lender"),
    Output("finance_stranded", "M USD", "Financing disbursed on projects later cancelled", "lender"),
    # runs whose demand grows (a demand path or behaviour.demand_growth_per_year; model/demand.py)
    Output("demand_index", "index (start = 1)", "Demand relative to the start (before thrifting)", "segment"),
    Output("need", "t/week", "Buyers' need (consumption plus shortage)", "buyer state"),
    # recipes holding two coercivity substitutes (behaviour.coercivity_substitutes; model/substitution.py)
    Output("coercivity_share", "fraction", "Share of magnets' heavy-RE coercivity from each substitute", ""),
    # worlds with term contracts (behaviour.contract_share > 0)
    Output("contract_volume", "t/week", "Delivered under term contracts", "market region"),
    Output("contract_price", "USD/kg", "Term-contract price (source price + premium + export cost)", "market region"),
    Output("average_price", "USD/kg", "Volume-weighted price paid, contracts and spot", "market region"),
    Output("end_use_refused", "t/week", "Contract volume refused licences for its end users' class (FACTS P7)",
           "destination state"),
    # worlds with a magnet stage
    Output("magnet_output", "t/week", "Magnets made", "country of the plant"),
    Output("magnet_capacity", "t/week", "Magnet capacity online", "country of the plant"),
    Output("china_magnet_share", "fraction", "China's share of magnets made", ""),
    Output("inventory_makers", "t", "Magnet makers' stocks (oxides they hold, magnets they made)", "market region"),
    Output("recycled", "t/week", "Oxide recovered from magnet swarf", "market region"),
    Output("disposed", "t/week", "Co-product oxide disposed of", ""),
    Output("element_exports", "t/week", "Elements leaving China, in oxides and inside magnets", "destination state"),
    Output("units_short", "units/week", "Downstream units not made for want of their product (product column: "
           "the unit, e.g. EV motors)", "buyer state"),
]}

COLUMNS = ["run_id", "scenario", "seed", "step", "date", "variable", "region", "product", "value"]


class Recorder:
    """Accumulates one week's values in blocks: ``(step, date, keys, values)`` with ``keys`` a list of
    ``(variable, region, product)`` (the same list object week after week for fixed layouts). Appending a
    block is cheap; the columns are built only when read (:meth:`frame`, :meth:`rows_since`,
    :attr:`latest`)."""

    def __init__(self, run_id: str, scenario: str, seed: int):
        self.run_id, self.scenario, self.seed = run_id, scenario, seed
        self._blocks: list[tuple[int, dt.date, list[tuple[str, str, str]], list[float]]] = []
        self._starts: list[int] = []  # row number of each block's first row
        self._n = 0
        self._latest: dict[tuple[str, str, str], float] = {}
        self._latest_upto = 0  # blocks folded into _latest

    def _append(self, step: int, date: dt.date, keys: list[tuple[str, str, str]], values: list[float]) -> None:
        self._blocks.append((step, date, keys, values))
        self._starts.append(self._n)
        self._n += len(values)

    def add(self, step: int, date: dt.date, variable: str, value: float, region: str = "",
            product: str = "") -> None:
        if variable not in OUTPUTS:
            raise KeyError(f"output {variable!r} is not declared in model.results.OUTPUTS")
        self._append(step, date, [(variable, region, product)], [float(value)])

    def add_rows(self, step: int, date: dt.date, rows: list[tuple]) -> None:
        """Record many values of one week at once: ``rows`` of ``(variable, value, region, product)``,
        in order (the same as calling :meth:`add` for each)."""
        if not rows:
            return
        keys = [(r[0], r[2], r[3]) for r in rows]
        self.check_keys(keys)
        self._append(step, date, keys, [float(r[1]) for r in rows])

    def add_columns(self, step: int, date: dt.date, keys: list[tuple[str, str, str]], values) -> None:
        """Record one week's values (a list of floats) for ``keys`` (``(variable, region, product)``, each
        declared; the caller checks them once with :meth:`check_keys`) in order: the bulk form of
        :meth:`add_rows`. ``keys`` is kept, not copied: pass a list that is not changed afterwards."""
        if len(values) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        self._append(step, date, keys, values)

    @staticmethod
    def check_keys(keys) -> None:
        unknown = {k[0] for k in keys}.difference(OUTPUTS)
        if unknown:
            raise KeyError(f"output {sorted(unknown)[0]!r} is not declared in model.results.OUTPUTS")

    def blocks_since(self, k: int) -> list[tuple[list[tuple[str, str, str]], list[float]]]:
        """The ``(keys, values)`` of the blocks recorded from block ``k`` on (a reader's own count of the
        blocks it has read)."""
        return [(keys, values) for _, _, keys, values in self._blocks[k:]]

    @property
    def latest(self) -> dict[tuple[str, str, str], float]:
        """The last value recorded for every key."""
        for _, _, keys, values in self._blocks[self._latest_upto:]:
            self._latest.update(zip(keys, values, strict=True))
        self._latest_upto = len(self._blocks)
        return self._latest

    def __len__(self) -> int:
        return self._n

    def rows_since(self, start: int):
        """Rows recorded from row ``start`` on, as ``(step, date, variable, region, product, value)``
        tuples: what a live view reads each redraw instead of rebuilding :meth:`frame`."""
        b = bisect.bisect_right(self._starts, start) - 1 if start > 0 else 0
        for k in range(max(b, 0), len(self._blocks)):
            step, date, keys, values = self._blocks[k]
            skip = max(start - self._starts[k], 0)
            for key, v in zip(keys[skip:], values[skip:], strict=True):
                yield step, date, key[0], key[1], key[2], v

    def _columns(self) -> tuple[np.ndarray, pd.Series, np.ndarray, list[tuple[str, str, str]], np.ndarray]:
        """The table's columns in compact form: each row's step and date (one per block, repeated), the code of
        its key among the distinct keys (``uniques``), and its value. A fixed layout's keys are coded once (the
        same list object week after week), so building the table costs one pass over the values, not a
        Python string per row and column (turning 300,000 strings into Arrow strings took longer than the
        rest of a 520-week magnet-world run's bookkeeping)."""
        index: dict[tuple[str, str, str], int] = {}
        coded: dict[int, np.ndarray] = {}  # id of a keys list -> its codes (the blocks keep the lists alive)
        parts, lengths = [], []
        for _, _, keys, _ in self._blocks:
            codes = coded.get(id(keys))
            if codes is None:
                codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.intp, count=len(keys))
                coded[id(keys)] = codes
            parts.append(codes)
            lengths.append(len(keys))
        steps = np.repeat(np.array([b[0] for b in self._blocks], dtype="int64"), lengths)
        dates = pd.to_datetime(pd.Series([b[1] for b in self._blocks]))
        codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
        values = np.fromiter(itertools.chain.from_iterable(b[3] for b in self._blocks), dtype="float64",
                             count=self._n)
        return steps, dates.repeat(lengths).reset_index(drop=True), codes, list(index), values

    def frame(self) -> pd.DataFrame:
        n = self._n
        steps, dates, codes, uniques, values = self._columns()

        def strings(column: list[str], at: np.ndarray) -> pd.Series:
            # the distinct strings once, then taken by code in Arrow (pandas' own take checks the codes
            # first, which costs ten times the take): the same "string" column, without a conversion per row
            return pd.Series(pd.arrays.ArrowStringArray(pc.take(pa.array(column, type=pa.large_string()), at)))

        constant = np.zeros(n, dtype=np.intp)
        return pd.DataFrame({
            "run_id": strings([self.run_id], constant),
            "scenario": strings([self.scenario], constant),
            "seed": pd.Series(np.full(n, self.seed, dtype="int64")),
            "step": pd.Series(steps),
            "date": dates,
            "variable": strings([k[0] for k in uniques], codes),
            "region": strings([k[1] for k in uniques], codes),
            "product": strings([k[2] for k in uniques], codes),
            "value": pd.Series(values),
        }, columns=COLUMNS)


def series(df: pd.DataFrame, variable: str, region: str = "", product: str = "") -> pd.Series:
    """One output as a Series indexed by step (a convenience for tests and plots)."""
    m = (df["variable"] == variable) & (df["region"] == region) & (df["product"] == product)
    return df.loc[m].set_index("step")["value"]
