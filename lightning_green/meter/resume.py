"""A checkpoint's share of the footprint: what ``state_dict`` saves and ``load_state_dict`` restores.

No collective happens here: Lightning may save a checkpoint on one rank only (an exception
checkpoint, a signal handler). Every rank instead writes its own figures at each checkpoint
to its state file (:mod:`lightning_green.meter.state`), and on resume every rank reads back
its own; the checkpoint itself carries the saving rank's figures and where the files are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightning_green.engine.totals import Totals
from lightning_green.meter.state import RankState

__all__ = ["CHECKPOINT_SCHEMA", "Restored", "checkpoint_state", "restore"]

CHECKPOINT_SCHEMA = 2


def checkpoint_state(*, run_id: str, key: str, state_dir: str | None, world_size: int, own: Totals,
                     started_at: float | None, idle_power_w: float | None, segments: int,
                     redone_energy_j: float) -> dict[str, Any]:
    """The plain-number dict a checkpoint holds (the saving rank's own figures)."""
    return {
        "schema": CHECKPOINT_SCHEMA,
        "run_id": run_id,
        "key": key,
        "state_dir": state_dir,
        "world_size": world_size,
        "totals": own.to_dict(),
        "started_at": started_at,
        "idle_power_w": idle_power_w,
        "segments": segments,
        "redone_energy_j": redone_energy_j,
    }


@dataclass
class Restored:
    """What one rank continues from."""

    run_id: str
    carried: Totals
    state_dir: str | None
    rank_state: RankState | None
    started_at: float | None
    segments: int
    redone_energy_j: float
    idle_power_w: float | None
    notes: list[str]


def restore(state: dict[str, Any], rank: int) -> Restored:
    """Rank ``rank``'s figures at the checkpoint ``state`` (from any rank's ``state_dict``),
    plus the crash tail of a run of this lineage that did not complete. Old checkpoints
    (schema 1: rank 0 held every rank's totals) load too."""
    run_id = str(state.get("run_id") or "")
    key, state_dir = state.get("key"), state.get("state_dir")
    notes: list[str] = []
    # The checkpoint file holds the saving rank's (rank 0's) figures; every rank's own are in
    # its state file, redone energy included (older files: rank 0 takes the checkpoint's).
    checkpoint = Totals.from_dict(state.get("totals")) if rank == 0 else Totals()
    redone_j = float(state.get("redone_energy_j") or 0.0) if rank == 0 else 0.0
    rank_state = None
    if isinstance(state_dir, str) and key is not None:
        rank_state = RankState.read(state_dir, rank, run_id)
        mine = rank_state.at_checkpoint(str(key)) if rank_state is not None else None
        if mine is not None:
            checkpoint = mine
            own_redone = rank_state.redone_at_checkpoint(str(key))
            if own_redone is not None:
                redone_j = own_redone
        elif rank != 0:
            notes.append(f"rank {rank}'s figures at this checkpoint were not found in {state_dir}; its energy "
                         "before the checkpoint is missing from the totals")
    carried = checkpoint
    tail = rank_state.tail_after(checkpoint) if rank_state is not None else None
    if tail is not None:
        carried = carried + tail
        redone_j += tail.energy_j
        notes.append(f"carried {tail.energy_j / 3.6e6:.6g} kWh ({tail.duration_s:.1f} s) that the crashed run "
                     "spent after this checkpoint on steps done again now")
    idle = state.get("idle_power_w") if rank == 0 else None
    if rank_state is not None and rank_state.idle_power_w is not None:
        idle = rank_state.idle_power_w
    return Restored(run_id=run_id, carried=carried, state_dir=state_dir if isinstance(state_dir, str) else None,
                    rank_state=rank_state, started_at=state.get("started_at"), segments=int(state.get("segments") or 1),
                    redone_energy_j=redone_j, idle_power_w=float(idle) if isinstance(idle, (int, float)) else None,
                    notes=notes)
