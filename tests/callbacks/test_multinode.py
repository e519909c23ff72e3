"""Two "nodes" on one machine: 2 x 2 CPU DDP ranks (gloo over 127.0.0.1), each node in its own
UTS namespace with its own hostname, launched by torchrun (``--nnodes 2``) or as SLURM tasks.

Sensors of known power (tests/scripts/multinode_fit.py): 100 W per rank (scope "device") and
20 W per host (scope "host"), so the footprint must hold exactly 2 hosts x 20 W + 4 ranks x
100 W over the run, split over two hosts and four ranks. Needs root (or user namespaces) for
``unshare --uts``; where namespaces are refused the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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

_LAUNCH_VARS = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "MASTER_ADDR",
                "MASTER_PORT", "CUDA_VISIBLE_DEVICES")


@pytest.fixture(scope="module")
def uts_namespaces() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no per-node hostnames")
    proc = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname lg-probe && hostname"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or proc.stdout.strip() != "lg-probe":
        pytest.skip(f"UTS namespaces refused here (unshare --uts needs root or user namespaces): "
                    f"{proc.stderr.strip() or proc.stdout.strip()}")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "TORCHELASTIC_", "PET_")) and k not in _LAUNCH_VARS}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", **extra)
    return env


def _free_port(low: int = 20000, high: int = 30000) -> int:
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _on_node(hostname: str, argv: list[str]) -> list[str]:
    """argv run inside a new UTS namespace whose hostname is ``hostname``."""
    return ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *argv]


def _run_all(commands: list[tuple[list[str], dict[str, str]]], cwd: Path, timeout_s: float = 200) -> list[str]:
    """Start every command (each in its own session), wait for all; the combined output of failures."""
    procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for argv, env in commands]
    outputs, failed = [], []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout_s)
            outputs.append(out)
            if proc.returncode != 0:
                failed.append(f"exit {proc.returncode}:\n{out[-4000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this test started for it
                proc.wait()
    return failed


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
    port = _free_port()
    commands = []
    for node_rank, host in enumerate(HOSTS):
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node_rank),
                    "--nproc-per-node", str(NPROC), "--master-addr", "127.0.0.1", "--master-port", str(port),
                    str(SCRIPT), str(out)]
        commands.append((_on_node(host, torchrun), _env()))
    failed = _run_all(commands, tmp_path)
    assert not failed, "\n\n".join(failed)
    _check_footprint(out, "TorchElasticEnvironment")


def test_slurm_tasks_two_nodes_two_hostnames(tmp_path, uts_namespaces):
    """One process per task with the variables srun sets (``srun --nodes 2 --ntasks-per-node 2``).

    MASTER_ADDR is set because the namespaces' hostnames resolve nowhere (on a cluster Lightning
    takes the first host of SLURM_NODELIST); the port comes from SLURM_JOB_ID as on a cluster.
    """
    out = tmp_path / "out"
    out.mkdir()
    port = _free_port(15000, 24999)
    job_id = f"7{port - 15000:04d}"  # Lightning's SLURMEnvironment: port = last 4 digits + 15000
    commands = []
    for node_id, host in enumerate(HOSTS):
        for local_id in range(NPROC):
            env = _env(
                SLURM_JOB_ID=job_id, SLURM_JOB_NAME="multinode_fit", SLURM_NNODES="2", SLURM_JOB_NUM_NODES="2",
                SLURM_NODELIST="node-[a-b]", SLURM_JOB_NODELIST="node-[a-b]", SLURM_NTASKS="4",
                SLURM_NTASKS_PER_NODE=str(NPROC), SLURM_TASKS_PER_NODE=f"{NPROC}(x2)",
                SLURM_PROCID=str(node_id * NPROC + local_id), SLURM_LOCALID=str(local_id), SLURM_NODEID=str(node_id),
                SLURMD_NODENAME=host, SLURM_CPUS_PER_TASK="1", MASTER_ADDR="127.0.0.1",
            )
            commands.append((_on_node(host, [sys.executable, str(SCRIPT), str(out)]), env))
    failed = _run_all(commands, tmp_path)
    assert not failed, "\n\n".join(failed)
    _check_footprint(out, "SLURMEnvironment")
