"""One :class:`Totals` value: what moves between the engine, checkpoints, ranks and the report.

Plain, additive numbers only (joules, seconds, counts, kg), so that two totals add field by
field: segments of a run add (a resumed fit onto its checkpoint, a test onto its fit), ranks
add into a run (:meth:`Totals.over_ranks`), and the report is built from one value.

Wall time (``duration_s``) and the training step count are the same on every rank of one
run: over ranks they are taken from rank 0 instead of summed; over segments they add.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning_green.units import J_PER_KWH

__all__ = ["SCHEMA", "Totals", "WORK_COUNTS"]

SCHEMA = 2
#: Counts of work done, per phase: what a crashed run's redone steps count again.
WORK_COUNTS = ("batches", "samples", "tokens", "padded_tokens")
_SCALARS = ("energy_j", "energy_j_measured", "energy_j_estimated", "facility_energy_j", "emissions_kg",
            "duration_s", "paused_s", "samples", "tokens", "steps", "step_rows")
_MAPS = ("energy_j_by_component", "energy_j_by_phase", "energy_j_by_epoch", "energy_j_by_rank",
         "energy_j_by_host", "energy_j_by_component_phase", "uncertainty_j_by_component")
_SAME_ON_EVERY_RANK = ("duration_s", "paused_s", "steps", "step_rows")


def _add_maps(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    out = {str(k): float(v) for k, v in a.items()}
    for key, value in b.items():
        out[str(key)] = out.get(str(key), 0.0) + float(value)
    return out


@dataclass
class Totals:
    """A run's (or a segment's, or a rank's) totals.

    Attributes:
        energy_j: IT energy of every sensor, joules (before PUE).
        energy_j_measured, energy_j_estimated: The same split by how it was obtained.
        facility_energy_j: ``energy_j`` x PUE.
        emissions_kg: Operational emissions, kg CO2e.
        duration_s: Wall time measured, seconds.
        paused_s: Time spent paused by carbon-aware pausing, seconds.
        samples, tokens, steps: Training samples, real tokens and steps (batches).
        step_rows: Rows written to steps.csv (steps of any phase), numbering the next ones.
        energy_j_by_component, _phase, _epoch, _rank, _host: Joules by key (string keys).
        energy_j_by_component_phase: Joules by ``"<component>/<phase>"``.
        uncertainty_j_by_component: Half-width of each component's uncertainty band, joules
            (bands add linearly: the worst case, as errors of one sensor model are correlated).
        work_by_phase: ``{phase: {batches, samples, tokens, padded_tokens}}``.
    """

    energy_j: float = 0.0
    energy_j_measured: float = 0.0
    energy_j_estimated: float = 0.0
    facility_energy_j: float = 0.0
    emissions_kg: float = 0.0
    duration_s: float = 0.0
    paused_s: float = 0.0
    samples: float = 0.0
    tokens: float = 0.0
    steps: float = 0.0
    step_rows: float = 0.0
    energy_j_by_component: dict[str, float] = field(default_factory=dict)
    energy_j_by_phase: dict[str, float] = field(default_factory=dict)
    energy_j_by_epoch: dict[str, float] = field(default_factory=dict)
    energy_j_by_rank: dict[str, float] = field(default_factory=dict)
    energy_j_by_host: dict[str, float] = field(default_factory=dict)
    energy_j_by_component_phase: dict[str, float] = field(default_factory=dict)
    uncertainty_j_by_component: dict[str, float] = field(default_factory=dict)
    work_by_phase: dict[str, dict[str, float]] = field(default_factory=dict)

    def __add__(self, other: Totals) -> Totals:
        if not isinstance(other, Totals):
            return NotImplemented
        values: dict[str, Any] = {name: getattr(self, name) + getattr(other, name) for name in _SCALARS}
        for name in _MAPS:
            values[name] = _add_maps(getattr(self, name), getattr(other, name))
        work: dict[str, dict[str, float]] = {}
        for part in (self.work_by_phase, other.work_by_phase):
            for phase, counts in part.items():
                work[phase] = _add_maps(work.get(phase, {}), counts)
        values["work_by_phase"] = work
        return Totals(**values)

    @classmethod
    def over_ranks(cls, per_rank: Iterable[Totals]) -> Totals:
        """Every rank's totals in one: sums, except wall time and steps from the first (rank 0)."""
        ranks = list(per_rank)
        out = sum(ranks, cls())
        if ranks:
            for name in _SAME_ON_EVERY_RANK:
                setattr(out, name, getattr(ranks[0], name))
        return out

    def spent_since(self, earlier: Totals) -> Totals:
        """What this holds beyond ``earlier`` (field by field, never below zero), work counts
        left out: the energy and time a crashed run spent after the checkpoint a resume
        starts from, on steps the resumed run does again."""
        out = Totals()
        for name in _SCALARS:
            if name not in ("samples", "tokens", "steps", "step_rows"):
                setattr(out, name, max(0.0, getattr(self, name) - getattr(earlier, name)))
        for name in _MAPS:
            before = getattr(earlier, name)
            setattr(out, name, {k: max(0.0, v - before.get(k, 0.0)) for k, v in getattr(self, name).items()})
        return out

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe numbers (for checkpoints and state files), with the schema version."""
        out = dataclasses.asdict(self)
        out["schema"] = SCHEMA
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Totals:
        """Totals from :meth:`to_dict` (or an older checkpoint's totals dict): unknown keys
        dropped, missing or unreadable ones zero, so old files load."""
        out = cls()
        if not isinstance(raw, Mapping):
            return out
        for name in _SCALARS:
            value = _number(raw.get(name))
            if value is not None:
                setattr(out, name, value)
        for name in _MAPS:
            part = raw.get(name)
            if isinstance(part, Mapping):
                setattr(out, name, {str(k): v for k, v in ((k, _number(v)) for k, v in part.items()) if v is not None})
        work = raw.get("work_by_phase")
        if isinstance(work, Mapping):
            out.work_by_phase = {
                str(phase): {str(k): v for k, v in ((k, _number(v)) for k, v in counts.items()) if v is not None}
                for phase, counts in work.items() if isinstance(counts, Mapping)
            }
        return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
