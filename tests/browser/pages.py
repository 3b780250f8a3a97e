"""Helpers the browser tests share (fixtures are in ``conftest.py``)."""

from __future__ import annotations


def button(page, name: str):
    """The page's button labelled exactly ``name``."""
    return page.get_by_role("button", name=name, exact=True)
