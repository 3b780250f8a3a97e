"""Outputs, declared once, and the tidy long table they are collected into.

Every output has a name, a unit and a label (:data:`OUTPUTS`). The model records values with
:meth:`Recorder.add`; :meth:`Recorder.frame` returns the tidy table with the columns in :data:`COLUMNS`
(``run_id, scenario, seed, step, date, variable, region, product, value``). ``region`` is the market
region, buyer state, route corridor, armed group or country the value belongs to (``""`` if none);
``product`` is the product (``""`` if none). Plot code reads labels and units from here, never from the model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    unit: str
    label: str
    by: str  # what ``region`` holds for this output


OUTPUTS: dict[str, Output] = {o.name: o for o in [
    Output("price", "USD/kg", "Oxide price", "market region"),
    Output("volume", "t/week", "Traded volume", "market region"),
    Output("offered", "t/week", "Quantity offered at the clearing price", "market region"),
    Output("cost_of_supply", "USD/kg", "Cost of supply (producers' full cost, or import parity)", "market region"),
    Output("shortage", "t/week", "Unmet need", "buyer state"),
    Output("consumption", "t/week", "Consumption", "buyer state"),
    Output("refined_output", "t/week", "Refined oxide output", "country"),
    Output("china_refined_share", "fraction", "China's share of refined output", ""),
    Output("exports", "t/week", "China's exports", "destination state"),
    Output("export_allowed", "fraction", "Share of requested exports allowed", "destination state ('' = all)"),
    Output("myanmar_ore_flow", "t REO/week", "Myanmar ore flow by route", "corridor"),
    Output("myanmar_ore_to_china", "t REO/week", "Myanmar ore shipped to China", ""),
    Output("myanmar_share_cn_heavy_feed", "fraction", "Myanmar share of China's heavy-REE feed (Dy content)", ""),
    Output("ore_price", "USD/kg REO", "Ore price at the mine gate", "mine area"),
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
]}

COLUMNS = ["run_id", "scenario", "seed", "step", "date", "variable", "region", "product", "value"]


class Recorder:
    """Accumulates rows in plain lists (cheap appends in the hot path)."""

    def __init__(self, run_id: str, scenario: str, seed: int):
        self.run_id, self.scenario, self.seed = run_id, scenario, seed
        self.step: list[int] = []
        self.date: list[dt.date] = []
        self.variable: list[str] = []
        self.region: list[str] = []
        self.product: list[str] = []
        self.value: list[float] = []
        self.latest: dict[tuple[str, str, str], float] = {}

    def add(self, step: int, date: dt.date, variable: str, value: float, region: str = "",
            product: str = "") -> None:
        if variable not in OUTPUTS:
            raise KeyError(f"output {variable!r} is not declared in model.results.OUTPUTS")
        v = float(value)
        self.step.append(step)
        self.date.append(date)
        self.variable.append(variable)
        self.region.append(region)
        self.product.append(product)
        self.value.append(v)
        self.latest[(variable, region, product)] = v

    def add_rows(self, step: int, date: dt.date, rows: list[tuple]) -> None:
        """Record many values of one week at once: ``rows`` of ``(variable, value, region, product)``,
        in order (the same as calling :meth:`add` for each)."""
        if not rows:
            return
        variables, values, regions, products = zip(*rows, strict=True)
        unknown = set(variables).difference(OUTPUTS)
        if unknown:
            raise KeyError(f"output {sorted(unknown)[0]!r} is not declared in model.results.OUTPUTS")
        values = [float(v) for v in values]
        n = len(values)
        self.step.extend([step] * n)
        self.date.extend([date] * n)
        self.variable.extend(variables)
        self.region.extend(regions)
        self.product.extend(products)
        self.value.extend(values)
        self.latest.update(zip(zip(variables, regions, products, strict=True), values, strict=True))

    def add_columns(self, step: int, date: dt.date, keys: list[tuple[str, str, str]], values) -> None:
        """Record one week's values (a list of floats) for ``keys`` (``(variable, region, product)``, each
        declared; the caller checks them once with :meth:`check_keys`) in order: the bulk form of
        :meth:`add_rows`."""
        n = len(values)
        if n != len(keys):
            raise ValueError(f"{len(keys)} keys but {n} values")
        self.step.extend([step] * n)
        self.date.extend([date] * n)
        self.variable.extend(k[0] for k in keys)
        self.region.extend(k[1] for k in keys)
        self.product.extend(k[2] for k in keys)
        self.value.extend(values)
        self.latest.update(zip(keys, values, strict=True))

    @staticmethod
    def check_keys(keys) -> None:
        unknown = {k[0] for k in keys}.difference(OUTPUTS)
        if unknown:
            raise KeyError(f"output {sorted(unknown)[0]!r} is not declared in model.results.OUTPUTS")

    def __len__(self) -> int:
        return len(self.value)

    def rows_since(self, start: int):
        """Rows recorded from row ``start`` on, as ``(step, date, variable, region, product, value)``
        tuples: what a live view reads each redraw instead of rebuilding :meth:`frame`."""
        return zip(self.step[start:], self.date[start:], self.variable[start:], self.region[start:],
                   self.product[start:], self.value[start:], strict=True)

    def frame(self) -> pd.DataFrame:
        n = len(self.value)
        return pd.DataFrame({
            "run_id": pd.Series([self.run_id] * n, dtype="string"),
            "scenario": pd.Series([self.scenario] * n, dtype="string"),
            "seed": pd.Series([self.seed] * n, dtype="int64"),
            "step": pd.Series(self.step, dtype="int64"),
            "date": pd.to_datetime(pd.Series(self.date)),
            "variable": pd.Series(self.variable, dtype="string"),
            "region": pd.Series(self.region, dtype="string"),
            "product": pd.Series(self.product, dtype="string"),
            "value": pd.Series(self.value, dtype="float64"),
        }, columns=COLUMNS)


def series(df: pd.DataFrame, variable: str, region: str = "", product: str = "") -> pd.Series:
    """One output as a Series indexed by step (a convenience for tests and plots)."""
    m = (df["variable"] == variable) & (df["region"] == region) & (df["product"] == product)
    return df.loc[m].set_index("step")["value"]
