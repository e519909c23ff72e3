"""The comparison as files: CSV tables (full precision) and ``comparison.md``.

* ``comparison.csv``: one row per run (:mod:`lightning_green.compare.rows`); units in the
  column names (``_kwh``, ``_kg``, ``_j``, ``_g``, ``_s``, ``_pct``).
* ``comparison_groups.csv``: one row per configuration when some configuration repeats:
  ``<figure>_mean``, ``_std``, ``_min``, ``_max``, ``runs`` (count), differences from the
  baseline configuration and ``within_noise``.
* ``serving.csv``: one row per serving run: predictions, tokens, J per 1,000 predictions,
  the prediction metric, the paired training run and the break-even.

The Markdown (:mod:`lightning_green.compare.markdown`) picks one readable unit per column.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_green.compare.runs import Comparison

__all__ = ["CSV_NAME", "GROUPS_CSV_NAME", "MD_NAME", "SERVING_CSV_NAME", "emissions_unit", "energy_unit",
           "group_rows", "serving_rows", "write_table"]

CSV_NAME, MD_NAME = "comparison.csv", "comparison.md"
GROUPS_CSV_NAME, SERVING_CSV_NAME = "comparison_groups.csv", "serving.csv"


def energy_unit(values_kwh: Sequence[Any]) -> tuple[str, float]:
    """A display unit (label, factor from kWh) that keeps the largest value readable."""
    top = max((abs(v) for v in values_kwh if isinstance(v, (int, float))), default=0.0)
    return ("kWh", 1.0) if top >= 1.0 else ("Wh", 1e3) if top >= 1e-5 else ("J", 3.6e6)


def emissions_unit(values_kg: Sequence[Any]) -> tuple[str, float]:
    top = max((abs(v) for v in values_kg if isinstance(v, (int, float))), default=0.0)
    return ("kg", 1.0) if top >= 1.0 else ("g", 1e3)


def group_rows(c: Comparison) -> list[dict[str, Any]]:
    """CSV-ready rows of ``c.groups`` (empty without repeats)."""
    rows = []
    for group in c.groups:
        row: dict[str, Any] = {"group": group.name, **{k: c.display.get(k, {}).get(v, v) for k, v in group.config.items()},
                               "runs": group.n, "run_names": " ".join(r.name for r in group.runs)}
        for name in ("duration_s", "energy_kwh", "energy_per_sample_j", "emissions_kg", "emissions_per_sample_g",
                     *([c.metric] if c.metric else [])):
            stat = group.stats.get(name)
            for part in ("mean", "std", "min", "max"):
                attr = {"min": "low", "max": "high"}.get(part, part)
                row[f"{name}_{part}"] = getattr(stat, attr) if stat else None
        for name, diff in group.vs_baseline.items():
            row[f"{name}_vs_baseline"] = diff
            row[f"{name}_noise"] = group.noise.get(name)
        row["within_noise"] = ";".join(group.within_noise)
        row["baseline"] = c.baseline in group.runs
        row["pareto"] = group.pareto
        rows.append(row)
    return rows


def serving_rows(c: Comparison) -> list[dict[str, Any]]:
    """CSV-ready rows of the serving table (empty without serving runs)."""
    s = c.serving
    if s is None:
        return []
    rows = []
    for r in s.rows:
        be = r.break_even
        rows.append({
            "run": r.run.name, **r.settings, "status": r.run.report.status, "predictions": r.predictions,
            "batches": r.batches, "tokens": r.tokens, "padded_tokens": r.padded_tokens, "predict_energy_kwh": r.energy_kwh,
            "energy_per_1k_predictions_j": r.j_per_1k, "energy_per_token_j": r.j_per_token,
            "energy_per_padded_token_j": r.j_per_padded_token, **({s.metric: r.metric} if s.metric else {}),
            "training_run": r.training.name if r.training else "", "pairing": r.pairing,
            "training_energy_kwh": r.training_kwh,
            "break_even": be.kind if be else "", "break_even_predictions": be.predictions if be else None,
            "extra_training_j": be.extra_training_j if be and be.kind != "baseline" else None,
            "saving_per_prediction_j": be.saving_j_per_prediction if be and be.kind != "baseline" else None,
            "baseline": r is s.baseline, "pareto": r.pareto, "path": str(r.run.path),
        })
    return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row.get(k)) for k in columns} for row in rows)
    return buffer.getvalue()


def write_table(comparison: Comparison, out_dir: str | os.PathLike, *, plots: Sequence[Path] = ()) -> tuple[Path, Path]:
    """Write ``comparison.csv`` and ``comparison.md`` (and ``comparison_groups.csv`` with
    repeats, ``serving.csv`` with serving runs; stale ones from an earlier call are removed).

    Args:
        comparison: From :func:`~lightning_green.compare.runs.compare`.
        out_dir: Folder for the files (created if missing).
        plots: Plot files to embed in the Markdown (paths in or under ``out_dir``).

    Returns:
        (csv_path, md_path)
    """
    from lightning_green.compare.markdown import render_markdown
    from lightning_green.outputs.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / CSV_NAME, out / MD_NAME
    atomic_write_text(csv_path, _csv_text(comparison.rows) if comparison.rows else "run\n")
    for name, rows in ((GROUPS_CSV_NAME, group_rows(comparison)), (SERVING_CSV_NAME, serving_rows(comparison))):
        if rows:
            atomic_write_text(out / name, _csv_text(rows))
        elif (out / name).is_file():
            (out / name).unlink()
    atomic_write_text(md_path, render_markdown(comparison, [Path(p) for p in plots]))
    return csv_path, md_path
