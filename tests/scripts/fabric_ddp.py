"""A 2-process Lightning Fabric DDP loop (gloo, CPU) measured by EnergyMeter with sensors of known
power; run by tests/meter/test_fabric_ddp.py as a script, so that Fabric launches the second
process itself (it re-runs this file with LOCAL_RANK=1).

Usage: python tests/scripts/fabric_ddp.py OUTPUT_DIR [fail]

Every rank writes ``rank-<r>.json`` (what it saw: its report or None, its live energy) next to
the meter's files; with ``fail`` both ranks raise in the third training step.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
from lightning.fabric import Fabric  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lightning_green import EnergyMeter  # noqa: E402
from lightning_green.sensors import ConstantPowerSensor  # noqa: E402

DEVICE_W, HOST_W = 10.0, 5.0
EPOCHS, BATCH = 2, 4
SAMPLES = 48  # 24 per rank: 6 batches of 4 per rank and epoch


def main() -> None:
    out_dir = sys.argv[1]
    fail = len(sys.argv) > 2 and sys.argv[2] == "fail"
    fabric = Fabric(accelerator="cpu", devices=2, strategy="ddp")
    fabric.launch()
    fabric.seed_everything(0)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model, optimizer = fabric.setup(model, optimizer)
    data = TensorDataset(torch.randn(SAMPLES, 8), torch.randn(SAMPLES, 1))
    train = fabric.setup_dataloaders(DataLoader(data, batch_size=BATCH))  # a DistributedSampler: half each

    sensors = [
        ConstantPowerSensor(DEVICE_W, name="per-rank-device", component="gpu", scope="device", measured=True),
        ConstantPowerSensor(HOST_W, name="shared-host", component="cpu", scope="host"),
    ]
    meter = EnergyMeter(sensors=sensors, sampling_interval_s=0.02, output_dir=out_dir, carbon_intensity_g_per_kwh=100.0)
    error = None
    try:
        with meter:
            for _ in range(EPOCHS):
                with meter.phase("train"):
                    for step, (x, y) in enumerate(train):
                        with meter.step(samples=len(x), tokens=8 * len(x)):
                            if fail and step == 2:
                                raise RuntimeError(f"boom at step 2 on rank {fabric.global_rank}")
                            loss = torch.nn.functional.mse_loss(model(x), y)
                            optimizer.zero_grad()
                            fabric.backward(loss)
                            optimizer.step()
                            time.sleep(0.01)
                meter.epoch_end()
    except RuntimeError as err:
        error = err
    seen = {
        "rank": fabric.global_rank,
        "world_size": fabric.world_size,
        "report": meter.report.to_dict() if meter.report is not None else None,
        "live_energy_j": meter.live_energy_j(),
        "run_id": meter.run_id,
        "output_dir": meter.output_dir,
    }
    with open(os.path.join(out_dir, f"rank-{fabric.global_rank}.json"), "w") as f:
        json.dump(seen, f)
    if error is not None:
        raise error


if __name__ == "__main__":
    main()
