"""The run's context, recorded in every report so that two footprints can be compared fairly.

Precision, strategy, devices, library versions and the float32 matmul / TF32 flags change
what a run costs (MEASUREMENT.md: "fp32 on Ampere+ depends on TF32 settings").
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any


def _version(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    return getattr(module, "__version__", None) if module is not None else None


def torch_flags() -> dict[str, Any]:
    """Float32 matmul precision and TF32 switches of the running torch."""
    import torch

    flags: dict[str, Any] = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    try:
        flags["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        flags["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    except (AttributeError, RuntimeError):  # pragma: no cover - very old or stripped torch
        pass
    return flags


def parameter_counts(module: Any) -> dict[str, int]:
    """Total, trainable and non-zero parameter counts of a torch module."""
    total = trainable = nonzero = 0
    for param in module.parameters():
        count = param.numel()
        total += count
        if param.requires_grad:
            trainable += count
    # Non-zero count tells pruning masks (same size, more zeros) from real shrinking.
    for param in module.parameters():
        nonzero += int((param.detach() != 0).sum().item())
    return {"parameters": total, "trainable_parameters": trainable, "nonzero_parameters": nonzero}


def run_context(trainer: Any, pl_module: Any) -> dict[str, Any]:
    """Everything about the run that a fair comparison needs, from public Trainer attributes."""
    import torch

    strategy = trainer.strategy
    context: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "lightning": _version("lightning") or _version("pytorch_lightning"),
        "trainer_module": type(trainer).__module__.split(".")[0],
        "precision": str(getattr(trainer, "precision", None)),
        "strategy": type(strategy).__name__,
        "accelerator": type(trainer.accelerator).__name__,
        "devices": int(getattr(trainer, "num_devices", 1)),
        "num_nodes": int(getattr(trainer, "num_nodes", 1)),
        "root_device": str(strategy.root_device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "max_epochs": getattr(trainer, "max_epochs", None),
        "max_steps": getattr(trainer, "max_steps", None),
        "model_class": type(pl_module).__name__ if pl_module is not None else None,
    }
    context.update(torch_flags())
    if pl_module is not None:
        context.update(parameter_counts(pl_module))
    return context
