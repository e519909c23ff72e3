"""Drive an exporter with LiveFigures of known constant power, from a thread like the meter's.

``ConstantPowerFeeder(exporter, {"gpu": 100.0}, scope={"gpu": "device"}, t0=t0)`` calls
``exporter.update`` every ``period_s`` (and ``exporter.snapshot`` every ``snapshot_every``
rounds when asked) with figures whose energy is exactly ``power x (t_unix - t0)`` per
component, in phase ``train``, plus any constant ``extra_energy_j``. :meth:`stop` ends the
thread and returns the final figures, for ``exporter.stop``.
"""

from __future__ import annotations

import threading
import time

from lightning_green.engine.live import LiveFigures
from lightning_green.exporters.base import Exporter

J_PER_KWH = 3.6e6


class ConstantPowerFeeder:
    def __init__(self, exporter: Exporter, power_w: dict[str, float], scope: dict[str, str], *,
                 t0: float, period_s: float = 0.02, intensity_g_per_kwh: float = 400.0,
                 samples_per_s: float = 80.0, steps_per_s: float = 10.0,
                 extra_energy_j: dict[tuple[str, str], float] | None = None,
                 snapshot_every: int | None = None) -> None:
        self.exporter = exporter
        self.power_w = dict(power_w)
        self.scope = dict(scope)
        self.t0 = t0
        self.period_s = period_s
        self.intensity_g_per_kwh = intensity_g_per_kwh
        self.samples_per_s = samples_per_s
        self.steps_per_s = steps_per_s
        self.extra_energy_j = dict(extra_energy_j or {})
        self.snapshot_every = snapshot_every
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-feeder", daemon=True)

    def figures_at(self, t_unix: float) -> LiveFigures:
        elapsed = t_unix - self.t0
        energy = {(c, "train"): w * elapsed for c, w in self.power_w.items()}
        energy.update(self.extra_energy_j)
        return LiveFigures(
            t_unix=t_unix, energy_j=energy, power_w=dict(self.power_w),
            emissions_g=sum(energy.values()) / J_PER_KWH * self.intensity_g_per_kwh,
            samples=int(elapsed * self.samples_per_s), steps=int(elapsed * self.steps_per_s),
            scope=dict(self.scope))

    def start(self) -> ConstantPowerFeeder:
        self.exporter.update(self.figures_at(time.time()))  # figures exist before the first scrape
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            figures = self.figures_at(time.time())
            self.exporter.update(figures)
            self.rounds += 1
            if self.snapshot_every and self.rounds % self.snapshot_every == 0:
                self.exporter.snapshot(figures)

    def stop(self) -> LiveFigures:
        self._stop.set()
        self._thread.join(10)
        return self.figures_at(time.time())
