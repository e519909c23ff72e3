"""This process's live figures for exporters: cumulative energy by component and phase,
current power, emissions, work; earlier segments of the run included."""

from __future__ import annotations

import time
from typing import Any

from lightning_green.engine.live import LiveFigures

__all__ = ["live_figures"]


def live_figures(meter: Any, session: Any) -> LiveFigures:
    """Figures of ``meter`` (an EnergyMeter) with its running ``session`` (None once stopped).

    Called on the sampler thread (the ledger's own thread) or after the sampler stopped.
    """
    carried = meter._carried
    energy: dict[tuple[str, str], float] = {}
    for key, value in carried.energy_j_by_component_phase.items():
        comp, _, phase = key.partition("/")
        energy[(comp, phase)] = energy.get((comp, phase), 0.0) + value
    power: dict[str, float] = {}
    scope: dict[str, str] = {}
    samples, steps, segment_j = carried.samples, carried.steps, 0.0
    if session is not None and session.ledger.first_t is not None:
        snapshot = session.sampler.snapshot()
        for key, value in session.ledger.energy_j_by_component_phase(snapshot.energy_j).items():
            comp, _, phase = key.partition("/")
            energy[(comp, phase)] = energy.get((comp, phase), 0.0) + value
            segment_j += value
        for description, watts in zip(session.descriptions, snapshot.power_w):
            comp = description["component"]
            power[comp] = power.get(comp, 0.0) + float(watts)
            scope[comp] = description.get("scope") or "host"
        train = session.ledger.work_by_phase.get("train", {})
        samples += train.get("samples", 0)
        steps += train.get("batches", 0)
    emissions_g = (carried.emissions_kg + meter.emissions_kg(segment_j)) * 1000.0
    return LiveFigures(t_unix=time.time(), energy_j=energy, power_w=power, emissions_g=emissions_g,
                       samples=int(samples), steps=int(steps), scope=scope)
