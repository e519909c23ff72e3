"""Units, defined once. Joules are stored everywhere; conversions happen at the edges."""

from __future__ import annotations

__all__ = ["J_PER_KWH", "J_PER_WH", "kwh_from_j"]

J_PER_WH = 3600.0
J_PER_KWH = 3.6e6


def kwh_from_j(energy_j: float) -> float:
    """Joules to kWh (1 kWh = 3.6e6 J)."""
    return energy_j / J_PER_KWH
