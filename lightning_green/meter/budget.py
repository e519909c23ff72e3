"""Energy and CO2 budgets, and the projection of a whole run from its start.

Pure arithmetic on figures the meter hands over; the adapters decide what to do with the
answer (a Lightning Trainer sets ``should_stop``; a plain loop reads ``meter.budget_exceeded``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_green.units import J_PER_KWH

__all__ = ["Projection", "budget_reason", "project"]


def budget_reason(energy_j: float, emissions_kg: float, max_energy_kwh: float | None,
                  max_emissions_kg: float | None) -> str | None:
    """Why the run must stop, or None while it is within its budgets."""
    energy_kwh = energy_j / J_PER_KWH
    if max_energy_kwh is not None and energy_kwh >= max_energy_kwh:
        return f"energy budget reached: {energy_kwh:.6g} kWh >= max_energy_kwh={max_energy_kwh:g}"
    if max_emissions_kg is not None and emissions_kg >= max_emissions_kg:
        return f"emissions budget reached: {emissions_kg:.6g} kg >= max_emissions_kg={max_emissions_kg:g}"
    return None


@dataclass(frozen=True)
class Projection:
    """The whole run's predicted energy and emissions, and how they were made."""

    energy_kwh: float
    emissions_kg: float
    method: str


def project(*, energy_j: float, recurring_j: float, batches_done: int, batches_planned: int,
            kg_per_j: float) -> Projection | None:
    """Energy so far plus what the remaining training batches will cost at the rate so far.

    ``recurring_j`` is the energy that grows with training batches (training and the
    validation between them); the rest of ``energy_j`` (set-up, the sanity check) is counted
    once instead of being extrapolated as if every batch cost it too.
    """
    if batches_done <= 0 or batches_planned <= 0:
        return None
    remaining = max(0, batches_planned - batches_done)
    predicted_j = energy_j + remaining * recurring_j / batches_done
    method = (f"energy so far + {remaining} remaining training batches x {recurring_j / batches_done:.4g} J "
              f"(training and validation energy per batch over the first {batches_done}); fixed energy "
              f"({max(0.0, energy_j - recurring_j):.4g} J: set-up, sanity check) counted once")
    return Projection(predicted_j / J_PER_KWH, predicted_j * kg_per_j, method)
