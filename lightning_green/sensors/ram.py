"""RAM power estimate: a constant W per GB of installed memory.

Default 0.3725 W/GB, the Green Algorithms figure (Lannelongue, Grealey & Inouye, "Green
Algorithms: Quantifying the Carbon Footprint of Computation", Advanced Science 2021).
Other models disagree 2-5x (codecarbon v2: 3 W per 8 GB; v3: 5 W per DIMM, >= 10 W):
override ``w_per_gb`` or ``gb`` when you know better.

The size is the machine's total memory (``psutil.virtual_memory().total``, else
``MemTotal`` of ``/proc/meminfo``), not the process's resident set: DRAM draws power for
every installed gigabyte whether or not this process touches it, and a VM's memory is
reserved for it on the host. One GB here is 2**30 bytes (DIMMs come in binary sizes).
The estimate is constant over the run and labelled ``measured=False``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightning_green.sensors.base import PowerSensor

W_PER_GB = 0.3725
BYTES_PER_GB = 2**30


def total_memory_gb(meminfo_path: str | Path = "/proc/meminfo") -> float:
    """Installed memory in GB (2**30 bytes) as the OS reports it."""
    try:
        import psutil

        return psutil.virtual_memory().total / BYTES_PER_GB
    except ImportError:
        for line in Path(meminfo_path).read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / BYTES_PER_GB  # the value is in kB
        raise RuntimeError(f"no MemTotal line in {meminfo_path}") from None


class RamEstimateSensor(PowerSensor):
    """Estimated RAM power: ``w_per_gb * gb``.

    Args:
        w_per_gb: Watts per GB of memory; default 0.3725 (Green Algorithms).
        gb: Memory size in GB (2**30 bytes); default the machine's total memory.
        **kwargs: ``name``, ``scope``, ... passed to :class:`Sensor`.

    ``describe()`` adds ``device`` (the size), ``gb`` and ``w_per_gb``.
    """

    name = "ram-estimate"
    component = "ram"
    measured = False

    def __init__(self, w_per_gb: float = W_PER_GB, gb: float | None = None, **kwargs: Any) -> None:
        for label, value in (("w_per_gb", w_per_gb), ("gb", gb)):
            if value is None and label == "gb":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be a finite number >= 0, got {value!r}")
        self.w_per_gb = float(w_per_gb)
        self.gb = float(gb) if gb is not None else total_memory_gb()
        self._power_w = self.w_per_gb * self.gb
        source = " (Green Algorithms, Lannelongue 2021)" if self.w_per_gb == W_PER_GB else ""
        kwargs.setdefault("method", f"estimated: {self.w_per_gb:g} W/GB x {self.gb:.1f} GB{source}")
        super().__init__(**kwargs)

    def power_w(self) -> float:
        return self._power_w

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record.update(device=f"{self.gb:.1f} GB", gb=self.gb, w_per_gb=self.w_per_gb)
        return record
