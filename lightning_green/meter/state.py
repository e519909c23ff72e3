"""What each rank leaves behind so that a resumed run continues its footprint, even after a
crash that no collective could see.

Every rank keeps one small file in the run's state folder (``<output_dir>/.lightning-green/
<run_id>/rank-<r>.json``, any fsspec URL), rewritten atomically at each checkpoint, every
``snapshot_every_s`` and at the end:

* ``totals``: this rank's own cumulative :class:`~lightning_green.engine.totals.Totals` (earlier
  segments included) and ``status`` (``running``, ``completed``, ``failed``, ``interrupted``);
* ``checkpoints``: this rank's own totals at each of the latest checkpoints, by key (the
  number of training steps done), so a resume from any of them starts from the right figures;
  each entry also holds ``redone_energy_j``, this rank's energy spent on steps done again up to
  that checkpoint (the checkpoint file itself holds only the saving rank's);
* ``redone_energy_j``: this rank's energy spent on steps done again, so far.

A resume reads, on every rank, its own file: the totals at the checkpoint it resumes from,
plus, when the run it resumes did not complete, what that run spent after the checkpoint
(the *crash tail*: energy and time on steps done again now; not the steps). The resumed run
writes the same file, so a second resume from one checkpoint adds that tail and its own
segment, and never anything twice. Nothing here talks to other ranks; files are per rank, so
the cost per rank does not grow with the world size.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from lightning_green.engine.totals import Totals
from lightning_green.outputs import files

__all__ = ["CHECKPOINTS_KEPT", "RankState", "SCHEMA", "state_dir_for"]

SCHEMA = "lightning-green/rank-state/1"
#: Checkpoint entries kept per rank (the oldest go first).
CHECKPOINTS_KEPT = 64
STATE_FOLDER = ".lightning-green"


def state_dir_for(output_dir: str, run_id: str) -> str:
    """The run's state folder inside its output folder."""
    return files.join(files.join(output_dir, STATE_FOLDER), run_id)


@dataclass
class RankState:
    """One rank's file (see the module docstring)."""

    run_id: str
    rank: int
    host: str = ""
    status: str = "running"
    totals: Totals = field(default_factory=Totals)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    idle_power_w: float | None = None
    redone_energy_j: float = 0.0
    written_at: float | None = None  # unix seconds of the last write (set when read back)

    @staticmethod
    def path(state_dir: str, rank: int) -> str:
        return files.join(state_dir, f"rank-{int(rank)}.json")

    def to_json(self) -> str:
        return json.dumps({
            "schema": SCHEMA, "run_id": self.run_id, "rank": self.rank, "host": self.host,
            "status": self.status, "written_at": time.time(), "totals": self.totals.to_dict(),
            "checkpoints": self.checkpoints, "idle_power_w": self.idle_power_w,
            "redone_energy_j": self.redone_energy_j,
        })

    def write(self, state_dir: str) -> None:
        files.write_text(self.path(state_dir, self.rank), self.to_json())

    @classmethod
    def read(cls, state_dir: str, rank: int, run_id: str) -> RankState | None:
        """The rank's file of run ``run_id``, or None (missing, unreadable, another run)."""
        try:
            data = json.loads(files.read_bytes(cls.path(state_dir, rank)).decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("run_id") != run_id:
            return None
        checkpoints = data.get("checkpoints")
        idle = data.get("idle_power_w")
        redone = data.get("redone_energy_j")
        written = data.get("written_at")
        return cls(
            run_id=run_id, rank=int(rank), host=str(data.get("host") or ""), status=str(data.get("status") or ""),
            totals=Totals.from_dict(data.get("totals")),
            checkpoints=dict(checkpoints) if isinstance(checkpoints, dict) else {},
            idle_power_w=float(idle) if isinstance(idle, (int, float)) else None,
            redone_energy_j=float(redone) if isinstance(redone, (int, float)) else 0.0,
            written_at=float(written) if isinstance(written, (int, float)) else None,
        )

    def remember_checkpoint(self, key: str, totals: Totals, redone_energy_j: float = 0.0) -> None:
        self.checkpoints.pop(key, None)
        self.checkpoints[key] = dict(totals.to_dict(), redone_energy_j=float(redone_energy_j))
        while len(self.checkpoints) > CHECKPOINTS_KEPT:
            self.checkpoints.pop(next(iter(self.checkpoints)))

    def at_checkpoint(self, key: str) -> Totals | None:
        raw = self.checkpoints.get(key)
        return Totals.from_dict(raw) if isinstance(raw, dict) else None

    def redone_at_checkpoint(self, key: str) -> float | None:
        """This rank's redone energy at checkpoint ``key`` (None: no entry, or an older file)."""
        raw = self.checkpoints.get(key)
        value = raw.get("redone_energy_j") if isinstance(raw, dict) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def tail_after(self, checkpoint: Totals) -> Totals | None:
        """What the last run of this lineage spent after ``checkpoint`` when it did not
        complete (energy and time of steps that are done again), else None."""
        if self.status == "completed":
            return None
        tail = self.totals.spent_since(checkpoint)
        return tail if tail.energy_j > 0 or tail.duration_s > 0 else None
