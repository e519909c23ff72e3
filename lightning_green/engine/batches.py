"""Counting the work a training batch does: samples and (for text) tokens.

Called once per batch on the training thread, so it only reads tensor shapes, except for
``attention_mask.sum()``; on a GPU that sum stays on the device (no synchronisation) and is
read once at the end of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _first_tensor(batch: Any) -> Any:
    if hasattr(batch, "shape") and hasattr(batch, "ndim"):
        return batch if batch.ndim > 0 else None
    kind = type(batch)
    if kind is tuple or kind is list:  # the usual (x, y): skip the ABC checks (~2 us per batch)
        for value in batch:
            found = _first_tensor(value)
            if found is not None:
                return found
        return None
    if isinstance(batch, Mapping):
        for key in ("input_ids", "x", "inputs", "pixel_values"):
            if key in batch:
                found = _first_tensor(batch[key])
                if found is not None:
                    return found
        for value in batch.values():
            found = _first_tensor(value)
            if found is not None:
                return found
        return None
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        for value in batch:
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def count_samples(batch: Any) -> int:
    """Samples in ``batch``: the leading dimension of its first tensor (0 if none)."""
    tensor = _first_tensor(batch)
    return int(tensor.shape[0]) if tensor is not None else 0


def token_counts(batch: Any) -> tuple[Any, int | None]:
    """``(tokens, padded_tokens)`` of a text batch, or ``(None, None)`` without ``input_ids``.

    ``tokens`` excludes padding when an ``attention_mask`` is present (an int for CPU tensors,
    a 0-dim device tensor otherwise: read it later, not per batch); ``padded_tokens`` is what
    the model processes, padding included (``input_ids.numel()``, from the shape: no sync).
    """
    kind = type(batch)
    if kind is tuple or kind is list or not isinstance(batch, Mapping) or "input_ids" not in batch:
        return None, None
    padded = int(batch["input_ids"].numel())
    mask = batch.get("attention_mask")
    if mask is None:
        return padded, padded
    total = mask.sum()
    return (int(total) if total.device.type == "cpu" else total), padded


def batch_work(batch: Any) -> tuple[int, Any, int]:
    """``(samples, tokens, padded_tokens)`` of a batch in one pass (the hot path's call).

    A ``(x, y)`` tuple or list costs a shape read; a text dict adds its token counts.
    ``tokens`` may be a 0-dim device tensor (see :func:`token_counts`); 0 when none.
    """
    kind = type(batch)
    if kind is tuple or kind is list:
        for value in batch:
            shape = getattr(value, "shape", None)
            if shape is not None and len(shape):
                return int(shape[0]), 0, 0
        return count_samples(batch), 0, 0
    tokens, padded = token_counts(batch)
    return count_samples(batch), (0 if tokens is None else tokens), (padded or 0)
