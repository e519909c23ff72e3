"""The callback built from configuration files, as users of LightningCLI and of
lightning-hydra-template build it: the shipped example and the README's snippet, run for real."""

from __future__ import annotations

import json
import re
import runpy
import sys
from pathlib import Path

import pytest

from lightning_green import EnergyCallback
from tests.helpers.ecosystem_kit import LoggingModel, trainer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_the_lightning_cli_example_measures_the_run_configured_in_its_yaml(tmp_path, monkeypatch):
    pytest.importorskip("jsonargparse", reason="LightningCLI needs jsonargparse[signatures] (in the test extra)")
    monkeypatch.chdir(tmp_path)
    # Exactly the documented command: python examples/lightning_cli.py fit --config examples/lightning_cli.yaml
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "lightning_cli.py"), "fit",
                                      "--config", str(EXAMPLES / "lightning_cli.yaml")])
    runpy.run_path(str(EXAMPLES / "lightning_cli.py"), run_name="__main__")
    folder = tmp_path / "lightning_logs" / "version_0"
    footprint = json.loads((folder / "footprint.json").read_text())
    assert footprint["status"] == "completed" and footprint["energy_kwh"] > 0
    # The YAML's init_args reached the callback ...
    assert footprint["pue"] == 1.2 and footprint["country_iso_code"] == "FRA"
    assert footprint["predicted_energy_kwh"] is not None  # project_after_epochs: 1
    # ... and the Trainer's: 2 epochs of 16 batches.
    assert footprint["steps"] == 32 and footprint["epochs"] == 2
    # The footprint sits beside the config LightningCLI saved for this run.
    assert "class_path: lightning_green.EnergyCallback" in (folder / "config.yaml").read_text()
    assert {"emissions.csv", "steps.csv"} <= {p.name for p in folder.iterdir()}


def _readme_snippet(first_line: str) -> str:
    """The README's ```yaml block that starts with ``first_line``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```yaml\n(" + re.escape(first_line) + r"\n.*?)```", readme, re.S)
    assert match, f"README has no yaml block starting with {first_line!r}"
    return match.group(1)


def test_the_readmes_hydra_template_snippet_composes_instantiates_and_measures(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import DictConfig

    configs = tmp_path / "configs"
    (configs / "callbacks").mkdir(parents=True)
    (configs / "callbacks" / "energy.yaml").write_text(_readme_snippet("# configs/callbacks/energy.yaml"))
    # lightning-hydra-template's layout: train.yaml lists callbacks: default; default.yaml lists
    # the callback configs (the README says to add `- energy` there).
    (configs / "callbacks" / "default.yaml").write_text("defaults:\n  - energy\n  - _self_\n")
    (configs / "train.yaml").write_text("defaults:\n  - callbacks: default\n  - _self_\n")
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose(config_name="train")
    # The template's instantiate_callbacks: every entry of cfg.callbacks with a _target_.
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if isinstance(c, DictConfig) and "_target_" in c]
    assert len(callbacks) == 1 and isinstance(callbacks[0], EnergyCallback)
    cb = callbacks[0]
    assert cb.pue == 1.2 and cb.country_iso_code == "FRA"
    trainer(tmp_path, callbacks).fit(LoggingModel())
    assert cb.report.status == "completed" and cb.report.pue == 1.2
    assert (tmp_path / "lightning_green" / cb.report.run_id / "footprint.json").is_file()
