"""The run's context, recorded in every report so that two footprints can be compared fairly.

Precision, strategy, devices, library versions and the float32 matmul / TF32 flags change
what a run costs: fp32 matmuls on NVIDIA Ampere and newer run as TF32 unless disabled
(``torch.backends.cuda.matmul.allow_tf32``, ``torch.get_float32_matmul_precision()``), so the
same "fp32" run can differ several-fold in time and energy between two machines.
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


def base_context(module: Any = None, device: Any = None) -> dict[str, Any]:
    """What any run records, with or without a framework: host, versions, float32 matmul and
    TF32 flags, the device and (given a module) its parameter counts."""
    import torch

    context: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "lightning": _version("lightning") or _version("pytorch_lightning"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if device is not None:
        context["root_device"] = str(device)
    context.update(torch_flags())
    if module is not None:
        context.update(parameter_counts(module))
    return context
