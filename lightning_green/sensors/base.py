"""The sensor contract: what every energy source, built in or user written, implements.

A sensor reads one thing (a GPU, a CPU package, the RAM, a wall meter) and says how it
knows: ``measured`` is True for a hardware reading and False for a model estimate, and
``method`` names the way (``"nvml energy counter"``, ``"estimated: 85 W TDP x load"``).

Two kinds exist; the meter treats them differently:

* :class:`PowerSensor` returns watts *now*; the meter samples it every
  ``sampling_interval_s`` and integrates by trapezoid.
* :class:`EnergySensor` returns cumulative joules from any origin; the meter takes
  differences. The sensor corrects its own counter wrap-around, so the value never
  decreases.

``scope`` says who measures in a multi-process run: ``"device"`` sensors are read by every
process (each its own GPU); ``"host"`` sensors by one process per machine (local rank 0),
because a CPU package or the RAM is shared by all processes on that machine.

Example::

    from lightning_green.sensors import PowerSensor

    class WallMeter(PowerSensor):
        name, component, measured = "wall-meter", "node", True

        def power_w(self) -> float:
            return read_my_meter()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SCOPES = ("device", "host")


class SensorUnavailable(RuntimeError):
    """Raised by a sensor's constructor or :meth:`Sensor.open` when it cannot measure here.

    The message is the reason shown to users (``lightning-green sensors``, report warnings).
    """


class Sensor:
    """Base of every sensor.

    Args:
        name: Unique, human readable label (``"nvml:0"``, ``"rapl"``).
        component: What is measured: ``"gpu"``, ``"cpu"``, ``"ram"`` or any other label.
        measured: True for a hardware reading, False for a model estimate.
        scope: ``"device"`` (every process measures its own) or ``"host"`` (one process
            per machine). Defaults follow the component: ``gpu`` -> device, else host.
        method: How the value is obtained, for the report's provenance.

    Arguments left as None keep the class attribute of the same name, so subclasses may
    declare ``name``, ``component``, ``measured``, ``scope`` and ``method`` as class
    attributes instead.
    """

    name: str = "sensor"
    component: str = "other"
    measured: bool = True
    scope: str | None = None
    method: str = ""
    #: Problems the sensor noticed itself (e.g. RAPL reads too far apart to see every wrap);
    #: copied into the report's warnings. Assign a new tuple, never append: the callback
    #: reads copies of the user's sensor objects.
    notes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        name: str | None = None,
        component: str | None = None,
        measured: bool | None = None,
        scope: str | None = None,
        method: str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if component is not None:
            self.component = component
        if measured is not None:
            self.measured = bool(measured)
        if method is not None:
            self.method = method
        if scope is not None:
            self.scope = scope
        if self.scope is None:
            self.scope = "device" if self.component == "gpu" else "host"
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.component, str) or not self.component:
            raise ValueError(f"component must be a non-empty str, got {self.component!r}")

    def open(self) -> None:
        """Acquire handles. Called once, before the first read, by the meter thread.

        Raise :class:`SensorUnavailable` (or any exception) to be left out of the run;
        the reason is recorded in the report.
        """

    def close(self) -> None:
        """Release handles. Called once after the last read; must not raise."""

    @property
    def kind(self) -> str:
        """``"power"`` or ``"energy"``: which method the meter calls."""
        return "energy" if isinstance(self, EnergySensor) else "power"

    def describe(self) -> dict[str, Any]:
        """The provenance record written to the report's ``sensors`` list."""
        method = self.method or ("measured" if self.measured else "estimated")
        return {
            "name": self.name,
            "component": self.component,
            "measured": bool(self.measured),
            "method": method,
            "scope": self.scope,
            "kind": self.kind,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, component={self.component!r}, "
            f"measured={self.measured}, scope={self.scope!r})"
        )


class PowerSensor(Sensor):
    """A sensor that reports instantaneous power; the meter integrates it."""

    def power_w(self) -> float:
        """Power now, in watts."""
        raise NotImplementedError


class EnergySensor(Sensor):
    """A sensor that reports a cumulative energy counter, corrected for wrap-around."""

    def energy_j(self) -> float:
        """Cumulative energy in joules from any fixed origin; never decreases."""
        raise NotImplementedError


class ConstantPowerSensor(PowerSensor):
    """A fixed power draw: a nameplate value, or a device you know draws a steady load.

    Labelled estimated unless ``measured=True`` is passed (e.g. a value read off a
    wall meter for a device whose draw does not change).
    """

    measured = False

    def __init__(self, power_w: float, **kwargs: Any) -> None:
        if not isinstance(power_w, (int, float)) or not math.isfinite(power_w) or power_w < 0:
            raise ValueError(f"power_w must be a finite number >= 0, got {power_w!r}")
        self._power_w = float(power_w)
        kwargs.setdefault("method", f"constant {self._power_w:g} W")
        super().__init__(**kwargs)

    def power_w(self) -> float:
        return self._power_w


@dataclass(frozen=True)
class Unavailable:
    """A source that could not be used on this machine, and why."""

    source: str
    component: str
    reason: str

    def describe(self) -> dict[str, str]:
        return {"source": self.source, "component": self.component, "reason": self.reason}
