"""EnergyCallback for ``pytorch_lightning.Trainer`` (the standalone ``pytorch-lightning`` package).

Same behaviour and arguments as :class:`lightning_green.EnergyCallback`; only the base class
differs, because ``pytorch_lightning`` and ``lightning.pytorch`` Trainers each accept only
their own ``Callback`` subclasses.

Example::

    import pytorch_lightning as pl
    from lightning_green.pytorch_lightning import EnergyCallback

    trainer = pl.Trainer(callbacks=[EnergyCallback()])
"""

from __future__ import annotations

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from lightning_green.callbacks.hooks import EnergyHooks
from lightning_green.callbacks.lightning import EnergyCallback as _LightningTwin

__all__ = ["EnergyCallback"]


class EnergyCallback(EnergyHooks, Callback):
    __doc__ = "EnergyCallback for pytorch_lightning Trainers.\n\n" + (_LightningTwin.__doc__ or "")

    _info = staticmethod(rank_zero_info)
