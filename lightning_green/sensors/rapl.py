"""CPU package (and DRAM) energy from Linux powercap RAPL counters.

Layout (Intel, and AMD since Linux 5.8)::

    /sys/class/powercap/intel-rapl:0/{name,energy_uj,max_energy_range_uj}   name "package-0"
    /sys/class/powercap/intel-rapl:0:0/...                                  name "core"
    /sys/class/powercap/intel-rapl:0:2/...                                  name "dram" (some servers)

What is summed: every top-level zone ``intel-rapl:N`` whose ``name`` begins with
``package``, plus zones named ``dram`` when asked. Sub-zones ``core``/``uncore`` lie
*inside* their package and are never added; ``psys`` (the whole platform, which contains the
package) is left out for the same reason; ``intel-rapl-mmio:N`` zones duplicate the MSR
package zones and are skipped.

Wrap-around: each counter runs to ``max_energy_range_uj`` and restarts at 0 (262 kJ on Intel,
65.5 kJ on an AMD EPYC 7543: under 5 min at 225 W). When a read is below the previous one,
the range is added. Several wraps between two reads cannot be seen: read at least once per
wrap period (the meter reads every 0.1 s). When a zone's ``constraint_0_max_power_uw`` is
known, a gap longer than the time to wrap at that power triggers a :class:`RuntimeWarning`
and a note in :attr:`~lightning_green.sensors.base.Sensor.notes` (the report's warnings).

Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only on most systems:
then the sensor is unavailable, with that reason.

Uncertainty: +-5 % for package zones. Since Haswell, Intel's RAPL package energy is measured
rather than modelled, and it tracks external power meters within a few percent (Khan,
Hirki, Niemi, Nurminen and Ou, "RAPL in Action: Experiences in Using RAPL for Power
Measurements", ACM TOMPECS 3(2), 2018; Hackenberg et al., "An Energy Efficiency Feature
Survey of the Intel Haswell Processor", IPDPSW 2015). AMD's RAPL interface has been
validated less. DRAM zones alone: +-10 % (Desrochers, Paradis and Weaver, "A Validation of
DRAM RAPL Power Measurements", MEMSYS 2016, found them close to measured DIMM power on
Haswell-EP servers and less so on older parts). The counters update about every
millisecond (``update_period_s`` 0.001).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_green.sensors.base import EnergySensor, SensorUnavailable

POWERCAP_ROOT = "/sys/class/powercap"
ROOT_ONLY_REASON = "energy_uj readable only by root (Linux >= 5.10, CVE-2020-8694)"
UPDATE_PERIOD_S = 0.001
PACKAGE_UNCERTAINTY = (
    0.05,
    "measured: +-5 % (RAPL package energy vs external meters: Khan et al., 'RAPL in Action', "
    "ACM TOMPECS 2018; Hackenberg et al., IPDPSW 2015)",
)
DRAM_UNCERTAINTY = (
    0.10,
    "measured: +-10 % (RAPL DRAM vs measured DIMM power: Desrochers et al., MEMSYS 2016)",
)
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


def _read_text(path: Path) -> str:
    """One sysfs file's content (the single place that reads; tests may patch it)."""
    return path.read_text().strip()


@dataclass
class RaplZone:
    """One powercap zone and its wrap-correction state (all energies in microjoules)."""

    label: str
    name: str
    path: Path
    range_uj: int
    max_power_w: float | None = None
    last_uj: int | None = None
    wraps: int = 0

    def read_uj(self) -> int:
        """The raw counter plus one range per wrap seen so far (non-decreasing)."""
        path = self.path / "energy_uj"
        try:
            raw = int(_read_text(path))
        except (OSError, ValueError) as err:
            raise RuntimeError(
                f"RAPL zone {self.label} ({self.name}): cannot read {path}: {err} "
                "(the powercap tree changed during the run?)"
            ) from err
        if self.last_uj is not None and raw < self.last_uj:
            self.wraps += 1
        self.last_uj = raw
        return raw + self.wraps * self.range_uj


def find_zones(root: str | Path = POWERCAP_ROOT, *, packages: bool = True, dram: bool = False) -> list[RaplZone]:
    """The zones to sum under ``root``: packages (top level) and/or DRAM zones.

    Raises:
        SensorUnavailable: no powercap tree, no matching zone, or an unreadable file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SensorUnavailable(f"no powercap tree at {root} (VMs and many containers have none)")
    zones = []
    for entry in sorted(root.iterdir(), key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p.name)]):
        match = _ZONE.match(entry.name)  # skips intel-rapl-mmio:N duplicates and the bare control type
        if not match:
            continue
        try:
            name = _read_text(entry / "name")
        except OSError:
            continue
        top_level = match.group(2) is None
        wanted = (packages and top_level and name.startswith("package")) or (dram and name == "dram")
        if wanted:
            zones.append(_make_zone(entry, name))
    if not zones:
        what = " and ".join(w for w, on in (("package", packages), ("dram", dram)) if on)
        raise SensorUnavailable(f"no RAPL {what} zone under {root}")
    return zones


def _make_zone(entry: Path, name: str) -> RaplZone:
    try:
        int(_read_text(entry / "energy_uj"))
        range_uj = int(_read_text(entry / "max_energy_range_uj"))
    except PermissionError as err:
        raise SensorUnavailable(ROOT_ONLY_REASON) from err
    except (OSError, ValueError) as err:
        raise SensorUnavailable(f"RAPL zone {entry.name} ({name}) unreadable: {err}") from err
    max_power_w = None
    try:
        max_power_w = int(_read_text(entry / "constraint_0_max_power_uw")) / 1e6 or None
    except (OSError, ValueError):
        pass  # optional: only used to warn about reads too far apart
    return RaplZone(entry.name, name, entry, range_uj, max_power_w)


class RaplSensor(EnergySensor):
    """Cumulative energy of the CPU packages (and DRAM if asked) from RAPL counters.

    Args:
        root: The powercap directory.
        include_dram: Also add zones named ``dram`` (they are outside the package).
        dram_only: Measure only the DRAM zones (component ``"ram"``); for a separate RAM
            sensor next to a package-only one.
        clock: Monotonic clock for the read-gap warning, in seconds.
        **kwargs: ``name``, ``component``, ... passed to :class:`Sensor`.

    Raises:
        SensorUnavailable: no powercap tree, no zone, or ``energy_uj`` readable only by root.
    """

    component = "cpu"
    measured = True

    def __init__(
        self,
        root: str | Path = POWERCAP_ROOT,
        include_dram: bool = False,
        *,
        dram_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self.root = Path(root)
        self.zones = find_zones(self.root, packages=not dram_only, dram=include_dram or dram_only)
        self._clock = clock
        self._last_read_s: float | None = None
        self._warned = False
        labels = ", ".join(f"{z.label} {z.name}" for z in self.zones)
        kwargs.setdefault("name", "rapl-dram" if dram_only else "rapl")
        kwargs.setdefault("component", "ram" if dram_only else "cpu")
        kwargs.setdefault("method", f"measured: rapl powercap ({labels})")
        rel, source = DRAM_UNCERTAINTY if dram_only else PACKAGE_UNCERTAINTY
        kwargs.setdefault("uncertainty_rel", rel)
        kwargs.setdefault("uncertainty_w", 0.0)
        kwargs.setdefault("uncertainty_source", source)
        kwargs.setdefault("update_period_s", UPDATE_PERIOD_S)
        super().__init__(**kwargs)

    @property
    def wrap_period_s(self) -> float | None:
        """Shortest time any zone takes to wrap at its maximum power; None if unknown."""
        periods = [z.range_uj / 1e6 / z.max_power_w for z in self.zones if z.max_power_w]
        return min(periods) if periods else None

    def energy_j(self) -> float:
        """Joules summed over the zones, wrap-corrected (origin: the counters' zero)."""
        now = self._clock()
        period = self.wrap_period_s
        if (not self._warned and period is not None and self._last_read_s is not None
                and now - self._last_read_s > period):
            self._warned = True
            message = (
                f"{self.name}: {now - self._last_read_s:.3g} s between reads exceeds the "
                f"{period:.3g} s a counter needs to wrap at full power; energy may be undercounted"
            )
            self.notes = (*self.notes, message)  # for the report: the meter thread's warning is not
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self._last_read_s = now
        return sum(zone.read_uj() for zone in self.zones) / 1e6

    def report_extra(self) -> dict[str, Any]:
        """Wrap-arounds corrected per zone over the run."""
        return {"wraps": {zone.label: zone.wraps for zone in self.zones}}

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record["device"] = ", ".join(f"{z.label} ({z.name})" for z in self.zones)
        record["zones"] = [z.label for z in self.zones]
        return record
