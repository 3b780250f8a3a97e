"""The weekly observation: every declared output (:data:`model.results.OUTPUTS`) recorded at stage 9.

:class:`Observer` reads the model's public state and this week's :class:`~model.model.WeekRecord` and hands
one row per value to the :class:`~model.results.Recorder`; it also builds the Mesa ``DataCollector`` view
of the main outputs (for ``make_plot_component`` and ``mesa.batch_run``). It writes nothing else.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.results import OUTPUTS, Recorder

if TYPE_CHECKING:
    from model.model import RareEarthModel


class Observer:
    def __init__(self, model: RareEarthModel):
        self.model = model
        self.recorder = Recorder(model.run_id, model.spec.name, model.seed)
        self._corridors_seen: set[str] = set()
        f = model.fleet
        self._kachin = (f.country == "MM") & f.entry_exit
        self._sites_of_country = {str(c): np.flatnonzero(f.country == c) for c in np.unique(f.country)}
        self._areas = sorted(set(f.node))
        self._sites_of_area = {a: np.flatnonzero(np.array(f.node) == a) for a in self._areas}
        self._heavy = model.products.index(model.behaviour.heavy_marker_product)

    def record(self) -> None:
        m = self.model
        rows: list[tuple] = []  # (variable, value, region, product)
        add = rows.append
        products, regions = m.products, m.regions
        week = m.week
        sig = m.signals
        rb, bb, tb = m.refiner_book, m.buyer_book, m.trader_book
        inv_r = np.zeros((len(regions), len(products)))
        np.add.at(inv_r, rb.region_code, rb.inventory)
        inv_b = bb.totals(bb.inventory, by="region")
        for g, reg in enumerate(regions):
            res = week.clearing.get(reg)
            trade_rows = tb.rows_home[reg]
            imp_rows = np.flatnonzero(np.array([tb.region[i] == reg and tb.imports[i] for i in range(tb.n)],
                                               dtype=bool)) if tb.n else np.zeros(0, dtype=int)
            t_stock = tb.stock[trade_rows].sum(axis=0)
            t_bought = tb.bought[trade_rows].sum(axis=0) + tb.imported[imp_rows].sum(axis=0)
            t_sold = tb.sold[trade_rows].sum(axis=0)
            for k, p in enumerate(products):
                add(("price", sig.price[reg][k], reg, p))
                add(("volume", res.volume[k] if res else 0.0, reg, p))
                add(("offered", res.supplied[k] if res else 0.0, reg, p))
                add(("cost_of_supply", sig.normal[reg][k], reg, p))
                add(("inventory_refiners", inv_r[g, k], reg, p))
                add(("inventory_buyers", inv_b[g, k], reg, p))
                add(("trader_stock", t_stock[k], reg, p))
                add(("trader_bought", t_bought[k], reg, p))
                add(("trader_sold", t_sold[k], reg, p))
        short = bb.totals(bb.shortage, by="state")
        cons = bb.totals(bb.consumed, by="state")
        for i, sid in enumerate(bb.states):
            for k, p in enumerate(products):
                add(("shortage", short[i, k], sid, p))
                add(("consumption", cons[i, k], sid, p))
        self._record_supply(add)
        self._record_trade(add)
        self._record_ore(add)
        for g in m.armed_groups:
            add(("levy_revenue", g.revenue_usd / 1e6, g.gid, ""))
            add(("conflict", int(g.conflict), g.gid, ""))
        for s in m.states:
            if s.stockpile.any() or s.mandate is not None:
                for k, p in enumerate(products):
                    add(("stockpile", s.stockpile[k], s.sid, p))
                    add(("stockpile_bought", s.stock_bought[k], s.sid, p))
                    add(("stockpile_released", s.stock_released[k], s.sid, p))
        caps: dict[str, float] = {}
        for i in range(rb.n):
            caps[rb.country[i]] = caps.get(rb.country[i], 0.0) + float(rb.capacity[i])
        for c in sorted(caps):
            add(("capacity_online", caps[c], c, ""))
        for c, usd in sorted(week.floor_payments.items()):
            add(("floor_payments", usd / 1e6, c, ""))
        self.recorder.add_rows(int(m.steps), m.date, [(v, x, r, p) for v, x, r, p in rows])

    def _record_supply(self, add) -> None:
        m = self.model
        produced = m.week.produced
        total = sum(produced.values(), np.zeros(len(m.products)))
        for country in sorted(produced):
            for k, p in enumerate(m.products):
                add(("refined_output", produced[country][k], country, p))
        cn = produced.get("CN", np.zeros(len(m.products)))
        if total.sum() > 0:
            add(("china_refined_share", float(cn.sum() / total.sum()), "", ""))
            for k, p in enumerate(m.products):
                if total[k] > 0:
                    add(("china_refined_share", cn[k] / total[k], "", p))

    def _record_trade(self, add) -> None:
        m = self.model
        week = m.week
        req_tot = np.zeros(len(m.products))
        got_tot = np.zeros(len(m.products))
        for dest in m.import_destinations():
            exp = week.exports.get(dest, np.zeros(len(m.products)))
            req = week.export_requests.get(dest, np.zeros(len(m.products)))
            allow = m.rules.allowance(dest)
            ok = np.minimum(req, allow)
            req_tot += req
            got_tot += ok
            share = np.where(req > 1e-12, ok / np.maximum(req, 1e-12), np.where(np.isfinite(allow), 0.0, 1.0))
            for k, p in enumerate(m.products):
                add(("exports", exp[k], dest, p))
                add(("export_allowed", share[k], dest, p))
        share = np.where(req_tot > 1e-12, got_tot / np.maximum(req_tot, 1e-12), 1.0)
        for k, p in enumerate(m.products):
            add(("export_allowed", share[k], "", p))

    def _record_ore(self, add) -> None:
        m = self.model
        ore, f = m.week.ore, m.fleet
        flows = ore.corridor_flow
        self._corridors_seen.update(flows)
        for corridor in sorted(self._corridors_seen):  # every route Myanmar ore has used, 0 when idle
            add(("myanmar_ore_flow", flows.get(corridor, 0.0), corridor or "other", ""))
        if m.steps > 0:
            add(("myanmar_ore_to_china", ore.to_china, "", ""))
        heavy = self._heavy_feed_share()
        if np.isfinite(heavy):
            add(("myanmar_share_cn_heavy_feed", heavy, "", ""))
        for j, pool in enumerate(m.ore.pools):
            if pool.country == "MM" and j < ore.gate_price.size and np.isfinite(ore.gate_price[j]):
                add(("ore_price", ore.gate_price[j], pool.node, ""))
        for a in self._areas:
            add(("ore_stock", float(f.stock[self._sites_of_area[a]].sum()), a, ""))
        feed: dict[str, float] = {}
        rb = m.refiner_book
        for i in range(rb.n):
            feed[rb.country[i]] = feed.get(rb.country[i], 0.0) + float(rb.feed_reo[i])
        for c in sorted(feed):
            add(("feed_stock", feed[c], c, ""))
        add(("kachin_active_sites", int((f.active & self._kachin).sum()), "", ""))
        for c, idx in self._sites_of_country.items():
            add(("ore_mined", float(f.mined[idx].sum()), c, ""))

    def _heavy_feed_share(self) -> float:
        """Myanmar's share of the heavy marker (Dy) contained in ore delivered to Chinese plants this week."""
        m = self.model
        pairs = m.week.ore.pairs
        if not pairs:
            return float("nan")
        content: dict[str, list[float]] = {}
        for pool in m.ore.pools:
            w = float(m.fleet.sold[pool.at].sum())
            c = content.setdefault(pool.country, [0.0, 0.0])
            c[0] += w * m.ore.baskets[pool.ore][self._heavy]
            c[1] += w
        tot = mm = 0.0
        for (origin, dest), q in pairs.items():
            if dest != "CN" or origin not in content or content[origin][1] <= 0:
                continue
            x = q * content[origin][0] / content[origin][1]
            tot += x
            if origin == "MM":
                mm += x
        return mm / tot if tot > 0 else float("nan")

    # -- a Mesa view of the main outputs ---------------------------------------------------------------
    def datacollector(self) -> mesa.DataCollector:
        m = self.model
        reporters = {}
        for reg in m.regions:
            for p in m.products:
                reporters[reporter_name("price", reg, p)] = _latest("price", reg, p)
                reporters[reporter_name("volume", reg, p)] = _latest("volume", reg, p)
        reporters["china_refined_share"] = _latest("china_refined_share")
        reporters["myanmar_ore_to_china"] = _latest("myanmar_ore_to_china")
        reporters["kachin_active_sites"] = _latest("kachin_active_sites")
        for sid in m.buyer_book.states:
            for p in m.products:
                reporters[reporter_name("shortage", sid, p)] = _latest("shortage", sid, p)
        return mesa.DataCollector(model_reporters=reporters)


def reporter_name(variable: str, region: str = "", product: str = "") -> str:
    """Name of a DataCollector column, shared by the model and the UI."""
    assert variable in OUTPUTS
    return "_".join(x for x in (variable, str(region), str(product)) if x)


def _latest_value(m: RareEarthModel, variable: str, region: str, product: str) -> float:
    return m.latest(variable, region, product)


def _latest(variable: str, region: str = "", product: str = "") -> functools.partial:
    """A DataCollector reporter (a partial of a module function, so that models pickle)."""
    return functools.partial(_latest_value, variable=variable, region=str(region), product=str(product))
