"""Live figures of one process, produced on the sampler's thread for exporters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LiveFigures", "RunLabels"]


@dataclass(frozen=True)
class LiveFigures:
    """This process's figures at one moment (its sensors only: host-scoped sensors are read by
    one process per host, so summing every process's figures counts each joule once)."""

    t_unix: float  # when these figures were taken
    energy_j: dict[tuple[str, str], float]  # (component, phase) -> cumulative J
    power_w: dict[str, float]  # component -> latest W
    emissions_g: float  # cumulative g CO2e
    samples: int  # training samples this process counted
    steps: int  # steps (batches) this process recorded
    scope: dict[str, str]  # component -> "device" | "host"


@dataclass(frozen=True)
class RunLabels:
    """Who produces the figures: the run, the host and the process."""

    run_id: str
    host: str
    rank: int
    local_rank: int
