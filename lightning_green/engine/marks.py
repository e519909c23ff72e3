"""What the training thread tells the meter: typed marks and step records.

Two channels, both written by the training thread without waiting:

* **Marks** (rare: a phase or an epoch starts, a boundary such as a checkpoint): a
  :class:`PhaseMark`, :class:`EpochMark` or :class:`Boundary`, queued with its time.
* **Steps** (every batch): one flat record of :data:`STEP_FIELDS` appended to a list, so a
  step costs one tuple and one ``list.extend`` on the training thread; the meter thread
  resolves the records in batches (vectorised).

Phases are ``train``, ``validate``, ``test``, ``predict`` and ``other`` (time outside them).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PHASES", "PHASE_INDEX", "STEP_FIELDS", "STEP_WIDTH", "Boundary", "EpochMark", "Mark", "PhaseMark",
]

PHASES = ("train", "validate", "test", "predict", "other")
PHASE_INDEX = {name: index for index, name in enumerate(PHASES)}

#: One step record, flat, in this order: monotonic start and end (the meter's clock), the
#: samples and tokens it processed (``tokens``: real tokens, ``padded_tokens``: what the model
#: processed, padding included), the index of its phase in :data:`PHASES`, and its epoch (-1
#: when none).
STEP_FIELDS = ("start_t", "end_t", "samples", "tokens", "padded_tokens", "phase", "epoch")
STEP_WIDTH = len(STEP_FIELDS)


@dataclass(frozen=True, slots=True)
class PhaseMark:
    """From here on, energy goes to ``phase`` (one of :data:`PHASES`)."""

    phase: str


@dataclass(frozen=True, slots=True)
class EpochMark:
    """From here on, energy goes to epoch ``epoch`` (None: to no epoch)."""

    epoch: int | None


@dataclass(frozen=True, slots=True)
class Boundary:
    """A named moment (``begin``, ``end``, ``checkpoint``, ``flush``): attributes nothing by
    itself; the energy up to it is resolved when it is."""

    name: str


Mark = PhaseMark | EpochMark | Boundary
