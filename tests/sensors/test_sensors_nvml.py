"""NvmlSensor against a scripted NVML (pynvml patched with autospec); real-GPU checks are in
test_gpu_real.py."""

from __future__ import annotations

import pickle
import sys

import pynvml
import pytest
from tests.helpers.sensor_fakes import FakeNvml, Handle, machine, mig_uuid, uuid

from lightning_green.sensors import SensorUnavailable, cuda_devices
from lightning_green.sensors.nvml import (
    METHOD_COUNTER,
    METHOD_INSTANT,
    METHOD_USAGE,
    NvmlSensor,
    gpu_sensors_for_device,
    probe_nvml,
)


@pytest.fixture(autouse=True)
def _no_torch_cuda(monkeypatch):
    # Tests script the CUDA_VISIBLE_DEVICES path; the torch UUID path has its own test.
    monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def gpus():
    fake = machine(4)
    with fake.patched():
        yield fake


def test_energy_counter_for_the_process_gpu_only(gpus):
    sensor = NvmlSensor(torch_device="cuda:1")
    assert sensor.kind == "energy"
    assert sensor.method == METHOD_COUNTER
    assert (sensor.name, sensor.component, sensor.scope, sensor.measured) == ("nvml:1", "gpu", "device", True)
    sensor.open()
    first = sensor.energy_j()
    gpus.gpus[1].energy_mj += 12_345
    gpus.gpus[0].energy_mj += 99_999_999  # another process's GPU: never counted
    assert sensor.energy_j() - first == pytest.approx(12.345)
    assert {h.key for h in gpus.read_handles} == {uuid(1)}
    record = sensor.describe()
    assert record["uuid"] == uuid(1) and record["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert record["kind"] == "energy" and record["method"] == METHOD_COUNTER
    sensor.close()
    assert gpus.refcount == 0 and gpus.init_calls == gpus.shutdown_calls == 2


def test_counter_unsupported_falls_back_to_instant_power(gpus):
    gpus.gpus[0].counter = False
    sensor = NvmlSensor(torch_device="cuda:0")
    assert sensor.kind == "power"
    assert sensor.method == METHOD_INSTANT
    gpus.gpus[0].power_mw = 301_500
    assert sensor.power_w() == pytest.approx(301.5)  # opens lazily
    assert sensor.describe()["kind"] == "power"
    sensor.close()
    assert gpus.refcount == 0


def test_no_counter_no_instant_field_uses_power_usage(gpus):
    gpus.gpus[2].counter = False
    gpus.gpus[2].instant = False
    sensor = NvmlSensor(device_index=2)
    assert (sensor.kind, sensor.method) == ("power", METHOD_USAGE)
    sensor.open()
    assert sensor.power_w() == pytest.approx(240.0)
    sensor.close()


def test_power_w_also_works_on_a_counter_gpu(gpus):
    sensor = NvmlSensor(device_index=0)
    assert sensor.power_w() == pytest.approx(250.0)
    sensor.close()


def test_error_mid_run_raises_a_clear_error(gpus):
    gpus.gpus[0].counter_error_after = 3  # the probe's read is the first
    sensor = NvmlSensor(torch_device="cuda:0")
    sensor.open()  # second read (open re-probes)
    assert sensor.energy_j() == pytest.approx(1000.0)  # third
    with pytest.raises(RuntimeError, match="NVMLError_GpuIsLost"):
        sensor.energy_j()
    sensor.close()
    assert gpus.refcount == 0


@pytest.mark.parametrize(
    ("visible", "torch_device", "nvml_index"),
    [
        ("3,1", "cuda:0", 3),
        ("3,1", "cuda:1", 1),
        (" 2 , 0", "cuda:0", 2),  # CUDA strips blanks
        (f"{uuid(2)},{uuid(0)}", "cuda:1", 0),
        (uuid(3)[:12], "cuda:0", 3),  # a unique UUID prefix, as CUDA accepts
        (f"1,{uuid(2)}", "cuda:1", 2),
        (f"{mig_uuid(7)}", "cuda:0", 2),  # MIG instance on GPU 2 -> parent GPU
        (f"MIG-{uuid(1)}/1/0", "cuda:0", 1),  # legacy MIG-GPU-<uuid>/gi/ci
    ],
)
def test_cuda_visible_devices_forms(gpus, monkeypatch, visible, torch_device, nvml_index):
    gpus.gpus[2].migs.append(mig_uuid(7))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    sensor = NvmlSensor(torch_device=torch_device)
    assert sensor.nvml_index == nvml_index
    assert sensor.uuid == uuid(nvml_index)
    sensor.open()
    sensor.energy_j()
    assert gpus.read_handles[-1] == Handle("gpu", uuid(nvml_index))
    sensor.close()


def test_mig_device_is_measured_through_its_parent_and_says_so(gpus, monkeypatch):
    gpus.gpus[1].migs.append(mig_uuid(5))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(5))
    sensor = NvmlSensor(torch_device="cuda:0")
    assert "whole GPU" in sensor.method and mig_uuid(5) in sensor.method
    assert sensor.describe()["mig_uuid"] == mig_uuid(5)
    sensor.open()
    assert "whole GPU" in sensor.method


@pytest.mark.parametrize(
    ("visible", "torch_device", "reason"),
    [
        ("0,1", "cuda:2", "not visible"),
        ("", "cuda:0", "not visible"),
        ("-1", "cuda:0", "not visible"),
        ("1,-1,2", "cuda:1", "not visible"),  # CUDA stops at the first invalid entry
        ("GPU-deadbeef", "cuda:0", "no GPU with UUID"),
        ("GPU-0000000", "cuda:0", "2 GPUs with UUID"),  # ambiguous prefix (GPU-00000000, -00000001...)
        (mig_uuid(9), "cuda:0", "MIG device"),
        ("7", "cuda:0", "does not exist"),
    ],
)
def test_unusable_device_is_unavailable_with_reason(gpus, monkeypatch, visible, torch_device, reason):
    gpus.gpus[:] = gpus.gpus[:2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(SensorUnavailable, match=reason):
        NvmlSensor(torch_device=torch_device)
    assert gpus.refcount == 0


def test_cpu_device_gets_no_gpu_sensor(gpus):
    with pytest.raises(SensorUnavailable, match="does not train on a GPU"):
        NvmlSensor(torch_device="cpu")
    assert probe_nvml("cpu") == ([], [])
    assert gpu_sensors_for_device("cpu") == []


def test_gpu_sensors_for_device_list_and_dedup(gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    sensors = gpu_sensors_for_device(["cuda:1", "cuda:1", "cuda:0"])
    assert [s.nvml_index for s in sensors] == [3, 2]
    all_visible, missing = probe_nvml(all_visible=True)
    assert [s.nvml_index for s in all_visible] == [2, 3] and missing == []
    assert gpus.refcount == 0


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, ["no NVIDIA driver", "NVMLError_LibraryNotFound"]),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, ["driver not loaded", "NVMLError_DriverNotLoaded"]),
    ],
)
def test_driver_missing_is_unavailable_with_reason(code, words):
    fake = FakeNvml([])
    fake.init_error = code
    with fake.patched():
        sensors, missing = probe_nvml("cuda:0")
        with pytest.raises(SensorUnavailable) as info:
            NvmlSensor(torch_device="cuda:0")
    assert sensors == []
    assert [(m.source, m.component) for m in missing] == [("nvml", "gpu")]
    for word in words:
        assert word in missing[0].reason and word in str(info.value)


def test_pynvml_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    sensors, missing = probe_nvml("cuda:0")
    assert sensors == [] and "pynvml not importable" in missing[0].reason


def test_torch_uuid_wins_over_device_order(gpus, monkeypatch):
    # torch knows cuda:0 is GPU 2 (e.g. CUDA_DEVICE_ORDER=FASTEST_FIRST on mixed GPUs)
    monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: uuid(2)[4:])
    assert NvmlSensor(torch_device="cuda:0").nvml_index == 2


def test_pickle_drops_handle_and_reopens(gpus):
    sensor = NvmlSensor(device_index=1)
    sensor.open()
    clone = pickle.loads(pickle.dumps(sensor))
    assert clone._handle is None and clone.uuid == uuid(1) and clone.kind == "energy"
    assert clone.energy_j() == pytest.approx(2000.0)
    clone.close()
    sensor.close()
    assert gpus.refcount == 0


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="device_index"):
        NvmlSensor(device_index=-1)
    with pytest.raises(ValueError, match="not both"):
        NvmlSensor(device_index=0, torch_device="cuda:0")
    with pytest.raises(ValueError, match="torch_device"):
        cuda_devices.cuda_index("cuda:x")


def test_parse_cuda_visible_devices():
    parse = cuda_devices.parse_cuda_visible_devices
    assert parse(None) is None
    assert parse("") == []
    assert parse("0,2,x,3") == [0, 2]
    assert parse(f"{uuid(1)}, 4") == [uuid(1), 4]


def test_driver_without_gpus_or_all_hidden(monkeypatch):
    with FakeNvml([]).patched():
        assert probe_nvml(all_visible=True)[1][0].reason == "NVML: no GPU visible to this process"
    with machine(2).patched():
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        sensors, missing = probe_nvml(all_visible=True)
    assert sensors == [] and "CUDA_VISIBLE_DEVICES hides them" in missing[0].reason
