"""CPU power estimate where no counter exists: a full-load power times a measured load.

Model (linear with an idle floor)::

    power_w = max_power_w * (idle_fraction + (1 - idle_fraction) * load)

* ``load`` is the busy fraction of *all* logical CPUs of the machine between two successive
  :meth:`CpuEstimateSensor.power_w` calls, from ``psutil.cpu_times()`` deltas (``/proc/stat``
  without psutil): busy = user + nice + system + irq + softirq; total = busy + idle + iowait.
  Steal time (a hypervisor running other guests) counts as neither. Whole-machine load, not
  this process's, because a CPU package draws for every process on it, as RAPL measures it,
  and because DDP ranks and data-loader workers are separate processes. Each reading is
  the average over the whole interval since the previous one, so no work goes unseen
  (codecarbon 3.3.2's load sampling missed it on a 2-vCPU VM and reported ~1.25 W while a
  core was 100 % busy).
* ``idle_fraction`` 0.1: the floor codecarbon uses (10 % of TDP). Linear, not codecarbon's
  ``0.1 + 0.9 * load**3``: the cubic charges one busy core of two 21 % of full power; server
  power is close to linear in utilisation (Barroso & Hoelzle, "The Case for
  Energy-Proportional Computing", IEEE Computer 2007; SPECpower_ssj2008 curves).
* ``max_power_w``: ``tdp_w`` when given; else the TDP of the CPU model from codecarbon's
  ``cpu_power.csv`` (via :func:`lightning_green.carbon.intensity.cpu_tdp_w`) times the sockets; else,
  for an unknown model, 4 W per logical CPU (codecarbon's ``DEFAULT_POWER_PER_CORE``). In a
  virtual machine (``hypervisor`` CPU flag) the guest sees a slice of a host CPU whose size
  it cannot know, so the TDP is capped at 4 W per visible logical CPU: a 2-vCPU slice of a
  225 W EPYC is charged 8 W, not 225 W. Server parts draw about 2-4 W per thread at TDP
  (EPYC 7543: 225 W / 64 threads = 3.5 W; Xeon 8480+: 350 W / 112 = 3.1 W).

Uncertainty: +-50 % (``uncertainty_rel``): a TDP is a nameplate figure, not a measured draw,
and real parts at a given load sit well above or below the line (estimates carry +-30-50 %).
Labelled ``measured=False``. ``update_period_s`` is the kernel's CPU-time tick (10 ms at
``USER_HZ`` 100): load over a shorter window is not resolved.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning_green.sensors.base import EnergySensor
from lightning_green.validation import check_number

W_PER_THREAD = 4.0
IDLE_FRACTION = 0.1
UNCERTAINTY_REL = 0.5
UNCERTAINTY_SOURCE = (
    "estimate: +-50 % (TDP x load model; a TDP is a nameplate figure and real draw at a given load "
    "varies by +-30-50 %)"
)


def system_cpu_times() -> tuple[float, float]:
    """(busy_s, total_s) summed over all logical CPUs since boot; see the module docstring."""
    try:
        import psutil

        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return busy, busy + t.idle + getattr(t, "iowait", 0.0)
    except ImportError:
        reader = ProcStatTimes()
        try:
            return reader()
        finally:
            reader.close()


class ProcStatTimes:
    """``system_cpu_times()`` from the first line of ``/proc/stat``, read through one open
    descriptor: ``os.pread`` at offset 0 makes the kernel regenerate the file, so every call
    is fresh. On the meter thread, waking every 0.1 s with cold caches, a reading cost ~110 us
    on a 2-vCPU VM against ~240 us through ``psutil.cpu_times()`` (open, read, close and parse
    of every line), CPU time that holds the GIL while training may wait for it.

    Returns ``(busy_s, total_s)`` like :func:`system_cpu_times`; :meth:`close` releases the
    descriptor (a later call reopens it).
    """

    def __init__(self, path: str | Path = "/proc/stat") -> None:
        self.path = str(path)
        self._fd: int | None = None
        self._pid = 0  # the process that opened _fd: a descriptor number means nothing elsewhere
        self._tick_s = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)

    def __getstate__(self) -> dict[str, Any]:  # pickled to a spawned DDP rank: reopen there
        return dict(self.__dict__, _fd=None, _pid=0)

    def __call__(self) -> tuple[float, float]:
        if self._fd is None or self._pid != os.getpid():
            if self._fd is not None:  # inherited through fork: a valid copy, ours to close
                try:
                    os.close(self._fd)
                except OSError:
                    pass
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._pid = os.getpid()
        data = os.pread(self._fd, 512, 0)
        line = data.split(b"\n", 1)[0].split()
        if not line or line[0] != b"cpu" or len(line) < 5:
            raise OSError(f"{self.path}: unexpected first line {data[:80]!r}")
        user, nice, system, idle, iowait, irq, softirq = ([float(x) for x in line[1:8]] + [0.0] * 7)[:7]
        busy = user + nice + system + irq + softirq
        return busy * self._tick_s, (busy + idle + iowait) * self._tick_s

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)

    @classmethod
    def available(cls, path: str | Path = "/proc/stat") -> bool:
        reader = cls(path)
        try:
            reader()
        except (OSError, ValueError):
            return False
        finally:
            reader.close()
        return True


def _clock_tick_s() -> float:
    """The kernel's CPU-time accounting tick in seconds (``/proc/stat`` moves in these)."""
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 0.01


def read_cpuinfo(path: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """``model`` (first "model name"), ``sockets`` (distinct "physical id") and ``virtual``."""
    model, sockets, virtual = None, set(), False
    try:
        text = Path(path).read_text()
    except OSError:
        return {"model": None, "sockets": 1, "virtual": False}
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and model is None:
            model = value
        elif key == "physical id":
            sockets.add(value)
        elif key == "flags" and "hypervisor" in value.split():
            virtual = True
    return {"model": model, "sockets": max(1, len(sockets)), "virtual": virtual}


def _lookup_tdp_w(cpu_model: str | None) -> float | None:
    if not cpu_model:
        return None
    try:
        from lightning_green.carbon.intensity import cpu_tdp_w

        return cpu_tdp_w(cpu_model)
    except Exception:  # no carbon data (codecarbon missing or broken): treat as unknown
        return None


class CpuEstimateSensor(EnergySensor):
    """Estimated CPU power: ``max_power_w * (idle_fraction + (1 - idle_fraction) * load)``.

    An energy counter for the sampler (``energy_j``): each read adds the model's power over the
    interval since the previous read (its load is that interval's average) times the
    interval, which is the exact integral of the linear model whatever the read period. So it
    is read once a second (``read_interval_s = 1.0``) instead of every sampling interval: the
    sampler's thread then wakes 10x less on a machine without a GPU, and per-step energy is
    interpolated within each second (the estimate cannot resolve a load change faster than
    it is read anyway).

    Args:
        tdp_w: Full-load power of the CPU(s) this machine sees, in W; overrides the lookup.
        cpu_model: Model string; default the "model name" of ``/proc/cpuinfo``.
        w_per_thread: W per logical CPU for an unknown model, and the cap in a VM.
        idle_fraction: Share of ``max_power_w`` drawn at zero load, in [0, 1].
        logical_cpus: Logical CPUs of the machine; default ``os.cpu_count()``.
        sockets: CPU packages; default the distinct "physical id" values.
        virtual: Whether this is a virtual machine; default the ``hypervisor`` CPU flag.
        cpu_times: Callable returning cumulative ``(busy_s, total_s)``; default
            :class:`ProcStatTimes` where ``/proc/stat`` is readable, else
            :func:`system_cpu_times`. Tests script loads with it.
        cpuinfo_path: Where to read the CPU description.
        clock: Monotonic clock of ``energy_j`` (seconds); tests pass a fake one.
        **kwargs: ``name``, ``scope``, ... passed to :class:`Sensor`.

    ``describe()`` adds ``device`` (the model), ``max_power_w`` and ``tdp_source``.
    """

    name = "cpu-estimate"
    component = "cpu"
    measured = False
    uncertainty_rel = UNCERTAINTY_REL
    uncertainty_w = 0.0
    uncertainty_source = UNCERTAINTY_SOURCE
    read_interval_s = 1.0

    def __init__(
        self,
        tdp_w: float | None = None,
        cpu_model: str | None = None,
        *,
        w_per_thread: float = W_PER_THREAD,
        idle_fraction: float = IDLE_FRACTION,
        logical_cpus: int | None = None,
        sockets: int | None = None,
        virtual: bool | None = None,
        cpu_times: Callable[[], tuple[float, float]] | None = None,
        cpuinfo_path: str | Path = "/proc/cpuinfo",
        clock: Callable[[], float] | None = None,
        **kwargs: Any,
    ) -> None:
        if tdp_w is not None:
            check_number("tdp_w", tdp_w, minimum=0.0, maximum=1e5)
        check_number("w_per_thread", w_per_thread, minimum=0.0, maximum=1e3)
        check_number("idle_fraction", idle_fraction, minimum=0.0, maximum=1.0)
        info = read_cpuinfo(cpuinfo_path) if None in (cpu_model, sockets, virtual) else {}
        self.cpu_model = cpu_model if cpu_model is not None else info.get("model")
        self.sockets = int(sockets if sockets is not None else info.get("sockets", 1))
        self.virtual = bool(virtual if virtual is not None else info.get("virtual", False))
        self.logical_cpus = int(logical_cpus or os.cpu_count() or 1)
        self.idle_fraction = float(idle_fraction)
        self.max_power_w, self.tdp_source = self._max_power(tdp_w, float(w_per_thread))
        if cpu_times is None:
            cpu_times = ProcStatTimes() if ProcStatTimes.available() else system_cpu_times
        self._cpu_times = cpu_times
        self._last_times: tuple[float, float] | None = None
        self.last_load = 0.0
        self._clock = clock or time.monotonic
        self._energy_j = 0.0
        self._last_t: float | None = None
        kwargs.setdefault(
            "method",
            f"estimated: {self.tdp_source} x ({self.idle_fraction:g} + {1 - self.idle_fraction:g} x load)",
        )
        kwargs.setdefault("update_period_s", _clock_tick_s())
        super().__init__(**kwargs)

    def _max_power(self, tdp_w: float | None, w_per_thread: float) -> tuple[float, str]:
        if tdp_w is not None:
            return float(tdp_w), f"{tdp_w:g} W (tdp_w)"
        per_thread_w = w_per_thread * self.logical_cpus
        per_thread = f"{w_per_thread:g} W/thread x {self.logical_cpus} threads"
        model_tdp_w = _lookup_tdp_w(self.cpu_model)
        if model_tdp_w is None:
            return per_thread_w, f"{per_thread} (unknown CPU model {self.cpu_model!r})"
        total_w = model_tdp_w * self.sockets
        source = f"{model_tdp_w:g} W TDP x {self.sockets} socket(s) ({self.cpu_model}, codecarbon cpu_power.csv)"
        if self.virtual and per_thread_w < total_w:
            return per_thread_w, f"{per_thread} (VM slice; capped below {source})"
        return total_w, source

    def open(self) -> None:
        """Start the load window here, so the first sample covers meter start -> now."""
        self._last_times = self._cpu_times()
        self._last_t = self._clock()

    def close(self) -> None:
        if isinstance(self._cpu_times, ProcStatTimes):
            self._cpu_times.close()
        super().close()

    def load(self) -> float:
        """Busy fraction of all CPUs since the previous call (since boot on the first call)."""
        busy, total = self._cpu_times()
        if self._last_times is None:
            d_busy, d_total = busy, total
        else:
            d_busy, d_total = busy - self._last_times[0], total - self._last_times[1]
        self._last_times = (busy, total)
        if d_total > 0:  # else the counters have not ticked (10 ms jiffies): keep the last load
            self.last_load = min(1.0, max(0.0, d_busy / d_total))
        return self.last_load

    def power_w(self) -> float:
        """Estimated watts over the interval since the previous call."""
        load = self.load()
        return self.max_power_w * (self.idle_fraction + (1.0 - self.idle_fraction) * load)

    def energy_j(self) -> float:
        """Estimated joules since :meth:`open`: each call adds the interval since the previous
        one times the model's power over it (its load is that interval's average)."""
        now = self._clock()
        watts = self.power_w()
        if self._last_t is not None and now > self._last_t:
            self._energy_j += watts * (now - self._last_t)
        self._last_t = now
        return self._energy_j

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record.update(device=self.cpu_model or "unknown CPU", max_power_w=self.max_power_w,
                      tdp_source=self.tdp_source, logical_cpus=self.logical_cpus)
        return record
