"""One sensor's cumulative-joule series inside the sampler (private to :mod:`lightning_green.engine`).

A :class:`Track` owns the sensor's samples ``(t, cum_j, power_w)`` and answers
:meth:`Track.cum_many` for the times of marks and steps. It is touched by one thread at a
time (the sampler holds its lock).

* Power: ``cum`` grows by the trapezoid ``(p_prev + p) / 2 * dt``; between two samples
  power is linear, so ``cum_many`` is the matching quadratic (exact for a linear ramp and
  consistent with the trapezoid at every sample).
* Energy: ``cum = base + (value - ref)``; a sample is added only when the counter moved
  (or after ``max_gap_s`` of a flat counter, or at a forced hold); ``cum_many`` is linear.
* Constant power (a sensor whose ``read_interval_s`` is ``math.inf``, e.g. a nameplate value or
  the RAM estimate): read once; after its last sample the series goes on at that power, so
  it never holds back the resolution of marks and never needs another read.
* Before its first sample a series reads 0; after its last sample it holds its last value
  (constant power: extrapolates).
* Values never decrease from one call to the next (times come in order), so rounding can
  never produce a negative interval.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_green.sensors.base import SensorUnavailable

RESET_AFTER_READS = 3  # a counter going backwards this many reads in a row was reset


@dataclass
class SensorHealth:
    """What happened to one sensor during a run.

    Attributes:
        reads: Valid readings accepted.
        errors: Reads that raised.
        rejected: Readings returned but refused (not a number, NaN/inf, negative,
            a counter going backwards).
        disabled_reason: Why the sensor contributes nothing (``open()`` failed), else None.
        last_error: The latest error or rejection, human readable.
        max_read_s: Longest single read, in seconds.
    """

    reads: int = 0
    errors: int = 0
    rejected: int = 0
    disabled_reason: str | None = None
    last_error: str | None = None
    max_read_s: float = 0.0


class Track:
    """The cumulative series of one sensor (see module docstring)."""

    __slots__ = (
        "sensor", "name", "health", "kind", "live", "opened", "_read", "samples", "t_last",
        "cum", "power", "t_valid", "ref", "base", "value", "backwards", "emitted", "interval_s",
        "constant", "next_due",
    )

    def __init__(self, sensor: Any, health: SensorHealth) -> None:
        self.sensor = sensor
        self.name: str = sensor.name
        self.health = health
        self.kind: str | None = None
        self.live = False
        self.opened = False
        self._read: Any = None
        self.samples: collections.deque = collections.deque()
        self.t_last = -math.inf  # time of the last sample
        self.cum = 0.0  # cumulative joules at the last sample
        self.power = 0.0  # power at the last sample (counters: rate over the last rise)
        self.t_valid = -math.inf  # time of the last valid reading (or of open())
        self.ref: float | None = None  # counter value that maps to ``base``
        self.base = 0.0
        self.value: float | None = None  # last accepted counter value
        self.backwards = 0
        self.emitted = 0.0
        interval = getattr(sensor, "read_interval_s", None)
        #: Seconds between reads (None: the sampler's interval; inf: constant power, read once).
        self.interval_s: float | None = None if interval is None else float(interval)
        self.constant = self.interval_s == math.inf
        self.next_due = -math.inf  # sampler clock time of the next read

    @property
    def has_samples(self) -> bool:
        return self.t_last > -math.inf

    # -- lifecycle ---------------------------------------------------------------------
    def open(self, now: float) -> str | None:
        """Open the sensor; return the reason it is disabled, or None."""
        try:
            self.sensor.open()
            self.opened = True
            kind = self.sensor.kind
            if kind not in ("power", "energy"):
                raise ValueError(f"sensor.kind must be 'power' or 'energy', got {kind!r}")
        except Exception as err:
            if isinstance(err, SensorUnavailable) and str(err):
                reason = str(err)
            else:
                reason = f"open() raised {type(err).__name__}: {err}"
            self.health.disabled_reason = reason
            return reason
        if self.constant and kind != "power":
            self.constant = False  # a counter is differenced whatever it claims
            self.interval_s = None
        self.kind = kind
        self._read = self.sensor.power_w if kind == "power" else self.sensor.energy_j
        self.live = True
        self.t_valid = now
        return None

    def close(self) -> str | None:
        """Close the sensor once; return a description of the error it raised, or None."""
        self.live = False
        if not self.opened:
            return None
        self.opened = False
        try:
            self.sensor.close()
        except Exception as err:
            return f"{type(err).__name__}: {err}"
        return None

    def read_raw(self) -> tuple[Any, Exception | None]:
        try:
            return self._read(), None
        except Exception as err:
            return None, err

    # -- readings --------------------------------------------------------------------
    def accept(
        self, t: float, read_s: float, value: Any, error: Exception | None, max_gap_s: float
    ) -> tuple[str, str] | None:
        """Validate and add one reading; return ``(problem_kind, text)`` for a bad one."""
        health = self.health
        if read_s > health.max_read_s:
            health.max_read_s = read_s
        if error is not None:
            health.errors += 1
            health.last_error = f"{type(error).__name__}: {error}"
            return "error", f"read raised {health.last_error}; reading skipped, sensor retried"
        try:
            x = float(value)
        except (TypeError, ValueError):
            return self._reject("type", f"returned {value!r}, not a number; reading rejected")
        if not math.isfinite(x):
            return self._reject("nonfinite", f"returned {x!r}; reading rejected")
        if x < 0:
            return self._reject("negative", f"returned a negative value {x!r}; reading rejected")
        if self.kind == "power":
            return self._add_power(t, x)
        return self._add_energy(t, x, max_gap_s)

    def _reject(self, kind: str, text: str) -> tuple[str, str]:
        self.health.rejected += 1
        self.health.last_error = text
        return kind, text

    def _valid(self, t: float) -> None:
        self.health.reads += 1
        if t > self.t_valid:
            self.t_valid = t

    def _push(self, t: float, cum: float, power: float) -> None:
        self.samples.append((t, cum, power))
        self.t_last, self.cum, self.power = t, cum, power

    def _add_power(self, t: float, p: float) -> None:
        self._valid(t)
        if not self.has_samples:
            self._push(t, 0.0, p)
        elif t > self.t_last:
            self._push(t, self.cum + 0.5 * (self.power + p) * (t - self.t_last), p)

    def _add_energy(self, t: float, v: float, max_gap_s: float) -> tuple[str, str] | None:
        problem = None
        if self.ref is None:
            self.ref = self.value = v
        elif v < self.value:
            self.backwards += 1
            if self.backwards < RESET_AFTER_READS:
                return self._reject(
                    "decreasing", f"counter went backwards ({self.value!r} -> {v!r}); rejected"
                )
            self.base += self.value - self.ref  # continue from the last accepted value
            self.ref = v
            problem = ("reset", f"counter went backwards {RESET_AFTER_READS} reads in a row; "
                       "treated as a counter reset (the energy since the last valid read is lost)")
        self.backwards = 0
        self.value = v
        self._valid(t)
        cum = self.base + (v - self.ref)
        if not self.has_samples:
            self._push(t, cum, 0.0)
        elif t > self.t_last and (cum > self.cum or problem or t - self.t_last >= max_gap_s):
            self._push(t, cum, (cum - self.cum) / (t - self.t_last))
        return problem

    def hold(self, now: float) -> None:
        """Forced sample at ``now`` (flush/stop): hold the last power or counter value."""
        if not self.has_samples or now <= self.t_last:
            return
        if self.kind == "power":
            self._push(now, self.cum + self.power * (now - self.t_last), self.power)
        else:
            cum = max(self.cum, self.base + (self.value - self.ref))
            self._push(now, cum, self.power)

    # -- marks ---------------------------------------------------------------------
    def value_at(self, t: float) -> float:
        """The series at ``t`` without recording it (for live figures: constant power goes on)."""
        if not self.has_samples:
            return self.emitted
        if self.constant and t > self.t_last:
            return self.cum + self.power * (t - self.t_last)
        return self.cum

    def cum_many(self, times: np.ndarray) -> np.ndarray:
        """Cumulative joules at ``times`` (non-decreasing, and not before an earlier call's)."""
        s = self.samples
        if not s:
            out = np.full(len(times), self.emitted)
            return out
        if len(s) == 1:
            t0, c0, p0 = s[0]
            if self.constant:
                out = c0 + p0 * np.maximum(times - t0, 0.0)
            else:
                out = np.full(len(times), c0)
        else:
            arr = np.array(s)
            ts, cs, ps = arr[:, 0], arr[:, 1], arr[:, 2]
            last = len(ts) - 1
            index = np.searchsorted(ts, times, side="right") - 1
            seg = np.clip(index, 0, last - 1)
            t0, t1 = ts[seg], ts[seg + 1]
            c0 = cs[seg]
            x = np.clip(times - t0, 0.0, None)
            if self.kind == "power":
                p0, p1 = ps[seg], ps[seg + 1]
                out = c0 + x * (p0 + (p1 - p0) * x / (2.0 * (t1 - t0)))
            else:
                out = c0 + (cs[seg + 1] - c0) * (x / (t1 - t0))
            out = np.where(index < 0, cs[0], out)
            after = index >= last
            if after.any():
                tail = cs[last] + (ps[last] * (times - ts[last]) if self.constant else 0.0)
                out = np.where(after, tail, out)
        np.maximum(out, self.emitted, out=out)
        np.maximum.accumulate(out, out=out)
        if len(out):
            self.emitted = float(out[-1])
        return out

    def prune(self, keep_t: float) -> None:
        """Drop samples no time at or after ``keep_t`` can need."""
        s = self.samples
        while len(s) > 1 and s[1][0] <= keep_t:
            s.popleft()
