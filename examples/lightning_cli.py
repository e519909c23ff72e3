"""Measure a LightningCLI run: the callback comes from the YAML config, the code is unchanged.

Run it (CPU, a few seconds)::

    python examples/lightning_cli.py fit --config examples/lightning_cli.yaml

LightningCLI builds ``lightning_green.EnergyCallback`` from the config's ``trainer.callbacks``
entry (``class_path`` + ``init_args``); every argument of the callback can be set there, and
each is checked before training as in Python. The footprint (footprint.json, emissions.csv,
steps.csv) lands in the run's log dir, ``lightning_logs/version_<n>/``, next to the
``config.yaml`` that LightningCLI saves, and the run ends with one line saying where.
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel


class TinyModel(BoringModel):
    """Lightning's BoringModel (one linear layer) logging its training loss."""

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"])
        return out


def main(args: list[str] | None = None) -> LightningCLI:
    return LightningCLI(TinyModel, BoringDataModule, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
