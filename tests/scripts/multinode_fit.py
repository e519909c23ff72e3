"""One rank of a 2-node x 2-process CPU DDP fit with sensors of known power.

Run by tests/callbacks/test_multinode.py, once per "node" under torchrun (each node in its own
UTS namespace with its own hostname) or once per SLURM task with SLURM_* variables set. Every
process writes ``OUTPUT_DIR/rank-<global rank>.json``: the cluster environment Lightning chose,
its ranks, the hostname and the world size; global rank 0's EnergyCallback writes footprint.json.

Usage: python tests/scripts/multinode_fit.py OUTPUT_DIR
"""

from __future__ import annotations

import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lightning.pytorch import Trainer  # noqa: E402

from lightning_green import EnergyCallback  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402
from tests.helpers.models import SlowBoringModel  # noqa: E402

DEVICE_W, HOST_W = 100.0, 20.0
NUM_NODES, DEVICES = 2, 2


def main() -> None:
    out_dir = sys.argv[1]
    sensors = [
        ConstantPowerSensor(DEVICE_W, name="device-100w", component="gpu", scope="device", measured=True),
        ConstantPowerSensor(HOST_W, name="host-20w", component="cpu", scope="host", measured=True),
    ]
    cb = EnergyCallback(sensors=sensors, sampling_interval_s=0.05, output_dir=out_dir,
                        carbon_intensity_g_per_kwh=100.0)
    trainer = Trainer(num_nodes=NUM_NODES, devices=DEVICES, accelerator="cpu", strategy="ddp", max_epochs=3,
                      limit_val_batches=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(SlowBoringModel(step_sleep_s=0.2))
    env = trainer.strategy.cluster_environment
    info = {
        "cluster_environment": type(env).__name__,
        "hostname": socket.gethostname(),
        "global_rank": trainer.global_rank, "local_rank": trainer.local_rank, "node_rank": trainer.node_rank,
        "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
        "has_report": cb.report is not None,
    }
    with open(os.path.join(out_dir, f"rank-{trainer.global_rank}.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main()
