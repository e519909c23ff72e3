"""The footprint of a run from every rank's figures: warnings, context, carbon extras, files.

Called on global rank 0 only, after every collective (see :mod:`lightning_green.meter.finish`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lightning_green.carbon.intensity import CarbonIntensity
from lightning_green.engine.totals import Totals
from lightning_green.meter.context import base_context
from lightning_green.meter.finish import RankResult
from lightning_green.outputs.build import RunFacts, build_report
from lightning_green.outputs.footprint import FootprintReport
from lightning_green.units import J_PER_KWH

__all__ = ["ReportInputs", "make_report"]


@dataclass
class ReportInputs:
    """What the meter knows about the run besides every rank's figures."""

    status: str
    run_id: str
    name: str | None
    stage: str | None
    options: Any  # MeterOptions
    world_size: int
    device: Any = None
    exception: BaseException | None = None
    started_wall_s: float | None = None
    ended_wall_s: float | None = None
    snapshot_wall_s: float | None = None
    segments: int = 1
    resumed: bool = False
    redone_energy_j: float = 0.0
    stopped_by: str | None = None
    projection: Any = None  # meter.budget.Projection
    paused: dict | None = None  # PausePolicy.describe()
    unavailable: list[dict] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer_steps: int | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # every rank took part in the reduce


def _warnings(results: list[RankResult], inp: ReportInputs) -> list[str]:
    many = len(results) > 1
    out = [f"rank {r.rank}: {w}" if many else w for r in results for w in r.warnings]
    world = inp.world_size
    if world > 1 and inp.status == "completed" and not inp.complete:
        out.append(f"{world - len(results)} of {world} ranks could not report their energy; the totals hold "
                   "the other ranks only")
    if world > 1 and (inp.status != "completed" or inp.snapshot_wall_s is not None) and len(results) < world:
        out.append(f"only rank 0's sensors are in this report's breakdown: the {world} ranks exchange their "
                   "totals at the end of the run; every rank's own figures are in the run's state folder")
    if world > 1 and len(results) > 1 and any(r.rows != results[0].rows for r in results):
        out.append(f"ranks recorded different numbers of steps; steps.csv sums the first {results[0].rows} "
                   "steps of every rank (the totals hold everything)")
    if inp.exception is not None:
        out.append(f"training {inp.status}: {type(inp.exception).__name__}: {inp.exception}")
    if inp.stopped_by:
        out.append(inp.stopped_by)
    estimated = sorted({s["component"] for r in results for s in r.sensors if not s.get("measured")})
    if estimated:
        out.append(f"estimated, not measured: {', '.join(estimated)} (see each component's range for its uncertainty)")
    return out


def _hardware(sensors: list[dict]) -> dict[str, float]:
    """GPUs, CPU sockets and RAM the run held, from the sensors that measured them (for the
    embodied estimate): one GPU per physical device, one socket per host's CPU sensor, the RAM
    sensors' sizes."""
    gpus = {s.get("device_id") or f"{s.get('host')}/{s.get('rank')}/{s.get('name')}"
            for s in sensors if s.get("component") == "gpu"}
    sockets = {s.get("host") for s in sensors if s.get("component") == "cpu"}
    ram_gb = sum(float(s.get("gb") or 0.0) for s in sensors if s.get("component") == "ram")
    return {"gpu_count": float(len(gpus)), "cpu_sockets": float(len(sockets)), "ram_gb": ram_gb}


def make_report(totals: Totals, results: list[RankResult], inp: ReportInputs) -> FootprintReport:
    """The FootprintReport of ``totals`` (every rank, every segment) and the run's facts."""
    options = inp.options
    intensity = options.intensity
    series = options.carbon_options.series
    if series is not None and totals.facility_energy_j > 0:  # the energy-weighted mean over the run
        g_per_kwh = totals.emissions_kg * 1000.0 / (totals.facility_energy_j / J_PER_KWH)
        intensity = CarbonIntensity(g_per_kwh=g_per_kwh, source=(
            f"carbon_intensity_series {options.carbon_options.series.path or '(in memory)'}: "
            "energy-weighted mean over the run"), country_iso_code=intensity.country_iso_code,
            cloud_provider=intensity.cloud_provider, cloud_region=intensity.cloud_region)
    idle = [r.idle_power_w for r in results if r.idle_power_w is not None]
    context = base_context(device=inp.device)
    context.update(inp.context)
    context.update(
        stage=inp.stage, segments=inp.segments, resumed=inp.resumed,
        redone_energy_kwh=inp.redone_energy_j / J_PER_KWH, sampling_interval_s=options.sampling_interval_s,
        energy_per_sample_basis="all energy of the run / training samples",
    )
    if inp.projection is not None:
        context["projection_method"] = inp.projection.method
    if inp.paused:
        context["carbon_aware_pausing"] = inp.paused
    sensors = [s for r in results for s in r.sensors]
    facts = RunFacts(
        status=inp.status, run_id=inp.run_id, name=inp.name, started_wall_s=inp.started_wall_s,
        ended_wall_s=inp.ended_wall_s, pue=options.pue, intensity=intensity, world_size=inp.world_size,
        sensors=sensors, unavailable=list(inp.unavailable), warnings=_warnings(results, inp), context=context,
        metrics=dict(inp.metrics), idle_power_w=float(sum(idle)) if idle else None,
        predicted=(inp.projection.energy_kwh, inp.projection.emissions_kg) if inp.projection else None,
        budget_stopped=inp.stopped_by, optimizer_steps=inp.optimizer_steps, snapshot_wall_s=inp.snapshot_wall_s,
    )
    report = build_report(totals, facts)
    carbon = options.carbon_options
    described = carbon.describe()
    report.carbon_intensity_series = described["carbon_intensity_series"]
    report.pause_above_g_per_kwh = described["pause_above_g_per_kwh"]
    extras = carbon.figures(it_energy_kwh=report.energy_kwh, pue=options.pue, hours=report.duration_s / 3600.0,
                            **_hardware(sensors))
    for key, value in extras.items():
        setattr(report, key, value)
    for key, value in inp.extra_fields.items():
        if key == "metrics":
            report.metrics.update(value)
        elif hasattr(report, key):
            setattr(report, key, value)
    return report
