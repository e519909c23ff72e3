"""The report from one :class:`~lightning_green.engine.totals.Totals` value: the only place a
:class:`~lightning_green.outputs.footprint.FootprintReport` is filled from measurements."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from lightning_green.engine.marks import PHASES
from lightning_green.engine.totals import Totals
from lightning_green.outputs.footprint import FootprintReport
from lightning_green.units import J_PER_KWH

__all__ = ["RunFacts", "build_report", "iso_time"]


def iso_time(wall_s: float | None) -> str | None:
    """Unix seconds to ISO 8601 UTC (None stays None)."""
    if wall_s is None:
        return None
    return _dt.datetime.fromtimestamp(wall_s, tz=_dt.timezone.utc).isoformat()


@dataclass
class RunFacts:
    """What the report says besides the totals: who, when, how, with which settings."""

    status: str
    run_id: str
    name: str | None = None
    started_wall_s: float | None = None
    ended_wall_s: float | None = None
    pue: float = 1.0
    intensity: Any = None  # lightning_green.carbon.CarbonIntensity
    world_size: int = 1
    sensors: list[dict] = field(default_factory=list)
    unavailable: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    idle_power_w: float | None = None
    predicted: tuple[float, float] | None = None  # (energy kWh, emissions kg)
    budget_stopped: str | None = None
    optimizer_steps: int | None = None
    snapshot_wall_s: float | None = None


def _kwh(mapping: dict[str, float]) -> dict[str, float]:
    return {key: value / J_PER_KWH for key, value in mapping.items()}


def _band(value_j: float, half_width_j: float) -> list[float]:
    return [max(0.0, value_j - half_width_j) / J_PER_KWH, (value_j + half_width_j) / J_PER_KWH]


def build_report(totals: Totals, facts: RunFacts) -> FootprintReport:
    """The footprint of ``totals`` (a whole run: every rank, every segment) with ``facts``."""
    energy_j = totals.energy_j
    samples, tokens, duration_s = int(totals.samples), int(totals.tokens), totals.duration_s
    by_component_band = {
        comp: _band(totals.energy_j_by_component.get(comp, 0.0), width)
        for comp, width in totals.uncertainty_j_by_component.items()
    }
    half_width_j = sum(totals.uncertainty_j_by_component.values())
    energy_range = _band(energy_j, half_width_j)
    intensity = facts.intensity
    g_per_kwh = intensity.g_per_kwh if intensity is not None else 0.0
    kg_per_kwh = facts.pue * g_per_kwh / 1000.0
    emissions_range = None
    if energy_j > 0:  # the band scales with the energy; the intensity is taken as given
        ratio = totals.emissions_kg / (energy_j / J_PER_KWH) if energy_j else kg_per_kwh
        emissions_range = [energy_range[0] * ratio, energy_range[1] * ratio]
    idle_w = facts.idle_power_w
    return FootprintReport(
        status=facts.status,
        run_id=facts.run_id,
        name=facts.name,
        started_at=iso_time(facts.started_wall_s),
        ended_at=iso_time(facts.ended_wall_s),
        duration_s=duration_s,
        energy_kwh=energy_j / J_PER_KWH,
        energy_kwh_by_component=_kwh(totals.energy_j_by_component),
        energy_kwh_by_phase=_kwh({p: totals.energy_j_by_phase.get(p, 0.0) for p in PHASES}),
        energy_kwh_by_epoch=_kwh(totals.energy_j_by_epoch),
        energy_kwh_by_rank=_kwh(totals.energy_j_by_rank),
        energy_kwh_by_host=_kwh(totals.energy_j_by_host),
        energy_kwh_measured=totals.energy_j_measured / J_PER_KWH,
        energy_kwh_estimated=totals.energy_j_estimated / J_PER_KWH,
        energy_kwh_range=energy_range,
        energy_kwh_by_component_range=by_component_band,
        pue=facts.pue,
        facility_energy_kwh=totals.facility_energy_j / J_PER_KWH,
        carbon_intensity_g_per_kwh=g_per_kwh,
        carbon_intensity_source=getattr(intensity, "source", ""),
        country_iso_code=getattr(intensity, "country_iso_code", None),
        cloud_provider=getattr(intensity, "cloud_provider", None),
        cloud_region=getattr(intensity, "cloud_region", None),
        emissions_kg=totals.emissions_kg,
        emissions_kg_range=emissions_range,
        world_size=facts.world_size,
        num_hosts=max(1, len(totals.energy_j_by_host)),
        sensors=list(facts.sensors),
        unavailable=list(facts.unavailable),
        warnings=list(facts.warnings),
        steps=int(totals.steps),
        optimizer_steps=facts.optimizer_steps,
        epochs=len(totals.energy_j_by_epoch),
        samples=samples,
        tokens=tokens,
        work_by_phase={p: {k: int(v) for k, v in counts.items()} for p, counts in totals.work_by_phase.items()},
        energy_per_sample_j=energy_j / samples if samples else None,
        energy_per_token_j=energy_j / tokens if tokens else None,
        samples_per_s=samples / duration_s if samples and duration_s > 0 else None,
        idle_power_w=idle_w,
        net_energy_kwh=(energy_j - idle_w * duration_s) / J_PER_KWH if idle_w is not None else None,
        predicted_energy_kwh=facts.predicted[0] if facts.predicted else None,
        predicted_emissions_kg=facts.predicted[1] if facts.predicted else None,
        budget_stopped=facts.budget_stopped,
        paused_s=totals.paused_s,
        snapshot_at=iso_time(facts.snapshot_wall_s),
        context=dict(facts.context),
        metrics=dict(facts.metrics),
    )
