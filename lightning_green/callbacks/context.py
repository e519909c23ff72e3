"""What a Lightning run adds to the report's context: precision, strategy, devices, model."""

from __future__ import annotations

from typing import Any

from lightning_green.meter.context import base_context

__all__ = ["trainer_context"]


def trainer_context(trainer: Any, pl_module: Any) -> dict[str, Any]:
    """Everything about the run that a fair comparison needs, from public Trainer attributes."""
    strategy = trainer.strategy
    context = base_context(pl_module, strategy.root_device)
    context.update({
        "trainer_module": type(trainer).__module__.split(".")[0],
        "precision": str(getattr(trainer, "precision", None)),
        "strategy": type(strategy).__name__,
        "accelerator": type(trainer.accelerator).__name__,
        "devices": int(getattr(trainer, "num_devices", 1)),
        "num_nodes": int(getattr(trainer, "num_nodes", 1)),
        "max_epochs": getattr(trainer, "max_epochs", None),
        "max_steps": getattr(trainer, "max_steps", None),
        "accumulate_grad_batches": getattr(trainer, "accumulate_grad_batches", None),
        "fast_dev_run": bool(getattr(trainer, "fast_dev_run", False)),
        "model_class": type(pl_module).__name__ if pl_module is not None else None,
    })
    return context
