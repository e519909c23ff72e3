"""A 2-process CPU DDP fit whose ranks serve Prometheus metrics on port and port + 1 (run by
tests/exporters/test_prometheus_fit.py while a real Prometheus scrapes both).

Usage: python tests/scripts/prometheus_ddp_fit.py OUTPUT_DIR BASE_PORT
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.exporters import PrometheusExporter  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402

DEVICE_W, HOST_W = 100.0, 20.0


def main() -> None:
    out_dir, base_port = sys.argv[1], int(sys.argv[2])
    sensors = [
        ConstantPowerSensor(DEVICE_W, name="per-rank-device", component="gpu", scope="device", measured=True),
        ConstantPowerSensor(HOST_W, name="shared-host", component="cpu", scope="host"),
    ]
    cb = EnergyCallback(sensors=sensors, sampling_interval_s=0.02, output_dir=out_dir,
                        carbon_intensity_g_per_kwh=400.0, exporters=[PrometheusExporter(port=base_port)])
    trainer = Trainer(strategy="ddp", accelerator="cpu", devices=2, max_epochs=8, limit_train_batches=16,
                      limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(SlowBoringModel(step_sleep_s=0.05))


if __name__ == "__main__":
    main()
