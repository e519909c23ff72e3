"""detect()/probe(), the sensor table, the `lightning-green sensors` command, lazy imports."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pynvml
import pytest
from tests.helpers.sensor_fakes import FakeNvml, machine, zone

from lightning_green.cli import main
from lightning_green.sensors import (
    CpuEstimateSensor,
    NvmlSensor,
    RamEstimateSensor,
    RaplSensor,
    Unavailable,
    cuda_devices,
    detect,
    format_sensor_table,
    probe,
)


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def no_driver():
    fake = FakeNvml([])
    fake.init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    with fake.patched():
        yield fake


def test_no_gpu_no_powercap_gives_estimates_and_reasons(no_driver, tmp_path):
    sensors, missing = probe(powercap_root=tmp_path / "absent")
    assert [type(s) for s in sensors] == [CpuEstimateSensor, RamEstimateSensor]
    assert [s.component for s in sensors] == ["cpu", "ram"]
    assert [(m.source, m.component) for m in missing] == [("nvml", "gpu"), ("rapl", "cpu")]
    assert "NVMLError_LibraryNotFound" in missing[0].reason
    assert f"no powercap tree at {tmp_path / 'absent'}" in missing[1].reason
    assert all(isinstance(m, Unavailable) for m in missing)
    assert [type(s) for s in detect(powercap_root=tmp_path / "absent")] == [CpuEstimateSensor, RamEstimateSensor]


def test_detect_returns_list_or_pair(no_driver, tmp_path):
    only = detect(powercap_root=tmp_path)
    assert [s.component for s in only] == ["cpu", "ram"]
    sensors, missing = detect(powercap_root=tmp_path, include_unavailable=True)
    assert [s.component for s in sensors] == ["cpu", "ram"] and len(missing) == 2


def test_rapl_with_dram_measures_cpu_and_ram(no_driver, tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    zone(tmp_path, "intel-rapl:0:0", "core", 4)
    zone(tmp_path, "intel-rapl:0:1", "dram", 2)
    sensors, missing = probe(powercap_root=tmp_path)
    assert [(type(s), s.component, s.measured) for s in sensors] == [(RaplSensor, "cpu", True), (RaplSensor, "ram", True)]
    assert [m.source for m in missing] == ["nvml"]
    ram_estimated = probe(powercap_root=tmp_path, rapl_dram=False)[0]
    assert [type(s) for s in ram_estimated] == [RaplSensor, RamEstimateSensor]


def test_rapl_without_dram_says_why_ram_is_estimated(no_driver, tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    sensors, missing = probe(powercap_root=tmp_path)
    assert [type(s) for s in sensors] == [RaplSensor, RamEstimateSensor]
    assert [(m.source, m.component) for m in missing] == [("nvml", "gpu"), ("rapl dram", "ram")]


def test_gpu_of_this_process_comes_first(tmp_path):
    fake = machine(2)
    with fake.patched():
        sensors, missing = probe("cuda:1", powercap_root=tmp_path / "absent")
        assert [type(s) for s in sensors] == [NvmlSensor, CpuEstimateSensor, RamEstimateSensor]
        assert sensors[0].nvml_index == 1 and sensors[0].scope == "device"
        assert [type(s) for s in detect("cpu", powercap_root=tmp_path)] == [CpuEstimateSensor, RamEstimateSensor]
        table = format_sensor_table(powercap_root=tmp_path / "absent")
    assert fake.refcount == 0
    assert "nvml energy counter" in table and "GPU-00000000" in table and "GPU-00000001" in table
    assert "+-5 % or 5 W" in table


def test_table_lists_sensors_and_reasons(no_driver, tmp_path):
    table = format_sensor_table(powercap_root=tmp_path / "absent")
    lines = table.splitlines()
    assert lines[0].split() == ["component", "device", "/", "zone", "method", "measured", "uncertainty", "scope"]
    assert set(lines[1]) <= {"-", " "}
    cpu_row = next(line for line in lines if line.startswith("cpu "))
    assert "estimated:" in cpu_row and cpu_row.split()[-3:] == ["+-50", "%", "host"]
    assert any(line.startswith("ram ") and "W/GB" in line for line in lines)
    assert "Not available:" in lines
    assert any("gpu" in line and "no NVIDIA driver" in line for line in lines)
    assert any("cpu" in line and "no powercap tree" in line for line in lines)


def test_table_reports_root_only_rapl(no_driver, tmp_path, monkeypatch):
    from lightning_green.sensors import rapl

    zone(tmp_path, "intel-rapl:0", "package-0", 5)

    def denied(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text().strip()

    monkeypatch.setattr(rapl, "_read_text", denied)
    assert "energy_uj readable only by root (Linux >= 5.10, CVE-2020-8694)" in format_sensor_table(powercap_root=tmp_path)


def test_cli_main_prints_the_table(capsys):
    assert main(["sensors"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("component") and "ram" in out and "cpu" in out


def test_cli_subprocess_exits_zero():
    done = subprocess.run([sys.executable, "-m", "lightning_green", "sensors"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "component" in done.stdout and "scope" in done.stdout


def test_importing_sensors_is_lazy():
    code = (
        "import sys, lightning_green.sensors as s\n"
        "assert callable(s.detect)\n"
        "heavy = [m for m in ('pynvml', 'psutil', 'torch', 'codecarbon') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "s.NvmlSensor, s.RaplSensor, s.CpuEstimateSensor, s.RamEstimateSensor\n"
        "assert 'pynvml' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(Path("/sys/class/powercap").exists() or ctypes.util.find_library("nvidia-ml") is not None,
                    reason="this machine has powercap or an NVIDIA driver")
def test_this_machine_without_gpu_or_powercap():
    sensors, missing = probe()
    assert [type(s) for s in sensors] == [CpuEstimateSensor, RamEstimateSensor]
    reasons = " ".join(m.reason for m in missing)
    assert "NVML" in reasons and "powercap" in reasons


def test_table_marks_a_default_band():
    from lightning_green.sensors import ConstantPowerSensor
    from lightning_green.sensors.detect import _band

    assert _band(ConstantPowerSensor(3.0).describe()) == "+-50 % (default)"
    assert _band(ConstantPowerSensor(3.0, uncertainty_w=2.0).describe()) == "+-2 W"
