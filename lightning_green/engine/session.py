"""One measurement session: a meter feeding a ledger, for one fit/validate/test/predict call.

Framework-free (no Lightning import), so both callback twins and the tests drive it the
same way. The training thread only calls :meth:`MeterSession.mark`; everything else runs on
the meter's thread or at the start and end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from lightning_green.engine.ledger import PHASES, Ledger, StepsWriter
from lightning_green.engine.sampler import Meter
from lightning_green.sensors.base import Sensor

J_PER_KWH = 3.6e6


def unique_names(sensors: Sequence[Sensor]) -> None:
    """Give sensors that share a name a ``#n`` suffix, so the ledger keeps them apart."""
    seen: dict[str, int] = {}
    for sensor in sensors:
        count = seen.get(sensor.name, 0) + 1
        seen[sensor.name] = count
        if count > 1:
            sensor.name = f"{sensor.name}#{count}"


class MeterSession:
    """Measure ``sensors`` from :meth:`start` to :meth:`stop` and attribute the energy.

    Args:
        sensors: The sensors this process reads (already filtered by scope).
        interval_s: Sampling interval of power sensors.
    """

    def __init__(self, sensors: Sequence[Sensor], interval_s: float) -> None:
        unique_names(sensors)
        self.sensors = list(sensors)
        self.descriptions = [sensor.describe() for sensor in self.sensors]
        self._spill_dir = tempfile.mkdtemp(prefix="lightning-green-")
        self.steps_path = os.path.join(self._spill_dir, "steps.csv")
        self.components = sorted({d["component"] for d in self.descriptions})
        self._wall_offset_s = time.time() - time.perf_counter()
        self._steps_writer = StepsWriter(self.steps_path, self.components)
        self.ledger = Ledger(self.descriptions, step_sink=self._steps_writer.write)
        self.meter = Meter(self.sensors, interval_s=interval_s, sink=self.ledger.feed)
        self.started_wall_s: float | None = None
        self.stopped_wall_s: float | None = None
        self.idle_power_w: float | None = None
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, ready_timeout_s: float = 2.0) -> None:
        """Start the meter thread and wait (at most ``ready_timeout_s``) for its first reading
        of every sensor: a series reads 0 before its first sample, so a mark made earlier (a
        sensor read after a slow one) would lose the energy in between."""
        self.meter.start()
        self.meter.wait_ready(ready_timeout_s)

    def measure_idle(self, seconds: float) -> float:
        """Average power of this process's sensors over ``seconds`` of doing nothing.

        Run before the first mark, so the idle window is not part of the footprint.
        """
        self.meter.flush()
        first = self.meter.snapshot()
        time.sleep(seconds)
        self.meter.flush()
        last = self.meter.snapshot()
        elapsed_s = last.t - first.t
        joules = sum(last.energy_j) - sum(first.energy_j)
        self.idle_power_w = joules / elapsed_s if elapsed_s > 0 else 0.0
        return self.idle_power_w

    def begin(self) -> None:
        """Start counting: energy from here on is the footprint (the idle window is not)."""
        self.started_wall_s = time.time()
        self.meter.mark(("phase", "other"))

    def mark(self, label: tuple) -> None:
        self.meter.mark(label)

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Resolve the marks made so far; True when the meter thread did so within ``timeout_s``."""
        return self.meter.flush(timeout_s)

    def stop(self) -> None:
        """Final sample, every mark resolved, sensors closed, thread joined. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.meter.mark(("end",))
            # The energy window ends at this mark; meter.stop() may take a while (a final read,
            # a sensor blocking up to its timeout), which must not count as measured time.
            self.stopped_wall_s = time.time()
            self.meter.stop()
        finally:
            self._steps_writer.close()
            if self.stopped_wall_s is None:
                self.stopped_wall_s = time.time()

    def cleanup(self) -> None:
        shutil.rmtree(self._spill_dir, ignore_errors=True)

    # -- reading -----------------------------------------------------------------------
    def live_energy_j(self) -> float:
        """Energy since start of this process's sensors, from the latest sample (thread safe)."""
        return float(sum(self.meter.snapshot().energy_j))

    def live_power_w(self) -> float:
        return float(sum(self.meter.snapshot().power_w))

    def mark_now(self, label: tuple) -> float:
        """Mark ``label`` and return the wall time of the mark: the end of the energy window
        that a ``summary(end_wall_s=...)`` taken after the next flush covers."""
        self.meter.mark(label)
        return time.time()

    def summary(self, end_wall_s: float | None = None) -> dict[str, Any]:
        """This process's totals for the session, as plain numbers (for gathering).

        ``end_wall_s``: the wall time of the last mark the ledger has resolved (see
        ``mark_now``), so that ``duration_s`` covers the same window as the energy; default:
        the stop mark, or now while running.
        """
        ledger = self.ledger
        by_sensor = dict(ledger.energy_j_by_sensor)
        measured = sum(j for d in self.descriptions if d["measured"] for j in [by_sensor.get(d["name"], 0.0)])
        estimated = sum(j for d in self.descriptions if not d["measured"] for j in [by_sensor.get(d["name"], 0.0)])
        health = self.meter.health
        sensors = []
        for description in self.descriptions:
            entry = dict(description)
            state = health.get(description["name"])
            if state is not None:
                entry.update(
                    reads=state.reads,
                    errors=state.errors,
                    rejected=state.rejected,
                    disabled_reason=state.disabled_reason,
                )
            entry["energy_j"] = by_sensor.get(description["name"], 0.0)
            sensors.append(entry)
        if end_wall_s is None:
            end_wall_s = self.stopped_wall_s or time.time()
        return {
            "energy_j": float(ledger.energy_j),
            "energy_j_by_component": dict(ledger.energy_j_by_component),
            "energy_j_by_phase": {phase: ledger.energy_j_by_phase.get(phase, 0.0) for phase in PHASES},
            "energy_j_by_epoch": {str(k): v for k, v in ledger.energy_j_by_epoch.items()},
            "energy_j_measured": measured,
            "energy_j_estimated": estimated,
            "duration_s": end_wall_s - (self.started_wall_s or end_wall_s),
            "started_wall_s": self.started_wall_s,
            "ended_wall_s": end_wall_s,
            "idle_power_w": self.idle_power_w,
            "sensors": sensors,
            "warnings": list(self.meter.warnings) + [n for s in self.sensors for n in getattr(s, "notes", ())],
        }
