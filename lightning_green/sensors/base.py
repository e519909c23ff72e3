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

How far to trust a sensor is part of the contract: ``uncertainty_rel`` (a fraction of the
energy), ``uncertainty_w`` (an absolute floor in watts) and ``uncertainty_source`` (where
the figures come from). The band of an energy ``E`` over ``T`` seconds is
``+-max(uncertainty_rel * E, uncertainty_w * T)`` (:meth:`Sensor.uncertainty_j`). A sensor
that states none gets a default, and its source says so: +-10 % for a measurement, +-50 %
for an estimate.

``update_period_s`` is how often the source itself updates (an NVML energy counter every
~20-100 ms, ``/proc/stat`` every 10 ms); a step shorter than that is not resolved by it.
``device_id`` names the physical device measured (an NVML GPU UUID), so that two processes
reading one device can be counted once. :meth:`Sensor.report_extra` returns figures
gathered over the run (e.g. NVML's counter against its integrated power), read once after
:meth:`Sensor.close`.

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

from lightning_green.validation import check_number, check_optional_str

SCOPES = ("device", "host")
#: Bands given to a sensor that states no uncertainty of its own.
DEFAULT_UNCERTAINTY_MEASURED = 0.10
DEFAULT_UNCERTAINTY_ESTIMATED = 0.50
NOT_STATED = "not stated by the sensor: default +-{pct:g} % for {kind}"


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
        uncertainty_rel: Relative uncertainty of the energy, as a fraction (0.05 = +-5 %),
            in [0, 1].
        uncertainty_w: Absolute floor of the uncertainty, in W (NVML: 5.0), >= 0.
        uncertainty_source: Where the two figures come from (a datasheet, a paper).
        update_period_s: How often the source updates its value, in s; None when it is
            continuous or unknown.
        device_id: The physical device measured (e.g. a GPU UUID); None for host sensors.

    Arguments left as None keep the class attribute of the same name, so subclasses may
    declare any of them as class attributes instead. Without a stated uncertainty (neither
    argument nor class attribute) the sensor gets +-10 % when ``measured`` and +-50 % when
    estimated, with a source saying that it was not stated.
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
    uncertainty_rel: float | None = None
    uncertainty_w: float | None = None
    uncertainty_source: str = ""
    update_period_s: float | None = None
    device_id: str | None = None
    #: How often the sampler reads this sensor, in s: None for the sampler's interval (a power
    #: sensor must be sampled to be integrated); longer for a counter that loses nothing when
    #: read less often (the CPU estimate: 1 s); ``math.inf`` for a constant power, read once.
    read_interval_s: float | None = None

    def __init__(
        self,
        *,
        name: str | None = None,
        component: str | None = None,
        measured: bool | None = None,
        scope: str | None = None,
        method: str | None = None,
        uncertainty_rel: float | None = None,
        uncertainty_w: float | None = None,
        uncertainty_source: str | None = None,
        update_period_s: float | None = None,
        device_id: str | None = None,
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
        for label, value in (("uncertainty_rel", uncertainty_rel), ("uncertainty_w", uncertainty_w),
                             ("update_period_s", update_period_s)):
            if value is not None:
                setattr(self, label, value)
        if uncertainty_source is not None:
            self.uncertainty_source = uncertainty_source
        if device_id is not None:
            self.device_id = device_id
        check_number("uncertainty_rel", self.uncertainty_rel, minimum=0.0, maximum=1.0, optional=True)
        check_number("uncertainty_w", self.uncertainty_w, minimum=0.0, maximum=1e5, optional=True)
        check_number("update_period_s", self.update_period_s, exclusive_minimum=0.0, maximum=3600.0,
                     optional=True)
        check_optional_str("device_id", self.device_id)
        if not isinstance(self.uncertainty_source, str):
            raise ValueError(f"uncertainty_source must be a str, got {self.uncertainty_source!r}")
        if self.uncertainty_rel is None and self.uncertainty_w is None:
            self.uncertainty_rel, self.uncertainty_w, self.uncertainty_source = self.default_uncertainty()
        elif self.uncertainty_rel is None or self.uncertainty_w is None:
            self.uncertainty_rel = float(self.uncertainty_rel or 0.0)
            self.uncertainty_w = float(self.uncertainty_w or 0.0)
        if not self.uncertainty_source:
            self.uncertainty_source = "stated without a source"

    def default_uncertainty(self) -> tuple[float, float, str]:
        """``(rel, w, source)`` for a sensor that states no uncertainty of its own."""
        rel = DEFAULT_UNCERTAINTY_MEASURED if self.measured else DEFAULT_UNCERTAINTY_ESTIMATED
        kind = "a measurement" if self.measured else "an estimate"
        return rel, 0.0, NOT_STATED.format(pct=100 * rel, kind=kind)

    def stated_uncertainty(self) -> tuple[float, float, str]:
        """``(uncertainty_rel, uncertainty_w, uncertainty_source)``, defaults filled in.

        Use this rather than the attributes for sensors that may skip ``Sensor.__init__``
        (a user subclass that forgets ``super().__init__()``).
        """
        rel, floor_w = self.uncertainty_rel, self.uncertainty_w
        if rel is None and floor_w is None:
            return self.default_uncertainty()
        return float(rel or 0.0), float(floor_w or 0.0), self.uncertainty_source or "stated without a source"

    def uncertainty_j(self, energy_j: float, seconds: float) -> float:
        """Half-width of the band around ``energy_j`` joules measured over ``seconds``:
        ``max(uncertainty_rel * energy_j, uncertainty_w * seconds)``."""
        rel, floor_w, _ = self.stated_uncertainty()
        return max(rel * abs(energy_j), floor_w * max(0.0, seconds))

    def report_extra(self) -> dict[str, Any]:
        """Figures gathered over the run, merged into this sensor's entry of the report.

        Called once, after :meth:`close`. The base class has none.
        """
        return {}

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
        rel, floor_w, source = self.stated_uncertainty()
        return {
            "name": self.name,
            "component": self.component,
            "measured": bool(self.measured),
            "method": method,
            "scope": self.scope,
            "kind": self.kind,
            "uncertainty_rel": rel,
            "uncertainty_w": floor_w,
            "uncertainty_source": source,
            "update_period_s": self.update_period_s,
            "device_id": self.device_id,
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
    wall meter for a device whose draw does not change). Pass ``uncertainty_rel`` /
    ``uncertainty_w`` / ``uncertainty_source`` when you know how close the figure is;
    otherwise the report carries the default band (+-50 % estimated, +-10 % measured) and
    says that it was not stated. Read once (``read_interval_s = inf``): energy is power x time.
    """

    measured = False
    read_interval_s = math.inf

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
