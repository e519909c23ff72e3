"""The training plots: energy per run by component, energy (or emissions) against the
metric with the Pareto front, and power over time from each run's steps.csv."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any

from lightning_green.compare.plots.base import (
    DEFAULT_DPI, colors, legend_columns, new_figure, run_key, save, short_name, tick_label, title,
)
from lightning_green.compare.runs import Comparison
from lightning_green.compare.table import emissions_unit, energy_unit

__all__ = ["figure_energy_by_component", "figure_pareto", "figure_power_over_time", "plot_energy_by_component",
           "plot_pareto", "plot_power_over_time", "read_power_series"]

_MAX_POINTS = 600  # per run in the power plot; longer runs are averaged in time bins


def plot_energy_by_component(c: Comparison, path: str | os.PathLike, *, dpi: int = DEFAULT_DPI, fmt: str = "png") -> Path:
    """Stacked bars: energy per run by component; estimated parts hatched and paler; error bars
    on each component that has a band (the footprint's, else from the sensors' uncertainty)."""
    return save(figure_energy_by_component(c, dpi), Path(path), fmt)


def figure_energy_by_component(c: Comparison, dpi: int = DEFAULT_DPI) -> Any:
    """The figure of :func:`plot_energy_by_component`."""
    from matplotlib.patches import Patch

    runs, comps = c.runs, c.components or ["total"]
    unit, factor = energy_unit([r.report.energy_kwh for r in runs])
    width = min(16.0, max(6.5, 0.9 * len(runs) + 3.0))
    fig, ax = new_figure(width, 4.6, dpi, run_key(c))
    fixed = dict(zip(("gpu", "cpu", "ram"), colors(3)))  # the same colour for a component in every comparison
    others = [comp for comp in comps if comp not in fixed]
    palette = {**fixed, **dict(zip(others, colors(len(others) + 3)[3:]))}
    bottoms = [0.0] * len(runs)
    has_bars = False
    for comp in comps:
        for i, run in enumerate(runs):
            by_comp = run.energy_kwh_by_component() or {"total": run.report.energy_kwh or 0.0}
            value = by_comp.get(comp, 0.0) * factor
            estimated = c.measured.get(run.name, {}).get(comp) == "estimated"
            ax.bar(i, value, bottom=bottoms[i], color=palette[comp], alpha=0.5 if estimated else 1.0,
                   hatch="//" if estimated else None, edgecolor="black", linewidth=0.6)
            band = c.bands[run.name].components.get(comp)
            if band and value:
                top = bottoms[i] + value
                ax.errorbar(i, top, yerr=[[top - (bottoms[i] + band[0] * factor)], [(bottoms[i] + band[1] * factor) - top]],
                            fmt="none", ecolor="black", elinewidth=1.0, capsize=4)
                has_bars = True
            bottoms[i] += value
    for i, run in enumerate(runs):
        if run.report.status != "completed":
            ax.annotate(run.report.status, (i, bottoms[i]), ha="center", va="bottom", fontsize=8, color="red")
    ax.set_xticks(range(len(runs)), [tick_label(c, r) for r in runs], fontsize=8)
    ax.set_ylabel(f"energy ({unit}, before PUE)")
    title(ax, "Energy per run by component", width)
    handles = [Patch(facecolor=palette[comp], edgecolor="black", label=comp) for comp in comps]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="estimated"))
    if has_bars:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="black", marker="_", markersize=10, linestyle="-", label="uncertainty band"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.12)
    return fig


def _cost(c: Comparison, run_row: dict[str, Any]) -> float | None:
    return run_row.get(c.cost_figure)


def plot_pareto(c: Comparison, path: str | os.PathLike, *, dpi: int = DEFAULT_DPI, fmt: str = "png") -> Path | None:
    """Energy (or emissions; per sample when runs did different work) against the metric, the
    Pareto front joined. With repeats: each configuration's mean with std error bars (its runs
    faint behind); else each run with its uncertainty band. None when no run has the metric."""
    fig = figure_pareto(c, dpi)
    return None if fig is None else save(fig, Path(path), fmt)


def figure_pareto(c: Comparison, dpi: int = DEFAULT_DPI) -> Any:
    """The figure of :func:`plot_pareto`, or None."""
    cost = c.cost_figure
    rows = {r["run"]: r for r in c.rows}
    unit, factor = {"energy_kwh": energy_unit([r["energy_kwh"] for r in c.rows]),
                    "emissions_kg": emissions_unit([r["emissions_kg"] for r in c.rows]),
                    "energy_per_sample_j": ("J/sample", 1.0), "emissions_per_sample_g": ("g/sample", 1.0)}[cost]
    points = [(r, _cost(c, rows[r.name]), r.metric(c.metric)) for r in c.runs]
    points = [(r, x * factor, y) for r, x, y in points if isinstance(x, (int, float)) and y is not None]
    if not points:
        return None
    width = 7.5
    key = [f"{g.name}: " + (", ".join(f"{k}={c.display.get(k, {}).get(v, v)}" for k, v in g.config.items()) or "all runs")
           + f" ({g.n} run{'s' if g.n != 1 else ''}: {' '.join(r.name for r in g.runs)})" for g in c.groups] or run_key(c)
    fig, ax = new_figure(width, 4.8, dpi, key)
    if c.groups:
        scored = [g for g in c.groups if cost in g.stats and c.metric in g.stats]
        ax.scatter([p[1] for p in points], [p[2] for p in points], s=18, color="grey", alpha=0.45, label="single runs")
        front = sorted((g.stats[cost].mean * factor, g.stats[c.metric].mean) for g in scored if g.pareto)
        for g in scored:
            sx, sy = g.stats[cost], g.stats[c.metric]
            ax.errorbar(sx.mean * factor, sy.mean, xerr=(sx.std or 0) * factor, yerr=sy.std or 0, fmt="*" if g.pareto else "o",
                        markersize=13 if g.pareto else 7, color="tab:red" if g.pareto else "tab:blue",
                        mec="black", ecolor="black", elinewidth=0.8, capsize=3, zorder=3)
            ax.annotate(g.name + (" (baseline)" if c.baseline in g.runs else ""), (sx.mean * factor, sy.mean),
                        textcoords="offset points", xytext=(8, 6), fontsize=8)
        what = "configuration mean ± std over repeats"
    else:
        front = sorted((x, y) for r, x, y in points if r in c.pareto)
        for r, x, y in points:
            band = c.bands[r.name].energy_kwh if cost == "energy_kwh" else c.bands[r.name].emissions_kg if cost == "emissions_kg" else None
            xerr = [[x - band[0] * factor], [band[1] * factor - x]] if band else None
            style = (dict(fmt="*", markersize=14, color="tab:red") if r in c.pareto else
                     dict(fmt="X", markersize=8, color="grey") if r.report.status != "completed" else
                     dict(fmt="o", markersize=8, color="tab:blue"))
            ax.errorbar(x, y, xerr=xerr, mec="black", ecolor="black", elinewidth=0.8, capsize=3, zorder=3, **style)
            ax.annotate(short_name(c, r) + (" (baseline)" if r is c.baseline else ""), (x, y), textcoords="offset points",
                        xytext=(8, 6), fontsize=8)
        what = "runs with their uncertainty band" if any(c.bands[r.name].energy_kwh for r, _, _ in points) else "runs"
    if len(front) > 1:
        ax.step(*zip(*front), where="post", color="tab:red", alpha=0.6, label="Pareto front")
    goal = "higher" if c.maximize else "lower"
    ax.margins(x=0.2, y=0.15)
    ax.set_xlabel({"energy_kwh": f"energy ({unit}, before PUE)", "emissions_kg": f"emissions ({unit} CO2e)",
                   "energy_per_sample_j": "energy per training sample (J, before PUE)",
                   "emissions_per_sample_g": "emissions per training sample (g CO2e)"}[cost])
    ax.set_ylabel(f"{c.metric} ({goal} is better)")
    corner = "upper left" if c.maximize else "lower left"
    title(ax, f"{c.by.capitalize()} vs {c.metric} ({what}): best toward the {corner}; red stars: Pareto front", width)
    ax.grid(alpha=0.3)
    if len(front) > 1 or c.groups:
        ax.legend(fontsize=8, loc="best")
    return fig


def read_power_series(steps_csv: str | os.PathLike, max_points: int = _MAX_POINTS) -> tuple[list[float], list[float]]:
    """(seconds since the first step, watts) from a steps.csv: energy_j / duration_s per step,
    averaged (energy-weighted) in equal time bins when there are more than ``max_points`` steps."""
    import numpy as np

    with open(steps_csv, newline="") as handle:
        rows = [(float(r["start_s"]), float(r["end_s"]), float(r["energy_j"])) for r in csv.DictReader(handle)]
    data = np.array([r for r in rows if r[1] > r[0]], dtype=float).reshape(-1, 3)
    if not len(data):
        return [], []
    t0 = data[:, 0].min()
    mid, dur, energy = (data[:, 0] + data[:, 1]) / 2 - t0, data[:, 1] - data[:, 0], data[:, 2]
    if len(data) > max_points:
        edges = np.linspace(mid.min(), mid.max(), max_points + 1)
        which = np.clip(np.searchsorted(edges, mid, side="right") - 1, 0, max_points - 1)
        e, d = np.bincount(which, energy, max_points), np.bincount(which, dur, max_points)
        keep = d > 0
        return list((edges[:-1] + edges[1:])[keep] / 2), list(e[keep] / d[keep])
    return list(mid), list(energy / dur)


def plot_power_over_time(c: Comparison, path: str | os.PathLike, *, dpi: int = DEFAULT_DPI, fmt: str = "png") -> Path | None:
    """Power per run over time from each run's steps.csv; None when no run has one."""
    fig = figure_power_over_time(c, dpi)
    return None if fig is None else save(fig, Path(path), fmt)


def figure_power_over_time(c: Comparison, dpi: int = DEFAULT_DPI) -> Any:
    """The figure of :func:`plot_power_over_time`, or None."""
    series = []
    for run in c.runs:
        try:
            t, p = read_power_series(run.steps_path)
        except (OSError, KeyError, ValueError) as err:
            if run.steps_path.exists():
                print(f"lightning-green compare: skipped {run.steps_path}: {err}", file=sys.stderr)
            continue
        if t:
            series.append((run, t, p))
    if not series:
        return None
    width = 8.0
    fig, ax = new_figure(width, 4.4, dpi, run_key(c, [s[0] for s in series]))
    styles = ("-", "--", "-.", ":")
    for i, ((run, t, p), color) in enumerate(zip(series, colors(len(series)))):
        estimated = "measured" not in c.measured.get(run.name, {}).values()
        label = short_name(c, run) + (" (baseline)" if run is c.baseline else "") + (" [estimated]" if estimated else "")
        ax.plot(t, p, color=color, linewidth=1.5, linestyle=styles[i % len(styles)], label=label)
        ax.plot(t[-1], p[-1], marker="o", color=color)  # where the run's last step ended
    ax.set_xlabel("time since the first training step (s)")
    ax.set_ylim(0, max(max(p) for _, _, p in series) * 1.15 or 1.0)  # from 0: small wiggles stay small
    ax.set_ylabel("power (W) = step energy / step duration")
    title(ax, "Power during training steps (per-step energy is an approximation)", width)
    ax.grid(alpha=0.3)
    labels = ax.get_legend_handles_labels()[1]
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=legend_columns(labels, width),
              frameon=False)
    return fig


