"""Uniform-price call auction, used for every product x region market and the ore markets.

One call to :func:`clear` settles one sealed-book auction. Rules:

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
   filled ask is priced ``<= price`` and every filled bid ``>= price``. This follows from rules 2-3
   (``S`` and ``D`` both reach ``V`` at every kept candidate). Allocation is also restricted to
   levels on the right side of the price, so floating-point noise cannot break the guarantee.

Quantities are compared with a relative tolerance of ``1e-10`` times the larger side's total.
This absorbs summation-order rounding, so the result does not depend on the input order of the
orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Clearing", "clear", "ladder"]

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


def _level_ratio(lvl_tot: np.ndarray, eligible: np.ndarray, volume: float, tol: float) -> np.ndarray:
    """Fraction of each level filled when levels are served in order up to ``volume``."""
    cum = np.cumsum(lvl_tot)
    remaining = volume - (cum - lvl_tot)
    ratio = np.clip(remaining / lvl_tot, 0.0, 1.0)
    ratio[remaining >= lvl_tot - tol] = 1.0
    ratio[remaining <= tol] = 0.0
    ratio[~eligible] = 0.0
    return ratio


def clear(ask_price, ask_qty, bid_price, bid_qty) -> Clearing:
    """Clear one uniform-price call auction. Inputs are 1-D array-likes; see module docstring."""
    ap, aq = _as_book_side(ask_price, ask_qty, "ask")
    bp, bq = _as_book_side(bid_price, bid_qty, "bid")
    ask_fill = np.zeros(ap.size)
    bid_fill = np.zeros(bp.size)

    a_idx = np.flatnonzero(aq > 0.0)
    b_idx = np.flatnonzero(bq > 0.0)
    offered = float(aq[a_idx].sum())
    demanded = float(bq[b_idx].sum())
    best_ask = float(ap[a_idx].min()) if a_idx.size else math.nan
    best_bid = float(bp[b_idx].max()) if b_idx.size else math.nan
    if not a_idx.size or not b_idx.size or best_bid < best_ask:
        return Clearing(math.nan, 0.0, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)

    # Asks ascending, bids descending (stable, so equal prices keep input order; irrelevant to
    # the result because each level is filled pro-rata).
    a_ord = a_idx[np.argsort(ap[a_idx], kind="stable")]
    b_ord = b_idx[np.argsort(-bp[b_idx], kind="stable")]
    a_p, a_q = ap[a_ord], aq[a_ord]
    b_p, b_q = bp[b_ord], bq[b_ord]
    a_lvl, a_lp, a_lt = _levels(a_p, a_q)
    b_lvl, b_lp, b_lt = _levels(b_p, b_q)

    cand = np.unique(np.concatenate((a_lp, b_lp)))
    supply = np.concatenate(([0.0], np.cumsum(a_lt)))[np.searchsorted(a_lp, cand, side="right")]
    # b_lp is descending, so -b_lp is ascending: count bid levels with price >= candidate.
    demand = np.concatenate(([0.0], np.cumsum(b_lt)))[np.searchsorted(-b_lp, -cand, side="right")]
    matched = np.minimum(supply, demand)
    volume = float(matched.max())
    tol = _RTOL * max(offered, demanded)
    if volume <= tol:
        return Clearing(math.nan, 0.0, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)

    achieving = matched >= volume - tol
    imbalance = np.abs(supply - demand)
    kept = achieving & (imbalance <= imbalance[achieving].min() + tol)
    kept_p = cand[kept]
    price = 0.5 * (float(kept_p[0]) + float(kept_p[-1]))  # cand is sorted

    a_ratio = _level_ratio(a_lt, a_lp <= price, volume, tol)
    b_ratio = _level_ratio(b_lt, b_lp >= price, volume, tol)
    ask_fill[a_ord] = a_q * a_ratio[a_lvl]
    bid_fill[b_ord] = b_q * b_ratio[b_lvl]
    return Clearing(price, volume, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)


def ladder(
    level: float, qty: float, n: int = 5, spread: float = 0.1, side: str = "ask"
) -> tuple[np.ndarray, np.ndarray]:
    """Split one reservation level into an n-step order schedule ``(prices, quantities)``.

    Prices are evenly spaced over ``level*(1-spread/2) .. level*(1+spread/2)``, which is just
    ``[level]`` when ``n == 1``. Each step carries ``qty/n``. Asks are returned in ascending price
    order. Bids use the same prices in descending order (a buyer's schedule, highest price first).
    """
    if side not in ("ask", "bid"):
        raise ValueError(f"side must be 'ask' or 'bid', got {side!r}")
    if not (math.isfinite(level) and level > 0.0):
        raise ValueError(f"level must be a finite positive price, got {level!r}")
    if not (math.isfinite(qty) and qty >= 0.0):
        raise ValueError(f"qty must be finite and >= 0, got {qty!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not (math.isfinite(spread) and 0.0 <= spread < 2.0):
        raise ValueError(f"spread must satisfy 0 <= spread < 2, got {spread!r}")
    n = int(n)
    if n == 1:
        prices = np.array([float(level)])
    else:
        prices = level * np.linspace(1.0 - spread / 2.0, 1.0 + spread / 2.0, n)
    if not (np.all(np.isfinite(prices)) and np.all(prices > 0.0)):
        raise ValueError(f"ladder prices out of range for level={level!r}, spread={spread!r}")
    if side == "bid":
        prices = prices[::-1].copy()
    return prices, np.full(n, qty / n)
