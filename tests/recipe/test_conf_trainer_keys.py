"""`trainer.*` overrides named in the README work as written (no `++` needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("trainer.limit_train_batches=5", "limit_train_batches", 5),
        ("trainer.limit_val_batches=0.25", "limit_val_batches", 0.25),
        ("trainer.limit_test_batches=3", "limit_test_batches", 3),
        ("trainer.max_steps=100", "max_steps", 100),
        ("trainer.accumulate_grad_batches=4", "accumulate_grad_batches", 4),
        ("trainer.max_epochs=1", "max_epochs", 1),
        ("trainer.devices=2", "devices", 2),
    ],
)
def test_trainer_keys_override_without_plus(override, key, value):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[override])
    assert cfg.trainer[key] == value


def test_trainer_defaults_mean_lightning_defaults():
    from lightning.pytorch import Trainer

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train")
    trainer = Trainer(
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        max_steps=cfg.trainer.max_steps,
        accumulate_grad_batches=cfg.trainer.accumulate_grad_batches,
        logger=False,
        enable_checkpointing=False,
    )
    assert trainer.limit_train_batches == 1.0 and trainer.limit_val_batches == 1.0
    assert trainer.max_steps == -1 and trainer.accumulate_grad_batches == 1
