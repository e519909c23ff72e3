"""NvmlSensor's checks of its own readings against a scripted NVML (pynvml patched with
autospec): counter vs integrated power, the counter's update period, other processes on the
GPU, one unreadable GPU during the UUID scan, MIG device ids, device order on mixed hosts."""

from __future__ import annotations

import os
import warnings

import pytest
from tests.helpers.fakes import FakeClock
from tests.helpers.sensor_fakes import machine, mig_uuid, uuid

from lightning_green.sensors import SensorUnavailable, cuda_devices
from lightning_green.sensors.nvml import POWER_AVERAGE, POWER_INSTANT, NvmlSensor


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: None)
    monkeypatch.setattr(cuda_devices, "cuda_initialized", lambda: False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


@pytest.fixture
def gpus():
    fake = machine(2)
    with fake.patched():
        yield fake


def run(sensor, gpu, clock, seconds, counter_w, power_w=None, dt=0.1):
    """Read the sensor every ``dt`` for ``seconds``: the counter moves at ``counter_w``, the
    power reading shows ``power_w`` (default the same)."""
    gpu.power_mw = int((counter_w if power_w is None else power_w) * 1000)
    sensor.energy_j()
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        gpu.energy_mj += int(counter_w * dt * 1000)
        sensor.energy_j()


def test_counter_and_integrated_instant_power_agree_and_both_are_reported(gpus):
    clock = FakeClock(100.0)
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    run(sensor, gpus.gpus[0], clock, 10.0, counter_w=250.0)
    sensor.close()
    extra = sensor.report_extra()
    assert extra["power_source"] == POWER_INSTANT == "instant field 186"
    assert extra["counter_j"] == pytest.approx(2500.0)
    assert extra["power_integral_j"] == pytest.approx(2500.0)
    assert extra["disagreement_rel"] == pytest.approx(0.0, abs=1e-9)
    assert extra["cross_check_window_s"] == pytest.approx(10.0) and extra["cross_check_reads"] == 101
    assert sensor.notes == ()
    assert sensor.describe()["power_source"] == POWER_INSTANT


def test_disagreement_above_5_percent_over_the_run_is_noted(gpus):
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    run(sensor, gpus.gpus[0], clock, 10.0, counter_w=250.0, power_w=300.0)
    sensor.close()
    extra = sensor.report_extra()
    assert extra["counter_j"] == pytest.approx(2500.0) and extra["power_integral_j"] == pytest.approx(3000.0)
    assert extra["disagreement_rel"] == pytest.approx(0.2)
    assert len(sensor.notes) == 1
    assert "disagree by more than 5 %" in sensor.notes[0] and "+20.0 %" in sensor.notes[0]
    sensor.report_extra()
    assert len(sensor.notes) == 1  # noted once


def test_four_percent_apart_is_not_noted(gpus):
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    run(sensor, gpus.gpus[0], clock, 10.0, counter_w=250.0, power_w=260.0)
    sensor.close()
    assert sensor.report_extra()["disagreement_rel"] == pytest.approx(0.04)
    assert sensor.notes == ()


def test_a_window_too_short_to_judge_is_reported_but_not_compared(gpus):
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    run(sensor, gpus.gpus[0], clock, 2.0, counter_w=250.0, power_w=400.0)
    sensor.close()
    extra = sensor.report_extra()
    assert extra["counter_j"] == pytest.approx(500.0) and extra["power_integral_j"] == pytest.approx(800.0)
    assert extra["disagreement_rel"] is None and sensor.notes == ()


def test_without_field_186_the_1_s_average_is_integrated_and_named(gpus):
    gpus.gpus[0].instant = False
    gpus.gpus[0].usage_mw = 250_000
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    gpu = gpus.gpus[0]
    sensor.energy_j()
    for _ in range(60):
        clock.advance(0.1)
        gpu.energy_mj += 25_000
        sensor.energy_j()
    sensor.close()
    extra = sensor.report_extra()
    assert extra["power_source"] == POWER_AVERAGE == "1 s average"
    assert extra["power_integral_j"] == pytest.approx(1500.0) and extra["disagreement_rel"] == pytest.approx(0.0)
    assert sensor.read_power() == (pytest.approx(250.0), POWER_AVERAGE)


def test_a_failed_power_read_leaves_its_intervals_out_of_both_sums(gpus):
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    gpu = gpus.gpus[0]
    gpu.power_mw = 200_000
    sensor.energy_j()
    for i in range(80):
        clock.advance(0.1)
        gpu.energy_mj += 20_000
        gpu.instant_error = i == 40  # field 186 fails once: no silent switch to the 1 s average
        sensor.energy_j()
    sensor.close()
    extra = sensor.report_extra()
    assert extra["power_read_failures"] == 1
    assert extra["cross_check_window_s"] == pytest.approx(7.8)  # 8 s less the two intervals around it
    assert extra["counter_j"] == pytest.approx(1560.0) and extra["power_integral_j"] == pytest.approx(1560.0)


def test_cross_check_off_adds_no_power_reads(gpus):
    sensor = NvmlSensor(0, cross_check=False)
    sensor.open()
    before = len(gpus.read_handles)
    sensor.energy_j()
    assert len(gpus.read_handles) - before == 1  # the counter only
    assert sensor.report_extra()["counter_j"] is None


def probe_clock(gpu, period_s):
    """A fake clock and sleep: the GPU's counter moves every ``period_s`` of fake time."""
    clock = FakeClock()

    def sleep(dt):
        before = int(clock.t / period_s + 1e-9)
        clock.advance(dt)
        gpu.energy_mj += 1000 * (int(clock.t / period_s + 1e-9) - before)

    return clock, sleep


@pytest.mark.parametrize("period_s", [0.02, 0.05, 0.1])
def test_update_period_is_measured_at_open(gpus, period_s):
    clock, sleep = probe_clock(gpus.gpus[0], period_s)
    sensor = NvmlSensor(0, clock=clock, sleep=sleep, update_probe_s=0.6)
    sensor.open()
    assert sensor.update_period_s == pytest.approx(period_s, abs=0.0025)
    assert "probed at open" in sensor.update_period_source
    assert sensor.describe()["update_period_s"] == sensor.update_period_s
    assert sensor.report_extra()["update_period_s"] == sensor.update_period_s


def test_a_counter_that_does_not_move_leaves_the_period_unknown(gpus):
    clock, sleep = probe_clock(gpus.gpus[0], 10.0)
    sensor = NvmlSensor(0, clock=clock, sleep=sleep, update_probe_s=0.25)
    sensor.open()
    assert sensor.update_period_s is None and "unknown" in sensor.update_period_source
    assert clock.t == pytest.approx(0.25, abs=0.003)  # the probe stops at its window


def test_given_period_skips_the_probe_and_the_1_s_average_counts_as_1_s(gpus):
    sensor = NvmlSensor(0, update_period_s=0.1, update_probe_s=0.25, sleep=lambda dt: pytest.fail("probed"))
    sensor.open()
    assert (sensor.update_period_s, sensor.update_period_source) == (0.1, "given")
    gpus.gpus[1].counter = gpus.gpus[1].instant = False
    average = NvmlSensor(1, sleep=lambda dt: pytest.fail("probed"))
    average.open()
    assert average.kind == "power" and average.update_period_s == 1.0


def test_other_compute_processes_are_noted_and_checked_only_now_and_then(gpus):
    gpu = gpus.gpus[0]
    gpu.processes = [os.getpid()]
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock, process_check_s=30.0)
    sensor.open()
    assert gpu.process_queries == 1 and sensor.notes == ()
    gpu.processes = [os.getpid(), 4242, 777]
    for _ in range(100):  # 10 s of reads: no new query
        clock.advance(0.1)
        sensor.energy_j()
    assert gpu.process_queries == 1
    clock.advance(25.0)
    sensor.energy_j()
    assert gpu.process_queries == 2
    assert len(sensor.notes) == 1 and "2 other compute process(es)" in sensor.notes[0]
    assert "777, 4242" in sensor.notes[0] and "include theirs" in sensor.notes[0]
    clock.advance(31.0)
    gpu.processes = [os.getpid(), 4242, 5555]
    sensor.energy_j()
    extra = sensor.report_extra()
    assert extra["other_processes"] == [777, 4242, 5555] and extra["other_process_count_max"] == 2
    assert extra["process_checks"] == 3 and len(sensor.notes) == 1


def test_processes_in_another_pid_namespace_are_counted_less_ours(gpus, monkeypatch):
    monkeypatch.setattr(cuda_devices, "cuda_initialized", lambda: True)  # this process holds a context
    gpus.gpus[0].processes = [101, 202]  # host pids: ours is one of them under another number
    sensor = NvmlSensor(0)
    sensor.open()
    assert len(sensor.notes) == 1 and "1 other compute process(es)" in sensor.notes[0]
    assert "another PID namespace" in sensor.notes[0]
    gpus.gpus[1].processes = [101]  # only us
    alone = NvmlSensor(1)
    alone.open()
    assert alone.notes == ()


def test_a_gpu_that_cannot_list_processes_still_measures(gpus):
    gpus.gpus[0].processes_supported = False
    sensor = NvmlSensor(0)
    sensor.open()
    assert sensor.energy_j() == pytest.approx(1000.0)
    assert "NotSupported" in sensor.report_extra()["process_check_error"]


def test_an_unreadable_gpu_does_not_stop_the_uuid_prefix_scan(monkeypatch):
    fake = machine(4)
    fake.gpus[0].lost = True
    with fake.patched():
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", uuid(2)[:12])
        sensor = NvmlSensor(torch_device="cuda:0")
        assert sensor.uuid == uuid(2) and sensor.nvml_index == 2
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-deadbeef")
        with pytest.raises(SensorUnavailable, match="unreadable: GPU 0: NVMLError_GpuIsLost"):
            NvmlSensor(torch_device="cuda:0")
    assert fake.refcount == 0


def test_mig_slices_of_one_gpu_share_its_device_id(gpus, monkeypatch):
    gpus.gpus[1].migs += [mig_uuid(5), mig_uuid(6)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{mig_uuid(5)},{mig_uuid(6)}")
    first, second = NvmlSensor(torch_device="cuda:0"), NvmlSensor(torch_device="cuda:1")
    assert first.device_id == second.device_id == uuid(1)
    assert first.describe()["device_id"] == uuid(1) and first.describe()["mig_uuid"] == mig_uuid(5)
    assert NvmlSensor(0).device_id == uuid(0)


def test_index_mapping_warns_on_mixed_models_unless_pci_bus_order(gpus, monkeypatch):
    gpus.gpus[1].name = "NVIDIA A100-SXM4-40GB"
    with pytest.warns(RuntimeWarning, match="CUDA_DEVICE_ORDER=FASTEST_FIRST"):
        sensor = NvmlSensor(torch_device="cuda:1")
    assert len(sensor.notes) == 1 and "several GPU models" in sensor.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert NvmlSensor(device_index=1).notes == ()  # an NVML index: nothing to map
        monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: uuid(1)[4:])
        assert NvmlSensor(torch_device="cuda:1").notes == ()  # torch's UUID: exact
        monkeypatch.setattr(cuda_devices, "torch_cuda_uuid", lambda index: None)
        monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        assert NvmlSensor(torch_device="cuda:1").notes == ()


def test_same_models_need_no_warning(gpus):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert NvmlSensor(torch_device="cuda:1").notes == ()


def test_device_info_and_stated_uncertainty(gpus):
    gpus.gpus[0].mig_mode = None  # not supported on this GPU
    sensor = NvmlSensor(0)
    info = sensor.device_info()
    assert info["uuid"] == uuid(0) and info["pci_bus_id"] == "00000000:17:00.0"
    assert info["driver_version"] == "570.86.15" and info["nvml_version"] == "12.570.86.15"
    assert info["power_limit_w"] == 700.0 and info["persistence_mode"] == "enabled"
    assert info["mig_mode"] == "unavailable: NVMLError_NotSupported"
    assert info["nvidia_ml_py_version"][0].isdigit() and info["cuda_driver_version"] == 12080
    assert NvmlSensor(1).device_info()["mig_mode"] == {"current": "disabled", "pending": "disabled"}
    record = sensor.describe()
    assert (record["uncertainty_rel"], record["uncertainty_w"]) == (0.05, 5.0)
    assert "arXiv:2312.02741" in record["uncertainty_source"] and "+-5 W" in record["uncertainty_source"]
    assert sensor.uncertainty_j(4_000.0, 60.0) == pytest.approx(300.0)  # 5 W x 60 s > 5 % of 4 kJ
    assert sensor.uncertainty_j(40_000.0, 60.0) == pytest.approx(2000.0)  # 5 % of 40 kJ > 300 J
    assert gpus.refcount == 0


def test_power_is_integrated_by_trapezoid(gpus):
    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    gpu = gpus.gpus[0]
    gpu.power_mw = 100_000
    sensor.energy_j()
    for i in range(1, 61):  # power ramps 100 -> 400 W; the counter moves by the exact area
        clock.advance(0.1)
        previous_w, gpu.power_mw = gpu.power_mw / 1000, 100_000 + 5_000 * i
        gpu.energy_mj += round(0.5 * (previous_w + gpu.power_mw / 1000) * 0.1 * 1000)
        sensor.energy_j()
    sensor.close()
    extra = sensor.report_extra()
    assert extra["power_integral_j"] == pytest.approx(0.5 * (100 + 400) * 6.0)
    assert extra["disagreement_rel"] == pytest.approx(0.0, abs=1e-9)


def test_checks_go_on_when_reopened_here_and_start_afresh_in_another_process(gpus, monkeypatch):
    import pickle

    from lightning_green.sensors import nvml as nvml_module

    clock = FakeClock()
    sensor = NvmlSensor(0, clock=clock)
    sensor.open()
    run(sensor, gpus.gpus[0], clock, 3.0, counter_w=100.0)
    sensor.close()
    sensor.open()  # same process: the cross-check carries on
    run(sensor, gpus.gpus[0], clock, 3.0, counter_w=100.0)
    assert sensor.report_extra()["counter_j"] == pytest.approx(600.0)
    clone = pickle.loads(pickle.dumps(sensor))
    monkeypatch.setattr(nvml_module.os, "getpid", lambda: 4_000_000)  # as in a spawned rank
    clone.open()
    assert clone.report_extra()["counter_j"] == 0.0 and clone.report_extra()["cross_check_reads"] == 0
    clone.close()
    sensor.close()
