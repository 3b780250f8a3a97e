"""Traders: stockholders and importing trading houses.

A trader holds oxide stock in its state's region. Rules (``b.x`` = :class:`~model.params.Behaviour`):

- **Competitive storage** (Williams-Wright; Deaton-Laroque). A trader expects its market's price to return
  toward its normal level (what the market has paid over ``b.long_memory_weeks``), closing half the gap
  every ``b.trader_reversion_weeks``. Holding stock for ``b.trader_horizon_weeks`` pays when the expected price
  then exceeds today's price by more than the carrying cost (``b.trader_carry_cost_per_year``). Its
  speculative stock at price ``p`` is its room (``storage_weeks`` of its region's use) x the expected excess
  return / ``b.trader_return_band`` (0 to 1): it buys in gluts and sells in spikes, which smooths prices
  and pulls them back toward cost.
- **Import arbitrage** (importers). An importer buys in the region its region imports from and sells at home;
  it is the exporter of record for its state, so export licences and quotas for its state bound what it may
  buy. It keeps a working stock of ``working_weeks`` of its state's buyers' need and buys its recent sales
  plus the gap to that stock over ``b.import_restock_weeks``, less when the landed cost (source price + export
  cost + ``b.import_margin``) is above what it expects to sell at, more when below, up to
  ``b.import_max_appetite`` x its working stock (it restocks; it does not hoard). At home it offers stock above its working
  stock, and its working stock too at prices above its landed replacement cost, never below that cost less
  twice its margin (it stops importing and waits instead): while trade is free, the
  home price sits at the source price plus the export cost; when exports are rationed, its stock runs down
  and it sells only at higher prices, so the two prices split (mechanism M2; FACTS D5, P4).
- **The route back** (exporters, ``exports_to``). Importers alone carry oxide one way, so a surplus outside
  China had no buyer but its own region and sat at its sellers' cost floor while China paid more (Lynas and
  others sell NdPr into China). An exporter is an importer facing the other way: it buys at home what it
  expects to sell in ``exports_to`` (the recent price there) at a landed cost (home price + export cost +
  ``b.import_margin``), keeping a working stock of ``working_weeks`` of its home region's use by the same
  appetite rule, and sells it there the same way an importer sells at home (stock above its working stock;
  working stock only above its landed replacement cost; never below that less twice its margin). Stock
  bought in a region that clears after its destination is sold there the next week (a week in transit).
  So the price outside China stays within the export cost of China's both ways.
- **Arbitrage by the spread** (``b.arbitrage_response``, 0 in the default world). Restocking alone answers a
  spread only as fast as a trader's own sales grow (their memory is ``b.sales_memory_weeks``); in thin,
  fast spot markets (the magnet world's, where contracts carry most volume) quotes then sit far off the
  other market's for months. With a response above 0, an importer or exporter also bids, at each price
  whose landed cost the last clearing price where it sells exceeds, ``b.arbitrage_response`` x its weekly
  use (working stock / ``working_weeks``) x the spread (that price / landed cost - 1, at most 1): one more
  week of use at a 10 % spread with 10. It reads the last price, not a memory: acting on a remembered spread
  overshoots. Oxides only: a magnet is a qualified part bought by grade under contract, not a commodity
  shipped on a week's spread (answering magnet spreads too set China's calm NdFeB price swinging +-15 %
  over about nine months, against +-5 % without).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import count_nonzero, where
from model.exchange import (
    ExportBids,
    Offer,
    OrderBlock,
    RegionClearing,
    Restock,
    Side,
    Store,
    landed,
    row_index,
    row_selector,
    settle_kernel,
    take_rows,
)
from model.params import TraderSpec

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0


class TraderBook:
    """Array-backed state of every trader, one row each (``Trader`` agents are views into it)."""

    def __init__(self, model: RareEarthModel, specs: list[TraderSpec]):
        self.model = model
        world = model.world
        n, n_p = len(specs), len(model.products)
        self.n = n
        self.specs = list(specs)
        self.ids = [s.id for s in specs]
        self.state_id = [s.state for s in specs]
        self.region = [model.region_of_state(s.state) for s in specs]
        self.source = [world.region(r).imports_from if s.imports else "" for s, r in zip(specs, self.region,
                                                                                       strict=True)]
        self.imports = np.array([bool(s) for s in self.source], dtype=bool)
        self._source_of = {r.id: r.imports_from for r in world.regions}  # region -> where it imports from (fixed)
        self.importer_rows = np.flatnonzero(self.imports).tolist()
        self.exports_to = [s.exports_to for s in specs]
        self.exporter = np.array([bool(x) for x in self.exports_to], dtype=bool)
        self.exporter_rows = np.flatnonzero(self.exporter).tolist()
        # the importers' destinations in row order when no two share one (the week's exports are then each
        # importer's row as it is), else None
        dests = [self.state_id[i] for i in self.importer_rows]
        self.importer_dests = dests if len(set(dests)) == len(dests) else None
        self.room = np.array([s.storage_weeks * model.need_of_region(r) for s, r in zip(specs, self.region,
                                                                                       strict=True)]).reshape(n, n_p)
        self.working = np.array([s.working_weeks * model.need_of_state(s.state) if s.imports else np.zeros(n_p)
                                 for s in specs]).reshape(n, n_p)
        self.export_working = np.array([s.working_weeks * model.need_of_region(r) if s.exports_to else np.zeros(n_p)
                                        for s, r in zip(specs, self.region, strict=True)]).reshape(n, n_p)
        # at rest an importer holds its working stock; an exporter holds its own for what its region starts
        # exporting (RareEarthModel.exporting_at_start), the oxide on its way back, and nothing else: started
        # empty, it bought for nine weeks before it sold a tonne and its region's price sagged meanwhile
        self.stock = self.working.copy()
        for i in np.flatnonzero(self.exporter).tolist():
            mask = model.exporting_at_start.get(self.region[i])
            if mask is not None:
                self.stock[i] = np.where(mask, self.export_working[i], 0.0)
        start = np.array([model.signals.price[r] for r in self.region]).reshape(n, n_p)
        self.cost = self.stock * start  # USD/kg x t
        self._oxide = np.array([world.product(p).stage == "oxide" for p in model.products], dtype=float)
        self.working_weeks = np.maximum(np.array([s.working_weeks for s in specs], dtype=float), 1.0)
        # steady start: term contracts (``contract_share`` of use) are delivered first from the output of the
        # region's own producers (RareEarthModel._deliver_contracts), so an importer sells its state's
        # contracted use less that share, plus its spot use (where home producers compete on price and may
        # hold back). Started at its state's whole use, the magnet world's importers bought ~20 % too many
        # magnets a week until their sales memory learnt it, and the stock they built swung China's prices
        # for a year
        own = self._own_share(model)
        # the share of home plants' supply taken off: what they deliver under contracts, or (the option) all
        # of it, spot too
        cs = 1.0 if model.behaviour.importers_start_net_of_home_output else model.behaviour.contract_share
        left = np.array([1.0 - cs * own[r] if s.imports and cs > 0 else np.ones(n_p)
                         for s, r in zip(specs, self.region, strict=True)])
        self.sales_ema = self.working / self.working_weeks[:, None] * left.reshape(n, n_p)
        self.bought = np.zeros((n, n_p))  # at home this week (storage)
        self.sold = np.zeros((n, n_p))  # at home this week
        self.imported = np.zeros((n, n_p))  # bought abroad this week
        self.requested = np.zeros((n, n_p))  # what each importer would buy abroad at its expected margin (t/week)
        self.contracted = np.zeros((n, n_p))  # delivered under term contracts at home this week (t)
        self.exported = np.zeros((n, n_p))  # sold abroad this week by exporters (t)
        self.rows_home = {r: np.flatnonzero(np.array([x == r for x in self.region], dtype=bool))
                          for r in model.regions}
        self.rows_import = {r: np.flatnonzero(np.array([x == r for x in self.source], dtype=bool))
                            for r in model.regions}
        self.rows_export = {r: np.flatnonzero(np.array([x == r for x in self.exports_to], dtype=bool))
                            for r in model.regions}
        # room and working stock are fixed at construction; per region, what the weekly orders read of them:
        # stockholders at home (rows, room (products x rows), who imports, importers' working stock or None if
        # none does, the exporters among them or None, and each row's place among those exporters or -1) and
        # importers buying there (rows, their home regions, working stock); rows as a slice when consecutive
        for fixed in (self.room, self.working, self.export_working):
            fixed.flags.writeable = False
        self._home_fixed = {}
        for r, rows in self.rows_home.items():
            imp = self.imports[rows]
            exp = self.exporter[rows]
            place = where(exp, np.cumsum(exp) - 1, -1).astype(np.int64)
            self._home_fixed[r] = (row_selector(rows), self.room[rows].T.copy(), imp,
                                   self.working[rows] * imp[:, None] if imp.any() else None,
                                   np.flatnonzero(exp) if exp.any() else None, place if exp.any() else None)
        self._import_fixed = {r: (row_selector(rows), [self.region[i] for i in rows], self.working[rows])
                              for r, rows in self.rows_import.items()}

    # -- expectations --------------------------------------------------------------------------------------
    def expected_price(self, region: str) -> tuple[np.ndarray, float]:
        """The price a trader expects at its horizon (products) and the carrying cost of holding stock until
        then (a share of the price): the expected excess return of stock bought at price ``p`` is ``expected /
        p - 1 - carry`` (:class:`model.exchange.Store` works it out on the grid)."""
        b = self.model.behaviour
        sig = self.model.signals
        normal, now = sig.long_memory[region], sig.price[region]
        decay = 0.5 ** (b.trader_horizon_weeks / b.trader_reversion_weeks)
        expected = normal + (now - normal) * decay
        carry = b.trader_carry_cost_per_year * b.trader_horizon_weeks / 52.0
        return expected, carry

    def landed_cost(self, home: str) -> np.ndarray:
        """What a kg imported into ``home`` costs now: source price + export cost, plus the import margin."""
        return self._landed(self.model.signals.price[self._source_of[home]])

    def _landed(self, price: np.ndarray) -> np.ndarray:
        """What a kg bought at ``price`` (products) costs landed in the other region: + export cost, + margin
        (on the exchange's grid: ``exchange.landed``)."""
        return landed(price, self.model.export_cost, self.model.behaviour.import_margin)

    # -- a participant of the exchange -----------------------------------------------------------------------
    @staticmethod
    def _own_share(model: RareEarthModel) -> dict[str, np.ndarray]:
        """Per region, the share of its use (buyers and magnet makers) its own plants make at the start:
        refiners' weekly output and magnet makers' sales, over the region's use (0 to 1 per product)."""
        book, mb = model.refiner_book, model.maker_book
        out = {}
        for r in model.regions:
            made = (book.mix * book.throughput[:, None]).take(book.rows_of_region[r], axis=0).sum(axis=0)
            if mb.n and mb.rows_of_region[r].size:
                made = made + mb.by_product(mb.sales_ema).take(mb.rows_of_region[r], axis=0).sum(axis=0)
            need = model.need_of_region(r)
            out[r] = where(need > 1e-12, np.minimum(made / np.maximum(need, 1e-12), 1.0), 0.0)
        return out

    def orders(self, region: str, grid: np.ndarray) -> list[OrderBlock]:
        b = self.model.behaviour
        blocks = []
        rows = self.rows_home[region]
        if rows.size:
            at, room, imp, working_imp, exp, place = self._home_fixed[region]
            kept = floor = None
            if working_imp is not None:  # some are importers: they keep working stock and sell it only above a floor
                landed = self.landed_cost(region)
                kept = self._kept_scale(working_imp, landed).T
                # an importer does not sell below what replacing the stock costs (less its margin); others have no floor
                floor = where(imp[None, :], (landed * (1.0 - 2.0 * b.import_margin))[:, None], -np.inf)
            # exporters buy here only what they expect to sell abroad, and sell nothing here
            bids = self._export_buying(region, rows[exp]) if exp is not None else None
            # the stock is copied: the exchange may read it after settling
            form = (grid, *self.expected_price(region), b.trader_return_band, room,
                    take_rows(self.stock, at).T.copy(), kept, self.model.exchange.seller_pow[region], floor, place, bids)
            # the same form twice, offers and bids (built directly: dataclasses.replace costs ~30 us)
            blocks += [OrderBlock("traders_sell", Side.SELL, form=Store(*form, False)),
                       OrderBlock("traders_buy", Side.BUY, form=Store(*form, True))]
        rows = self.rows_export[region]
        if rows.size:
            blocks.append(OrderBlock("exporters", Side.SELL, form=self._export_selling(region, rows, grid)))
        rows = self.rows_import[region]
        if rows.size:
            at, homes, working = self._import_fixed[region]
            sig = self.model.signals
            now = np.array([sig.price[h] for h in homes]) if b.arbitrage_response > 0 else None
            allow = None
            if self.model.rules.export_allowance:  # some destination's exports are rationed this week
                allow = np.array([self.model.export_allowance(self.state_id[i]) for i in rows]).reshape(rows.size, -1)
            bids = self._restock_bids(region, at, np.array([sig.recent[h] for h in homes]), working, now, allow)
            sales, stock = take_rows(self.sales_ema, at), take_rows(self.stock, at)
            # what it asks to export: its purchase at a landed cost equal to what it expects to sell at
            self.requested[at] = np.maximum(sales + (working - stock) / b.import_restock_weeks, 0.0)
            blocks.append(OrderBlock("importers", Side.BUY, form=bids))
        return blocks

    def _restock_bids(self, region: str, at, expect: np.ndarray, working: np.ndarray,
                      now: np.ndarray | None = None, allow: np.ndarray | None = None) -> Restock:
        """Bids in ``region`` of traders who buy there to sell elsewhere (importers for home, exporters for
        abroad), as a schedule form: their recent sales plus the gap to their working stock x appetite,
        closed over ``import_restock_weeks``; appetite = (landed cost at the grid price / the price they
        expect where they sell, ``expect``: rows x products)^-e, at most ``import_max_appetite`` (the landed
        part precomputed on this grid); with ``now`` (the last prices where they sell, rows x products) and
        ``behaviour.arbitrage_response`` > 0, plus the response x weekly use x the spread over landed cost; at
        most ``allow`` (rows x products) when given."""
        b = self.model.behaviour
        ex = self.model.exchange
        arb = b.arbitrage_response > 0 and now is not None  # the spread seen now draws purchases now
        use = working / take_rows(self.working_weeks, at)[:, None] * self._oxide if arb else None  # magnets are not arbitraged
        # the stock is copied: the exchange may read it after settling
        return Restock(ex.landed_pow[region], np.maximum(expect.T, 1e-12) ** b.seller_stock_elasticity,
                       take_rows(self.sales_ema, at).T, working.T, take_rows(self.stock, at).T.copy(),
                       now.T if arb else None, ex.landed[region] if arb else None, use.T if arb else None,
                       None if allow is None else allow.T, b.import_max_appetite, b.import_restock_weeks,
                       b.arbitrage_response)

    def _kept_scale(self, working: np.ndarray, landed: np.ndarray) -> np.ndarray:
        """The working stock a seller keeps at price p is working x (p / landed replacement cost)^-e = scale x
        p^-e; this is the scale (rows x products; the grid part, p^-e, is the exchange's ``seller_pow``)."""
        return working * landed ** self.model.behaviour.seller_stock_elasticity

    def _export_buying(self, region: str, rows: np.ndarray) -> ExportBids:
        """Exporters' bids at home (products x exporters x grid): the importers' rule, with the price they
        expect abroad, but only at prices whose landed cost (price + export cost + margin) that price covers.
        An importer keeps its region supplied and holds working stock whatever the margin; an exporter is an
        arbitrageur and ships nothing that would sell abroad below what it cost to land (magnets, which
        China makes cheaper, never go back; the ex-China NdPr surplus does). A schedule form: the kernel works
        the bids out at the grid points it reads."""
        sig = self.model.signals
        expect = np.array([sig.recent[self.exports_to[i]] for i in rows.tolist()])  # (k, products)
        now = (np.array([sig.price[self.exports_to[i]] for i in rows.tolist()])
               if self.model.behaviour.arbitrage_response > 0 else None)
        return ExportBids(self._restock_bids(region, rows, expect, self.export_working.take(rows, axis=0), now),
                          self.model.exchange.landed[region], expect.T)

    def _export_selling(self, region: str, rows: np.ndarray, grid: np.ndarray) -> Offer:
        """Exporters' offers abroad (a schedule form), as an importer offers at home: stock above its working
        stock kept at p, never below its landed replacement cost (home price + export cost + margin) less
        twice the margin."""
        b = self.model.behaviour
        sig = self.model.signals
        landed = np.array([self._landed(sig.price[self.region[i]]) for i in rows.tolist()])  # (k, products)
        scale = self._kept_scale(self.export_working.take(rows, axis=0), landed)
        return Offer(grid, scale.T, self.model.exchange.seller_pow[region], self.stock.take(rows, axis=0).T,
                     landed.T * (1.0 - 2.0 * b.import_margin))

    def _sell_from_stock(self, rows, sold: np.ndarray) -> None:
        """Take ``sold`` (rows x products) out of stock; the stock's average cost is kept."""
        stock = take_rows(self.stock, rows)
        keep = np.minimum(np.maximum(1.0 - sold / np.maximum(stock, 1e-12), 0.0), 1.0)
        self.cost[rows] = take_rows(self.cost, rows) * keep
        self.stock[rows] = np.maximum(stock - sold, 0.0)

    def settle(self, region: str, clearing: RegionClearing) -> None:
        kernel = settle_kernel()
        if kernel is not None:
            self._settle_compiled(kernel, region, clearing)
            return
        rows = self.rows_export[region]
        if rows.size:  # exporters' sales abroad
            sold = clearing.fills["exporters"].T
            self._sell_from_stock(rows, sold)
            self.exported[rows] = sold
        rows = self.rows_home[region]
        price = clearing.paid
        if rows.size:
            at = self._home_fixed[region][0]
            sold = clearing.fills["traders_sell"].T
            bought = clearing.fills["traders_buy"].T
            self._sell_from_stock(at, sold)
            self.cost[at] = take_rows(self.cost, at) + bought * price
            self.stock[at] = take_rows(self.stock, at) + bought
            self.sold[at] = sold
            self.bought[at] = bought
        rows = self.rows_import[region]
        if rows.size:
            at = self._import_fixed[region][0]
            got = clearing.fills["importers"].T
            self.stock[at] = take_rows(self.stock, at) + got
            self.cost[at] = take_rows(self.cost, at) + got * (price + self.model.export_cost)
            self.imported[at] = got

    def _settle_compiled(self, kernel, region: str, clearing: RegionClearing) -> None:
        """:meth:`settle` in the compiled kernel, its steps in the same order: exporters' sales abroad, the
        traders' sales and purchases at home, the importers' purchases (the same bits)."""
        rows = self.rows_export[region]
        if rows.size:
            kernel.sell_from_stock(row_index(rows), clearing.fills["exporters"], self.stock, self.cost, self.exported)
        price = clearing.paid
        if self.rows_home[region].size:
            at = row_index(self._home_fixed[region][0])
            kernel.sell_from_stock(at, clearing.fills["traders_sell"], self.stock, self.cost, self.sold)
            kernel.add_to_stock(at, clearing.fills["traders_buy"], price, self.stock, self.cost, self.bought)
        if self.rows_import[region].size:
            kernel.add_to_stock(row_index(self._import_fixed[region][0]), clearing.fills["importers"],
                                price + self.model.export_cost, self.stock, self.cost, self.imported)

    def end_exchange_week(self) -> None:
        a = 1.0 / self.model.behaviour.sales_memory_weeks
        sold = self.sold + self.contracted if count_nonzero(self.contracted) else self.sold
        if count_nonzero(self.exporter):
            sold = sold + self.exported
        self.sales_ema = self.sales_ema + a * (sold - self.sales_ema)

    def deliver_contracts(self, i: int | np.ndarray, want: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Importer ``i`` delivers what its state's contract holders want this week (t per product), as far as
        this week's imports go, at ``price`` (USD/kg); returns what it delivered. Its stock's average cost is
        kept. ``i`` may be distinct importer rows, with ``want`` one row each (several importers at once)."""
        stock = self.stock.take(i, axis=0)
        # contracts are filled from this week's (licensed) imports; stock held before stays on the spot market
        give = np.minimum(np.minimum(np.maximum(want, 0.0), stock), self.imported.take(i, axis=0))
        keep = where(stock > 1e-12, 1.0 - give / np.maximum(stock, 1e-12), 1.0)
        self.cost[i] = self.cost.take(i, axis=0) * keep
        self.stock[i] = np.maximum(stock - give, 0.0)
        self.contracted[i] = self.contracted.take(i, axis=0) + give
        return give

    def begin_week(self) -> None:
        self.bought = np.zeros(self.bought.shape)
        self.sold = np.zeros(self.sold.shape)
        self.imported = np.zeros(self.imported.shape)
        if count_nonzero(self.exporter):
            self.exported = np.zeros(self.exported.shape)
        if count_nonzero(self.contracted):
            self.contracted = np.zeros(self.contracted.shape)


class Trader(mesa.Agent):
    """One trader; its state lives in the model's :class:`TraderBook` at row ``i``."""

    def __init__(self, model: RareEarthModel, book: TraderBook, i: int):
        super().__init__(model)
        self._book = book
        self.i = i
        self.spec = book.specs[i]
        self.tid = self.spec.id
        self.state_id = self.spec.state
        self.region = book.region[i]
        self.imports = bool(book.imports[i])

    @property
    def stock(self) -> np.ndarray:
        return self._book.stock[self.i].copy()

    @property
    def imported(self) -> np.ndarray:
        return self._book.imported[self.i].copy()

    @property
    def sold(self) -> np.ndarray:
        return self._book.sold[self.i].copy()

    @property
    def bought(self) -> np.ndarray:
        return self._book.bought[self.i].copy()

    def average_cost(self) -> np.ndarray:
        """Average cost of its stock per product (USD/kg; its region's price where it holds none)."""
        b = self._book
        s = b.stock[self.i]
        return where(s > 1e-12, b.cost[self.i] / np.maximum(s, 1e-12), self.model.signals.price[self.region])
