# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernel of the call auction: :func:`model.market.clear_unchecked`, operation for operation.

A week of the model clears about 14 auctions (ore pools and oxide markets). In numpy each clearing is
some 30 array calls on books of tens to hundreds of orders, so the per-call overhead, not the arithmetic,
set the cost (about 55 us an auction, a third of a simulated week). This kernel does the same work in one
pass of C loops.

It follows the numpy reference (``model.market._clear_numpy``) bit for bit, which the tests check on
random books: the same stable sort order, ``numpy.add.reduce``'s pairwise summation for the quantity
offered and demanded, ``numpy.add.reduceat``'s for the total of a price level (first order plus the
pairwise sum of the rest), a sequential running sum as ``numpy.cumsum``, and the same elementwise
operations in the same order. The build turns off floating-point contraction (``-ffp-contract=off``)
so the compiler cannot fuse a multiply and an add into one rounding.
"""

from libc.math cimport INFINITY, NAN, fabs
from libc.stdlib cimport free, malloc

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
    cdef Py_ssize_t n = na + nb + 1
    # one block of scratch memory: 9 double arrays and 5 index arrays of n entries
    cdef double* dbuf = <double*> malloc(9 * n * sizeof(double))
    cdef Py_ssize_t* ibuf = <Py_ssize_t*> malloc(5 * n * sizeof(Py_ssize_t))
    if dbuf == NULL or ibuf == NULL:
        free(dbuf)
        free(ibuf)
        raise MemoryError()
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
    try:
        # positive orders, in input order; their sums as numpy.add.reduce adds them
        for i in range(na):
            if aq[i] > 0.0:
                pos[ka] = i
                qs[ka] = aq[i]
                ka += 1
        offered = _pairwise(qs, ka)
        for i in range(nb):
            if bq[i] > 0.0:
                pos[ka + kb] = i
                qs[ka + kb] = bq[i]
                kb += 1
        demanded = _pairwise(qs + ka, kb)
        if ka:
            best_ask = ap[pos[0]]
            for i in range(1, ka):
                if ap[pos[i]] < best_ask:
                    best_ask = ap[pos[i]]
        if kb:
            best_bid = bp[pos[ka]]
            for i in range(ka + 1, ka + kb):
                if bp[pos[i]] > best_bid:
                    best_bid = bp[pos[i]]
        if ka and kb and not (best_bid < best_ask):
            # asks ascending by price, bids ascending by -price (descending price), both stable
            for i in range(ka):
                key[i] = ap[pos[i]]
                order[i] = i
            _stable_sort(key, order, tmp, ka)
            for i in range(kb):
                key[ka + i] = -bp[pos[ka + i]]
                order[ka + i] = ka + i
            _stable_sort(key, order + ka, tmp, kb)
            for i in range(ka):
                orig[i] = pos[order[i]]
                ps[i] = ap[orig[i]]
                qs[i] = aq[orig[i]]
            for i in range(ka, ka + kb):
                orig[i] = pos[order[i]]
                ps[i] = bp[orig[i]]
                qs[i] = bq[orig[i]]
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
    return (price, volume, ask_fill, bid_fill, best_ask, best_bid, offered, demanded)


def clear_curves(const double[:, ::1] log_grid, const double[:, :, ::1] supply, const double[:, :, ::1] demand):
    """Clear ``M`` schedule auctions: :func:`model.market.clear_curves` without its final ``exp``, operation
    for operation as its numpy reference (``model.market._clear_curves_numpy``).

    ``log_grid`` is ``(M, G)``, ``supply`` ``(M, S, G)`` and ``demand`` ``(M, B, G)``, all C-contiguous.
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
    log_price = np.empty(n_m)
    volume = np.empty(n_m)
    sell_fill = np.empty((n_m, n_s))
    buy_fill = np.empty((n_m, n_b))
    supplied = np.empty(n_m)
    demanded = np.empty(n_m)
    bound = np.empty(n_m, dtype=np.int64)
    cdef double[::1] lp_v = log_price, vol_v = volume, sup_v = supplied, dem_v = demanded
    cdef double[:, ::1] sf = sell_fill, bf = buy_fill
    cdef long long[::1] bd = bound
    cdef Py_ssize_t m, g, i, first, lo
    cdef double s, d, e, e0 = 0.0, e1 = 0.0, t, w0, w1, vol, tol, fs, fb
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
        s = _pairwise(&sf[m, 0], n_s) if n_s else 0.0
        d = _pairwise(&bf[m, 0], n_b) if n_b else 0.0
        sup_v[m] = s
        dem_v[m] = d
        vol = s if s <= d else d
        tol = 1e-12 * ((s if s >= d else d) if (s if s >= d else d) >= 1.0 else 1.0)
        bd[m] = 1 if none else (-1 if first == 0 else 0)
        if vol > tol:
            fs = vol / s if s > 0 else 0.0
            fb = vol / d if d > 0 else 0.0
            for i in range(n_s):
                sf[m, i] = sf[m, i] * fs
            for i in range(n_b):
                bf[m, i] = bf[m, i] * fb
            vol_v[m] = vol
            lp_v[m] = log_grid[m, lo] + t * (log_grid[m, first] - log_grid[m, lo])
        else:
            for i in range(n_s):
                sf[m, i] = 0.0
            for i in range(n_b):
                bf[m, i] = 0.0
            vol_v[m] = 0.0
            lp_v[m] = NAN
    return log_price, volume, sell_fill, buy_fill, supplied, demanded, bound
