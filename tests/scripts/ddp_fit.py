"""A 2-process CPU DDP fit with sensors of known power (run by tests/callbacks/test_ddp.py as a script).

Usage: python tests/scripts/ddp_fit.py OUTPUT_DIR STRATEGY [fail]
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402

DEVICE_W, HOST_W = 10.0, 5.0


def main() -> None:
    out_dir, strategy = sys.argv[1], sys.argv[2]
    fail = len(sys.argv) > 3 and sys.argv[3] == "fail"
    sensors = [
        ConstantPowerSensor(DEVICE_W, name="per-rank-device", component="gpu", scope="device", measured=True),
        ConstantPowerSensor(HOST_W, name="shared-host", component="cpu", scope="host"),
    ]
    cb = EnergyCallback(sensors=sensors, sampling_interval_s=0.02, output_dir=out_dir,
                        carbon_intensity_g_per_kwh=100.0, project_after_steps=4)
    trainer = Trainer(strategy=strategy, accelerator="cpu", devices=2, max_epochs=2, limit_train_batches=6,
                      limit_val_batches=2, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    model = SlowBoringModel(step_sleep_s=0.01, fail_at_step=3 if fail else None)
    try:
        trainer.fit(model)
    finally:
        rank = int(os.environ.get("LOCAL_RANK", trainer.global_rank))
        if rank == 0 and cb.report is not None:
            with open(os.path.join(out_dir, "parent_report.json"), "w") as f:
                json.dump(cb.report.to_dict(), f)
        elif rank != 0:
            assert cb.report is None, "only rank 0 builds the report"


if __name__ == "__main__":
    main()
