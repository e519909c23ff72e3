"""Attribute the sampler's cumulative joules to sensors, components, phases, epochs and steps.

Pure bookkeeping, no threads: the :class:`Ledger` is fed by the sampler, in time order, with
marks (:meth:`Ledger.feed`: ``(t, mark, cum_j)``, ``cum_j`` holding one cumulative joule value
per sensor) and with batches of resolved step records (:meth:`Ledger.feed_steps`).

* A :class:`~lightning_green.engine.marks.PhaseMark` sends the energy from there on to its
  phase (before any: ``"other"``); an :class:`~lightning_green.engine.marks.EpochMark` to its
  epoch; a :class:`~lightning_green.engine.marks.Boundary` only bounds the energy resolved.
* A step's energy is its sensors' cumulative joules at its end minus at its start; its row
  (see :mod:`lightning_green.engine.steps`) goes to the :class:`StepStore`, and its samples and
  tokens are counted for its phase.

Totals telescope, so energy is conserved: ``energy_j_by_sensor[name]`` is the sensor's last
cumulative value minus its first, and phases/epochs accumulate per-sensor differences only
when a phase or epoch changes, so ``sum(energy_j_by_phase.values()) == energy_j`` to rounding
(~1e-12 relative), however many steps.

Times in step rows are unix epoch seconds: the sampler clock plus ``wall_offset_s``
(``time.time() - time.perf_counter()``, captured when the ledger is built unless given).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_green.engine.marks import PHASES, STEP_FIELDS, Boundary, EpochMark, PhaseMark
from lightning_green.engine.steps import BASE_COLUMNS, StepStore

__all__ = ["PHASES", "WORK_KEYS", "Ledger"]

#: Work counted per phase, from step records (and, for phases without rows, by the adapter).
WORK_KEYS = ("batches", "samples", "tokens", "padded_tokens")
_F = {name: index for index, name in enumerate(STEP_FIELDS)}


class Ledger:
    """Energy totals fed by the sampler (see the module docstring).

    Args:
        sensors: ``Sensor.describe()`` dicts (or sensors), in the sampler's order.
        store: Where step rows go (None: rows are counted, not kept).
        wall_offset_s: Added to sampler times to give unix seconds in step rows.
        first_step: Number of the first step row (a resumed run continues its count).
    """

    def __init__(
        self,
        sensors: Sequence[Any],
        store: StepStore | None = None,
        *,
        wall_offset_s: float | None = None,
        first_step: int = 0,
    ) -> None:
        described = [s.describe() if hasattr(s, "describe") else s for s in sensors]
        try:
            self.sensor_names = [str(d["name"]) for d in described]
            self.sensor_components = [str(d["component"]) for d in described]
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"sensors must be describe() dicts with 'name' and 'component', got {sensors!r}"
            ) from err
        dupes = sorted({n for n in self.sensor_names if self.sensor_names.count(n) > 1})
        if dupes:
            raise ValueError(f"sensors must have unique names, got duplicates {dupes}")
        self.components = list(dict.fromkeys(self.sensor_components))
        if store is not None and store.components != self.components:
            raise ValueError(f"store components {store.components} differ from the sensors' {self.components}")
        n = len(self.sensor_names)
        self._n = n
        #: sensors x components, 1 where a sensor belongs to a component.
        self._to_component = np.zeros((n, len(self.components)))
        for i, comp in enumerate(self.sensor_components):
            self._to_component[i, self.components.index(comp)] = 1.0
        self.store = store
        self.wall_offset_s = time.time() - time.perf_counter() if wall_offset_s is None else float(wall_offset_s)
        self.first_step = int(first_step)
        self.first_t: float | None = None
        self.last_t: float | None = None
        self._first: tuple[float, ...] = (0.0,) * n
        self._last: tuple[float, ...] = (0.0,) * n
        self.phase = "other"
        self.epoch: int | None = None
        self._phase_from = self._first
        self._epoch_from = self._first
        self._phase_j: dict[str, list[float]] = {p: [0.0] * n for p in PHASES}
        self._epoch_j: dict[int, list[float]] = {}
        self.steps = 0
        self._work = np.zeros((len(PHASES), len(WORK_KEYS)))

    # -- feeding -----------------------------------------------------------------------
    def feed(self, t: float, mark: Any, cum_j: Sequence[float]) -> None:
        """Account one resolved mark (the sampler's ``sink``)."""
        if len(cum_j) != self._n:
            raise ValueError(f"cum_j must have {self._n} values (one per sensor), got {cum_j!r}")
        cum_j = tuple(cum_j)
        if self.last_t is None:
            self.first_t = t
            self._first = self._phase_from = self._epoch_from = cum_j
        self.last_t, self._last = t, cum_j
        if isinstance(mark, PhaseMark):
            self._close(self._phase_j.setdefault(self.phase, [0.0] * self._n), self._phase_from)
            self._phase_from = cum_j
            self.phase = str(mark.phase)
        elif isinstance(mark, EpochMark):
            if self.epoch is not None:
                self._close(self._epoch_j.setdefault(self.epoch, [0.0] * self._n), self._epoch_from)
            self._epoch_from = cum_j
            self.epoch = None if mark.epoch is None else int(mark.epoch)
        elif not isinstance(mark, Boundary):
            raise ValueError(f"mark must be a PhaseMark, EpochMark or Boundary, got {mark!r}")

    __call__ = feed

    def _close(self, acc: list[float], start: Sequence[float]) -> None:
        last = self._last
        for i in range(self._n):
            acc[i] += last[i] - start[i]

    def feed_steps(self, records: np.ndarray, start_cum: np.ndarray, end_cum: np.ndarray) -> None:
        """Account resolved step records (the sampler's ``step_sink``); vectorised.

        ``records``: shape ``(n, len(STEP_FIELDS))``; ``start_cum``/``end_cum``: ``(n, sensors)``.
        """
        n = len(records)
        if not n:
            return
        phase = records[:, _F["phase"]].astype(np.intp)
        np.clip(phase, 0, len(PHASES) - 1, out=phase)
        work = np.column_stack((np.ones(n), records[:, _F["samples"]], records[:, _F["tokens"]],
                                records[:, _F["padded_tokens"]]))
        np.add.at(self._work, phase, work)
        first = self.first_step + self.steps
        self.steps += n
        store = self.store
        if store is None:
            return
        per_sensor = end_cum - start_cum
        rows = np.empty((n, store.width))
        rows[:, 0] = np.arange(first, first + n)
        rows[:, 1] = phase
        rows[:, 2] = records[:, _F["epoch"]]
        rows[:, 3] = records[:, _F["start_t"]] + self.wall_offset_s
        rows[:, 4] = records[:, _F["end_t"]] + self.wall_offset_s
        rows[:, 5:8] = records[:, _F["samples"]:_F["padded_tokens"] + 1]
        rows[:, 8] = per_sensor.sum(axis=1)
        rows[:, len(BASE_COLUMNS):] = per_sensor @ self._to_component
        store.append(rows)

    # -- totals ------------------------------------------------------------------------
    def _segment(self) -> list[float]:
        return [self._last[i] - self._first[i] for i in range(self._n)]

    @property
    def energy_j_by_sensor(self) -> dict[str, float]:
        return dict(zip(self.sensor_names, self._segment()))

    @property
    def energy_j_by_component(self) -> dict[str, float]:
        seg = self._segment()
        out: dict[str, float] = {}
        for comp, joules in zip(self.sensor_components, seg):
            out[comp] = out.get(comp, 0.0) + joules
        return out

    @property
    def energy_j_by_phase(self) -> dict[str, float]:
        out = {p: 0.0 for p in PHASES}
        for p, acc in self._phase_j.items():
            out[p] = out.get(p, 0.0) + self._with_open(acc, p == self.phase, self._phase_from)
        if self.phase not in self._phase_j:
            out[self.phase] = out.get(self.phase, 0.0) + self._with_open([0.0] * self._n, True, self._phase_from)
        return out

    def energy_j_by_component_phase(self, now_cum: Sequence[float] | None = None) -> dict[str, float]:
        """Joules by ``"<component>/<phase>"``; the open phase runs to ``now_cum`` (default: the
        last resolved mark), so live figures grow between marks."""
        last = self._last if now_cum is None else now_cum
        out: dict[str, float] = {}
        for phase, acc in self._phase_j.items():
            for i, comp in enumerate(self.sensor_components):
                value = acc[i] + (last[i] - self._phase_from[i] if phase == self.phase else 0.0)
                key = f"{comp}/{phase}"
                out[key] = out.get(key, 0.0) + value
        if self.phase not in self._phase_j:
            for i, comp in enumerate(self.sensor_components):
                key = f"{comp}/{self.phase}"
                out[key] = out.get(key, 0.0) + last[i] - self._phase_from[i]
        return {key: value for key, value in out.items() if value}

    @property
    def energy_j_by_epoch(self) -> dict[int, float]:
        epochs = dict(self._epoch_j)
        if self.epoch is not None:
            epochs.setdefault(self.epoch, [0.0] * self._n)
        return {e: self._with_open(acc, e == self.epoch, self._epoch_from) for e, acc in epochs.items()}

    def _with_open(self, acc: list[float], is_open: bool, start: Sequence[float]) -> float:
        if not is_open:
            return math.fsum(acc)
        last = self._last
        return math.fsum(acc[i] + (last[i] - start[i]) for i in range(self._n))

    @property
    def energy_j(self) -> float:
        """Total joules, all sensors."""
        return math.fsum(self._segment())

    @property
    def work_by_phase(self) -> dict[str, dict[str, int]]:
        """Batches, samples, tokens and padded tokens of the step records, by phase."""
        return {
            phase: {key: int(self._work[i, j]) for j, key in enumerate(WORK_KEYS)}
            for i, phase in enumerate(PHASES) if self._work[i, 0]
        }

    @property
    def duration_s(self) -> float:
        """Seconds between the first and last mark."""
        return 0.0 if self.first_t is None else self.last_t - self.first_t
