"""Two "nodes" on one machine: 2 x 2 CPU DDP ranks (gloo over 127.0.0.1), each node in its own
UTS namespace with its own hostname, launched by torchrun (``--nnodes 2``) or as SLURM tasks.

Sensors of known power (tests/scripts/multinode_fit.py): 100 W per rank (scope "device") and
20 W per host (scope "host"), so the footprint must hold exactly 2 hosts x 20 W + 4 ranks x
100 W over the run, split over two hosts and four ranks. Needs root (or user namespaces) for
``unshare --uts``; where namespaces are refused the tests skip and say why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers.nodes import (
    clean_env, free_port, on_node, require_uts_namespaces, run_all, slurm_env, slurm_job_for_port,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "scripts" / "multinode_fit.py"
DEVICE_W, HOST_W = 100.0, 20.0
HOSTS = ("node-a", "node-b")
NPROC = 2
J_PER_KWH = 3.6e6
#: Each rank measures from its own setup to its own teardown, the report's duration is rank 0's:
#: the ranks start and stop within a fraction of a second of each other on a run of several seconds.
REL = 0.03

pytestmark = [pytest.mark.ddp, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def uts_namespaces() -> None:
    require_uts_namespaces()


def _check_footprint(out: Path, environment: str) -> None:
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in range(len(HOSTS) * NPROC)]
    # Lightning chose the launcher's cluster environment, and ranks sit on the hosts expected
    assert {r["cluster_environment"] for r in ranks} == {environment}
    assert [(r["global_rank"], r["node_rank"], r["local_rank"], r["hostname"]) for r in ranks] == [
        (0, 0, 0, "node-a"), (1, 0, 1, "node-a"), (2, 1, 0, "node-b"), (3, 1, 1, "node-b")]
    assert {(r["world_size"], r["num_nodes"]) for r in ranks} == {(4, 2)}
    assert [r["has_report"] for r in ranks] == [True, False, False, False]

    report = json.loads((out / "footprint.json").read_text())
    assert report["status"] == "completed"
    assert report["world_size"] == 4
    duration = report["duration_s"]
    assert duration > 2.0  # 3 epochs x 4 steps x 0.2 s per rank
    by_host = {h: kwh * J_PER_KWH for h, kwh in report["energy_kwh_by_host"].items()}
    by_rank = {r: kwh * J_PER_KWH for r, kwh in report["energy_kwh_by_rank"].items()}
    by_component = {c: kwh * J_PER_KWH for c, kwh in report["energy_kwh_by_component"].items()}
    total_j = report["energy_kwh"] * J_PER_KWH
    observed = (f"duration {duration:.3f} s, total {total_j:.1f} J, by host {by_host}, by rank {by_rank}, "
                f"by component {by_component}, num_hosts {report['num_hosts']}")
    print(f"{environment}: {observed}; expected total {(2 * HOST_W + 4 * DEVICE_W) * duration:.1f} J")
    assert sorted(by_host) == list(HOSTS), observed
    assert sorted(by_rank) == ["0", "1", "2", "3"], observed
    assert report["num_hosts"] == 2, observed
    # 2 hosts x 20 W + 4 ranks x 100 W over the run
    assert total_j == pytest.approx((2 * HOST_W + 4 * DEVICE_W) * duration, rel=REL), observed
    assert by_component["gpu"] == pytest.approx(4 * DEVICE_W * duration, rel=REL), observed
    assert by_component["cpu"] == pytest.approx(2 * HOST_W * duration, rel=REL), observed
    for host in HOSTS:  # each host: its own 20 W once + its two ranks' 100 W
        assert by_host[host] == pytest.approx((HOST_W + 2 * DEVICE_W) * duration, rel=REL), observed
    for rank, watts in (("0", DEVICE_W + HOST_W), ("1", DEVICE_W), ("2", DEVICE_W + HOST_W), ("3", DEVICE_W)):
        assert by_rank[rank] == pytest.approx(watts * duration, rel=REL), observed  # local rank 0 reads the host
    host_sensors = sorted((s["rank"], s["host"]) for s in report["sensors"] if s["name"] == "host-20w")
    assert host_sensors == [(0, "node-a"), (2, "node-b")], report["sensors"]


def test_torchrun_two_nodes_two_hostnames(tmp_path, uts_namespaces):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    commands = []
    for node_rank, host in enumerate(HOSTS):
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node_rank),
                    "--nproc-per-node", str(NPROC), "--master-addr", "127.0.0.1", "--master-port", str(port),
                    str(SCRIPT), str(out)]
        commands.append((on_node(host, torchrun), clean_env(ROOT)))
    failed = run_all(commands, tmp_path)
    assert not failed, "\n\n".join(failed)
    _check_footprint(out, "TorchElasticEnvironment")


def test_slurm_tasks_two_nodes_two_hostnames(tmp_path, uts_namespaces):
    """One process per task with the variables srun sets (``srun --nodes 2 --ntasks-per-node 2``)."""
    out = tmp_path / "out"
    out.mkdir()
    job_id = slurm_job_for_port(free_port(15000, 24999))
    commands = []
    for node_id, host in enumerate(HOSTS):
        for local_id in range(NPROC):
            env = slurm_env(ROOT, job_id=job_id, hosts=HOSTS, tasks_per_node=NPROC, node_id=node_id,
                            local_id=local_id, job_name="multinode_fit")
            commands.append((on_node(host, [sys.executable, str(SCRIPT), str(out)]), env))
    failed = run_all(commands, tmp_path)
    assert not failed, "\n\n".join(failed)
    _check_footprint(out, "SLURMEnvironment")
