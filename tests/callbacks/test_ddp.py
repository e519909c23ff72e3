"""Real 2-process CPU DDP (gloo): device sensors summed over ranks, host sensors counted once."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVICE_W, HOST_W = 10.0, 5.0

pytestmark = [pytest.mark.ddp, pytest.mark.timeout(300)]


def run_script(tmp_path: Path, strategy: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("LOCAL_RANK", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts" / "ddp_fit.py"), str(tmp_path), strategy, *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
    )


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_two_process_ddp_counts_every_joule_once(tmp_path, strategy):
    proc = run_script(tmp_path, strategy)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "footprint.json").read_text())
    assert report["status"] == "completed"
    assert report["world_size"] == 2
    duration = report["duration_s"]
    device_j = report["energy_kwh_by_component"]["gpu"] * 3.6e6
    host_j = report["energy_kwh_by_component"]["cpu"] * 3.6e6
    # Two ranks each measure their own device; the host is measured by local rank 0 only.
    assert device_j == pytest.approx(2 * DEVICE_W * duration, rel=0.08)
    assert host_j == pytest.approx(HOST_W * duration, rel=0.08)
    assert set(report["energy_kwh_by_rank"]) == {"0", "1"}
    rank0, rank1 = report["energy_kwh_by_rank"]["0"], report["energy_kwh_by_rank"]["1"]
    assert rank0 == pytest.approx(rank1 * (DEVICE_W + HOST_W) / DEVICE_W, rel=0.1)
    assert sum(report["energy_kwh_by_phase"].values()) == pytest.approx(report["energy_kwh"], rel=1e-9)
    assert report["samples"] == 2 * 2 * 6 * 4  # ranks x epochs x batches x batch size
    assert report["steps"] == 12
    sensors = {(s["name"], s["rank"]) for s in report["sensors"]}
    assert sensors == {("per-rank-device", 0), ("shared-host", 0), ("per-rank-device", 1)}
    with open(tmp_path / "steps.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    for row in rows:
        assert int(row["samples"]) == 8  # both ranks' batches
    total_step_j = sum(float(r["energy_j"]) for r in rows)
    assert total_step_j <= report["energy_kwh_by_phase"]["train"] * 3.6e6 * (1 + 1e-6)
    with open(tmp_path / "emissions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1  # written once, by rank 0
    parent = json.loads((tmp_path / "parent_report.json").read_text())
    assert parent["energy_kwh"] == pytest.approx(report["energy_kwh"])
    # The projection after 4 of 12 batches sums every rank's energy per batch (not rank 0's
    # alone against every rank's total): near the real total
    # (with rank 0's per-batch energy alone it came ~30 % short; the validations not yet seen
    # after 4 batches account for the ~10 % it still misses)
    assert report["predicted_energy_kwh"] == pytest.approx(report["energy_kwh"], rel=0.2)


def test_ddp_failure_still_reports_and_propagates(tmp_path):
    proc = run_script(tmp_path, "ddp", "fail")
    assert proc.returncode != 0
    assert "boom at step 3" in proc.stderr
    report = json.loads((tmp_path / "footprint.json").read_text())
    assert report["status"] == "failed"
    assert report["energy_kwh"] > 0
    assert any("only rank 0's sensors" in w for w in report["warnings"])
