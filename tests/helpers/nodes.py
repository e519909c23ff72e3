"""Several "nodes" on one machine: processes in their own UTS namespaces (own hostnames),
talking over 127.0.0.1, for multi-node DDP tests under torchrun or SLURM's variables."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

#: Variables of an outer launcher that must not leak into the processes a test starts.
LAUNCH_VARS = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "MASTER_ADDR",
               "MASTER_PORT", "CUDA_VISIBLE_DEVICES")


def require_uts_namespaces() -> None:
    """Skip the test, saying why, where ``unshare --uts`` cannot give a process its own hostname."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no per-node hostnames")
    proc = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname lg-probe && hostname"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or proc.stdout.strip() != "lg-probe":
        pytest.skip(f"UTS namespaces refused here (unshare --uts needs root or user namespaces): "
                    f"{proc.stderr.strip() or proc.stdout.strip()}")


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """This environment without launcher or SLURM variables, gloo on the loopback interface."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "TORCHELASTIC_", "PET_", "SUBMITIT_")) and k not in LAUNCH_VARS}
    env.update(PYTHONPATH=str(root), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", **extra)
    return env


def free_port(low: int = 20000, high: int = 30000) -> int:
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def slurm_job_for_port(port: int) -> str:
    """A SLURM_JOB_ID from which Lightning's SLURMEnvironment derives ``port`` (last 4 digits + 15000)."""
    if not 15000 <= port <= 24999:
        raise ValueError(f"port must be in 15000-24999 to be derived from a job id, got {port}")
    return f"7{port - 15000:04d}"


def slurm_env(root: Path, *, job_id: str, hosts: tuple[str, ...], tasks_per_node: int, node_id: int, local_id: int,
              job_name: str = "lightning-green-test", **extra: str) -> dict[str, str]:
    """The variables ``srun --nodes N --ntasks-per-node M`` sets for one task.

    MASTER_ADDR is set because the namespaces' hostnames resolve nowhere (on a cluster Lightning
    takes the first host of SLURM_NODELIST); the port comes from SLURM_JOB_ID as on a cluster.
    """
    nodes, ntasks = len(hosts), len(hosts) * tasks_per_node
    return clean_env(
        root, SLURM_JOB_ID=job_id, SLURM_JOB_NAME=job_name, SLURM_NNODES=str(nodes), SLURM_JOB_NUM_NODES=str(nodes),
        SLURM_NODELIST=",".join(hosts), SLURM_JOB_NODELIST=",".join(hosts), SLURM_NTASKS=str(ntasks),
        SLURM_NTASKS_PER_NODE=str(tasks_per_node), SLURM_TASKS_PER_NODE=f"{tasks_per_node}(x{nodes})",
        SLURM_PROCID=str(node_id * tasks_per_node + local_id), SLURM_LOCALID=str(local_id),
        SLURM_NODEID=str(node_id), SLURMD_NODENAME=hosts[node_id], SLURM_CPUS_PER_TASK="1",
        MASTER_ADDR="127.0.0.1", **extra,
    )


def on_node(hostname: str, argv: list[str]) -> list[str]:
    """``argv`` run inside a new UTS namespace whose hostname is ``hostname``."""
    return ["unshare", "--uts", "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *argv]


def run_all(commands: list[tuple[list[str], dict[str, str]]], cwd: Path, timeout_s: float = 200) -> list[str]:
    """Start every command at once (each in its own session), wait for all; the output of those that failed."""
    procs = [subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for argv, env in commands]
    failed = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout_s)
            if proc.returncode != 0:
                failed.append(f"exit {proc.returncode}:\n{out[-4000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this helper started for it
                proc.wait()
    return failed
