"""A CPU fit that runs until it is killed, or until its last step (run as a subprocess by
tests/callbacks/test_durability_*.py: SIGKILL, SIGTERM, SLURM's SIGUSR1, a rank killed under DDP).

Usage: python tests/scripts/durability_fit.py SETTINGS_JSON

SETTINGS_JSON (a file) holds::

    out_dir          EnergyCallback's output_dir (a folder or an fsspec URL)
    marks_dir        where this script leaves its marks (below)
    devices          1 (one process) or 2 (DDP, gloo; Lightning starts rank 1 as a subprocess)
    power_w          a ConstantPowerSensor of this power per rank (scope "device", measured)
    snapshot_every_s EnergyCallback's snapshot_every_s
    step_sleep_s     each training step sleeps this long
    max_steps        the run ends after this many steps (default: never, it waits to be killed)
    ckpt_dir, every_n_train_steps   ModelCheckpoint(dirpath, every_n_train_steps, save_last=True)
    on_exception_ckpt_dir   OnExceptionCheckpoint(dirpath): on_exception.ckpt when the fit raises
    resume           ckpt_path of trainer.fit (a path, or "hpc"); absent: none
    slurm_requeue    true: plugins=[SLURMEnvironment(auto_requeue=True)] (the SLURM_* variables
                     come from the test), default_root_dir=root_dir (where hpc checkpoints go)
    root_dir         the Trainer's default_root_dir
    batches_per_epoch  training batches per epoch (default 8; each epoch end flushes the meter)

Marks in marks_dir: ``pid-<rank>`` and ``setup-<rank>`` (this process's pid and the wall time
at setup), ``step-<rank>`` (the
number of training steps done, rewritten after each), ``ckpt-<rank>`` (global steps of each
checkpoint saved, one a line, written after the save), ``exit-<rank>.json`` (at a normal exit:
the exception if any, the report's status, the global step, the wall time, the cluster
environment Lightning chose).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Callback, Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402


class Model(SlowBoringModel):
    """SlowBoringModel with ``batches`` batches of 4 samples per epoch."""

    def __init__(self, step_sleep_s: float, batches: int) -> None:
        super().__init__(step_sleep_s=step_sleep_s)
        self.batches = batches

    def train_dataloader(self):
        from lightning.pytorch.demos.boring_classes import RandomDataset
        from torch.utils.data import DataLoader

        return DataLoader(RandomDataset(32, 4 * self.batches), batch_size=4)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Marks(Callback):
    """Leaves the marks the test waits on (see the module docstring)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.steps = 0
        self.rank = 0

    def setup(self, trainer, pl_module, stage) -> None:
        self.rank = trainer.global_rank
        _write(os.path.join(self.folder, f"pid-{self.rank}"), str(os.getpid()))
        _write(os.path.join(self.folder, f"setup-{self.rank}"), repr(time.time()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        _write(os.path.join(self.folder, f"step-{self.rank}"), str(self.steps))


class CheckpointSaved(ModelCheckpoint):
    """ModelCheckpoint that records each save once the file is written."""

    marks: Marks

    def _save_checkpoint(self, trainer, filepath) -> None:
        super()._save_checkpoint(trainer, filepath)
        with open(os.path.join(self.marks.folder, f"ckpt-{trainer.global_rank}"), "a") as f:
            f.write(f"{trainer.global_step} {os.path.basename(filepath)}\n")
            f.flush()
            os.fsync(f.fileno())


def main() -> None:
    with open(sys.argv[1]) as f:
        settings = json.load(f)
    marks = Marks(settings["marks_dir"])
    devices = int(settings.get("devices", 1))
    sensors = [ConstantPowerSensor(float(settings["power_w"]), name="device-w", component="gpu", scope="device",
                                   measured=True)]
    cb = EnergyCallback(sensors=sensors, output_dir=settings["out_dir"], sampling_interval_s=0.02,
                        carbon_intensity_g_per_kwh=100.0, snapshot_every_s=float(settings["snapshot_every_s"]),
                        log_every_n_steps=int(settings.get("log_every_n_steps", 5)))
    callbacks: list = [cb, marks]
    enable_checkpointing = False
    if settings.get("ckpt_dir"):
        checkpoint = CheckpointSaved(dirpath=settings["ckpt_dir"], every_n_train_steps=int(settings["every_n_train_steps"]),
                                     save_last=True, save_top_k=-1)
        checkpoint.marks = marks
        callbacks.append(checkpoint)
        enable_checkpointing = True
    if settings.get("on_exception_ckpt_dir"):
        callbacks.append(OnExceptionCheckpoint(settings["on_exception_ckpt_dir"]))
        enable_checkpointing = True  # a Checkpoint callback (no default ModelCheckpoint is added)
    plugins = []
    if settings.get("slurm_requeue"):
        from lightning.pytorch.plugins.environments import SLURMEnvironment

        plugins.append(SLURMEnvironment(auto_requeue=True))
    max_steps = int(settings.get("max_steps") or -1)
    batches = int(settings.get("batches_per_epoch", 8))
    trainer = Trainer(
        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", plugins=plugins or None,
        max_epochs=-1 if max_steps < 0 else None, max_steps=max_steps, limit_train_batches=batches,
        limit_val_batches=0,
        num_sanity_val_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=enable_checkpointing, callbacks=callbacks,
        default_root_dir=settings.get("root_dir") or settings["marks_dir"],
    )
    outcome: dict = {"exception": None}
    try:
        model = Model(float(settings.get("step_sleep_s", 0.02)), max(batches, 16))
        trainer.fit(model, ckpt_path=settings.get("resume"))
    except BaseException as err:  # recorded, then re-raised: the exit status stays Lightning's
        outcome["exception"] = type(err).__name__
        raise
    finally:
        outcome["status"] = cb.report.status if cb.report is not None else None
        outcome["global_step"] = trainer.global_step
        outcome["t"] = time.time()
        outcome["cluster_environment"] = type(trainer._accelerator_connector.cluster_environment).__name__
        _write(os.path.join(marks.folder, f"exit-{trainer.global_rank}.json"), json.dumps(outcome))


if __name__ == "__main__":
    main()
