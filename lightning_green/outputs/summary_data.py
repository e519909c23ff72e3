"""The figures of a footprint for programs: ``lightning-green show --json`` (:func:`summary_dict`)
and the predict-phase figures both it and the summary text use (:func:`serving_figures`).

Fields newer than a report class are read from the report when it has them, else from
``fields`` (the footprint's JSON as written), else taken as absent (:class:`Fields`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_green.outputs.footprint import FootprintReport

__all__ = ["SHOW_SCHEMA", "Fields", "finite", "pair", "serving_figures", "summary_dict"]

SHOW_SCHEMA = "lightning-green/show/1"
J_PER_KWH = 3.6e6


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(finite(v) for v in value):
        return float(min(value)), float(max(value))
    return None


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, (dict, list, str)) and not value) or (finite(value) and value == 0)


class Fields:
    """The report's attribute, else the file's key, else None."""

    def __init__(self, report: Any, fields: Mapping[str, Any] | None) -> None:
        self.report, self.fields = report, fields or {}

    def __call__(self, name: str, default: Any = None) -> Any:
        value = getattr(self.report, name, None)
        if _unset(value):  # a report class's default (None, {}, 0) defers to the file
            value = self.fields.get(name, value)
        return default if value is None else value


def serving_figures(report: Any, fields: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Predict-phase figures: predictions, batches, tokens, padded tokens, energy (kWh), J per
    1,000 predictions, J per real and per padded token; None without counted predictions."""
    get = Fields(report, fields)
    work = get("work_by_phase", {}).get("predict") if isinstance(get("work_by_phase", {}), Mapping) else None
    energy_kwh = (report.energy_kwh_by_phase or {}).get("predict")
    if not isinstance(work, Mapping) or not finite(energy_kwh) or not work.get("samples"):
        return None
    joules = float(energy_kwh) * J_PER_KWH
    tokens, padded = int(work.get("tokens") or 0), int(work.get("padded_tokens") or 0)
    return {
        "predictions": int(work["samples"]), "batches": int(work.get("batches") or 0), "tokens": tokens,
        "padded_tokens": padded, "energy_kwh": float(energy_kwh),
        "energy_per_1k_predictions_j": joules / int(work["samples"]) * 1000.0,
        "energy_per_token_j": joules / tokens if tokens else None,
        "energy_per_padded_token_j": joules / padded if padded else None,
    }


def _num(value: Any) -> float | None:
    return float(value) if finite(value) else None


def summary_dict(report: FootprintReport, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The figures of ``lightning-green show --json``: every key always present (None when the
    footprint lacks it), energy in kWh, mass in kg, time in s; schema ``lightning-green/show/1``."""
    r, get = report, Fields(report, fields)
    comp_bands = get("energy_kwh_by_component_range", {})
    optimizer_steps = get("optimizer_steps")
    return {
        "schema": SHOW_SCHEMA,
        "run_id": r.run_id or None,
        "status": r.status,
        "running": r.status == "running",
        "snapshot_at": get("snapshot_at"),
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration_s": _num(r.duration_s),
        "energy_kwh": _num(r.energy_kwh),
        "energy_kwh_range": list(b) if (b := pair(get("energy_kwh_range"))) else None,
        "energy_kwh_by_component": {k: _num(v) for k, v in r.energy_kwh_by_component.items()},
        "energy_kwh_by_component_range": {str(k): list(p) for k, v in comp_bands.items() if (p := pair(v))}
        if isinstance(comp_bands, Mapping) else {},
        "energy_kwh_by_phase": {k: _num(v) for k, v in r.energy_kwh_by_phase.items()},
        "energy_kwh_measured": _num(r.energy_kwh_measured),
        "energy_kwh_estimated": _num(r.energy_kwh_estimated),
        "facility_energy_kwh": _num(r.facility_energy_kwh),
        "pue": _num(r.pue),
        "emissions_kg": _num(r.emissions_kg),
        "emissions_kg_range": list(b) if (b := pair(get("emissions_kg_range"))) else None,
        "carbon_intensity_g_per_kwh": _num(r.carbon_intensity_g_per_kwh),
        "carbon_intensity_source": r.carbon_intensity_source or None,
        "embodied_kg": _num(get("embodied_kg")),
        "water_l": _num(get("water_l")),
        "energy_cost": _num(get("energy_cost")),
        "currency": get("currency"),
        "samples": r.samples,
        "batches": r.steps,
        "optimizer_steps": optimizer_steps if isinstance(optimizer_steps, int) else None,
        "epochs": r.epochs,
        "tokens": r.tokens,
        "energy_per_sample_j": _num(r.energy_per_sample_j),
        "energy_per_token_j": _num(r.energy_per_token_j),
        "serving": serving_figures(r, fields),
        "metrics": {k: _num(v) for k, v in (r.metrics or {}).items()},
        "sensors": [{"name": s.get("name"), "component": s.get("component"), "measured": bool(s.get("measured")),
                     "method": s.get("method")} for s in r.sensors if isinstance(s, Mapping)],
        "warnings": list(r.warnings),
    }
