"""Low-high bands of a run's energy and emissions, for the table and the plots' error bars.

Where they come from, first found wins:

1. The footprint's own ranges: ``energy_kwh_range``, ``energy_kwh_by_component_range`` and
   ``emissions_kg_range`` (``[low, high]``), written from each sensor's stated uncertainty.
2. Else the sensors' stated uncertainty (``uncertainty_rel``, a fraction of the energy, and
   ``uncertainty_w``, a floor in W): a component's band is +-max(rel x E, W x T) over the
   run's duration T, with rel the largest and W the sum over the component's sensors; the
   total's band is the sum of the components' (estimates share their errors, so they are not
   assumed to cancel); emissions scale with energy (emissions / energy of the run).
3. Else none: a footprint written before sensors stated their uncertainty has no band, and
   the table says so rather than inventing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning_green.compare.footprints import Run, finite

__all__ = ["Bands", "run_bands"]

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Bands:
    """(low, high) of a run's energy (kWh), per component (kWh) and emissions (kg); ``source``
    says where they came from: ``"footprint"``, ``"sensors"`` or ``""`` (none)."""

    energy_kwh: tuple[float, float] | None = None
    components: dict[str, tuple[float, float]] = field(default_factory=dict)
    emissions_kg: tuple[float, float] | None = None
    source: str = ""


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(finite(v) for v in value):
        low, high = float(value[0]), float(value[1])
        return (low, high) if low <= high else (high, low)
    return None


def _from_sensors(run: Run) -> tuple[dict[str, tuple[float, float]], set[str]]:
    """Per component band from the sensors' uncertainty fields; and the components without any."""
    duration_s = float(run.report.duration_s) if finite(run.report.duration_s) else 0.0
    stated: dict[str, tuple[float, float]] = {}  # component -> (largest rel, sum of W floors)
    for sensor in run.report.sensors or []:
        if not isinstance(sensor, Mapping) or "component" not in sensor:
            continue
        rel, floor_w = sensor.get("uncertainty_rel"), sensor.get("uncertainty_w")
        if not (finite(rel) or finite(floor_w)):
            continue
        comp = str(sensor["component"])
        r0, w0 = stated.get(comp, (0.0, 0.0))
        stated[comp] = (max(r0, float(rel) if finite(rel) else 0.0), w0 + (float(floor_w) if finite(floor_w) else 0.0))
    bands, missing = {}, set()
    for comp, kwh in run.energy_kwh_by_component().items():
        if comp not in stated:
            missing.add(comp)
            continue
        rel, floor_w = stated[comp]
        half = max(rel * kwh, floor_w * duration_s / J_PER_KWH)
        bands[comp] = (max(0.0, kwh - half), kwh + half)
    return bands, missing


def run_bands(run: Run) -> Bands:
    """The run's bands (see the module docstring for the order of sources)."""
    energy = _pair(run.get("energy_kwh_range"))
    by_comp_raw = run.get("energy_kwh_by_component_range", {})
    components = {str(c): p for c, v in by_comp_raw.items() if (p := _pair(v))} if isinstance(by_comp_raw, Mapping) else {}
    emissions = _pair(run.get("emissions_kg_range"))
    source = "footprint" if energy or components or emissions else ""
    if not components:
        components, missing = _from_sensors(run)
        if components and not missing and energy is None:
            total = float(run.report.energy_kwh)
            below = sum(v - lo for comp, (lo, hi) in components.items() for v in [run.energy_kwh_by_component()[comp]])
            above = sum(hi - run.energy_kwh_by_component()[comp] for comp, (lo, hi) in components.items())
            energy = (max(0.0, total - below), total + above)
        source = source or ("sensors" if components else "")
    if emissions is None and energy is not None:
        kwh, kg = run.report.energy_kwh, run.report.emissions_kg
        if finite(kwh) and finite(kg) and kwh > 0:
            emissions = (energy[0] * kg / kwh, energy[1] * kg / kwh)
    return Bands(energy_kwh=energy, components=components, emissions_kg=emissions, source=source)
