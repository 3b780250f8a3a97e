"""States: policy makers, stock agencies and project sponsors.

A state owns its policy instruments (policies in force name it as the acting state), at most one stock
agency, and budgets. Each week (stage 2) it:

- follows its own rules. China moves its mining and separation quotas to keep domestic prices near the cost
  of supply, hard rock by ``b.china_quota_product`` and ionic clay by ``b.china_heavy_quota_product``
  (FACTS P6), and, while rival states' stock agencies buy more than
  ``b.rival_stockpile_trigger_weeks`` of their use of ``b.retaliation_products`` in four weeks, multiplies its
  licence approvals by ``b.retaliation_factor`` for ``b.retaliation_weeks`` (its retaliation; an assumption,
  no source quantifies it);
- **selects projects** it sponsors (every ``b.project_review_weeks``): a planned plant or mine starts
  permitting when its expected annual margin covers its capital charge (projects marked
  ``needs_policy_support`` wait for a financing policy instead), and a project still in permitting is
  cancelled when its cover (margin / charge) falls below ``b.project_cancel_cover`` x the cover its decision
  required (1 for its own decision; the lenders' ``min_cover_ratio`` for a financed one, so a project a lender
  took on strategic grounds at a required cover of 0 is not cancelled on its numbers). The margin is appraised on
  the feed the plant can secure (:mod:`model.projects`: its captive ore, and market ore it would outbid
  others for, at the prices the state expects); the capital charge is capex x (cost of capital + 1 /
  ``b.project_life_years``). The private cost of capital is ``b.private_cost_of_capital``; a financing
  policy lowers it for the projects it funds.

Its **stock agency** trades in its region's exchange (stage 6) under a :class:`StockMandate`: China's
standing reserve from the world file (FACTS P5: it buys in gluts and releases in spikes), or a mandate a
``Stockpile`` policy gives (FACTS E5: JOGMEC's 60 days). A standing reserve keeps its initial holding as
strategic stock and sells what it bought in a glut back once the price has recovered to ``sell_back_ratio`` x
the cost of supply. An agency buys toward its target while the price is below
``buy_below_ratio`` x the market's cost of supply (:mod:`model.signals`) and its budget lasts, and releases
above ``release_above_ratio`` x that cost, on a shortage signal (rapid response, seed F4) or when ordered to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import mesa
import numpy as np

from model.arrays import add_reduce as _sum
from model.arrays import count_nonzero, where
from model.exchange import OrderBlock, Ramps, RegionClearing, Side
from model.params import StateSpec

if TYPE_CHECKING:
    from model.model import RareEarthModel

KG_PER_T = 1000.0
_RELEASE_ORDER = "release order"  # owner of the release-only mandate an order gives a state without one


@dataclass(frozen=True)
class StockMandate:
    """A stock agency's standing orders."""

    target_weeks: float  # stock it buys toward, weeks of its state's use
    buy_below_ratio: float  # buys while price < this x the market's cost of supply
    release_above_ratio: float  # releases while price > this x that cost
    fill_weeks: float  # closes its gap over this many weeks
    release_weeks: float  # empties over this many weeks when releasing
    mask: np.ndarray  # 1 for the products it holds
    budget_usd: float = np.inf
    shortage_trigger: float = np.inf  # rapid response: release when its region's shortage share exceeds this
    forced_release_weeks: float | None = None  # an order to release whatever the price
    kind: str = "stockpile"  # "reserve" (the world's standing reserve) or "stockpile" (a policy's)
    strategic_weeks: float = np.inf  # a reserve sells stock above this many weeks of use back ...
    recover_ratio: float = np.inf  # ... once the price is back at this x the cost of supply ...
    recover_weeks: float = 4.0  # ... over this many weeks


class State(mesa.Agent):
    def __init__(self, model: RareEarthModel, spec: StateSpec):
        super().__init__(model)
        self.spec = spec
        self.sid = spec.id
        self.name = spec.name
        self.region = spec.region
        n_p = len(model.products)
        self.stockpile = np.zeros(n_p)
        self.stock_bought = np.zeros(n_p)
        self.stock_released = np.zeros(n_p)
        self.stock_spent_usd = 0.0
        self.stock_bought_4w = np.zeros(n_p)
        self.cost_of_capital: dict[str, float] = {}  # project id -> concessional rate from financing
        self.decided_cover: dict[str, float] = {}  # project id -> the cover (margin / charge) its decision required
        self._reserve: StockMandate | None = None
        # mandates given by policies in force, newest last: [owner, mandate, budget left (USD)]; the newest
        # one rules, and when it ends the one before it rules again with what is left of its own budget
        self._mandates: list[list] = []
        self._retaliating_until = -(10**9)  # never retaliated
        self._ever_traded = False
        self._own_projects: list | None = None  # projects it sponsors (planned ones it may decide unaided)
        self._baskets: dict | None = None  # quota groups' ore baskets (anchored rule), once the mines exist
        self.separation_quota = {"light": 1.0, "heavy": 1.0}  # China's separation quota per group, x 2024
        self._rivals: tuple | None = None  # (watched products, rival states): watch_rivals
        self._rival_ids: tuple[str, ...] = ()
        self.endowed = np.zeros(n_p)  # stock that entered from outside the markets (ledger)
        if spec.reserve is not None:
            r = spec.reserve
            mask = np.array([p in r.products for p in model.products], dtype=float)
            self._reserve = StockMandate(r.max_weeks, r.buy_below_ratio, r.release_above_ratio, r.buy_weeks,
                                         r.release_weeks, mask, kind="reserve", strategic_weeks=r.initial_weeks,
                                         recover_ratio=r.sell_back_ratio, recover_weeks=r.sell_back_weeks)

    def seed_reserve(self) -> None:
        """Stock the standing reserve holds at the start (after the buyers exist)."""
        if self.spec.reserve is not None and self.spec.reserve.initial_weeks > 0:
            self.endow(self.consumption_per_week() * self.spec.reserve.initial_weeks * self._reserve.mask)

    # -- the mandate in force ----------------------------------------------------------------------------
    @property
    def mandate(self) -> StockMandate | None:
        """The agency's standing orders: the newest mandate of a policy in force, else the standing reserve's."""
        return self._mandates[-1][1] if self._mandates else self._reserve

    @property
    def _budget_left(self) -> float:
        return self._mandates[-1][2] if self._mandates else np.inf

    @property
    def stock_mandate(self) -> StockMandate | None:  # the name the UI and tests know
        return self.mandate

    def set_stock_mandate(self, mandate: StockMandate, owner: object = None) -> None:
        """Give the agency ``owner``'s mandate (a policy), which rules until it is cleared or a newer one is
        set; setting it again for the same owner replaces it, budget included."""
        self._mandates = [e for e in self._mandates if e[0] is not owner] + [[owner, mandate, mandate.budget_usd]]

    def clear_stock_mandate(self, owner: object = None) -> None:
        """End ``owner``'s mandate; the newest remaining one (or the standing reserve) rules again."""
        self._mandates = [e for e in self._mandates if e[0] is not owner]

    def order_release(self, weeks: float | None) -> None:
        """Release stock over ``weeks`` whatever the price (None: the order ends). A state with stock but no
        mandate gets one that only releases."""
        if self.mandate is None:
            if weeks is None:
                return
            mask = np.ones(len(self.model.products))
            self._mandates.append([_RELEASE_ORDER, StockMandate(0.0, 0.0, np.inf, 26.0, weeks, mask), np.inf])
        if self._mandates:
            self._mandates[-1][1] = replace(self._mandates[-1][1], forced_release_weeks=weeks)
        else:
            self._reserve = replace(self._reserve, forced_release_weeks=weeks)

    def endow(self, tonnes: np.ndarray) -> None:
        """Stock that enters from outside the markets (a stockpile on hand when a policy starts)."""
        self.stockpile = self.stockpile + tonnes
        self.endowed = self.endowed + tonnes

    @property
    def budget_left_usd(self) -> float:
        return self._budget_left

    # -- stage 2 -----------------------------------------------------------------------------------------
    def act(self) -> None:
        b = self.model.behaviour
        if self.spec.bloc == "china":
            if b.china_quota_rule:
                self.manage_quota()
            self.watch_rivals()
        self.select_projects()

    def watch_rivals(self) -> None:
        """China's retaliation rule (module docstring). Only matters while it runs a licence regime."""
        m = self.model
        b = m.behaviour
        if self._rivals is None:  # the products it watches and the rival states: fixed
            self._rivals = ([m.products.index(p) for p in b.retaliation_products],
                            [s for s in m.states if s.spec.bloc != "china"])
            self._rival_ids = tuple(s.sid for s in self._rivals[1])
        k, rivals = self._rivals
        bought = 0.0
        for s in rivals:  # in Python floats: a few numbers per state
            held = s.stock_bought_4w.tolist()
            bought += sum(held[i] for i in k)
        now = int(m.steps)
        if bought > 0:
            # each rival's use of those products: the rivals' rows at once, each row summed as on its own
            use = sum(m.needs_of_states(self._rival_ids).take(k, axis=1).sum(axis=1).tolist())
            if use > 0 and bought > b.rival_stockpile_trigger_weeks * use and now > self._retaliating_until:
                if self._retaliating_until < now - 1:
                    m.log_event(f"{self.name} tightens export licences in response to rivals' stockpiling")
                self._retaliating_until = now + b.retaliation_weeks

    def licence_factor(self) -> float:
        """Multiplier on its licence approvals this week (its retaliation rule)."""
        return self.model.behaviour.retaliation_factor if int(self.model.steps) <= self._retaliating_until else 1.0

    def manage_quota(self) -> None:
        """China's quotas (FACTS B1: 270 kt mined in 2024; P6: total quantity control of mining and separation,
        hard rock and ionic clay set apart) keep domestic prices near the cost of supply: when the recent
        domestic price of the group's product (``b.china_quota_product`` for hard rock,
        ``b.china_heavy_quota_product`` for ionic clay) is more than ``b.china_quota_band`` above the market's
        cost of supply (:mod:`model.signals`), the group's quota rises by ``b.china_quota_step_per_week`` x the
        deviation / band (at most 5 x the step: China acts faster when prices are far out); when that far below,
        it falls; within ``b.china_quota_min``-``b.china_quota_max`` of 2024, a band that for the groups in
        ``b.china_quota_follows_demand`` (hard rock: FACTS P6) moves with the demand China plans for, the
        demand for the group's product (:meth:`~agents.buyer.BuyerBook.demand_index`, through the magnets' bill
        of materials; 1 while demand is stationary), so a growing market does not meet a ceiling fixed at
        2024's. The rule steers the group's separation quota, which caps the plants
        it covers; the group's Chinese mines follow it within their own band. For the groups in
        ``b.china_separation_follows_demand`` but not ``china_quota_follows_demand`` (ionic clay) only the
        separation band moves with demand: the ionic-clay mining quota stays flat (P6) while its separators
        may take more imported ore, which the 2025 measures bring under the quota. For the groups in ``b.china_quota_anchored`` (none by default) the signal is the whole
        basket instead: the value of a tonne of the group's ore at recent domestic prices over its value at 2024
        prices, with costs that have not moved since (a cost of supply split among joint products by their price
        history follows a glut of the whole basket down and cannot see it). Measured on the heavy group, that
        rule holds the ten-year drift but overshoots: its price effect comes only after stocks and the Kachin
        sites have answered, years later, and calm runs cycle (README, Known limits). For the groups in
        ``b.china_quota_at_2024_markup`` (none by default) the band is centred on the 2024 price's markup over
        the cost of supply instead (``signals.start_markup``): the 2024 prices sit 9-12 % above the plants'
        output-weighted reservation, at the top of the band, so the cost-centred rule is not at rest at the
        start and raises the light quota ~5 % in the first 26 calm weeks (README, Known limits)."""
        m = self.model
        b = m.behaviour
        sig = m.signals
        for group, product in (("light", b.china_quota_product), ("heavy", b.china_heavy_quota_product)):
            # the demand China plans for: of the product its rule for this group watches (NdPr, Dy)
            index = m.buyer_book.demand_index(m.demand_multiplier, m.products.index(product))
            # the rule steers the separation quota; the mining quota follows it within its own band, which
            # moves with demand only for the groups in china_quota_follows_demand (the ionic-clay mining
            # quota stays flat, FACTS P6, while its separators may take more imported ore)
            f = self.separation_quota[group]
            follows = group in b.china_quota_follows_demand
            mine_scale = index if follows else 1.0
            if follows:
                scale = index
            elif group in b.china_separation_follows_demand:
                # separation alone follows demand only upward: with demand falling it keeps its mines' flat
                # band, so China never lets more of the group's ore be mined than its own plants may separate
                scale = max(index, 1.0)
            else:
                scale = 1.0
            lo, hi = b.china_quota_min * scale, b.china_quota_max * scale
            if group in b.china_quota_anchored:  # the whole basket against its 2024 value
                basket, ref = self._quota_baskets()[group]
                ratio = float(basket @ sig.recent[self.region]) / ref if ref > 0 else 1.0
            else:  # the price over the cost of supply (or over 2024's markup on it, at rest at the start)
                k = m.products.index(product)
                ratio = sig.recent[self.region][k] / sig.normal[self.region][k]
                if group in b.china_quota_at_2024_markup:
                    ratio = ratio / sig.start_markup[self.region][k]
            gap = abs(ratio - 1.0)
            if gap <= b.china_quota_band:
                continue
            far = min(gap / b.china_quota_band, 5.0) if b.china_quota_band > 0 else 5.0
            step = b.china_quota_step_per_week * far  # faster when far out
            f = min(hi, f + step) if ratio > 1 else max(lo, f - step)
            self.separation_quota[group] = f
            m.fleet.set_quota_factor(group, min(max(f, b.china_quota_min * mine_scale), b.china_quota_max * mine_scale))
            m.refiner_book.set_quota_factor(group, f)

    def _quota_baskets(self) -> dict[str, tuple[np.ndarray, float]]:
        """Per quota group: the capacity-weighted ore basket of China's mines in it (t of each product per t
        REO) and its value at the world's 2024 domestic prices (USD/kg), for the anchored quota rule."""
        if self._baskets is None:
            m = self.model
            f = m.fleet
            p2024 = m.initial_prices[self.region]
            out = {}
            for group in ("light", "heavy"):
                sites = np.flatnonzero(f.quota_group == group)
                w = f.capacity[sites]
                if not sites.size or w.sum() <= 0:
                    out[group] = (np.zeros(len(m.products)), 0.0)
                    continue
                rows = np.array([m.ore.baskets[f.ore[i]] for i in sites])
                basket = (rows * w[:, None]).sum(axis=0) / w.sum()
                out[group] = (basket, float(basket @ p2024))
            self._baskets = out
        return self._baskets

    def project_margin_musd(self, project) -> float:
        """Expected annual operating margin (M USD/yr) of a project (:class:`model.projects.Project`) on the
        feed it can secure, at the prices its market expects."""
        return project.appraise(self.model).margin_musd

    def capital_charge_musd(self, project, rate: float | None = None) -> float:
        """A year's charge on the project's capex: its cost of capital plus straight-line recovery over its
        life, ``b.project_life_years`` or, for a mine with a ``reserve_t``, the years its reserve lasts at
        capacity if fewer (Browns Range's 30,500 t at 58 t a week last ~10 years, not 15)."""
        b = self.model.behaviour
        r = self.cost_of_capital.get(project.id, b.private_cost_of_capital) if rate is None else rate
        life = float(b.project_life_years)
        if project.kind == "mine" and project.spec.reserve_t is not None:
            life = max(min(life, project.spec.reserve_t / (project.spec.capacity_t_per_week * 52.0)), 1.0)
        return project.capex_musd * (r + 1.0 / life)

    def grant_cost_of_capital(self, project_id: str, rate: float) -> None:
        self.cost_of_capital[project_id] = rate

    def note_decision(self, project_id: str, cover: float) -> None:
        """The cover (margin / capital charge) the decision to build a project it sponsors required."""
        self.decided_cover[project_id] = cover

    def select_projects(self) -> None:
        """Start its own planned projects that pay on private terms; cancel those in permitting that no
        longer come near paying (module docstring). Reviewed every ``b.project_review_weeks``."""
        m = self.model
        b = m.behaviour
        if self._own_projects is None:
            self._own_projects = [p for p in m.projects if p.sponsor == self.sid]
        if not self._own_projects or int(m.steps) % max(int(b.project_review_weeks), 1):
            return
        for p in self._own_projects:
            st = p.status
            if st == "planned" and not p.spec.needs_policy_support:
                margin, charge = self.project_margin_musd(p), self.capital_charge_musd(p)
                if margin > charge:
                    started, weeks = p.start(m)
                    if started:
                        self.note_decision(p.id, 1.0)
                        m.log_event(f"{self.name} starts {p.name} (permits and construction: online in {weeks} weeks)")
            elif st == "permitting" and self.decided_cover.get(p.id, 0.0) > 0:
                cover = self.project_margin_musd(p) / max(self.capital_charge_musd(p), 1e-9)
                if cover < b.project_cancel_cover * self.decided_cover[p.id]:
                    if p.cancel():
                        m.log_event(f"{p.name} is cancelled: it no longer covers its capital charge")

    # -- stock agency (a participant of the exchange) ------------------------------------------------------
    def consumption_per_week(self) -> np.ndarray:
        """The use its agency sizes stocks on, per product (t a week): its buyers' and magnet makers' need, or
        where more, the oxide inside the magnets its buyers use (``RareEarthModel.stock_basis_of_state``)."""
        return self.model.stock_basis_of_state(self.sid)

    def orders(self, region: str, grid: np.ndarray) -> list[OrderBlock]:
        md = self.mandate
        if md is None or region != self.region:
            return []
        buy, sell = self._schedules(md, region, grid)
        name = f"agency:{self.sid}"
        return [OrderBlock(name + ":buy", Side.BUY, form=buy), OrderBlock(name + ":sell", Side.SELL, form=sell)]

    def _schedules(self, md: StockMandate, region: str, grid: np.ndarray) -> tuple[Ramps, Ramps]:
        """What the agency buys and sells at each price of ``grid`` under ``md``, as schedule forms (one
        participant): the exchange works them out at the grid points its clearing reads (their ``qty``: products
        x 1 x grid points)."""
        sig = self.model.signals
        ref = sig.normal[region]
        n_p = grid.shape[0]
        use = self.consumption_per_week()
        gap = np.maximum(use * md.target_weeks * md.mask - self.stockpile, 0.0)
        buy_qty = gap / max(md.fill_weeks, 1.0)
        trigger = md.buy_below_ratio * ref
        # buys: buy_qty x ramp(trigger - p, trigger, 1) x (p <= trigger); a mandate that only releases buys none
        buying = md.buy_below_ratio > 0 and math.isfinite(md.buy_below_ratio) and any(buy_qty.tolist())
        cap = None
        if math.isfinite(self._budget_left):
            # the budget is shared among products by the value of what each still needs at its trigger, so
            # that whatever prices the products clear at, together they cost no more than what is left: at
            # most cap / (p x 1000) t of each
            need_usd = buy_qty * md.mask * np.minimum(trigger, grid[:, -1]) * KG_PER_T
            share = need_usd / need_usd.sum() if need_usd.sum() > 0 else np.zeros(n_p)
            cap = max(self._budget_left, 0.0) * share
        forced = md.forced_release_weeks
        # rapid response: a shortage share above its trigger (an infinite trigger never fires)
        short = self._shortage_share() > md.shortage_trigger if math.isfinite(md.shortage_trigger) else None
        release_qty = self.stockpile * md.mask / max(forced or md.release_weeks, 1.0)
        # what it offers: the largest of the offers its rules make (none offered at all: zeros); an offer of
        # an empty quantity is zero at every price and is skipped
        urgent = low = None
        if forced or (short is not None and count_nonzero(short)):
            # rapid response or an order: it sells into the market, down to 85 % of last week's price, and
            # buys none of those products
            urgent = np.full(n_p, True) if forced else short
            low = 0.85 * sig.price[region]
        up = None
        if math.isfinite(md.release_above_ratio) and any(release_qty.tolist()):
            up = md.release_above_ratio * ref
        glut = back = None
        if math.isfinite(md.recover_ratio):  # a reserve sells what it bought in a glut back once prices recover
            glut = np.maximum(self.stockpile - use * md.strategic_weeks, 0.0) * md.mask
            if any(glut.tolist()):
                back = md.recover_ratio * ref
                glut = glut / max(md.recover_weeks, 1.0)

        def col(x):  # products x the one participant
            return None if x is None else x[:, None]

        buy = Ramps(grid, col(buy_qty) if buying else None, col(trigger), col(urgent), col(cap),
                    None, None, None, None, True, KG_PER_T)
        sell = Ramps(grid, col(release_qty) if urgent is not None else None,
                     col(low) if urgent is not None else np.zeros((n_p, 1)), col(urgent),
                     None, col(release_qty) if up is not None else None, col(up),
                     col(glut) if back is not None else None, col(back), False, KG_PER_T)
        return buy, sell

    def _shortage_share(self) -> np.ndarray:
        """Share of its region's users' need that went unmet (per product): its buyers' last week, and in a
        world with magnets its magnet makers' oxide this week (what their plan needed beyond their stock,
        ``MagnetMakerBook.oxide_short``). An oxide stock helps the users of the oxide: a magnet buyer short
        of magnets is helped by released Dy only through a maker short of Dy."""
        m = self.model
        book = m.buyer_book
        rows = book.rows_of_region[self.region]
        need = book.need(m.demand_multiplier).take(rows, axis=0).sum(axis=0)
        short = book.shortage.take(rows, axis=0).sum(axis=0)
        mb = m.maker_book
        rows_m = mb.rows_of_region.get(self.region) if mb.n else None
        if rows_m is not None and rows_m.size:
            need = need + mb.need_of(rows_m)
            short = short + mb.oxide_short.take(rows_m, axis=0).sum(axis=0)
        return where(need > 0, short / np.maximum(need, 1e-12), 0.0)

    def settle(self, region: str, clearing: RegionClearing) -> None:
        name = f"agency:{self.sid}"
        if self.mandate is None or region != self.region or name + ":buy" not in clearing.fills:
            return
        bought = clearing.fills[name + ":buy"][:, 0]
        sold = clearing.fills[name + ":sell"][:, 0]
        self.stockpile = np.maximum(self.stockpile + bought - sold, 0.0)
        self.stock_bought = bought
        self.stock_released = sold
        self._ever_traded = True
        cost = float(_sum(bought * clearing.paid, axis=None) * KG_PER_T)
        self.stock_spent_usd += cost
        if self._mandates and np.isfinite(self._mandates[-1][2]):
            self._mandates[-1][2] -= cost

    def begin_week(self) -> None:
        if not self._ever_traded:  # nothing to roll over (most states never trade)
            return
        if count_nonzero(self.stock_bought) or count_nonzero(self.stock_bought_4w):
            self.stock_bought_4w = 0.75 * self.stock_bought_4w + self.stock_bought
        if count_nonzero(self.stock_bought) or count_nonzero(self.stock_released):
            self.stock_bought = np.zeros(self.stock_bought.shape)
            self.stock_released = np.zeros(self.stock_released.shape)

    @property
    def is_china(self) -> bool:
        return self.spec.bloc == "china"
