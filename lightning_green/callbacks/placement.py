"""Where a Lightning run's footprint goes, how it reaches the loggers, how long the run is."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable

__all__ = ["attach_footprint", "default_output_dir", "planned_batches"]

FOOTPRINT = "footprint.json"
#: The folder of a run's files inside a logger's run (MLflow artifact path, W&B files folder).
ATTACHED_FOLDER = "lightning_green"
#: Loggers whose ``log_dir`` is a folder of their own run (``<save_dir>/<name>/version_<n>``),
#: in ``lightning.pytorch``, ``pytorch_lightning`` and ``lightning.fabric`` alike. Every other
#: logger has a ``log_dir`` too (the base class returns None, or its shared ``save_dir``: W&B's
#: default is ".", MLflow's the file store), where runs would overwrite each other's files.
VERSIONED_LOGGERS = frozenset({"TensorBoardLogger", "CSVLogger"})


def _is(logger: Any, *names: str) -> bool:
    """Whether ``logger`` is of a Lightning logger class named ``names`` (either twin package)."""
    return any(cls.__name__ in names for cls in type(logger).__mro__)


def default_output_dir(trainer: Any) -> Callable[[str], str]:
    """The folder of this run, given its run id: the first logger's versioned log dir
    (TensorBoard, CSV: ``<save_dir>/<name>/version_<n>``), else
    ``<default_root_dir>/lightning_green/<run_id>``, so that no run overwrites another's files
    (a W&B or MLflow logger keeps its files elsewhere; the footprint is attached to its run)."""
    loggers = getattr(trainer, "loggers", None) or []
    versioned = bool(loggers) and _is(loggers[0], *VERSIONED_LOGGERS)

    def folder(run_id: str) -> str:
        if versioned:
            log_dir = trainer.log_dir  # broadcast from rank 0: a collective every rank reaches in setup
            if log_dir:
                return os.fspath(log_dir)
        root = getattr(trainer, "default_root_dir", None) or os.getcwd()
        return os.path.join(os.fspath(root), "lightning_green", run_id)

    return folder


def attach_footprint(logger: Any, output_dir: str | None, written: bool) -> str | None:
    """Attach footprint.json to the logger's run where the logger stores files: an MLflow
    artifact ``lightning_green/footprint.json``, a file ``lightning_green/footprint.json`` of
    the W&B run (a copy in the run's files folder, so an offline run synced later has it).
    TensorBoard and CSV logs already hold it in their folder. Returns where it went, or None
    where there is nothing to attach; a logger's own error propagates (the caller warns)."""
    if not written or output_dir is None or not (_is(logger, "MLFlowLogger") or _is(logger, "WandbLogger")):
        return None
    from lightning_green.outputs import files

    source = files.join(output_dir, FOOTPRINT)
    if not files.exists(source):
        return None
    with tempfile.TemporaryDirectory(prefix="lightning-green-") as tmp:
        local = source
        if files.is_remote(source):  # an output_dir on object storage: attach a local copy
            local = os.path.join(tmp, FOOTPRINT)
            with open(local, "wb") as f:
                f.write(files.read_bytes(source))
        if _is(logger, "MLFlowLogger"):
            logger.experiment.log_artifact(logger.run_id, local, artifact_path=ATTACHED_FOLDER)
            return f"{ATTACHED_FOLDER}/{FOOTPRINT}"
        run = logger.experiment
        target_dir = os.path.join(run.dir, ATTACHED_FOLDER)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, FOOTPRINT)
        shutil.copyfile(local, target)
        run.save(target, base_path=run.dir, policy="now")
        return target


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
