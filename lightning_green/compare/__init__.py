"""Compare runs by their footprint: load footprints, analyse (baseline, Pareto, fairness), write
a table and plots. ``lightning-green compare`` is :func:`main`."""

from __future__ import annotations

from lightning_green.compare.plots import *  # noqa: F401,F403
from lightning_green.compare.plots import __all__, run_comparison  # noqa: F401
from lightning_green.compare.table import CSV_NAME, MD_NAME  # noqa: F401
