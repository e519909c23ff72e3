"""One measuring segment of one process: sensors -> sampler -> ledger -> step store.

Framework-free (no Lightning import). The training thread only records marks and steps;
everything else runs on the sampler's thread or at the start and end of the segment. The
segment's figures come out as one :class:`~lightning_green.engine.totals.Totals` value.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from lightning_green.engine.ledger import WORK_KEYS, Ledger
from lightning_green.engine.marks import PHASES, Boundary, PhaseMark
from lightning_green.engine.sampler import Sampler
from lightning_green.engine.steps import StepStore
from lightning_green.engine.totals import Totals

__all__ = ["Session", "unique_names"]


def unique_names(sensors: Sequence[Any]) -> None:
    """Give sensors that share a name a ``#n`` suffix, so the ledger keeps them apart."""
    seen: dict[str, int] = {}
    for sensor in sensors:
        count = seen.get(sensor.name, 0) + 1
        seen[sensor.name] = count
        if count > 1:
            sensor.name = f"{sensor.name}#{count}"


def _band_j(description: dict[str, Any], energy_j: float, duration_s: float) -> float:
    """Half-width of a sensor's uncertainty band: max(relative x energy, floor W x time)."""
    rel = description.get("uncertainty_rel")
    floor_w = description.get("uncertainty_w")
    parts = [abs(energy_j) * float(rel) if isinstance(rel, (int, float)) else 0.0,
             float(floor_w) * duration_s if isinstance(floor_w, (int, float)) else 0.0]
    return max(parts)


class Session:
    """Measure ``sensors`` from :meth:`start` to :meth:`stop` and attribute the energy.

    Args:
        sensors: The sensors this process reads (already chosen by scope and host).
        interval_s: Sampling interval of power sensors.
        first_step: Number of the first step row (continues a resumed run's count).
        on_round: Called on the sampler thread after each round.
        tick_s: Wake the sampler at least this often (live exporters).
        clock: Monotonic clock (seconds) of marks, steps and readings.
    """

    def __init__(
        self,
        sensors: Sequence[Any],
        interval_s: float,
        *,
        first_step: int = 0,
        on_round: Callable[[], None] | None = None,
        tick_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        unique_names(sensors)
        self.sensors = list(sensors)
        self.descriptions = [sensor.describe() for sensor in self.sensors]
        self.components = list(dict.fromkeys(d["component"] for d in self.descriptions))
        self._spill_dir = tempfile.mkdtemp(prefix="lightning-green-")
        self.store = StepStore(self.components, os.path.join(self._spill_dir, "steps.bin"))
        self.clock = clock
        self._wall_offset_s = time.time() - clock()
        self.ledger = Ledger(self.descriptions, self.store, wall_offset_s=self._wall_offset_s, first_step=first_step)
        self.sampler = Sampler(self.sensors, interval_s=interval_s, sink=self.ledger.feed,
                               step_sink=self.ledger.feed_steps, clock=clock, on_round=on_round, tick_s=tick_s)
        #: Work counted without step rows (e.g. validation batches), by phase.
        self.counted: dict[str, list[int]] = {}
        self.started_wall_s: float | None = None
        self.stopped_wall_s: float | None = None
        self.idle_power_w: float | None = None
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, ready_timeout_s: float = 2.0) -> None:
        """Start the sampler and wait (at most ``ready_timeout_s``) for its first reading of
        every sensor: a series reads 0 before its first sample, so a mark made earlier (a
        sensor read after a slow one) would lose the energy in between."""
        self.sampler.start()
        self.sampler.wait_ready(ready_timeout_s)

    def measure_idle(self, seconds: float, progress: Callable[[float], None] | None = None) -> float:
        """Average power of this process's sensors over ``seconds`` of doing nothing.

        Run before :meth:`begin`, so the idle window is not part of the footprint.
        ``progress(seconds_done)`` is called about once a second.
        """
        self.sampler.flush()
        first = self.sampler.snapshot()
        began = time.monotonic()
        while True:
            left = began + seconds - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(1.0, left))
            if progress is not None:
                progress(min(seconds, time.monotonic() - began))
        self.sampler.flush()
        last = self.sampler.snapshot()
        elapsed_s = last.t - first.t
        joules = math.fsum(last.energy_j) - math.fsum(first.energy_j)
        self.idle_power_w = joules / elapsed_s if elapsed_s > 0 else 0.0
        return self.idle_power_w

    def begin(self, phase: str = "other") -> None:
        """Start counting: energy from here on is the footprint (an idle window before is not)."""
        self.started_wall_s = time.time()
        self.sampler.mark(PhaseMark(phase))

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Resolve the marks and steps recorded so far; True when done within ``timeout_s``."""
        return self.sampler.flush(timeout_s)

    def mark_now(self, mark: Any) -> float:
        """Record ``mark`` and return its wall time: the end of the energy window that
        :meth:`totals` taken after the next flush covers."""
        return self.mark_at(mark)[1]

    def mark_at(self, mark: Any) -> tuple[float, float]:
        """Record ``mark``; return its sampler-clock time and its wall time. Once
        ``resolved(t)`` is True the ledger's totals reach the mark."""
        t = self.clock()
        self.sampler.mark(mark)
        return t, t + self._wall_offset_s

    def resolved(self, t: float) -> bool:
        """Whether the ledger has accounted everything up to sampler time ``t``."""
        last = self.ledger.last_t
        return last is not None and last >= t

    @property
    def wall_offset_s(self) -> float:
        """Add to a sampler-clock time to get unix seconds."""
        return self._wall_offset_s

    def stop(self) -> None:
        """Final reading, every mark resolved, sensors closed, thread joined. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            # The energy window ends at this mark; sampler.stop() may take a while (a final read,
            # a sensor blocking up to its timeout), which must not count as measured time.
            self.stopped_wall_s = self.mark_now(Boundary("end"))
            self.sampler.stop()
        finally:
            if self.stopped_wall_s is None:
                self.stopped_wall_s = time.time()

    def scratch_path(self, name: str) -> str:
        """A path in this session's private temporary folder (removed by :meth:`cleanup`)."""
        return os.path.join(self._spill_dir, name)

    def cleanup(self) -> None:
        self.store.close()
        shutil.rmtree(self._spill_dir, ignore_errors=True)

    # -- reading -----------------------------------------------------------------------
    def count(self, phase: str, batches: int, samples: int, tokens: int, padded_tokens: int) -> None:
        """Work done without a step row (training thread; cheap)."""
        counts = self.counted.get(phase)
        if counts is None:
            counts = self.counted[phase] = [0, 0, 0, 0]
        counts[0] += batches
        counts[1] += samples
        counts[2] += tokens
        counts[3] += padded_tokens

    def live_energy_j(self) -> float:
        """This process's energy since :meth:`start`, from the latest readings (thread safe)."""
        return self.sampler.live_energy_j()

    def live_power_w(self) -> float:
        return float(sum(self.sampler.snapshot().power_w))

    def sensor_entries(self, *, include_extra: bool = False) -> list[dict[str, Any]]:
        """The report's ``sensors`` entries: provenance, health, energy (and, after stop,
        what each sensor learned during the run)."""
        by_sensor = self.ledger.energy_j_by_sensor
        health = self.sampler.health
        entries = []
        for sensor, description in zip(self.sensors, self.descriptions):
            entry = dict(description)
            state = health.get(description["name"])
            if state is not None:
                entry.update(reads=state.reads, errors=state.errors, rejected=state.rejected,
                             disabled_reason=state.disabled_reason)
            entry["energy_j"] = by_sensor.get(description["name"], 0.0)
            if include_extra and callable(getattr(sensor, "report_extra", None)):
                try:
                    entry.update(sensor.report_extra() or {})
                except Exception as err:  # a sensor's bug costs its extra facts, not the report
                    entry["report_extra_error"] = f"{type(err).__name__}: {err}"
            entries.append(entry)
        return entries

    def warnings(self) -> list[str]:
        return list(self.sampler.warnings) + [n for s in self.sensors for n in getattr(s, "notes", ())]

    def totals(self, *, rank: int = 0, host: str = "localhost", end_wall_s: float | None = None) -> Totals:
        """This process's figures for the segment.

        ``end_wall_s``: the wall time of the last mark the ledger has resolved (see
        :meth:`mark_now`), so that ``duration_s`` covers the same window as the energy;
        default: the stop mark, or now while running.
        """
        ledger = self.ledger
        if end_wall_s is None:
            end_wall_s = self.stopped_wall_s or time.time()
        duration_s = max(0.0, end_wall_s - (self.started_wall_s or end_wall_s))
        by_sensor = ledger.energy_j_by_sensor
        measured = estimated = 0.0
        bands: dict[str, float] = {}
        for d in self.descriptions:
            joules = by_sensor.get(d["name"], 0.0)
            if d["measured"]:
                measured += joules
            else:
                estimated += joules
            bands[d["component"]] = bands.get(d["component"], 0.0) + _band_j(d, joules, duration_s)
        work = {phase: dict(counts) for phase, counts in ledger.work_by_phase.items()}
        for phase, counts in self.counted.items():
            merged = work.setdefault(phase, dict.fromkeys(WORK_KEYS, 0))
            for key, value in zip(WORK_KEYS, counts):
                merged[key] += value
        train = work.get("train", {})
        energy_j = ledger.energy_j
        return Totals(
            energy_j=energy_j,
            energy_j_measured=measured,
            energy_j_estimated=estimated,
            duration_s=duration_s,
            samples=float(train.get("samples", 0)),
            tokens=float(train.get("tokens", 0)),
            steps=float(train.get("batches", 0)),
            step_rows=float(ledger.steps),
            energy_j_by_component=ledger.energy_j_by_component,
            energy_j_by_phase={p: ledger.energy_j_by_phase.get(p, 0.0) for p in PHASES},
            energy_j_by_epoch={str(k): v for k, v in ledger.energy_j_by_epoch.items()},
            energy_j_by_rank={str(rank): energy_j},
            energy_j_by_host={str(host): energy_j},
            energy_j_by_component_phase=ledger.energy_j_by_component_phase(),
            uncertainty_j_by_component=bands,
            work_by_phase={p: {k: float(v) for k, v in c.items()} for p, c in work.items()},
        )
