"""Live figures: what the meter thread hands to exporters while a run is measured.

The engine builds a :class:`LiveFigures` on its own thread every sampling round and passes it
to each exporter's ``update`` (and ``snapshot``/``stop``); :class:`RunLabels` says whose
figures they are. Both are frozen and the engine builds new dicts for every LiveFigures and
never changes them afterwards, so an exporter may keep a reference and read it from any
thread without a lock.

Each process's figures cover only the sensors that process reads: device-scoped sensors are
read by every rank for its own device, host-scoped ones by one process per host. Summing the
figures of every process therefore counts each joule once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LiveFigures", "RunLabels"]


@dataclass(frozen=True)
class LiveFigures:
    """Cumulative figures of this process's sensors at ``t_unix``.

    Attributes:
        t_unix: When these figures were taken (seconds since the epoch).
        energy_j: ``(component, phase) -> cumulative joules`` of this process's sensors.
        power_w: ``component -> latest watts`` of this process's sensors.
        emissions_g: Cumulative grams of CO2e of this process's sensors.
        samples: Training samples this process counted.
        steps: Steps (batches) this process recorded.
        scope: ``component -> "device" | "host"``.
    """

    t_unix: float
    energy_j: dict[tuple[str, str], float]
    power_w: dict[str, float]
    emissions_g: float
    samples: int
    steps: int
    scope: dict[str, str]


@dataclass(frozen=True)
class RunLabels:
    """Who the figures belong to: the run, the host, the global rank and the rank on the host."""

    run_id: str
    host: str
    rank: int
    local_rank: int
