"""The end of a measured segment: every rank's figures to rank 0, the report, the files.

Collectives happen only in :func:`reduce_to_zero`, and only for a completed distributed run
(a failed one may have lost ranks, and a collective would hang): every rank calls it from
``EnergyMeter.stop()``, which every rank reaches at the end of the same Trainer call or
``with`` block. A rank that failed to compute its figures still takes part, with nothing to
add, so the others never wait in vain. Memory and traffic per rank: its own small payload,
and per-step figures in fixed-size chunks (O(steps), whatever the world size).

A distributed segment that did not complete ends without any collective: rank 0 then takes
every other rank's figures from its state file (:func:`with_state_files`; written at its last
snapshot, checkpoint or end), so the footprint of a job that lost a rank still counts every
rank, as of when each last wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dataclasses
import datetime as dt

import numpy as np

from lightning_green.engine.distributed import REDUCE_CHUNK_ROWS, World, all_gather, gather_to_zero, reduce_rows_to_zero
from lightning_green.engine.steps import BASE_COLUMNS, StepStore
from lightning_green.engine.totals import Totals
from lightning_green.meter.state import RankState

__all__ = ["Gathered", "RankResult", "reduce_to_zero", "with_state_files"]

#: Step-row columns summed over ranks; the others (step, phase, epoch, times) are rank 0's.
_SUMMED_BASE = ("samples", "tokens", "padded_tokens", "energy_j")


@dataclass
class RankResult:
    """One rank's figures at the end of a segment (plain data: it crosses processes)."""

    rank: int
    host: str
    totals: dict[str, Any]  # Totals.to_dict(): this rank's own, earlier segments included
    segment: dict[str, Any]  # Totals.to_dict(): this segment only
    sensors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    idle_power_w: float | None = None
    rows: int = 0
    components: list[str] = field(default_factory=list)
    redone_energy_j: float = 0.0  # this rank's energy on steps done again (resumed after a crash)


@dataclass
class Gathered:
    """What rank 0 holds after the reduce: every rank's results and the summed step rows."""

    results: list[RankResult]
    components: list[str]
    rows: StepStore | None  # engine column order, energy and work summed over ranks
    complete: bool  # every rank took part

    @property
    def totals(self) -> Totals:
        return _over_ranks([Totals.from_dict(r.totals) for r in self.results])

    @property
    def segment(self) -> Totals:
        return _over_ranks([Totals.from_dict(r.segment) for r in self.results])

    @property
    def redone_energy_j(self) -> float:
        """Every rank's energy spent on steps done again."""
        return float(sum(r.redone_energy_j for r in self.results))


def _over_ranks(ranks: list[Totals]) -> Totals:
    """:meth:`Totals.over_ranks` in O(ranks x log ranks): the per-rank maps (energy by rank, by
    host) grow with every addition, so a left fold would copy them ranks^2 / 2 times (0.9 s
    at 4,000 ranks, measured); the others are added pairwise, then onto rank 0's."""
    if len(ranks) <= 2:
        return Totals.over_ranks(ranks)
    rest = ranks[1:]
    while len(rest) > 1:
        rest = [rest[i] + rest[i + 1] if i + 1 < len(rest) else rest[i] for i in range(0, len(rest), 2)]
    return Totals.over_ranks([ranks[0], rest[0]])  # wall time and steps: rank 0's


def reduce_to_zero(result: RankResult | None, store: StepStore | None, world: World, *,
                   with_rows: bool, spill_path: str) -> Gathered | None:
    """Collective over ranks when distributed; on rank 0 the gathered figures, elsewhere None.

    ``result`` None: this rank failed to compute its figures; it still takes part. Rank 0
    keeps the summed step rows in a new store spilled to ``spill_path`` (bounded memory), so
    every collective is over before any rank-0-only work begins.
    """
    if not world.distributed:
        components = list(store.components) if store is not None else []
        return Gathered([result] if result is not None else [], components,
                        store if with_rows else None, True)
    shapes = all_gather((result.rows if result else 0, result.components if result else []))
    components = list(dict.fromkeys(c for _, comps in shapes for c in comps))
    rows = shapes[0][0]
    gathered = gather_to_zero(result)
    summed = None
    if with_rows and rows > 0:
        if world.rank == 0:
            summed = StepStore(components, spill_path)
        for chunk in _reduce_rows(store if result is not None else None, components, rows, world):
            if summed is not None:
                summed.append(chunk)
    if world.rank != 0:
        return None
    results = [r for r in gathered or [] if r is not None]
    return Gathered(results, components, summed, len(results) == world.world_size)


def _reduce_rows(store: StepStore | None, components: list[str], rows: int, world: World) -> Iterator[np.ndarray]:
    """Rank 0's first ``rows`` step rows with the energy and work columns summed over ranks,
    chunk by chunk; every rank runs every chunk's reduce."""
    names = [*BASE_COLUMNS, *(f"{c}_j" for c in components)]
    own = store.columns if store is not None else []
    index = [own.index(name) if name in own else -1 for name in names]
    summed = [i for i, name in enumerate(names) if name in _SUMMED_BASE or name.endswith("_j")]
    source = store.chunks(REDUCE_CHUNK_ROWS) if store is not None else iter(())
    buffered = np.empty((0, len(own)))
    for start in range(0, rows, REDUCE_CHUNK_ROWS):
        n = min(REDUCE_CHUNK_ROWS, rows - start)
        while len(buffered) < n:
            nxt = next(source, None)
            if nxt is None:
                break
            buffered = np.concatenate((buffered, nxt)) if len(buffered) else nxt
        mine = np.zeros((n, len(names)))
        take = min(n, len(buffered))
        for j, i in enumerate(index):
            if i >= 0 and take:
                mine[:take, j] = buffered[:take, i]
        buffered = buffered[take:]
        total = reduce_rows_to_zero(mine[:, summed])
        if total is not None and world.rank == 0:
            mine[:, summed] = total
        yield mine


def with_state_files(gathered: Gathered, state_dir: str | None, run_id: str, world: World) -> Gathered:
    """Rank 0's results of a distributed segment that ended without the collective, plus every
    other rank's own figures from its state file (no collective; ``world_size - 1`` small
    reads on rank 0, only on this path). A rank whose file is missing stays out of the totals;
    one note on rank 0's result says which ranks came from files, and when they were written."""
    have = {r.rank for r in gathered.results}
    results = list(gathered.results)
    rows = results[0].rows if results else 0
    found: list[int] = []
    missing: list[int] = []
    written: list[float] = []
    statuses: set[str] = set()
    for rank in range(world.world_size):
        if rank in have:
            continue
        state = RankState.read(state_dir, rank, run_id) if state_dir else None
        if state is None:
            missing.append(rank)
            continue
        found.append(rank)
        statuses.add(state.status or "unknown")
        if state.written_at is not None:
            written.append(state.written_at)
        results.append(RankResult(
            rank=rank, host=state.host, totals=state.totals.to_dict(), segment=Totals().to_dict(),
            idle_power_w=state.idle_power_w,
            rows=rows,  # not known; rank 0's, so the report does not claim a mismatch it cannot see
            redone_energy_j=state.redone_energy_j,
        ))
    results.sort(key=lambda r: r.rank)  # rank 0 first: wall time and steps are its
    notes = []
    if found:
        one = len(found) == 1
        if not written:
            when = "at an unknown time"
        elif _utc(min(written)) == _utc(max(written)):
            when = f"at {_utc(min(written))}"
        else:
            when = f"between {_utc(min(written))} and {_utc(max(written))}"
        notes.append(f"the ranks did not reach the end of the run together: {_ranks(found)} "
                     f"{'is' if one else 'are'} counted from {'its state file' if one else 'their state files'}, "
                     f"written {when} (status {', '.join(sorted(statuses))}); only rank 0's sensors are listed")
    if missing:
        notes.append(f"{_ranks(missing)} left no state file: {'its' if len(missing) == 1 else 'their'} energy "
                     "is missing from the totals")
    if notes and results and results[0].rank == 0:
        results[0] = dataclasses.replace(results[0], warnings=[*results[0].warnings, *notes])
    return Gathered(results, gathered.components, gathered.rows, len(results) == world.world_size)


def _utc(wall_s: float) -> str:
    return dt.datetime.fromtimestamp(wall_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ranks(ranks: list[int], shown: int = 8) -> str:
    """``rank 3`` / ``ranks 1, 2`` / ``ranks 1, 2, ..., 999 (999 ranks)``."""
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    if len(ranks) <= shown:
        return "ranks " + ", ".join(map(str, ranks))
    return "ranks " + ", ".join(map(str, ranks[:shown - 1])) + f", ..., {ranks[-1]} ({len(ranks)} ranks)"
