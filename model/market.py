"""Call auctions: one per ore pool (discrete lots) and one per product x region exchange (schedules).

Two clearing rules live here, both plain numpy (no Mesa import) and tested on their own.

**Discrete lots** (:func:`clear`, used by the ore markets, where each mine site offers its lot at its cost):

1. Supply ``S(p)`` is the total quantity of asks priced ``<= p``; demand ``D(p)`` is the total
   quantity of bids priced ``>= p``. Orders with quantity ``<= 0`` are ignored (fill 0).
2. Candidate prices are the distinct ask and bid prices. The traded volume is
   ``V = max_p min(S(p), D(p))`` over the candidates. If ``V == 0`` (an empty side, or the best
   bid is below the best ask) nothing trades: price ``nan``, volume 0, all fills 0.
3. Among the candidates achieving ``V``, keep those minimising ``|S(p) - D(p)|``. The clearing
   price is the midpoint of the lowest and highest kept candidate (one ask at 10 and one bid at 20
   of equal quantity clear at 15).
4. Allocation is by price priority, pro-rata within the marginal price level. Asks are filled in
   ascending price order, bids in descending price order; orders at the same price form one level.
   Levels entirely inside ``V`` are filled completely. The level where the cumulative quantity
   passes ``V`` is filled pro-rata to order quantity, so each side's fills sum to ``V``. Every
   filled ask is priced ``<= price`` and every filled bid ``>= price``.

Quantities are compared with a relative tolerance of ``1e-10`` times the larger side's total, so the
result does not depend on the input order of the orders. Two implementations give the same bits: the
compiled kernel ``model._auction`` (Cython, built on install) and :func:`_clear_numpy`, the numpy
reference it is tested against, used when the kernel is not built (:data:`KERNEL` says which one runs).

**Schedules on a price grid** (:func:`clear_curves`, used by the product exchanges). Every participant
submits a schedule: the quantity it would sell (or buy) at each price of the market's log-spaced price
grid, non-decreasing in price for sellers and non-increasing for buyers. Between grid points schedules
are linear in the interpolation weight of log price (the day-ahead power exchanges' interpolated
curves). The clearing price is where aggregate demand meets aggregate supply, so it is a continuous
function of every schedule: a small change in anyone's stock moves the price a little, never by a tick.
Each participant gets its schedule's quantity at that price; if the crossing lies beyond the grid the
price stays at the grid's end and the long side is filled pro rata. It too runs in the compiled kernel when
it is built, else in :func:`_clear_curves_numpy`, its reference (the same bits).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from model.arrays import where

try:
    from model import _auction
except ImportError:  # no C compiler at install time: the numpy reference clears (same results, slower)
    _auction = None
# built from an older _auction.pyx (monotone_rows came with clear_blocks' checked arrays and the factored Bid
# and Store forms, whose arguments the older kernel reads differently; deliver_contracts with the term contracts;
# the settle_* functions with the books' compiled settling; thrift, entry_exit, record_clearing, inflow_outlook
# and mine with compiled thrifting, small sites, price signals and mining)
if _auction is not None and not hasattr(_auction, "mine"):
    warnings.warn("model._auction was built from an older model/_auction.pyx: rebuild it (pip install -e .); "
                  "until then the numpy references clear (same results, slower)", stacklevel=1)
    _auction = None

__all__ = ["KERNEL", "Clearing", "CurveClearing", "clear", "clear_blocks", "clear_curves", "clear_unchecked",
           "price_grid"]

KERNEL = "compiled" if _auction is not None else "numpy"

_RTOL = 1e-10


@dataclass(frozen=True, slots=True)
class Clearing:
    """Outcome of one call auction (see module docstring for the rules)."""

    price: float  # uniform clearing price; nan when nothing trades
    volume: float  # total traded quantity (>= 0)
    ask_fill: np.ndarray  # quantity sold by each ask order, input order, 0 <= fill <= qty
    bid_fill: np.ndarray  # quantity bought by each bid order, input order
    best_ask: float  # lowest ask price with qty > 0 (nan if none)
    best_bid: float  # highest bid price with qty > 0 (nan if none)
    offered: float  # total ask qty (positive quantities only)
    demanded: float  # total bid qty (positive quantities only)


def _as_book_side(price, qty, side: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(price, dtype=float)
    q = np.asarray(qty, dtype=float)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError(
            f"{side} prices and quantities must be 1-D arrays, got shapes {p.shape} and {q.shape}"
        )
    if p.shape != q.shape:
        raise ValueError(f"mismatched lengths: {p.size} {side} prices but {q.size} {side} quantities")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"non-finite {side} price (nan or inf) in input")
    if np.any(p < 0.0):
        raise ValueError(f"negative {side} price in input: {p[p < 0.0].min()!r}")
    if np.any(np.isnan(q)):
        raise ValueError(f"nan {side} quantity in input")
    if np.any(np.isinf(q)):
        raise ValueError(f"infinite {side} quantity in input")
    return p, q


def _levels(p_sorted: np.ndarray, q_sorted: np.ndarray):
    """Group a price-sorted side into levels: (level index per order, level prices, level totals)."""
    new = np.empty(p_sorted.size, dtype=bool)
    new[0] = True
    np.not_equal(p_sorted[1:], p_sorted[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return np.cumsum(new) - 1, p_sorted[starts], np.add.reduceat(q_sorted, starts)


def clear(ask_price, ask_qty, bid_price, bid_qty) -> Clearing:
    """Clear one uniform-price call auction. Inputs are 1-D array-likes; see module docstring."""
    ap, aq = _as_book_side(ask_price, ask_qty, "ask")
    bp, bq = _as_book_side(bid_price, bid_qty, "bid")
    return clear_unchecked(ap, aq, bp, bq)


def _book_levels(p: np.ndarray, q: np.ndarray):
    """:func:`_levels`, skipping the grouping when every price on the side is distinct (the usual case)."""
    if p.size > 1 and not (p[1:] != p[:-1]).all():
        return _levels(p, q)
    return None, p, q  # one order per level: the level totals are the quantities themselves


_ZERO = np.zeros(1)


def clear_unchecked(ap: np.ndarray, aq: np.ndarray, bp: np.ndarray, bq: np.ndarray) -> Clearing:
    """:func:`clear` without input validation, for the model's hot path.

    The caller guarantees 1-D float64 arrays (any stride) of equal length per side, finite non-negative
    prices and finite quantities (the model builds its books that way). Runs the compiled kernel when it
    is built, else :func:`_clear_numpy`; both give the same bits."""
    if _auction is not None:
        return Clearing(*_auction.clear(ap, aq, bp, bq, _RTOL))
    return _clear_numpy(ap, aq, bp, bq)


def _clear_numpy(ap: np.ndarray, aq: np.ndarray, bp: np.ndarray, bq: np.ndarray) -> Clearing:
    """The clearing rules in numpy: the reference the compiled kernel is tested against, and the fallback.

    It makes few passes over the arrays (no ``np.unique``, no grouping of orders into levels when every
    price on a side is distinct). Its sums fix the rounding the kernel reproduces: ``np.add.reduce`` for
    the quantity offered and demanded, ``np.add.reduceat`` for level totals, ``cumsum`` for running totals.
    """
    ask_fill = np.zeros(ap.size)
    bid_fill = np.zeros(bp.size)
    a_idx = (aq > 0.0).nonzero()[0]
    b_idx = (bq > 0.0).nonzero()[0]
    a_q0, b_q0 = aq[a_idx], bq[b_idx]
    offered = float(np.add.reduce(a_q0))
    demanded = float(np.add.reduce(b_q0))
    if not a_idx.size or not b_idx.size:
        best_ask = float(ap[a_idx].min()) if a_idx.size else math.nan
        best_bid = float(bp[b_idx].max()) if b_idx.size else math.nan
        return Clearing(math.nan, 0.0, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)
    a_p0, b_p0 = ap[a_idx], bp[b_idx]
    # Asks ascending, bids descending (stable, as in clear).
    a_o = a_p0.argsort(kind="stable")
    b_o = (-b_p0).argsort(kind="stable")
    a_p, a_q = a_p0[a_o], a_q0[a_o]
    b_p, b_q = b_p0[b_o], b_q0[b_o]
    best_ask, best_bid = float(a_p[0]), float(b_p[0])
    if best_bid < best_ask:
        return Clearing(math.nan, 0.0, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)
    a_lvl, a_lp, a_lt = _book_levels(a_p, a_q)
    b_lvl, b_lp, b_lt = _book_levels(b_p, b_q)

    # candidate prices, sorted; a price on both sides appears twice, with the same supply and demand
    # both times, so the outcome is that of the distinct prices (no np.unique needed)
    cand = np.concatenate((a_lp, b_lp))
    cand.sort()
    a_cum, b_cum = a_lt.cumsum(), b_lt.cumsum()
    supply = np.concatenate((_ZERO, a_cum))[a_lp.searchsorted(cand, side="right")]
    # bid levels are descending: the count of levels priced >= c is their number less those below c
    demand = np.concatenate((_ZERO, b_cum))[b_lp.size - b_lp[::-1].searchsorted(cand, side="left")]
    matched = np.minimum(supply, demand)
    volume = float(matched.max())
    tol = _RTOL * max(offered, demanded)
    if volume <= tol:
        return Clearing(math.nan, 0.0, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)

    # imbalance where the volume is achieved (elsewhere +inf): the kept prices are within tol of its minimum
    imbalance = where(matched >= volume - tol, np.abs(supply - demand), np.inf)
    kept_p = cand[imbalance <= imbalance.min() + tol]
    price = 0.5 * (float(kept_p[0]) + float(kept_p[-1]))  # cand is sorted

    # both sides' levels in one pass: asks then bids
    na = a_lt.size
    ratio = _level_ratio(np.concatenate((a_lt, b_lt)), np.concatenate((a_cum, b_cum)),
                         np.concatenate((a_lp <= price, b_lp >= price)), volume, tol)
    a_ratio, b_ratio = ratio[:na], ratio[na:]
    ask_fill[a_idx[a_o]] = a_q * (a_ratio if a_lvl is None else a_ratio[a_lvl])
    bid_fill[b_idx[b_o]] = b_q * (b_ratio if b_lvl is None else b_ratio[b_lvl])
    return Clearing(price, volume, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)


def _level_ratio(lvl_tot: np.ndarray, cum: np.ndarray, eligible: np.ndarray, volume: float,
                 tol: float) -> np.ndarray:
    """Fraction of each level filled when levels are served in order up to ``volume``
    (``cum = np.cumsum(lvl_tot)``, already computed for the crossing)."""
    remaining = volume - (cum - lvl_tot)
    ratio = np.minimum(np.maximum(remaining / lvl_tot, 0.0), 1.0)  # np.clip, without its wrapper
    ratio[remaining >= lvl_tot - tol] = 1.0
    ratio[remaining <= tol] = 0.0
    ratio[~eligible] = 0.0
    return ratio


# ====================================================================================== schedule auctions
@dataclass(slots=True)  # not frozen: made twice a week, and a frozen __init__ is slow (model/exchange.py)
class CurveClearing:
    """Outcome of a batch of schedule auctions (one row per market, e.g. per product of a region)."""

    price: np.ndarray  # (M,) clearing price; nan where nothing trades
    volume: np.ndarray  # (M,) traded quantity (>= 0)
    sell_fill: np.ndarray  # (M, S) quantity sold by each seller row
    buy_fill: np.ndarray  # (M, B) quantity bought by each buyer row
    supplied: np.ndarray  # (M,) sellers' schedules at the price, before any pro-rata cut
    demanded: np.ndarray  # (M,) buyers' schedules at the price, before any pro-rata cut
    bound: np.ndarray  # (M,) -1: price held at the grid's bottom, +1: at its top, 0: inside


def price_grid(centre: np.ndarray, low: float, high: float, points: int) -> np.ndarray:
    """Log-spaced price grids, one row per market: ``centre x low .. centre x high`` in ``points`` steps."""
    steps = np.exp(np.linspace(np.log(low), np.log(high), int(points)))
    return np.asarray(centre, dtype=float)[:, None] * steps[None, :]


def clear_curves(grid: np.ndarray, supply: np.ndarray, demand: np.ndarray,
                 log_grid: np.ndarray | None = None) -> CurveClearing:
    """Clear ``M`` markets at once from schedules on their price grids.

    ``grid`` is ``(M, G)``, increasing and positive; ``supply`` is ``(M, S, G)``, each row non-decreasing
    along the grid; ``demand`` is ``(M, B, G)``, each row non-increasing; quantities finite and >= 0. With
    ``E(g) = D(g) - S(g)`` (non-increasing), the price lies between the last grid point with excess demand
    and the first without, at the weight ``t = E0 / (E0 - E1)`` of log price, where interpolated supply
    equals interpolated demand. Fills are each row's interpolated quantity; the side that is longer at a
    grid end is cut pro rata, so the two sides' fills always sum to the same volume.
    """
    grid = np.asarray(grid, dtype=float)
    lg = np.log(grid) if log_grid is None else log_grid
    if _auction is not None:
        log_price, *rest = _auction.clear_curves(np.ascontiguousarray(lg, dtype=float),
                                                 np.asarray(supply, dtype=float), np.asarray(demand, dtype=float))
        return CurveClearing(np.exp(log_price), *rest)
    return _clear_curves_numpy(lg, np.asarray(supply, dtype=float), np.asarray(demand, dtype=float))


def clear_blocks(grid: np.ndarray, sells: list, buys: list, log_grid: np.ndarray,
                 hint: np.ndarray | None = None, checked: tuple | None = None) -> CurveClearing:
    """:func:`clear_curves` on the sellers' and buyers' order blocks (:class:`model.exchange.OrderBlock`, each
    with participants), their schedules concatenated in block order. The compiled kernel reads the blocks
    as they are, schedule forms included, and works a form's quantities out only at the grid points the
    clearing reads; the numpy reference concatenates their ``qty`` (the same bits). ``hint`` (int64, one per
    market, kept by the caller between clearings): where each market crossed last, where the kernel looks
    first; it writes this clearing's there (the result does not depend on it). ``checked``: ``(array, way)``
    pairs of arrays that do not change and were found monotone (:func:`monotone_rows`), which the kernel then
    does not read again to know the schedules monotone (the result does not depend on it either)."""
    if _auction is not None:
        log_price, *rest = _auction.clear_blocks(log_grid, grid, [b.args() for b in sells], [b.args() for b in buys],
                                                 hint, checked)
        return CurveClearing(np.exp(log_price), *rest)
    n_p, n_g = grid.shape
    empty = np.zeros((n_p, 0, n_g))
    supply = np.concatenate([b.qty for b in sells], axis=1) if sells else empty
    demand = np.concatenate([b.qty for b in buys], axis=1) if buys else empty
    return _clear_curves_numpy(log_grid, supply, demand)


def monotone_rows(values: np.ndarray, way: int) -> bool:
    """Whether every row of ``values`` is finite and never rises (``way`` -1), never falls (+1) or rises
    strictly (2), in the compiled kernel (False without it: the numpy reference bisects nothing)."""
    return _auction is not None and bool(_auction.monotone_rows(values, way))


def _clear_curves_numpy(lg: np.ndarray, supply: np.ndarray, demand: np.ndarray) -> CurveClearing:
    """:func:`clear_curves` in numpy, on the log grid: the reference the compiled kernel
    (``model._auction.clear_curves``) is tested against, and the fallback. Its sums fix the rounding the
    kernel reproduces: the aggregate schedules add participants in order (``sum`` over a middle axis), the
    quantities at the price add them pairwise (``sum`` over the last axis)."""
    m, g_n = lg.shape
    s_tot = supply.sum(axis=1)
    d_tot = demand.sum(axis=1)
    excess = d_tot - s_tot
    cleared = excess <= 0.0
    none = ~cleared.any(axis=1)  # demand exceeds supply even at the top of the grid
    first = where(none, g_n - 1, cleared.argmax(axis=1))
    lo = np.maximum(first - 1, 0)
    rows = np.arange(m)
    e0, e1 = excess[rows, lo], excess[rows, first]
    inside = (~none) & (first > 0)
    t = where(inside, e0 / where(inside, e0 - e1, 1.0), 1.0)
    price = np.exp(lg[rows, lo] + t * (lg[rows, first] - lg[rows, lo]))
    w0, w1 = (1.0 - t)[:, None], t[:, None]
    sell = w0 * supply[rows, :, lo] + w1 * supply[rows, :, first]
    buy = w0 * demand[rows, :, lo] + w1 * demand[rows, :, first]
    supplied, demanded = sell.sum(axis=1), buy.sum(axis=1)
    volume = np.minimum(supplied, demanded)
    tol = 1e-12 * np.maximum(np.maximum(supplied, demanded), 1.0)
    traded = volume > tol
    sell = sell * where(supplied > 0, volume / where(supplied > 0, supplied, 1.0), 0.0)[:, None]
    buy = buy * where(demanded > 0, volume / where(demanded > 0, demanded, 1.0), 0.0)[:, None]
    sell[~traded] = 0.0
    buy[~traded] = 0.0
    volume = where(traded, volume, 0.0)
    bound = where(none, 1, where(first == 0, -1, 0))
    return CurveClearing(where(traded, price, np.nan), volume, sell, buy, supplied, demanded, bound)
