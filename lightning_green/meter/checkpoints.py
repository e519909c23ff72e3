"""Checkpoints of an :class:`~lightning_green.EnergyMeter`: ``state_dict`` / ``load_state_dict``.

No collective here (Lightning may save a checkpoint on one rank only): every rank writes its
own figures to its state file, and on resume reads its own back (see
:mod:`lightning_green.meter.resume` and :mod:`lightning_green.meter.state`).
"""

from __future__ import annotations

from typing import Any

from lightning_green.engine.distributed import current_world
from lightning_green.engine.marks import Boundary
from lightning_green.meter import resume
from lightning_green.meter.recording import FLUSH_TIMEOUT_S

__all__ = ["Checkpoints"]


class Checkpoints:
    """``state_dict``/``load_state_dict`` of an EnergyMeter (a mixin: the attributes are the
    meter's)."""

    def state_dict(self, key: str | None = None) -> dict[str, Any]:
        """This run's footprint so far, for a checkpoint; no collective (any rank may call it).

        Every rank also writes its own figures at this checkpoint to its state file, so that a
        resume gives every rank back its own (``key``: the same on every rank for one
        checkpoint; default the number of training steps so far).
        """
        own, session = self._carried, self._session
        if session is not None:
            # The ledger's energy then reaches this mark; duration ends at it too (not after the
            # flush, which may wait on a busy machine and would count time without energy).
            end_wall_s = session.mark_now(Boundary("checkpoint"))
            session.flush(FLUSH_TIMEOUT_S)
            own = own + self._segment_totals(session, end_wall_s)
        # Training steps counted on this thread: exact on every rank even when the flush above
        # timed out (the ledger's count then lags), so every rank keys one checkpoint alike.
        done = int(self._carried.steps) + (self._steps if session is not None else 0)
        own.steps = float(max(done, int(own.steps)))
        key = key if key is not None else f"step{done}"
        if self.options.write_files and self.output_dir is not None:
            try:
                state = self._rank_state()
                state.remember_checkpoint(key, own, float(self._meta["redone_energy_j"]))
                state.status, state.totals = "running", own
                state.idle_power_w = self._meta.get("idle_power_w")
                state.redone_energy_j = float(self._meta["redone_energy_j"])
                state.write(self._state_dir)
            except Exception as err:
                self._warn(f"could not leave this rank's checkpoint totals ({type(err).__name__}: {err})")
        state = resume.checkpoint_state(
            run_id=self.run_id, key=key, state_dir=self._state_dir, world_size=self._world.world_size, own=own,
            started_at=self._meta.get("started_at") or (session.started_wall_s if session else None),
            idle_power_w=self._meta.get("idle_power_w"),
            segments=int(self._meta["segments"]) + (1 if session is not None else 0),
            redone_energy_j=float(self._meta["redone_energy_j"]))
        # The epoch a resume continues with (plain loops): this one when saved in its middle (its
        # steps are done again), else the next.
        state["epoch"] = self._epoch if self._epoch >= 0 else (self._next_epoch if self._next_epoch is not None
                                                               else self._epoch_base)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the footprint saved by :meth:`state_dict` (on every rank, with the same
        checkpoint): each rank takes back its own figures from its state file, plus what a run
        that did not complete spent after this checkpoint. Old checkpoints load too."""
        if not isinstance(state, dict):
            return
        if self._session is None:
            self._world = current_world()
        restored = resume.restore(state, self._world.rank)
        self.run_id = restored.run_id or self.run_id
        self._carried = restored.carried
        self._state_dir = restored.state_dir
        self._meta.update(started_at=restored.started_at, segments=restored.segments, resumed=True,
                          redone_energy_j=restored.redone_energy_j)
        if restored.idle_power_w is not None:
            self._meta["idle_power_w"] = restored.idle_power_w
        epoch = state.get("epoch")
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
            self._epoch_base = epoch
            if self._session is not None and self._next_epoch is not None and self._epoch < 0:
                self._next_epoch = epoch
        for note in restored.notes:
            self._warn(note)
            if self._session is None and note not in self._resume_notes:
                self._resume_notes.append(note)
        if restored.rank_state is not None:
            self._state = restored.rank_state
            self._write_rank_state("running")  # a second resume takes this lineage's figures, once
        self._first_step = int(self._carried.step_rows)
        if self._session is not None:
            self._session.ledger.first_step = self._first_step

