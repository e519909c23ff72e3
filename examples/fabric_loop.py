"""Measure a Lightning Fabric training loop: EnergyMeter, no Trainer, no callback.

Run it (CPU, two DDP processes over gloo, some seconds)::

    python examples/fabric_loop.py                       # Fabric(accelerator="cpu", devices=2, strategy="ddp")
    python examples/fabric_loop.py --devices 1 --strategy auto
    python examples/fabric_loop.py --accelerator cuda --devices 4

Fabric starts the other processes itself (it runs this script again, once per extra rank).
Every rank builds its own EnergyMeter; under ``torch.distributed`` each rank measures its own
device (GPU), each host's CPU and RAM are measured by one rank of that host, the totals are
summed over ranks when the ``with meter:`` block ends, and only global rank 0 writes
footprint.json, emissions.csv and steps.csv (to ``outputs/fabric_loop``) and prints the summary.
"""

from __future__ import annotations

import argparse

import torch
from lightning.fabric import Fabric
from torch.utils.data import DataLoader, TensorDataset

from lightning_green import EnergyMeter


def datasets(samples: int = 2048, features: int = 32) -> tuple[TensorDataset, TensorDataset]:
    """y = x @ w + noise: 3/4 for training, 1/4 for validation."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, features, generator=generator)
    y = x @ torch.randn(features, 1, generator=generator) + 0.1 * torch.randn(samples, 1, generator=generator)
    split = samples * 3 // 4
    return TensorDataset(x[:split], y[:split]), TensorDataset(x[split:], y[split:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--output-dir", default="outputs/fabric_loop")
    args = parser.parse_args(argv)

    fabric = Fabric(accelerator=args.accelerator, devices=args.devices, strategy=args.strategy)
    fabric.launch()
    fabric.seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = fabric.setup(model, optimizer)
    train_set, val_set = datasets()
    train, val = fabric.setup_dataloaders(  # each rank gets its share (a DistributedSampler)
        DataLoader(train_set, batch_size=64, shuffle=True), DataLoader(val_set, batch_size=256))

    # France's grid, PUE 1.2; `device` picks the GPU that NVML measures for this rank.
    meter = EnergyMeter(country_iso_code="FRA", pue=1.2, output_dir=args.output_dir, device=fabric.device)
    with meter:  # a collective under DDP: every rank starts (and stops) together
        for epoch in range(args.epochs):
            model.train()
            with meter.phase("train"):
                for x, y in train:
                    with meter.step(samples=len(x)):  # one steps.csv row
                        loss = torch.nn.functional.mse_loss(model(x), y)
                        optimizer.zero_grad()
                        fabric.backward(loss)
                        optimizer.step()
            model.eval()
            val_loss = torch.zeros((), device=fabric.device)
            with meter.phase("validate"), torch.no_grad():
                for x, y in val:
                    val_loss += torch.nn.functional.mse_loss(model(x), y, reduction="sum")
                    meter.count(samples=len(x))  # validation work, without a steps.csv row
            val_loss = fabric.all_reduce(val_loss, reduce_op="sum") / len(val_set)
            meter.epoch_end()
            fabric.print(f"epoch {epoch}: val/loss {val_loss.item():.4f}, "
                         f"{meter.live_energy_j():.1f} J so far on rank 0 ({meter.live_power_w():.0f} W now)")
    if fabric.global_rank == 0:
        print(meter.report.summary())  # every rank's energy; None on the other ranks
        print(f"files in {meter.output_dir}")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # every rank leaves the group before exiting


if __name__ == "__main__":
    main()
