"""Embodied (manufacturing) emissions of the hardware a run holds, amortised per device-hour.

Always an *estimate*, reported as ``embodied_kg`` beside the operational ``emissions_kg`` and
never added to it. Method (Luccioni, Viguier, Ligozat, "Estimating the Carbon Footprint of
BLOOM, a 176B Parameter Language Model", JMLR 24(253), 2023): a device's manufacturing
footprint is spread over the hours it is in use during its life::

    kg per device-hour = manufacturing kg / (lifetime_years x 8760 h x utilisation)
    embodied_kg        = sum over components of count x kg per device-hour x hours held

With BLOOM's figures, 150 kg per A100 over 6 years at 85 % use is 0.00336 kg per GPU-hour;
their 1,082,990 GPU-hours then carry 3.64 t, the GPU share of the paper's 11.2 t embodied.

Defaults (override any of them):

* ``gpu_kg=150`` kg CO2e per GPU: BLOOM paper's estimate for an A100 (also Cloud Carbon
  Footprint's per-GPU-card figure). Newer, larger GPUs likely carry more; no public LCA of one.
* ``cpu_kg=23.5`` kg CO2e per CPU socket: Dell PowerEdge R740 life-cycle assessment, 47 kg
  for its two CPUs, as tabulated in ACT (Gupta et al., "ACT: Designing Sustainable Computer
  Systems with an Architectural Carbon Modeling Tool", ISCA 2022, exps/dellr740). Cloud
  Carbon Footprint uses 100 kg per additional CPU.
* ``ram_kg_per_gb=533/384`` (1.39) kg CO2e per GB: the same R740 LCA, 533 kg for 12 x 32 GB
  DIMMs (also Cloud Carbon Footprint's figure). ACT's die-level model gives far less for
  modern DRAM (65 g/GB for DDR4 at 10 nm, 74 g/GB after its 87.5 % yield): the two differ
  about 20x, so treat RAM's share as the least certain.
* ``lifetime_years=6``, ``utilisation=0.85``: BLOOM paper's assumptions.

Not counted: chassis, motherboard, storage, network, cooling and the building (BLOOM adds
~2.5 t per server node for the rest of the server): the estimate is a lower bound for those.
For part of a host (a VM, a MIG slice, some cores), pass fractional counts: 2 of 64 cores
of one socket is ``cpu_sockets=2/64``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from lightning_green.validation import check_number

__all__ = ["DEFAULT_SOURCES", "EmbodiedEstimate", "EmbodiedModel", "HOURS_PER_YEAR"]

HOURS_PER_YEAR = 8760.0

DEFAULT_SOURCES = (
    "Luccioni, Viguier, Ligozat, Estimating the Carbon Footprint of BLOOM, JMLR 24(253), 2023: "
    "150 kg CO2e per A100 GPU, 6-year life, 85 % utilisation, amortised per device-hour",
    "Dell PowerEdge R740 life-cycle assessment as tabulated in ACT (Gupta et al., ISCA 2022): "
    "CPUs 47 kg CO2e for two sockets, DRAM 533 kg CO2e for 384 GB",
)

METHOD = (
    "estimated: manufacturing kg x hours held / (lifetime_years x 8760 h x utilisation) per "
    "device (BLOOM paper's method); GPU, CPU and RAM only (no chassis, storage, network, building); "
    "not included in emissions_kg"
)


@dataclass(frozen=True)
class EmbodiedEstimate:
    """Embodied emissions attributed to one run (an estimate; never part of ``emissions_kg``).

    Attributes:
        kg: Total, kg CO2e.
        by_component: ``{"gpu": kg, "cpu": kg, "ram": kg}``.
        kg_per_unit_hour: ``{"gpu": kg per GPU-hour, "cpu": kg per socket-hour, "ram": kg per GB-hour}``.
        hours: Hours the hardware was held (the run's wall time).
        units: ``{"gpu_count": ..., "cpu_sockets": ..., "ram_gb": ...}`` as given.
        model: The model's parameters (kg figures, lifetime, utilisation).
        method: How it was computed, in words.
        sources: Where the default figures come from.
    """

    kg: float
    by_component: dict[str, float]
    kg_per_unit_hour: dict[str, float]
    hours: float
    units: dict[str, float]
    model: dict[str, float]
    method: str = METHOD
    sources: tuple[str, ...] = DEFAULT_SOURCES

    def to_dict(self) -> dict[str, Any]:
        """Plain figures for the report's ``embodied`` entry (``embodied_kg`` is :attr:`kg`)."""
        return {
            "kg": self.kg,
            "measured": False,
            "label": "estimated",
            "by_component_kg": dict(self.by_component),
            "kg_per_unit_hour": dict(self.kg_per_unit_hour),
            "hours": self.hours,
            **self.units,
            **self.model,
            "method": self.method,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class EmbodiedModel:
    """Manufacturing footprints and how they are amortised (defaults and sources: module docstring).

    Args:
        gpu_kg: kg CO2e to manufacture one GPU, >= 0.
        cpu_kg: kg CO2e to manufacture one CPU socket (package), >= 0.
        ram_kg_per_gb: kg CO2e to manufacture one GB of RAM, >= 0.
        lifetime_years: Years the hardware is in service, in (0, 30].
        utilisation: Fraction of those years it is in use, in (0, 1].
        sources: Where the figures come from, recorded in the report. Overriding a figure
            without giving sources adds "set by the user, no source given: ..." to the defaults.

    Raises:
        ValueError: A figure out of range; the message names it, the range and the value.
    """

    gpu_kg: float = 150.0
    cpu_kg: float = 23.5
    ram_kg_per_gb: float = 533.0 / 384.0
    lifetime_years: float = 6.0
    utilisation: float = 0.85
    sources: tuple[str, ...] = DEFAULT_SOURCES

    def __post_init__(self) -> None:
        for name, upper in (("gpu_kg", 10_000.0), ("cpu_kg", 10_000.0), ("ram_kg_per_gb", 100.0)):
            check_number(f"embodied {name}", getattr(self, name), minimum=0.0, maximum=upper)
        check_number("embodied lifetime_years", self.lifetime_years, exclusive_minimum=0.0, maximum=30.0)
        check_number("embodied utilisation", self.utilisation, exclusive_minimum=0.0, maximum=1.0)
        if isinstance(self.sources, str) or not all(isinstance(s, str) for s in self.sources):
            raise ValueError(f"embodied sources must be a tuple of strings, got {self.sources!r}")
        sources = tuple(self.sources)
        changed = [f"{f.name}={getattr(self, f.name):g}" for f in fields(self)
                   if f.name != "sources" and getattr(self, f.name) != f.default]
        if changed and sources == DEFAULT_SOURCES:  # say which figures are not the cited ones
            sources += (f"set by the user, no source given: {', '.join(changed)}",)
        object.__setattr__(self, "sources", sources)

    @property
    def use_hours(self) -> float:
        """Hours of use over the hardware's life: lifetime_years x 8760 x utilisation."""
        return self.lifetime_years * HOURS_PER_YEAR * self.utilisation

    def estimate(self, *, gpu_count: float, cpu_sockets: float, ram_gb: float, hours: float) -> EmbodiedEstimate:
        """Embodied kg CO2e of holding this hardware for ``hours``.

        Args:
            gpu_count: GPUs held (fractions for MIG slices or shared GPUs), >= 0.
            cpu_sockets: CPU sockets held (a fraction for part of one), >= 0.
            ram_gb: RAM held, GB, >= 0.
            hours: Wall-clock hours held, >= 0.
        """
        units = {
            "gpu_count": float(check_number("gpu_count", gpu_count, minimum=0.0)),
            "cpu_sockets": float(check_number("cpu_sockets", cpu_sockets, minimum=0.0)),
            "ram_gb": float(check_number("ram_gb", ram_gb, minimum=0.0)),
        }
        held_h = float(check_number("hours", hours, minimum=0.0))
        per_hour = {
            "gpu": self.gpu_kg / self.use_hours,
            "cpu": self.cpu_kg / self.use_hours,
            "ram": self.ram_kg_per_gb / self.use_hours,
        }
        count = {"gpu": units["gpu_count"], "cpu": units["cpu_sockets"], "ram": units["ram_gb"]}
        by_component = {name: count[name] * per_hour[name] * held_h for name in per_hour}
        model = {
            "gpu_kg": float(self.gpu_kg), "cpu_kg": float(self.cpu_kg),
            "ram_kg_per_gb": float(self.ram_kg_per_gb), "lifetime_years": float(self.lifetime_years),
            "utilisation": float(self.utilisation),
        }
        return EmbodiedEstimate(
            kg=sum(by_component.values()), by_component=by_component, kg_per_unit_hour=per_hour,
            hours=held_h, units=units, model=model, sources=self.sources,
        )
