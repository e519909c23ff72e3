"""Shared pieces of the Lightning-ecosystem tests (tests/callbacks/test_ecosystem*.py): sensors
of known power, a quiet CPU Trainer, tiny modules that log like real ones, a logger that
records every call, and what the callback said at the end of a run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, IterableDataset

from lightning_green import EnergyCallback
from lightning_green.sensors import ConstantPowerSensor
from tests.helpers.models import SlowBoringModel

POWER_W = 25.0
INTENSITY = 100.0  # g/kWh: explicit, so no "no location" warning unless a test wants it


def sensors(power_w: float = POWER_W) -> list:
    return [ConstantPowerSensor(power_w, name="fake-gpu", component="gpu", measured=True)]


def energy_cb(**kwargs: Any) -> EnergyCallback:
    defaults = dict(sensors=sensors(), sampling_interval_s=0.02, carbon_intensity_g_per_kwh=INTENSITY)
    return EnergyCallback(**{**defaults, **kwargs})


def trainer(root: Path, callbacks: list, **kwargs: Any) -> Trainer:
    defaults = dict(max_epochs=1, limit_train_batches=4, limit_val_batches=0, accelerator="cpu", devices=1,
                    logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=root)
    return Trainer(callbacks=callbacks, **{**defaults, **kwargs})


class LoggingModel(SlowBoringModel):
    """The tests' tiny module (its data loaders, no sleep) logging its loss as real modules do
    (step and epoch values, on the bar), with predict data too."""

    def __init__(self, batch_size: int = 4) -> None:
        super().__init__(batch_size=batch_size)

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"], prog_bar=True, on_step=True, on_epoch=True)
        return out

    def predict_dataloader(self):
        return DataLoader(RandomDataset(32, 16), batch_size=self.batch_size)


class TwoOptimizerModel(LoggingModel):
    """Manual optimisation with two optimizers: Lightning's ``global_step`` grows by two per
    batch, while its loggers' step (``_batches_that_stepped``) grows by one."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.other = torch.nn.Linear(32, 2)

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        for optimizer, layer in ((first, self.layer), (second, self.other)):
            loss = layer(batch).sum()
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
        self.log("train_loss", loss, on_step=True, on_epoch=True)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.SGD(self.other.parameters(), lr=0.1)]


class Stream(IterableDataset):
    """An IterableDataset without a length: Lightning cannot know the batches per epoch."""

    def __init__(self, n: int = 24) -> None:
        self.n = n

    def __iter__(self):
        generator = torch.Generator().manual_seed(0)
        for _ in range(self.n):
            yield torch.randn(32, generator=generator)


class StreamModel(BoringModel):
    def train_dataloader(self):
        return DataLoader(Stream(), batch_size=4)


class RecordingLogger(Logger):
    """Every ``log_metrics`` call, in order: ``(step, keys)``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int | None, frozenset[str]]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.calls.append((step, frozenset(metrics)))


def said(caplog: Any) -> list[str]:
    """What the callback said through Lightning's rank-zero logger (call ``caplog.set_level(
    logging.INFO)`` first): its messages that start with ``lightning-green``."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("lightning-green")]


def end_lines(caplog: Any) -> list[str]:
    """The end-of-run lines: ``lightning-green: <status>, ... Wh, ... g CO2e; footprint ...``."""
    return [line for message in said(caplog) for line in message.splitlines()
            if line.startswith("lightning-green: ")]


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())
