"""End to end: a real Lightning fit measured by EnergyCallback(exporters=[PrometheusExporter]),
scraped by a real Prometheus; one process, then a 2-process DDP fit (port + local_rank).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers.models import SlowBoringModel
from tests.helpers.prometheus_servers import PrometheusServer, free_port, free_port_pair, wait_until

ROOT = Path(__file__).resolve().parents[2]
GPU_W, HOST_W = 100.0, 20.0
REL = 0.05

pytestmark = [pytest.mark.timeout(300)]


def totals_by_scrape(prom: PrometheusServer, selector: str, key: str) -> dict[str, list[tuple[float, float]]]:
    """``label value of key -> [(t_scrape, energy summed over the other labels)]`` from raw samples."""
    summed: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for labels, points in prom.samples(selector):
        for t, joules in points:
            summed[labels[key]][t] += joules
    return {k: sorted(v.items()) for k, v in summed.items()}


def slope_w(points: list[tuple[float, float]]) -> float:
    """Watts between the first and the last scrape: energy gained / time between them."""
    (t_first, e_first), (t_last, e_last) = points[0], points[-1]
    assert t_last - t_first >= 2.0, f"only {t_last - t_first:.2f} s of scrapes"
    return (e_last - e_first) / (t_last - t_first)


def test_fit_is_scraped_live_by_a_real_prometheus(tmp_path, no_thread_leak):
    from lightning.pytorch import Trainer

    from lightning_green import EnergyCallback
    from lightning_green.exporters import PrometheusExporter
    from lightning_green.sensors import ConstantPowerSensor

    port = free_port()
    prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{port}"])  # up before the fit
    try:
        cb = EnergyCallback(
            exporters=[PrometheusExporter(port=port)],
            sensors=[ConstantPowerSensor(GPU_W, name="gpu-const", component="gpu", scope="device", measured=True)],
            sampling_interval_s=0.02, output_dir=tmp_path / "out", carbon_intensity_g_per_kwh=400.0)
        trainer = Trainer(accelerator="cpu", max_epochs=8, limit_train_batches=16, limit_val_batches=0,
                          num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
        trainer.fit(SlowBoringModel(step_sleep_s=0.05))  # >= 128 x 0.05 s = 6.4 s of training
        report = json.loads((tmp_path / "out" / "footprint.json").read_text())
        selector = 'lightning_green_energy_joules_total{component="gpu"}'
        scraped = prom.samples(selector)
        assert scraped, "Prometheus scraped nothing during the fit"
        labels = scraped[0][0]
        assert labels["run_id"] == report["run_id"] and labels["rank"] == "0" and labels["host"]
        assert {m["phase"] for m, _ in scraped} >= {"train"}
        points = totals_by_scrape(prom, selector, "rank")["0"]
        watts = slope_w(points)
        print(f"\nscraped during the fit: {watts:.2f} W over {points[-1][0] - points[0][0]:.2f} s (sensor {GPU_W:g} W)")
        assert watts == pytest.approx(GPU_W, rel=REL)
        assert points[-1][1] <= report["energy_kwh"] * 3.6e6 * (1 + 1e-9)  # never ahead of the final figure
        steps = prom.samples("lightning_green_steps_total")[0][1]
        assert 0 < steps[-1][1] <= report["steps"]
    finally:
        prom.stop()


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_fit_two_endpoints_and_host_energy_once(tmp_path):
    base = free_port_pair()
    prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}"])
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        env.pop("LOCAL_RANK", None)
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "prometheus_ddp_fit.py"),
                               str(tmp_path / "out"), str(base)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads((tmp_path / "out" / "footprint.json").read_text())
        wait_until(lambda: prom.samples("lightning_green_steps_total"), "scraped samples")
        by_rank = {m["rank"]: m["instance"] for m, _ in prom.samples("lightning_green_steps_total")}
        assert by_rank == {"0": f"127.0.0.1:{base}", "1": f"127.0.0.1:{base + 1}"}  # two endpoints
        cpu = totals_by_scrape(prom, 'lightning_green_energy_joules_total{component="cpu"}', "rank")
        assert set(cpu) == {"0"}  # the host-scoped sensor is exported by local rank 0 only
        assert slope_w(cpu["0"]) == pytest.approx(HOST_W, rel=REL)
        gpu = totals_by_scrape(prom, 'lightning_green_energy_joules_total{component="gpu"}', "rank")
        assert set(gpu) == {"0", "1"}
        assert slope_w(gpu["0"]) + slope_w(gpu["1"]) == pytest.approx(2 * GPU_W, rel=REL)
        assert {m["run_id"] for m, _ in prom.samples("lightning_green_steps_total")} == {report["run_id"]}
    finally:
        prom.stop()
