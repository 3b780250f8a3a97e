"""Time series for the live charts, read incrementally from a running model's results.

The model records every output as a row of its tidy results table (``model.results()``). Rebuilding that
DataFrame on each redraw costs ~50-100 ms late in a run, so the page keeps one :class:`History` per model
and reads only the rows added since the last redraw from the model's :class:`~model.results.Recorder`
(``Recorder.rows_since``). The charts in :mod:`ui.charts` take a ``History``, never the live model.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

Key = tuple[str, str, str]  # (variable, region, product), as in model.results.OUTPUTS rows


class History:
    """Every recorded output of one run, by (variable, region, product), as arrays over steps."""

    def __init__(self) -> None:
        self.n_rows = 0
        self.dates: list[dt.date] = []  # date of step i
        self._rows: dict[Key, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))

    def update(self, model) -> History:
        """Read the rows the model recorded since the last call (cheap: a few hundred rows per week)."""
        rec = model.recorder
        n = len(rec)
        for s, date, var, reg, prod, val in rec.rows_since(self.n_rows):
            while len(self.dates) <= s:
                self.dates.append(date)
            st, vs = self._rows[(var, reg, prod)]
            st.append(s)
            vs.append(val)
        self.n_rows = n
        return self

    @property
    def n_steps(self) -> int:
        return len(self.dates)

    def regions(self, variable: str, product: str | None = None) -> list[str]:
        """Regions (or corridors, states, groups) recorded for a variable, sorted."""
        return sorted({r for (v, r, p) in self._rows if v == variable and (product is None or p == product)})

    def series(self, variable: str, region: str = "", product: str = "", fill: float = np.nan) -> np.ndarray:
        """Values over steps 0..n-1; steps where nothing was recorded hold ``fill``."""
        out = np.full(self.n_steps, fill, dtype=float)
        if (variable, region, product) in self._rows:
            st, vs = self._rows[(variable, region, product)]
            out[np.asarray(st, dtype=int)] = vs
        return out

    def dates_array(self) -> np.ndarray:
        return np.array(self.dates, dtype="datetime64[D]")

    def x(self) -> np.ndarray:
        """Matplotlib date numbers of steps 0..n-1 (days since 1970-01-01)."""
        return self.dates_array().astype("int64").astype(float)
