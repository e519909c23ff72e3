"""Fault injection under real 2-process CPU DDP (gloo): one rank's sensors fail, and the same
processes then resume from the checkpoint (every rank's energy must be in it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.reliability_kit import read_rows

ROOT = Path(__file__).resolve().parents[2]
READ_W, OPEN_W, OK_W, HOST_W = 10.0, 3.0, 2.0, 5.0

pytestmark = [pytest.mark.ddp, pytest.mark.timeout(300)]


def test_one_rank_failing_sensors_still_reduce_and_only_rank0_writes(tmp_path):
    out_dir, scratch = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    scratch.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "reliability_ddp_fit.py"), str(out_dir)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Only rank 0 writes the footprint: the output folder holds rank 0's three files and the
    # run's state folder, where each rank leaves its own figures for a resume (the resumed run
    # keeps writing there); every process removed its scratch files.
    files = ["emissions.csv", "footprint.json", "steps.csv"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(files + [".lightning-green", "resumed"])
    assert sorted(p.name for p in (out_dir / "resumed").iterdir()) == files
    (state_dir,) = (out_dir / ".lightning-green").iterdir()
    assert sorted(p.name for p in state_dir.iterdir()) == ["rank-0.json", "rank-1.json"]
    assert [p.name for p in scratch.iterdir() if p.name.startswith("lightning-green")] == []
    assert len(read_rows(out_dir / "emissions.csv")) == 1

    report = json.loads((out_dir / "footprint.json").read_text())
    assert report["status"] == "completed" and report["world_size"] == 2
    assert report["steps"] == 8 and report["samples"] == 2 * 8 * 4  # both ranks' batches
    duration = report["duration_s"]
    by_component = {k: v * 3.6e6 for k, v in report["energy_kwh_by_component"].items()}
    # Totals are still reduced over the ranks: rank 0's devices, the host once, and
    # nothing invented for rank 1's broken devices.
    assert by_component["gpu"] == pytest.approx(READ_W * duration, rel=0.1)
    assert by_component["accel"] == pytest.approx(OPEN_W * duration, rel=0.1)
    assert by_component["cpu"] == pytest.approx(HOST_W * duration, rel=0.1)
    assert by_component["npu"] == pytest.approx(2 * OK_W * duration, rel=0.1)  # works on both ranks
    rank1_j = report["energy_kwh_by_rank"]["1"] * 3.6e6
    assert rank1_j == pytest.approx(OK_W * duration, rel=0.1)  # only its working sensor

    sensors = {(s["name"], s["rank"]): s for s in report["sensors"]}
    assert set(sensors) == {(name, rank) for name in ("dev-read", "dev-open", "dev-ok") for rank in (0, 1)} | {
        ("shared-host", 0)}
    assert sensors[("dev-read", 1)]["reads"] == 0 and sensors[("dev-read", 1)]["errors"] > 0
    assert sensors[("dev-read", 0)]["errors"] == 0 and sensors[("dev-read", 0)]["reads"] > 0
    assert "fake GPU driver missing" in sensors[("dev-open", 1)]["disabled_reason"]
    assert sensors[("dev-open", 0)]["disabled_reason"] is None
    warnings = report["warnings"]
    assert any(w.startswith("rank 1: ") and "fell off the bus" in w for w in warnings), warnings
    assert any(w.startswith("rank 1: ") and "fake GPU driver missing" in w for w in warnings), warnings
    assert not any(w.startswith("rank 0: ") and "dev-" in w for w in warnings), warnings
    assert len(read_rows(out_dir / "steps.csv")) == 8

    # The resumed fit (same processes, same failing sensors) continues the whole footprint:
    # the checkpoint carried rank 1's energy and batches too, not only rank 0's.
    resumed = json.loads((out_dir / "resumed" / "footprint.json").read_text())
    assert resumed["status"] == "completed" and resumed["context"]["resumed"] is True
    assert resumed["run_id"] == report["run_id"]
    assert resumed["steps"] == 16 and resumed["samples"] == 2 * 16 * 4
    total_s = resumed["duration_s"]
    assert total_s > duration
    npu_j = resumed["energy_kwh_by_component"]["npu"] * 3.6e6
    assert npu_j == pytest.approx(2 * OK_W * total_s, rel=0.1)
    assert resumed["energy_kwh_by_rank"]["1"] * 3.6e6 == pytest.approx(OK_W * total_s, rel=0.1)
    assert [int(r["step"]) for r in read_rows(out_dir / "resumed" / "steps.csv")] == list(range(8, 16))
