"""Policies and scripted events (placeholder while the core is built)."""
from __future__ import annotations


def parse_timeline(entries, source=""):
    return []


def check_timeline(items, world, start, end, source=""):
    return None
