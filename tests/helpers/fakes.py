"""Reusable fake hardware for meter, ledger, callback and benchmark tests.

* :class:`FakeClock`: a clock you advance by hand (pass it to the sensors and the Sampler).
* Traces with exact integrals: :func:`constant`, :func:`ramp`, :func:`square`,
  :func:`bursts`, :func:`sine` -> :class:`Trace` (``power_w(t)``, ``energy_j(t)`` from 0).
* Sensors: :class:`ScriptedPowerSensor` (a trace read off a clock), :class:`CounterSensor`
  (an energy counter with an update period and wrap-around), :class:`FaultySensor`
  (raises, NaN, inf, negative, garbage, decreasing, resets, failing open/close) and
  :class:`BlockingSensor` (sleeps inside the read).
* :func:`replay`: drive a trace through Sampler + Ledger on a fake clock and measure the
  total-energy and per-step attribution errors (used by the accuracy tests and benchmarks).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lightning_green.engine.ledger import Ledger
from lightning_green.engine.marks import Boundary
from lightning_green.engine.sampler import Sampler
from lightning_green.sensors.base import EnergySensor, PowerSensor, Sensor, SensorUnavailable


class FakeClock:
    """A monotonic clock that moves only when told: ``clock.advance(0.1)``."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t

    def set(self, t: float) -> float:
        assert t >= self.t, "a monotonic clock never goes back"
        self.t = float(t)
        return self.t


# -- traces ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    """A power trace with its exact integral: ``energy_j(t)`` = joules over ``[0, t]``."""

    name: str
    power_w: Callable[[float], float]
    energy_j: Callable[[float], float]

    def between(self, a: float, b: float) -> float:
        return self.energy_j(b) - self.energy_j(a)


def constant(power_w: float = 100.0) -> Trace:
    return Trace(f"constant {power_w:g} W", lambda t: power_w, lambda t: power_w * t)


def ramp(start_w: float = 50.0, slope_w_per_s: float = 2.0) -> Trace:
    return Trace(
        f"ramp {start_w:g} W + {slope_w_per_s:g} W/s",
        lambda t: start_w + slope_w_per_s * t,
        lambda t: start_w * t + 0.5 * slope_w_per_s * t * t,
    )


def square(high_w: float = 250.0, low_w: float = 60.0, period_s: float = 1.0,
           duty: float = 0.5, phase_s: float = 0.0) -> Trace:
    """``high_w`` for the first ``duty`` of each period (shifted by ``phase_s``), else ``low_w``."""
    on_s = duty * period_s

    def power(t: float) -> float:
        return high_w if (t + phase_s) % period_s < on_s else low_w

    def cumulative(u: float) -> float:
        n = math.floor(u / period_s)
        r = u - n * period_s
        per_period = high_w * on_s + low_w * (period_s - on_s)
        return n * per_period + high_w * min(r, on_s) + low_w * max(0.0, r - on_s)

    return Trace(
        f"square {low_w:g}/{high_w:g} W, {period_s:g} s, duty {duty:g}",
        power,
        lambda t: cumulative(t + phase_s) - cumulative(phase_s),
    )


def bursts(base_w: float = 50.0, burst_w: float = 300.0, period_s: float = 0.25,
           width_s: float = 0.02, phase_s: float = 0.0) -> Trace:
    """``width_s`` bursts at ``burst_w`` every ``period_s`` over ``base_w``."""
    t = square(burst_w, base_w, period_s, width_s / period_s, phase_s)
    return Trace(f"bursts {width_s * 1e3:g} ms of {burst_w:g} W every {period_s:g} s "
                 f"over {base_w:g} W", t.power_w, t.energy_j)


def sine(mean_w: float = 150.0, amplitude_w: float = 100.0, period_s: float = 2.3) -> Trace:
    w = 2 * math.pi / period_s
    return Trace(
        f"sine {mean_w:g} +- {amplitude_w:g} W, {period_s:g} s",
        lambda t: mean_w + amplitude_w * math.sin(w * t),
        lambda t: mean_w * t + amplitude_w * (1 - math.cos(w * t)) / w,
    )


# -- sensors -----------------------------------------------------------------------------
def _as_function(trace_or_fn: Trace | Callable[[float], float], energy: bool) -> Callable:
    if isinstance(trace_or_fn, Trace):
        return trace_or_fn.energy_j if energy else trace_or_fn.power_w
    return trace_or_fn


class ScriptedPowerSensor(PowerSensor):
    """Power from ``fn(clock() - t0)`` (a :class:`Trace` or a function of seconds).

    Set ``failing`` to an exception to raise it on every read, or to any other value to
    return that instead of the trace (NaN, -1, ...); None restores normal readings.
    """

    def __init__(self, fn: Trace | Callable[[float], float],
                 clock: Callable[[], float] = time.perf_counter, *, t0: float | None = None,
                 name: str = "scripted", component: str = "gpu", **kwargs) -> None:
        super().__init__(name=name, component=component, **kwargs)
        self.fn = _as_function(fn, energy=False)
        self.clock = clock
        self.t0 = clock() if t0 is None else t0
        self.reads = 0
        self.failing: object = None

    def power_w(self) -> float:
        self.reads += 1
        if isinstance(self.failing, BaseException):
            raise self.failing
        if self.failing is not None:
            return self.failing  # type: ignore[return-value]
        return self.fn(self.clock() - self.t0)


class CounterSensor(EnergySensor):
    """An energy counter: ``offset_j + E(t)`` where ``E`` is the trace's exact integral.

    Args:
        fn: A :class:`Trace` or a cumulative-joule function of seconds since ``t0``.
        update_period_s: The counter only moves at multiples of this (NVML: 20-100 ms);
            0 means it is exact at every read.
        wrap_j: The raw counter wraps at this value (RAPL's ``max_energy_range_uj``).
        correct_wrap: Correct the wrap like a real sensor does (add ``wrap_j`` when the raw
            value drops); False exposes the raw, wrapping value.
    """

    def __init__(self, fn: Trace | Callable[[float], float],
                 clock: Callable[[], float] = time.perf_counter, *, t0: float | None = None,
                 update_period_s: float = 0.0, wrap_j: float | None = None,
                 correct_wrap: bool = True, offset_j: float = 12_345.0,
                 name: str = "counter", component: str = "gpu", **kwargs) -> None:
        super().__init__(name=name, component=component, **kwargs)
        self.fn = _as_function(fn, energy=True)
        self.clock = clock
        self.t0 = clock() if t0 is None else t0
        self.update_period_s = update_period_s
        self.wrap_j = wrap_j
        self.correct_wrap = correct_wrap
        self.offset_j = offset_j
        self._last_raw: float | None = None
        self._wraps = 0
        self.reads = 0

    def true_energy_j(self, t: float) -> float:
        """The counter's exact value at clock time ``t`` before quantisation and wrap."""
        return self.offset_j + self.fn(t - self.t0)

    def energy_j(self) -> float:
        self.reads += 1
        u = self.clock() - self.t0
        if self.update_period_s > 0:
            u = math.floor(u / self.update_period_s + 1e-9) * self.update_period_s
        raw = self.offset_j + self.fn(u)
        if self.wrap_j is None:
            return raw
        raw %= self.wrap_j
        if not self.correct_wrap:
            return raw
        if self._last_raw is not None and raw < self._last_raw:
            self._wraps += 1
        self._last_raw = raw
        return raw + self._wraps * self.wrap_j


FAULT_MODES = ("raise", "nan", "inf", "negative", "garbage", "none", "decreasing", "reset",
               "open", "open_error", "close")


class FaultySensor(Sensor):
    """A sensor that misbehaves on every ``every``-th read (``every=1``: always).

    Modes: ``raise`` (RuntimeError), ``nan``, ``inf``, ``negative``, ``garbage`` (a string),
    ``none``, ``decreasing`` (energy: a value below the last good one), ``reset`` (energy:
    from the ``every``-th read on, the counter restarts near 0 and keeps counting),
    ``open`` (open raises SensorUnavailable), ``open_error`` (open raises OSError),
    ``close`` (close raises). Good readings: ``value`` watts, or a counter growing at
    ``value`` W on ``clock``.
    """

    def __init__(self, mode: str, *, kind: str = "power", every: int = 1, value: float = 100.0,
                 clock: Callable[[], float] = time.perf_counter, name: str = "faulty",
                 component: str = "gpu", **kwargs) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}, got {mode!r}")
        super().__init__(name=name, component=component, **kwargs)
        self.mode, self._kind, self.every, self.value, self.clock = mode, kind, every, value, clock
        self.t0 = clock()
        self.reads = 0
        self.closed = False

    @property
    def kind(self) -> str:
        return self._kind

    def open(self) -> None:
        if self.mode == "open":
            raise SensorUnavailable("fake device is not there")
        if self.mode == "open_error":
            raise OSError("fake driver crashed")

    def close(self) -> None:
        self.closed = True
        if self.mode == "close":
            raise RuntimeError("fake close failure")

    def _good(self) -> float:
        if self._kind == "power":
            return self.value
        return 1000.0 + self.value * (self.clock() - self.t0)

    def _read(self) -> object:
        self.reads += 1
        if self.mode == "reset":
            if self.reads == self.every:
                self._reset_t = self.clock()
            if self.reads >= self.every:  # the counter restarted from 0 at _reset_t
                return self.value * (self.clock() - self._reset_t)
            return self._good()
        if self.reads % self.every or self.mode in ("open", "open_error", "close"):
            return self._good()
        if self.mode == "raise":
            raise RuntimeError("fake sensor failure")
        return {"nan": math.nan, "inf": math.inf, "negative": -5.0, "garbage": "n/a",
                "none": None, "decreasing": self._good() - 500.0}[self.mode]

    def power_w(self) -> object:
        return self._read()

    def energy_j(self) -> object:
        return self._read()


class BlockingSensor(PowerSensor):
    """Returns ``power`` after blocking ``seconds`` on every ``every``-th read.

    :meth:`release` ends the current and all later blocks (for clean-up).
    """

    def __init__(self, seconds: float, *, power: float = 100.0, every: int = 1,
                 name: str = "blocking", component: str = "cpu", **kwargs) -> None:
        super().__init__(name=name, component=component, **kwargs)
        self.seconds, self.power, self.every = seconds, power, every
        self._released = threading.Event()
        self.reads = 0
        self.blocks = 0

    def release(self) -> None:
        self._released.set()

    def power_w(self) -> float:
        self.reads += 1
        if self.reads % self.every == 0 and not self._released.is_set():
            self.blocks += 1
            self._released.wait(self.seconds)
        return self.power


# -- replay --------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    trace: str
    kind: str
    interval_s: float
    step_s: float
    true_j: float
    measured_j: float
    steps: int
    step_mean_abs_err: float  # mean |measured - true| / true over steps
    step_max_abs_err: float

    @property
    def total_rel_err(self) -> float:
        return (self.measured_j - self.true_j) / self.true_j


def drive_steps(sampler: Sampler, clock: FakeClock, sample: Callable[[], None], *, interval_s: float,
                step_s: float, duration_s: float, sample_phase_s: float) -> int:
    """Back-to-back steps of ``step_s`` from t=0 to ``duration_s`` (a ``begin`` boundary at 0,
    an ``end`` boundary after the last step), with ``sample()`` called at
    ``sample_phase_s + k * interval_s`` in between; leaves the clock at the next sample time.

    Returns the number of steps recorded.
    """
    n_steps = int(round(duration_s / step_s))
    next_sample = sample_phase_s
    previous = 0.0
    for k in range(n_steps + 1):
        t_mark = k * step_s
        while next_sample <= t_mark:
            clock.set(next_sample)
            sample()
            next_sample += interval_s
        clock.set(t_mark)
        if k:
            sampler.record_step(previous, t_mark, 1)
        else:
            sampler.mark(Boundary("begin"))
        if k < n_steps:
            sampler.open_t0 = previous = t_mark
        else:
            sampler.open_t0 = None
            sampler.mark(Boundary("end"))
    clock.set(next_sample)
    return n_steps


def replay(trace: Trace, *, kind: str = "power", interval_s: float = 0.1, step_s: float = 0.01,
           duration_s: float = 60.0, update_period_s: float = 0.0,
           sample_phase_s: float = 0.0013) -> ReplayResult:
    """Run ``trace`` through a power (or counter) sensor, Sampler and Ledger on a fake clock.

    Steps of ``step_s`` follow each other back to back from t=0 to ``duration_s``; the sampler
    reads at ``sample_phase_s + k * interval_s``. Returns total and per-step errors against the
    trace's exact integral.
    """
    clock = FakeClock(0.0)
    if kind == "power":
        sensor: Sensor = ScriptedPowerSensor(trace, clock, t0=0.0, name="s")
    else:
        sensor = CounterSensor(trace, clock, t0=0.0, update_period_s=update_period_s, name="s")
    errors: list[np.ndarray] = []
    ledger = Ledger([sensor.describe()], wall_offset_s=0.0)

    def on_steps(records: np.ndarray, start_cum: np.ndarray, end_cum: np.ndarray) -> None:
        ledger.feed_steps(records, start_cum, end_cum)
        measured = (end_cum - start_cum).sum(axis=1)
        true = np.array([trace.between(a, b) for a, b in records[:, :2]])
        errors.append(np.abs(measured - true) / true)

    sampler = Sampler([sensor], interval_s=interval_s, sink=ledger.feed, step_sink=on_steps, clock=clock)
    sampler.sample_once()  # the sampler starts before the first mark, as in a real run
    n_steps = drive_steps(sampler, clock, sampler.sample_once, interval_s=interval_s, step_s=step_s,
                          duration_s=duration_s, sample_phase_s=sample_phase_s)
    sampler.sample_once()
    sampler.stop()
    err = np.concatenate(errors)
    true = trace.between(0.0, n_steps * step_s)
    return ReplayResult(trace.name, kind, interval_s, step_s, true, ledger.energy_j, len(err),
                        float(err.mean()), float(err.max()))
