"""Rank-zero discipline in a real 2-process CPU DDP fit (gloo): what the callback says, it
says once per job, not once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.ddp, pytest.mark.slow, pytest.mark.timeout(300)]


def test_warnings_and_the_end_line_are_said_once_per_job(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for name in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "ecosystem_ddp_fit.py"), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr  # Lightning's child process shares the parent's stdout and stderr
    # Both processes spoke: this output is the job's, not rank 0's alone.
    assert "process of local rank 0 built its callback" in done.stderr
    assert "process of local rank 1 built its callback" in done.stderr
    assert said.count("No location given: using the world average carbon intensity") == 1
    assert said.count("sensor 'broken-sensor' left out: RuntimeError: a bug in a user's sensor") == 1
    assert said.count("lightning-green: completed, ") == 1
    report = json.loads((tmp_path / "footprint.json").read_text())
    assert report["world_size"] == 2 and report["status"] == "completed"
    # The report still records what each rank saw.
    assert [w for w in report["warnings"] if "broken-sensor" in w] == [
        f"rank {r}: sensor 'broken-sensor' left out: RuntimeError: a bug in a user's sensor" for r in (0, 1)]
    # The construction warning points at the line that built the callback, not into our code.
    location = [line for line in done.stderr.splitlines() if "No location given" in line][0]
    assert "ecosystem_ddp_fit.py" in location and "lightning_green/" not in location.split(":")[0]
