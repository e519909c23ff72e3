"""Attribute the meter's cumulative joules to sensors, components, phases, epochs and steps.

Pure bookkeeping, no threads: :class:`Ledger` is the meter's ``sink``. It is fed
``(t, label, cum_j)`` in time order, ``cum_j`` holding one cumulative joule value per sensor.
The energy between two consecutive marks goes to the phase and the epoch that are current
at the first of them and, between ``("step_start", s)`` and ``("step_end", s, ...)``, to that
step. Labels:

* ``("phase", name)``: energy from here on goes to phase ``name`` (before any: ``"other"``).
* ``("epoch", n)``: energy from here on goes to epoch ``n`` (``n=None``: to no epoch).
* ``("step_start", step)``: a training step begins.
* ``("step_end", step, samples, tokens)``: it ends; a :class:`StepRow` goes to ``step_sink``.
  Without an open step the previous mark is taken as its start.
* Any other tuple (``("start",)``, ``("tick",)``, ``("end",)``) is only a boundary.

Totals telescope, so energy is conserved: ``energy_j_by_sensor[name]`` is the sensor's
last cumulative value minus its first, and phases/epochs accumulate per-sensor differences
only when a phase or epoch changes, so ``sum(energy_j_by_phase.values()) == energy_j`` to
rounding (~1e-12 relative), however many steps.

Resume: :meth:`Ledger.load_state_dict` installs the checkpoint's totals as offsets that every
total adds, and :meth:`Ledger.state_dict` returns offset + this segment, so loading the same
checkpoint twice never counts a segment twice.

Times in :class:`StepRow` are unix epoch seconds: the meter clock plus ``wall_offset_s``
(``time.time() - time.perf_counter()``, captured when the ledger is built unless given).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_green.outputs.steps_csv import StepsWriter, iter_steps, read_steps

__all__ = ["PHASES", "SCHEMA_VERSION", "Ledger", "StepRow", "StepsWriter", "iter_steps", "read_steps"]

PHASES = ("train", "validate", "test", "predict", "other")
SCHEMA_VERSION = 1


@dataclass(slots=True)
class StepRow:
    """One training step: when, how much energy, how much work.

    ``start_s``/``end_s`` are unix epoch seconds; ``energy_j_by_component`` maps a component
    (``"gpu"``, ``"cpu"``, ``"ram"``) to joules.
    """

    step: int
    epoch: int | None
    start_s: float
    end_s: float
    energy_j: float
    energy_j_by_component: dict[str, float]
    samples: int
    tokens: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Ledger:
    """Energy totals fed by the meter's marks (see the module docstring for the labels).

    Args:
        sensors: ``Sensor.describe()`` dicts (or sensors), in the meter's order.
        step_sink: Receives a :class:`StepRow` at every ``step_end`` (e.g. a
            :class:`StepsWriter`).
        wall_offset_s: Added to meter times to give unix seconds in step rows.
    """

    def __init__(
        self,
        sensors: Sequence[Any],
        step_sink: Callable[[StepRow], None] | None = None,
        *,
        wall_offset_s: float | None = None,
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
        if step_sink is not None and not callable(step_sink):
            raise ValueError(f"step_sink must be a callable(StepRow) or None, got {step_sink!r}")
        self.components = list(dict.fromkeys(self.sensor_components))
        self._by_component = [
            [i for i, c in enumerate(self.sensor_components) if c == comp]
            for comp in self.components
        ]
        # One sensor per component (the usual case): a step's components are its sensors.
        self._one_per_component = len(self.components) == len(self.sensor_components)
        self.step_sink = step_sink
        self.wall_offset_s = (
            time.time() - time.perf_counter() if wall_offset_s is None else float(wall_offset_s)
        )
        n = len(self.sensor_names)
        self._n = n
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
        self._step: tuple[int, float, tuple[float, ...]] | None = None
        self._steps = self._samples = self._tokens = 0
        self._offsets: dict[str, Any] = {}

    # -- feeding ---------------------------------------------------------------------
    def feed(self, t: float, label: tuple, cum_j: Sequence[float]) -> None:
        """Account one resolved mark (the meter's ``sink``)."""
        if len(cum_j) != self._n:
            raise ValueError(f"cum_j must have {self._n} values (one per sensor), got {cum_j!r}")
        prev_t, prev = self.last_t, self._last
        if prev_t is None:
            self.first_t = prev_t = t
            self._first = self._phase_from = self._epoch_from = prev = tuple(cum_j)
        self.last_t, self._last = t, cum_j
        kind = label[0] if label else None
        if kind == "step_end":
            self._end_step(label, t, cum_j, prev_t, prev)
        elif kind == "step_start":
            self._step = (label[1], t, cum_j)
        elif kind == "phase":
            self._close(self._phase_j.setdefault(self.phase, [0.0] * self._n), self._phase_from)
            self._phase_from = cum_j
            self.phase = str(label[1])
        elif kind == "epoch":
            if self.epoch is not None:
                self._close(self._epoch_j.setdefault(self.epoch, [0.0] * self._n), self._epoch_from)
            self._epoch_from = cum_j
            self.epoch = None if label[1] is None else int(label[1])

    __call__ = feed

    def _close(self, acc: list[float], start: Sequence[float]) -> None:
        last = self._last
        for i in range(self._n):
            acc[i] += last[i] - start[i]

    def _end_step(self, label: tuple, t: float, cum: Sequence[float], prev_t: float,
                  prev: Sequence[float]) -> None:
        samples = int(label[2] or 0) if len(label) > 2 else 0
        tokens = int(label[3] or 0) if len(label) > 3 else 0
        self._steps += 1
        self._samples += samples
        self._tokens += tokens
        start_t, start = prev_t, prev
        if self._step is not None:
            _, start_t, start = self._step
            self._step = None
        if self.step_sink is None:
            return
        # Runs on the meter thread once per step, holding the GIL: kept lean.
        per_sensor = [c - s for c, s in zip(cum, start)]
        if self._one_per_component:
            by_component = dict(zip(self.sensor_components, per_sensor))
        else:
            by_component = {
                comp: per_sensor[idx[0]] if len(idx) == 1 else math.fsum(per_sensor[i] for i in idx)
                for comp, idx in zip(self.components, self._by_component)
            }
        offset = self.wall_offset_s
        self.step_sink(StepRow(int(label[1]), self.epoch, start_t + offset, t + offset,
                               math.fsum(per_sensor), by_component, samples, tokens))

    # -- totals ----------------------------------------------------------------------
    def _segment(self) -> list[float]:
        return [self._last[i] - self._first[i] for i in range(self._n)]

    @property
    def energy_j_by_sensor(self) -> dict[str, float]:
        out = dict(self._offsets.get("energy_j_by_sensor", {}))
        for name, j in zip(self.sensor_names, self._segment()):
            out[name] = out.get(name, 0.0) + j
        return out

    @property
    def energy_j_by_component(self) -> dict[str, float]:
        seg = self._segment()
        out = dict(self._offsets.get("energy_j_by_component", {}))
        for comp, idx in zip(self.components, self._by_component):
            out[comp] = out.get(comp, 0.0) + math.fsum(seg[i] for i in idx)
        return out

    @property
    def energy_j_by_phase(self) -> dict[str, float]:
        out = {p: 0.0 for p in PHASES}
        for p, j in self._offsets.get("energy_j_by_phase", {}).items():
            out[p] = out.get(p, 0.0) + j
        for p, acc in self._phase_j.items():
            out[p] = out.get(p, 0.0) + self._with_open(acc, p == self.phase, self._phase_from)
        if self.phase not in self._phase_j:
            out[self.phase] = out.get(self.phase, 0.0) + self._with_open(
                [0.0] * self._n, True, self._phase_from)
        return out

    @property
    def energy_j_by_epoch(self) -> dict[int, float]:
        out = dict(self._offsets.get("energy_j_by_epoch", {}))
        epochs = dict(self._epoch_j)
        if self.epoch is not None:
            epochs.setdefault(self.epoch, [0.0] * self._n)
        for e, acc in epochs.items():
            out[e] = out.get(e, 0.0) + self._with_open(acc, e == self.epoch, self._epoch_from)
        return out

    def _with_open(self, acc: list[float], is_open: bool, start: Sequence[float]) -> float:
        if not is_open:
            return math.fsum(acc)
        last = self._last
        return math.fsum(acc[i] + (last[i] - start[i]) for i in range(self._n))

    @property
    def energy_j(self) -> float:
        """Total joules, all sensors (offset from a resumed checkpoint included)."""
        return math.fsum(self.energy_j_by_sensor.values())

    @property
    def steps(self) -> int:
        return self._offsets.get("steps", 0) + self._steps

    @property
    def samples(self) -> int:
        return self._offsets.get("samples", 0) + self._samples

    @property
    def tokens(self) -> int:
        return self._offsets.get("tokens", 0) + self._tokens

    @property
    def duration_s(self) -> float:
        """Seconds between the first and last mark, plus resumed segments."""
        own = 0.0 if self.first_t is None else self.last_t - self.first_t
        return self._offsets.get("duration_s", 0.0) + own

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Totals so far (resumed offsets included) as plain floats and ints."""
        return {
            "version": SCHEMA_VERSION,
            "energy_j": self.energy_j,
            "energy_j_by_sensor": self.energy_j_by_sensor,
            "energy_j_by_component": self.energy_j_by_component,
            "energy_j_by_phase": self.energy_j_by_phase,
            "energy_j_by_epoch": {str(k): v for k, v in self.energy_j_by_epoch.items()},
            "steps": self.steps,
            "samples": self.samples,
            "tokens": self.tokens,
            "duration_s": self.duration_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Install a checkpoint's totals as offsets (replacing any loaded before)."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict from Ledger.state_dict(), got {state!r}")

        def floats(key: str, cast: Callable[[Any], Any] = str) -> dict:
            raw = state.get(key) or {}
            out = {}
            for k, v in (raw.items() if isinstance(raw, dict) else ()):
                try:
                    out[cast(k)] = float(v)
                except (TypeError, ValueError):
                    continue
            return out

        self._offsets = {
            "energy_j_by_sensor": floats("energy_j_by_sensor"),
            "energy_j_by_component": floats("energy_j_by_component"),
            "energy_j_by_phase": floats("energy_j_by_phase"),
            "energy_j_by_epoch": floats("energy_j_by_epoch", int),
            "steps": int(state.get("steps", 0) or 0),
            "samples": int(state.get("samples", 0) or 0),
            "tokens": int(state.get("tokens", 0) or 0),
            "duration_s": float(state.get("duration_s", 0.0) or 0.0),
        }
