"""Emissions of the energy a process measures: a constant grid intensity, or a time series.

With a constant intensity, emissions = IT energy x PUE x g/kWh. With
``carbon_intensity_series`` every moment's energy meets the intensity of its own time: the
sampler thread adds up, round by round, the energy of each interval times the series' mean
intensity over it; a segment's emissions are then its exact energy (from the ledger) times
that energy-weighted mean intensity. Per-step emissions (steps.csv) use each step's own
interval. Nothing here reads the network.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lightning_green.units import J_PER_KWH

__all__ = ["EmissionsAccount"]


class EmissionsAccount:
    """One process's emissions arithmetic (see the module docstring).

    Args:
        pue: Power usage effectiveness (facility energy = IT energy x PUE).
        g_per_kwh: The constant intensity (used without a series, and as its fallback).
        series: An :class:`~lightning_green.carbon.series.IntensitySeries`, or None.
    """

    def __init__(self, pue: float, g_per_kwh: float, series: Any = None) -> None:
        self.pue = float(pue)
        self.g_per_kwh = float(g_per_kwh)
        self.series = series
        self._prev: tuple[float, float] | None = None
        self._weighted_j = 0.0  # sum of interval energy x g/kWh
        self._energy_j = 0.0

    def restart(self) -> None:
        """A new segment: forget the previous one's intervals."""
        self._prev, self._weighted_j, self._energy_j = None, 0.0, 0.0

    def observe(self, t_unix: float, cum_energy_j: float) -> None:
        """The process's cumulative energy at ``t_unix`` (sampler thread, every round)."""
        if self.series is None:
            return
        prev = self._prev
        self._prev = (t_unix, cum_energy_j)
        if prev is None or t_unix <= prev[0] or cum_energy_j <= prev[1]:
            return
        joules = cum_energy_j - prev[1]
        self._weighted_j += joules * self.series.mean_g_per_kwh(prev[0], t_unix)
        self._energy_j += joules

    def g_per_kwh_over(self, t0_unix: float, t1_unix: float) -> float:
        """The energy-weighted mean intensity of this segment (the constant one without a series)."""
        if self.series is None:
            return self.g_per_kwh
        if self._energy_j > 0:
            return self._weighted_j / self._energy_j
        if t1_unix > t0_unix:
            return float(self.series.mean_g_per_kwh(t0_unix, t1_unix))
        return float(self.series.intensity_at(t0_unix))

    def kg(self, energy_j: float, g_per_kwh: float | None = None) -> float:
        """Emissions of ``energy_j`` of IT energy at ``g_per_kwh`` (default: the constant)."""
        intensity = self.g_per_kwh if g_per_kwh is None else g_per_kwh
        return energy_j * self.pue / J_PER_KWH * intensity / 1000.0

    def steps_g(self, start_unix: np.ndarray, end_unix: np.ndarray, energy_j: np.ndarray) -> np.ndarray:
        """Emissions of each step, in grams."""
        if self.series is None:
            return energy_j * (self.pue * self.g_per_kwh / J_PER_KWH)
        energy = np.clip(np.nan_to_num(energy_j), 0.0, None)
        return self.series.emissions_g(start_unix, np.maximum(end_unix, start_unix), energy, pue=self.pue)

    def describe_source(self, base: str) -> str:
        if self.series is None:
            return base
        return f"carbon_intensity_series {self.series.path or '(in memory)'}: energy-weighted mean over the run"

    @staticmethod
    def finite(value: float) -> float:
        return value if math.isfinite(value) else 0.0
