"""Serving levers (``inference.*`` keys) and what a predict pass did (:class:`ServingCounter`).

- ``inference.quantization=dynamic_int8``: ``torch.ao.quantization.quantize_dynamic`` of every
  ``nn.Linear`` (int8 weights, activations quantized per batch at run time). CPU kernels only
  (fbgemm / onednn), float32 activations: refused on a GPU and with ``precision`` other than 32.
- ``inference.warmup_batches`` (default 1): batches run when predicting starts, before the
  predict phase is marked, so that one-time costs (first-call kernel set-up, the compile of
  ``inference.compile``) are timed apart (``warmup_s``) and their energy lands in the ``other``
  phase instead of the per-prediction figures. Their predictions are not counted.
- ``inference.compile=true``: ``torch.compile(dynamic=True)`` of the transformer; compiled on
  the first warm-up batch (``compile_s``: that batch's time; with ``warmup_batches=0`` the
  compile happens, and is paid, inside the predict phase).
- ``inference.batch_size``: the predict batch size (``null``: ``data.eval_batch_size``).
  Batches are padded to their longest text, so a larger batch also means more padding.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from lightning_green.validation import check_choice, check_number

QUANTIZATION = ("none", "dynamic_int8")


def validate_inference(node: Any, precision: str, on_cpu: bool) -> dict[str, Any]:
    """Check the ``inference.*`` keys before any work; return them normalised.

    Raises:
        ValueError: Names the key, the allowed values and the value given.
    """
    node = node or {}
    quantization = check_choice("inference.quantization", node.get("quantization", "none"), QUANTIZATION)
    batch_size = check_number("inference.batch_size", node.get("batch_size"), minimum=1, integer=True, optional=True)
    warmup = check_number("inference.warmup_batches", node.get("warmup_batches", 1), minimum=0, integer=True)
    compile_ = node.get("compile", False)
    if not isinstance(compile_, bool):
        raise ValueError(f"inference.compile must be one of true, false, got {compile_!r}")
    if quantization == "dynamic_int8":
        if not on_cpu:
            raise ValueError("inference.quantization=dynamic_int8 runs on the CPU only (torch's dynamic int8 kernels) "
                             "and this run would use a GPU: add trainer.accelerator=cpu, or set "
                             f"inference.quantization to one of {[q for q in QUANTIZATION if q != 'dynamic_int8']}")
        if precision != "32-true":
            raise ValueError("inference.quantization=dynamic_int8 computes in float32 between its int8 matmuls: "
                             f"set precision=32 (got precision {precision!r})")
    return {"quantization": quantization, "batch_size": batch_size, "compile": compile_, "warmup_batches": warmup}


def quantize_dynamic_int8(module: nn.Module) -> dict[str, Any]:
    """Replace every ``nn.Linear`` of ``module`` (in place) by a dynamically quantized int8 one.

    Returns:
        ``{"linear_layers_quantized": n, "method": ...}``.
    """
    from torch.ao.quantization import quantize_dynamic

    n_linear = sum(isinstance(m, nn.Linear) for m in module.modules())
    with warnings.catch_warnings():  # torch >= 2.9 announces the move to torchao; the kernels still ship
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return {"linear_layers_quantized": n_linear,
            "method": "torch.ao.quantization.quantize_dynamic(nn.Linear, qint8), per-tensor weights, CPU"}


def compile_transformer(model: Any) -> None:
    """``torch.compile`` the LightningModule's transformer (``model.model``); compiled on first call."""
    model.model = torch.compile(model.model, dynamic=True)


class ServingCounter(pl.Callback):
    """Counts a predict pass (batches, predictions, real and padded tokens, correct labels).

    Place it before the EnergyCallback: its ``on_predict_start`` (the warm-up batches) then runs
    before the predict phase is marked, and its ``on_predict_end`` writes ``record`` (shared
    with the footprint's ``extra.inference``) and ``metrics["predict/acc"]`` before the
    footprint is written.

    Args:
        record: The dict that becomes ``extra.inference``; counts are written into it.
        metrics: The dict merged into the footprint's ``metrics``.
        warmup_batches: Run the datamodule's first predict batches before the predict phase.
    """

    def __init__(self, record: dict[str, Any], metrics: dict[str, float], warmup_batches: int = 0) -> None:
        self.record, self.metrics, self.warmup_batches = record, metrics, int(warmup_batches)
        self._reset()

    def _reset(self) -> None:
        self.batches = self.predictions = self.tokens = self.padded_tokens = self.labelled = self.correct = 0
        self._t0 = 0.0

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()
        if self.warmup_batches:
            # A fresh loader: iterating trainer.predict_dataloaders again would restart the loop's own iterator.
            loader = iter(trainer.datamodule.predict_dataloader())
            times = []
            for i, batch in zip(range(self.warmup_batches), loader):
                start = time.perf_counter()
                with torch.inference_mode():
                    trainer.strategy.predict_step(trainer.strategy.batch_to_device(batch), i)
                times.append(time.perf_counter() - start)
            self.record["warmup_s"] = round(sum(times), 4)
            if self.record.get("compile"):
                self.record["compile_s"] = round(times[0], 4) if times else None
        self._t0 = time.perf_counter()

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        self.batches += 1
        self.predictions += int(ids.shape[0])
        self.padded_tokens += int(ids.numel())
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())
        labels = batch.get("labels")
        if labels is not None and outputs is not None:
            self.labelled += int(labels.numel())
            self.correct += int((outputs.detach().reshape(-1).cpu() == labels.reshape(-1).cpu()).sum())

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        duration_s = time.perf_counter() - self._t0
        accuracy = self.correct / self.labelled if self.labelled else None
        self.record.update({
            "batches": self.batches, "predictions": self.predictions, "tokens": self.tokens,
            "padded_tokens": self.padded_tokens,
            "padding_fraction": round(1 - self.tokens / self.padded_tokens, 6) if self.padded_tokens else None,
            "labelled": self.labelled, "correct": self.correct, "accuracy": accuracy,
            "predict_duration_s": round(duration_s, 4),
            "predictions_per_s": round(self.predictions / duration_s, 3) if duration_s > 0 else None,
        })
        if accuracy is not None:
            self.metrics["predict/acc"] = accuracy
