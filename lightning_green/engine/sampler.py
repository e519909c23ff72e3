"""The sampler: one background thread turns sensor readings into cumulative joules.

The training thread never waits on it. It calls :meth:`Sampler.mark` for rare events (a deque
append of ``(clock(), mark)``) and, for every step, appends one flat record to
:attr:`Sampler.step_buffer` (see :mod:`lightning_green.engine.marks`): no lock, no thread
wake, no sensor read. The sampler thread reads each sensor when it is due, keeps a
cumulative-joule series per sensor (starting at 0) and resolves, in batches, every mark and
step record older than its newest readings: marks one by one through ``sink(t, mark, cum_j)``,
step records vectorised through ``step_sink(records, start_cum_j, end_cum_j)``.

Semantics (see also :mod:`lightning_green.engine.series`):

* **Timestamps.** Each reading carries its own timestamp, the middle of its own read call. A
  sensor that blocks delays the sampler thread (and so the resolution of marks) but does not
  shift the other sensors' timestamps, and never blocks the training thread.
* **When sensors are read.** Each sensor every ``interval_s``, unless it asks for its own
  period (``read_interval_s``: an energy counter that loses nothing when read less often) or
  is constant (``read_interval_s = math.inf``: read once). Between reads the thread sleeps;
  it wakes at the next read that is due, at least every ``housekeeping_s``, and at once for
  :meth:`flush` and :meth:`stop`.
* **When marks and steps are resolved.** In batches, every ``housekeeping_s`` (default 1 s)
  and at every flush and stop: each batch costs a fixed ~0.1-0.3 ms of numpy work plus a
  fraction of a microsecond per step, so resolving a second's worth of steps at once keeps
  the per-step cost low however short the steps. ``on_round`` runs after each resolution.
* **Power sensors** are integrated by trapezoid; between two samples power is linear, so a
  mark inside an interval reads the matching quadratic.
* **Energy sensors** are differenced from their first accepted reading; a sample is added only
  when the counter moved, so a counter updated every 100 ms and read every 10 ms is
  interpolated between its real update points instead of as a staircase.
* **Bad readings** (an exception, a non-number, NaN/inf, a negative value, a decreasing
  counter) are rejected, counted in :attr:`Sampler.health` and warned about once per sensor
  and problem. Power over a gap is interpolated between the valid readings around it. Marks
  wait for a missing reading at most ``max_gap_s``; past that they are resolved with the
  sensor's energy held, and the gap's energy lands after the sensor recovers. A counter that
  goes backwards three reads in a row is treated as reset and rebased.
* :meth:`flush` and :meth:`stop` take a forced sample: every sensor is read, and one without
  a fresh reading is held (last power, or the counter's last value) up to that moment.
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

import numpy as np

from lightning_green.engine.marks import STEP_WIDTH
from lightning_green.engine.series import SensorHealth, Track
from lightning_green.validation import check_number

__all__ = ["Sampler", "SamplerSnapshot", "SensorHealth"]

log = logging.getLogger(__name__)

Sink = Callable[[float, Any, "tuple[float, ...]"], None]
StepSink = Callable[[np.ndarray, np.ndarray, np.ndarray], None]
#: Between steps, samples back to the last step's end are kept this long, so the next step's
#: start always finds the readings around it (a step in progress keeps them for any length).
RETAIN_S = 60.0


@dataclass(frozen=True)
class SamplerSnapshot:
    """The latest state: cumulative joules and recent watts per sensor, at sampler time ``t``
    (0.0 before the first sample)."""

    t: float
    energy_j: tuple[float, ...]
    power_w: tuple[float, ...]


class Sampler:
    """Samples sensors on one daemon thread and resolves marks and steps into cumulative joules.

    Args:
        sensors: The sensors to read; ``cum_j`` values follow this order. A sensor whose
            ``open()`` raises stays in place and contributes 0 (reason in ``health``).
        interval_s: Seconds between reads of a sensor that sets no ``read_interval_s``.
        sink: ``sink(t, mark, cum_j)`` for every mark, in time order, from the sampler thread.
        step_sink: ``step_sink(records, start_cum_j, end_cum_j)`` for resolved step records
            (arrays of shape ``(n, STEP_WIDTH)``, ``(n, sensors)``, ``(n, sensors)``).
        clock: Monotonic clock in seconds used for marks, steps and readings.
        name: Name of the thread (starts with ``lightning-green``).
        max_gap_s: How long marks wait for a sensor that has no valid reading (default
            ``max(1.0, 10 * interval_s)``, and at least three of the sensor's own periods).
        housekeeping_s: Marks and steps are resolved this often (default ``max(interval_s, 1.0)``).
        tick_s: Wake at least this often even when no sensor is due (live exporters want fresh
            figures); default ``housekeeping_s``.
        on_round: Called on the sampler thread after every round (live figures, exporters);
            ``resolved`` (the ledger is up to date) when the round resolved marks and steps.

    Example::

        sampler = Sampler([ConstantPowerSensor(100.0)], sink=lambda t, m, cum: print(m, cum))
        sampler.start()
        sampler.mark(Boundary("begin"))
        ...
        sampler.stop()
    """

    def __init__(
        self,
        sensors: Sequence[Any],
        interval_s: float = 0.1,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.perf_counter,
        name: str = "lightning-green-sampler",
        *,
        step_sink: StepSink | None = None,
        max_gap_s: float | None = None,
        housekeeping_s: float | None = None,
        tick_s: float | None = None,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        check_number("interval_s", interval_s, exclusive_minimum=0.0)
        check_number("max_gap_s", max_gap_s, exclusive_minimum=0.0, optional=True)
        check_number("housekeeping_s", housekeeping_s, exclusive_minimum=0.0, optional=True)
        check_number("tick_s", tick_s, exclusive_minimum=0.0, optional=True)
        for label, fn in (("sink", sink), ("step_sink", step_sink), ("on_round", on_round)):
            if fn is not None and not callable(fn):
                raise ValueError(f"{label} must be a callable or None, got {fn!r}")
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
        self.housekeeping_s = float(housekeeping_s) if housekeeping_s else max(self.interval_s, 1.0)
        self.tick_s = min(float(tick_s), self.housekeeping_s) if tick_s else self.housekeeping_s
        self.resolved = False  # whether the latest round resolved marks and steps
        self.name = name
        self.health: dict[str, SensorHealth] = {n: SensorHealth() for n in names}
        self.warnings: list[str] = []
        self.sink_errors = 0
        self.rounds = 0
        self.resolutions = 0
        self._last_resolve = -math.inf
        self._sink = sink
        self._step_sink = step_sink
        self._on_round = on_round
        self._clock = clock
        self._tracks = [Track(s, self.health[s.name]) for s in self.sensors]
        self._marks: collections.deque = collections.deque()
        self._append = self._marks.append  # swapped for a discarding append at stop()
        #: Flat step records (:data:`~lightning_green.engine.marks.STEP_FIELDS`), appended by
        #: the training thread with one ``extend`` per step; consumed by the sampler thread.
        self.step_buffer: list[float] = []
        #: Start time of the step in progress (set by the training thread), or None.
        self.open_t0: float | None = None
        self._last_step_end = -math.inf
        self.steps_resolved = 0
        self._warned: set[tuple[str, str]] = set()
        self._snapshot = SamplerSnapshot(0.0, (0.0,) * len(names), (0.0,) * len(names))
        self._last_t = -math.inf
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
    def mark(self, mark: Any) -> None:
        """Record ``(clock(), mark)``; never waits. Harmless (dropped) after :meth:`stop`."""
        self._append((self._clock(), mark))

    def record_step(self, start_t: float, end_t: float, samples: int = 0, tokens: int = 0,
                    padded_tokens: int = 0, phase: int = 0, epoch: int = -1) -> None:
        """Append one step record (the hot path appends to :attr:`step_buffer` directly)."""
        if not self._stopping.is_set():
            self.step_buffer.extend((start_t, end_t, samples, tokens, padded_tokens, phase, epoch))

    def snapshot(self) -> SamplerSnapshot:
        """Latest cumulative joules and recent power per sensor (thread safe, no lock)."""
        return self._snapshot

    def live_energy_j(self) -> float:
        """Energy of every sensor up to now: the latest readings, constant power carried on."""
        snap = self._snapshot
        total = math.fsum(snap.energy_j)
        now = self._clock()
        for index, track in enumerate(self._tracks):
            if track.constant and track.has_samples and now > snap.t:
                total += snap.power_w[index] * (now - snap.t)
        return total

    @property
    def pending_marks(self) -> int:
        """Marks and step records recorded but not yet resolved."""
        return len(self._marks) + len(self.step_buffer) // STEP_WIDTH

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the daemon thread; it opens the sensors and samples until :meth:`stop`."""
        with self._lifecycle:
            if self._stopping.is_set():
                raise RuntimeError("Sampler.start(): this sampler was stopped; create a new one")
            if self._thread is not None:
                return
            if self._opened:
                raise RuntimeError("Sampler.start(): sample_once() already drives this sampler")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wait_ready(self, timeout_s: float = 2.0) -> bool:
        """Wait until the thread has opened the sensors and taken its first sample."""
        return self._ready.wait(timeout_s)

    def sample_once(self, force: bool = False) -> None:
        """Take one round (read every sensor that is due, resolve) in the calling thread.

        For deterministic use with a fake clock; ``force=True`` reads every sensor, like a flush.
        """
        if self._thread is not None:
            raise RuntimeError("Sampler.sample_once(): the sampler thread is running; use flush()")
        if self._stopping.is_set():
            return
        if not self._opened:
            self._open()
        self._round(force=force, final=False)

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Read now and resolve every mark and step recorded before this call; True when done
        in time. For epoch and phase ends, never per batch."""
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
        """Final reading, every pending mark and step resolved, sensors closed, thread joined.

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
                    ("sampler", "stop"),
                    f"sampler thread {self.name!r} did not stop within {timeout_s} s (a sensor "
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

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sampler(sensors={[s.name for s in self.sensors]}, interval_s={self.interval_s})"

    # -- sampler thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._open()
            if not self._finished:
                self._round(force=False, final=False)
            self._ready.set()
            while True:
                self._wake.clear()  # before the checks: a later stop() or flush() re-sets it
                if self._stopping.is_set() or self._finished:
                    break
                ticket = self._flush_requested
                flushing = ticket > self._flush_done
                now = self._clock()
                self._round(force=flushing, final=False,
                            resolve=flushing or now - self._last_resolve >= self.housekeeping_s)
                if ticket > self._flush_done:
                    with self._cond:
                        self._flush_done = ticket
                        self._cond.notify_all()
                self._wake.wait(self._sleep_s())
            self._round(force=True, final=True)
        except Exception as err:  # a bug here must not leave marks piling up
            self._append = collections.deque(maxlen=0).append
            self._warn(("sampler", "crash"), f"sampler thread failed: {type(err).__name__}: {err}")
            self._finish_without_reading()
        finally:
            self._ready.set()
            self._close()
            with self._cond:
                self._cond.notify_all()

    def _sleep_s(self) -> float:
        now = self._clock()
        due = min((t.next_due for t in self._tracks if t.live and not t.constant), default=math.inf)
        return max(0.0, min(due - now, self._last_resolve + self.housekeeping_s - now, self.tick_s))

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

    def _round(self, *, force: bool, final: bool, resolve: bool = True) -> None:
        skip_slow = final or self._stopping.is_set()
        readings = []
        before = self._clock()
        for track in self._tracks:
            if not track.live or (skip_slow and track.health.max_read_s > self._slow_s):
                continue
            if track.constant and track.has_samples:
                continue
            period = track.interval_s or self.interval_s
            if not force and before < track.next_due - 0.01 * period:  # due (clock jitter allowed)
                continue
            value, error = track.read_raw()
            after = self._clock()
            readings.append((track, 0.5 * (before + after), after - before, value, error))
            track.next_due = before + period
            before = after
            if self._finished:
                return
        with self._state:
            if self._finished:
                return
            self._apply(readings, before, force=force)
            self.rounds += 1
            self.resolved = resolve or final
            if self.resolved:
                self._resolve(math.inf if final else self._horizon(before))
                self._last_resolve = before
                self.resolutions += 1
            if final:
                self._finished = True
        if self._on_round is not None:
            try:
                self._on_round()
            except Exception as err:
                self._warn(("sampler", "on_round"), f"on_round raised {type(err).__name__}: {err}")

    def _finish_without_reading(self) -> None:
        with self._state:
            if not self._finished:
                self._apply([], self._clock(), force=True)
                self._resolve(math.inf)
                self._finished = True

    def _max_gap(self, track: Track) -> float:
        return max(self.max_gap_s, 3.0 * (track.interval_s or self.interval_s))

    def _apply(self, readings: list, now: float, *, force: bool) -> None:
        for track, stamp, read_s, value, error in readings:
            if read_s > self._slow_s:
                self._warn(
                    (track.name, "slow"),
                    f"sensor {track.name!r} took {read_s:.2f} s to read; the sampler thread "
                    "waited (training did not)",
                )
            problem = track.accept(stamp, read_s, value, error, self._max_gap(track))
            if problem is not None:
                kind, text = problem
                self._warn((track.name, kind), f"sensor {track.name!r}: {text}")
        for track in self._tracks:
            if not track.live or track.constant:
                continue
            if now - track.t_valid > self._max_gap(track):
                self._warn(
                    (track.name, "gap"),
                    f"sensor {track.name!r} gave no valid reading for more than "
                    f"{self._max_gap(track):g} s; its energy is held meanwhile and the gap is "
                    "accounted when readings resume",
                )
            elif force:
                track.hold(now)
        self._snapshot = SamplerSnapshot(
            now,
            tuple(t.value_at(now) if t.constant else t.cum for t in self._tracks),
            tuple(t.power for t in self._tracks),
        )

    def _horizon(self, now: float) -> float:
        horizon = now
        for track in self._tracks:
            if track.constant or not track.live or not track.has_samples:
                continue
            if now - track.t_valid <= self._max_gap(track):
                horizon = min(horizon, track.t_last)
        return horizon

    def _resolve(self, horizon: float) -> None:
        """Resolve the marks and step records up to ``horizon``, then drop unneeded samples."""
        marks, tracks, last = self._marks, self._tracks, self._last_t
        buffer = self.step_buffer
        open_t0 = self.open_t0
        count = len(buffer) - len(buffer) % STEP_WIDTH  # extend() is atomic: whole records
        records = None
        if count:
            pending = np.array(buffer[:count], dtype=np.float64).reshape(-1, STEP_WIDTH)
            n = int(np.searchsorted(pending[:, 1], horizon, side="right")) if horizon < math.inf else len(pending)
            if n:
                records = pending[:n]
                del buffer[: n * STEP_WIDTH]
            if n < len(pending):
                open_t0 = float(pending[n, 0])
        # A mark made during a step that is not resolved yet waits for it: times resolve in order.
        event_horizon = horizon if open_t0 is None or horizon == math.inf else min(horizon, open_t0)
        events = []
        while marks and marks[0][0] <= event_horizon:
            events.append(marks.popleft())
        n_events = len(events)
        if n_events or records is not None:
            times = [t for t, _ in events]
            if records is not None:
                times = np.concatenate((times, records[:, 0], records[:, 1]))
            times = np.maximum(np.asarray(times, dtype=np.float64), last)
            order = np.argsort(times, kind="stable")
            sorted_times = times[order]
            cum = np.empty((len(times), len(tracks)))
            for j, track in enumerate(tracks):
                cum[order, j] = track.cum_many(sorted_times)
            last = max(last, float(sorted_times[-1]))
            sink = self._sink
            if sink is not None:
                for i, (_, mark) in enumerate(events):
                    try:
                        sink(float(times[i]), mark, tuple(cum[i].tolist()))
                    except Exception as err:
                        self.sink_errors += 1
                        self._warn(("sampler", "sink"), f"sink raised {type(err).__name__}: {err}")
            if records is not None:
                n = len(records)
                records[:, 0] = times[n_events:n_events + n]
                records[:, 1] = times[n_events + n:]
                self._last_step_end = float(records[-1, 1])
                self.steps_resolved += n
                if self._step_sink is not None:
                    try:
                        self._step_sink(records, cum[n_events:n_events + n], cum[n_events + n:])
                    except Exception as err:
                        self.sink_errors += 1
                        self._warn(("sampler", "step_sink"), f"step_sink raised {type(err).__name__}: {err}")
        self._last_t = last
        for track in tracks:
            track.prune(self._keep_from(horizon))

    def _keep_from(self, horizon: float) -> float:
        """The earliest time a mark or step still to come may need a reading for."""
        keep = horizon
        if self._marks:
            keep = min(keep, self._marks[0][0])
        if len(self.step_buffer) >= STEP_WIDTH:
            keep = min(keep, self.step_buffer[0])
        open_t0 = self.open_t0
        if open_t0 is not None:
            keep = min(keep, open_t0)
        elif horizon - self._last_step_end < RETAIN_S:
            keep = min(keep, self._last_step_end)  # the next step starts after the last one ended
        return keep

    def _warn(self, key: tuple[str, str], message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(message)
        log.warning("lightning-green: %s", message)
