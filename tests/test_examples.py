"""The scripts in examples/ run as documented and print what they promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_examples_run(tmp_path):
    # Both scripts in one interpreter: importing torch and Lightning once keeps this fast.
    code = "import runpy, sys\nfor path in sys.argv[1:]:\n    runpy.run_path(path, run_name='__main__')\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "existing_trainer.py"), str(EXAMPLES / "custom_sensor.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "g/kWh" in proc.stdout and "FRA" in proc.stdout  # existing_trainer: France's grid
    assert "on average (the meter read 105-135 W)" in proc.stdout  # custom_sensor
    for name, component, measured in (("existing_trainer", "cpu", False), ("custom_sensor", "node", True)):
        footprint = json.loads((tmp_path / "outputs" / name / "footprint.json").read_text())
        assert footprint["status"] == "completed" and footprint["energy_kwh_by_component"][component] > 0
        assert any(s["component"] == component and s["measured"] is measured for s in footprint["sensors"])
