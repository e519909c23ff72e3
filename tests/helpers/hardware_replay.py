"""Replay a known power trace through the real sensor classes on scripted hardware.

:func:`fakes.replay` drives the fake sensors of ``tests/helpers/fakes.py``; this drives
:class:`~lightning_green.sensors.rapl.RaplSensor` on a fake powercap tree and
:class:`~lightning_green.sensors.nvml.NvmlSensor` on a patched ``pynvml`` (``sensor_fakes``),
with the same schedule: samples every ``interval_s`` from ``sample_phase_s``, steps of
``step_s`` back to back, everything on a :class:`fakes.FakeClock`. Used by
``tests/engine/test_accuracy_sensors.py`` and ``tests/benchmarks/accuracy.py``.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.helpers.fakes import FakeClock, Trace, drive_steps
from tests.helpers.sensor_fakes import FakeGpu, FakeNvml, set_uj, uuid, zone

from lightning_green.engine.ledger import Ledger
from lightning_green.engine.sampler import Sampler

COUNTER_UPDATE_S = 0.1  # NVML's counter moves every ~20-100 ms


@contextlib.contextmanager
def rapl_hardware(trace: Trace, clock: FakeClock, range_uj: int = 4_000_000_000) -> Iterator[tuple[Any, Callable]]:
    """A RaplSensor on a powercap tree whose integer-uJ counter follows ``trace`` and wraps at ``range_uj``."""
    from lightning_green.sensors.rapl import RaplSensor

    with tempfile.TemporaryDirectory(prefix="lg-rapl-replay-") as tmp:
        root = Path(tmp)
        start_uj = 3_000_000_000
        zone(root, "intel-rapl:0", "package-0", start_uj, range_uj=range_uj)

        def refresh(t: float) -> None:
            set_uj(root, "intel-rapl:0", int(start_uj + trace.energy_j(t) * 1e6) % range_uj)

        yield RaplSensor(root, clock=clock), refresh


@contextlib.contextmanager
def nvml_hardware(trace: Trace, clock: FakeClock, counter: bool,
                  update_period_s: float = COUNTER_UPDATE_S) -> Iterator[tuple[Any, Callable]]:
    """An NvmlSensor on a patched pynvml: the mJ counter moving every ``update_period_s``, or mW power."""
    from lightning_green.sensors.nvml import NvmlSensor

    gpu = FakeGpu(index=0, uuid=uuid(0), counter=counter, instant=True)
    fake = FakeNvml([gpu])

    def refresh(t: float) -> None:
        updated = math.floor(t / update_period_s + 1e-9) * update_period_s
        gpu.energy_mj = 1_000_000 + int(trace.energy_j(updated) * 1e3)
        gpu.power_mw = int(round(trace.power_w(t) * 1e3))

    with fake.patched():
        yield NvmlSensor(0), refresh


HARDWARE: dict[str, Callable[[Trace, FakeClock], Any]] = {
    "rapl": lambda trace, clock: rapl_hardware(trace, clock),
    "nvml_counter": lambda trace, clock: nvml_hardware(trace, clock, counter=True),
    "nvml_power": lambda trace, clock: nvml_hardware(trace, clock, counter=False),
}


def replay_hardware(trace: Trace, hardware: str, *, interval_s: float = 0.1, step_s: float = 0.1,
                    duration_s: float = 60.0, sample_phase_s: float = 0.0013) -> tuple[float, Any]:
    """Return ``(total relative error, sensor description)`` of ``hardware`` fed ``trace``."""
    clock = FakeClock(0.0)
    with HARDWARE[hardware](trace, clock) as (sensor, refresh):
        ledger = Ledger([sensor.describe()], wall_offset_s=0.0)
        meter = Sampler([sensor], interval_s=interval_s, sink=ledger.feed, clock=clock)

        def sample() -> None:
            refresh(clock.t)
            meter.sample_once()

        sample()
        n_steps = drive_steps(meter, clock, sample, interval_s=interval_s, step_s=step_s,
                    duration_s=duration_s, sample_phase_s=sample_phase_s)
        refresh(clock.t)
        meter.stop()
        description = sensor.describe()
    assert not meter.warnings, meter.warnings
    true_j = trace.between(0.0, n_steps * step_s)
    return (ledger.energy_j - true_j) / true_j, description
