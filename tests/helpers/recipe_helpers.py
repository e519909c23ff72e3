"""Shared set-up for the recipe tests: compose the real conf/ with tiny sizes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"

#: A run of a few seconds: 2-layer BERT of width 32, 64 training texts, 4 steps of 16.
TINY = [
    "model.config.hidden_size=32",
    "model.config.num_hidden_layers=2",
    "model.config.num_attention_heads=2",
    "model.config.intermediate_size=64",
    "model.config.max_position_embeddings=128",
    "data.num_train=64",
    "data.num_validation=32",
    "data.num_test=32",
    "data.batch_size=16",
    "data.eval_batch_size=32",
    "data.max_length=48",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "energy.sampling_interval_s=0.05",
]


@contextlib.contextmanager
def composed(overrides: list[str], out_dir: Path, cache_dir: Path) -> Any:
    """The real ``train`` config with ``TINY`` + ``overrides``; HydraConfig set as in a run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*TINY, *overrides, f"paths.output_dir={out_dir}", f"paths.cache_dir={cache_dir}"],
            return_hydra_config=True,
        )
        HydraConfig.instance().set_config(cfg)
        try:
            yield cfg
        finally:
            HydraConfig.instance().cfg = None  # Lightning's DDP launcher checks HydraConfig.initialized()


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


#: A small model that learns the demo task (~0.7 accuracy on 256 test reviews; ~15 s on 2 cores).
LEARNS = [
    "model.config.hidden_size=64",
    "model.config.intermediate_size=128",
    "model.learning_rate=2e-3",
    "data.num_train=512",
    "data.num_validation=64",
    "data.num_test=256",
    "data.max_length=64",
    "trainer.max_epochs=3",
    "logger=null",
]


def constant_sensor(power_w: float, component: str = "cpu") -> str:
    """An ``energy.sensors`` override: one ConstantPowerSensor of known power (labelled measured)."""
    return ("energy.sensors=[{_target_:lightning_green.sensors.ConstantPowerSensor,"
            f"power_w:{float(power_w)},name:fixed-{component},component:{component},measured:true}}]")
