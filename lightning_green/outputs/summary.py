"""Human readable text for :meth:`lightning_green.outputs.footprint.FootprintReport.summary`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_green.outputs.footprint import FootprintReport


def format_energy_kwh(energy_kwh: float) -> str:
    """``0.0123`` -> ``"12.3 Wh"``; ``2.5`` -> ``"2.5 kWh"``; three significant digits."""
    if abs(energy_kwh) >= 1.0:
        return f"{energy_kwh:.3g} kWh"
    return f"{energy_kwh * 1000:.3g} Wh"


def format_mass_kg(mass_kg: float) -> str:
    """``0.0083`` -> ``"8.3 g"``; ``12.0`` -> ``"12 kg"``."""
    return f"{mass_kg:.3g} kg" if abs(mass_kg) >= 1.0 else f"{mass_kg * 1000:.3g} g"


def format_duration_s(duration_s: float) -> str:
    """``723`` -> ``"12 min 3 s"``; ``4000`` -> ``"1 h 6 min"``."""
    if duration_s < 60:
        return f"{duration_s:.1f} s"
    minutes, seconds = divmod(int(round(duration_s)), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _provenance(report: FootprintReport, component: str) -> str:
    sensors = [s for s in report.sensors if s.get("component") == component]
    if not sensors:
        return ""
    flags = {bool(s.get("measured")) for s in sensors}
    label = {frozenset({True}): "measured", frozenset({False}): "estimated"}.get(
        frozenset(flags), "measured + estimated"
    )
    methods = sorted({str(s.get("method")) for s in sensors if s.get("method")})
    if methods and all(m.startswith(("measured", "estimated")) for m in methods):
        return "; ".join(methods)  # the method already says how ("measured: nvml energy counter")
    return f"{label}: {'; '.join(methods)}" if methods else label


def _joined(parts: list[str]) -> str:
    return ", ".join(p for p in parts if p)


def summary_text(report: FootprintReport) -> str:
    """The text of :meth:`FootprintReport.summary`."""
    r = report
    head = f"lightning-green footprint: run {r.run_id or '?'} ({r.status})"
    head += f", {format_duration_s(r.duration_s)}"
    if r.world_size > 1:
        head += f", {r.world_size} processes on {r.num_hosts} host(s)"
    lines = [head, f"Energy (IT, before PUE): {format_energy_kwh(r.energy_kwh)}"]
    for component, kwh in sorted(r.energy_kwh_by_component.items(), key=lambda kv: -kv[1]):
        prov = _provenance(r, component)
        line = f"  {component:<6} {format_energy_kwh(kwh):>10}"
        lines.append(f"{line}  ({prov})" if prov else line)
    if r.energy_kwh_measured or r.energy_kwh_estimated:
        lines.append(f"  measured {format_energy_kwh(r.energy_kwh_measured)}, "
                     f"estimated {format_energy_kwh(r.energy_kwh_estimated)}")
    phases = _joined([f"{p} {format_energy_kwh(v)}" if v else ""
                      for p, v in r.energy_kwh_by_phase.items()])
    if phases:
        lines.append(f"  by phase: {phases}")
    work = _joined([
        f"{r.samples:,} samples" if r.samples else "", f"{r.steps:,} steps" if r.steps else "",
        f"{r.epochs} epochs" if r.epochs else "", f"{r.tokens:,} tokens" if r.tokens else "",
    ])
    if work:
        lines.append(f"  work: {work}")
    rates = _joined([
        f"{r.energy_per_sample_j:.4g} J/sample" if r.energy_per_sample_j is not None else "",
        f"{r.energy_per_token_j:.4g} J/token" if r.energy_per_token_j is not None else "",
        f"{r.samples_per_s:.4g} samples/s" if r.samples_per_s is not None else "",
    ])
    if rates:
        lines.append(f"  {rates}")
    if r.idle_power_w is not None:
        line = f"  idle baseline {r.idle_power_w:.3g} W"
        if r.net_energy_kwh is not None:
            line += f"; net of idle {format_energy_kwh(r.net_energy_kwh)}"
        lines.append(line)
    lines.append(f"Facility energy: {format_energy_kwh(r.facility_energy_kwh)} (PUE {r.pue:g})")
    if r.carbon_intensity_g_per_kwh:
        source = r.carbon_intensity_source or "source not recorded"
        lines.append(f"Emissions: {format_mass_kg(r.emissions_kg)} CO2e at "
                     f"{r.carbon_intensity_g_per_kwh:g} g/kWh ({source})")
    if r.predicted_energy_kwh is not None:
        line = f"Projected full run: {format_energy_kwh(r.predicted_energy_kwh)}"
        if r.predicted_emissions_kg is not None:
            line += f", {format_mass_kg(r.predicted_emissions_kg)} CO2e"
        lines.append(line)
    if r.budget_stopped:
        lines.append(f"Stopped by budget: {r.budget_stopped}")
    for item in r.unavailable:
        source = item.get("source") or item.get("name", "?")
        lines.append(f"Not measured: {source}: {item.get('reason', '')}")
    if r.warnings:
        lines.append("Warnings:")
        lines.extend(f"  - {w}" for w in r.warnings)
    return "\n".join(lines)
