"""The ``lightning-green`` command: help, version, --json, show, watch, and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_green import __version__
from lightning_green.cli import SENSOR_KEYS, main
from lightning_green.outputs.footprint import FootprintReport, write_footprint
from lightning_green.watch import EXIT_TIMEOUT, power_w, watch
from tests.helpers.compare_fixtures import footprint, write_run


def test_no_verb_prints_help_and_exits_zero(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lightning-green") and all(verb in out for verb in ("sensors", "show", "watch", "compare"))


def test_console_script_without_a_verb():
    done = subprocess.run([sys.executable, "-m", "lightning_green"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: lightning-green" in done.stdout and "required" not in done.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lightning-green {__version__}"


@pytest.mark.parametrize("argv, message", [
    (["measure"], "invalid choice: 'measure'"),
    (["show"], "the following arguments are required: PATH"),
    (["watch", "run", "--interval", "0"], "--interval must be a number of seconds > 0, got '0'"),
    (["watch", "run", "--timeout", "soon"], "--timeout must be a number of seconds > 0, got 'soon'"),
    (["sensors", "--jsn"], "unrecognized arguments: --jsn"),
    (["compare", "x", "--format", "jpg"], "argument --format: invalid choice: 'jpg'"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_bad_values_exit_2_naming_them(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a", footprint(overrides=["seed=1"], gpu_kwh=0.001, cpu_kwh=0.0, acc=0.5,
                                                 start_min=0, duration_s=60))
    assert main(["compare", str(tmp_path / "runs"), "--regions", "FRA,XYZ", "--no-plots"]) == 2
    assert "regions must be ISO-3 country codes" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "runs"), "--dpi", "10"]) == 2
    assert "dpi must be an integer >= 72 and <= 1200, got 10" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "runs"), "--group-by", "lr", "--no-plots"]) == 2
    assert "group_by must name override keys of the runs (seed), got 'lr'" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "runs"), "--pair", "a", "--no-plots"]) == 2
    assert "--pair must be SERVING=TRAINING" in capsys.readouterr().err


def test_sensors_json_has_stable_keys(capsys):
    assert main(["sensors", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "lightning-green/sensors/1" and data["version"] == __version__
    assert data["sensors"], "this machine offers at least the CPU and RAM estimates"
    for record in data["sensors"]:
        assert tuple(record) == SENSOR_KEYS
        assert record["component"] in ("gpu", "cpu", "ram") and isinstance(record["measured"], bool)
    for item in data["unavailable"]:
        assert set(item) == {"source", "component", "reason"} and item["reason"]


def _footprint_file(tmp_path: Path, **fields) -> Path:
    report = FootprintReport(status="completed", run_id="r1", duration_s=60.0, energy_kwh=0.002,
                             energy_kwh_by_component={"cpu": 0.002}, emissions_kg=0.0008, steps=10, samples=80,
                             epochs=1, carbon_intensity_g_per_kwh=400.0)
    path = write_footprint(report, tmp_path / "run")
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))  # the newer fields, as the lead writes them
    return path


def test_show_json(tmp_path, capsys):
    path = _footprint_file(tmp_path, energy_kwh_range=[0.0018, 0.0023], optimizer_steps=5)
    assert main(["show", str(path.parent), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["path"] == str(path) and record["schema"] == "lightning-green/show/1"
    assert record["energy_kwh"] == 0.002 and record["energy_kwh_range"] == [0.0018, 0.0023]
    assert (record["batches"], record["optimizer_steps"], record["epochs"]) == (10, 5, 1)
    assert record["serving"] is None and record["embodied_kg"] is None


def test_show_text_and_unreadable_paths(tmp_path, capsys):
    path = _footprint_file(tmp_path, status="running", snapshot_at="2025-01-01T12:05:00+00:00", optimizer_steps=5)
    assert main(["show", str(path), str(tmp_path / "nope")]) == 1
    captured = capsys.readouterr()
    assert "running (last snapshot at 2025-01-01 12:05:00 UTC)" in captured.out
    assert "10 training batches, 5 optimizer steps, 1 epoch" in captured.out
    assert f"lightning-green show: {tmp_path / 'nope'}: cannot read footprint: [Errno 2]" in captured.err
    (tmp_path / "bad.json").write_text('{"schema": "lightning-green/footprint/1", "energy_kwh": "lots"}')
    assert main(["show", str(tmp_path / "bad.json")]) == 1
    assert "field 'energy_kwh' must be float, got 'lots'" in capsys.readouterr().err


class Snapshots:
    """Writes the next footprint snapshot each time ``watch`` sleeps; a fake clock."""

    def __init__(self, folder: Path, snapshots: list[dict]) -> None:
        self.folder, self.snapshots, self.now, self.sleeps = folder, list(snapshots), 0.0, []
        self.write()

    def write(self) -> None:
        if self.snapshots:
            data = {"schema": "lightning-green/footprint/1", **self.snapshots.pop(0)}
            (self.folder / "footprint.json").write_text(json.dumps(data))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.write()

    def clock(self) -> float:
        return self.now


def snap(status: str, at: str | None, duration_s: float, energy_kwh: float, **more) -> dict:
    return {"status": status, "snapshot_at": at, "duration_s": duration_s, "energy_kwh": energy_kwh,
            "emissions_kg": energy_kwh * 0.4, "samples": int(duration_s * 8), **more}


def test_watch_follows_snapshots_until_the_run_ends(tmp_path):
    (tmp_path / "run").mkdir()
    fake = Snapshots(tmp_path / "run", [
        snap("running", "2025-01-01T12:00:10+00:00", 10.0, 0.0010),
        snap("running", "2025-01-01T12:00:20+00:00", 20.0, 0.0015),  # +1800 J in 10 s: 180 W
        snap("running", "2025-01-01T12:00:20+00:00", 20.0, 0.0015),  # the same snapshot again: no line
        snap("running", "2025-01-01T12:00:30+00:00", 30.0, 0.0025, power_w={"gpu": 250.0, "cpu": 20.0}),
        snap("completed", None, 35.0, 0.0026),  # no snapshot time: (0.0001 kWh = 360 J) / (35 - 30 s) = 72 W
    ])
    out = io.StringIO()
    assert watch(tmp_path / "run", interval_s=2.0, out=out, sleep=fake.sleep, clock=fake.clock) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["time", "status", "duration", "energy", "power", "emissions"]
    assert lines[1].split() == ["12:00:10", "running", "10.0", "s", "1", "Wh", "-", "W", "0.4", "g", "CO2e", "80", "samples"]
    assert "1.5 Wh  180.0 W  0.6 g CO2e" in lines[2]
    assert "2.5 Wh  270.0 W  1 g CO2e" in lines[3]  # the snapshot's own power_w, summed over components
    assert "completed" in lines[4] and "2.6 Wh  72.0 W" in lines[4] and len(lines) == 5
    assert fake.sleeps == [2.0] * 4


def test_watch_json_lines_and_timeout(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    fake = Snapshots(tmp_path / "run", [snap("running", "2025-01-01T12:00:10+00:00", 10.0, 0.001)])
    out, err = io.StringIO(), io.StringIO()
    code = watch(tmp_path / "run", interval_s=5.0, timeout_s=12.0, as_json=True, out=out, err=err,
                 sleep=fake.sleep, clock=fake.clock)
    assert code == EXIT_TIMEOUT == 3 and fake.now == 15.0
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == {"status": "running", "snapshot_at": "2025-01-01T12:00:10+00:00", "duration_s": 10.0,
                                "energy_kwh": 0.001, "emissions_kg": 0.0004, "samples": 80, "power_w": None}
    assert "still running after 12 s (--timeout)" in err.getvalue()


def test_watch_waits_for_a_footprint_and_rejects_impossible_paths(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    fake = Snapshots(folder, [])
    fake.snapshots = [snap("completed", None, 5.0, 0.001)]
    err = io.StringIO()
    assert watch(folder, interval_s=1.0, out=io.StringIO(), err=err, sleep=fake.sleep, clock=fake.clock) == 0
    assert f"waiting for {folder / 'footprint.json'}" in err.getvalue() and fake.sleeps == [1.0]
    err = io.StringIO()
    assert watch(tmp_path / "no" / "such" / "run", out=io.StringIO(), err=err) == 2
    assert "DIR must be a run folder or a footprint.json" in err.getvalue()


def test_power_from_successive_snapshots():
    a = {"energy_kwh": 0.001, "snapshot_at": "2025-01-01T12:00:00Z", "duration_s": 1.0}
    b = {"energy_kwh": 0.002, "snapshot_at": "2025-01-01T12:01:00Z", "duration_s": 2.0}
    assert power_w(b, a) == pytest.approx(3600.0 / 60)  # snapshot times win over durations
    assert power_w(b, None) is None and power_w(a, b) is None  # no earlier snapshot; time going backwards
    assert power_w({**b, "power_w": 42.0}, None) == 42.0


def test_a_closed_pipe_is_no_traceback(tmp_path):
    path = _footprint_file(tmp_path)
    paths = " ".join([str(path)] * 300)  # ~400 kB of JSON: more than a pipe holds, so the writer meets the closed end
    command = f"{sys.executable} -m lightning_green show {paths} --json | head -c 10"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert done.stdout == "[\n  {\n    " and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
