"""Shared pieces of the plots: a figure with a key panel, wrapped titles, saving as PNG or
SVG, short run names and the key that spells them out, legend columns that fit, colours.

matplotlib's home in the package (with the other modules of
:mod:`lightning_green.compare.plots`); imported inside the functions, drawn on the Agg canvas
(no pyplot, no display, no global backend switch).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_green.compare.runs import Comparison, Run

__all__ = ["DEFAULT_DPI", "FORMATS", "colors", "legend_columns", "new_figure", "run_key", "save", "short_name",
           "tick_label", "title"]

FORMATS = ("png", "svg")
DEFAULT_DPI = 150
_KEY_FONT = 7.5
_SHORT = 14  # longer run names are shown as #1, #2 ... with the key spelling them out


def new_figure(width_in: float, height_in: float, dpi: int, key: Sequence[str] = ()) -> tuple[Any, Any]:
    """(figure, main axes); with ``key`` lines, a text panel under the axes holding them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chars = int((width_in - 0.5) * 72 / (_KEY_FONT * 0.66))  # monospace: 0.60-0.63 em per character as drawn
    lines = [w for line in key for w in textwrap.wrap(line, chars, subsequent_indent="    ")]
    key_h = 0.17 * len(lines) + 0.25 if lines else 0.0
    fig = Figure(figsize=(width_in, height_in + key_h), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    if not lines:
        return fig, fig.add_subplot()
    grid = fig.add_gridspec(2, 1, height_ratios=[height_in, key_h])
    ax, key_ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    key_ax.axis("off")
    from matplotlib.transforms import blended_transform_factory

    where = blended_transform_factory(fig.transFigure, key_ax.transAxes)  # x from the figure's edge
    key_ax.text(0.2 / width_in, 1.0, "\n".join(lines), va="top", ha="left", fontsize=_KEY_FONT,
                family="monospace", transform=where)
    return fig, ax


def title(ax: Any, text: str, width_in: float, size: float = 10.0) -> None:
    """A title wrapped to the axes' width, so it is never cut off."""
    ax.set_title(textwrap.fill(text, int(width_in * 72 / (size * 0.55))), fontsize=size)


def save(fig: Any, path: Path, fmt: str) -> Path:
    """Write ``fig`` as ``path`` with the suffix of ``fmt``, atomically; SVG keeps text as text."""
    from matplotlib import rc_context

    from lightning_green.outputs.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format=fmt, dpi=fig.dpi, metadata={"Software": "lightning-green"} if fmt == "png" else None)
    return atomic_write_bytes(Path(path).with_suffix(f".{fmt}"), buffer.getvalue())


def short_name(c: Comparison, run: Run) -> str:
    """The run's name on a plot: its folder name when every name is short, else ``#1``, ``#2``..."""
    if all(len(r.name) <= _SHORT for r in c.runs):
        return run.name
    return f"#{c.runs.index(run) + 1}"


def run_key(c: Comparison, runs: Sequence[Run] | None = None) -> list[str]:
    """``"2: precision=bf16, pruning=heads"`` per run: the key under a plot; empty when the
    plot's names say everything (short names, no overrides)."""
    runs = list(runs or c.runs)
    renamed = any(short_name(c, r) != r.name for r in runs)
    if not c.override_keys and not renamed:
        return []
    lines = []
    for r in runs:
        name = f"{short_name(c, r)} = {r.name}" if renamed else r.name
        values = ", ".join(f"{k}={c.shown(k, r)}" for k in c.override_keys if k in r.overrides)
        lines.append(name + (f": {values}" if values else "") + (" (baseline)" if r is c.baseline else ""))
    return lines


def tick_label(c: Comparison, run: Run) -> str:
    """The run's short name, with its override values under it when they are short."""
    values = [c.shown(k, run) for k in c.override_keys if k in run.overrides]
    short = values and all(len(v) <= 12 for v in values) and len(values) <= 3
    return short_name(c, run) + ("\n" + "\n".join(values) if short else "") + ("\n(baseline)" if run is c.baseline else "")


def legend_columns(labels: Sequence[str], width_in: float, size: float = 8.0) -> int:
    """As many legend columns as fit in ``width_in`` for these labels."""
    chars = (width_in - 0.5) * 72 / (size * 0.6)
    return max(1, min(len(labels), int(chars // (max(map(len, labels), default=1) + 6))))


def colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


