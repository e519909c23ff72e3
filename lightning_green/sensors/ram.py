"""RAM power estimate from the installed memory: a per-DIMM model whose power grows with the
memory the way server DIMMs do. RAPL DRAM zones, where present, are the measured path
(:mod:`lightning_green.sensors.rapl`); this is the fallback.

Model::

    power_w = dimms * W_PER_DIMM + W_PER_GB_DRAM * gb        # W_PER_DIMM 2.5 W, W_PER_GB_DRAM 0.04 W/GB

i.e. each DIMM of ``c`` GB draws ``2.5 W + 0.04 W/GB * c``: a part per module (register
clock driver, PMIC on DDR5, I/O and termination) and a part per GB (background and refresh
current of the DRAM devices, whose number grows with capacity). This is the structure of
Micron's DDR4 power method (TN-40-07, "Calculating Memory Power for DDR4 SDRAM"). The two
constants are chosen to fall on published figures: about 3 W for an 8 GB DDR4 module (Tom's
Hardware, DDR4-2133, 2014: 2.98 W; 1.49 W per 4 GB is where Green Algorithms' 0.3725 W/GB
comes from) and 3-5 W per 16-64 GB RDIMM (vendor power calculators); the model gives 2.8,
3.1, 3.8 and 5.1 W for 8, 16, 32 and 64 GB modules. Power per GB falls as modules grow
(0.35 W/GB at 8 GB, 0.08 W/GB at 64 GB), as server memory guides state (Kingston: fewer,
larger modules draw less than many small ones of the same total).

DIMM count, when not given: machines with more memory have both more and larger DIMMs.

===================  =====  =========================================================
``MemTotal`` (GB)    DIMMs  typical population
===================  =====  =========================================================
< 6                  1      2 or 4 GB: one module
6 - 24               2      8 = 2 x 4, 16 = 2 x 8, 24 = 2 x 12 (dual channel)
24 - 96              4      32 = 4 x 8, 64 = 4 x 16, 96 = 4 x 24
96 - 384             8      128 = 8 x 16, 256 = 8 x 32 (one DIMM per channel)
384 - 1536           16     512 = 16 x 32, 1 TB = 16 x 64 (two sockets, 8 channels each)
> 1536               32     2 TB = 32 x 64 (NVIDIA DGX H100: 32 x 64 GB DDR5), 4 TB = 32 x 128
===================  =====  =========================================================

The limits (24, 96, 384, 1536 GB) are inclusive and no common size lies just above one, so
the ``MemTotal`` the kernel shows (a few % under the installed size) falls in the installed
size's tier.

Figures at the sizes the tests check, next to codecarbon 3 (``codecarbon/external/ram.py``:
5 W per DIMM, at least 2 DIMMs on x86, 0.9/0.8/0.7 of that beyond 4/8/16 DIMMs, its own
DIMM-count rule) and Green Algorithms' flat 0.3725 W/GB:

==========  ==========================  ============  ================
size        this model                  codecarbon 3  0.3725 W/GB
==========  ==========================  ============  ================
8 GB        2 DIMMs: 5.3 W              10 W          3.0 W
24 GB       2 DIMMs: 6.0 W              20 W          8.9 W
256 GB      8 DIMMs: 30.2 W             38 W          95.4 W
1 TB        16 DIMMs: 81.0 W            38 W          381.4 W
2 TB        32 DIMMs: 161.9 W           70 W          762.9 W
==========  ==========================  ============  ================

Virtual machines: a guest's memory is a slice of its host's DIMMs, so a VM (``hypervisor``
CPU flag) is charged its share of a host populated with 32 GB DIMMs (0.118 W/GB), or the
bare-metal figure if lower: a 23.5 GB guest gets 2.8 W, not the 6 W of a 2-DIMM desktop.

Uncertainty +-50 %: DIMMs draw far less when idle (Green Algorithms tool, issue 14: going
from 2 to 6 16 GB DDR4 modules raised wall power at base load by under 1.5 W) and more at
full bandwidth;
DDR5 draws more per module than DDR4. Green Algorithms' 0.3725 W/GB (Lannelongue et al.,
Advanced Science 2021) is a figure per GB *allocated* to a job; applied to a whole node's
installed memory it charges a 1 TB node 381 W. It stays available as ``w_per_gb=0.3725``.

The size is the machine's total memory (``psutil.virtual_memory().total``, else
``MemTotal`` of ``/proc/meminfo``), not the process's resident set: DRAM draws power for
every installed gigabyte whether or not this process touches it. One GB is 2**30 bytes.
The estimate is constant over the run and labelled ``measured=False``.
"""

from __future__ import annotations

import math

from pathlib import Path
from typing import Any

from lightning_green.sensors.base import PowerSensor
from lightning_green.validation import check_number

W_PER_DIMM = 2.5
W_PER_GB_DRAM = 0.04
VM_HOST_DIMM_GB = 32.0
GREEN_ALGORITHMS_W_PER_GB = 0.3725
BYTES_PER_GB = 2**30
UNCERTAINTY_REL = 0.5
UNCERTAINTY_SOURCE = (
    "estimate: +-50 % (per-DIMM model; idle DIMMs draw far less, DIMMs at full bandwidth and DDR5 "
    "more; see lightning_green/sensors/ram.py)"
)
#: (upper MemTotal in GB, DIMMs): the first tier whose limit is >= the memory size.
DIMM_TIERS: tuple[tuple[float, int], ...] = ((6.0, 1), (24.0, 2), (96.0, 4), (384.0, 8), (1536.0, 16))
MAX_DIMMS = 32


def total_memory_gb(meminfo_path: str | Path | None = None) -> float:
    """Installed memory in GB (2**30 bytes) as the OS reports it.

    Args:
        meminfo_path: Read ``MemTotal`` from this file. None: ``psutil`` when installed,
            else ``/proc/meminfo``.
    """
    if meminfo_path is None:
        try:
            import psutil

            return psutil.virtual_memory().total / BYTES_PER_GB
        except ImportError:
            meminfo_path = "/proc/meminfo"
    for line in Path(meminfo_path).read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 / BYTES_PER_GB  # the value is in kB
    raise RuntimeError(f"no MemTotal line in {meminfo_path}")


def estimated_dimms(gb: float) -> int:
    """How many DIMMs a machine with ``gb`` GB typically has (see the module's table)."""
    for limit_gb, dimms in DIMM_TIERS:
        if gb <= limit_gb:
            return dimms
    return MAX_DIMMS


def dimm_model_power_w(gb: float, dimms: int | None = None, *, virtual: bool = False) -> float:
    """Watts of ``gb`` GB of memory on ``dimms`` DIMMs (default :func:`estimated_dimms`).

    In a VM, the lower of the guest's share of a host with 32 GB DIMMs and the bare-metal figure.
    """
    count = estimated_dimms(gb) if dimms is None else dimms
    bare_w = count * W_PER_DIMM + W_PER_GB_DRAM * gb
    if virtual:
        return min(bare_w, gb * (W_PER_DIMM / VM_HOST_DIMM_GB + W_PER_GB_DRAM))
    return bare_w


def _is_virtual(cpuinfo_path: str | Path) -> bool:
    from lightning_green.sensors.cpu import read_cpuinfo

    return bool(read_cpuinfo(cpuinfo_path)["virtual"])


class RamEstimateSensor(PowerSensor):
    """Estimated RAM power: a per-DIMM model, or ``w_per_gb * gb`` when ``w_per_gb`` is given.

    Args:
        w_per_gb: A flat W per GB instead of the DIMM model (e.g. 0.3725, Green Algorithms).
        gb: Memory size in GB (2**30 bytes); default the machine's total memory.
        dimms: Number of DIMMs, if you know it (``dmidecode -t memory``); default from the size.
        virtual: Whether this is a virtual machine (charged its share of a host's DIMMs);
            default the ``hypervisor`` flag of ``cpuinfo_path``. Ignored with ``dimms``.
        meminfo_path: Read ``MemTotal`` from this file instead of asking psutil.
        cpuinfo_path: Where to read the ``hypervisor`` flag.
        **kwargs: ``name``, ``scope``, ``uncertainty_rel``, ... passed to :class:`Sensor`.

    ``describe()`` adds ``device`` (the size), ``gb``, ``dimms`` (None with ``w_per_gb`` or
    in a VM), ``virtual`` and ``w_per_gb`` (the effective figure: power / size).
    """

    read_interval_s = math.inf  # constant over the run: read once

    name = "ram-estimate"
    component = "ram"
    measured = False
    uncertainty_rel = UNCERTAINTY_REL
    uncertainty_w = 0.0
    uncertainty_source = UNCERTAINTY_SOURCE

    def __init__(
        self,
        w_per_gb: float | None = None,
        gb: float | None = None,
        *,
        dimms: int | None = None,
        virtual: bool | None = None,
        meminfo_path: str | Path | None = None,
        cpuinfo_path: str | Path = "/proc/cpuinfo",
        **kwargs: Any,
    ) -> None:
        check_number("w_per_gb", w_per_gb, minimum=0.0, maximum=100.0, optional=True)
        check_number("gb", gb, minimum=0.0, maximum=2.0**30, optional=True)
        check_number("dimms", dimms, minimum=1, maximum=4096, optional=True, integer=True)
        if virtual is not None and not isinstance(virtual, bool):
            raise ValueError(f"virtual must be True, False or None, got {virtual!r}")
        self.gb = float(gb) if gb is not None else total_memory_gb(meminfo_path)
        if w_per_gb is not None:
            self.dimms, self.virtual = None, False
            self._power_w = float(w_per_gb) * self.gb
            source = " (Green Algorithms, Lannelongue 2021)" if w_per_gb == GREEN_ALGORITHMS_W_PER_GB else ""
            method = f"estimated: {w_per_gb:g} W/GB x {self.gb:.1f} GB{source}"
        else:
            self.virtual = False if dimms is not None else (
                _is_virtual(cpuinfo_path) if virtual is None else virtual)
            count = int(dimms) if dimms is not None else estimated_dimms(self.gb)
            self._power_w = dimm_model_power_w(self.gb, count, virtual=self.virtual)
            bare_w = dimm_model_power_w(self.gb, count)
            if self.virtual and self._power_w < bare_w:
                self.dimms = None
                method = (f"estimated: {self.gb:.1f} GB x {self._power_w / self.gb:.3g} W/GB "
                          f"(VM: share of a host with {VM_HOST_DIMM_GB:g} GB DIMMs at "
                          f"{W_PER_DIMM:g} W + {W_PER_GB_DRAM:g} W/GB each)")
            else:
                self.dimms = count
                how = "given" if dimms is not None else "estimated from the size"
                method = (f"estimated: {count} DIMMs ({how}) x {W_PER_DIMM:g} W + "
                          f"{W_PER_GB_DRAM:g} W/GB x {self.gb:.1f} GB (per-DIMM model)")
        self.w_per_gb = self._power_w / self.gb if self.gb > 0 else 0.0
        kwargs.setdefault("method", method)
        super().__init__(**kwargs)

    def power_w(self) -> float:
        return self._power_w

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record.update(device=f"{self.gb:.1f} GB", gb=self.gb, dimms=self.dimms, virtual=self.virtual,
                      w_per_gb=self.w_per_gb)
        return record
