"""The README's cluster commands on the recipe: ``srun python train.py trainer.num_nodes=2 ...``.

Two "nodes" (own UTS namespace and hostname each), one SLURM task per node with the variables
srun sets, gloo over 127.0.0.1, tiny demo settings: one run folder for the job, one footprint
that counts both hosts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers.nodes import free_port, on_node, require_uts_namespaces, run_all, slurm_env, slurm_job_for_port
from tests.helpers.recipe_helpers import REPO, TINY

HOSTS = ("node-a", "node-b")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}

pytestmark = [pytest.mark.ddp, pytest.mark.slow, pytest.mark.timeout(240)]


def test_srun_recipe_two_nodes_one_run_folder(tmp_path):
    require_uts_namespaces()
    job_id = slurm_job_for_port(free_port(15000, 24999))
    cache = tmp_path / "cache"
    commands = []
    for node_id, host in enumerate(HOSTS):
        env = slurm_env(REPO, job_id=job_id, hosts=HOSTS, tasks_per_node=1, node_id=node_id, local_id=0,
                        job_name="bert-energy", LIGHTNING_GREEN_CACHE=str(cache), **OFFLINE)
        argv = [sys.executable, str(REPO / "train.py"), "trainer.num_nodes=2", "trainer.devices=1",
                "trainer.accelerator=cpu", "strategy=ddp", *TINY, f"hydra.run.dir=runs/{job_id}"]
        commands.append((on_node(host, argv), env))
    failed = run_all(commands, tmp_path)
    assert not failed, "\n\n".join(failed)
    footprints = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("footprint.json"))
    assert footprints == [Path("runs", job_id, "footprint.json")]  # both tasks in one folder, one writer
    report = json.loads((tmp_path / footprints[0]).read_text())
    assert report["status"] == "completed" and report["world_size"] == 2 and report["num_hosts"] == 2
    assert sorted(report["energy_kwh_by_host"]) == list(HOSTS)
    assert sorted(report["energy_kwh_by_rank"]) == ["0", "1"]
    assert report["energy_kwh"] == pytest.approx(sum(report["energy_kwh_by_host"].values()), rel=1e-9)
    hosts_of_cpu = sorted(s["host"] for s in report["sensors"] if s["component"] == "cpu")
    assert hosts_of_cpu == list(HOSTS)  # each node's CPU read once, by its own task
    assert (tmp_path / "runs" / job_id / "emissions.csv").read_text().count("\n") == 2  # header + one row
