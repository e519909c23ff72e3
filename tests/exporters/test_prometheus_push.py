"""PrometheusPushExporter against a real pushgateway (Debian's ``prometheus-pushgateway``), and a
real Prometheus scraping that gateway; skipped, with the reason, only where they are not installed."""

from __future__ import annotations

import time

import pytest

from lightning_green.engine.live import RunLabels
from lightning_green.exporters import PrometheusPushExporter
from tests.helpers.live_feeder import ConstantPowerFeeder
from tests.helpers.prometheus_servers import PrometheusServer, Pushgateway, wait_until

pytestmark = [pytest.mark.timeout(240)]

RUN = "team/run-7"  # a slash: the grouping key must still keep it whole
GPU_W, CPU_W = 100.0, 20.0


def run_groups(gateway: Pushgateway) -> dict[str, dict]:
    """rank -> pushed group of RUN."""
    return {g["labels"]["rank"]: g for g in gateway.groups() if g["labels"].get("run_id") == RUN}


def energy_of(group: dict) -> dict[tuple[str, str], float]:
    family = group.get("lightning_green_energy_joules_total", {"metrics": []})
    return {(m["labels"]["component"], m["labels"]["phase"]): float(m["value"]) for m in family["metrics"]}


def test_each_rank_pushes_snapshots_and_final_figures_to_its_own_group(tmp_path, no_thread_leak):
    gateway = Pushgateway(tmp_path / "pushgateway")
    prom = None
    rank0, rank1 = PrometheusPushExporter(gateway.url), PrometheusPushExporter(gateway.url, timeout_s=10)
    rank0.start(RunLabels(RUN, "node-a", rank=0, local_rank=0))
    rank1.start(RunLabels(RUN, "node-a", rank=1, local_rank=1))
    assert run_groups(gateway) == {}  # a fresh gateway: nothing pushed before the first snapshot
    t0 = time.time()
    feeders = [
        ConstantPowerFeeder(rank0, {"gpu": GPU_W, "cpu": CPU_W}, scope={"gpu": "device", "cpu": "host"},
                            t0=t0, snapshot_every=10).start(),
        ConstantPowerFeeder(rank1, {"gpu": GPU_W}, scope={"gpu": "device"}, t0=t0, snapshot_every=10).start(),
    ]
    try:
        # Snapshots reach the gateway while the run goes on, one group per rank.
        mid = wait_until(lambda: (g := run_groups(gateway)) and len(g) == 2 and all(
            energy_of(x).get(("gpu", "train"), 0) > 0 for x in g.values()) and g, "both ranks' snapshot pushes")
        assert set(mid) == {"0", "1"}
        assert mid["0"]["labels"] == {"job": "lightning_green", "run_id": RUN, "host": "node-a", "rank": "0"}
        final0, final1 = feeders[0].stop(), feeders[1].stop()
        rank0.stop(final0)
        rank1.stop(final1)
        rank0.stop(final0)  # idempotent: nothing more is pushed
        assert rank0.failures == rank1.failures == 0
        assert rank0.pushes >= 2 and rank1.pushes >= 2  # at least one snapshot and the final push
        # The gateway keeps exactly the final figures of each rank.
        groups = run_groups(gateway)
        assert energy_of(groups["0"]) == {("gpu", "train"): final0.energy_j[("gpu", "train")],
                                          ("cpu", "train"): final0.energy_j[("cpu", "train")]}
        assert energy_of(groups["1"]) == {("gpu", "train"): final1.energy_j[("gpu", "train")]}
        for rank, final in (("0", final0), ("1", final1)):
            assert float(groups[rank]["lightning_green_steps_total"]["metrics"][0]["value"]) == final.steps
            assert float(groups[rank]["lightning_green_emissions_grams_total"]["metrics"][0]["value"]) == \
                pytest.approx(final.emissions_g, rel=1e-12)
        # Prometheus scraping the gateway (honor_labels, as pushgateway setups do) sums ranks right.
        prom = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{gateway.port}"], honor_labels=True)
        selector = f'lightning_green_energy_joules_total{{run_id="{RUN}"}}'
        wait_until(lambda: len(prom.query(selector)) == 3, "Prometheus to scrape the pushed groups")
        by_component = {r["metric"]["component"]: float(r["value"][1])
                        for r in prom.query(f"sum by (component) ({selector})")}
        assert by_component == pytest.approx({
            "gpu": final0.energy_j[("gpu", "train")] + final1.energy_j[("gpu", "train")],
            "cpu": final0.energy_j[("cpu", "train")]}, rel=1e-12)  # the host's cpu once
        print(f"\npushed final energy: gpu {by_component['gpu']:.1f} J over 2 ranks, cpu {by_component['cpu']:.1f} J;"
              f" expected about {2 * GPU_W * (final0.t_unix - t0):.1f} J and {CPU_W * (final0.t_unix - t0):.1f} J")
    finally:
        for feeder in feeders:
            feeder.stop()
        rank0.stop()  # no-ops once stopped above
        rank1.stop()
        if prom is not None:
            prom.stop()
        gateway.stop()
