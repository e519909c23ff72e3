"""``from lightning_green.pytorch_lightning import EnergyCallback``: the twin for ``pytorch_lightning`` Trainers."""

from lightning_green.callbacks.pytorch_lightning import EnergyCallback

__all__ = ["EnergyCallback"]
