"""A fit that runs until SIGTERM (run by tests/callbacks/test_reliability_failures.py as a script).

Usage: python tests/scripts/reliability_sigterm_fit.py OUTPUT_DIR

Touches OUTPUT_DIR/training-started after the third training step; at exit writes the names
of the lightning-green threads still alive to OUTPUT_DIR/threads.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402
from tests.helpers.reliability_kit import AtStep  # noqa: E402


def main() -> None:
    out_dir = sys.argv[1]

    def started(step: int) -> None:
        if step == 3:
            open(os.path.join(out_dir, "training-started"), "w").close()

    cb = EnergyCallback(sensors=[ConstantPowerSensor(50.0, name="fixed", component="gpu", measured=True)],
                        output_dir=out_dir, sampling_interval_s=0.01, carbon_intensity_g_per_kwh=200.0)
    trainer = Trainer(max_epochs=1000, limit_train_batches=10, limit_val_batches=0, accelerator="cpu", devices=1,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[cb, AtStep(started)])
    try:
        trainer.fit(SlowBoringModel(step_sleep_s=0.02))
    finally:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("lightning-green") and t.is_alive()]
        with open(os.path.join(out_dir, "threads.json"), "w") as f:
            json.dump(alive, f)


if __name__ == "__main__":
    main()
