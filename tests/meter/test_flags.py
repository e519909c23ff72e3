"""What the report says about figures a reader should not over-trust."""

from __future__ import annotations

import time

import pytest

from lightning_green import EnergyMeter
from lightning_green.sensors import ConstantPowerSensor, EnergySensor


class SlowCounter(EnergySensor):
    """A measured counter that updates every 50 ms (like NVML's energy counter)."""

    name, component, measured, update_period_s = "slow-counter", "gpu", True, 0.05

    def __init__(self) -> None:
        super().__init__(scope="device")
        self._t0 = time.monotonic()

    def energy_j(self) -> float:
        elapsed = time.monotonic() - self._t0
        return 100.0 * (elapsed // self.update_period_s) * self.update_period_s


def run(tmp_path, sensors, step_s: float, steps: int = 12):
    meter = EnergyMeter(sensors=sensors, output_dir=tmp_path, sampling_interval_s=0.01,
                        carbon_intensity_g_per_kwh=100.0, snapshot_every_s=0)
    with meter, meter.phase("train"):
        for _ in range(steps):
            with meter.step(samples=1):
                time.sleep(step_s)
    return meter.report


def test_steps_shorter_than_a_counters_update_period_are_flagged(tmp_path):
    report = run(tmp_path / "short", [SlowCounter()], step_s=0.005)
    flags = [w for w in report.warnings if "shorter than slow-counter's update period (50 ms)" in w]
    assert len(flags) == 1 and flags[0].startswith("12 of 12 steps (100 %)")
    long = run(tmp_path / "long", [SlowCounter()], step_s=0.08, steps=3)
    assert not any("update period" in w for w in long.warnings)


def test_estimates_are_not_flagged_per_step(tmp_path):
    report = run(tmp_path, [ConstantPowerSensor(10.0, name="est", component="cpu")], step_s=0.002)
    assert not any("update period" in w for w in report.warnings)
    assert report.energy_kwh * 3.6e6 == pytest.approx(10.0 * report.duration_s, rel=0.05)
