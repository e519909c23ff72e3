"""RamEstimateSensor: the per-DIMM model at every size, read from a fake /proc/meminfo."""

from __future__ import annotations

import sys

import pytest

from lightning_green.sensors import RamEstimateSensor
from lightning_green.sensors import ram as ram_module

KB_PER_GB = 1024 * 1024


def meminfo(tmp_path, gb: float):
    """A /proc/meminfo with MemTotal = ``gb`` GB (2**30 bytes), as the kernel writes it (kB)."""
    path = tmp_path / "meminfo"
    path.write_text(
        f"MemTotal:       {int(gb * KB_PER_GB)} kB\n"
        f"MemFree:        {int(gb * KB_PER_GB / 3)} kB\n"
        f"MemAvailable:   {int(gb * KB_PER_GB / 2)} kB\n"
    )
    return path


@pytest.fixture
def no_psutil(monkeypatch):
    """psutil cannot be imported: the file must be read for real."""
    monkeypatch.setitem(sys.modules, "psutil", None)


# size -> (DIMMs, watts); each DIMM of c GB draws 2.5 W + 0.04 W/GB * c
SIZES = {
    8: (2, 2 * 2.5 + 0.04 * 8),  # 5.32 W
    24: (2, 2 * 2.5 + 0.04 * 24),  # 5.96 W
    256: (8, 8 * 2.5 + 0.04 * 256),  # 30.24 W
    1024: (16, 16 * 2.5 + 0.04 * 1024),  # 80.96 W
    2048: (32, 32 * 2.5 + 0.04 * 2048),  # 161.92 W
}


@pytest.mark.parametrize("gb", sorted(SIZES))
def test_dimm_model_at_every_size_through_a_fake_meminfo(tmp_path, no_psutil, gb):
    dimms, watts = SIZES[gb]
    sensor = RamEstimateSensor(meminfo_path=meminfo(tmp_path, gb), virtual=False)
    assert sensor.gb == pytest.approx(gb)
    assert sensor.dimms == dimms
    assert sensor.power_w() == pytest.approx(watts)
    record = sensor.describe()
    assert record["dimms"] == dimms and record["device"] == f"{gb:.1f} GB"
    assert record["w_per_gb"] == pytest.approx(watts / gb)
    assert f"{dimms} DIMMs" in sensor.method and "per-DIMM model" in sensor.method


def test_power_grows_with_memory_but_per_gb_falls(tmp_path, no_psutil):
    sizes = sorted(SIZES)
    sensors = []
    for gb in sizes:
        (tmp_path / str(gb)).mkdir()
        sensors.append(RamEstimateSensor(meminfo_path=meminfo(tmp_path / str(gb), gb), virtual=False))
    watts = [s.power_w() for s in sensors]
    per_gb = [s.w_per_gb for s in sensors]
    assert watts == sorted(watts) and len(set(watts)) == len(watts)
    assert per_gb == sorted(per_gb, reverse=True)
    # the flat Green Algorithms figure charges a 1 TB node 381 W; the DIMM model ~81 W
    assert sensors[sizes.index(1024)].power_w() < 0.3725 * 1024 / 4


def test_memtotal_a_little_under_the_installed_size_stays_in_its_tier(tmp_path, no_psutil):
    # the kernel shows a few % less than installed: 1 TB -> ~1007 GB, 2 TB -> ~2015 GB, 32 GB -> 31.3 GB
    for shown, installed in ((1007.0, 1024), (2015.0, 2048), (31.3, 32), (7.7, 8), (23.5, 24)):
        path = meminfo(tmp_path, shown)
        assert RamEstimateSensor(meminfo_path=path, virtual=False).dimms == ram_module.estimated_dimms(installed)


def test_meminfo_is_read_without_psutil_and_a_missing_memtotal_is_an_error(tmp_path, no_psutil):
    assert ram_module.total_memory_gb(meminfo(tmp_path, 12.5)) == pytest.approx(12.5)
    bad = tmp_path / "bad"
    bad.write_text("MemFree: 1 kB\n")
    with pytest.raises(RuntimeError, match="no MemTotal"):
        RamEstimateSensor(meminfo_path=bad)


def test_a_vm_is_charged_its_share_of_a_host_with_32_gb_dimms(tmp_path, no_psutil):
    path = meminfo(tmp_path, 23.5)
    guest = RamEstimateSensor(meminfo_path=path, virtual=True)
    assert guest.power_w() == pytest.approx(23.5 * (2.5 / 32 + 0.04))  # 2.78 W, not 5.94 W
    assert guest.dimms is None and guest.describe()["virtual"] is True
    assert "VM" in guest.method
    # a VM as big as its host is never charged more than the bare-metal figure
    big = RamEstimateSensor(meminfo_path=meminfo(tmp_path, 1024), virtual=True)
    assert big.power_w() == pytest.approx(SIZES[1024][1])


def test_vm_flag_read_from_cpuinfo(tmp_path, no_psutil):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Some CPU\nflags\t\t: fpu vme hypervisor sse\n")
    sensor = RamEstimateSensor(meminfo_path=meminfo(tmp_path, 64), cpuinfo_path=cpuinfo)
    assert sensor.virtual is True and sensor.power_w() == pytest.approx(64 * (2.5 / 32 + 0.04))
    cpuinfo.write_text("model name\t: Some CPU\nflags\t\t: fpu vme sse\n")
    sensor = RamEstimateSensor(meminfo_path=meminfo(tmp_path, 64), cpuinfo_path=cpuinfo)
    assert sensor.virtual is False and sensor.power_w() == pytest.approx(4 * 2.5 + 0.04 * 64)


def test_overrides_flat_w_per_gb_size_and_dimm_count(tmp_path):
    flat = RamEstimateSensor(w_per_gb=0.5, gb=16)
    assert flat.power_w() == pytest.approx(8.0)
    assert flat.method == "estimated: 0.5 W/GB x 16.0 GB" and flat.dimms is None
    green = RamEstimateSensor(w_per_gb=0.3725, gb=100)
    assert green.power_w() == pytest.approx(37.25) and "Green Algorithms" in green.method
    known = RamEstimateSensor(gb=512, dimms=32)  # the user read dmidecode: 32 x 16 GB
    assert known.power_w() == pytest.approx(32 * 2.5 + 0.04 * 512)
    assert "32 DIMMs (given)" in known.method
    assert (known.component, known.measured, known.scope, known.kind) == ("ram", False, "host", "power")


def test_default_size_is_the_machines_total_memory():
    psutil = pytest.importorskip("psutil")
    sensor = RamEstimateSensor(virtual=False)
    gb = psutil.virtual_memory().total / 2**30
    assert sensor.gb == pytest.approx(gb)
    assert sensor.power_w() == pytest.approx(ram_module.estimated_dimms(gb) * 2.5 + 0.04 * gb)


def test_uncertainty_is_stated():
    record = RamEstimateSensor(gb=64, virtual=False).describe()
    assert record["uncertainty_rel"] == 0.5 and record["uncertainty_w"] == 0.0
    assert "per-DIMM model" in record["uncertainty_source"]
    assert RamEstimateSensor(gb=64, uncertainty_rel=0.3).describe()["uncertainty_rel"] == 0.3


@pytest.mark.parametrize(("kwargs", "word"), [({"w_per_gb": -1}, "w_per_gb"), ({"gb": float("nan")}, "gb"),
                                               ({"gb": "8"}, "gb"), ({"gb": 8, "dimms": 0}, "dimms"),
                                               ({"gb": 8, "dimms": 2.5}, "dimms"),
                                               ({"gb": 8, "virtual": "yes"}, "virtual")])
def test_ram_arguments_are_checked(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RamEstimateSensor(**kwargs)
