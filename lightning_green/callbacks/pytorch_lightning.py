"""EnergyCallback for ``pytorch_lightning.Trainer`` (the standalone ``pytorch-lightning`` package).

Same behaviour and arguments as :class:`lightning_green.callbacks.lightning.EnergyCallback`; only the
base class differs, because ``pytorch_lightning`` and ``lightning.pytorch`` Trainers each
accept only their own ``Callback`` subclasses.

Example::

    import pytorch_lightning as pl
    from lightning_green.callbacks.pytorch_lightning import EnergyCallback

    trainer = pl.Trainer(callbacks=[EnergyCallback()])
"""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback

from lightning_green.callbacks.hooks import EnergyHooks

__all__ = ["EnergyCallback"]


class EnergyCallback(EnergyHooks, Callback):
    __doc__ = "EnergyCallback for pytorch_lightning Trainers. " + (EnergyHooks.__doc__ or "")
