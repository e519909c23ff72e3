"""Where a Lightning run's footprint goes, how it reaches the loggers, how long the run is."""

from __future__ import annotations

import os
from typing import Any, Callable

__all__ = ["attach_footprint", "default_output_dir", "planned_batches"]

FOOTPRINT = "footprint.json"


def default_output_dir(trainer: Any) -> Callable[[str], str]:
    """The folder of this run, given its run id: the first logger's versioned log dir
    (TensorBoard, CSV: ``<save_dir>/<name>/version_<n>``), else
    ``<default_root_dir>/lightning_green/<run_id>``, so that no run overwrites another's files
    (a W&B or MLflow logger keeps its files elsewhere; the footprint is attached to its run)."""
    loggers = getattr(trainer, "loggers", None) or []
    versioned = bool(loggers) and getattr(type(loggers[0]), "log_dir", None) is not None

    def folder(run_id: str) -> str:
        if versioned:
            log_dir = trainer.log_dir  # broadcast from rank 0: a collective every rank reaches in setup
            if log_dir:
                return os.fspath(log_dir)
        root = getattr(trainer, "default_root_dir", None) or os.getcwd()
        return os.path.join(os.fspath(root), "lightning_green", run_id)

    return folder


def attach_footprint(logger: Any, output_dir: str | None, written: bool) -> None:
    """Attach footprint.json to the logger's run where the logger stores files (MLflow
    artifacts, W&B run files); TensorBoard and CSV logs already hold it in their folder."""
    if not written or output_dir is None:
        return
    path = os.path.join(output_dir, FOOTPRINT)
    if not os.path.isfile(path):
        return
    kind = type(logger).__name__
    try:
        if kind == "MLFlowLogger":
            logger.experiment.log_artifact(logger.run_id, path, artifact_path="lightning_green")
        elif kind == "WandbLogger":
            logger.experiment.save(path, base_path=output_dir, policy="now")
    except Exception:  # a logger that cannot take files must not cost the run
        return


def planned_batches(trainer: Any) -> tuple[int | None, str]:
    """Training batches the configured run will do, or None and why it is not known."""
    planned = []
    max_steps = getattr(trainer, "max_steps", -1) or -1
    if max_steps > 0:
        planned.append(max_steps * max(1, int(getattr(trainer, "accumulate_grad_batches", 1) or 1)))
    max_epochs = getattr(trainer, "max_epochs", None)
    per_epoch = getattr(trainer, "num_training_batches", float("inf"))
    if max_epochs is not None and max_epochs > 0 and per_epoch != float("inf"):
        planned.append(int(max_epochs * per_epoch))
    if planned:
        return min(planned), ""
    if per_epoch == float("inf") and max_epochs is not None and max_epochs > 0:
        return None, (f"max_epochs={max_epochs}, but the batches per epoch are not known (an IterableDataset "
                      "without a length); set max_steps or limit_train_batches")
    return None, "the run's length is not known (max_epochs=-1 and max_steps=-1)"
