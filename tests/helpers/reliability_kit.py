"""Shared pieces of the fault-injection suite (tests/test_reliability_*.py).

A tiny real Trainer, readers for the three files a user looks at, and sensors whose
misbehaviour the test controls step by step.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

from lightning.pytorch import Callback, Trainer

from lightning_green.sensors import ConstantPowerSensor, PowerSensor

GOOD_W = 20.0


def good_sensor(power_w: float = GOOD_W, name: str = "good-ram", component: str = "ram") -> ConstantPowerSensor:
    """A sensor that always works: its energy must stay exact whatever the others do."""
    return ConstantPowerSensor(power_w, name=name, component=component, measured=True)


def make_trainer(tmp_path: Path, callbacks: list, **kwargs) -> Trainer:
    defaults = dict(
        max_epochs=1,
        limit_train_batches=10,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    return Trainer(callbacks=callbacks, **defaults)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def step_durations_s(out_dir: Path) -> list[float]:
    return [float(r["end_s"]) - float(r["start_s"]) for r in read_rows(Path(out_dir) / "steps.csv")]


def sensor_entry(report, name: str) -> dict:
    """The report's ``sensors`` record of ``name`` (a FootprintReport or its dict)."""
    sensors = report["sensors"] if isinstance(report, dict) else report.sensors
    matches = [s for s in sensors if s["name"] == name]
    assert len(matches) == 1, f"sensor {name!r} not in the report: {sensors}"
    return matches[0]


def component_j(report, component: str) -> float:
    by = report["energy_kwh_by_component"] if isinstance(report, dict) else report.energy_kwh_by_component
    return by.get(component, 0.0) * 3.6e6


def no_temp_files(folder: Path) -> list[str]:
    """Leftover temporary files of an atomic write (``.name.XXXX.tmp``) in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


class GateSensor(PowerSensor):
    """Returns ``power`` W; while ``closed``, a read blocks until :meth:`open_gate`.

    ``entered`` is set once a read is blocked, so a test knows the meter thread is stuck.
    """

    def __init__(self, power_w: float = 5.0, name: str = "gate", component: str = "other") -> None:
        super().__init__(name=name, component=component, measured=True)
        self.power = power_w
        self._gate = threading.Event()
        self._gate.set()
        self.entered = threading.Event()

    def close_gate(self) -> None:
        self.entered.clear()
        self._gate.clear()

    def open_gate(self) -> None:
        self._gate.set()

    def power_w(self) -> float:
        if not self._gate.is_set():
            self.entered.set()
            self._gate.wait(10.0)
        return self.power


class AtStep(Callback):
    """Calls ``action(step)`` at the end of every training batch (global batch index)."""

    def __init__(self, action) -> None:
        self.action = action
        self.step = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.action(self.step)
        self.step += 1
