"""lightning-green: the energy and CO2 of PyTorch Lightning training runs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["EnergyCallback", "FootprintReport", "sensors", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: importing lightning_green must not import lightning, torch or pynvml.
    if name == "EnergyCallback":
        from lightning_green.callbacks.lightning import EnergyCallback

        return EnergyCallback
    if name == "FootprintReport":
        from lightning_green.outputs.footprint import FootprintReport

        return FootprintReport
    if name == "sensors":
        import lightning_green.sensors as sensors

        return sensors
    raise AttributeError(f"module 'lightning_green' has no attribute {name!r}")
