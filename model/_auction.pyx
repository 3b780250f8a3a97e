# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels of the model's auctions, each operation for operation as its Python/numpy reference:

- :func:`clear`: one call auction of discrete lots (:func:`model.market.clear_unchecked`; reference
  ``model.market._clear_numpy``);
- :func:`clear_curves`: the schedule auctions of a region's product exchanges (:func:`model.market.clear_curves`;
  reference ``model.market._clear_curves_numpy``);
- :func:`clear_blocks`: the same schedule auctions on order blocks given as arrays or as the schedule forms
  of :mod:`model.exchange` (reference: each block's ``qty``, concatenated, through ``_clear_curves_numpy``);
- :func:`ore_trade`: a week of ore trade, the captive deliveries and two passes of one auction per pool
  (reference ``model.ore_market.OreMarket._trade_python``), clearing each pool's book with :func:`clear`'s code;
- :func:`deliver_contracts`: a region's term contracts of a week, the books moved in place (reference
  ``model.model.RareEarthModel._deliver_contracts_numpy``);
- :func:`settle_sold`, :func:`settle_bought`, :func:`settle_own`, :func:`sell_from_stock`, :func:`add_to_stock`:
  a participant's books moved by its fills of a clearing, in place (references: the numpy lines of the books'
  ``settle`` in agents/);
- :func:`thrift`: a week of thrifting of a book's recipes (reference ``model.substitution.thrift_numpy``);
- :func:`entry_exit`: small sites opening and closing (reference ``agents.miner.MinerFleet._entry_exit_numpy``);
- :func:`record_clearing`, :func:`inflow_outlook`: a region's price memories after its clearing and its supply
  outlook after a week's arrivals (references ``model.signals.MarketSignals._record_clearing_numpy`` and
  ``_inflow_outlook_numpy``);
- :func:`mine`: a week's mining of every site (reference ``agents.miner.MinerFleet._mine_numpy``).

A week of the model clears about 14 auctions (ore pools and oxide markets). In numpy each clearing is
some 30 array calls on books of tens to hundreds of orders, so the per-call overhead, not the arithmetic,
set the cost (about 55 us an auction, a third of a simulated week); the Python loops around the ore
auctions cost as much again. These kernels do the same work in C loops.

They follow their references bit for bit, which the tests check on random books and on every week of
stressed runs: the same stable sort order, ``numpy.add.reduce``'s pairwise summation for the quantity
offered and demanded (and for any sum over a contiguous last axis), ``numpy.add.reduceat``'s for the total
of a price level (first order plus the pairwise sum of the rest), a sequential running sum as
``numpy.cumsum`` (and as a sum over a leading or middle axis), Python's ``min``/``max`` keeping the first of
equal values, and the same elementwise operations in the same order. The build turns off floating-point
contraction (``-ffp-contract=off``) so the compiler cannot fuse a multiply and an add into one rounding.
"""

from cpython.buffer cimport PyBUF_RECORDS, PyBUF_RECORDS_RO, PyBuffer_Release, PyObject_GetBuffer
from libc.math cimport INFINITY, NAN, fabs
from libc.stdlib cimport calloc, free, malloc

import numpy as np

cdef Py_ssize_t PW_BLOCKSIZE = 128


cdef double _pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise sum (``DOUBLE_pairwise_sum``), as ``numpy.add.reduce`` uses on a contiguous array."""
    cdef Py_ssize_t i, n2
    cdef double res, r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        res = 0.0
        for i in range(n):
            res = res + a[i]
        return res
    elif n <= PW_BLOCKSIZE:
        r0 = a[0]
        r1 = a[1]
        r2 = a[2]
        r3 = a[3]
        r4 = a[4]
        r5 = a[5]
        r6 = a[6]
        r7 = a[7]
        i = 8
        while i < n - (n % 8):
            r0 = r0 + a[i]
            r1 = r1 + a[i + 1]
            r2 = r2 + a[i + 2]
            r3 = r3 + a[i + 3]
            r4 = r4 + a[i + 4]
            r5 = r5 + a[i + 5]
            r6 = r6 + a[i + 6]
            r7 = r7 + a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef void _stable_sort(const double* key, Py_ssize_t* idx, Py_ssize_t* tmp, Py_ssize_t n) noexcept nogil:
    """Sort ``idx[0:n]`` (positions into ``key``) by ascending key, ties in their current order (merge sort,
    insertion sort on short runs): the permutation of ``argsort(kind="stable")``."""
    cdef Py_ssize_t i, j, lo, mid, hi, width, a, b, k, v
    cdef double kv
    cdef Py_ssize_t RUN = 16
    lo = 0
    while lo < n:
        hi = lo + RUN if lo + RUN < n else n
        for i in range(lo + 1, hi):
            v = idx[i]
            kv = key[v]
            j = i - 1
            while j >= lo and key[idx[j]] > kv:
                idx[j + 1] = idx[j]
                j -= 1
            idx[j + 1] = v
        lo += RUN
    width = RUN
    while width < n:
        lo = 0
        while lo + width < n:
            mid = lo + width
            hi = lo + 2 * width if lo + 2 * width < n else n
            a, b, k = lo, mid, lo
            while a < mid and b < hi:
                if key[idx[b]] < key[idx[a]]:  # strictly smaller: equal keys keep the left (earlier) one first
                    tmp[k] = idx[b]
                    b += 1
                else:
                    tmp[k] = idx[a]
                    a += 1
                k += 1
            while a < mid:
                tmp[k] = idx[a]
                a += 1
                k += 1
            while b < hi:
                tmp[k] = idx[b]
                b += 1
                k += 1
            for k in range(lo, hi):
                idx[k] = tmp[k]
            lo += 2 * width
        width *= 2


cdef Py_ssize_t _levels(const double* p, const double* q, Py_ssize_t n, Py_ssize_t* lvl, double* lp,
                        double* lt, double* cum) noexcept nogil:
    """Group a sorted side into price levels: level of each order, level prices, totals (numpy.add.reduceat:
    the first order plus the pairwise sum of the others) and running totals (numpy.cumsum). Returns the
    number of levels."""
    cdef Py_ssize_t s = 0, e, m = 0, i
    while s < n:
        e = s + 1
        while e < n and p[e] == p[s]:
            e += 1
        lp[m] = p[s]
        lt[m] = q[s] if e - s == 1 else q[s] + _pairwise(q + s + 1, e - s - 1)
        cum[m] = lt[m] if m == 0 else cum[m - 1] + lt[m]
        for i in range(s, e):
            lvl[i] = m
        m += 1
        s = e
    return m


cdef inline double _ratio(double lt, double cum, bint eligible, double volume, double tol) noexcept nogil:
    """Share of a level filled (``model.market._level_ratio``, in its order of operations)."""
    cdef double remaining = volume - (cum - lt)
    cdef double r = remaining / lt
    if not eligible or remaining <= tol:
        return 0.0
    if remaining >= lt - tol:
        return 1.0
    r = r if r >= 0.0 else 0.0
    return r if r <= 1.0 else 1.0


cdef int _clear_book(const double* ap, Py_ssize_t sap, const double* aq, Py_ssize_t saq, Py_ssize_t na,
                     const double* bp, Py_ssize_t sbp, const double* bq, Py_ssize_t sbq, Py_ssize_t nb,
                     double rtol, double* af, double* bf, double* out) noexcept nogil:
    """Clear one book: asks ``ap``/``aq`` and bids ``bp``/``bq``, each read with its stride (in elements).
    Writes the fills to ``af`` and ``bf`` (contiguous, ``na`` and ``nb`` long) and ``price, volume,
    best_ask, best_bid, offered, demanded`` to ``out[0:6]``. Returns -1 when out of memory, else 0."""
    cdef Py_ssize_t n = na + nb + 1
    # one block of scratch memory: 9 double arrays and 5 index arrays of n entries
    cdef double* dbuf = <double*> malloc(9 * n * sizeof(double))
    cdef Py_ssize_t* ibuf = <Py_ssize_t*> malloc(5 * n * sizeof(Py_ssize_t))
    if dbuf == NULL or ibuf == NULL:
        free(dbuf)
        free(ibuf)
        return -1
    cdef double* key = dbuf               # sort keys of the positive orders (input order)
    cdef double* ps = dbuf + n            # sorted prices: asks, then bids
    cdef double* qs = dbuf + 2 * n        # sorted quantities
    cdef double* lp = dbuf + 3 * n        # level prices
    cdef double* lt = dbuf + 4 * n        # level totals
    cdef double* cum = dbuf + 5 * n       # running level totals
    cdef double* cand = dbuf + 6 * n      # candidate prices, ascending
    cdef double* mat = dbuf + 7 * n       # volume matched at each candidate: min(supply, demand)
    cdef double* gap = dbuf + 8 * n       # |supply - demand| at each candidate
    cdef Py_ssize_t* pos = ibuf           # input index of each positive order
    cdef Py_ssize_t* order = ibuf + n     # sort permutation
    cdef Py_ssize_t* tmp = ibuf + 2 * n
    cdef Py_ssize_t* lvl = ibuf + 3 * n   # level of each sorted order
    cdef Py_ssize_t* orig = ibuf + 4 * n  # input index of each sorted order
    cdef Py_ssize_t ka = 0, kb = 0, i, j, la, lb, nc, ia, ib
    cdef double offered, demanded, best_ask = NAN, best_bid = NAN, volume = 0.0, tol, thr, lim
    cdef double s, d, m, c, lo = NAN, hi = NAN, price = NAN
    for i in range(na):
        af[i] = 0.0
    for i in range(nb):
        bf[i] = 0.0
    try:
        # positive orders, in input order; their sums as numpy.add.reduce adds them
        for i in range(na):
            if aq[i * saq] > 0.0:
                pos[ka] = i
                qs[ka] = aq[i * saq]
                ka += 1
        offered = _pairwise(qs, ka)
        for i in range(nb):
            if bq[i * sbq] > 0.0:
                pos[ka + kb] = i
                qs[ka + kb] = bq[i * sbq]
                kb += 1
        demanded = _pairwise(qs + ka, kb)
        if ka:
            best_ask = ap[pos[0] * sap]
            for i in range(1, ka):
                if ap[pos[i] * sap] < best_ask:
                    best_ask = ap[pos[i] * sap]
        if kb:
            best_bid = bp[pos[ka] * sbp]
            for i in range(ka + 1, ka + kb):
                if bp[pos[i] * sbp] > best_bid:
                    best_bid = bp[pos[i] * sbp]
        if ka and kb and not (best_bid < best_ask):
            # asks ascending by price, bids ascending by -price (descending price), both stable
            for i in range(ka):
                key[i] = ap[pos[i] * sap]
                order[i] = i
            _stable_sort(key, order, tmp, ka)
            for i in range(kb):
                key[ka + i] = -bp[pos[ka + i] * sbp]
                order[ka + i] = ka + i
            _stable_sort(key, order + ka, tmp, kb)
            for i in range(ka):
                orig[i] = pos[order[i]]
                ps[i] = ap[orig[i] * sap]
                qs[i] = aq[orig[i] * saq]
            for i in range(ka, ka + kb):
                orig[i] = pos[order[i]]
                ps[i] = bp[orig[i] * sbp]
                qs[i] = bq[orig[i] * sbq]
            la = _levels(ps, qs, ka, lvl, lp, lt, cum)
            lb = _levels(ps + ka, qs + ka, kb, lvl + ka, lp + la, lt + la, cum + la)
            # candidates: every level price of both sides, ascending (bid levels are descending)
            ia, ib, nc = 0, lb - 1, 0
            while ia < la or ib >= 0:
                if ib < 0 or (ia < la and lp[ia] <= lp[la + ib]):
                    cand[nc] = lp[ia]
                    ia += 1
                else:
                    cand[nc] = lp[la + ib]
                    ib -= 1
                nc += 1
            # supply: asks priced <= c; demand: bids priced >= c
            ia, ib = 0, lb
            for i in range(nc):
                c = cand[i]
                while ia < la and lp[ia] <= c:
                    ia += 1
                while ib > 0 and lp[la + ib - 1] < c:
                    ib -= 1
                s = cum[ia - 1] if ia else 0.0
                d = cum[la + ib - 1] if ib else 0.0
                m = s if s <= d else d
                mat[i] = m
                gap[i] = fabs(s - d)
                if m > volume:
                    volume = m
            tol = rtol * (offered if offered >= demanded else demanded)
            if volume > tol:
                thr = volume - tol
                lim = INFINITY
                for i in range(nc):
                    if mat[i] >= thr and gap[i] < lim:
                        lim = gap[i]
                lim = lim + tol
                for i in range(nc):
                    if mat[i] >= thr and gap[i] <= lim:
                        if lo != lo:
                            lo = cand[i]
                        hi = cand[i]
                price = 0.5 * (lo + hi)
                for i in range(ka):
                    j = lvl[i]
                    af[orig[i]] = qs[i] * _ratio(lt[j], cum[j], lp[j] <= price, volume, tol)
                for i in range(ka, ka + kb):
                    j = la + lvl[i]
                    bf[orig[i]] = qs[i] * _ratio(lt[j], cum[j], lp[j] >= price, volume, tol)
            else:
                volume = 0.0
    finally:
        free(dbuf)
        free(ibuf)
    out[0] = price
    out[1] = volume
    out[2] = best_ask
    out[3] = best_bid
    out[4] = offered
    out[5] = demanded
    return 0


def clear(const double[:] ap, const double[:] aq, const double[:] bp, const double[:] bq, double rtol):
    """Clear one book (1-D float64 arrays, any stride; finite prices >= 0, finite quantities), comparing
    quantities with relative tolerance ``rtol`` (``model.market._RTOL``).

    Returns ``(price, volume, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)``, the fields of
    :class:`model.market.Clearing`."""
    cdef Py_ssize_t na = ap.shape[0], nb = bp.shape[0]
    if aq.shape[0] != na or bq.shape[0] != nb:
        raise ValueError("mismatched lengths of prices and quantities")
    ask_fill = np.zeros(na)
    bid_fill = np.zeros(nb)
    cdef double[::1] af = ask_fill, bf = bid_fill
    cdef double out[6]
    cdef Py_ssize_t w = sizeof(double)
    if _clear_book(&ap[0] if na else NULL, ap.strides[0] // w, &aq[0] if na else NULL, aq.strides[0] // w, na,
                   &bp[0] if nb else NULL, bp.strides[0] // w, &bq[0] if nb else NULL, bq.strides[0] // w, nb,
                   rtol, &af[0] if na else NULL, &bf[0] if nb else NULL, out) < 0:
        raise MemoryError()
    return (out[0], out[1], ask_fill, bid_fill, out[2], out[3], out[4], out[5])


cdef inline void _trade_at_crossing(double* sf, Py_ssize_t n_s, double* bf, Py_ssize_t n_b, double log_lo,
                                    double log_first, double t, double* supplied, double* demanded,
                                    double* volume, double* log_price) noexcept nogil:
    """One market's trade from its sellers' and buyers' quantities at the crossing (``sf``, ``bf``, replaced by
    their fills): the totals added pairwise, the volume (the smaller, nothing below a relative 1e-12), each
    side's fills scaled to it, and the log price interpolated at ``t`` between the crossing's grid points (nan
    where nothing trades). Shared by :func:`clear_curves` and :func:`clear_blocks`."""
    cdef double s = _pairwise(sf, n_s) if n_s else 0.0
    cdef double d = _pairwise(bf, n_b) if n_b else 0.0
    cdef double vol, tol, fs, fb
    cdef Py_ssize_t i
    supplied[0] = s
    demanded[0] = d
    vol = s if s <= d else d
    tol = 1e-12 * ((s if s >= d else d) if (s if s >= d else d) >= 1.0 else 1.0)
    if vol > tol:
        fs = vol / s if s > 0 else 0.0
        fb = vol / d if d > 0 else 0.0
        for i in range(n_s):
            sf[i] = sf[i] * fs
        for i in range(n_b):
            bf[i] = bf[i] * fb
        volume[0] = vol
        log_price[0] = log_lo + t * (log_first - log_lo)
    else:
        for i in range(n_s):
            sf[i] = 0.0
        for i in range(n_b):
            bf[i] = 0.0
        volume[0] = 0.0
        log_price[0] = NAN


cdef tuple _outputs(Py_ssize_t n_m, Py_ssize_t n_s, Py_ssize_t n_b):
    """What a clearing of ``n_m`` markets returns, to be filled (:func:`clear_curves`, :func:`clear_blocks`):
    ``(log_price, volume, sell_fill, buy_fill, supplied, demanded, bound)``."""
    return (np.empty(n_m), np.empty(n_m), np.empty((n_m, n_s)), np.empty((n_m, n_b)), np.empty(n_m), np.empty(n_m),
            np.empty(n_m, dtype=np.int64))


def clear_curves(const double[:, ::1] log_grid, const double[:, :, :] supply, const double[:, :, :] demand):
    """Clear ``M`` schedule auctions: :func:`model.market.clear_curves` without its final ``exp``, operation
    for operation as its numpy reference (``model.market._clear_curves_numpy``).

    ``log_grid`` is ``(M, G)`` (C-contiguous), ``supply`` ``(M, S, G)`` and ``demand`` ``(M, B, G)`` (any strides).
    Aggregate schedules add the participants in order, as ``numpy.sum(axis=1)`` does over a middle axis;
    the quantities supplied and demanded at the price add the fills pairwise, as ``numpy.sum`` over a
    contiguous last axis. Only the grid points up to the crossing are summed (the numpy version sums them
    all; the values it uses are the same).

    Returns ``(log_price, volume, sell_fill, buy_fill, supplied, demanded, bound)``; ``log_price`` is nan
    where nothing trades."""
    cdef Py_ssize_t n_m = log_grid.shape[0], n_g = log_grid.shape[1]
    cdef Py_ssize_t n_s = supply.shape[1], n_b = demand.shape[1]
    if (supply.shape[0] != n_m or demand.shape[0] != n_m or supply.shape[2] != n_g or demand.shape[2] != n_g
            or n_g < 1):
        raise ValueError("schedules must be (markets, participants, grid points) on the grid's points")
    log_price, volume, sell_fill, buy_fill, supplied, demanded, bound = _outputs(n_m, n_s, n_b)
    cdef double[::1] lp_v = log_price, vol_v = volume, sup_v = supplied, dem_v = demanded
    cdef double[:, ::1] sf = sell_fill, bf = buy_fill
    cdef long long[::1] bd = bound
    cdef Py_ssize_t m, g, i, first, lo
    cdef double s, d, e, e0 = 0.0, e1 = 0.0, t, w0, w1
    cdef bint none
    for m in range(n_m):
        # the first grid point without excess demand (the last one if there is none)
        first = -1
        for g in range(n_g):
            s = 0.0
            for i in range(n_s):
                s = s + supply[m, i, g]
            d = 0.0
            for i in range(n_b):
                d = d + demand[m, i, g]
            e = d - s
            e0 = e1
            e1 = e
            if e <= 0.0:
                first = g
                break
        none = first < 0
        if none:
            first = n_g - 1
        lo = first - 1 if first > 0 else 0
        # weight of the crossing between lo and first (1 at the grid's ends)
        t = e0 / (e0 - e1) if (not none and first > 0) else 1.0
        w0 = 1.0 - t
        w1 = t
        for i in range(n_s):
            sf[m, i] = w0 * supply[m, i, lo] + w1 * supply[m, i, first]
        for i in range(n_b):
            bf[m, i] = w0 * demand[m, i, lo] + w1 * demand[m, i, first]
        bd[m] = 1 if none else (-1 if first == 0 else 0)
        _trade_at_crossing(&sf[m, 0] if n_s else NULL, n_s, &bf[m, 0] if n_b else NULL, n_b,
                           log_grid[m, lo], log_grid[m, first], t, &sup_v[m], &dem_v[m], &vol_v[m], &lp_v[m])
    return log_price, volume, sell_fill, buy_fill, supplied, demanded, bound


# ------------------------------------------------------------------------ schedule auctions on order blocks
cdef inline double _np_max(double a, double b) noexcept nogil:
    """``numpy.maximum(a, b)``: nan if either is nan, and ``b`` when they compare equal (of two zeros, b's sign)."""
    return a if (a > b or a != a) else b


cdef inline double _np_min(double a, double b) noexcept nogil:
    """``numpy.minimum(a, b)``: nan if either is nan, and ``b`` when they compare equal."""
    return a if (a < b or a != a) else b


cdef enum:
    DENSE = 0    # qty (products, participants, grid points)
    OFFER = 1    # model.exchange.Offer
    BID = 2      # model.exchange.Bid
    RESTOCK = 3  # model.exchange.Restock
    STORE = 4    # model.exchange.Store
    RAMPS = 5    # model.exchange.Ramps
    SINGLE = 6   # model.exchange.Single
    MAX_ARRAYS = 9
    MAX_CHECKED = 32  # arrays a Checked remembers

# each form's arrays, in the order of its ``args()``: ``d`` (products, participants, grid points), ``n``
# (products, participants), ``g`` (products, grid points), ``t`` (participants), ``b`` (products,
# participants) of bools, ``i`` (participants) of int64, ``e`` (products, any, grid points), ``r``
# (participants, grid points), ``m`` (products); a form's participants are its first d, n, t or r array's.
# Then its numbers (``_NUMBERS``).
cdef const char* _LAYOUT[7]
_LAYOUT[DENSE] = b"d"
_LAYOUT[OFFER] = b"ngnn"
_LAYOUT[BID] = b"tmgnnnb"
_LAYOUT[RESTOCK] = b"gnnnnngnn"
_LAYOUT[STORE] = b"mnnngnie"
_LAYOUT[RAMPS] = b"nnbnnnnn"
_LAYOUT[SINGLE] = b"ri"
cdef int _NUMBERS[7]
_NUMBERS[:] = [0, 0, 2, 3, 3, 3, 0]


cdef struct Block:
    int kind
    Py_ssize_t n                      # participants
    const char* p[MAX_ARRAYS]         # the arrays' data (NULL: an optional array not given)
    Py_ssize_t s[MAX_ARRAYS][3]       # their strides in bytes (a 1-D array's in s[j][1], read as a row)
    double c[3]                       # the form's numbers, in the order of its args()
    Py_ssize_t ne                     # a store's exporters (rows of its export bids)
    Block* sub                        # a store's exporters' restock (ExportBids; NULL: bids as an array)


cdef struct Checked:
    # the grid arrays :func:`_along` found monotone in one :func:`_all_monotone`, each by its data, strides,
    # rows and way: the same array is often in several blocks (the sellers' price powers in offers and stores,
    # a store's returns in its offers and its bids), and is checked once (the same values read the same way)
    int n
    const char* p[MAX_CHECKED]
    Py_ssize_t s[MAX_CHECKED][3]
    Py_ssize_t rows[MAX_CHECKED]
    int way[MAX_CHECKED]


cdef inline double _at(const Block* b, int j, Py_ssize_t x, Py_ssize_t y) noexcept nogil:
    return (<const double*> (b.p[j] + x * b.s[j][0] + y * b.s[j][1]))[0]


cdef inline double _restock_qty(const Block* b, Py_ssize_t m, Py_ssize_t i, double a0, double a1) noexcept nogil:
    """A restock's participant ``i``'s quantity of product ``m`` at the grid point where its landed power is
    ``a0`` and its landed cost ``a1`` (read only with arbitrage)."""
    cdef double x, q
    x = _np_min(a0 * _at(b, 1, m, i), b.c[0])
    x = _at(b, 2, m, i) + (_at(b, 3, m, i) * x - _at(b, 4, m, i)) / b.c[1]
    if b.p[5] != NULL:
        q = _np_max(_at(b, 5, m, i) / a1 - 1.0, 0.0)
        x = x + _at(b, 7, m, i) * b.c[2] * _np_min(q, 1.0)
    x = _np_max(x, 0.0)
    return _np_min(x, _at(b, 8, m, i)) if b.p[8] != NULL else x


cdef void _block_qty(const Block* b, Py_ssize_t m, Py_ssize_t g, double price, double* out) noexcept nogil:
    """Every participant's quantity of product ``m`` at grid point ``g`` (priced ``price``) into ``out[0:n]``,
    in the order of operations of the form's numpy ``dense`` (model.exchange); what depends only on the grid
    point is worked out once for all of them (the same values)."""
    cdef Py_ssize_t i, n = b.n
    cdef double x, q, f, a0, a1, e0 = 0.0, e1 = 0.0, e2 = 0.0
    cdef long long j
    if b.kind == DENSE:
        for i in range(n):
            out[i] = (<const double*> (b.p[0] + m * b.s[0][0] + i * b.s[0][1] + g * b.s[0][2]))[0]
    elif b.kind == OFFER:  # scale, pw, stock, floor
        a0 = _at(b, 1, m, g)
        for i in range(n):
            if price < _at(b, 3, m, i):
                out[i] = 0.0
            else:
                q = _at(b, 2, m, i)
                out[i] = _np_min(_np_max(q - _at(b, 0, m, i) * a0, 0.0), q)
    elif b.kind == BID:  # target, scale, pw, need, inv, wtp, active; lo, hi
        a0 = _at(b, 1, 0, m) * _at(b, 2, m, g)  # the cover factor at the grid point, scale x pw
        for i in range(n):
            if ((b.p[6] != NULL and (<const unsigned char*> (b.p[6] + m * b.s[6][0] + i * b.s[6][1]))[0] == 0)
                    or price > _at(b, 5, m, i)):
                out[i] = 0.0
            else:
                x = _np_min(_np_max(_at(b, 0, 0, i) * a0, b.c[0]), b.c[1])
                q = _at(b, 3, m, i)
                x = x * q
                x = x + q
                x = x - _at(b, 4, m, i)
                out[i] = _np_max(x, 0.0)
    elif b.kind == RESTOCK:  # landed_pow, expect_pow, sales, working, stock, now, landed, use, allow; most, weeks, response
        a0 = _at(b, 0, m, g)
        a1 = _at(b, 6, m, g) if b.p[5] != NULL else 0.0
        for i in range(n):
            out[i] = _restock_qty(b, m, i, a0, a1)
    elif b.kind == SINGLE:  # qty (participants, grid points), the product of each
        for i in range(n):
            j = (<const long long*> (b.p[1] + i * b.s[1][1]))[0]
            out[i] = (<const double*> (b.p[0] + i * b.s[0][0] + g * b.s[0][1]))[0] if j == m else 0.0
    elif b.kind == RAMPS:  # qty, level, mask, cap, qty2, level2, qty3, level3; buy, kg, ramp
        for i in range(n):
            if b.c[0] != 0.0:  # bids: qty x ramp(level - p, level, 1) x (p <= level), capped, masked
                if b.p[0] == NULL:
                    x = 0.0
                else:
                    f = _at(b, 1, m, i)
                    a0 = _np_min(_np_max((f - price) / (b.c[2] * f) + 1.0, 0.0), 1.0)
                    x = (_at(b, 0, m, i) * a0) * (1.0 if price <= f else 0.0)
                if b.p[3] != NULL:
                    x = _np_min(x, _at(b, 3, m, i) / (price * b.c[1]))
                if b.p[2] != NULL and (<const unsigned char*> (b.p[2] + m * b.s[2][0] + i * b.s[2][1]))[0] != 0:
                    x = 0.0
                out[i] = x
                continue
            # offers: the largest of the ramps given
            j = 0  # terms so far
            x = 0.0
            if b.p[0] != NULL:
                f = _at(b, 1, m, i)
                a0 = _np_min(_np_max((price - f) / (b.c[2] * f) + 0.0, 0.0), 1.0)
                if b.p[2] != NULL and (<const unsigned char*> (b.p[2] + m * b.s[2][0] + i * b.s[2][1]))[0] == 0:
                    a0 = 0.0
                x = _at(b, 0, m, i) * a0
                j = 1
            if b.p[4] != NULL:
                f = _at(b, 5, m, i)
                q = _at(b, 4, m, i) * _np_min(_np_max((price - f) / (b.c[2] * f) + 0.0, 0.0), 1.0)
                x = _np_max(x, q) if j else q
                j = 1
            if b.p[6] != NULL:
                f = _at(b, 7, m, i)
                q = _at(b, 6, m, i) * _np_min(_np_max((price - f) / (b.c[2] * f) + 0.0, 0.0), 1.0)
                x = _np_max(x, q) if j else q
            out[i] = x
    else:  # STORE: expected, room, stock, kept, pw, floor, export, export_bids (or landed, expect; sub); band, buy,
        # carry. The expected excess return at the grid point is expected / price - 1 - carry
        a0 = _np_min(_np_max(((_at(b, 0, 0, m) / price - 1.0) - b.c[2]) / b.c[0], 0.0), 1.0)
        a1 = _at(b, 4, m, g)
        if b.sub != NULL:  # the exporters' restock at this grid point, and the landed cost its bids need
            e0 = _at(b.sub, 0, m, g)
            e1 = _at(b.sub, 6, m, g) if b.sub.p[5] != NULL else 0.0
            e2 = _at(b, 7, m, g)
        for i in range(n):
            if b.p[6] != NULL:
                j = (<const long long*> (b.p[6] + i * b.s[6][1]))[0]
                if j >= 0:  # an exporter: no offer, its bid from export_bids (ExportBids: where the landed cost
                    # is at most what it expects abroad)
                    if b.c[1] == 0.0:
                        out[i] = 0.0
                    elif b.sub == NULL:
                        out[i] = (<const double*> (b.p[7] + m * b.s[7][0] + j * b.s[7][1] + g * b.s[7][2]))[0]
                    else:
                        out[i] = _restock_qty(b.sub, m, j, e0, e1) if e2 <= _at(b, 8, m, j) else 0.0
                    continue
            x = _at(b, 1, m, i) * a0
            q = _at(b, 2, m, i)
            f = q - _at(b, 3, m, i) * a1 if b.p[3] != NULL else q
            if b.c[1] != 0.0:
                out[i] = _np_max(x - _np_max(f, 0.0), 0.0)
            elif b.p[5] != NULL and price < _at(b, 5, m, i):
                out[i] = 0.0
            else:
                out[i] = _np_min(_np_max(f - x, 0.0), q)


cdef int _take_array(object a, char code, Py_ssize_t n_m, Py_ssize_t n, Py_ssize_t n_g, Block* b, int j,
                     Py_buffer* buf, unsigned char* held) except -1:
    """Read array ``a`` of layout ``code`` (see _LAYOUT; any strides) into slot ``j`` of ``b``, checking its
    shape (``n`` participants; -1: not known yet). ``held`` is set while ``buf`` holds the array (the caller
    releases it)."""
    cdef int k, ndim = 3 if (code == b"d" or code == b"e") else (1 if (code == b"t" or code == b"i" or code == b"m")
                                                               else 2)
    cdef bint rows = code == b"r"  # (participants, grid points)
    cdef char kind = b"?" if code == b"b" else (b"l" if code == b"i" else b"d")  # bool, int64, float64
    PyObject_GetBuffer(a, buf, PyBUF_RECORDS_RO)
    held[0] = 1
    if (buf.ndim != ndim or buf.itemsize != (1 if kind == b"?" else 8) or buf.format == NULL
            or not (buf.format[0] == kind or (kind == b"l" and buf.format[0] == b"q")) or buf.format[1] != 0):
        raise ValueError(f"a schedule form's array has {buf.ndim} dimensions of {buf.itemsize}-byte items, "
                         f"not {ndim} of {chr(kind)}")
    if n < 0 and code != b"m":
        n = buf.shape[0 if (code == b"t" or code == b"i" or rows) else 1]
    if (rows and (buf.shape[0] != n or buf.shape[1] != n_g)):
        raise ValueError(f"a schedule form's array is {buf.ndim}-D of the wrong shape")
    if ((ndim > 1 and not rows and buf.shape[0] != n_m) or (ndim == 3 and buf.shape[2] != n_g)
            or (code == b"d" and buf.shape[1] != n) or (code == b"g" and buf.shape[1] != n_g)
            or ((code == b"n" or code == b"b") and buf.shape[1] != n)
            or ((code == b"t" or code == b"i") and buf.shape[0] != n) or (code == b"m" and buf.shape[0] != n_m)):
        raise ValueError(f"a schedule form's array is {buf.ndim}-D of the wrong shape")
    b.p[j] = <const char*> buf.buf
    for k in range(3):
        b.s[j][k] = 0
    for k in range(ndim):
        b.s[j][(1 if ndim == 1 else 0) + k] = buf.strides[k]
    return 0


cdef bint _along_row(const char* row, Py_ssize_t step, Py_ssize_t n_g, int way) noexcept nogil:
    """Whether the ``n_g`` values at ``row`` (``step`` bytes apart) are finite and never rise (``way`` -1) or
    never fall (+1). A row that never rises (or falls) from a finite first value to a finite last one is
    finite throughout, and a nan fails the comparison with its neighbour: one comparison a point."""
    cdef Py_ssize_t g
    cdef double x = (<const double*> row)[0], y
    if not (fabs(x) < INFINITY):
        return False
    if way < 0:
        for g in range(1, n_g):
            y = (<const double*> (row + g * step))[0]
            if not (y <= x):
                return False
            x = y
    else:
        for g in range(1, n_g):
            y = (<const double*> (row + g * step))[0]
            if not (y >= x):
                return False
            x = y
    return fabs(x) < INFINITY


cdef bint _along(const Block* b, int j, Py_ssize_t n_m, Py_ssize_t n, Py_ssize_t n_g, int way,
                 Checked* seen) noexcept nogil:
    """Whether array ``j`` of ``b`` (a ``g`` array when ``n`` is 0: (products, grid points); else ``d`` or ``e``:
    (products, n, grid points)) is finite and never rises (``way`` -1) or never falls (+1) along the grid. An
    array ``seen`` holds (the same data, strides and rows, the same way) passes without being read again; one
    that passes is added to ``seen``."""
    cdef Py_ssize_t m, i, k, rows = n if n > 0 else 1
    cdef Py_ssize_t s0 = b.s[j][0], s1 = b.s[j][1] if n > 0 else 0, step = b.s[j][2 if n > 0 else 1]
    cdef const char* p = b.p[j]
    for k in range(seen.n):
        if (seen.p[k] == p and seen.s[k][0] == s0 and seen.s[k][1] == s1 and seen.s[k][2] == step
                and seen.rows[k] == rows and seen.way[k] == way):
            return True
    for m in range(n_m):
        for i in range(rows):
            if not _along_row(p + m * s0 + i * s1, step, n_g, way):
                return False
    if seen.n < MAX_CHECKED:
        k = seen.n
        seen.p[k] = p
        seen.s[k][0] = s0
        seen.s[k][1] = s1
        seen.s[k][2] = step
        seen.rows[k] = rows
        seen.way[k] = way
        seen.n = k + 1
    return True


cdef bint _finite(const Block* b, int j, Py_ssize_t n_m, Py_ssize_t n, bint nonneg) noexcept nogil:
    """Whether participant array ``j`` of ``b`` (``n``: (products, participants); ``t``: participants, read as
    one row) is finite, and with ``nonneg`` also >= 0 (an absent array passes)."""
    cdef Py_ssize_t m, i, rows = n_m if b.s[j][0] != 0 else 1
    cdef double x
    if b.p[j] == NULL:
        return True
    for m in range(rows):
        for i in range(n):
            x = (<const double*> (b.p[j] + m * b.s[j][0] + i * b.s[j][1]))[0]
            if not (fabs(x) < INFINITY) or (nonneg and not (x >= 0.0)):
                return False
    return True


cdef bint _monotone(const Block* b, bint sell, const double[:, ::1] grid, Checked* seen) noexcept nogil:
    """Whether every participant's quantity in ``b`` is sure to be monotone along the grid, non-decreasing for
    a seller and non-increasing for a buyer, from what its arrays hold: each form's quantity is a chain of
    correctly rounded operations, each monotone in the grid-point values it is given when the participants'
    numbers are finite and of the signs checked here. When every block of both sides is, a market's excess
    demand never rises along the grid and its crossing may be found by bisection (see _clear_markets). ``seen``:
    the arrays found monotone so far (:func:`_along`)."""
    cdef Py_ssize_t n = b.n, m, i, n_m = grid.shape[0], n_g = grid.shape[1]
    cdef double x
    if b.kind == DENSE:
        return _along(b, 0, n_m, n, n_g, 1 if sell else -1, seen)
    if b.kind == OFFER:  # scale, pw, stock, floor
        return (sell and _along(b, 1, n_m, 0, n_g, -1, seen) and _finite(b, 0, n_m, n, True)
                and _finite(b, 2, n_m, n, True))
    if b.kind == BID:  # target, scale, pw, need, inv, wtp, active; lo, hi
        # the cover factor scale x pw never rises where pw never rises and scale is finite and >= 0, and is
        # finite where it is at both ends of the grid
        return (not sell and _along(b, 2, n_m, 0, n_g, -1, seen) and _finite(b, 0, n_m, n, True)
                and _scaled_ends_finite(b, 1, 2, n_m, n_g) and _finite(b, 3, n_m, n, True)
                and _finite(b, 4, n_m, n, False) and b.c[0] == b.c[0] and b.c[1] == b.c[1])
    if b.kind == RESTOCK:  # landed_pow, expect_pow, sales, working, stock, now, landed, use, allow; most, weeks, response
        if sell or not (_along(b, 0, n_m, 0, n_g, -1, seen) and _finite(b, 1, n_m, n, True)
                        and _finite(b, 2, n_m, n, False) and _finite(b, 3, n_m, n, True)
                        and _finite(b, 4, n_m, n, False)):
            return False
        if b.p[5] != NULL:  # the spread over landed costs, which are positive and rise along the grid
            if not (_along(b, 6, n_m, 0, n_g, 1, seen) and _finite(b, 5, n_m, n, True) and _finite(b, 7, n_m, n, True)):
                return False
            for m in range(n_m):
                if not (_at(b, 6, m, 0) > 0.0):
                    return False
        return (b.c[0] == b.c[0] and b.c[1] > 0.0 and fabs(b.c[1]) < INFINITY and b.c[2] >= 0.0
                and fabs(b.c[2]) < INFINITY and _allow_ok(b, n_m, n))
    if b.kind == SINGLE:  # each participant's row of quantities, as a dense block's
        for i in range(n):
            if not _along_row(b.p[0] + i * b.s[0][0], b.s[0][1], n_g, 1 if sell else -1):
                return False
        return True
    if b.kind == RAMPS:  # qty, level, mask, cap, qty2, level2, qty3, level3; buy, kg, ramp
        # every quantity >= 0 and level >= 0 (a ramp at a level of 0 is flat), the ramp's width positive
        if sell != (b.c[0] == 0.0) or not (b.c[1] > 0.0 and fabs(b.c[1]) < INFINITY and b.c[2] > 0.0
                                           and fabs(b.c[2]) < INFINITY):
            return False
        return (_finite(b, 0, n_m, n, True) and _finite(b, 1, n_m, n, True) and _finite(b, 3, n_m, n, True)
                and _finite(b, 4, n_m, n, True) and _finite(b, 5, n_m, n, True) and _finite(b, 6, n_m, n, True)
                and _finite(b, 7, n_m, n, True))
    # STORE: expected, room, stock, kept, pw, floor, export, export_bids; band, buy, carry. The expected excess
    # return, expected / p - 1 - carry, never rises along a positive rising grid where expected is finite and
    # >= 0 (and finite where it is at the grid's bottom; _all_monotone checked the grid)
    if sell != (b.c[1] == 0.0) or not (b.c[0] > 0.0 and fabs(b.c[0]) < INFINITY and fabs(b.c[2]) < INFINITY):
        return False
    for m in range(n_m):
        x = _at(b, 0, 0, m)
        if not (x >= 0.0 and fabs(x) < INFINITY and grid[m, 0] > 0.0 and fabs(x / grid[m, 0]) < INFINITY):
            return False
    if not (_along(b, 4, n_m, 0, n_g, -1, seen) and _finite(b, 1, n_m, n, True)
            and _finite(b, 2, n_m, n, True) and _finite(b, 3, n_m, n, True)):
        return False
    if b.p[7] == NULL or b.ne == 0:
        return True
    if b.sub == NULL:
        return _along(b, 7, n_m, b.ne, n_g, -1, seen)
    # ExportBids: exporters offer nothing; their bids are a restock's (never rising, >= 0 below a cap >= 0)
    # where the landed cost, finite and rising along the grid, is at most what they expect (0 above it)
    return sell or (_monotone(b.sub, False, grid, seen) and _along(b, 7, n_m, 0, n_g, 1, seen)
                    and _finite(b.sub, 8, n_m, b.ne, True))


cdef bint _allow_ok(const Block* b, Py_ssize_t n_m, Py_ssize_t n) noexcept nogil:
    """A restock's cap (array 8) holds no nan (an absent cap passes)."""
    cdef Py_ssize_t m, i
    cdef double x
    if b.p[8] == NULL:
        return True
    for m in range(n_m):
        for i in range(n):
            x = (<const double*> (b.p[8] + m * b.s[8][0] + i * b.s[8][1]))[0]
            if x != x:
                return False
    return True


cdef Py_ssize_t _read_blocks(list specs, Block* blocks, Py_buffer* bufs, unsigned char* held, Py_ssize_t n_m,
                             Py_ssize_t n_g, Py_ssize_t sub_at) except -1:
    """Fill ``blocks`` from the blocks' kernel arguments (``OrderBlock.args``); returns the participants. A
    store's exporters' restock (its bids given as ``ExportBids.args()``: landed, expect, the restock's args) is
    read into the block ``sub_at`` blocks after the store's (its buffers as far after the store's; 0: none may
    be given)."""
    cdef Py_ssize_t k, total = 0, n
    cdef int j, n_arr
    cdef Block* b
    cdef tuple spec, bids
    cdef const char* layout
    for k in range(len(specs)):
        spec = specs[k]
        b = &blocks[k]
        b.kind = spec[0]
        if b.kind < DENSE or b.kind > SINGLE:
            raise ValueError(f"unknown schedule form {b.kind}")
        layout = _LAYOUT[b.kind]
        n_arr = len(layout)
        if len(spec) != 1 + n_arr + _NUMBERS[b.kind]:
            raise ValueError(f"schedule form {b.kind} takes other arguments")
        n = -1
        for j in range(n_arr):
            if spec[1 + j] is None:  # an optional array not given: a bid's mask, a restock's arbitrage or cap,
                # a store's working stock, floor or exporters
                if not ((b.kind == BID and j == 6) or (b.kind == RESTOCK and j >= 5)
                        or (b.kind == STORE and (j == 3 or j >= 5)) or (b.kind == RAMPS and j != 1)):
                    raise ValueError(f"schedule form {b.kind} needs its array {j}")
                b.p[j] = NULL
                continue
            if b.kind == STORE and j == 7 and type(spec[8]) is tuple:  # ExportBids: landed, expect, restock
                bids = spec[8]
                if sub_at <= 0 or len(bids) != 3:
                    raise ValueError("a store's exporters' bids are an array or (landed, expect, restock)")
                _take_array(bids[0], b"g", n_m, n, n_g, b, 7, &bufs[k * MAX_ARRAYS + 7], &held[k * MAX_ARRAYS + 7])
                _take_array(bids[1], b"n", n_m, -1, n_g, b, 8, &bufs[k * MAX_ARRAYS + 8], &held[k * MAX_ARRAYS + 8])
                b.sub = &blocks[k + sub_at]
                _read_blocks([bids[2]], b.sub, &bufs[(k + sub_at) * MAX_ARRAYS], &held[(k + sub_at) * MAX_ARRAYS],
                             n_m, n_g, 0)
                if b.sub.kind != RESTOCK or b.sub.n != bufs[k * MAX_ARRAYS + 8].shape[1]:
                    raise ValueError("a store's exporters' bids are a restock of its exporters")
                continue
            _take_array(spec[1 + j], layout[j], n_m, n, n_g, b, j, &bufs[k * MAX_ARRAYS + j],
                        &held[k * MAX_ARRAYS + j])
            if n < 0 and layout[j] != b"g" and layout[j] != b"e" and layout[j] != b"m":
                n = bufs[k * MAX_ARRAYS + j].shape[0 if (layout[j] == b"t" or layout[j] == b"i" or layout[j] == b"r")
                                                   else 1]
        if b.kind == RESTOCK and b.p[5] != NULL and (b.p[6] == NULL or b.p[7] == NULL):
            raise ValueError("a restock's arbitrage needs the last prices, the landed costs and the use")
        if b.kind == RAMPS and ((b.p[4] == NULL) != (b.p[5] == NULL) or (b.p[6] == NULL) != (b.p[7] == NULL)):
            raise ValueError("a ramp's quantity needs its level")
        if b.kind == STORE and (b.p[6] == NULL) != (b.p[7] == NULL):
            raise ValueError("a store's exporters need their bids")
        b.ne = 0
        if b.kind == STORE and b.p[7] != NULL:
            b.ne = b.sub.n if b.sub != NULL else bufs[k * MAX_ARRAYS + 7].shape[1]
        if b.kind == STORE and b.p[6] != NULL:
            for j in range(n):
                if (<const long long*> (b.p[6] + j * b.s[6][1]))[0] >= b.ne:
                    raise ValueError("a store's exporter has no bids")
        for j in range(len(spec) - 1 - n_arr):
            b.c[j] = spec[1 + n_arr + j]
        b.n = n
        total += n
    return total


cdef double _side_total(const Block* blocks, Py_ssize_t n_blocks, Py_ssize_t m, Py_ssize_t g, double price,
                        double* buf) noexcept nogil:
    """All participants' quantities at a grid point, added one by one in block order (numpy's sum over a
    middle axis); ``buf`` is scratch for a block's quantities."""
    cdef Py_ssize_t k, i
    cdef double s = 0.0
    for k in range(n_blocks):
        _block_qty(&blocks[k], m, g, price, buf)
        for i in range(blocks[k].n):
            s = s + buf[i]
    return s


cdef void _side_fills(const Block* blocks, Py_ssize_t n_blocks, Py_ssize_t m, Py_ssize_t lo, Py_ssize_t first,
                      double p_lo, double p_first, double w0, double w1, double* out, double* buf) noexcept nogil:
    """Each participant's interpolated quantity between grid points ``lo`` and ``first``, ``w0 x q(lo) + w1 x
    q(first)``; ``buf`` is scratch for a block's quantities."""
    cdef Py_ssize_t k, i, at = 0
    for k in range(n_blocks):
        _block_qty(&blocks[k], m, lo, p_lo, out + at)
        _block_qty(&blocks[k], m, first, p_first, buf)
        for i in range(blocks[k].n):
            out[at + i] = w0 * out[at + i] + w1 * buf[i]
        at += blocks[k].n


def clear_blocks(const double[:, ::1] log_grid, const double[:, ::1] grid, list sells, list buys,
                 long long[::1] hint=None, tuple checked=None):
    """:func:`clear_curves` on order blocks, each given by its kernel arguments (``OrderBlock.args``): an
    array of schedules, or a schedule form (``Offer``, ``Bid``, ``Restock``, ``Store`` of :mod:`model.exchange`)
    whose quantities are worked out here, only at the grid points the clearing reads (up to the crossing),
    operation for operation as the form's numpy ``dense``. Sellers (and buyers) are the blocks' participants
    in order. The result is :func:`clear_curves`'s for the blocks' dense schedules concatenated, bit for bit.
    ``hint`` (optional, one per market, read and written): where each market crossed last time; a bisection
    looks there and next to it first (the crossing seldom moves far from week to week; the same result).
    ``checked`` (optional): ``(array, way)`` pairs of (products, grid points) arrays the caller found monotone
    with :func:`monotone_rows` that way and does not change (the exchange's price powers and landed costs, its
    grid): the forms' arrays among them are not read again to know their schedules monotone.

    Returns ``(log_price, volume, sell_fill, buy_fill, supplied, demanded, bound)``."""
    cdef Py_ssize_t n_m = log_grid.shape[0], n_g = log_grid.shape[1]
    cdef Py_ssize_t n_sb = len(sells), n_bb = len(buys), k
    if grid.shape[0] != n_m or grid.shape[1] != n_g or n_g < 1:
        raise ValueError("the grid and its log differ in shape")
    if hint is not None and hint.shape[0] != n_m:
        raise ValueError("one hint per market")
    # each block and after them its store's exporters' restock, if any (see _read_blocks)
    cdef Block* blocks = <Block*> calloc(2 * (n_sb + n_bb) + 1, sizeof(Block))
    cdef Py_buffer* bufs = <Py_buffer*> calloc(2 * (n_sb + n_bb) * MAX_ARRAYS + 1, sizeof(Py_buffer))
    cdef unsigned char* held = <unsigned char*> calloc(2 * (n_sb + n_bb) * MAX_ARRAYS + 1, 1)
    if blocks == NULL or bufs == NULL or held == NULL:
        free(blocks)
        free(bufs)
        free(held)
        raise MemoryError()
    cdef Py_ssize_t n_s, n_b
    cdef double* buf = NULL  # scratch: one block's quantities
    cdef double[::1] lp_v, vol_v, sup_v, dem_v
    cdef double[:, ::1] sf, bf
    cdef long long[::1] bd
    cdef Checked seen
    seen.n = 0
    try:
        _seed_checked(checked, &seen, n_m, n_g)
        n_s = _read_blocks(sells, blocks, bufs, held, n_m, n_g, n_sb + n_bb)
        n_b = _read_blocks(buys, blocks + n_sb, bufs + n_sb * MAX_ARRAYS, held + n_sb * MAX_ARRAYS, n_m, n_g,
                           n_sb + n_bb)
        log_price, volume, sell_fill, buy_fill, supplied, demanded, bound = _outputs(n_m, n_s, n_b)
        lp_v, vol_v, sup_v, dem_v, sf, bf, bd = log_price, volume, supplied, demanded, sell_fill, buy_fill, bound
        buf = <double*> malloc((n_s + n_b + 1) * sizeof(double))
        if buf == NULL:
            raise MemoryError()
        _clear_markets(log_grid, grid, blocks, n_sb, blocks + n_sb, n_bb, n_s, n_b, lp_v, vol_v, sf, bf, sup_v, dem_v,
                       bd, buf, _all_monotone(grid, blocks, n_sb, n_bb, &seen), &hint[0] if hint is not None else NULL)
    finally:
        for k in range(2 * (n_sb + n_bb) * MAX_ARRAYS):
            if held[k]:
                PyBuffer_Release(&bufs[k])
        free(blocks)
        free(bufs)
        free(held)
        free(buf)
    return log_price, volume, sell_fill, buy_fill, supplied, demanded, bound


cdef int _seed_checked(tuple checked, Checked* seen, Py_ssize_t n_m, Py_ssize_t n_g) except -1:
    """Enter the caller's ``checked`` ``(array, way)`` pairs (see :func:`clear_blocks`) in ``seen`` as grid
    arrays found monotone that way (``way`` 2: rising strictly, as a grid). The arrays outlive the call (the
    caller holds them), so their data stays where it is read."""
    cdef Py_buffer view
    cdef Py_ssize_t k
    if checked is None:
        return 0
    if len(checked) > MAX_CHECKED:
        raise ValueError(f"at most {MAX_CHECKED} checked arrays")
    for pair in checked:
        PyObject_GetBuffer(pair[0], &view, PyBUF_RECORDS_RO)
        try:
            if (view.ndim != 2 or view.itemsize != 8 or view.format == NULL or view.format[0] != b"d"
                    or view.format[1] != 0 or view.shape[0] != n_m or view.shape[1] != n_g):
                raise ValueError("a checked array is (products, grid points) of float64")
            k = seen.n
            seen.p[k] = <const char*> view.buf
            seen.s[k][0] = view.strides[0]
            seen.s[k][1] = 0
            seen.s[k][2] = view.strides[1]
            seen.rows[k] = 1
            seen.way[k] = pair[1]
            seen.n = k + 1
        finally:
            PyBuffer_Release(&view)
    return 0


cdef bint _grid_rises(const double* row, Py_ssize_t step, Py_ssize_t n_g) noexcept nogil:
    """Whether the ``n_g`` values at ``row`` (``step`` bytes apart) rise strictly from a finite first value to a
    finite last one (so are finite throughout: a nan fails the comparison with its neighbour)."""
    cdef Py_ssize_t g
    cdef double x = row[0], y
    if not (fabs(x) < INFINITY):
        return False
    for g in range(1, n_g):
        y = (<const double*> (<const char*> row + g * step))[0]
        if not (y > x):
            return False
        x = y
    return fabs(x) < INFINITY


cdef bint _all_monotone(const double[:, ::1] grid, const Block* blocks, Py_ssize_t n_sb, Py_ssize_t n_bb,
                        Checked* seen) noexcept nogil:
    """Whether the grid rises (finite) and every block's schedules are sure to be monotone (:func:`_monotone`):
    the sellers' blocks first, then the buyers'. Each grid row is finite and rises where it rises strictly from
    a finite first price to a finite last one: one comparison a point, unless ``seen`` holds the grid as
    checked rising (way 2). ``seen``: the arrays known monotone so far (the caller's checked ones)."""
    cdef Py_ssize_t n_m = grid.shape[0], n_g = grid.shape[1], m, k
    cdef bint known = False
    if n_g > 0:
        for k in range(seen.n):
            if (seen.p[k] == <const char*> &grid[0, 0] and seen.s[k][0] == grid.strides[0]
                    and seen.s[k][2] == grid.strides[1] and seen.way[k] == 2):
                known = True
        if not known:
            for m in range(n_m):
                if not _grid_rises(&grid[m, 0], grid.strides[1], n_g):
                    return False
    for k in range(n_sb + n_bb):
        if not _monotone(&blocks[k], k < n_sb, grid, seen):
            return False
    return True


cdef bint _scaled_ends_finite(const Block* b, int js, int jg, Py_ssize_t n_m, Py_ssize_t n_g) noexcept nogil:
    """Whether each product's factor ``js`` (an ``m`` array) is finite and >= 0 and its products with grid array
    ``jg`` at the grid's two ends are finite (so, the grid array being monotone, at every point)."""
    cdef Py_ssize_t m
    cdef double x
    for m in range(n_m):
        x = _at(b, js, 0, m)
        if not (x >= 0.0 and fabs(x) < INFINITY and fabs(x * _at(b, jg, m, 0)) < INFINITY
                and fabs(x * _at(b, jg, m, n_g - 1)) < INFINITY):
            return False
    return True


def monotone_rows(const double[:, :] a, int way):
    """Whether every row of ``a`` is finite and never rises (``way`` -1), never falls (+1) or rises strictly
    (2, as a price grid): what :func:`clear_blocks` may be told of an array that does not change (its
    ``checked``)."""
    cdef Py_ssize_t m
    if way not in (-1, 1, 2):
        raise ValueError("way is -1, 1 or 2")
    if a.shape[1] == 0:
        return True
    for m in range(a.shape[0]):
        if way == 2:
            if not _grid_rises(&a[m, 0], a.strides[1], a.shape[1]):
                return False
        elif not _along_row(<const char*> &a[m, 0], a.strides[1], a.shape[1], way):
            return False
    return True


def monotone_blocks(const double[:, ::1] grid, list sells, list buys):
    """Whether :func:`clear_blocks` finds these blocks' crossings by bisection: the grid rises and every
    block's schedules are sure to be monotone (sellers' non-decreasing, buyers' non-increasing)."""
    cdef Py_ssize_t n_m = grid.shape[0], n_g = grid.shape[1], n_sb = len(sells), n_bb = len(buys), k
    # each block and after them its store's exporters' restock, if any (see _read_blocks)
    cdef Block* blocks = <Block*> calloc(2 * (n_sb + n_bb) + 1, sizeof(Block))
    cdef Py_buffer* bufs = <Py_buffer*> calloc(2 * (n_sb + n_bb) * MAX_ARRAYS + 1, sizeof(Py_buffer))
    cdef unsigned char* held = <unsigned char*> calloc(2 * (n_sb + n_bb) * MAX_ARRAYS + 1, 1)
    cdef bint out = False
    cdef Checked seen
    if blocks == NULL or bufs == NULL or held == NULL:
        free(blocks)
        free(bufs)
        free(held)
        raise MemoryError()
    try:
        _read_blocks(sells, blocks, bufs, held, n_m, n_g, n_sb + n_bb)
        _read_blocks(buys, blocks + n_sb, bufs + n_sb * MAX_ARRAYS, held + n_sb * MAX_ARRAYS, n_m, n_g, n_sb + n_bb)
        seen.n = 0
        out = _all_monotone(grid, blocks, n_sb, n_bb, &seen)
    finally:
        for k in range(2 * (n_sb + n_bb) * MAX_ARRAYS):
            if held[k]:
                PyBuffer_Release(&bufs[k])
        free(blocks)
        free(bufs)
        free(held)
    return bool(out)


cdef void _clear_markets(const double[:, ::1] log_grid, const double[:, ::1] grid, const Block* sb, Py_ssize_t n_sb,
                         const Block* bb, Py_ssize_t n_bb, Py_ssize_t n_s, Py_ssize_t n_b, double[::1] lp_v,
                         double[::1] vol_v, double[:, ::1] sf, double[:, ::1] bf, double[::1] sup_v, double[::1] dem_v,
                         long long[::1] bd, double* buf, bint monotone, long long* hint) noexcept nogil:
    """The markets of :func:`clear_blocks`, one by one as :func:`clear_curves` clears them. With ``monotone``
    (every schedule sure to be monotone: :func:`_all_monotone`) each market's crossing is found by bisection,
    else by a scan from the bottom of the grid; either finds the same grid point. ``hint`` (NULL: none): each
    market's last crossing, where the bisection looks first (then next to it), and where it writes this one."""
    cdef Py_ssize_t n_m = log_grid.shape[0], n_g = log_grid.shape[1], m, g, first, lo, a, z, h
    cdef double e, e0 = 0.0, e1 = 0.0, t, w0, w1
    cdef bint none
    for m in range(n_m):
        # the first grid point without excess demand (the last one if there is none). Where every schedule is
        # monotone the excess demand never rises along the grid (each participant's quantity is monotone, and
        # so, rounding being monotone, are the sums in order and their difference), so the first point with
        # e <= 0 is found by bisection, about 7 points worked out of 64 instead of the ~26 below the crossing
        # that a scan from the bottom works out; e at it and at the point below are the same values
        if not monotone:  # scan from the bottom (the reference's argmax: the first point with e <= 0)
            first = -1
            for g in range(n_g):
                e = (_side_total(bb, n_bb, m, g, grid[m, g], buf) - _side_total(sb, n_sb, m, g, grid[m, g], buf))
                e0 = e1
                e1 = e
                if e <= 0.0:
                    first = g
                    break
            a = n_g if first < 0 else first
        else:
            a = 0
        z = n_g if monotone else a  # the answer lies in [a, z] (n_g: none); after a scan, found already
        # a bisection first looks at the last crossing, then next to it (each look keeps the invariants: every
        # point below a has e > 0, e at z is <= 0 or z is n_g)
        h = hint[m] if (hint != NULL and monotone) else -1
        if 0 <= h < n_g:
            e = (_side_total(bb, n_bb, m, h, grid[m, h], buf) - _side_total(sb, n_sb, m, h, grid[m, h], buf))
            if e <= 0.0:
                z = h
                e1 = e
                g = h - 1  # the point below it, unless h is the bottom
            else:
                a = h + 1
                e0 = e
                g = h + 1  # the point above it, unless h is the top
            if a <= g < z:
                e = (_side_total(bb, n_bb, m, g, grid[m, g], buf) - _side_total(sb, n_sb, m, g, grid[m, g], buf))
                if e <= 0.0:
                    z = g
                    e1 = e
                else:
                    a = g + 1
                    e0 = e
        while a < z:
            g = (a + z) >> 1
            e = (_side_total(bb, n_bb, m, g, grid[m, g], buf) - _side_total(sb, n_sb, m, g, grid[m, g], buf))
            if e <= 0.0:
                z = g
                e1 = e  # e at the first point with e <= 0, once the bisection ends
            else:
                a = g + 1
                e0 = e  # e at the point below it
        first = a
        if hint != NULL:
            hint[m] = first
        none = first == n_g
        if none:
            first = n_g - 1
        lo = first - 1 if first > 0 else 0
        # weight of the crossing between lo and first (1 at the grid's ends)
        t = e0 / (e0 - e1) if (not none and first > 0) else 1.0
        w0 = 1.0 - t
        w1 = t
        if n_s:
            _side_fills(sb, n_sb, m, lo, first, grid[m, lo], grid[m, first], w0, w1, &sf[m, 0], buf)
        if n_b:
            _side_fills(bb, n_bb, m, lo, first, grid[m, lo], grid[m, first], w0, w1, &bf[m, 0], buf)
        bd[m] = 1 if none else (-1 if first == 0 else 0)
        _trade_at_crossing(&sf[m, 0] if n_s else NULL, n_s, &bf[m, 0] if n_b else NULL, n_b,
                           log_grid[m, lo], log_grid[m, first], t, &sup_v[m], &dem_v[m], &vol_v[m], &lp_v[m])


cdef inline double _spare(const double* residual, const Py_ssize_t* edge_ptr, const Py_ssize_t* edge_idx,
                          Py_ssize_t pair) noexcept nogil:
    """Tonnes a path can still carry this week: the least spare capacity of its edges (inf if none)."""
    cdef Py_ssize_t start = edge_ptr[pair], end = edge_ptr[pair + 1], k
    cdef double x
    if start == end:
        return INFINITY
    x = residual[edge_idx[start]]
    for k in range(start + 1, end):
        if residual[edge_idx[k]] < x:  # min() keeps the first of equal values
            x = residual[edge_idx[k]]
    return x


cdef inline void _deliver(Py_ssize_t j, Py_ssize_t i, double got, const double* fill, double cost,
                          const Py_ssize_t* pool_ptr, const Py_ssize_t* pool_site, double* site_sold, double* flow,
                          double* value, double* want, double* residual, const Py_ssize_t* edge_ptr,
                          const Py_ssize_t* edge_idx, double* left, double* totals, Py_ssize_t n_plant) noexcept nogil:
    """``got`` t of pool ``j``'s ore (``fill`` from each of its sites) goes to plant ``i`` at ``cost`` a kg:
    the sites' sales, the pool's offer, the plant's want and its path's spare capacity follow."""
    cdef Py_ssize_t a = pool_ptr[j], n = pool_ptr[j + 1] - a, k, pair = j * n_plant + i
    cdef double x
    for k in range(n):
        site_sold[pool_site[a + k]] = site_sold[pool_site[a + k]] + fill[k]
    flow[pair] = flow[pair] + got
    value[pair] = value[pair] + got * cost
    want[i] = want[i] - got
    for k in range(edge_ptr[pair], edge_ptr[pair + 1]):
        residual[edge_idx[k]] = residual[edge_idx[k]] - got
    for k in range(n):
        x = left[a + k] - fill[k]
        left[a + k] = x if x >= 0.0 else 0.0  # numpy.maximum(x, 0.0), which keeps x on a tie
    x = totals[j] - got
    totals[j] = x if x >= 0.0 else 0.0


def ore_trade(const Py_ssize_t[::1] order, const Py_ssize_t[::1] pool_ptr, const Py_ssize_t[::1] pool_site,
              const double[::1] site_ask, const double[::1] offered, const double[::1] pool_offered,
              const Py_ssize_t[::1] captive, const double[::1] plant_want, const unsigned char[:, ::1] allowed,
              const double[:, ::1] bid_price, const double[:, ::1] route, const Py_ssize_t[::1] edge_ptr,
              const Py_ssize_t[::1] edge_idx, const double[::1] edge_capacity, double rtol):
    """A week of ore trade: :meth:`model.ore_market.OreMarket._trade_python`, operation for operation.

    Pools are ``pool_site[pool_ptr[j]:pool_ptr[j + 1]]`` (site indices); ``captive[j]`` is the plant that
    takes pool ``j``'s ore first (-1: none this week); ``allowed`` (pools x plants, 0/1) says who may bid;
    the path from pool ``j`` to plant ``i`` is ``edge_idx[edge_ptr[j * plants + i]:...]``. Each pool's
    book is cleared by the same C code as :func:`clear`.

    Returns ``(flow, value, site_sold, traded, traded_value, best_bid)``."""
    cdef Py_ssize_t n_pool = pool_offered.shape[0], n_plant = plant_want.shape[0], n_site = site_ask.shape[0]
    cdef Py_ssize_t n_held = pool_ptr[n_pool] if n_pool else 0, n_edge = edge_capacity.shape[0]
    if (order.shape[0] != n_pool or pool_ptr.shape[0] != n_pool + 1 or captive.shape[0] != n_pool
            or offered.shape[0] != n_site or allowed.shape[0] != n_pool or allowed.shape[1] != n_plant
            or bid_price.shape[0] != n_pool or bid_price.shape[1] != n_plant or route.shape[0] != n_pool
            or route.shape[1] != n_plant or edge_ptr.shape[0] != n_pool * n_plant + 1):
        raise ValueError("inconsistent shapes of the ore market's tables")
    flow_a = np.zeros((n_pool, n_plant))
    value_a = np.zeros((n_pool, n_plant))
    sold_a = np.zeros(n_site)
    traded_a = np.zeros(n_pool)
    traded_value_a = np.zeros(n_pool)
    best_bid_a = np.full(n_pool, NAN)
    cdef double[:, ::1] flow_v = flow_a, value_v = value_a
    cdef double[::1] sold_v = sold_a, traded = traded_a, traded_value = traded_value_a, best_bid = best_bid_a
    cdef double* flow = &flow_v[0, 0] if n_pool * n_plant else NULL
    cdef double* value = &value_v[0, 0] if n_pool * n_plant else NULL
    cdef double* site_sold = &sold_v[0] if n_site else NULL
    cdef const Py_ssize_t* p_ptr = &pool_ptr[0]
    cdef const Py_ssize_t* p_site = &pool_site[0] if pool_site.shape[0] else NULL
    cdef const Py_ssize_t* e_ptr = &edge_ptr[0]
    cdef const Py_ssize_t* e_idx = &edge_idx[0] if edge_idx.shape[0] else NULL
    cdef Py_ssize_t width = 1, j, jj, i, k, a, n, m, v, e, owner, n_bid, pass_
    for j in range(n_pool):
        if pool_ptr[j + 1] - pool_ptr[j] > width:
            width = pool_ptr[j + 1] - pool_ptr[j]
    # scratch: per held site (pool order) its ask and what it still offers; per pool what it offers and its
    # cheapest ask; per plant the offer of the pools worth bidding in, what it wants now and after the
    # captive deliveries; each pair's share; a book's bids and fills; the edges' spare capacity
    cdef double* dbuf = <double*> malloc((2 * n_held + 2 * n_pool + n_pool * n_plant + 6 * n_plant
                                          + n_edge + 3 * width + 6) * sizeof(double))
    cdef Py_ssize_t* ibuf = <Py_ssize_t*> malloc((2 * n_plant + 1) * sizeof(Py_ssize_t))
    if dbuf == NULL or ibuf == NULL:
        free(dbuf)
        free(ibuf)
        raise MemoryError()
    cdef double* ask = dbuf
    cdef double* left = ask + n_held
    cdef double* totals = left + n_held
    cdef double* min_ask = totals + n_pool
    cdef double* reach = min_ask + n_pool
    cdef double* share = reach + n_plant         # pools x plants
    cdef double* want = share + n_pool * n_plant
    cdef double* want0 = want + n_plant
    cdef double* bid_p = want0 + n_plant
    cdef double* bid_q = bid_p + n_plant
    cdef double* bid_fill = bid_q + n_plant
    cdef double* residual = bid_fill + n_plant
    cdef double* fill = residual + n_edge
    cdef double* ask_fill = fill + width
    cdef double* prod = ask_fill + width
    cdef double* out = prod + width
    cdef Py_ssize_t* bidders = ibuf
    cdef Py_ssize_t* rank = ibuf + n_plant
    cdef double got, total, g, cost, price, volume, wanted, qty, x
    cdef bint more
    try:
        for k in range(n_held):
            ask[k] = site_ask[pool_site[k]]
            left[k] = offered[pool_site[k]]
        for j in range(n_pool):
            totals[j] = pool_offered[j]
        for i in range(n_plant):
            want[i] = plant_want[i]
        for e in range(n_edge):
            residual[e] = edge_capacity[e]

        # 0. captive ore goes to its owner first, at the mine's cost plus levy
        for jj in range(n_pool):
            j = order[jj]
            owner = captive[j]
            total = totals[j]
            if owner < 0 or total <= 1e-12 or want[owner] <= 1e-9:
                continue
            got = want[owner]
            if total < got:
                got = total
            x = _spare(residual, e_ptr, e_idx, j * n_plant + owner)
            if x < got:
                got = x
            if got > 0:
                a = pool_ptr[j]
                n = pool_ptr[j + 1] - a
                g = got / total
                for k in range(n):
                    fill[k] = left[a + k] * g
                    prod[k] = fill[k] * ask[a + k]
                cost = _pairwise(prod, n) / got + route[j, owner]
                _deliver(j, owner, got, fill, cost, p_ptr, p_site, site_sold, flow, value, want, residual, e_ptr,
                         e_idx, left, totals, n_plant)

        # each plant's share of its want to bid in each pool: what the pool offers over what all the
        # pools worth bidding in offer (sums over pools in pool order, as numpy's sum(axis=0))
        for j in range(n_pool):
            a = pool_ptr[j]
            min_ask[j] = INFINITY
            for k in range(a, pool_ptr[j + 1]):
                if ask[k] < min_ask[j]:
                    min_ask[j] = ask[k]
        for i in range(n_plant):
            reach[i] = 0.0
            want0[i] = want[i]
        for j in range(n_pool):
            for i in range(n_plant):
                if allowed[j, i] and bid_price[j, i] >= min_ask[j]:
                    reach[i] = reach[i] + totals[j]
        for j in range(n_pool):
            for i in range(n_plant):
                share[j * n_plant + i] = (totals[j] / reach[i] if reach[i] > 0 else 0.0) if (
                    allowed[j, i] and bid_price[j, i] >= min_ask[j]) else 0.0

        # 1. each plant bids its share in every pool; 2. what is still wanted goes to pools with ore left
        for pass_ in range(1, 3):
            if pass_ == 2:
                more = False
                for i in range(n_plant):
                    if want[i] > 1e-9:
                        more = True
                if not more:
                    break
                more = False
                for j in range(n_pool):
                    if totals[j] > 1e-9:
                        more = True
                if not more:
                    break
            for jj in range(n_pool):
                j = order[jj]
                if totals[j] <= 1e-9:
                    continue
                n_bid = 0
                for i in range(n_plant):
                    if not allowed[j, i]:
                        continue
                    wanted = want[i]
                    if pass_ == 1 and want0[i] * share[j * n_plant + i] < wanted:
                        wanted = want0[i] * share[j * n_plant + i]
                    if wanted <= 1e-9:
                        continue
                    qty = wanted
                    x = _spare(residual, e_ptr, e_idx, j * n_plant + i)
                    if x < qty:
                        qty = x
                    if qty <= 1e-9:
                        continue
                    bidders[n_bid] = i
                    bid_p[n_bid] = bid_price[j, i]
                    bid_q[n_bid] = qty
                    n_bid += 1
                if n_bid == 0:
                    continue
                a = pool_ptr[j]
                n = pool_ptr[j + 1] - a
                if _clear_book(ask + a, 1, left + a, 1, n, bid_p, 1, bid_q, 1, n_bid, rtol, ask_fill, bid_fill,
                               out) < 0:
                    raise MemoryError()
                price, volume = out[0], out[1]
                if not (best_bid[j] == best_bid[j] and fabs(best_bid[j]) != INFINITY) or out[3] > best_bid[j]:
                    best_bid[j] = out[3]
                if volume <= 0:
                    continue
                # deliveries in bid-price order (highest first, ties in bidder order): a stable sort
                for k in range(n_bid):
                    v = k
                    m = k - 1
                    while m >= 0 and bid_p[rank[m]] < bid_p[v]:
                        rank[m + 1] = rank[m]
                        m -= 1
                    rank[m + 1] = v
                for m in range(n_bid):
                    k = rank[m]
                    got = bid_fill[k]
                    i = bidders[k]
                    if got > 0:
                        x = _spare(residual, e_ptr, e_idx, j * n_plant + i)
                        if x < got:
                            got = x
                    if got > 1e-12:
                        g = got / volume
                        for k in range(n):
                            fill[k] = ask_fill[k] * g
                        _deliver(j, i, got, fill, price + route[j, i], p_ptr, p_site, site_sold, flow, value, want,
                                 residual, e_ptr, e_idx, left, totals, n_plant)
                        traded_value[j] = traded_value[j] + price * got
                        traded[j] = traded[j] + got
    finally:
        free(dbuf)
        free(ibuf)
    return flow_a, value_a, sold_a, traded_a, traded_value_a, best_bid_a



# ------------------------------------------------------------------------------------- term contracts
cdef void _fill_holders(double[:, ::1] want, const Py_ssize_t[::1] at, const Py_ssize_t[::1] of,
                        const unsigned char* act, const double[:, ::1] fill, const double[::1] price,
                        const Py_ssize_t[::1] rows, double[:, ::1] inventory, double[:, ::1] got_to,
                        double[:, ::1] paid, double kg_per_t, bint first) noexcept:
    """Holders receive their want x their importer's fill (``of``; ``first``: the one fill of row 0 for
    everyone, then their want shrinks by what was filled): inventory, what they got (``got_to``, when its
    book keeps it) and what they paid move, as the books' ``receive_contract``."""
    cdef Py_ssize_t n_p = want.shape[1], t, j, r, w, f
    cdef double got
    for t in range(at.shape[0]):
        f = 0 if first else of[t]
        if not first and not act[f]:
            continue
        w = at[t]
        r = rows[w]
        for j in range(n_p):
            got = want[w, j] * fill[f, j]
            inventory[r, j] = inventory[r, j] + got
            if got_to is not None:
                got_to[r, j] = got_to[r, j] + got
            paid[r, j] = paid[r, j] + got * price[j] * kg_per_t
    if first:
        for w in range(want.shape[0]):
            for j in range(n_p):
                want[w, j] = want[w, j] * (1.0 - fill[0, j])


def deliver_contracts(double share, const double[::1] price, const double[:, ::1] need_b, const Py_ssize_t[::1] rows_b,
                      double[:, ::1] b_inventory, double[:, ::1] b_paid, const double[:, ::1] need_m,
                      const Py_ssize_t[::1] rows_m, const Py_ssize_t[::1] makes, const unsigned char[::1] magnet,
                      double[::1] m_made, double[::1] m_stock, double[::1] m_contracted, double[::1] m_revenue,
                      double[:, ::1] m_inventory, double[:, ::1] m_got, double[:, ::1] m_paid,
                      const Py_ssize_t[::1] rr, const double[:, ::1] r_produced, double[:, ::1] r_inventory,
                      double[:, ::1] r_contracted, const Py_ssize_t[::1] imp_rows, const Py_ssize_t[::1] of_b,
                      const Py_ssize_t[::1] at_b, const Py_ssize_t[::1] of_m, const Py_ssize_t[::1] at_m,
                      double[:, ::1] t_stock, const double[:, ::1] t_imported, double[:, ::1] t_cost,
                      double[:, ::1] t_contracted, double kg_per_t):
    """A region's term contracts of a week, the books moved in place: the numpy reference
    ``model.model.RareEarthModel._deliver_contracts_numpy`` (every importer at once, no end use refused),
    operation for operation. Holders want ``share`` x their need (buyers ``rows_b``, magnet makers ``rows_m``);
    the region's refiners (``rr``: oxides, ``magnet`` false) and makers (their own magnet) deliver from this
    week's output first, then each importer (trader row ``imp_rows[i]``) from this week's imports to its
    holders (positions ``at_b``/``at_m`` among the region's, importer ``of_b``/``of_m``). Returns the
    volume delivered per product."""
    cdef Py_ssize_t n_p = price.shape[0], kb = rows_b.shape[0], km = rows_m.shape[0], kr = rr.shape[0]
    cdef Py_ssize_t n_i = imp_rows.shape[0], i, j, p, q, r, n, k
    cdef double x, y, held, give_k, s
    if (need_b.shape[1] != n_p or need_m.shape[1] != n_p or magnet.shape[0] != n_p or r_produced.shape[1] != n_p
            or t_stock.shape[1] != n_p or at_b.shape[0] != of_b.shape[0] or at_m.shape[0] != of_m.shape[0]):
        raise ValueError("inconsistent shapes of the term contracts' arrays")
    want_b_a = np.empty((kb, n_p))
    want_m_a = np.empty((km, n_p))
    total_a = np.zeros(n_p)
    want_a = np.empty((max(n_i, 1), n_p))
    give_a = np.zeros((max(n_i, 1), n_p))
    fill_a = np.zeros((max(n_i, 1), n_p))
    cdef double[:, ::1] want_b = want_b_a, want_m = want_m_a, want = want_a, give = give_a, fill = fill_a
    cdef double[::1] total = total_a
    fill_m_a = np.zeros(n_p)  # the makers' deliveries per product
    cdef double[::1] fill_m = fill_m_a
    cdef unsigned char one = 1
    for p in range(kb):
        for j in range(n_p):
            want_b[p, j] = share * need_b[rows_b[p], j]
    for p in range(km):
        for j in range(n_p):
            want_m[p, j] = share * need_m[rows_m[p], j]
    # 1. the region's own producers, from this week's output; want: each holder kind's sum over its rows
    cdef bint any_want = False
    for j in range(n_p):
        x = want_b[0, j] if kb else 0.0
        for p in range(1, kb):
            x = x + want_b[p, j]
        y = want_m[0, j] if km else 0.0
        for p in range(1, km):
            y = y + want_m[p, j]
        want[0, j] = x + y
        if want[0, j] != 0.0:
            any_want = True
    cdef double* buf
    cdef double* shr
    cdef bint any_give = False, delivered
    if any_want:
        for j in range(n_p):  # give = zeros + refiners' delivery (+ makers'): the refiners' first
            give[0, j] = 0.0
        if kr:
            for j in range(n_p):
                held = _np_min(r_produced[rr[0], j], r_inventory[rr[0], j])
                for p in range(1, kr):
                    held = held + _np_min(r_produced[rr[p], j], r_inventory[rr[p], j])
                x = 0.0 if magnet[j] else want[0, j]
                x = _np_min(_np_max(x, 0.0), held)
                s = x / _np_max(held, 1e-12) if held > 1e-12 else 0.0
                for p in range(kr):
                    r = rr[p]
                    y = _np_min(r_produced[r, j], r_inventory[r, j]) * s
                    r_inventory[r, j] = _np_max(r_inventory[r, j] - y, 0.0)
                    r_contracted[r, j] = r_contracted[r, j] + y
                give[0, j] = 0.0 + x
        if km:
            buf = <double*> malloc(2 * km * sizeof(double))
            shr = buf + km
            try:
                for p in range(km):
                    shr[p] = 0.0
                for k in range(n_p):  # each product's plants (in row order) share its contracts pro rata
                    n = 0
                    for p in range(km):
                        if makes[rows_m[p]] == k:
                            buf[n] = _np_min(m_made[rows_m[p]], m_stock[rows_m[p]])
                            n += 1
                    if not n:
                        continue
                    x = want[0, k] if magnet[k] else 0.0
                    if not x > 0:
                        continue
                    held = _pairwise(buf, n)  # numpy.add.reduce of the plants' outputs
                    give_k = held if held < x else x  # Python's min(want, held): the first of equal values
                    if give_k <= 0:
                        continue
                    for p in range(km):
                        if makes[rows_m[p]] == k:
                            shr[p] = give_k / held
                    fill_m[k] = give_k
                delivered = False
                for j in range(n_p):
                    if fill_m[j] != 0.0:
                        delivered = True
                if delivered:  # the plants' books move only when some plant delivered
                    for p in range(km):
                        r = rows_m[p]
                        y = _np_min(m_made[r], m_stock[r]) * shr[p]
                        m_stock[r] = _np_max(m_stock[r] - y, 0.0)
                        m_contracted[r] = m_contracted[r] + y
                        m_revenue[r] = m_revenue[r] + y * price[makes[r]] * kg_per_t
                for j in range(n_p):
                    give[0, j] = give[0, j] + fill_m[j]
            finally:
                free(buf)
        for j in range(n_p):
            if give[0, j] != 0.0:
                any_give = True
        if any_give:
            for j in range(n_p):
                fill[0, j] = give[0, j] / _np_max(want[0, j], 1e-12) if want[0, j] > 1e-12 else 0.0
            if kb:
                _fill_holders(want_b, np.arange(kb), of_b, &one, fill, price, rows_b, b_inventory, None, b_paid,
                              kg_per_t, True)
            if km:
                _fill_holders(want_m, np.arange(km), of_m, &one, fill, price, rows_m, m_inventory, m_got, m_paid,
                              kg_per_t, True)
        for j in range(n_p):
            total[j] = total[j] + give[0, j]
    # 2. each state's importer, from what it imported this week: each importer's holders' want, added in order
    if not n_i:
        return total_a
    for i in range(n_i):
        for j in range(n_p):
            want[i, j] = 0.0
            give[i, j] = 0.0
    for q in range(at_b.shape[0]):
        for j in range(n_p):
            want[of_b[q], j] = want[of_b[q], j] + want_b[at_b[q], j]
    for j in range(n_p):  # the makers' sums, added to the buyers' (each from 0.0, as np.bincount)
        for i in range(n_i):
            fill[i, j] = 0.0
    for q in range(at_m.shape[0]):
        for j in range(n_p):
            fill[of_m[q], j] = fill[of_m[q], j] + want_m[at_m[q], j]
    act_a = np.zeros(n_i, dtype=np.uint8)
    cdef unsigned char[::1] act = act_a
    cdef bint any_act = False
    for i in range(n_i):
        for j in range(n_p):
            want[i, j] = want[i, j] + fill[i, j]
            if want[i, j] != 0.0:
                act[i] = 1
        any_act = any_act or act[i]
    if not any_act:
        return total_a
    for i in range(n_i):
        if not act[i]:
            continue
        r = imp_rows[i]
        for j in range(n_p):  # the importer's delivery; its stock's average cost is kept
            x = t_stock[r, j]
            y = _np_min(_np_min(_np_max(want[i, j], 0.0), x), t_imported[r, j])
            give[i, j] = y
            s = 1.0 - y / _np_max(x, 1e-12) if x > 1e-12 else 1.0
            t_cost[r, j] = t_cost[r, j] * s
            t_stock[r, j] = _np_max(x - y, 0.0)
            t_contracted[r, j] = t_contracted[r, j] + y
    for i in range(n_i):
        for j in range(n_p):
            fill[i, j] = give[i, j] / _np_max(want[i, j], 1e-12) if want[i, j] > 1e-12 else 0.0
    _fill_holders(want_b, at_b, of_b, &act[0], fill, price, rows_b, b_inventory, None, b_paid, kg_per_t, False)
    _fill_holders(want_m, at_m, of_m, &act[0], fill, price, rows_m, m_inventory, m_got, m_paid, kg_per_t, False)
    for i in range(n_i):  # total + each delivering importer's in turn
        if act[i]:
            for j in range(n_p):
                total[j] = total[j] + give[i, j]
    return total_a


# ------------------------------------------------------------------------------ settling a region's fills
# A participant's settle moves its books by its fills of a clearing (``fill``: products x participants, a
# block's columns of the kernel's fills) in a few elementwise numpy lines; these do the same operations in
# the same order in one call (references: the books' ``settle`` in agents/, with numpy's maximum/minimum and
# products taken left to right). ``rows``: each participant's row in the book's arrays (distinct), written in
# place; ``paid``: the price each product's fills are paid at.

cdef int _check(const Py_ssize_t[::1] rows, const double[:, :] fill, Py_ssize_t n_p, Py_ssize_t n_book) except -1:
    """``fill`` products x rows, every row inside the book (``n_book`` rows): the kernel does not check indices."""
    cdef Py_ssize_t i
    if fill.shape[0] != n_p or fill.shape[1] != rows.shape[0]:
        raise ValueError("a fill is products x the rows settled")
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= n_book:
            raise IndexError("a row out of the book")
    return 0


cdef int _check_books(const Py_ssize_t[::1] rows, const double[:, :] fill, Py_ssize_t n_p, const double[:, :] stock,
                      const double[:, :] a, const double[:, :] b) except -1:
    """:func:`_check`, and the book's three arrays of one shape, a column per product."""
    _check(rows, fill, n_p, stock.shape[0])
    if (a.shape[0] != stock.shape[0] or a.shape[1] != stock.shape[1] or b.shape[0] != stock.shape[0]
            or b.shape[1] != stock.shape[1]):
        raise ValueError("the book's arrays differ in shape")
    if stock.shape[1] != n_p:
        raise ValueError("one price per product")
    return 0


def settle_sold(const Py_ssize_t[::1] rows, const double[:, :] fill, const double[::1] paid, double kg,
                double[:, :] stock, double[:, :] sold, double[:, :] revenue):
    """Sellers (refiners): ``stock[r] = max(stock[r] - f, 0)``, ``sold[r] = f``, ``revenue[r] = f x paid x kg``."""
    cdef Py_ssize_t n = rows.shape[0], n_p = paid.shape[0], i, k, r
    cdef double f
    _check_books(rows, fill, n_p, stock, sold, revenue)
    for i in range(n):
        r = rows[i]
        for k in range(n_p):
            f = fill[k, i]
            stock[r, k] = _np_max(stock[r, k] - f, 0.0)
            sold[r, k] = f
            revenue[r, k] = f * paid[k] * kg


def settle_bought(const Py_ssize_t[::1] rows, const double[:, :] fill, const double[::1] paid, double kg,
                  double[:, :] bought, double[:, :] spent, double[:, :] stock):
    """Buyers (buyers, magnet makers' oxide): ``bought[r] = f``, ``spent[r] = f x paid x kg``, ``stock[r] = stock[r] + f``."""
    cdef Py_ssize_t n = rows.shape[0], n_p = paid.shape[0], i, k, r
    cdef double f
    _check_books(rows, fill, n_p, stock, bought, spent)
    for i in range(n):
        r = rows[i]
        for k in range(n_p):
            f = fill[k, i]
            bought[r, k] = f
            spent[r, k] = f * paid[k] * kg
            stock[r, k] = stock[r, k] + f


def settle_own(const Py_ssize_t[::1] rows, const Py_ssize_t[::1] own, const double[:, :] fill,
               const double[::1] paid, double kg, double[::1] stock, double[::1] sold, double[::1] revenue):
    """Sellers of one product each (magnet makers: row ``rows[i]`` sells product ``own[i]``) with per-row
    books: with ``f`` the fill of the row's own product, ``stock[r] = max(stock[r] - f, 0)``, ``sold[r] = f``,
    ``revenue[r] = f x paid[own] x kg``."""
    cdef Py_ssize_t n = rows.shape[0], n_p = paid.shape[0], i, r, k
    cdef double f
    _check(rows, fill, n_p, stock.shape[0])
    if own.shape[0] != n or sold.shape[0] != stock.shape[0] or revenue.shape[0] != stock.shape[0]:
        raise ValueError("one product per row, the book's arrays of one size")
    for i in range(n):
        if own[i] < 0 or own[i] >= n_p:
            raise IndexError("a product out of range")
    for i in range(n):
        r = rows[i]
        k = own[i]
        f = fill[k, i]
        stock[r] = _np_max(stock[r] - f, 0.0)
        sold[r] = f
        revenue[r] = f * paid[k] * kg


def sell_from_stock(const Py_ssize_t[::1] rows, const double[:, :] fill, double[:, :] stock, double[:, :] cost,
                    double[:, :] sold):
    """Stockholders (traders) sell ``f`` from stock, keeping its average cost: ``keep = min(max(1 - f /
    max(stock, 1e-12), 0), 1)``, ``cost[r] = cost[r] x keep``, ``stock[r] = max(stock[r] - f, 0)``, ``sold[r] = f``."""
    cdef Py_ssize_t n = rows.shape[0], n_p = stock.shape[1], i, k, r
    cdef double f, s, keep
    _check_books(rows, fill, n_p, stock, cost, sold)
    for i in range(n):
        r = rows[i]
        for k in range(n_p):
            f = fill[k, i]
            s = stock[r, k]
            keep = _np_min(_np_max(1.0 - f / _np_max(s, 1e-12), 0.0), 1.0)
            cost[r, k] = cost[r, k] * keep
            stock[r, k] = _np_max(s - f, 0.0)
            sold[r, k] = f


def add_to_stock(const Py_ssize_t[::1] rows, const double[:, :] fill, const double[::1] price, double[:, :] stock,
                 double[:, :] cost, double[:, :] got):
    """Stockholders (traders) add ``f`` bought at ``price`` to stock: ``cost[r] = cost[r] + f x price``,
    ``stock[r] = stock[r] + f``, ``got[r] = f``."""
    cdef Py_ssize_t n = rows.shape[0], n_p = price.shape[0], i, k, r
    cdef double f
    _check_books(rows, fill, n_p, stock, cost, got)
    for i in range(n):
        r = rows[i]
        for k in range(n_p):
            f = fill[k, i]
            cost[r, k] = cost[r, k] + f * price[k]
            stock[r, k] = stock[r, k] + f
            got[r, k] = f


# ------------------------------------------------------------------------------------------------ thrifting
cdef int _matrix(object a, Py_buffer* view, Py_ssize_t n, Py_ssize_t n_p, char code) except -1:
    """Read ``a`` (an n x n_p array of format ``code``, any strides) into ``view``: typed memoryviews of the
    seven arrays cost more than the week's thrifting itself."""
    PyObject_GetBuffer(a, view, PyBUF_RECORDS_RO)
    if (view.ndim != 2 or view.shape[0] != n or view.shape[1] != n_p or view.format == NULL
            or view.format[0] != code or view.format[1] != 0):
        PyBuffer_Release(view)
        raise ValueError("thrift's arrays: one shape, float64 (the shortages bool)")
    return 0


cdef inline double _d(const Py_buffer* v, Py_ssize_t i, Py_ssize_t k) noexcept nogil:
    return (<const double*>(<const char*>v.buf + i * v.strides[0] + k * v.strides[1]))[0]


def thrift(thrifted, base, floor, ceiling, recent, long_, short_, double trigger_ratio, double rate,
           double irreversible):
    """One week of thrifting of recipes (rows x products; float64, the shortages bool), element by element
    as its numpy reference ``model.substitution.thrift_numpy``: ``high = (recent > trigger_ratio x long) |
    short``, ``low = recent < long``, ``step = rate x base``, ``cut = max(where(high, min(step, thrifted -
    floor), 0), 0)``, ``v = thrifted - cut``, ``ceiling' = max(ceiling - irreversible x cut, floor)``, and the
    recipe ``where(low & ~high, min(v + step / 4, max(ceiling', v)), v)``. Returns the new recipes and
    ceilings (new arrays)."""
    cdef Py_buffer bufs[9]
    cdef Py_ssize_t got = 0, n, n_p, i, k
    cdef double r, l, step, cut, v, c, t, f
    cdef bint high
    cdef double* out
    cdef double* ceil
    shape = thrifted.shape
    if len(shape) != 2:
        raise ValueError("thrift's arrays: one shape, float64 (the shortages bool)")
    n, n_p = shape[0], shape[1]
    out_a = np.empty((n, n_p))
    ceil_a = np.empty((n, n_p))
    try:
        for a in (out_a, ceil_a):  # new, C-contiguous
            PyObject_GetBuffer(a, &bufs[got], PyBUF_RECORDS)
            got += 1
        out, ceil = <double*>bufs[0].buf, <double*>bufs[1].buf
        for a in (thrifted, base, floor, ceiling, recent, long_):
            _matrix(a, &bufs[got], n, n_p, b"d"[0])
            got += 1
        _matrix(short_, &bufs[got], n, n_p, b"?"[0])
        got += 1
        for i in range(n):
            for k in range(n_p):
                t, f = _d(&bufs[2], i, k), _d(&bufs[4], i, k)
                r, l = _d(&bufs[6], i, k), _d(&bufs[7], i, k)
                high = (r > trigger_ratio * l) or (<const char*>bufs[8].buf)[i * bufs[8].strides[0]
                                                                            + k * bufs[8].strides[1]] != 0
                step = rate * _d(&bufs[3], i, k)
                cut = _np_max(_np_min(step, t - f) if high else 0.0, 0.0)
                v = t - cut
                c = _np_max(_d(&bufs[5], i, k) - irreversible * cut, f)
                ceil[i * n_p + k] = c
                if r < l and not high:
                    out[i * n_p + k] = _np_min(v + step / 4.0, _np_max(c, v))
                else:
                    out[i * n_p + k] = v
    finally:
        for i in range(got):
            PyBuffer_Release(&bufs[i])
    return out_a, ceil_a


# ------------------------------------------------------------------------------------------- small sites
def entry_exit(const double[::1] netback_ema, const Py_ssize_t[::1] idx, const double[::1] cost,
               const Py_ssize_t[::1] node, const double[::1] levies, const double[::1] u,
               unsigned char[::1] active, double entry_rate, double exit_rate):
    """Small sites open and close (``agents.miner.MinerFleet.entry_exit_step``; reference
    ``MinerFleet._entry_exit_numpy``): for entry site ``k`` (site ``idx[k]``, area ``node[k]``), with its area's
    netback ``nb`` (0 where not finite), ``margin = nb - cost - levy`` and ``rel = min(max(margin / cost, 0),
    1)``, a dormant site opens where the netback is known, ``margin > 0`` and ``u < entry_rate x rel``, an
    active one closes where it is known, ``margin < 0`` and ``u < exit_rate``; every site's state read before
    any is moved, the openings set before the closings. ``active`` (bool as uint8) is moved in place;
    returns (opened, closed)."""
    cdef Py_ssize_t n = idx.shape[0], n_site = active.shape[0], k, s
    cdef Py_ssize_t opened = 0, closed = 0
    cdef double nb, margin, rel
    cdef bint known, dormant
    cdef unsigned char* flag
    if cost.shape[0] != n or node.shape[0] != n or u.shape[0] != n or levies.shape[0] != n_site:
        raise ValueError("entry_exit's arrays differ in length")
    for k in range(n):
        if idx[k] < 0 or idx[k] >= n_site or node[k] < 0 or node[k] >= netback_ema.shape[0]:
            raise IndexError("a site or an area out of range")
    flag = <unsigned char*>calloc(n if n > 0 else 1, 1)
    if flag == NULL:
        raise MemoryError()
    try:
        for k in range(n):
            nb = netback_ema[node[k]]
            known = (nb - nb) == 0.0  # finite
            if not known:
                nb = 0.0
            s = idx[k]
            margin = nb - cost[k] - levies[s]
            rel = _np_min(_np_max(margin / cost[k], 0.0), 1.0)
            dormant = active[s] == 0
            if known and dormant and margin > 0 and u[k] < entry_rate * rel:
                flag[k] = 1
            elif known and not dormant and margin < 0 and u[k] < exit_rate:
                flag[k] = 2
        for k in range(n):
            if flag[k] == 1:
                active[idx[k]] = 1
                opened += 1
        for k in range(n):
            if flag[k] == 2:
                active[idx[k]] = 0
                closed += 1
    finally:
        free(flag)
    return opened, closed


# ------------------------------------------------------------------------------------------- price signals
cdef int _vector(object a, Py_buffer* view, Py_ssize_t n, int flags) except -1:
    """Read ``a`` (n float64, any stride) into ``view`` (``flags``: PyBUF_RECORDS to write it)."""
    PyObject_GetBuffer(a, view, flags)
    if view.ndim != 1 or view.shape[0] != n or view.format == NULL or view.format[0] != b"d"[0] or view.format[1] != 0:
        PyBuffer_Release(view)
        raise ValueError("one float64 value per product")
    return 0


cdef inline double _v(Py_buffer* v, Py_ssize_t k) noexcept nogil:
    return (<const double*>(<const char*>v.buf + k * v.strides[0]))[0]


def record_clearing(price, volume, last, memory, recent, long_memory, double span_memory, double span_recent,
                    double span_long):
    """A region's clearing moves its prices and memories (``model.signals.MarketSignals.record_clearing``;
    reference ``MarketSignals._record_clearing_numpy``): where a product traded (its price finite and its
    volume > 0) the price and volume are this week's, else the last price and 0; each memory moves
    ``old + (p - old) / span`` where it traded and stays elsewhere. Returns new arrays: price, volume, traded
    (bool), memory, recent, long memory."""
    cdef Py_buffer bufs[12]
    cdef Py_ssize_t got = 0, n, k, j
    cdef double p, old
    cdef bint ok
    cdef double spans[3]
    cdef double* out[5]
    cdef unsigned char* traded
    n = len(price)
    spans[0], spans[1], spans[2] = span_memory, span_recent, span_long
    outs = (np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    ok_a = np.empty(n, dtype=bool)
    try:
        for a in (price, volume, last, memory, recent, long_memory):
            _vector(a, &bufs[got], n, PyBUF_RECORDS_RO)
            got += 1
        for j in range(5):
            PyObject_GetBuffer(outs[j], &bufs[got], PyBUF_RECORDS)
            out[j] = <double*>bufs[got].buf
            got += 1
        PyObject_GetBuffer(ok_a, &bufs[got], PyBUF_RECORDS)  # new, C-contiguous bool
        traded = <unsigned char*>bufs[got].buf
        got += 1
        for k in range(n):
            p = _v(&bufs[0], k)
            ok = (p - p) == 0.0 and _v(&bufs[1], k) > 0
            traded[k] = ok
            if not ok:
                p = _v(&bufs[2], k)
            out[0][k] = p
            out[1][k] = _v(&bufs[1], k) if ok else 0.0
            for j in range(3):
                old = _v(&bufs[3 + j], k)
                out[2 + j][k] = old + (p - old) / spans[j] if ok else old
    finally:
        for k in range(got):
            PyBuffer_Release(&bufs[k])
    return outs[0], outs[1], ok_a, outs[2], outs[3], outs[4]


def inflow_outlook(inflow, short_, long_, double a_short, double a_long):
    """A region's supply outlook after a week's arrivals (``MarketSignals.close_inflow_week``; reference
    ``MarketSignals._inflow_outlook_numpy``): ``s = short + a_short x (inflow - short)``, ``l = long + a_long x
    (inflow - long)`` and the outlook ``min(where(l > 1e-9, s / l, 1), 1.5)``. Returns new arrays s, l, outlook."""
    cdef Py_buffer bufs[6]
    cdef Py_ssize_t got = 0, n, k
    cdef double x, s, l
    cdef double* out[3]
    n = len(inflow)
    outs = (np.empty(n), np.empty(n), np.empty(n))
    try:
        for a in (inflow, short_, long_):
            _vector(a, &bufs[got], n, PyBUF_RECORDS_RO)
            got += 1
        for k in range(3):
            PyObject_GetBuffer(outs[k], &bufs[got], PyBUF_RECORDS)
            out[k] = <double*>bufs[got].buf
            got += 1
        for k in range(n):
            x = _v(&bufs[0], k)
            s = _v(&bufs[1], k)
            l = _v(&bufs[2], k)
            s = s + a_short * (x - s)
            l = l + a_long * (x - l)
            out[0][k] = s
            out[1][k] = l
            out[2][k] = _np_min(s / l if l > 1e-9 else 1.0, 1.5)
    finally:
        for k in range(got):
            PyBuffer_Release(&bufs[k])
    return outs[0], outs[1], outs[2]


# ------------------------------------------------------------------------------------------------- mining
cdef int _flags(object a, Py_buffer* view, Py_ssize_t n) except -1:
    """Read ``a`` (n bool, any stride) into ``view``."""
    PyObject_GetBuffer(a, view, PyBUF_RECORDS_RO)
    if view.ndim != 1 or view.shape[0] != n or view.format == NULL or view.format[0] != b"?"[0] or view.format[1] != 0:
        PyBuffer_Release(view)
        raise ValueError("one bool per site")
    return 0


def mine(stock_max, stock, cap, active, halted, quota_mult, remaining):
    """A week's mining (``agents.miner.MinerFleet.mine``; reference ``MinerFleet._mine_numpy``): each site mines
    ``min(cap x (active & ~halted) x quota_mult, max(stock_max - stock, 0))``, and, with ``remaining`` (not
    None: finite reserves), at most what remains. Returns new arrays: mined, remaining (None without) and
    stock + mined."""
    cdef Py_buffer bufs[11]
    cdef Py_ssize_t got = 0, n, k
    cdef bint finite = remaining is not None
    cdef double room, x, r
    cdef double* out[3]
    n = len(stock)
    outs = (np.empty(n), np.empty(n) if finite else None, np.empty(n))
    try:
        for a in (stock_max, stock, cap, quota_mult):
            _vector(a, &bufs[got], n, PyBUF_RECORDS_RO)
            got += 1
        _flags(active, &bufs[got], n)
        got += 1
        _flags(halted, &bufs[got], n)
        got += 1
        if finite:
            _vector(remaining, &bufs[got], n, PyBUF_RECORDS_RO)
            got += 1
        for k in range(3):
            if outs[k] is not None:
                PyObject_GetBuffer(outs[k], &bufs[got], PyBUF_RECORDS)
                out[k] = <double*>bufs[got].buf
                got += 1
        for k in range(n):
            room = _np_max(_v(&bufs[0], k) - _v(&bufs[1], k), 0.0)
            x = _v(&bufs[2], k) * (1.0 if ((<const char*>bufs[4].buf)[k * bufs[4].strides[0]] != 0
                                           and (<const char*>bufs[5].buf)[k * bufs[5].strides[0]] == 0) else 0.0)
            x = _np_min(x * _v(&bufs[3], k), room)
            if finite:
                r = _v(&bufs[6], k)
                x = _np_min(x, r)
                out[1][k] = r - x
            out[0][k] = x
            out[2][k] = _v(&bufs[1], k) + x
    finally:
        for k in range(got):
            PyBuffer_Release(&bufs[k])
    return outs
