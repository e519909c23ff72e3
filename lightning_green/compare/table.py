"""The comparison as files: ``comparison.csv`` (full precision) and ``comparison.md``.

The CSV keeps the units of its column names (``_kwh``, ``_kg``, ``_j``, ``_s``, ``_pct``);
the Markdown picks one readable unit per column (J, Wh or kWh; g or kg), marks estimated
components with ``~``, numbers the fairness notes and embeds the plots given.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_green.compare.runs import Comparison

__all__ = ["CSV_NAME", "MD_NAME", "emissions_unit", "energy_unit", "write_table"]

CSV_NAME, MD_NAME = "comparison.csv", "comparison.md"


def energy_unit(values_kwh: Sequence[Any]) -> tuple[str, float]:
    """A display unit (label, factor from kWh) that keeps the largest value readable."""
    top = max((abs(v) for v in values_kwh if isinstance(v, (int, float))), default=0.0)
    return ("kWh", 1.0) if top >= 1.0 else ("Wh", 1e3) if top >= 1e-5 else ("J", 3.6e6)


def emissions_unit(values_kg: Sequence[Any]) -> tuple[str, float]:
    top = max((abs(v) for v in values_kg if isinstance(v, (int, float))), default=0.0)
    return ("kg", 1.0) if top >= 1.0 else ("g", 1e3)


def _fmt(value: Any, factor: float = 1.0, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, (int, float)):
        return format(value * factor, spec)
    return str(value).replace("|", "\\|")


def _render_markdown(comparison: Comparison, plots: Sequence[Path]) -> str:
    c, rows = comparison, comparison.rows
    e_unit, e_factor = energy_unit([r["energy_kwh"] for r in rows])
    g_unit, g_factor = emissions_unit([r["emissions_kg"] for r in rows])
    refs = {f: i for i, f in enumerate(c.flags, 1)}
    head = ["run", *c.override_keys, "status", "duration (s)", f"energy ({e_unit})",
            *(f"{comp} ({e_unit})" for comp in c.components), "J/sample", f"CO2 ({g_unit})"]
    head += [c.metric] if c.metric else []
    head += ["g/kWh", "PUE", "energy vs base", "CO2 vs base"]
    head += [f"{c.metric} vs base"] if c.metric else []
    head += ["Pareto", "notes"]
    lines = ["| " + " | ".join(_fmt(h) for h in head) + " |", "|" + "---|" * len(head)]
    for run, row in zip(c.runs, rows):
        measured = c.measured.get(run.name, {})
        cells = [row["run"], *(row[k] for k in c.override_keys), row["status"], _fmt(row["duration_s"], spec=".1f"),
                 _fmt(row["energy_kwh"], e_factor)]
        cells += [("~" if measured.get(comp) == "estimated" else "") + _fmt(row[f"{comp}_kwh"], e_factor)
                  for comp in c.components]
        cells += [_fmt(row["energy_per_sample_j"]), _fmt(row["emissions_kg"], g_factor)]
        cells += [_fmt(row[c.metric])] if c.metric else []
        cells += [_fmt(row["carbon_intensity_g_per_kwh"], spec="g"), _fmt(row["pue"], spec="g")]
        deltas = ["energy_vs_baseline_pct", "emissions_vs_baseline_pct"]
        if row["baseline"]:
            cells += ["baseline"] * (len(deltas) + bool(c.metric))
        else:
            cells += [_fmt(row[d], spec="+.1f") + ("%" if row[d] is not None else "") for d in deltas]
            cells += [_fmt(row[f"{c.metric}_vs_baseline"], spec="+.4g")] if c.metric else []
        cells += [_fmt(row["pareto"]), " ".join(f"[{i}]" for f, i in refs.items() if run.name in f.runs)]
        lines.append("| " + " | ".join(_fmt(x) for x in cells) + " |")
    base = c.baseline
    text = [f"# Energy comparison of {len(c.runs)} runs", ""]
    if base:
        shown = " ".join(f"{k}={v}" for k, v in base.overrides.items() if k in c.override_keys)
        text.append(f"Baseline: run `{base.name}`" + (f" ({shown})" if shown else "") + ".")
    if c.metric:
        goal = "highest" if c.maximize else "lowest"
        front = ", ".join(f"`{r.name}`" for r in c.pareto) or "none"
        text.append(f"Pareto front (least {c.by}, {goal} {c.metric}; completed runs only): {front}.")
    else:
        text.append("No validation metric found in the footprints: no Pareto front (use --metric).")
    text += ["", *lines, "",
             f"Energy is IT energy before PUE, in {e_unit}; CO2 = energy x PUE x carbon intensity. "
             "`~` marks an estimated component (a model, not a hardware reading).", ""]
    text += ["## Fairness notes", ""]
    text += [f"{i}. **{f.kind}**: {f.message}." for f, i in refs.items()] or ["None found: no overlapping runs, no incomplete runs, same sensor kinds and carbon settings."]
    if plots:
        text += ["", "## Plots", ""] + [f"![{p.stem.replace('_', ' ')}]({p.name})" for p in plots]
    return "\n".join(text) + "\n"


def write_table(comparison: Comparison, out_dir: str | os.PathLike, *, plots: Sequence[Path] = ()) -> tuple[Path, Path]:
    """Write ``comparison.csv`` (full precision, kWh/kg/J/s) and ``comparison.md``.

    Args:
        comparison: From :func:`compare`.
        out_dir: Folder for both files (created if missing).
        plots: PNG files to embed in the Markdown (paths in or under ``out_dir``).

    Returns:
        (csv_path, md_path)
    """
    from lightning_green.outputs.footprint import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=comparison.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in comparison.rows)
    csv_path, md_path = out / CSV_NAME, out / MD_NAME
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(md_path, _render_markdown(comparison, [Path(p) for p in plots]))
    return csv_path, md_path
