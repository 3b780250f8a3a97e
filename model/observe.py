"""The weekly observation: every declared output (:data:`model.results.OUTPUTS`) recorded at stage 9.

:class:`Observer` reads the model's public state and this week's :class:`~model.model.WeekRecord` and hands
one value per ``(variable, region, product)`` to the :class:`~model.results.Recorder`; it also builds the Mesa
``DataCollector`` view of the main outputs (for ``make_plot_component`` and ``mesa.batch_run``). It writes
nothing else. Keys that exist every week (prices by market, shortage by buyer state, ...) are laid out once;
keys that come and go (a route Myanmar ore starts to use, a state that starts stockpiling) are added when
they appear and then recorded every week (0 when idle), so no series has holes.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import add_reduce as _sum
from model.arrays import bincount, count_nonzero, where
from model.exchange import row_selector, take_rows
from model.results import OUTPUTS, Recorder

if TYPE_CHECKING:
    from model.model import RareEarthModel

Key = tuple[str, str, str]
KG_PER_T = 1000.0

MARKET_VARS = ("price", "volume", "offered", "cost_of_supply", "inventory_refiners", "inventory_buyers",
               "trader_stock", "trader_bought", "trader_sold")


class Observer:
    def __init__(self, model: RareEarthModel):
        self.model = model
        self.recorder = Recorder(model.run_id, model.spec.name, model.seed)
        m = model
        P, R = m.products, m.regions
        f = m.fleet
        self._kachin = (f.country == "MM") & f.entry_exit
        countries = sorted({str(c) for c in f.country})
        self._country_code = np.array([countries.index(str(c)) for c in f.country])
        self._countries = countries
        areas = sorted(set(f.node))
        self._areas = areas
        self._area_code = np.array([areas.index(a) for a in f.node])
        self._heavy = m.products.index(m.behaviour.heavy_marker_product)
        tb = m.trader_book
        # per region, its traders' rows and its importers' rows (slices when consecutive)
        self._trader_rows = {r: (row_selector(tb.rows_home[r]), row_selector(
            np.array([i for i in range(tb.n) if tb.region[i] == r and tb.imports[i]], dtype=int))) for r in R}
        oxides = [j for j, p in enumerate(m.products) if m.world.product(p).stage == "oxide"]
        self._oxide_idx = np.array(oxides, dtype=np.intp)  # the oxides: the element_exports rows' products
        self._by_refiner_country: tuple = (None, [], [])  # see _refiner_countries
        self._oxide_names = tuple(m.products[j] for j in oxides)
        self._coercivity_ix: tuple = (None, None, None)  # (substitution, its cells' flat index, shape), made once
        self._dests = m.import_destinations()
        # keys recorded every week, in the order the values are laid out
        self._market_keys = [(v, r, p) for r in R for v in MARKET_VARS for p in P]
        self._state_keys = [(v, s, p) for s in m.buyer_book.states for v in ("shortage", "consumption") for p in P]
        self._trade_keys = ([(v, d, p) for d in self._dests for v in ("exports", "export_allowed") for p in P]
                            + [("export_allowed", "", p) for p in P])
        self._ore_keys = ([("ore_stock", a, "") for a in areas] + [("kachin_active_sites", "", "")]
                          + [("ore_mined", c, "") for c in countries])
        self._group_keys = [(v, g.gid, "") for g in m.armed_groups for v in ("levy_revenue", "conflict")]
        for keys in (self._market_keys, self._state_keys, self._trade_keys, self._ore_keys, self._group_keys):
            Recorder.check_keys(keys)
        self._corridors_seen: list[str] = []
        self._stockpiling: list[str] = []  # states that have held stock or a mandate (recorded from then on)
        self._idle_states = list(m.states)  # the others (see _dynamic)
        self._stock_states: list = []  # the states of _stockpiling, in the model's order
        self._dynamic_keys: list[Key] = []  # last week's layout of the keys that come and go
        self._recycled_seen: set[str] = set()  # products recycled at least once (recorded from then on)
        self._made_rows: tuple = ((), [])  # (countries that made magnets, their magnet_output keys): _magnets
        self._maker_capacity: tuple = (None, [], [])  # (the makers' capacity array it was made from, its keys, values)
        # buyers whose shortage counts in downstream units: (state, unit) -> [(row, kg per unit)], fixed
        self._unit_rows: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for i, spec in enumerate(m.buyer_book.specs):
            if spec.unit and spec.kg_per_unit > 0:
                self._unit_rows.setdefault((spec.state, spec.unit), []).append((i, spec.kg_per_unit))
        # (the ore market's pools, the heavy marker's share of each, each one's origin country code, and the
        # code of each origin country): see _heavy_feed_share
        self._heavy_of_pools: tuple = (None, None, None, {})
        self._rows: dict[tuple, list[Key]] = {}  # rows of keys, made once (see _row)
        self._unit_keys = [(("units_short", state, unit), rows) for (state, unit), rows in sorted(self._unit_rows.items())]
        # the same as flat arrays: each (buyer row, kg per unit) in turn, and the key it adds to; while no key has
        # more than two rows, bincount's sums from 0.0 are sum()'s (Python's compensated sum of two floats is
        # their rounded sum: the compensation is the exact rounding error, which rounds away again)
        self._units_by_bincount = all(len(rows) <= 2 for _, rows in self._unit_keys)
        self._unit_key_list = [key for key, _ in self._unit_keys]
        self._unit_row = np.array([i for _, rows in self._unit_keys for i, _ in rows], dtype=np.intp)
        self._unit_kg = np.array([kg for _, rows in self._unit_keys for _, kg in rows], dtype=float)
        self._unit_code = np.array([j for j, (_, rows) in enumerate(self._unit_keys) for _ in rows], dtype=np.intp)
        # runs whose demand grows: each segment's demand index (buyers' multipliers weighted by their demand
        # at the start) and buyers' need by state
        self._demand_keys: list[Key] = []
        if m.demand is not None and m.demand.grows:
            bb = m.buyer_book
            segments = sorted({spec.segment for spec in bb.specs})
            self._segment_code = np.array([segments.index(spec.segment) for spec in bb.specs], dtype=int)
            self._segment_weight = bb.magnet_t_per_week.copy()
            self._segment_base = bincount(self._segment_code, weights=self._segment_weight,
                                             minlength=len(segments))
            self._demand_keys = ([("demand_index", seg, "") for seg in segments]
                                 + [("need", s, p) for s in bb.states for p in P])
            Recorder.check_keys(self._demand_keys)
        mask = m.maker_book.magnet_mask if m.maker_book.n else np.zeros(len(P), dtype=bool)
        self._magnet_idx = np.flatnonzero(mask)
        self._magnet_names = tuple(P[j] for j in self._magnet_idx.tolist())

    # ------------------------------------------------------------------------------------------- a week
    def record(self) -> None:
        m = self.model
        rec = self.recorder
        step, date = int(m.steps), m.date
        P = m.products
        week, sig = m.week, m.signals
        rb, bb, tb = m.refiner_book, m.buyer_book, m.trader_book
        inv_r = [_sum(take_rows(rb.inventory, rb.at_region[reg]), axis=0) for reg in m.regions]
        inv_b = bb.totals(bb.inventory, by="region")
        zeros = np.zeros(len(P))
        columns = []
        for g, reg in enumerate(m.regions):  # laid out as _market_keys: region, variable, product
            res = week.clearing.get(reg)
            home, imp = self._trader_rows[reg]
            columns += (sig.price[reg], res.volume if res else zeros, res.supplied if res else zeros, sig.normal[reg],
                        inv_r[g], inv_b[g], _sum(take_rows(tb.stock, home), axis=0),
                        _sum(take_rows(tb.bought, home), axis=0) + _sum(take_rows(tb.imported, imp), axis=0),
                        _sum(take_rows(tb.sold, home), axis=0))
        rec.add_columns(step, date, self._market_keys, np.concatenate(columns).tolist())  # one list, not 18
        # per state its shortage then its consumption (the layout of _state_keys), summed in one pass
        both = bb.totals(np.concatenate((bb.shortage, bb.consumed), axis=1), by="state")
        rec.add_columns(step, date, self._state_keys, both.ravel().tolist())
        rec.add_columns(step, date, self._trade_keys, self._trade_values())
        f = m.fleet
        ore_vals = (bincount(self._area_code, weights=f.stock, minlength=len(self._areas)).tolist()
                    + [float(_sum(f.active & self._kachin, axis=None))]
                    + bincount(self._country_code, weights=f.mined, minlength=len(self._countries)).tolist())
        rec.add_columns(step, date, self._ore_keys, ore_vals)
        rec.add_columns(step, date, self._group_keys,
                        [x for g in m.armed_groups for x in (g.revenue_usd / 1e6, float(g.conflict))])
        if self._demand_keys:
            mult = np.broadcast_to(m.demand_multiplier, self._segment_weight.shape)
            index = bincount(self._segment_code, weights=self._segment_weight * mult,
                                minlength=self._segment_base.size) / self._segment_base
            rec.add_columns(step, date, self._demand_keys,
                            index.tolist() + bb.totals(bb.needed, by="state").ravel().tolist())
        keys, vals = self._dynamic()
        if keys:
            if keys != self._dynamic_keys:  # a key came or went: check the new layout once, then keep it
                Recorder.check_keys(keys)
                self._dynamic_keys = keys
            rec.add_columns(step, date, self._dynamic_keys, list(map(float, vals)))  # map: a C loop

    def _trade_values(self) -> list[float]:
        """China's exports and the share of requested exports allowed, by destination and in all."""
        m = self.model
        n_p = len(m.products)
        week = m.week
        out: list[float] = []
        if not m.rules.export_allowance:  # nothing rationed: every request is allowed in full (x / x = 1)
            zeros, ones = [0.0] * n_p, [1.0] * n_p
            for dest in self._dests:
                exported = week.exports.get(dest)
                out += (zeros if exported is None else exported.tolist()) + ones
            return out + ones
        req_tot, ok_tot = np.zeros(n_p), np.zeros(n_p)
        for dest in self._dests:
            req = week.export_requests.get(dest, np.zeros(n_p))
            allow = m.rules.allowance(dest)
            ok = np.minimum(req, allow)
            req_tot += req
            ok_tot += ok
            share = where(req > 1e-12, ok / np.maximum(req, 1e-12), where(np.isfinite(allow), 0.0, 1.0))
            out += week.exports.get(dest, np.zeros(n_p)).tolist() + share.tolist()
        return out + where(req_tot > 1e-12, ok_tot / np.maximum(req_tot, 1e-12), 1.0).tolist()

    def _row(self, variable: str, region: str, products: tuple[str, ...] | None = None) -> list[Key]:
        """The keys of ``variable`` for ``region`` and every product (or ``products``), made once: week after
        week the same tuples, so a layout is built by extending lists and compared by identity."""
        row = self._rows.get((variable, region, products))
        if row is None:
            row = [(variable, region, p) for p in (self.model.products if products is None else products)]
            self._rows[(variable, region, products)] = row
        return row

    def _interleaved(self, variables: tuple[str, ...], region: str) -> list[Key]:
        """The keys of several variables for ``region``, product by product (each product's variables
        together, the layout of the stockpile and contract outputs), made once."""
        row = self._rows.get((variables, region, None))
        if row is None:
            row = [(v, region, p) for p in self.model.products for v in variables]
            self._rows[(variables, region, None)] = row
        return row

    def _dynamic(self) -> tuple[list[Key], list[float]]:
        """Keys that depend on who is producing, trading or stockpiling this week. Whole rows of keys (an
        output over every product) are appended at once, from :meth:`_row`'s cache, with their values."""
        m = self.model
        P = m.products
        keys: list[Key] = []
        vals: list[float] = []

        def add(key: Key, value) -> None:
            keys.append(key)
            vals.append(value)

        produced = m.week.produced
        total = sum(produced.values(), np.zeros(len(P)))
        for country in sorted(produced):
            keys += self._row("refined_output", country)
            vals += produced[country].tolist()
        cn = produced.get("CN", np.zeros(len(P)))
        refined = _sum(total, axis=None)
        if refined > 0:
            add(("china_refined_share", "", ""), float(_sum(cn, axis=None) / refined))
            share = self._row("china_refined_share", "")
            for k, c, t in zip(share, cn.tolist(), total.tolist(), strict=True):
                if t > 0:
                    add(k, c / t)
        ore = m.week.ore
        for c in ore.corridor_flow:
            if c not in self._corridors_seen:
                self._corridors_seen.append(c)
        for corridor in sorted(self._corridors_seen):  # every route Myanmar ore has used, 0 when idle
            add(("myanmar_ore_flow", corridor or "other", ""), ore.corridor_flow.get(corridor, 0.0))
        if m.steps > 0:
            add(("myanmar_ore_to_china", "", ""), ore.to_china)
        heavy = self._heavy_feed_share()
        if math.isfinite(heavy):
            add(("myanmar_share_cn_heavy_feed", "", ""), heavy)
        gate = ore.gate_price.tolist()
        for j, pool in enumerate(m.ore.pools):
            if pool.country == "MM" and j < len(gate) and math.isfinite(gate[j]):
                add(("ore_price", pool.node, ""), gate[j])
        rb = m.refiner_book
        by_country = self._refiner_countries()
        # each country's plants added in row order from 0.0 (bincount), as a running sum over them does
        keys += by_country[1]
        vals += bincount(rb.country_code, weights=rb.feed_reo, minlength=len(rb.countries)).tolist()
        idle = self._idle_states  # the states not stockpiling yet, in the model's order: each asked once a week
        joined = [s for s in idle if s.mandate is not None or count_nonzero(s.stockpile)]
        if joined:
            self._stockpiling += [s.sid for s in joined]
            self._idle_states = [s for s in idle if s.sid not in self._stockpiling]
            self._stock_states = [s for s in m.states if s.sid in self._stockpiling]  # the model's order
        for s in self._stock_states:
            keys += self._interleaved(("stockpile", "stockpile_bought", "stockpile_released"), s.sid)
            vals += _interleave(s.stockpile, s.stock_bought, s.stock_released)
        keys += by_country[2]
        vals += bincount(rb.country_code, weights=rb.capacity, minlength=len(rb.countries)).tolist()
        for c, usd in sorted(m.week.floor_payments.items()):
            add(("floor_payments", c, ""), usd / 1e6)
        if m.finance.commitments:  # lenders' money (model.projects), once a facility has funded something
            for lender, (committed, spent, stranded) in sorted(m.finance.by_lender().items()):
                add(("finance_committed", lender, ""), committed)
                add(("finance_spent", lender, ""), spent)
                add(("finance_stranded", lender, ""), stranded)
        for reg, (vol, cprice) in m.week.contracts.items():
            res = m.week.clearing.get(reg)
            spot_v = res.volume if res is not None else np.zeros(len(P))
            spot_p = res.paid if res is not None else np.zeros(len(P))
            tot = vol + spot_v
            avg = where(tot > 1e-12, (vol * cprice + spot_v * spot_p) / np.maximum(tot, 1e-12), m.signals.price[reg])
            keys += self._interleaved(("contract_volume", "contract_price", "average_price"), reg)
            vals += _interleave(vol, cprice, avg)
        for state, cut in sorted(m.week.end_use_refused.items()):
            keys += self._row("end_use_refused", state)
            vals += cut.tolist()
        self._coercivity_share(keys, vals)
        if m.maker_book.n:
            self._magnets(keys, vals)
            self._element_exports(keys, vals)
        return keys, vals

    def _refiner_countries(self) -> tuple:
        """The refiners' countries (sorted; their book's ``countries``) and the keys of the feed stock and
        capacity online rows, one per country, made once per refiner book."""
        rb = self.model.refiner_book
        cached = self._by_refiner_country
        if cached[0] is not rb.countries:
            cached = self._by_refiner_country = (rb.countries, [("feed_stock", c, "") for c in rb.countries],
                                                 [("capacity_online", c, "") for c in rb.countries])
        return cached

    def _coercivity_share(self, keys: list[Key], vals: list) -> None:
        """Share of the heavy-RE coercivity in this week's magnets that each substitute gives (Dy-kg
        equivalents, model/substitution.py): recipes weighted by the magnets they are for (buyers' magnet
        demand in oxide worlds, magnets made in magnet worlds)."""
        m = self.model
        mb, bb = m.maker_book, m.buyer_book
        book = mb if mb.n else bb
        sub = book.substitution
        if not sub.rows.size:
            return
        if mb.n:
            recipes, weight = mb.recipe, mb.made
        else:
            recipes, weight = bb.content, np.broadcast_to(bb.magnet_t_per_week * m.demand_multiplier, (bb.n,))
        if self._coercivity_ix[0] is not sub:  # its rows and substitutes are fixed: index them once
            self._coercivity_ix = (sub, sub.cells(recipes.shape[1]), sub.log_tilt.shape)
        _, cells, shape = self._coercivity_ix
        work = recipes.take(cells).reshape(shape) * sub.w * weight.take(sub.rows)[:, None]  # recipes[ix_(rows, cols)]
        total = float(_sum(work, axis=None))
        if total > 0:
            for p, x in zip(sub.cols.tolist(), _sum(work, axis=0).tolist(), strict=True):
                keys.append(("coercivity_share", "", m.products[p]))
                vals.append(x / total)

    def _magnets(self, keys: list[Key], vals: list) -> None:
        """Outputs of the magnet stage (worlds with magnet makers), appended to ``keys`` and ``vals``."""
        m = self.model
        P = m.products
        mb, bb = m.maker_book, m.buyer_book
        made = m.week.magnets_made
        magnets = self._magnet_idx
        countries = tuple(sorted(made))
        if self._made_rows[0] != countries:  # the keys of those countries' rows, made once per set of countries
            self._made_rows = (countries, [k for c in countries for k in self._row("magnet_output", c, self._magnet_names)])
        if countries:  # each country's magnets in turn, in one copy
            keys += self._made_rows[1]
            vals += np.array([made[c] for c in countries]).take(magnets, axis=1).ravel().tolist()
        # capacity online (t of magnets a week) by country, with what expansion added (agents/magnet_maker.py)
        if self._maker_capacity[0] is not mb.capacity:
            cap = mb.sum_by_country(mb.by_product(mb.capacity))
            rows = []
            for j, country in enumerate(mb.rows_of_country):  # sum_by_country's rows: the countries, sorted
                rows += list(zip(self._row("magnet_capacity", country, self._magnet_names),
                                 cap[j].take(magnets).tolist(), strict=True))
            self._maker_capacity = (mb.capacity, [k for k, _ in rows], [x for _, x in rows])
        keys += self._maker_capacity[1]
        vals += self._maker_capacity[2]
        total = sum(made.values(), np.zeros(len(P)))
        all_made = _sum(total, axis=None)
        if all_made > 0:
            cn = made.get("CN", np.zeros(len(P)))
            keys.append(("china_magnet_share", "", ""))
            vals.append(float(_sum(cn, axis=None) / all_made))
            cn_l, total_l = cn.tolist(), total.tolist()
            for j in self._magnet_idx.tolist():  # each magnet made anywhere
                if total_l[j] > 0:
                    keys.append(("china_magnet_share", "", P[j]))
                    vals.append(cn_l[j] / total_l[j])
        held = mb.inventory + mb.by_product(mb.stock)
        for reg in m.regions:
            rows = mb.rows_of_region[reg]
            if rows.size:
                keys += self._row("inventory_makers", reg)
                vals += _sum(held.take(rows, axis=0), axis=0).tolist()
                for k, x in zip(self._row("recycled", reg), _sum(mb.recycled.take(rows, axis=0), axis=0).tolist(),
                                strict=True):
                    if x or k[2] in self._recycled_seen:
                        self._recycled_seen.add(k[2])
                        keys.append(k)
                        vals.append(x)
        keys += self._row("disposed", "")
        vals += m.week.disposed.tolist() if m.week.disposed is not None else [0.0] * len(P)
        if self._units_by_bincount:
            # each key's rows' short x kg / kg per unit (the same two operations), added in turn from 0.0
            short = _sum(bb.shortage, axis=1).take(self._unit_row) * KG_PER_T / self._unit_kg
            keys += self._unit_key_list
            vals += bincount(self._unit_code, weights=short, minlength=len(self._unit_keys)).tolist()
        else:
            short = _sum(bb.shortage, axis=1).tolist()
            for key, rows in self._unit_keys:
                keys.append(key)
                vals.append(sum(short[i] * KG_PER_T / kg for i, kg in rows))

    def _element_exports(self, keys: list[Key], vals: list) -> None:
        """Elements leaving China by destination, in oxides and inside magnets (a magnet's elements at its
        bill of materials before thrifting), t per oxide: what a magnet licence holds back of each element."""
        m = self.model
        for dest in self._dests:
            ex = m.week.exports.get(dest)
            if ex is None:
                continue
            content = ex @ m.element_content  # identity for oxides, the bill of materials for magnets
            keys += self._row("element_exports", dest, self._oxide_names)
            vals += content.take(self._oxide_idx).tolist()

    def _heavy_feed_share(self) -> float:
        """Myanmar's share of the heavy marker (Dy) contained in ore delivered to Chinese plants this week."""
        m = self.model
        pairs = m.week.ore.pairs
        if not pairs:
            return float("nan")
        ore = m.ore
        weight = bincount(ore.pool_of, weights=m.fleet.sold, minlength=len(ore.pools))
        if self._heavy_of_pools[0] is not ore.pools:  # the heavy marker's share of each pool's ore, its country
            origins = list(dict.fromkeys(p.country for p in ore.pools))
            self._heavy_of_pools = (ore.pools, np.array([float(ore.baskets[p.ore][self._heavy]) for p in ore.pools]),
                                    np.array([origins.index(p.country) for p in ore.pools], dtype=np.intp),
                                    {c: j for j, c in enumerate(origins)})
        _, heavy, code, origin_at = self._heavy_of_pools
        # heavy marker and ore sold by origin country, each country's pools added in pool order
        heavy_t = bincount(code, weights=weight * heavy, minlength=len(origin_at)).tolist()
        ore_t = bincount(code, weights=weight, minlength=len(origin_at)).tolist()
        tot = mm = 0.0
        for (origin, dest), q in pairs.items():
            j = origin_at.get(origin)
            if dest != "CN" or j is None or ore_t[j] <= 0:
                continue
            x = q * heavy_t[j] / ore_t[j]
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
        return WeeklyCollector(model_reporters=reporters)


class WeeklyCollector(mesa.DataCollector):
    """Mesa's ``DataCollector`` over the observer's latest values. Its reporters are partials of
    :func:`_latest_value` (so it pickles and works with ``mesa.batch_run`` and Mesa's plot components); a
    week's collection reads their keys from the recorder at once instead of calling each reporter and
    deep-copying a float.

    It keeps each reporter's latest value itself (nan until its key is first recorded), updated from the
    blocks recorded since the last collection: where in a block's layout its reporters' keys sit is worked
    out once per layout (a fixed layout is the same list week after week), so a week costs one assignment
    per reporter instead of folding all of the week's values into the recorder's ``latest``."""

    def __init__(self, model_reporters: dict[str, functools.partial]):
        super().__init__(model_reporters=model_reporters)
        self._keys = [(name, (r.keywords["variable"], r.keywords["region"], r.keywords["product"]))
                      for name, r in model_reporters.items()]
        self._recorder = None  # the recorder read so far, its blocks read, and the reporters' values
        self._upto = 0
        self._values: list[float] = []
        self._layouts: dict[int, tuple[list, list[tuple[int, int]]]] = {}  # id(keys) -> (keys, [(reporter, pos)])
        self._lists: tuple | None = None  # (model_vars, each reporter's list in it): see collect

    def _positions(self, keys: list) -> list[tuple[int, int]]:
        cached = self._layouts.get(id(keys))
        if cached is None or cached[0] is not keys:
            at = {k: j for j, k in enumerate(keys)}  # a key twice in a layout: its last value, as latest
            cached = (keys, [(r, at[key]) for r, (_, key) in enumerate(self._keys) if key in at])
            self._layouts[id(keys)] = cached
        return cached[1]

    def collect(self, model) -> None:
        if hasattr(self, "_collection_steps"):
            self._collection_steps.append(model.time)
        rec = model.observer.recorder
        if rec is not self._recorder:
            self._recorder, self._upto, self._values = rec, 0, [float("nan")] * len(self._keys)
        values = self._values
        blocks = rec.blocks_since(self._upto)
        self._upto += len(blocks)
        for keys, vals in blocks:
            for r, j in self._positions(keys):
                values[r] = vals[j]
        model_vars = self.model_vars
        if self._lists is None or self._lists[0] is not model_vars:  # each reporter's list of values, found once
            self._lists = (model_vars, [model_vars[name] for name, _ in self._keys])
        lists = self._lists[1]
        if len(lists) != len(values):
            raise ValueError("the reporters and their values differ in number")
        deque(map(list.append, lists, values), maxlen=0)  # lists[r].append(values[r]) for each r, in a C loop


def _interleave(*arrays: np.ndarray) -> list[float]:
    """Equal-length vectors product by product (the first's value, the second's, ... for each product), as
    one list of floats: a copy of their values, laid out by numpy in one pass instead of a Python loop."""
    out = np.empty((arrays[0].shape[0], len(arrays)), dtype=np.result_type(*arrays))  # np.stack(axis=1), without
    for j, a in enumerate(arrays):  # its Python wrapper: the same copies of the same values
        out[:, j] = a
    return out.ravel().tolist()


def reporter_name(variable: str, region: str = "", product: str = "") -> str:
    """Name of a DataCollector column, shared by the model and the UI."""
    assert variable in OUTPUTS
    return "_".join(x for x in (variable, str(region), str(product)) if x)


def _latest_value(m: RareEarthModel, variable: str, region: str, product: str) -> float:
    return m.latest(variable, region, product)


def _latest(variable: str, region: str = "", product: str = "") -> functools.partial:
    """A DataCollector reporter (a partial of a module function, so that models pickle)."""
    return functools.partial(_latest_value, variable=variable, region=str(region), product=str(product))
