"""Measure a plain PyTorch loop with EnergyMeter; checkpoint the footprint with the model and resume it.

Run it twice (CPU, a few seconds each)::

    python examples/plain_pytorch.py --epochs 2    # epochs 0-1; saves outputs/plain_pytorch/checkpoint.pt
    python examples/plain_pytorch.py --epochs 4    # resumes after epoch 1: epochs 2-3, the footprint goes on

The second run continues the first one's footprint: same run id, energy, emissions, duration,
epochs and steps added up, steps.csv numbering continued (``--fresh`` starts over). Each run
prints its summary; footprint.json, emissions.csv and steps.csv land in ``outputs/plain_pytorch``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_green import EnergyMeter


def loaders(samples: int = 2048, features: int = 32) -> tuple[DataLoader, DataLoader]:
    """y = x @ w + noise: 3/4 for training, 1/4 for evaluation."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, features, generator=generator)
    y = x @ torch.randn(features, 1, generator=generator) + 0.1 * torch.randn(samples, 1, generator=generator)
    split = samples * 3 // 4
    train = DataLoader(TensorDataset(x[:split], y[:split]), batch_size=64, shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(x[split:], y[split:]), batch_size=256)
    return train, val


def save(path: Path, state: dict) -> None:
    """torch.save through a temporary file: a run killed while saving keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="train until this many epochs are done")
    parser.add_argument("--output-dir", default="outputs/plain_pytorch")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    checkpoint = out / "checkpoint.pt"

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    train, val = loaders()
    meter = EnergyMeter(country_iso_code="DEU", output_dir=out)  # Germany's grid

    first_epoch = 0
    if checkpoint.exists() and not args.fresh:
        saved = torch.load(checkpoint, weights_only=True)  # the footprint is plain numbers
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        meter.load_state_dict(saved["energy"])  # before `with meter:`; the footprint continues
        first_epoch = saved["epoch"] + 1
        print(f"resumed after epoch {saved['epoch']}: {meter.live_energy_j():.1f} J so far")

    with meter:
        for epoch in range(first_epoch, args.epochs):
            meter.set_epoch(epoch)  # epoch_end() alone would count from 0 again after a resume
            model.train()
            with meter.phase("train"):
                for x, y in train:
                    with meter.step(samples=len(x)):  # one steps.csv row
                        loss = torch.nn.functional.mse_loss(model(x), y)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
            model.eval()
            val_loss = 0.0
            with meter.phase("validate"), torch.no_grad():
                for x, y in val:
                    val_loss += torch.nn.functional.mse_loss(model(x), y, reduction="sum").item()
                    meter.count(samples=len(x))  # evaluation work, without a steps.csv row
            meter.epoch_end()
            save(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                              "energy": meter.state_dict()})
            print(f"epoch {epoch}: val/loss {val_loss / len(val.dataset):.4f}, {meter.live_energy_j():.1f} J so far "
                  f"({meter.live_power_w():.0f} W now); checkpoint saved")
    print(meter.report.summary())
    print(f"files in {meter.output_dir}")


if __name__ == "__main__":
    main()
