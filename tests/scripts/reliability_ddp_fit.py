"""A 2-process CPU DDP fit in which rank 1's device sensors fail (run by
tests/callbacks/test_reliability_ddp.py as a script; the working twin is tests/scripts/ddp_fit.py).

Usage: python tests/scripts/reliability_ddp_fit.py OUTPUT_DIR

On rank 1, ``dev-read`` raises on every read and ``dev-open`` cannot be opened; on rank 0
both work; ``dev-ok`` works on both. ``shared-host`` is host scoped (local rank 0 only). A
second fit in the same processes resumes from the first one's checkpoint into
OUTPUT_DIR/resumed. Nothing but the callbacks writes into OUTPUT_DIR (checkpoints go to TMPDIR).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor, PowerSensor, SensorUnavailable  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402

READ_W, OPEN_W, OK_W, HOST_W = 10.0, 3.0, 2.0, 5.0


def _rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


class BrokenOnRank1(PowerSensor):
    """``power_w`` watts on rank 0; on rank 1 the read raises (``fail="read"``) or open does."""

    def __init__(self, power_w: float, fail: str, **kwargs) -> None:
        super().__init__(scope="device", measured=True, **kwargs)
        self.power, self.fail = power_w, fail

    def open(self) -> None:
        if self.fail == "open" and _rank() == 1:
            raise SensorUnavailable("rank 1: fake GPU driver missing")

    def power_w(self) -> float:
        if self.fail == "read" and _rank() == 1:
            raise OSError("rank 1: fake GPU fell off the bus")
        return self.power


def sensors() -> list:
    return [
        BrokenOnRank1(READ_W, "read", name="dev-read", component="gpu"),
        BrokenOnRank1(OPEN_W, "open", name="dev-open", component="accel"),
        ConstantPowerSensor(OK_W, name="dev-ok", component="npu", scope="device", measured=True),
        ConstantPowerSensor(HOST_W, name="shared-host", component="cpu", scope="host"),
    ]


def fit(output_dir: str, max_epochs: int, ckpt_path: str | None = None) -> None:
    scratch = os.environ["TMPDIR"]
    cb = EnergyCallback(sensors=sensors(), sampling_interval_s=0.02, output_dir=output_dir,
                        carbon_intensity_g_per_kwh=100.0)
    checkpoint = ModelCheckpoint(dirpath=os.path.join(scratch, "ckpt"), save_last=True)
    trainer = Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=max_epochs, limit_train_batches=8,
                      limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[cb, checkpoint],
                      default_root_dir=os.path.join(scratch, "lightning-root"))
    trainer.fit(SlowBoringModel(step_sleep_s=0.01), ckpt_path=ckpt_path)
    assert (cb.report is not None) == (trainer.global_rank == 0), "only rank 0 builds the report"


def main() -> None:
    out_dir = sys.argv[1]
    fit(out_dir, max_epochs=1)
    # The same two processes resume from the checkpoint the first fit saved (every rank's
    # energy must be in it, not only rank 0's).
    fit(os.path.join(out_dir, "resumed"), max_epochs=2,
        ckpt_path=os.path.join(os.environ["TMPDIR"], "ckpt", "last.ckpt"))


if __name__ == "__main__":
    main()
