"""Benchmarks for ree-abm: run ``python -m benchmarks.run`` (``make bench``).

Every figure is printed, never asserted: no test fails on time. See :mod:`benchmarks.run` for what is
measured and :mod:`benchmarks.scaling` for how the world is scaled in agents.
"""
