"""Measure an existing Lightning training run: add EnergyCallback, change nothing else.

Run it (CPU, a few seconds)::

    python examples/existing_trainer.py

It trains a tiny regression model for two epochs and prints the footprint summary; the
files (footprint.json, emissions.csv, steps.csv) land in ``outputs/existing_trainer``.
On a machine without GPU or RAPL counters the CPU and RAM figures are estimates, and the
summary says so.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from lightning_green import EnergyCallback


class TinyRegressor(LightningModule):
    """y = x @ w + noise, fitted by a single linear layer."""

    def __init__(self, features: int = 32) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(features, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loaders(samples: int = 4096, features: int = 32) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, features, generator=generator)
    y = x @ torch.randn(features, 1, generator=generator) + 0.1 * torch.randn(samples, 1, generator=generator)
    split = samples * 3 // 4
    train = DataLoader(TensorDataset(x[:split], y[:split]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x[split:], y[split:]), batch_size=256)
    return train, val


def main() -> None:
    # The only addition to an ordinary script: the callback (grid intensity of France, PUE 1.2).
    energy = EnergyCallback(country_iso_code="FRA", pue=1.2, output_dir="outputs/existing_trainer")
    trainer = Trainer(
        max_epochs=2, accelerator="cpu", devices=1, callbacks=[energy],
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    train, val = loaders()
    trainer.fit(TinyRegressor(), train, val)
    print(energy.report.summary())
    print(f"files in {energy.output_dir}")


if __name__ == "__main__":
    main()
