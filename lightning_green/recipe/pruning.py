"""Pruning for the BERT recipe: L1 masks (Lightning's ModelPruning) or structured removal.

What the methods do to compute:

- ``l1_unstructured`` zeroes the smallest ``amount`` of all ``nn.Linear`` weights (global L1)
  through a mask. Dense kernels still multiply the zeros: the parameter count and the step
  time do not change, so neither does the energy. Masks are made permanent when training ends.
- ``heads`` removes ``amount`` of the attention heads of every layer (lowest L1 norm of their
  query/key/value rows and attention-output columns): the Q/K/V and output projections shrink.
- ``ffn`` removes ``amount`` of the feed-forward (intermediate) units of every layer (lowest L1
  norm of their ``intermediate.dense`` rows and ``output.dense`` columns).

Structured pruning happens once, before training (prune, then fine-tune). The shapes it left
are written into the LightningModule's hyperparameters (``pruning``), so a checkpoint
reloads with them (``BertClassifier.load_from_checkpoint`` calls :func:`shrink_to`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelPruning
from torch import nn

METHODS = ("none", "l1_unstructured", "heads", "ffn")


def validate_pruning(method: Any, amount: Any) -> tuple[str, float | None]:
    """Check ``pruning.method`` and ``pruning.amount``; return them normalised.

    Raises:
        ValueError: Names the key, the allowed values and the value given.
    """
    if method not in METHODS:
        raise ValueError(f"`pruning.method` must be one of {list(METHODS)}, got {method!r}")
    if method == "none":
        return method, None
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 < float(amount) < 1.0:
        raise ValueError(f"`pruning.amount` must be a number in (0, 1) (exclusive) for pruning={method}, got {amount!r}")
    return method, float(amount)


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements (masked weights count once, via their ``*_orig`` tensor)."""
    return sum(p.numel() for p in module.parameters())


def linear_weight_sparsity(module: nn.Module) -> float:
    """Fraction of exactly-zero elements among the weights of all ``nn.Linear`` layers."""
    zeros = total = 0
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            weight = layer.weight  # with a mask hook this is the masked tensor
            zeros += int((weight == 0).sum())
            total += weight.numel()
    return zeros / total if total else 0.0


def _encoder_layers(model: nn.Module) -> list[nn.Module]:
    hf_model = getattr(model, "model", model)
    encoder = getattr(getattr(hf_model, "base_model", hf_model), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise ValueError(f"structured pruning supports BERT-family encoders (`encoder.layer`), got {type(hf_model).__name__}")
    return list(layers)


def _keep(importance: torch.Tensor, amount: float, what: str) -> torch.Tensor:
    """Sorted indices of the units to keep: all but the ``amount`` least important ones."""
    n = importance.numel()
    n_remove = min(n - 1, max(1, round(amount * n)))
    if n < 2:
        raise ValueError(f"`pruning.amount`: cannot remove {what} from a layer that has only {n}")
    return importance.topk(n - n_remove).indices.sort().values


def _remove_heads(layer: nn.Module, keep: torch.Tensor) -> None:
    """Keep only the attention heads ``keep`` (sorted indices) of one encoder layer."""
    from transformers.pytorch_utils import prune_linear_layer

    attention, output = layer.attention.self, layer.attention.output
    size = attention.attention_head_size
    index = (keep[:, None] * size + torch.arange(size)).reshape(-1)
    attention.query = prune_linear_layer(attention.query, index)
    attention.key = prune_linear_layer(attention.key, index)
    attention.value = prune_linear_layer(attention.value, index)
    output.dense = prune_linear_layer(output.dense, index, dim=1)
    attention.num_attention_heads = len(keep)
    attention.all_head_size = len(keep) * size


def _remove_ffn_units(layer: nn.Module, keep: torch.Tensor) -> None:
    """Keep only the feed-forward units ``keep`` (sorted indices) of one encoder layer."""
    from transformers.pytorch_utils import prune_linear_layer

    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, keep)
    layer.output.dense = prune_linear_layer(layer.output.dense, keep, dim=1)


@torch.no_grad()
def prune_heads(model: nn.Module, amount: float) -> dict[str, Any]:
    """Remove ``amount`` of the attention heads in every layer (lowest L1 norm first).

    Uses ``transformers.pytorch_utils.prune_linear_layer`` on query/key/value (rows) and the
    attention output dense (columns) and updates the attention module's head count, so the
    forward pass works with the smaller projections (``prune_heads`` was removed in transformers 5).

    Returns:
        ``{"heads_per_layer_before": [...], "heads_per_layer_after": [...]}``.
    """
    before, after = [], []
    for layer in _encoder_layers(model):
        attention, output = layer.attention.self, layer.attention.output
        heads, size = attention.num_attention_heads, attention.attention_head_size
        per_head = lambda w: w.abs().reshape(heads, size, -1).sum(dim=(1, 2))  # noqa: E731  rows -> heads
        importance = per_head(attention.query.weight) + per_head(attention.key.weight) + per_head(attention.value.weight)
        importance += output.dense.weight.abs().t().reshape(heads, size, -1).sum(dim=(1, 2))
        keep = _keep(importance.float(), amount, "heads")
        _remove_heads(layer, keep)
        before.append(heads)
        after.append(len(keep))
    return {"heads_per_layer_before": before, "heads_per_layer_after": after}


@torch.no_grad()
def prune_ffn(model: nn.Module, amount: float) -> dict[str, Any]:
    """Remove ``amount`` of the feed-forward units in every layer (lowest L1 norm first).

    Returns:
        ``{"intermediate_size_before": [...], "intermediate_size_after": [...]}`` per layer.
    """
    before, after = [], []
    for layer in _encoder_layers(model):
        up, down = layer.intermediate.dense, layer.output.dense
        importance = up.weight.abs().sum(dim=1) + down.weight.abs().sum(dim=0)
        keep = _keep(importance.float(), amount, "feed-forward units")
        _remove_ffn_units(layer, keep)
        before.append(up.out_features)
        after.append(len(keep))
    return {"intermediate_size_before": before, "intermediate_size_after": after}


#: Keys of a structured pruning's record that give the shapes after it.
SHAPE_KEYS = ("heads_per_layer_after", "intermediate_size_after")


def pruned_shapes(info: dict[str, Any]) -> dict[str, list[int]]:
    """The per-layer shapes a structured pruning left (``{}`` for none / l1_unstructured).

    Stored in the model's ``pruning`` hyperparameter (with ``method`` and ``amount``), so that
    ``load_from_checkpoint`` rebuilds the pruned architecture (see :func:`shrink_to`) before it
    loads the pruned weights.
    """
    return {key: [int(n) for n in info[key]] for key in SHAPE_KEYS if key in info}


@torch.no_grad()
def shrink_to(model: nn.Module, pruning: dict[str, Any]) -> None:
    """Give a freshly built model the layer shapes of a pruned one (weights are then loaded).

    ``pruning``: the ``pruning`` hyperparameter (``method``, ``amount`` and the
    :data:`SHAPE_KEYS` a structured method left). Keeps the first heads / units of every layer:
    the values do not matter, only the shapes, because the checkpoint's weights replace them.

    Raises:
        ValueError: When the shapes do not fit the model (layer count, more units than it has).
    """
    layers = _encoder_layers(model)
    shapes = {key: pruning[key] for key in SHAPE_KEYS if key in pruning}
    for key in shapes:
        if len(shapes[key]) != len(layers):
            raise ValueError(f"pruning.{key} has {len(shapes[key])} layers, the model has {len(layers)}")
    for i, layer in enumerate(layers):
        if "heads_per_layer_after" in shapes:
            heads, wanted = layer.attention.self.num_attention_heads, int(shapes["heads_per_layer_after"][i])
            if not 1 <= wanted <= heads:
                raise ValueError(f"pruning: layer {i} has {heads} heads, cannot keep {wanted}")
            if wanted < heads:
                _remove_heads(layer, torch.arange(wanted))
        if "intermediate_size_after" in shapes:
            units, wanted = layer.intermediate.dense.out_features, int(shapes["intermediate_size_after"][i])
            if not 1 <= wanted <= units:
                raise ValueError(f"pruning: layer {i} has {units} feed-forward units, cannot keep {wanted}")
            if wanted < units:
                _remove_ffn_units(layer, torch.arange(wanted))


class L1UnstructuredPruning(ModelPruning):
    """Lightning's ModelPruning, applied once when training starts, to every ``nn.Linear`` weight.

    Global L1 unstructured masks of ``amount``; no lottery-ticket reset; the masks are made
    permanent at the end of training (so the saved weights hold real zeros).
    """

    def __init__(self, amount: float) -> None:
        super().__init__(
            "l1_unstructured", parameter_names=["weight"], amount=amount, apply_pruning=False,
            use_lottery_ticket_hypothesis=False, make_pruning_permanent=True, verbose=0,
        )
        self.start_amount = float(amount)
        self._pruned = False

    def filter_parameters_to_prune(self, parameters_to_prune: Any = ()) -> Any:
        return [(module, name) for module, name in parameters_to_prune if isinstance(module, nn.Linear)]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._pruned:
            self.apply_pruning(self.start_amount)
            self._pruned = True


class PruningReport(pl.Callback):
    """Fills ``info`` (shared with the footprint's ``extra.pruning``) when training ends.

    Place it after the pruning callback: it runs after the masks were made permanent and
    before the energy callback writes the footprint.
    """

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        update_after(self.info, pl_module)


def update_after(info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
    """Record parameter count and sparsity after pruning in ``info`` (in place)."""
    after = count_parameters(module)
    info["parameters_after"] = after
    info["parameters_removed_fraction"] = round(1.0 - after / info["parameters_before"], 6) if info.get("parameters_before") else 0.0
    info["sparsity"] = round(linear_weight_sparsity(module), 6)
    return info


def apply_pruning(model: nn.Module, method: str, amount: float | None) -> tuple[list[pl.Callback], dict[str, Any]]:
    """Prune ``model`` as configured.

    Structured methods change the model now; ``l1_unstructured`` returns the callback that masks
    the weights when training starts. Always returns a :class:`PruningReport` callback.

    Returns:
        ``(callbacks, info)``; ``info`` holds ``method``, ``amount``, ``parameters_before``,
        ``parameters_after``, ``parameters_removed_fraction``, ``sparsity`` (zero fraction of the
        Linear weights) and per-layer shapes for structured methods.
    """
    method, amount = validate_pruning(method, amount)
    info: dict[str, Any] = {"method": method, "amount": amount, "parameters_before": count_parameters(model)}
    callbacks: list[pl.Callback] = []
    if method == "heads":
        info.update(prune_heads(model, amount))
    elif method == "ffn":
        info.update(prune_ffn(model, amount))
    elif method == "l1_unstructured":
        callbacks.append(L1UnstructuredPruning(amount))
    hparams = getattr(model, "hparams", None)
    if method != "none" and hparams is not None:  # a LightningModule: its checkpoints rebuild the pruned shapes
        hparams["pruning"] = {"method": method, "amount": amount, **pruned_shapes(info)}
    update_after(info, model)
    callbacks.append(PruningReport(info))
    return callbacks, info
