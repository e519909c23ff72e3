"""The scripts in examples/ run as documented and print what they promise."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Several scripts in one interpreter (importing torch and Lightning once keeps this fast), each
# with its own command line: [[path, arg, ...], ...] as JSON in argv[1].
RUN_IN_TURN = (
    "import json, runpy, sys\n"
    "for path, *args in json.loads(sys.argv[1]):\n"
    "    sys.argv = [path, *args]\n"
    "    runpy.run_path(path, run_name='__main__')\n"
)


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_examples_run(tmp_path):
    scripts = [[str(EXAMPLES / "existing_trainer.py")], [str(EXAMPLES / "custom_sensor.py")],
               [str(EXAMPLES / "plain_pytorch.py"), "--epochs", "2"],
               [str(EXAMPLES / "plain_pytorch.py"), "--epochs", "4"]]
    proc = subprocess.run([sys.executable, "-c", RUN_IN_TURN, json.dumps(scripts)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "g/kWh" in proc.stdout and "FRA" in proc.stdout  # existing_trainer: France's grid
    assert "on average (the meter read 105-135 W)" in proc.stdout  # custom_sensor
    for name, component, measured in (("existing_trainer", "cpu", False), ("custom_sensor", "node", True)):
        footprint = json.loads((tmp_path / "outputs" / name / "footprint.json").read_text())
        assert footprint["status"] == "completed" and footprint["energy_kwh_by_component"][component] > 0
        assert any(s["component"] == component and s["measured"] is measured for s in footprint["sensors"])

    # plain_pytorch: two runs, the second resumed from the first one's checkpoint
    plain = tmp_path / "outputs" / "plain_pytorch"
    out = proc.stdout[proc.stdout.index("epoch 0: val/loss"):]
    first_summary, second_summary = out.split("lightning-green footprint: run ")[1:3]
    run_id = first_summary.split()[0]
    assert second_summary.split()[0] == run_id  # the same run, continued
    assert "resumed after epoch 1:" in out and "epoch 3: val/loss" in out and "DEU" in out
    footprint = json.loads((plain / "footprint.json").read_text())
    assert footprint["run_id"] == run_id and footprint["status"] == "completed"
    assert footprint["context"]["resumed"] is True and footprint["context"]["segments"] == 2
    batches = 2048 * 3 // 4 // 64  # training batches per epoch
    assert footprint["steps"] == 4 * batches and footprint["samples"] == 4 * 1536
    assert footprint["work_by_phase"]["validate"]["samples"] == 4 * 512
    assert sorted(footprint["energy_kwh_by_epoch"]) == ["0", "1", "2", "3"]
    assert all(v > 0 for v in footprint["energy_kwh_by_epoch"].values())
    assert sum(footprint["energy_kwh_by_phase"].values()) == pytest.approx(footprint["energy_kwh"], rel=1e-9)
    rows = _read_csv(plain / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(4 * batches))
    assert [int(r["epoch"]) for r in rows] == [e for e in range(4) for _ in range(batches)]
    emissions = _read_csv(plain / "emissions.csv")
    assert [r["run_id"] for r in emissions] == [run_id]  # one row per run, replaced by the resume
    # the row is the whole footprint, the first run included
    assert float(emissions[0]["energy_consumed"]) == pytest.approx(footprint["facility_energy_kwh"], rel=1e-9)
    assert (plain / "checkpoint.pt").is_file()


@pytest.mark.ddp  # two processes import torch and Lightning: ~12 s on 2 cores, ~30 s when they are shared
def test_fabric_loop_runs_two_ddp_processes_and_rank_zero_reports(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "fabric_loop.py")], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("lightning-green footprint:") == 1  # rank 0 prints, rank 1 does not
    assert "2 processes on 1 host" in proc.stdout and "epoch 1: val/loss" in proc.stdout
    out = tmp_path / "outputs" / "fabric_loop"
    footprint = json.loads((out / "footprint.json").read_text())
    assert footprint["status"] == "completed" and footprint["world_size"] == 2
    assert set(footprint["energy_kwh_by_rank"]) == {"0", "1"}
    assert footprint["energy_kwh"] > 0
    assert footprint["country_iso_code"] == "FRA" and footprint["pue"] == 1.2
    per_rank_batches = 1536 // 2 // 64
    assert footprint["samples"] == 2 * 1536  # 2 epochs, both ranks' shares
    assert footprint["steps"] == 2 * per_rank_batches
    assert footprint["work_by_phase"]["validate"]["samples"] == 2 * 512
    assert len(_read_csv(out / "steps.csv")) == 2 * per_rank_batches
    assert len(_read_csv(out / "emissions.csv")) == 1
