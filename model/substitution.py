"""Coercivity substitution: magnet recipes lean toward the cheaper heavy rare earth, slowly.

Dy and Tb do one job in an NdFeB magnet: they keep its coercivity at motor temperatures (FACTS L5 names
grain-boundary diffusion, which puts either on the grain boundaries). A kg of Tb does the work of ``w`` kg of
Dy (``behaviour.coercivity_substitutes``; Dy = 1 by convention, Tb 1.7: Tb's larger anisotropy field makes it
about 1.5-2x as effective per kg in the published grain-boundary-diffusion work — an assumption within that
range). A recipe's *coercivity*, ``sum_p w_p c_p``, is what thrifting moves (each element's own rule, as
before); how it is split between the substitutes is the maker's choice of grade, made on cost:

- **The split it would choose** is the 2024 split tilted by ``(price_p / price_p,2024) ^ -sigma`` for each
  substitute (a CES choice with elasticity ``sigma`` = ``behaviour.substitution_elasticity``). It is anchored
  at the world's 2024 prices: the world's recipes are taken to be the grades makers chose at those prices,
  so at 2024 *relative* prices nothing moves, whatever the price level. Only relative prices matter.
- **Grades change slowly** (a motor is re-qualified on a new grade over months): each week the recipe's
  log tilt moves ``behaviour.substitution_rate_per_week`` of the way to the chosen one; the ratio of two
  substitutes' shares never leans further than ``behaviour.substitution_max_tilt`` times its 2024 ratio.
- **Coercivity is kept**: the tilt re-splits what thrifting left, so substitution moves tonnes between Dy
  and Tb (``w`` kg of Dy per kg of Tb), never the magnet's performance.

Prices are the recent prices of the row's market (``signals.recent``: what its buyers expect to pay). Used by
:class:`agents.buyer.BuyerBook` (oxide worlds: buyers hold the recipes) and
:class:`agents.magnet_maker.MagnetMakerBook` (magnet worlds: makers hold them). With ``sigma = 0``, a zero
rate or fewer than two substitutes in a recipe, recipes are exactly what thrifting makes.

:func:`thrift` is the thrifting rule itself (FACTS L5-L6), one for both books: content cut while the element's
recent price exceeds ``behaviour.thrift_trigger_ratio`` x its long memory or it ran short, recovering at a
quarter of that pace up to a ceiling lowered by ``behaviour.thrift_irreversible_share`` of each cut.
:func:`most_paid_per_kg` is the one-budget rule both books bid by: the most a recipe's user pays for a kg of
an element is what a kg of its product may cost less the other elements at their usual prices.
"""

from __future__ import annotations

import numpy as np

from model import market
from model.arrays import add_reduce as _sum
from model.arrays import clip, where
from model.params import Behaviour


def most_paid_per_kg(per_kg: np.ndarray, usual: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """The most each row pays per kg of each element (rows x products): ``budget`` (what a kg of its product
    may cost, less any processing: a column) less the other elements of its recipe (``per_kg``, kg per kg of
    product) at their ``usual`` prices, per kg of the element; 0 for an element the recipe does not hold."""
    spend = per_kg * usual
    other = _sum(spend, axis=1, keepdims=True) - spend
    room = np.maximum(budget - other, 0.0)
    return np.divide(room, per_kg, out=np.zeros(room.shape), where=per_kg > 0)


def thrift(thrifted: np.ndarray, base: np.ndarray, floor: np.ndarray, ceiling: np.ndarray, recent: np.ndarray,
           long: np.ndarray, short: np.ndarray, b: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """One week of thrifting of recipes (rows x products): returns the new thrifted recipes and their ceilings.

    ``base``, ``floor``: the 2024 recipes and their fully thrifted floor; ``recent``, ``long``: each row's
    market's recent price and long memory; ``short``: where the row ran short of the element.

    In the compiled kernel (``model._auction.thrift``: one pass over the elements instead of some fifteen
    array calls, each element the same operations in the same order) when it is built, else
    :func:`thrift_numpy`, its reference (the same bits)."""
    kernel = market._auction
    if kernel is None:
        return thrift_numpy(thrifted, base, floor, ceiling, recent, long, short, b)
    return kernel.thrift(thrifted, base, floor, ceiling, recent, long, short, b.thrift_trigger_ratio,
                         b.thrift_rate_per_week, b.thrift_irreversible_share)


def thrift_numpy(thrifted: np.ndarray, base: np.ndarray, floor: np.ndarray, ceiling: np.ndarray, recent: np.ndarray,
                 long: np.ndarray, short: np.ndarray, b: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """:func:`thrift` in numpy: the kernel's reference and the path without it."""
    high = (recent > b.thrift_trigger_ratio * long) | short
    low = recent < long
    step = b.thrift_rate_per_week * base
    cut = np.maximum(where(high, np.minimum(step, thrifted - floor), 0.0), 0.0)
    v = thrifted - cut
    ceiling = np.maximum(ceiling - b.thrift_irreversible_share * cut, floor)
    rec = low & ~high
    return where(rec, np.minimum(v + step / 4.0, np.maximum(ceiling, v)), v), ceiling


class CoercivitySubstitution:
    """The substitution state of one book's recipes (rows x products): each row's log tilt per substitute."""

    def __init__(self, products: tuple[str, ...] | list[str], base: np.ndarray, prices_2024: np.ndarray,
                 behaviour: Behaviour):
        """``base``: the rows' 2024 recipes (rows x products, kg per kg); ``prices_2024``: each row's market's
        2024 prices (rows x products, USD/kg)."""
        subs = behaviour.coercivity_substitutes
        self.cols = np.array([list(products).index(p) for p in subs], dtype=int)
        self.w = np.array(list(subs.values()), dtype=float)
        uses = base[:, self.cols] > 0 if self.cols.size else np.zeros((base.shape[0], 0), dtype=bool)
        self.rows = np.flatnonzero(uses.sum(axis=1) >= 2)  # recipes that hold two substitutes or more
        self.uses = uses[self.rows]
        self._n_used = self.uses.sum(axis=1, keepdims=True)  # substitutes each of those recipes holds
        self.sigma = behaviour.substitution_elasticity
        self.rate = behaviour.substitution_rate_per_week
        self.max_log = float(np.log(behaviour.substitution_max_tilt)) / 2.0  # centred: any two differ <= max
        self.on = bool(self.rows.size and self.sigma > 0 and self.rate > 0)
        self.log_p0 = np.log(np.maximum(prices_2024[np.ix_(self.rows, self.cols)], 1e-12))
        self.log_tilt = np.zeros((self.rows.size, self.cols.size))
        self._ix = np.ix_(self.rows, self.cols)
        self._cells: dict[int, np.ndarray] = {}  # columns of the recipes -> flat index of _ix's cells (see cells)

    def cells(self, n_cols: int) -> np.ndarray:
        """The flat (C-order) index of the cells ``[rows x substitutes]`` of a (rows x ``n_cols``) array, made
        once: ``a.take(cells).reshape(shape)`` reads ``a[np.ix_(rows, cols)]``, and ``a.put(cells, v)`` writes
        it, without numpy's two-array fancy indexing."""
        cells = self._cells.get(n_cols)
        if cells is None:
            cells = self._cells[n_cols] = (self.rows[:, None] * n_cols + self.cols[None, :]).ravel()
        return cells

    def tilt(self) -> np.ndarray:
        """Each substituting row's tilt of each substitute against its 2024 split (1 = the 2024 grade)."""
        return np.exp(self.log_tilt)

    def step(self, thrifted: np.ndarray, recent: np.ndarray) -> np.ndarray:
        """One week: tilts move toward the split chosen at ``recent`` prices (rows x products, USD/kg), and
        the recipes are ``thrifted`` (rows x products) with each substituting row's coercivity re-split by its
        tilt. Returns ``thrifted`` itself when substitution is off, else a new array."""
        if not self.on:
            return thrifted
        shape = self.log_tilt.shape
        chosen = -self.sigma * (np.log(np.maximum(recent.take(self.cells(recent.shape[1])).reshape(shape), 1e-12))
                                - self.log_p0)
        # only relative prices matter: centre on the mean over the substitutes the recipe holds
        chosen = chosen - _sum(where(self.uses, chosen, 0.0), axis=1, keepdims=True) / self._n_used
        chosen = clip(chosen, -self.max_log, self.max_log)
        self.log_tilt = self.log_tilt + self.rate * (chosen - self.log_tilt)
        cells = self.cells(thrifted.shape[1])
        work = thrifted.take(cells).reshape(shape) * self.w  # coercivity each substitute gives now (Dy-kg per kg)
        total = _sum(work, axis=1, keepdims=True)
        leaned = work * np.exp(self.log_tilt)
        norm = _sum(leaned, axis=1, keepdims=True)
        split = where(norm > 0, leaned / where(norm > 0, norm, 1.0), 0.0)
        out = thrifted.copy()  # C-contiguous, as put's flat index needs
        out.put(cells, total * split / self.w)
        return out
