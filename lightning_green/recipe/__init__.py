"""The BERT sentiment recipe: model, data and pruning. Imports nothing from the energy code.

- :class:`~lightning_green.recipe.bert.BertClassifier` (LightningModule) and
  :func:`~lightning_green.recipe.bert.load_tokenizer`
- :class:`~lightning_green.recipe.data.SentimentDataModule`: demo (synthetic, offline), imdb, files
- :func:`~lightning_green.recipe.pruning.apply_pruning`: l1_unstructured, heads, ffn
- :func:`~lightning_green.recipe.predict.predict`: serving a checkpoint (``mode=predict``) with
  the levers of :mod:`~lightning_green.recipe.inference`; checkpoints in
  :mod:`~lightning_green.recipe.checkpoints`

Submodules import transformers / datasets lazily; importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BertClassifier", "SentimentDataModule", "apply_pruning", "load_tokenizer"]

_HOMES = {
    "BertClassifier": "lightning_green.recipe.bert",
    "load_tokenizer": "lightning_green.recipe.bert",
    "SentimentDataModule": "lightning_green.recipe.data",
    "apply_pruning": "lightning_green.recipe.pruning",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'lightning_green.recipe' has no attribute {name!r}")
