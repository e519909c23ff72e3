"""Snapshots of a running footprint, and the live view of every rank's figures.

Every ``snapshot_every_s`` the sampler thread marks a boundary (:class:`Snapshotter` says
exactly when); once the ledger has accounted it, the meter writes this rank's state file and,
on global rank 0, ``footprint.json`` with status ``running`` (and, for a one-process run in a
local folder, the steps.csv rows so far).
A run killed at any moment then leaves its footprint as of its last snapshot.

Under DDP no collective may run on the sampler thread: rank 0's snapshot of every rank's
figures comes from the last *exchange* (:func:`exchange`), a small all-reduce the adapter
makes on every rank at the same batch. The exchange period adapts so that it happens at least
twice per snapshot interval (computed from exchanged numbers, so every rank agrees on it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from lightning_green.engine.distributed import all_reduce_sum
from lightning_green.engine.live import LiveFigures
from lightning_green.engine.marks import PHASES
from lightning_green.engine.totals import Totals

__all__ = ["SNAPSHOT_COMPONENTS", "Exchange", "Snapshotter", "exchange"]

#: Components exchanged by name; any other goes to "other" in a distributed snapshot.
SNAPSHOT_COMPONENTS = ("gpu", "cpu", "ram", "other")
_HEAD = ("energy_j", "emissions_kg", "samples", "steps", "elapsed_s", "redone_energy_j")


@dataclass(frozen=True)
class Exchange:
    """Every rank's figures at one moment (from an all-reduce), and when."""

    wall_s: float
    totals: Totals
    next_in_batches: int  # batches until the next exchange, the same on every rank
    redone_energy_j: float = 0.0  # every rank's energy spent on steps done again


def exchange(*, figures: LiveFigures, energy_j: float, emissions_kg: float, samples: float, steps: float,
             elapsed_s: float, rank: int, batches_since: int, every_n: int, target_s: float,
             redone_energy_j: float = 0.0) -> Exchange:
    """All-reduce this rank's live figures (a collective: every rank calls it at the same batch).

    ``elapsed_s`` (rank 0's, since the previous exchange) sets how many batches to wait
    until the next one: about ``target_s`` seconds' worth, at most ``every_n``.
    """
    by_component = dict.fromkeys(SNAPSHOT_COMPONENTS, 0.0)
    by_phase = dict.fromkeys(PHASES, 0.0)
    for (component, phase), joules in figures.energy_j.items():
        key = component if component in by_component else "other"
        by_component[key] += joules
        if phase in by_phase:
            by_phase[phase] += joules
    vector = [energy_j, emissions_kg, samples, steps, elapsed_s if rank == 0 else 0.0, redone_energy_j]
    vector += [by_component[c] for c in SNAPSHOT_COMPONENTS] + [by_phase[p] for p in PHASES]
    summed = all_reduce_sum(vector)
    head = dict(zip(_HEAD, summed[:len(_HEAD)]))
    components = dict(zip(SNAPSHOT_COMPONENTS, summed[len(_HEAD):len(_HEAD) + len(SNAPSHOT_COMPONENTS)]))
    phases = dict(zip(PHASES, summed[len(_HEAD) + len(SNAPSHOT_COMPONENTS):]))
    totals = Totals(energy_j=head["energy_j"], emissions_kg=head["emissions_kg"], samples=head["samples"],
                    steps=head["steps"], energy_j_by_component={c: v for c, v in components.items() if v},
                    energy_j_by_phase=phases)
    elapsed = head["elapsed_s"]
    next_in = every_n
    if math.isfinite(target_s) and elapsed > 0 and batches_since > 0:
        next_in = max(1, min(every_n, int(batches_since * target_s / elapsed)))
    return Exchange(time.time(), totals, next_in, head["redone_energy_j"])


class Snapshotter:
    """When to take the next snapshot (sampler thread).

    The sampler resolves marks in batches, every ``resolve_every_s`` (its housekeeping period,
    1 s by default, and at each flush): a snapshot can only be marked on such a round, and is
    written on the next one, when its mark is resolved. So that a kill at any moment finds a
    footprint whose energy ends at most ``every_s`` (plus the time to write one snapshot)
    before it, a mark is due ``every_s - 2 x resolve_every_s`` after the previous *mark* (not
    after its write), and never sooner than ``every_s / 2``: a short ``every_s`` (under four
    resolution periods) then bounds the lag by ``every_s / 2 + 2 x resolve_every_s`` instead.
    """

    def __init__(self, every_s: float) -> None:
        self.every_s = float(every_s)
        self.last = time.monotonic()  # when the latest snapshot was marked (or measuring began)
        self._pending: tuple[float, float] | None = None
        self.taken = 0

    @property
    def pending(self) -> tuple[float, float] | None:
        """(sampler time, wall time) of the snapshot mark waiting to be resolved, or None.
        Setting it records the moment of the mark: the next one is due from then on."""
        return self._pending

    @pending.setter
    def pending(self, value: tuple[float, float] | None) -> None:
        if value is not None:
            self.last = time.monotonic()
        self._pending = value

    @property
    def enabled(self) -> bool:
        return self.every_s > 0

    def due(self, resolve_every_s: float = 0.0) -> bool:
        """Whether to mark a snapshot now (on a round that resolved marks and steps)."""
        wait_s = max(self.every_s / 2.0, self.every_s - 2.0 * max(0.0, resolve_every_s))
        return self.enabled and self._pending is None and time.monotonic() - self.last >= wait_s

    def done(self) -> None:
        self._pending = None
        self.taken += 1
