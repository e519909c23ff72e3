"""BertClassifier (LightningModule) and its tokenizer: a hub checkpoint or a small BERT built offline."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torchmetrics import MeanMetric
from torchmetrics.classification import Accuracy, F1Score

from lightning_green.recipe._cache import publish_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int = 8000) -> Any:
    """Train a lower-casing BERT WordPiece tokenizer on ``texts`` (offline, about a second).

    Returns:
        A ``transformers`` BERT fast tokenizer with the usual special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    if int(vocab_size) < len(SPECIAL_TOKENS) + 1:
        raise ValueError(f"`model.vocab_size` must be > {len(SPECIAL_TOKENS)}, got {vocab_size!r}")
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=int(vocab_size), special_tokens=list(SPECIAL_TOKENS)))
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    backend.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def load_tokenizer(pretrained: str | None, texts: Any = None, vocab_size: int = 8000, cache_dir: str | None = None) -> Any:
    """The model's tokenizer: ``AutoTokenizer`` for a checkpoint, else WordPiece trained on ``texts``.

    Args:
        pretrained: Hub name or local path; ``None`` trains a tokenizer offline.
        texts: Training texts, or a zero-argument callable returning them (only called when needed).
        vocab_size: Largest vocabulary of a trained tokenizer.
        cache_dir: When set, a trained tokenizer is stored there (keyed by texts and vocab size) so
            that every DDP rank and later runs use the very same vocabulary.
    """
    if pretrained:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(pretrained))
    from transformers import BertTokenizerFast

    corpus = list(texts() if callable(texts) else texts or [])
    if not corpus:
        raise ValueError("training a tokenizer needs texts: `model.pretrained` is null and no training texts were given")
    if cache_dir is None:
        return train_wordpiece_tokenizer(corpus, vocab_size)
    digest = hashlib.sha256("\n".join(corpus).encode() + f"|{vocab_size}|v1".encode()).hexdigest()[:16]
    path = Path(os.path.expanduser(str(cache_dir))) / "tokenizers" / digest
    if not path.exists():
        publish_dir(path, lambda tmp: train_wordpiece_tokenizer(corpus, vocab_size).save_pretrained(tmp))
    return BertTokenizerFast.from_pretrained(str(path))


def tokenizer_from_checkpoint(checkpoint: Mapping[str, Any]) -> Any:
    """The tokenizer a :class:`BertClassifier` checkpoint carries, or ``None`` when it has none."""
    stored = checkpoint.get("tokenizer")
    if not stored:
        return None
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(stored["json"]),
                                   model_max_length=stored.get("model_max_length", 512), **stored["special_tokens"])


class BertClassifier(pl.LightningModule):
    """Sequence classification with a BERT-family encoder (``AutoModelForSequenceClassification``).

    ``pretrained`` loads a hub or local checkpoint; without it a BERT with random weights is built
    from ``config`` (``BertConfig`` keyword arguments). AdamW (no weight decay on biases and
    LayerNorm) with linear warm-up over ``warmup_ratio`` of the run and linear decay to 0; the
    total is ``trainer.estimated_stepping_batches``.

    Logged keys: ``train/loss_step`` (each step), ``train/loss`` (epoch mean), ``val/loss``, ``val/acc``, ``val/f1``,
    ``test/loss``, ``test/acc``, ``test/f1`` (epoch level; accuracy and F1 as fractions 0-1;
    F1 is binary for two labels, macro otherwise). Predict returns the predicted labels.

    Args:
        pretrained: Checkpoint name or path, or ``None`` for a random-weight BERT.
        config: ``BertConfig`` arguments used when ``pretrained`` is ``None``.
        num_labels: Number of classes.
        vocab_size: Vocabulary of a randomly initialised model (the tokenizer's length).
        pad_token_id: The tokenizer's padding id.
        learning_rate: Peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_ratio: Share of optimizer steps spent warming up, in [0, 1).
        pruning: What pruning did (``method``, ``amount``, and for ``heads`` / ``ffn`` the per-layer
            shapes left), set by :func:`~lightning_green.recipe.pruning.apply_pruning` and stored
            in checkpoints: the model is built with those shapes, so a pruned checkpoint loads
            into a pruned model.

    Checkpoints also hold the tokenizer (``checkpoint["tokenizer"]``, when one was attached with
    :meth:`attach_tokenizer`), so that a checkpoint alone is enough to serve the model
    (:func:`tokenizer_from_checkpoint`).

    Example::

        model = BertClassifier(config={"hidden_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "intermediate_size": 128},
                               vocab_size=500)
    """

    def __init__(
        self,
        pretrained: str | None = None,
        config: Mapping[str, Any] | None = None,
        num_labels: int = 2,
        vocab_size: int = 8000,
        pad_token_id: int = 0,
        learning_rate: float = 5e-4,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        pruning: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if int(num_labels) < 2:
            raise ValueError(f"`model.num_labels` must be >= 2, got {num_labels!r}")
        if not float(learning_rate) > 0:
            raise ValueError(f"`model.learning_rate` must be > 0, got {learning_rate!r}")
        if not 0.0 <= float(warmup_ratio) < 1.0:
            raise ValueError(f"`model.warmup_ratio` must be in [0, 1), got {warmup_ratio!r}")
        self.save_hyperparameters()
        from transformers import AutoModelForSequenceClassification, BertConfig

        if pretrained:
            self.model = AutoModelForSequenceClassification.from_pretrained(str(pretrained), num_labels=int(num_labels))
            self.model.train()  # from_pretrained returns eval mode; Lightning switches modes per phase
        else:
            bert_config = BertConfig(**dict(config or {}), vocab_size=int(vocab_size), pad_token_id=int(pad_token_id),
                                     num_labels=int(num_labels))
            self.model = AutoModelForSequenceClassification.from_config(bert_config)
        if pruning:
            from lightning_green.recipe.pruning import shrink_to

            shrink_to(self.model, dict(pruning))
        self.tokenizer: Any = None
        task = "binary" if int(num_labels) == 2 else "multiclass"
        kwargs: dict[str, Any] = {"task": task} if task == "binary" else {"task": task, "num_classes": int(num_labels), "average": "macro"}
        self.val_acc, self.val_f1 = Accuracy(**kwargs), F1Score(**kwargs)
        self.test_acc, self.test_f1 = Accuracy(**kwargs), F1Score(**kwargs)
        self.train_loss = MeanMetric()

    def attach_tokenizer(self, tokenizer: Any) -> None:
        """Keep ``tokenizer`` with the model: checkpoints then carry it (fast tokenizers only)."""
        self.tokenizer = tokenizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            checkpoint["tokenizer"] = {"json": backend.to_str(), "special_tokens": dict(self.tokenizer.special_tokens_map),
                                       "model_max_length": int(min(self.tokenizer.model_max_length, 2**31 - 1))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("tokenizer"):
            self.tokenizer = tokenizer_from_checkpoint(checkpoint)

    def forward(self, **batch: torch.Tensor) -> Any:
        return self.model(**batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.train_loss(loss.detach(), weight=len(batch["labels"]))  # synced across ranks at epoch end only
        self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        out = self.model(**batch)
        preds = out.logits.argmax(dim=-1)
        acc, f1 = (self.val_acc, self.val_f1) if stage == "val" else (self.test_acc, self.test_f1)
        acc(preds, batch["labels"])
        f1(preds, batch["labels"])
        n = len(batch["labels"])
        self.log(f"{stage}/loss", out.loss, prog_bar=stage == "val", sync_dist=True, batch_size=n)
        self.log(f"{stage}/acc", acc, prog_bar=stage == "val", batch_size=n)
        self.log(f"{stage}/f1", f1, batch_size=n)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        batch = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**batch).logits.argmax(dim=-1)

    def configure_optimizers(self) -> Any:
        from transformers import get_linear_schedule_with_warmup

        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.learning_rate,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
