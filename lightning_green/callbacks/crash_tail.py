"""Energy spent between the last checkpoint and a crash, carried into the resumed run.

A resumed run starts from its checkpoint's totals; the crashed run went on after that
checkpoint, spending energy on steps that the resumed run does again. When a one-process
run fails or is interrupted, rank 0 writes its totals next to its checkpoints
(``lightning-green-<run_id>.json`` in each ``ModelCheckpoint`` folder that holds one); a
run resumed from a checkpoint in that folder adds what those totals hold beyond the
checkpoint's (energy, emissions, time; not steps or samples, which are redone) and renames
the file, so a second resume from the same checkpoint does not add it again.

Distributed runs are left out: a crash is not gathered over ranks, so rank 0's totals
would be short, and ranks must agree on the carried energy (budgets).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lightning_green.engine import totals
from lightning_green.outputs.atomic import atomic_write_text

SCHEMA = "lightning-green/crash-tail/1"


def _name(run_id: str) -> str:
    return f"lightning-green-{run_id}.json"


def checkpoint_dirs(trainer: Any) -> list[Path]:
    """The folders that exist of this Trainer's checkpoint callbacks and of the checkpoint it
    resumed from (a resume that crashes before saving must leave its totals there too)."""
    folders = [getattr(callback, "dirpath", None) for callback in getattr(trainer, "checkpoint_callbacks", None) or []]
    resumed_from = getattr(trainer, "ckpt_path", None)
    if resumed_from:
        folders.append(os.path.dirname(os.fspath(resumed_from)))
    out: list[Path] = []
    for folder in folders:
        if folder and os.path.isdir(folder) and Path(folder) not in out:
            out.append(Path(folder))
    return out


def write(trainer: Any, run_id: str, status: str, cumulative: dict[str, Any]) -> list[Path]:
    """Leave this run's totals at the end of a crash next to its checkpoints."""
    text = json.dumps({"schema": SCHEMA, "run_id": run_id, "status": status, "totals": cumulative}, indent=1)
    return [atomic_write_text(folder / _name(run_id), text) for folder in checkpoint_dirs(trainer)]


def take(ckpt_path: str | os.PathLike, run_id: str, carried: dict[str, Any]) -> dict[str, Any] | None:
    """The crashed run's spending beyond ``carried`` (the checkpoint's totals), or None.

    The file is renamed (``*.carried.json``) once read, so that it is added once.
    """
    path = Path(ckpt_path).parent / _name(run_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("run_id") != run_id:
        return None
    tail = totals.spent_since(totals.clean(data.get("totals")), carried)
    try:
        os.replace(path, path.with_suffix(".carried.json"))
    except OSError:
        return None  # not consumed: better not add it than risk adding it twice
    return tail if tail["energy_j"] > 0 or tail["duration_s"] > 0 else None
