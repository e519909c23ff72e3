"""What a person (:func:`summary_text`) or a program (:func:`summary_dict`) reads of a footprint.

:meth:`~lightning_green.outputs.footprint.FootprintReport.summary` and ``lightning-green show``
print :func:`summary_text`; ``lightning-green show --json`` prints :func:`summary_dict`.

Fields newer than a report class (uncertainty ranges, ``work_by_phase``, ``optimizer_steps``,
embodied emissions, water, cost, ``snapshot_at``, ...) are read from the report when it has
them, else from ``fields`` (the footprint's JSON as written), else taken as absent: a file
from an older writer prints as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lightning_green.outputs.summary_data import SHOW_SCHEMA, Fields, finite, pair, serving_figures, summary_dict
from lightning_green.units import unix_time

if TYPE_CHECKING:
    from lightning_green.outputs.footprint import FootprintReport

__all__ = ["SHOW_SCHEMA", "format_duration_s", "format_energy_kwh", "format_mass_kg", "plural",
           "serving_figures", "status_text", "summary_dict", "summary_text"]

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


def plural(count: int, word: str, many: str | None = None) -> str:
    """``plural(1, "epoch")`` -> ``"1 epoch"``; ``plural(1234, "batch", "batches")`` -> ``"1,234 batches"``."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def _amount(value: float) -> str:
    """``18000.0`` -> ``"18,000"``; ``0.2812`` -> ``"0.2812"``: four significant digits, no exponent."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _energy_range(low: float, high: float, center: float) -> str:
    """Both ends in the unit :func:`format_energy_kwh` picks for ``center``."""
    if abs(center) >= 1.0:
        return f"{low:.3g}-{high:.3g} kWh"
    return f"{low * 1000:.3g}-{high * 1000:.3g} Wh"


def _mass_range(low: float, high: float, center: float) -> str:
    return f"{low:.3g}-{high:.3g} kg" if abs(center) >= 1.0 else f"{low * 1000:.3g}-{high * 1000:.3g} g"


def _snapshot_time(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    seconds = unix_time(text)
    if seconds is None:
        return text
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def status_text(report: Any, fields: Mapping[str, Any] | None = None) -> str:
    """``"completed"``, or ``"running (last snapshot at 2025-01-01 12:05:00 UTC)"``."""
    get = Fields(report, fields)
    status = str(get("status", "?"))
    if status == "running":
        when = _snapshot_time(get("snapshot_at"))
        return f"running (last snapshot at {when})" if when else "running"
    return status


def _provenance(report: Any, component: str) -> str:
    sensors = [s for s in report.sensors if isinstance(s, Mapping) and s.get("component") == component]
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


def _work_lines(r: Any, get: Fields) -> list[str]:
    optimizer_steps = get("optimizer_steps")
    work = _joined([
        plural(r.samples, "sample") if r.samples else "",
        plural(r.steps, "training batch", "training batches") if r.steps else "",
        plural(int(optimizer_steps), "optimizer step") if isinstance(optimizer_steps, int) and r.steps else "",
        plural(r.epochs, "epoch") if r.epochs else "", plural(r.tokens, "token") if r.tokens else "",
    ])
    lines = [f"  work: {work}"] if work else []
    rates = _joined([
        f"{r.energy_per_sample_j:.4g} J/sample" if finite(r.energy_per_sample_j) else "",
        f"{r.energy_per_token_j:.4g} J/token" if finite(r.energy_per_token_j) else "",
        f"{r.samples_per_s:.4g} samples/s" if finite(r.samples_per_s) else "",
    ])
    if rates:
        lines.append(f"  {rates}")
    serving = serving_figures(r, get.fields)
    if serving:
        line = (f"  serving: {plural(serving['predictions'], 'prediction')} in {plural(serving['batches'], 'batch', 'batches')}, "
                f"{_amount(serving['energy_per_1k_predictions_j'])} J per 1,000 predictions")
        if serving["energy_per_token_j"] is not None:
            line += f", {_amount(serving['energy_per_token_j'])} J/token"
        if serving["energy_per_padded_token_j"] is not None:
            line += f" ({_amount(serving['energy_per_padded_token_j'])} J per processed token, padding included)"
        lines.append(line)
    return lines


def _carbon_lines(r: Any, get: Fields) -> list[str]:
    lines = []
    if r.carbon_intensity_g_per_kwh:
        source = r.carbon_intensity_source or "source not recorded"
        band = pair(get("emissions_kg_range"))
        shown = f" ({_mass_range(*band, r.emissions_kg)})" if band else ""
        lines.append(f"Emissions: {format_mass_kg(r.emissions_kg)} CO2e{shown} at "
                     f"{r.carbon_intensity_g_per_kwh:g} g/kWh ({source})")
    series = get("carbon_intensity_series")
    if isinstance(series, Mapping) and series.get("path"):
        low, high = series.get("min_g_per_kwh"), series.get("max_g_per_kwh")
        span = f", {low:g}-{high:g} g/kWh" if finite(low) and finite(high) else ""
        lines.append(f"  intensity varied over time: series {series['path']}{span}")
    paused = get("paused_s")
    if finite(paused) and paused > 0:
        lines.append(f"  paused while the grid was dirty: {format_duration_s(float(paused))}")
    embodied = get("embodied_kg")
    if finite(embodied):
        detail = get("embodied", {})
        method = detail.get("method") if isinstance(detail, Mapping) else None
        lines.append(f"Embodied emissions (hardware manufacturing, reported apart, not included above): "
                     f"{format_mass_kg(float(embodied))} CO2e" + (f" ({method})" if method else ""))
    water = get("water_l")
    if finite(water):
        per = get("water_l_per_kwh")
        lines.append(f"Water: {water:.3g} L" + (f" ({per:g} L/kWh)" if finite(per) else ""))
    cost = get("energy_cost")
    if finite(cost):
        currency, price = get("currency", ""), get("price_per_kwh")
        lines.append(f"Electricity cost: {cost:.3g} {currency}".rstrip()
                     + (f" ({price:g} {currency}/kWh)" if finite(price) else ""))
    return lines


def summary_text(report: FootprintReport, fields: Mapping[str, Any] | None = None) -> str:
    """The text of :meth:`FootprintReport.summary`; ``fields``: the footprint's JSON, for
    fields the report class lacks."""
    r, get = report, Fields(report, fields)
    head = f"lightning-green footprint: run {r.run_id or '?'} ({r.status})"
    head += f", {format_duration_s(r.duration_s)}" + (" so far" if r.status == "running" else "")
    if r.world_size > 1:
        head += f", {plural(r.world_size, 'process', 'processes')} on {plural(r.num_hosts, 'host')}"
    lines = [head]
    if r.status == "running" and get("snapshot_at"):
        lines.append(f"Status: {status_text(r, fields)}: the figures below are the run's so far.")
    band = pair(get("energy_kwh_range"))
    energy = f"Energy (IT, before PUE): {format_energy_kwh(r.energy_kwh)}"
    lines.append(energy + (f" (range {_energy_range(*band, r.energy_kwh)})" if band else ""))
    comp_bands = get("energy_kwh_by_component_range", {})
    for component, kwh in sorted(r.energy_kwh_by_component.items(), key=lambda kv: -kv[1]):
        prov = _provenance(r, component)
        line = f"  {component:<6} {format_energy_kwh(kwh):>10}"
        cband = pair(comp_bands.get(component)) if isinstance(comp_bands, Mapping) else None
        if cband:
            line += f" ({_energy_range(*cband, kwh)})"
        lines.append(f"{line}  ({prov})" if prov else line)
    if r.energy_kwh_measured or r.energy_kwh_estimated:
        lines.append(f"  measured {format_energy_kwh(r.energy_kwh_measured)}, "
                     f"estimated {format_energy_kwh(r.energy_kwh_estimated)}")
    phases = _joined([f"{p} {format_energy_kwh(v)}" if v else "" for p, v in r.energy_kwh_by_phase.items()])
    if phases:
        lines.append(f"  by phase: {phases}")
    lines += _work_lines(r, get)
    if r.idle_power_w is not None:
        line = f"  idle baseline {r.idle_power_w:.3g} W"
        if r.net_energy_kwh is not None:
            line += f"; net of idle {format_energy_kwh(r.net_energy_kwh)}"
        lines.append(line)
    lines.append(f"Facility energy: {format_energy_kwh(r.facility_energy_kwh)} (PUE {r.pue:g})")
    lines += _carbon_lines(r, get)
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
