"""A real Prometheus server (Debian's ``prometheus``) scrapes PrometheusExporter while a feeder
thread drives it with figures of known constant power; the checks go through Prometheus' HTTP API.

Skipped, with the reason, only where the ``prometheus`` binary is not installed.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from lightning_green.engine.live import RunLabels
from lightning_green.exporters import PrometheusExporter
from tests.helpers.live_feeder import J_PER_KWH, ConstantPowerFeeder
from tests.helpers.prometheus_servers import PrometheusServer, free_port, free_port_pair, http_get, wait_until

pytestmark = [pytest.mark.timeout(240)]

GPU_W, CPU_W = 100.0, 20.0
INTENSITY = 400.0
FED_S = 4.0  # scraped values are checked against power x time from this many seconds on
SPAN_S = 3.0  # seconds of scrapes Prometheus must hold (rate() needs a span of samples)
REL = 0.05


def raw(prom: PrometheusServer, selector: str) -> dict[tuple, list[tuple[float, float]]]:
    """Raw scraped samples by (rank, component) of ``selector``."""
    return {(m.get("rank"), m.get("component")): pts for m, pts in prom.samples(selector)}


def scraped_for(prom: PrometheusServer, selector: str, t0: float, series: int):
    """Wait until there are ``series`` series of ``selector``, each scraped over >= SPAN_S and
    up to >= FED_S after t0; return their raw samples."""
    def ready():
        found = raw(prom, selector)
        return found if len(found) == series and all(
            pts[-1][0] - pts[0][0] >= SPAN_S and pts[-1][0] - t0 >= FED_S for pts in found.values()) else None
    return wait_until(ready, f"Prometheus to hold {SPAN_S:g} s of {selector}", timeout_s=120)


def readme_queries() -> list[str]:
    """The PromQL queries of the README's ```promql block (comment lines separate them)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```promql\n(.*?)```", readme, re.S)
    assert block, "README has no promql block"
    queries, current = [], []
    for line in block.group(1).splitlines():
        if line.startswith("#"):
            if current:
                queries.append(" ".join(current))
            current = []
        elif line.strip():
            current.append(line.strip())
    return queries + ([" ".join(current)] if current else [])


def value(prom: PrometheusServer, promql: str, at: float) -> float:
    result = prom.query(promql, at=at)
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_scraped_energy_counter_is_power_times_time(tmp_path, no_thread_leak):
    exporter = PrometheusExporter(port=free_port())
    exporter.start(RunLabels(run_id="run-scrape", host="node-a", rank=0, local_rank=0))
    t0 = time.time()
    feeder = ConstantPowerFeeder(exporter, {"gpu": GPU_W, "cpu": CPU_W}, scope={"gpu": "device", "cpu": "host"},
                                 t0=t0, intensity_g_per_kwh=INTENSITY,
                                 extra_energy_j={("gpu", "validate"): 5.0}).start()
    prom = None
    try:
        prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{exporter.bound_port}"])
        run = '{run_id="run-scrape"}'
        energy = scraped_for(prom, 'lightning_green_energy_joules_total{run_id="run-scrape",phase="train"}', t0, 2)
        labels = prom.samples('lightning_green_energy_joules_total{component="gpu",phase="train"}')[0][0]
        assert {k: labels[k] for k in ("run_id", "host", "rank", "component", "phase", "job")} == {
            "run_id": "run-scrape", "host": "node-a", "rank": "0", "component": "gpu", "phase": "train",
            "job": "lightning_green"}
        # 1. Each scraped counter value against power x (Prometheus' scrape time - t0).
        worst = 0.0
        for component, watts in (("gpu", GPU_W), ("cpu", CPU_W)):
            points = [p for p in energy[("0", component)] if p[0] - t0 >= FED_S]
            assert points
            for t_scrape, joules in points:
                error = abs(joules / (watts * (t_scrape - t0)) - 1)
                worst = max(worst, error)
                assert error <= REL, (component, t_scrape - t0, joules)
        print(f"\nscraped energy vs power x time: worst relative error {worst:.4f} over samples >= {FED_S:g} s")
        # 2. The counter is exactly the figures' cumulative energy at the figures' own time.
        stamps = dict(prom.samples(f"lightning_green_figures_timestamp_seconds{run}")[0][1])
        pairs = [(stamps[t], j) for t, j in energy[("0", "gpu")] if t in stamps]
        assert len(pairs) >= 3
        for stamp, joules in pairs:
            assert joules == pytest.approx(GPU_W * (stamp - t0), rel=1e-9)
        # 3. The README's "watts per run" queries.
        at = energy[("0", "gpu")][-1][0]
        window = int(at - energy[("0", "gpu")][0][0])  # within the span of scrapes
        watts = value(prom, f'sum by (run_id) (rate(lightning_green_energy_joules_total{run}[{window}s]))', at)
        print(f"rate over {window} s: {watts:.2f} W (fed {GPU_W + CPU_W:g} W)")
        assert watts == pytest.approx(GPU_W + CPU_W, rel=REL)
        assert value(prom, f"sum by (run_id) (lightning_green_power_watts{run})", at) == GPU_W + CPU_W
        # 4. The other metrics of the same scrape.
        stamp = value(prom, f"lightning_green_figures_timestamp_seconds{run}", at)
        elapsed = stamp - t0
        assert value(prom, 'lightning_green_energy_joules_total{phase="validate"}', at) == 5.0
        expected_g = ((GPU_W + CPU_W) * elapsed + 5.0) / J_PER_KWH * INTENSITY
        assert value(prom, f"lightning_green_emissions_grams_total{run}", at) == pytest.approx(expected_g, rel=1e-9)
        assert value(prom, f"lightning_green_samples_total{run}", at) == int(elapsed * 80.0)
        assert value(prom, f"lightning_green_steps_total{run}", at) == int(elapsed * 10.0)
        assert set(prom.target_health().values()) == {"up"}
        # 5. Every README query runs on these series and gives one figure for the run.
        queries = readme_queries()
        assert len(queries) >= 6
        for query in queries:
            result = prom.query(query, at=at)
            assert [r["metric"].get("run_id") for r in result][:1] == ["run-scrape"], (query, result)
            assert all(float(r["value"][1]) > 0 for r in result), (query, result)
    finally:
        exporter.stop(feeder.stop())
        if prom is not None:
            prom.stop()


def test_two_ranks_two_endpoints_and_host_energy_counted_once(tmp_path, no_thread_leak):
    """Rank 0 and rank 1 of one host: each serves port + local_rank; only rank 0 exports the
    host-scoped cpu sensor, so summing over rank gives one host's cpu energy."""
    base = free_port_pair()
    rank0, rank1 = PrometheusExporter(port=base), PrometheusExporter(port=base)
    rank0.start(RunLabels("run-ddp", "node-a", rank=0, local_rank=0))
    rank1.start(RunLabels("run-ddp", "node-a", rank=1, local_rank=1))
    assert (rank0.bound_port, rank1.bound_port) == (base, base + 1)
    t0 = time.time()
    feeders = [
        ConstantPowerFeeder(rank0, {"gpu": GPU_W, "cpu": CPU_W}, scope={"gpu": "device", "cpu": "host"}, t0=t0),
        ConstantPowerFeeder(rank1, {"gpu": GPU_W}, scope={"gpu": "device"}, t0=t0),
    ]
    for feeder in feeders:
        feeder.start()
    prom = None
    try:
        # Two endpoints, each with its own rank's figures only.
        assert "cpu" in http_get(rank0.url).decode() and 'rank="0"' in http_get(rank0.url).decode()
        assert "cpu" not in http_get(rank1.url).decode() and 'rank="1"' in http_get(rank1.url).decode()
        prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}"])
        energy = scraped_for(prom, 'lightning_green_energy_joules_total{run_id="run-ddp"}', t0, 3)
        assert set(energy) == {("0", "gpu"), ("0", "cpu"), ("1", "gpu")}
        assert prom.target_health() == {f"http://127.0.0.1:{base}/metrics": "up",
                                        f"http://127.0.0.1:{base + 1}/metrics": "up"}
        at = max(pts[-1][0] for pts in energy.values())

        def latest(key):  # the sample an instant query at `at` picks for this series
            return [p for p in energy[key] if p[0] <= at][-1]

        # Sum over rank and host as a dashboard would, against one host's power x time.
        for component, keys, watts in (("cpu", [("0", "cpu")], CPU_W),
                                       ("gpu", [("0", "gpu"), ("1", "gpu")], GPU_W)):
            selector = f'lightning_green_energy_joules_total{{run_id="run-ddp",component="{component}"}}'
            summed = value(prom, f"sum({selector})", at)
            assert summed == pytest.approx(sum(latest(k)[1] for k in keys), rel=1e-9)
            expected = sum(watts * (latest(k)[0] - t0) for k in keys)
            print(f"\n{component}: sum over ranks {summed:.1f} J, expected {expected:.1f} J")
            assert summed == pytest.approx(expected, rel=REL)
        assert value(prom, 'count(lightning_green_energy_joules_total{run_id="run-ddp",component="cpu"})', at) == 1
        assert value(prom, 'sum by (run_id) (lightning_green_power_watts{run_id="run-ddp"})', at) == 2 * GPU_W + CPU_W
    finally:
        rank0.stop(feeders[0].stop())
        rank1.stop(feeders[1].stop())
        if prom is not None:
            prom.stop()
