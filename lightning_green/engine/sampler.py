"""The sampling meter: one background thread turns sensor readings into cumulative joules.

The training thread only calls :meth:`Meter.mark`, which appends ``(clock(), label)`` to a
deque: no lock, no thread wake, no sensor read. The meter thread reads every sensor each
``interval_s``, keeps a cumulative-joule series per sensor (starting at 0) and resolves
marks in time order by interpolating each series at the mark time, then calls
``sink(t, label, cum_j)`` from the meter thread (or from the caller of :meth:`Meter.stop`
when the thread could not be joined in time).

Semantics (see also ``lightning_green/_series.py``):

* **Timestamps.** Each reading carries its own timestamp: the middle of its own read call.
  A sensor that blocks delays the meter thread (and so the resolution of marks) but does
  not shift the other sensors' timestamps, and never blocks :meth:`Meter.mark`.
* **Power sensors** are integrated by trapezoid. Between two samples power is taken as
  linear, so the cumulative energy at a mark is the matching quadratic: marks and the
  trapezoid agree exactly, and a linear power ramp is attributed exactly.
* **Energy sensors** are differenced from their first accepted reading. A reading adds a
  sample only when the counter moved (or no sample was added for ``max_gap_s``, or at a
  flush/stop), so a counter that updates every 100 ms and is read every 10 ms is
  interpolated between its real update points instead of as a staircase.
* **Bad readings** (an exception, a non-number, NaN/inf, a negative value, a decreasing
  counter) are rejected, counted in :attr:`Meter.health` and warned about once per sensor
  and problem. Power over a gap is interpolated linearly between the valid readings around
  it. Marks wait for a missing reading at most ``max_gap_s``; past that they are resolved
  with the sensor's energy held and the gap's energy lands after the sensor recovers. A
  counter that goes backwards three reads in a row is treated as reset and rebased.
* :meth:`Meter.flush` and :meth:`Meter.stop` take a forced sample: a sensor without a
  fresh reading is held (last power, or the counter's last value) up to that moment.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_green.engine.series import SensorHealth, Track

__all__ = ["Meter", "MeterSnapshot", "SensorHealth"]

log = logging.getLogger(__name__)

Sink = Callable[[float, tuple, "tuple[float, ...]"], None]


@dataclass(frozen=True)
class MeterSnapshot:
    """The latest state of the meter: cumulative joules and recent watts per sensor.

    ``t`` is the meter clock at the last sample (0.0 before the first one).
    """

    t: float
    energy_j: tuple[float, ...]
    power_w: tuple[float, ...]


class Meter:
    """Samples sensors on one daemon thread and resolves marks into cumulative joules.

    Args:
        sensors: The sensors to read; ``cum_j`` tuples follow this order. A sensor whose
            ``open()`` raises stays in place and contributes 0 (reason in ``health``).
        interval_s: Seconds between samples (default 0.1).
        sink: ``sink(t, label, cum_j)`` for every mark, in time order, from the meter thread.
        clock: Monotonic clock in seconds used for marks and readings.
        name: Name of the thread (starts with ``lightning-green``).
        max_gap_s: How long marks wait for a sensor that has no valid reading (default
            ``max(1.0, 10 * interval_s)``).

    Example::

        meter = Meter([ConstantPowerSensor(100.0)], sink=lambda t, label, cum: print(label, cum))
        meter.start()
        meter.mark(("step_start", 0))
        ...
        meter.stop()
    """

    def __init__(
        self,
        sensors: Sequence[Any],
        interval_s: float = 0.1,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.perf_counter,
        name: str = "lightning-green-meter",
        *,
        max_gap_s: float | None = None,
    ) -> None:
        if not _positive(interval_s):
            raise ValueError(f"interval_s must be a finite number > 0, got {interval_s!r}")
        if max_gap_s is not None and not _positive(max_gap_s):
            raise ValueError(f"max_gap_s must be None or a finite number > 0, got {max_gap_s!r}")
        if sink is not None and not callable(sink):
            raise ValueError(f"sink must be a callable(t, label, cum_j) or None, got {sink!r}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable returning seconds, got {clock!r}")
        self.sensors = list(sensors)
        names = [getattr(s, "name", None) for s in self.sensors]
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            raise ValueError(f"sensors must each have a non-empty str name, got {bad!r}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sensors must have unique names, got duplicates {dupes}")
        self.interval_s = float(interval_s)
        self.max_gap_s = float(max_gap_s) if max_gap_s else max(1.0, 10 * self.interval_s)
        self.name = name
        self.health: dict[str, SensorHealth] = {n: SensorHealth() for n in names}
        self.warnings: list[str] = []
        self.sink_errors = 0
        self._sink = sink
        self._clock = clock
        self._tracks = [Track(s, self.health[s.name]) for s in self.sensors]
        self._marks: collections.deque = collections.deque()
        self._append = self._marks.append  # swapped for a discarding append at stop()
        self._warned: set[tuple[str, str]] = set()
        self._snapshot = MeterSnapshot(0.0, (0.0,) * len(names), (0.0,) * len(names))
        self._last_mark_t = -math.inf
        self._slow_s = max(0.5, self.interval_s)
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()
        self._state = threading.Lock()  # held while applying readings / resolving marks
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._opened = False
        self._finished = False
        self._flush_requested = 0
        self._flush_done = 0

    # -- training-thread API -------------------------------------------------------------
    def mark(self, label: tuple) -> None:
        """Record ``(clock(), label)``; never waits. Harmless (dropped) after :meth:`stop`."""
        self._append((self._clock(), label))

    def snapshot(self) -> MeterSnapshot:
        """Latest cumulative joules and recent power per sensor (thread safe, no lock)."""
        return self._snapshot

    @property
    def pending_marks(self) -> int:
        """Marks recorded but not yet resolved."""
        return len(self._marks)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the daemon thread; it opens the sensors and samples until :meth:`stop`."""
        with self._lifecycle:
            if self._stopping.is_set():
                raise RuntimeError("Meter.start(): this meter was stopped; create a new Meter")
            if self._thread is not None:
                return
            if self._opened:
                raise RuntimeError("Meter.start(): sample_once() already drives this meter")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wait_ready(self, timeout_s: float = 2.0) -> bool:
        """Wait until the thread has opened the sensors and taken its first sample."""
        return self._ready.wait(timeout_s)

    def sample_once(self, force: bool = False) -> None:
        """Take one sample and resolve marks in the calling thread (no thread started).

        For deterministic use with a fake clock; ``force=True`` behaves like a flush.
        """
        if self._thread is not None:
            raise RuntimeError("Meter.sample_once(): the meter thread is running; use flush()")
        if self._stopping.is_set():
            return
        if not self._opened:
            self._open()
        self._round(force=force, final=False)

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Sample now and resolve every mark made before this call; True when done in time.

        For epoch and phase ends, never per batch.
        """
        if self._stopping.is_set():
            return self._finished
        thread = self._thread
        if thread is None:
            if not self._opened:
                return False
            self._round(force=True, final=False)
            return True
        if not thread.is_alive() or threading.current_thread() is thread:
            return False
        with self._cond:
            self._flush_requested += 1
            ticket = self._flush_requested
        self._wake.set()
        with self._cond:
            self._cond.wait_for(lambda: self._flush_done >= ticket or self._finished, timeout_s)
            return self._flush_done >= ticket or self._finished

    def stop(self, timeout_s: float = 5.0) -> None:
        """Final sample, resolve every pending mark, close the sensors, join the thread.

        Idempotent. A sensor blocking longer than ``timeout_s`` is abandoned: the marks are
        resolved here with the energy held, and the thread closes the sensors when the read
        returns.
        """
        with self._lifecycle:
            if self._stopping.is_set():
                return
            self._stopping.set()
        self._append = collections.deque(maxlen=0).append
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                self._warn(
                    ("meter", "stop"),
                    f"meter thread {self.name!r} did not stop within {timeout_s} s (a sensor "
                    "is blocking); pending marks were resolved with the energy held",
                )
                self._finish_without_reading()
        else:
            if self._opened:
                self._round(force=True, final=True)
                self._close()
            else:
                self._finish_without_reading()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> Meter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Meter(sensors={[s.name for s in self.sensors]}, interval_s={self.interval_s})"

    # -- meter thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._open()
            if not self._finished:
                self._round(force=False, final=False)
            self._ready.set()
            while True:
                began = time.monotonic()
                self._wake.clear()  # before the checks: a later stop() or flush() re-sets it
                if self._stopping.is_set() or self._finished:
                    break
                ticket = self._flush_requested
                self._round(force=ticket > self._flush_done, final=False)
                if ticket > self._flush_done:
                    with self._cond:
                        self._flush_done = ticket
                        self._cond.notify_all()
                self._wake.wait(max(0.0, self.interval_s - (time.monotonic() - began)))
            self._round(force=True, final=True)
        except Exception as err:  # a bug here must not leave marks piling up
            self._append = collections.deque(maxlen=0).append
            self._warn(("meter", "crash"), f"meter thread failed: {type(err).__name__}: {err}")
            self._finish_without_reading()
        finally:
            self._ready.set()
            self._close()
            with self._cond:
                self._cond.notify_all()

    def _open(self) -> None:
        self._opened = True
        now = self._clock()
        for track in self._tracks:
            if self._finished:
                return
            reason = track.open(now)
            if reason is not None:
                self._warn((track.name, "open"), f"sensor {track.name!r} disabled: {reason}")

    def _close(self) -> None:
        for track in self._tracks:
            problem = track.close()
            if problem is not None:
                self._warn((track.name, "close"), f"sensor {track.name!r} close() raised {problem}")

    def _round(self, *, force: bool, final: bool) -> None:
        skip_slow = final or self._stopping.is_set()
        readings = []
        before = self._clock()
        for track in self._tracks:
            if not track.live or (skip_slow and track.health.max_read_s > self._slow_s):
                continue
            value, error = track.read_raw()
            after = self._clock()
            readings.append((track, 0.5 * (before + after), after - before, value, error))
            before = after
            if self._finished:
                return
        with self._state:
            if self._finished:
                return
            self._apply(readings, before, force=force)
            self._resolve(math.inf if final else self._horizon(before))
            if final:
                self._finished = True

    def _finish_without_reading(self) -> None:
        with self._state:
            if not self._finished:
                self._apply([], self._clock(), force=True)
                self._resolve(math.inf)
                self._finished = True

    def _apply(self, readings: list, now: float, *, force: bool) -> None:
        for track, stamp, read_s, value, error in readings:
            if read_s > self._slow_s:
                self._warn(
                    (track.name, "slow"),
                    f"sensor {track.name!r} took {read_s:.2f} s to read; the meter thread "
                    "waited (training did not)",
                )
            problem = track.accept(stamp, read_s, value, error, self.max_gap_s)
            if problem is not None:
                kind, text = problem
                self._warn((track.name, kind), f"sensor {track.name!r}: {text}")
        for track in self._tracks:
            if track.live and now - track.t_valid > self.max_gap_s:
                self._warn(
                    (track.name, "gap"),
                    f"sensor {track.name!r} gave no valid reading for more than "
                    f"{self.max_gap_s:g} s; its energy is held meanwhile and the gap is "
                    "accounted when readings resume",
                )
            elif force and track.live:
                track.hold(now)
        self._snapshot = MeterSnapshot(
            now, tuple(t.cum for t in self._tracks), tuple(t.power for t in self._tracks)
        )

    def _horizon(self, now: float) -> float:
        horizon = now
        for track in self._tracks:
            if track.live and track.has_samples and now - track.t_valid <= self.max_gap_s:
                horizon = min(horizon, track.t_last)
        return horizon

    def _resolve(self, horizon: float) -> None:
        marks, tracks, sink = self._marks, self._tracks, self._sink
        last = self._last_mark_t
        while marks and marks[0][0] <= horizon:
            t, label = marks.popleft()
            if t < last:
                t = last
            last = t
            cum = tuple([track.cum_at(t) for track in tracks])
            if sink is not None:
                try:
                    sink(t, label, cum)
                except Exception as err:
                    self.sink_errors += 1
                    self._warn(("meter", "sink"), f"sink raised {type(err).__name__}: {err}")
        self._last_mark_t = last
        keep = min(marks[0][0], horizon) if marks else horizon
        for track in tracks:
            track.prune(keep)

    def _warn(self, key: tuple[str, str], message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(message)
        log.warning("lightning-green: %s", message)


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
