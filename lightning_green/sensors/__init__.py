"""Energy sources: the :class:`Sensor` contract, the built-in sensors and detection.

Importing this package reads no hardware and imports neither ``pynvml`` nor ``psutil``:
the built-in sensors load on first access.

Example::

    from lightning_green.sensors import detect, probe

    sensors, unavailable = probe("cuda:0")
    for sensor in sensors:
        print(sensor.describe())
"""

from __future__ import annotations

from typing import Any

from lightning_green.sensors.base import (
    ConstantPowerSensor,
    EnergySensor,
    PowerSensor,
    Sensor,
    SensorUnavailable,
    Unavailable,
)

# Eager on purpose: detect.py imports only base at module level, and binding the function
# here keeps the name ``detect`` from being replaced by the submodule of the same name.
from lightning_green.sensors.detect import detect, format_sensor_table, probe

__all__ = [
    "ConstantPowerSensor",
    "CpuEstimateSensor",
    "EnergySensor",
    "NvmlSensor",
    "PowerSensor",
    "RamEstimateSensor",
    "RaplSensor",
    "Sensor",
    "SensorUnavailable",
    "Unavailable",
    "detect",
    "format_sensor_table",
    "probe",
]

_LAZY = {
    "NvmlSensor": "lightning_green.sensors.nvml",
    "RaplSensor": "lightning_green.sensors.rapl",
    "CpuEstimateSensor": "lightning_green.sensors.cpu",
    "RamEstimateSensor": "lightning_green.sensors.ram",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lightning_green.sensors' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
