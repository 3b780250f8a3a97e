"""numpy functions the model calls hundreds of times a week on small arrays, called without numpy's Python
wrappers: the same C functions, so the same results bit for bit.

numpy routes ``np.where``, ``np.bincount`` and ``np.count_nonzero`` through its ``__array_function__``
dispatch (a Python-level dispatcher looks for overrides in the arguments) before the C function runs; on the
model's arrays of ten or a hundred numbers that dispatch costs about as much as the work (``np.where``: ~0.7
of its ~1.6 us). The model's arrays are plain ndarrays, which never override anything, so it calls the
implementations directly (each dispatched function's ``_implementation``, NEP 18; where a numpy has none,
the public function). ``add_reduce`` is ``ndarray.sum`` without its Python wrapper
(``numpy._core._methods._sum``): the same reduction; ``clip`` is the ufunc ``np.clip`` ends in (for a float
array and float bounds, through ``ndarray.clip`` and ``numpy._core._methods._clip``); :func:`flatnonzero` is ``np.flatnonzero`` of an
ndarray without its three wrappers (``np.nonzero(np.ravel(a))[0]``: the same indices).
"""

from __future__ import annotations

import numpy as np


def _implementation(func):
    return getattr(func, "_implementation", func)


where = _implementation(np.where)
bincount = _implementation(np.bincount)
count_nonzero = _implementation(np.count_nonzero)
add_reduce = np.add.reduce
try:
    from numpy._core.umath import clip  # numpy 2
except ImportError:  # numpy 1
    from numpy.core.umath import clip  # noqa: F401


def flatnonzero(a: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(a)`` for an ndarray ``a``: the indices of its non-zero items in the flattened array."""
    return a.ravel().nonzero()[0]
