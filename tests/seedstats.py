"""Medians over seeds, printed with every seed's value (shown by ``pytest -rP``): shared by the
multi-seed scenario tests."""

from __future__ import annotations

import sys

import numpy as np


def med(values: dict) -> float:
    return float(np.median(list(values.values())))


def fmt(values: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:.3g}" for k, v in values.items()) + "}"


def report(values: dict) -> float:
    """The median over seeds; prints it with each seed's value and the calling test's name."""
    value = med(values)
    print(f"{sys._getframe(1).f_code.co_name}: median {value:.4g}; seeds {fmt(values)}")
    return value
