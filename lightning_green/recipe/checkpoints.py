"""The recipe's checkpoints: names that Hydra takes back as written, reading one, rebuilding its model.

Lightning names checkpoints ``epoch=0-step=10.ckpt`` by default, and Hydra's override grammar
rejects an unquoted ``=`` inside a value: ``ckpt_path=out/epoch=0-step=10.ckpt`` fails with
"mismatched input '='". The recipe's own checkpoints are therefore named
``epoch0-step10.ckpt`` (:data:`FILENAME`); any other file is passed quoted:
``"ckpt_path='out/epoch=0-step=10.ckpt'"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning_green.outputs.footprint import J_PER_KWH

#: ModelCheckpoint's ``filename`` for the recipe (with ``auto_insert_metric_name=False``).
FILENAME = "epoch{epoch}-step{step}"
MODES = ("fit", "predict")
ENERGY_STATE = "EnergyCallback"


def check_ckpt_path(mode: Any, ckpt_path: Any) -> str | None:
    """Check ``mode`` and ``ckpt_path`` before any work; return the path (or ``None``).

    Raises:
        ValueError: An unknown ``mode``; ``mode=predict`` without ``ckpt_path``; a path that
            is not an existing file. The message names the key, the allowed values and the value.
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {list(MODES)}, got {mode!r}")
    if ckpt_path is None or (isinstance(ckpt_path, str) and not ckpt_path.strip()):
        if mode == "predict":
            raise ValueError("`ckpt_path` is required for mode=predict: the path of a .ckpt file (a fit with "
                             "trainer.enable_checkpointing=true saves them in <run folder>/checkpoints/), got None")
        return None
    path = os.path.expanduser(str(ckpt_path))
    if not Path(path).is_file():
        raise ValueError(f"`ckpt_path` must be an existing checkpoint file; file not found: {str(ckpt_path)!r} "
                         f"(absolute: {os.path.abspath(path)})")
    return path


def checkpoint_callback(node: Any) -> Any:
    """The recipe's ModelCheckpoint (``checkpoint.*`` keys): ``epoch0-step10.ckpt``, no ``=``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=node.get("dirpath"), filename=node.get("filename") or FILENAME,
                           auto_insert_metric_name=False, save_top_k=int(node.get("save_top_k", 1)),
                           save_last=node.get("save_last"))


def read_checkpoint(path: str) -> dict[str, Any]:
    """Load a Lightning checkpoint on the CPU (memory-mapped: tensors are read when used).

    Raises:
        ValueError: Names ``ckpt_path`` when the file is not a Lightning checkpoint of the recipe.
    """
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as err:  # noqa: BLE001  a truncated or foreign file: say which key
        raise ValueError(f"`ckpt_path`: cannot read {path!r} as a checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"`ckpt_path`: {path!r} is not a Lightning checkpoint of the recipe's BertClassifier "
                         "(no state_dict / hyper_parameters)")
    return checkpoint


def check_resume_pruning(checkpoint: dict[str, Any], method: str, amount: float | None) -> None:
    """A fit resumed from ``checkpoint`` must prune as the checkpoint's run did (same shapes).

    Raises:
        ValueError: Names ``pruning``, the checkpoint's method and amount, and the value given.
    """
    done = (checkpoint.get("hyper_parameters") or {}).get("pruning") or {"method": "none", "amount": None}
    if (done.get("method"), done.get("amount")) != (method, amount):
        raise ValueError(f"`pruning` must match the checkpoint to resume from (`ckpt_path`): it was trained with "
                         f"pruning={done.get('method')} pruning.amount={done.get('amount')}, got pruning={method} "
                         f"pruning.amount={amount}")


def model_from_checkpoint(checkpoint: dict[str, Any]) -> Any:
    """A :class:`BertClassifier` rebuilt from a checkpoint dict (what ``load_from_checkpoint`` does).

    Pruned checkpoints come back with their pruned shapes (``pruned_shapes`` hyperparameter);
    the tokenizer stored in the checkpoint is attached.
    """
    from lightning_green.recipe.bert import BertClassifier

    model = BertClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model


def training_origin(checkpoint: dict[str, Any], path: str) -> dict[str, Any]:
    """Where a checkpoint came from: its training run's id and energy up to the checkpoint."""
    states = checkpoint.get("callbacks") or {}
    energy = [v for k, v in states.items() if isinstance(k, str) and k.split("{")[0] == ENERGY_STATE]
    state = energy[0] if len(energy) == 1 and isinstance(energy[0], dict) else {}
    totals = state.get("totals") if isinstance(state.get("totals"), dict) else {}
    energy_j = totals.get("energy_j")
    return {
        "checkpoint": os.path.abspath(path),
        "training_run_id": state.get("run_id"),
        "training_energy_kwh_at_checkpoint": float(energy_j) / J_PER_KWH if energy_j is not None else None,
        "training_epoch": checkpoint.get("epoch"),
        "training_global_step": checkpoint.get("global_step"),
    }
