"""lightning-green: the energy and CO2 of PyTorch Lightning training runs (and of any PyTorch loop)."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["EnergyCallback", "EnergyMeter", "FootprintReport", "Totals", "sensors", "__version__"]

_HOMES = {
    "EnergyCallback": "lightning_green.callbacks.lightning",
    "EnergyMeter": "lightning_green.meter.energy_meter",
    "FootprintReport": "lightning_green.outputs.footprint",
    "Totals": "lightning_green.engine.totals",
}


def __getattr__(name: str) -> Any:
    # Lazy: importing lightning_green must not import lightning, torch or pynvml.
    import importlib

    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    if name == "sensors":
        return importlib.import_module("lightning_green.sensors")
    raise AttributeError(f"module 'lightning_green' has no attribute {name!r}")
