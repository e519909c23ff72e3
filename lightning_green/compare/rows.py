"""The per-run rows of a comparison (the columns of ``comparison.csv``), units in the names.

Columns that no run can fill (optimizer steps, ranges, embodied emissions, water, cost,
what-if regions, the cleanest window) are left out rather than written empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_green.compare.footprints import Run, finite
from lightning_green.compare.whatif import cleanest_window_kg, region_kg

if TYPE_CHECKING:
    from lightning_green.compare.runs import Comparison

__all__ = ["build_rows", "pct"]

J_PER_KWH = 3.6e6


def pct(value: Any, base: Any) -> float | None:
    if not finite(value) or not finite(base) or base == 0:
        return None
    return (value - base) / base * 100.0


def _number(value: Any) -> float | None:
    return float(value) if finite(value) else None


def _per_sample(run: Run) -> tuple[float | None, float | None]:
    """(J per training sample, g CO2e per training sample)."""
    rep = run.report
    samples = int(rep.samples or 0)
    per_sample = _number(rep.energy_per_sample_j)
    if per_sample is None and samples and finite(rep.energy_kwh):
        per_sample = float(rep.energy_kwh) * J_PER_KWH / samples
    grams = float(rep.emissions_kg) * 1000.0 / samples if samples and finite(rep.emissions_kg) else None
    return per_sample, grams


def build_rows(c: Comparison, groups: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One dict per run of ``c.runs`` (``groups``: run name -> configuration name, when pooled)."""
    runs = c.runs
    any_opt = any(r.get("optimizer_steps") is not None for r in runs)
    any_band = any(c.bands[r.name].energy_kwh for r in runs)
    band_comps = [comp for comp in c.components if any(comp in c.bands[r.name].components for r in runs)]
    extras = [k for k in ("embodied_kg", "water_l", "energy_cost") if any(finite(r.get(k)) for r in runs)]
    windows = {r.name: cleanest_window_kg(r) for r in runs}
    base = c.baseline
    b_sample, b_grams = _per_sample(base) if base else (None, None)
    b_energy = base.report.energy_kwh if base else None
    b_emissions = base.report.emissions_kg if base else None
    b_metric = base.metric(c.metric) if base else None
    rows = []
    for run in runs:
        rep, bands = run.report, c.bands[run.name]
        comps = run.energy_kwh_by_component()
        per_sample, grams = _per_sample(run)
        value = run.metric(c.metric)
        row: dict[str, Any] = {"run": run.name}
        if groups is not None:
            row["group"] = groups[run.name]
        row.update({k: c.shown(k, run) for k in c.override_keys})
        row.update({"status": rep.status, "duration_s": _number(rep.duration_s), "samples": int(rep.samples or 0),
                    "batches": int(rep.steps or 0)})
        if any_opt:
            row["optimizer_steps"] = run.get("optimizer_steps")
        row["energy_kwh"] = _number(rep.energy_kwh)
        if any_band:
            row["energy_kwh_low"], row["energy_kwh_high"] = bands.energy_kwh or (None, None)
        for comp in c.components:
            row[f"{comp}_kwh"] = comps.get(comp)
            if comp in band_comps:
                row[f"{comp}_kwh_low"], row[f"{comp}_kwh_high"] = bands.components.get(comp, (None, None))
        row["energy_per_sample_j"] = per_sample
        row["emissions_kg"] = _number(rep.emissions_kg)
        if any_band:
            row["emissions_kg_low"], row["emissions_kg_high"] = bands.emissions_kg or (None, None)
        row["emissions_per_sample_g"] = grams
        for key in extras:
            row[key] = _number(run.get(key))
        if "energy_cost" in extras:
            row["currency"] = run.get("currency", "")
        if c.metric:
            row[c.metric] = value
        row.update({
            "carbon_intensity_g_per_kwh": _number(rep.carbon_intensity_g_per_kwh),
            "pue": _number(rep.pue),
            "energy_vs_baseline_pct": pct(rep.energy_kwh, b_energy),
            "emissions_vs_baseline_pct": pct(rep.emissions_kg, b_emissions),
            "energy_per_sample_vs_baseline_pct": pct(per_sample, b_sample),
            "emissions_per_sample_vs_baseline_pct": pct(grams, b_grams),
        })
        if c.metric:
            row[f"{c.metric}_vs_baseline"] = None if value is None or b_metric is None else value - b_metric
        for region in c.regions:
            row[f"emissions_kg_if_{region.label}"] = region_kg(run, region)
        if any(windows.values()):
            window = windows[run.name]
            row["emissions_kg_cleanest_window"], row["cleanest_window"] = window or (None, "")
        row.update({"baseline": False, "pareto": False, "flags": "", "path": str(run.path)})
        rows.append(row)
    return rows
