"""Tiny Lightning modules for callback tests (importable, so ddp_spawn can pickle them)."""

from __future__ import annotations

import time

import torch
from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
from torch.utils.data import DataLoader


class SlowBoringModel(BoringModel):
    """BoringModel whose training step also sleeps, so steps have a known minimum length."""

    def __init__(self, step_sleep_s: float = 0.0, fail_at_step: int | None = None, batch_size: int = 4):
        super().__init__()
        self.step_sleep_s = step_sleep_s
        self.fail_at_step = fail_at_step
        self.batch_size = batch_size

    def training_step(self, batch, batch_idx):
        if self.fail_at_step is not None and self.global_step >= self.fail_at_step:
            raise RuntimeError(f"boom at step {self.global_step}")
        if self.step_sleep_s:
            time.sleep(self.step_sleep_s)
        return super().training_step(batch, batch_idx)

    def train_dataloader(self):
        return DataLoader(RandomDataset(32, 64), batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(RandomDataset(32, 16), batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(RandomDataset(32, 16), batch_size=self.batch_size)


class TextBatchModel(BoringModel):
    """Batches shaped like a tokenizer's output: input_ids + attention_mask with padding."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(100, 32)

    def train_dataloader(self):
        ids = torch.randint(1, 100, (24, 10))
        mask = torch.ones(24, 10, dtype=torch.long)
        mask[:, 7:] = 0  # 7 real tokens per row
        rows = [{"input_ids": ids[i], "attention_mask": mask[i]} for i in range(24)]
        return DataLoader(rows, batch_size=8)

    def training_step(self, batch, batch_idx):
        out = self.layer(self.embed(batch["input_ids"]).mean(dim=1))
        return out.sum()
