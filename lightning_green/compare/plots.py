"""Compare runs: a table (CSV + Markdown), plots (PNG) and the ``lightning-green compare`` verb.

The loading, deltas, Pareto front and fairness flags are in
:mod:`lightning_green.compare.runs` (re-exported here); this module writes files and is the
only home of matplotlib, imported lazily inside the plotting functions and drawn with the
Agg canvas (no pyplot, no display, no global backend switch).

Example::

    from lightning_green.compare.plots import compare, load_runs, write_plots, write_table

    comparison = compare(load_runs(["multirun/2025-01-01/12-00-00"]), metric="val/acc")
    csv_path, md_path = write_table(comparison, "out", plots=write_plots(comparison, "out"))

Or from a shell: ``lightning-green compare multirun/2025-01-01/12-00-00 --by emissions``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_green.compare.table import CSV_NAME, MD_NAME, emissions_unit, energy_unit, write_table
from lightning_green.compare.runs import (
    BYS,
    METRIC_MODES,
    Comparison,
    Run,
    choose_baseline,
    choose_metric,
    compare,
    load_runs,
    metric_maximized,
    pareto_front,
)
from lightning_green.compare.fairness import Flag, fairness_flags

__all__ = [
    "Comparison", "Flag", "Run", "choose_baseline", "choose_metric", "compare", "fairness_flags",
    "load_runs", "main", "metric_maximized", "pareto_front", "plot_energy_by_component",
    "plot_pareto", "plot_power_over_time", "read_power_series", "write_plots", "write_table",
]

COMPONENTS_PNG, POWER_PNG = "energy_by_component.png", "power_over_time.png"
_MAX_POINTS = 600  # per run in the power plot; longer runs are averaged in time bins


def pareto_png_name(by: str) -> str:
    return f"pareto_{by}.png"


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    from lightning_green.outputs.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def _short_label(run: Run, comparison: Comparison) -> str:
    """``"2: bf16, heads"``: the job and the values of the distinguishing overrides."""
    values = [run.overrides[k] for k in comparison.override_keys if k in run.overrides]
    return f"{run.name}: {', '.join(values)}" if values else run.name


def _label(run: Run, comparison: Comparison) -> str:
    parts = [f"{k}={run.overrides[k]}" for k in comparison.override_keys if k in run.overrides]
    text = "\n".join(parts) or run.name
    return text + ("\n(baseline)" if run is comparison.baseline else "")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_energy_by_component(comparison: Comparison, path: str | os.PathLike) -> Path:
    """Stacked bars: energy per run by component; estimated parts hatched and paler."""
    from matplotlib.patches import Patch

    runs, comps = comparison.runs, comparison.components or ["total"]
    unit, factor = energy_unit([r.report.energy_kwh for r in runs])
    fig = _figure(max(6.0, 1.1 * len(runs) + 2.5), 4.8)
    ax = fig.add_subplot()
    colors = dict(zip(comps, _colors(len(comps))))
    bottoms = [0.0] * len(runs)
    for comp in comps:
        for i, run in enumerate(runs):
            by_comp = run.energy_kwh_by_component() or {"total": run.report.energy_kwh or 0.0}
            value = by_comp.get(comp, 0.0) * factor
            estimated = comparison.measured.get(run.name, {}).get(comp) == "estimated"
            ax.bar(i, value, bottom=bottoms[i], color=colors[comp], alpha=0.5 if estimated else 1.0,
                   hatch="//" if estimated else None, edgecolor="black", linewidth=0.6)
            bottoms[i] += value
    for i, run in enumerate(runs):
        if run.report.status != "completed":
            ax.annotate(run.report.status, (i, bottoms[i]), ha="center", va="bottom", fontsize=8, color="red")
    ax.set_xticks(range(len(runs)), [_label(r, comparison) for r in runs], fontsize=8)
    ax.set_ylabel(f"energy ({unit}, before PUE)")
    ax.set_title("Energy per run by component")
    handles = [Patch(facecolor=colors[c], edgecolor="black", label=c) for c in comps]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="estimated (hatched)"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def plot_pareto(comparison: Comparison, path: str | os.PathLike) -> Path | None:
    """Energy (or emissions) against the validation metric, Pareto front joined and marked.

    Returns None (nothing written) when no run has the metric.
    """
    c = comparison
    key = "energy_kwh" if c.by == "energy" else "emissions_kg"
    unit, factor = (energy_unit if c.by == "energy" else emissions_unit)([getattr(r.report, key) for r in c.runs])
    points = [(r, getattr(r.report, key), r.metric(c.metric)) for r in c.runs]
    points = [(r, x * factor, y) for r, x, y in points if isinstance(x, (int, float)) and y is not None]
    if not points:
        return None
    fig = _figure(7.0, 4.8)
    ax = fig.add_subplot()
    front = sorted(((x, y) for r, x, y in points if r in c.pareto))
    if front:
        ax.step(*zip(*front), where="post", color="tab:red", alpha=0.6, label="Pareto front")
    for label, members, style in (
        ("Pareto-optimal", [p for p in points if p[0] in c.pareto], dict(marker="*", s=220, color="tab:red")),
        ("dominated", [p for p in points if p[0] not in c.pareto and p[0].report.status == "completed"],
         dict(marker="o", s=70, color="tab:blue")),
        ("not completed", [p for p in points if p[0].report.status != "completed"],
         dict(marker="X", s=70, color="grey")),
    ):
        if members:
            ax.scatter([p[1] for p in members], [p[2] for p in members], label=label, edgecolors="black", zorder=3, **style)
    for i, (run, x, y) in enumerate(sorted(points, key=lambda p: (p[1], p[2]))):
        ax.annotate(_short_label(run, c) + (" (baseline)" if run is c.baseline else ""), (x, y),
                    textcoords="offset points", xytext=(7, 5 if i % 2 else -11), fontsize=8)
    goal = "higher" if c.maximize else "lower"
    ax.margins(x=0.25, y=0.12)
    ax.set_xlabel(f"{c.by} ({unit})" + (" before PUE" if c.by == "energy" else ""))
    ax.set_ylabel(f"{c.metric} ({goal} is better)")
    keys = ", ".join(c.override_keys)
    ax.set_title(f"{c.by.capitalize()} vs {c.metric}: best runs lie toward the " + ("upper left" if c.maximize else "lower left")
                 + (f"\nlabels: run: {keys}" if keys else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


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


def plot_power_over_time(comparison: Comparison, path: str | os.PathLike) -> Path | None:
    """Power per run over time from each run's steps.csv; None when no run has one."""
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    drawn, top_w = 0, 0.0
    styles = ("-", "--", "-.", ":")
    for i, (run, color) in enumerate(zip(comparison.runs, _colors(len(comparison.runs)))):
        try:
            t, p = read_power_series(run.steps_path)
        except (OSError, KeyError, ValueError) as err:
            if run.steps_path.exists():
                print(f"lightning-green compare: skipped {run.steps_path}: {err}", file=sys.stderr)
            continue
        if t:
            estimated = "measured" not in comparison.measured.get(run.name, {}).values()
            label = _label(run, comparison).replace("\n", " ") + (" [estimated]" if estimated else "")
            ax.plot(t, p, color=color, linewidth=1.6, linestyle=styles[i % len(styles)], label=label)
            ax.plot(t[-1], p[-1], marker="o", color=color)  # where the run's last step ended
            drawn, top_w = drawn + 1, max(top_w, max(p))
    if not drawn:
        return None
    ax.set_xlabel("time since the first training step (s)")
    ax.set_ylim(0, top_w * 1.15 or 1.0)  # from 0: small wiggles must not look like large swings
    ax.set_ylabel("power (W) = step energy / step duration")
    ax.set_title("Power during training steps (per-step energy is an approximation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, Path(path))


def write_plots(comparison: Comparison, out_dir: str | os.PathLike) -> list[Path]:
    """Write the three PNGs that apply (bars always; Pareto with a metric; power with steps.csv)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_energy_by_component(comparison, out / COMPONENTS_PNG),
        plot_pareto(comparison, out / pareto_png_name(comparison.by)),
        plot_power_over_time(comparison, out / POWER_PNG),
    ]
    return [p for p in written if p is not None]


def default_out_dir(paths: Sequence[str | os.PathLike]) -> Path:
    """Beside the runs: the folder given, or the deepest folder holding every path given."""
    folders = [Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def run_comparison(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None, *,
                   metric: str | None = None, by: str = "energy", baseline: str | None = None,
                   metric_mode: str = "auto", plots: bool = True) -> Comparison | None:
    """Load, compare and write everything; None (with a message on stderr) when no run is found."""
    runs = load_runs(paths)
    if not runs:
        shown = " ".join(str(p) for p in paths)
        print(f"lightning-green compare: no readable footprint.json under {shown}", file=sys.stderr)
        return None
    comparison = compare(runs, baseline=baseline, metric=metric, by=by, metric_mode=metric_mode)
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    written = write_plots(comparison, out) if plots else []
    write_table(comparison, out, plots=written)
    return comparison


def main(argv: Sequence[str] | None = None) -> int:
    """``lightning-green compare DIR [DIR ...]``: print the table; write CSV, Markdown, PNGs."""
    parser = argparse.ArgumentParser(prog="lightning-green compare", description=(
        "Compare the footprints (footprint.json) found under the given folders: a table with "
        "deltas against a baseline, a Pareto front and fairness notes."))
    parser.add_argument("paths", nargs="+", help="run folders, sweep folders or footprint.json files")
    parser.add_argument("--out", help="output folder (default: beside the runs)")
    parser.add_argument("--metric", help="main validation metric (default: first of val/acc, val_acc, val/f1, ...)")
    parser.add_argument("--metric-mode", choices=METRIC_MODES, default="auto",
                        help="is the metric maximised or minimised (auto: loss-like names are minimised)")
    parser.add_argument("--by", choices=BYS, default="energy", help="cost axis of the Pareto front")
    parser.add_argument("--baseline", help="baseline run: folder name or overrides, e.g. 'precision=32 pruning=none'")
    parser.add_argument("--no-plots", action="store_true", help="write only comparison.csv and comparison.md")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    out = Path(args.out) if args.out else default_out_dir(args.paths)
    try:
        comparison = run_comparison(args.paths, out, metric=args.metric, by=args.by, baseline=args.baseline,
                                    metric_mode=args.metric_mode, plots=not args.no_plots)
    except ValueError as err:  # a --baseline that names no run
        print(f"lightning-green compare: {err}", file=sys.stderr)
        return 2
    if comparison is None:
        return 1
    print((out / MD_NAME).read_text(), end="")
    print(f"\nWritten to {out}: {CSV_NAME}, {MD_NAME}" + ("" if args.no_plots else " and the plots"))
    return 0
