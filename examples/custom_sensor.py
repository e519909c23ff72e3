"""Plug in your own power meter: subclass PowerSensor (watts now) or EnergySensor (a counter).

An external meter, such as a smart plug or a PDU outlet between the wall and the machine,
measures the whole node: GPU, CPU, RAM, fans, disks and power-supply losses together. Use it
*instead of* the built-in component sensors (``sensors=[meter]``), not next to them, or the
components would be counted twice.

This example reads the meter through a file that a meter daemon keeps updated (many
smart-plug exporters can write one). To stay runnable offline it fakes that daemon with a
thread that writes a varying wattage. Run::

    python examples/custom_sensor.py
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from pathlib import Path

from lightning.pytorch import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_green import EnergyCallback
from lightning_green.sensors import EnergySensor, PowerSensor, SensorUnavailable


class WallMeterSensor(PowerSensor):
    """Watts read from a text file holding one number, rewritten by the meter's daemon.

    The daemon must replace the file atomically (write a temporary file, then rename it),
    or a read may see it empty; a read that raises is skipped, counted and warned about once.

    ``power_w`` is called by lightning-green's sampling thread every ``sampling_interval_s``;
    it never runs on the training thread, so a slow meter cannot slow training down.
    """

    name, component, measured, method = "wall-meter", "node", True, "measured: smart plug (file)"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def open(self) -> None:
        if not self.path.exists():  # recorded in the report's "unavailable" list with this reason
            raise SensorUnavailable(f"no meter reading at {self.path}; is the meter daemon running?")

    def power_w(self) -> float:
        return float(self.path.read_text())


class PlugCounterSensor(EnergySensor):
    """The same meter's cumulative counter (kWh since it was plugged in), if it has one.

    Counters are preferred when available: the difference of two readings is exact, while
    sampled watts miss what happens between samples.
    """

    name, component, measured, method = "plug-counter", "node", True, "measured: smart plug counter"

    def __init__(self, read_total_kwh) -> None:
        super().__init__()
        self.read_total_kwh = read_total_kwh

    def energy_j(self) -> float:
        return self.read_total_kwh() * 3.6e6


def fake_meter_daemon(path: Path, stop: threading.Event) -> None:
    """Stand-in for a real meter: ~120 W with a slow wobble, updated every 50 ms."""
    start, tmp = time.monotonic(), path.with_suffix(".tmp")
    while not stop.is_set():
        tmp.write_text(f"{120 + 15 * math.sin(time.monotonic() - start):.1f}")
        os.replace(tmp, path)  # atomic: the sensor never reads a half-written file
        time.sleep(0.05)


def main() -> None:
    reading = Path(tempfile.mkdtemp()) / "watts"
    reading.write_text("120.0")
    stop = threading.Event()
    daemon = threading.Thread(target=fake_meter_daemon, args=(reading, stop), daemon=True)
    daemon.start()
    try:
        energy = EnergyCallback(sensors=[WallMeterSensor(reading)], sampling_interval_s=0.05,
                                carbon_intensity_g_per_kwh=300.0, output_dir="outputs/custom_sensor")
        trainer = Trainer(max_epochs=10, accelerator="cpu",
                          callbacks=[energy], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
        trainer.fit(BoringModel())
    finally:
        stop.set()
        daemon.join()
    report = energy.report
    print(report.summary())
    print(f"node energy {report.energy_kwh_by_component['node'] * 3.6e6:.0f} J over {report.duration_s:.1f} s "
          f"= {report.energy_kwh * 3.6e6 / report.duration_s:.0f} W on average (the meter read 105-135 W)")


if __name__ == "__main__":
    main()
