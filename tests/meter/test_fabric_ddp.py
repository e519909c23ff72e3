"""EnergyMeter under a real 2-process Lightning Fabric DDP loop (gloo, CPU): device sensors summed
over ranks, host sensors counted once, files written by rank 0 only."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "scripts" / "fabric_ddp.py"
DEVICE_W, HOST_W = 10.0, 5.0
J_PER_KWH = 3.6e6

# Each test starts two Python processes that import torch and Lightning: ~11 s on 2 cores, ~25 s
# when other jobs share them.
pytestmark = [pytest.mark.ddp, pytest.mark.timeout(300)]


def run_script(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # Fabric must launch the second process itself
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), *extra], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=280)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def test_fabric_ddp_counts_device_energy_per_rank_and_host_energy_once(tmp_path):
    proc = run_script(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [read_json(tmp_path / f"rank-{r}.json") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]  # two real processes, one process group
    assert ranks[0]["run_id"] == ranks[1]["run_id"]  # one run: rank 0's id
    assert ranks[1]["report"] is None  # only rank 0 builds the report
    report = read_json(tmp_path / "footprint.json")
    assert report == ranks[0]["report"]
    assert report["status"] == "completed" and report["world_size"] == 2
    duration = report["duration_s"]
    device_j = report["energy_kwh_by_component"]["gpu"] * J_PER_KWH
    host_j = report["energy_kwh_by_component"]["cpu"] * J_PER_KWH
    assert device_j == pytest.approx(2 * DEVICE_W * duration, rel=0.08)  # both ranks' devices
    assert host_j == pytest.approx(HOST_W * duration, rel=0.08)  # one host, read once
    assert report["energy_kwh"] * J_PER_KWH == pytest.approx(device_j + host_j, rel=1e-9)
    # per rank: rank 0 read its device and the host, rank 1 its device only
    by_rank = {k: v * J_PER_KWH for k, v in report["energy_kwh_by_rank"].items()}
    assert set(by_rank) == {"0", "1"}
    assert by_rank["0"] == pytest.approx(ranks[0]["live_energy_j"], rel=1e-9)
    assert by_rank["1"] == pytest.approx(ranks[1]["live_energy_j"], rel=1e-9)
    assert by_rank["0"] == pytest.approx(by_rank["1"] * (DEVICE_W + HOST_W) / DEVICE_W, rel=0.1)
    sensors = {(s["name"], s["rank"]) for s in report["sensors"]}
    assert sensors == {("per-rank-device", 0), ("shared-host", 0), ("per-rank-device", 1)}
    for key in ("energy_kwh_by_phase", "energy_kwh_by_rank"):
        assert sum(report[key].values()) == pytest.approx(report["energy_kwh"], rel=1e-9)
    assert set(report["energy_kwh_by_epoch"]) == {"0", "1"}
    # work summed over ranks: 2 epochs x 6 batches of 4 per rank
    assert report["samples"] == 2 * 2 * 6 * 4 and report["tokens"] == 8 * report["samples"]
    assert report["steps"] == 12  # steps are rank 0's batches (all ranks step together)

    # steps.csv: one row per step, work and energy summed over ranks
    with open(tmp_path / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(12))
    assert [int(r["epoch"]) for r in rows] == [0] * 6 + [1] * 6
    for row in rows:
        assert int(row["samples"]) == 8 and int(row["tokens"]) == 64  # both ranks' batches
        duration_s = float(row["duration_s"])
        # rank 0's step window; each rank's device draws 10 W over its own (similar) window
        assert float(row["gpu_j"]) > DEVICE_W * duration_s * (1 - 1e-3)
        assert float(row["energy_j"]) == pytest.approx(float(row["gpu_j"]) + float(row["cpu_j"]), rel=1e-9)
    total_step_j = sum(float(r["energy_j"]) for r in rows)
    assert total_step_j <= report["energy_kwh_by_phase"]["train"] * J_PER_KWH * (1 + 1e-6)
    # only rank 0 wrote the files: one emissions row, no per-rank copies anywhere
    with open(tmp_path / "emissions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and ".lightning-green" not in p.parts)
    assert written == ["emissions.csv", "footprint.json", "rank-0.json", "rank-1.json", "steps.csv"]
    # a completed run that saved no checkpoint and took no snapshot leaves no state files: no
    # resume could need them (the failure test below shows every rank leaving its own)
    assert not list(tmp_path.glob(".lightning-green/*/*.json"))


def test_fabric_ddp_failure_writes_a_failed_report_and_propagates(tmp_path):
    proc = run_script(tmp_path, "fail")
    assert proc.returncode != 0
    assert "boom at step 2 on rank" in proc.stderr
    report = read_json(tmp_path / "footprint.json")
    assert report["status"] == "failed" and report["energy_kwh"] > 0 and report["world_size"] == 2
    assert "training failed: RuntimeError: boom at step 2 on rank 0" in report["warnings"]
    # No collective after a failure (a rank may be gone): rank 0 reports what it measured and
    # says so; every rank's own figures stay in its state file.
    assert any("only rank 0's sensors" in w for w in report["warnings"])
    assert {s["rank"] for s in report["sensors"]} == {0}
    assert read_json(tmp_path / "rank-1.json")["report"] is None
    states = {p.name: read_json(p) for p in tmp_path.glob(f".lightning-green/{report['run_id']}/rank-*.json")}
    assert sorted(states) == ["rank-0.json", "rank-1.json"]
    assert [states[f"rank-{r}.json"]["status"] for r in (0, 1)] == ["failed", "failed"]
    assert states["rank-1.json"]["totals"]["energy_j"] > 0
    with open(tmp_path / "emissions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1
