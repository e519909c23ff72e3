"""Real-GPU checks of NvmlSensor: CUDA starts, nothing is patched.

Run on a machine with an NVIDIA GPU (the default suite deselects ``gpu`` tests)::

    pytest -m gpu tests/sensors/test_gpu_real.py -q -rs -s

Needs only torch and nvidia-ml-py (no transformers, datasets or hydra). Without a GPU every
test is skipped with the reason. ``-s`` shows the figures each test prints.
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.gpu
DEVICE_INDEX = 0


def _bare(uuid: str) -> str:
    text = str(uuid).strip().lower()
    return text.split("-", 1)[1] if text.startswith(("gpu-", "mig-")) else text


@pytest.fixture(scope="module")
def cuda_device():
    """``cuda:0`` with a CUDA context, or a skip that says why there is none."""
    torch = pytest.importorskip("torch")
    pynvml = pytest.importorskip("pynvml")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as err:
        pytest.skip(f"NVML unavailable: {type(err).__name__}")
    device = f"cuda:{DEVICE_INDEX}"
    torch.cuda.set_device(DEVICE_INDEX)
    torch.zeros(1, device=device)
    torch.cuda.synchronize()
    return device


def _sensor(device, **kwargs):
    from lightning_green.sensors.nvml import NvmlSensor

    return NvmlSensor(torch_device=device, **kwargs)


def _limit_w(sensor) -> float:
    limit = sensor.device_info()["power_limit_w"]
    return float(limit) if isinstance(limit, (int, float)) else 1500.0


def _load(device, seconds, read, every_s=0.01):
    """A bf16 matmul loop on ``device`` for ``seconds``, calling ``read()`` between batches."""
    import torch

    a = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    b = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    values, deadline, next_read = [], time.perf_counter() + seconds, 0.0
    while time.perf_counter() < deadline:
        a = (a @ b).clamp_(-1, 1)
        torch.cuda.synchronize()
        if time.perf_counter() >= next_read:
            values.append(read())
            next_read = time.perf_counter() + every_s
    return values


def test_torch_uuid_is_the_uuid_nvml_measures(cuda_device):
    import pynvml
    import torch

    torch_uuid = str(torch.cuda.get_device_properties(DEVICE_INDEX).uuid)
    sensor = _sensor(cuda_device)
    measured = sensor.describe().get("mig_uuid") or sensor.uuid
    print(f"\ntorch {cuda_device}: {torch_uuid}\nNVML: {sensor.uuid} (MIG {sensor.describe().get('mig_uuid')})")
    assert _bare(torch_uuid) == _bare(measured)
    assert sensor.device_id == sensor.uuid
    pynvml.nvmlInit()
    try:  # NVML itself agrees that this UUID is a GPU it knows
        handle = pynvml.nvmlDeviceGetHandleByUUID(sensor.uuid)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        assert _bare(uuid.decode() if isinstance(uuid, bytes) else uuid) == _bare(sensor.uuid)
    finally:
        pynvml.nvmlShutdown()


def test_field_186_gives_a_plausible_power(cuda_device):
    sensor = _sensor(cuda_device)
    sensor.open()
    try:
        power_w, source = sensor.read_power()
        limit_w = _limit_w(sensor)
    finally:
        sensor.close()
    print(f"\npower {power_w:.1f} W ({source}), limit {limit_w:.0f} W, method {sensor.method}")
    if source != "instant field 186":
        pytest.skip(f"field 186 not supported here: the sensor reads the {source}")
    assert 1.0 < power_w < 1.5 * limit_w


def test_the_counter_only_goes_up_under_load(cuda_device):
    sensor = _sensor(cuda_device)
    if sensor.kind != "energy":
        pytest.skip(f"no energy counter on this GPU ({sensor.method})")
    sensor.open()
    try:
        began = time.perf_counter()
        values = _load(cuda_device, 3.0, sensor.energy_j)
        seconds = time.perf_counter() - began
        limit_w = _limit_w(sensor)
    finally:
        sensor.close()
    steps = [b - a for a, b in zip(values, values[1:])]
    mean_w = (values[-1] - values[0]) / seconds
    print(f"\n{len(values)} reads, {sum(s == 0 for s in steps)} unchanged, mean {mean_w:.1f} W under load")
    assert len(values) > 10
    assert min(steps) >= 0.0
    assert values[-1] > values[0]
    assert 1.0 < mean_w < 1.5 * limit_w


def test_update_period_cross_check_and_processes_on_a_real_gpu(cuda_device):
    sensor = _sensor(cuda_device, update_probe_s=1.0)
    if sensor.kind != "energy":
        pytest.skip(f"no energy counter on this GPU ({sensor.method})")
    sensor.open()
    try:
        _load(cuda_device, 6.0, sensor.energy_j, every_s=0.1)
    finally:
        sensor.close()
    extra = sensor.report_extra()
    print(f"\nupdate period {sensor.update_period_s} s ({sensor.update_period_source}); "
          f"counter {extra['counter_j']:.1f} J vs integrated {extra['power_source']} {extra['power_integral_j']:.1f} J "
          f"over {extra['cross_check_window_s']:.1f} s: {extra['disagreement_rel']}; "
          f"other processes {extra['other_processes']} (max {extra['other_process_count_max']}, "
          f"error {extra['process_check_error']}), "
          f"own pid {os.getpid()}; notes {sensor.notes}")
    assert sensor.update_period_s is not None and 0.0005 < sensor.update_period_s < 1.5
    assert extra["power_source"] in ("instant field 186", "1 s average")
    assert extra["counter_j"] > 0 and extra["power_integral_j"] > 0
    assert extra["disagreement_rel"] is not None and abs(extra["disagreement_rel"]) < 0.5
    # the process list ran, or its failure was recorded (some sandboxes refuse it) and measuring went on
    assert extra["process_checks"] >= 1 or extra["process_check_error"]
