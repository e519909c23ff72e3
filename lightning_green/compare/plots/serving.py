"""Serving plots: energy per 1,000 predictions against prediction accuracy (Pareto), and
the lifetime energy of each variant (training + predictions) with its break-even point.
Helpers (figure, key, save) come from :mod:`lightning_green.compare.plots.base`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_green.compare.runs import Comparison

__all__ = ["plot_break_even", "plot_serving_pareto"]


def _key(c: Comparison) -> list[str]:
    s = c.serving
    lines = []
    for r in s.rows:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items() if v != "")
        trained = f"; trained in {r.training.name}" if r.training is not None and r.training is not r.run else ""
        lines.append(f"{r.run.name}: {settings or 'serving run'}{trained}" + (" (serving baseline)" if r is s.baseline else ""))
    return lines


def plot_serving_pareto(c: Comparison, path: str | os.PathLike, *, dpi: int, fmt: str) -> Path | None:
    """J per 1,000 predictions against the prediction metric; None without both."""
    from lightning_green.compare.plots.base import new_figure, save, title

    s = c.serving
    if s is None or s.metric is None:
        return None
    points = [r for r in s.rows if r.metric is not None]
    if not points:
        return None
    width = 7.5
    fig, ax = new_figure(width, 4.6, dpi, _key(c))
    for r in points:
        style = dict(marker="*", s=220, color="tab:red") if r.pareto else dict(marker="o", s=70, color="tab:blue")
        ax.scatter(r.j_per_1k, r.metric, edgecolors="black", zorder=3, **style)
        ax.annotate(r.run.name + (" (baseline)" if r is s.baseline else ""), (r.j_per_1k, r.metric),
                    textcoords="offset points", xytext=(8, 6), fontsize=8)
    front = sorted((r.j_per_1k, r.metric) for r in points if r.pareto)
    if front:
        ax.step(*zip(*front), where="post", color="tab:red", alpha=0.6, label="Pareto front")
        ax.legend(fontsize=8, loc="best")
    ax.margins(x=0.2, y=0.15)
    ax.set_xlabel("energy per 1,000 predictions (J, predict phase)")
    goal = "higher" if s.maximize else "lower"
    ax.set_ylabel(f"{s.metric} ({goal} is better)")
    title(ax, f"Serving: energy per 1,000 predictions vs {s.metric}; red stars: Pareto front", width)
    ax.grid(alpha=0.3)
    return save(fig, Path(path), fmt)


def plot_break_even(c: Comparison, path: str | os.PathLike, *, dpi: int, fmt: str) -> Path | None:
    """Energy over a model's life, training + N x energy per prediction, for each variant
    paired with its training run; break-even points marked. None with fewer than two."""
    from lightning_green.compare.plots.base import colors, new_figure, save, title
    from lightning_green.compare.table import energy_unit

    s = c.serving
    rows = [r for r in s.rows if r.training_kwh is not None] if s else []
    if len(rows) < 2:
        return None
    crossings = [r.break_even.predictions for r in rows
                 if r.break_even and r.break_even.kind in ("after", "until") and r.break_even.predictions]
    n_max = 2.0 * max(crossings) if crossings else 10 * max(r.predictions for r in rows)
    unit, factor = energy_unit([r.training_kwh + n_max * r.j_per_1k / 1000 / 3.6e6 for r in rows])
    width = 7.5
    fig, ax = new_figure(width, 4.6, dpi, _key(c))
    base = s.baseline
    for r, color in zip(rows, colors(len(rows))):
        start = r.training_kwh * factor
        end = (r.training_kwh + n_max * r.j_per_1k / 1000 / 3.6e6) * factor
        ax.plot([0, n_max], [start, end], color=color, linewidth=1.6, label=r.run.name + (" (baseline)" if r is base else ""))
        be: Any = r.break_even
        if be and be.kind in ("after", "until") and be.predictions:
            y = (r.training_kwh + be.predictions * r.j_per_1k / 1000 / 3.6e6) * factor
            ax.plot(be.predictions, y, marker="o", color=color, mec="black", zorder=3)
            ax.annotate(f"{be.predictions:,.0f}", (be.predictions, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlim(0, n_max)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("predictions served")
    ax.set_ylabel(f"training + serving energy ({unit})")
    title(ax, "Energy over the model's life: where a cheaper-to-serve variant pays back its training", width)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, Path(path), fmt)
