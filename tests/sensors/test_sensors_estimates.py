"""CpuEstimateSensor (TDP x measured load); the RAM model is in test_sensors_ram.py."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from lightning_green.sensors import CpuEstimateSensor
from lightning_green.sensors import cpu as cpu_module
from lightning_green.sensors.cpu import read_cpuinfo


def scripted(*samples):
    """A cpu_times reader returning cumulative (busy_s, total_s) pairs in order."""
    it = iter(samples)
    return lambda: next(it)


def test_power_follows_scripted_load_linearly():
    sensor = CpuEstimateSensor(tdp_w=100, cpu_times=scripted((10, 40), (11, 42), (13, 44), (13, 48), (13, 48)))
    sensor.open()
    assert sensor.power_w() == pytest.approx(100 * (0.1 + 0.9 * 0.5))  # 1 of 2 s busy
    assert sensor.power_w() == pytest.approx(100.0)  # fully busy
    assert sensor.power_w() == pytest.approx(10.0)  # idle: the 10 % floor
    assert sensor.power_w() == pytest.approx(10.0)  # counters did not tick: last load kept
    assert sensor.last_load == 0.0
    assert sensor.measured is False and sensor.component == "cpu" and sensor.scope == "host"
    assert sensor.method == "estimated: 100 W (tdp_w) x (0.1 + 0.9 x load)"


def test_the_estimate_is_a_counter_that_integrates_the_model_exactly_whatever_the_read_period():
    """As an energy counter, each read adds the model's power over the interval since the
    previous read: exact for the linear model, so the sampler reads it once a second."""
    now = [100.0]
    sensor = CpuEstimateSensor(tdp_w=100, cpu_times=scripted((10, 40), (11, 42), (13, 44), (13, 48)),
                               clock=lambda: now[0])
    assert sensor.kind == "energy" and sensor.read_interval_s == 1.0
    sensor.open()
    now[0] += 2.0
    assert sensor.energy_j() == pytest.approx(2.0 * 100 * (0.1 + 0.9 * 0.5))
    now[0] += 1.0
    assert sensor.energy_j() == pytest.approx(110.0 + 1.0 * 100.0)  # fully busy for 1 s
    now[0] += 4.0
    assert sensor.energy_j() == pytest.approx(210.0 + 4.0 * 10.0)  # idle floor for 4 s


def test_one_busy_core_of_two_is_charged_half_not_a_cubic_sliver():
    # codecarbon's 0.1 + 0.9 * load**3 would give 21 % here; the linear model gives 55 %.
    sensor = CpuEstimateSensor(tdp_w=8, cpu_times=scripted((0, 0), (1.0, 2.0)))
    sensor.open()
    assert sensor.power_w() == pytest.approx(8 * 0.55)


def test_first_reading_without_open_uses_since_boot_average():
    sensor = CpuEstimateSensor(tdp_w=10, idle_fraction=0.0, cpu_times=scripted((30, 120)))
    assert sensor.power_w() == pytest.approx(2.5)


def test_unknown_model_is_charged_per_thread():
    sensor = CpuEstimateSensor(cpu_model="Mystery CPU 9000", logical_cpus=6, sockets=1, virtual=False)
    assert sensor.max_power_w == pytest.approx(24.0)
    assert "4 W/thread x 6 threads" in sensor.method and "unknown CPU model" in sensor.method


def test_known_model_uses_carbon_tdp_times_sockets_on_bare_metal():
    from lightning_green.carbon.intensity import cpu_tdp_w

    model = "AMD EPYC 7543 32-Core Processor"
    tdp = cpu_tdp_w(model)
    assert tdp == pytest.approx(225.0)  # codecarbon's cpu_power.csv
    sensor = CpuEstimateSensor(cpu_model=model, logical_cpus=128, sockets=2, virtual=False)
    assert sensor.max_power_w == pytest.approx(450.0)
    assert "225 W TDP x 2 socket(s)" in sensor.method and "codecarbon" in sensor.method


def test_vm_slice_is_capped_per_thread_not_whole_tdp():
    sensor = CpuEstimateSensor(cpu_model="AMD EPYC 7543 32-Core Processor", logical_cpus=2, sockets=1, virtual=True)
    assert sensor.max_power_w == pytest.approx(8.0)
    assert "VM slice" in sensor.method and "225 W TDP" in sensor.method


def test_tdp_lookup_goes_through_carbon(monkeypatch):
    import lightning_green.carbon.intensity as carbon

    seen = []
    monkeypatch.setattr(carbon, "cpu_tdp_w", lambda model: seen.append(model) or 77.0)
    sensor = CpuEstimateSensor(cpu_model="Some CPU", logical_cpus=4, sockets=1, virtual=False)
    assert seen == ["Some CPU"] and sensor.max_power_w == pytest.approx(77.0)


def test_cpuinfo_parsing(tmp_path):
    text = "".join(
        f"processor\t: {i}\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\nphysical id\t: {i // 2}\n"
        f"flags\t\t: fpu sse2 hypervisor avx\n\n"
        for i in range(4)
    )
    (tmp_path / "cpuinfo").write_text(text)
    info = read_cpuinfo(tmp_path / "cpuinfo")
    assert info == {"model": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "sockets": 2, "virtual": True}
    assert read_cpuinfo(tmp_path / "absent") == {"model": None, "sockets": 1, "virtual": False}


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"tdp_w": -1}, "tdp_w"), ({"tdp_w": "85"}, "tdp_w"), ({"idle_fraction": 1.5}, "idle_fraction"),
     ({"w_per_thread": -4}, "w_per_thread")],
)
def test_cpu_arguments_are_checked(kwargs, word):
    with pytest.raises(ValueError, match=word):
        CpuEstimateSensor(**kwargs)


def test_real_busy_thread_is_seen_by_the_load_measurement():
    """A spinning thread's CPU time must show up in the measured whole-machine load.

    Robust on a noisy 2-core machine: other processes only add load, so the measured busy
    fraction must be at least what this process alone burned (minus tick slack).
    """
    sensor = CpuEstimateSensor(tdp_w=100)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    sensor.open()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    worker = threading.Thread(target=spin)
    worker.start()
    time.sleep(0.5)
    stop.set()
    worker.join()
    power_w = sensor.power_w()
    own_fraction = (time.process_time() - cpu0) / ((time.perf_counter() - wall0) * psutil.cpu_count())
    assert own_fraction > 0.05  # the thread really ran, even on a busy machine
    floor = 0.85 * own_fraction - 0.02  # 10 ms accounting ticks over a 0.5 s window
    assert sensor.last_load >= floor
    assert power_w >= 100 * (0.1 + 0.9 * floor)


def test_system_cpu_times_is_cumulative():
    busy0, total0 = cpu_module.system_cpu_times()
    busy1, total1 = cpu_module.system_cpu_times()
    assert 0 <= busy0 <= total0 and busy1 >= busy0 and total1 >= total0


def test_proc_stat_reader_rereads_one_descriptor_and_agrees_with_psutil(tmp_path):
    from lightning_green.sensors.cpu import ProcStatTimes

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 20 800 10 3 2 7 0 0\ncpu0 50 0 10 400 5 1 1 0 0 0\nintr 1 2 3\n")
    reader = ProcStatTimes(stat)
    tick = reader._tick_s
    busy, total = reader()
    assert busy == pytest.approx((100 + 5 + 20 + 3 + 2) * tick)  # steal (7) is neither busy nor idle
    assert total == pytest.approx((130 + 800 + 10) * tick)
    with open(stat, "r+") as f:  # rewritten in place: the same descriptor sees the new counters
        f.write("cpu  200 5 20 900 10 3 2 7 0 0\n")
    busy2, total2 = reader()
    assert (busy2 - busy, total2 - total) == (pytest.approx(100 * tick), pytest.approx(200 * tick))
    sensor = CpuEstimateSensor(tdp_w=10, cpu_times=reader)
    assert reader._fd is not None
    sensor.close()  # the meter closes sensors at the end of a run: the descriptor goes with it
    assert reader._fd is None
    assert reader()[0] == pytest.approx(busy2)  # and a sensor reused for another run reopens it
    stat.write_text("intr 1 2 3\n")
    with pytest.raises(OSError, match="unexpected first line"):
        reader()
    reader.close()
    assert not ProcStatTimes.available(tmp_path / "missing")


def test_proc_stat_reader_leaks_no_descriptor_and_reopens_after_pickling(tmp_path):
    import os
    import pickle

    from lightning_green.sensors.cpu import ProcStatTimes

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 20 800 10 3 2 7 0 0\n")
    open_fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = open_fds()
    assert ProcStatTimes.available(stat)
    assert open_fds() == before  # the probe closes what it opened
    reader = ProcStatTimes(stat)
    first = reader()
    copy = pickle.loads(pickle.dumps(reader))  # as a sensor travels to a ddp_spawn rank
    assert copy._fd is None  # a descriptor number means nothing in another process
    assert copy() == first and copy._fd is not None
    copy.close()
    reader.close()
    assert open_fds() == before


@pytest.mark.skipif(not __import__("os").path.exists("/proc/stat"), reason="needs Linux /proc/stat")
def test_default_cpu_times_read_proc_stat_through_one_descriptor_like_psutil():
    from lightning_green.sensors.cpu import ProcStatTimes

    sensor = CpuEstimateSensor()
    assert isinstance(sensor._cpu_times, ProcStatTimes)
    sensor.open()
    busy, total = sensor._cpu_times()
    t = psutil.cpu_times()
    ref_busy = t.user + t.nice + t.system + t.irq + t.softirq
    assert busy == pytest.approx(ref_busy, abs=0.5) and total == pytest.approx(ref_busy + t.idle + t.iowait, abs=1.0)
    sensor.close()
    assert sensor._cpu_times._fd is None
