"""Compare runs by their footprint: load footprints, analyse (baseline, like for like, repeats,
Pareto, fairness, what-if regions, serving and break-even), write tables and plots.
``lightning-green compare`` is :func:`main`.

Example::

    from lightning_green.compare import compare, load_runs, write_plots, write_table

    comparison = compare(load_runs(["multirun/2025-01-01/12-00-00"]), metric="val/acc")
    csv_path, md_path = write_table(comparison, "out", plots=write_plots(comparison, "out"))
"""

from __future__ import annotations

from lightning_green.compare.cli import default_out_dir, main, run_comparison
from lightning_green.compare.fairness import Flag, fairness_flags
from lightning_green.compare.footprints import Run, canonical_value, load_runs
from lightning_green.compare.groups import Group, Stat
from lightning_green.compare.pareto import metric_maximized, pareto_front
from lightning_green.compare.plots import (
    plot_energy_by_component,
    plot_pareto,
    plot_power_over_time,
    read_power_series,
    write_plots,
)
from lightning_green.compare.runs import Comparison, choose_baseline, choose_metric, compare
from lightning_green.compare.serving import BreakEven, break_even, pair_training
from lightning_green.compare.table import CSV_NAME, MD_NAME, write_table
from lightning_green.compare.whatif import DEFAULT_REGIONS, cleanest_window_kg

__all__ = [
    "CSV_NAME", "DEFAULT_REGIONS", "MD_NAME", "BreakEven", "Comparison", "Flag", "Group", "Run", "Stat",
    "break_even", "canonical_value", "choose_baseline", "choose_metric", "cleanest_window_kg", "compare",
    "default_out_dir", "fairness_flags", "load_runs", "main", "metric_maximized", "pair_training", "pareto_front",
    "plot_energy_by_component", "plot_pareto", "plot_power_over_time", "read_power_series", "run_comparison",
    "write_plots", "write_table",
]
