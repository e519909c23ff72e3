"""The comparison's plots: energy by component, Pareto front, power over time
(:mod:`~lightning_green.compare.plots.training`), the serving Pareto front and break-even
(:mod:`~lightning_green.compare.plots.serving`), shared pieces in
:mod:`~lightning_green.compare.plots.base`.

This package is the only home of matplotlib, imported lazily inside the functions and drawn on the Agg canvas
(no pyplot, no display, no global backend switch). Every plot is written at ``dpi`` (150 by
default) as PNG, or as SVG (text kept as text) with ``fmt="svg"``. Runs are labelled by their
short names on the axes; a key under the plot spells out each run's overrides, wrapped, so
long override names never squeeze the axes. Error bars are the low-high bands of
:mod:`lightning_green.compare.uncertainty`.

Example::

    from lightning_green.compare import compare, load_runs, write_plots

    write_plots(compare(load_runs(["multirun/2025-01-01/12-00-00"])), "out", fmt="svg")
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning_green.compare.plots.base import DEFAULT_DPI, FORMATS
from lightning_green.compare.plots.serving import plot_break_even, plot_serving_pareto
from lightning_green.compare.plots.training import (
    figure_energy_by_component,
    figure_pareto,
    figure_power_over_time,
    plot_energy_by_component,
    plot_pareto,
    plot_power_over_time,
    read_power_series,
)
from lightning_green.compare.runs import Comparison
from lightning_green.validation import check_choice, check_number

__all__ = ["DEFAULT_DPI", "FORMATS", "figure_energy_by_component", "figure_pareto", "figure_power_over_time",
           "plot_break_even", "plot_energy_by_component", "plot_pareto", "plot_power_over_time",
           "plot_serving_pareto", "read_power_series", "write_plots"]

COMPONENTS_NAME, POWER_NAME = "energy_by_component", "power_over_time"


def pareto_name(by: str) -> str:
    return f"pareto_{by}"


def write_plots(c: Comparison, out_dir: str | os.PathLike, *, dpi: int = DEFAULT_DPI, fmt: str = "png") -> list[Path]:
    """Write the plots that apply: bars always; Pareto with a metric; power with steps.csv;
    the serving plots with serving runs. ``fmt``: ``"png"`` or ``"svg"``; ``dpi`` >= 72."""
    check_choice("format", fmt, FORMATS)
    dpi = int(check_number("dpi", dpi, minimum=72, maximum=1200, integer=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_energy_by_component(c, out / COMPONENTS_NAME, dpi=dpi, fmt=fmt) if c.runs else None,
        plot_pareto(c, out / pareto_name(c.by), dpi=dpi, fmt=fmt) if c.runs else None,
        plot_power_over_time(c, out / POWER_NAME, dpi=dpi, fmt=fmt),
        plot_serving_pareto(c, out / "pareto_serving", dpi=dpi, fmt=fmt),
        plot_break_even(c, out / "serving_break_even", dpi=dpi, fmt=fmt),
    ]
    return [p for p in written if p is not None]
