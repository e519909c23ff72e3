"""A 2-process CPU DDP fit whose set-up makes the callback warn (run by
tests/callbacks/test_ecosystem_ddp.py as a script): no location is given (a warning when the
callback is built, in every process) and one user sensor is broken (left out, with a warning,
on every rank when measuring starts). Each process says on stderr that it built its callback,
so the test knows it reads both processes' output.

Usage: python tests/scripts/ecosystem_ddp_fit.py OUTPUT_DIR
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor, PowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402


class BrokenSensor(PowerSensor):
    name, component = "broken-sensor", "cpu"

    def power_w(self) -> float:
        return 5.0

    def describe(self) -> dict:
        raise RuntimeError("a bug in a user's sensor")


def main() -> None:
    out_dir = sys.argv[1]
    sensors = [ConstantPowerSensor(10.0, name="per-rank-device", component="gpu", scope="device", measured=True),
               BrokenSensor()]
    cb = EnergyCallback(sensors=sensors, sampling_interval_s=0.05, output_dir=out_dir)  # no location given
    print(f"process of local rank {os.environ.get('LOCAL_RANK', '0')} built its callback", file=sys.stderr, flush=True)
    trainer = Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=1, limit_train_batches=4,
                      limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[cb])
    trainer.fit(SlowBoringModel())


if __name__ == "__main__":
    main()
