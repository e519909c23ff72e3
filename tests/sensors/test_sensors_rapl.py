"""RaplSensor against a fake powercap tree laid out like /sys/class/powercap."""

from __future__ import annotations

import os
import random
import shutil
import stat
import warnings
from pathlib import Path

import pytest
from tests.helpers.sensor_fakes import set_uj, zone

from lightning_green.sensors import SensorUnavailable, rapl
from lightning_green.sensors.rapl import ROOT_ONLY_REASON, RaplSensor


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two packages with core/uncore sub-zones, a DRAM sub-zone, psys and an mmio duplicate."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type itself: no zone
    (root / "intel-rapl" / "enabled").write_text("1\n")
    zone(root, "intel-rapl:0", "package-0", 10_000_000)
    zone(root, "intel-rapl:0:0", "core", 7_000_000)
    zone(root, "intel-rapl:0:1", "uncore", 1_000_000)
    zone(root, "intel-rapl:0:2", "dram", 3_000_000)
    zone(root, "intel-rapl:1", "package-1", 20_000_000)
    zone(root, "intel-rapl:1:0", "core", 15_000_000)
    zone(root, "intel-rapl:2", "psys", 90_000_000)  # the whole platform: contains the packages
    zone(root, "intel-rapl-mmio:0", "package-0", 10_000_000)  # duplicate of intel-rapl:0
    return root


def test_sums_top_level_packages_only(tree):
    sensor = RaplSensor(tree)
    assert [z.label for z in sensor.zones] == ["intel-rapl:0", "intel-rapl:1"]
    assert sensor.energy_j() == pytest.approx(30.0)
    set_uj(tree, "intel-rapl:0", 12_500_000)
    set_uj(tree, "intel-rapl:0:0", 9_000_000)  # sub-zone moves too: must not be added
    set_uj(tree, "intel-rapl:2", 99_000_000)
    assert sensor.energy_j() == pytest.approx(32.5)
    record = sensor.describe()
    assert (record["component"], record["measured"], record["scope"], record["kind"]) == ("cpu", True, "host", "energy")
    assert "package-0" in record["method"] and "core" not in record["method"]
    assert record["zones"] == ["intel-rapl:0", "intel-rapl:1"]


def test_dram_added_only_when_asked(tree):
    assert RaplSensor(tree, include_dram=True).energy_j() == pytest.approx(33.0)
    dram = RaplSensor(tree, dram_only=True)
    assert (dram.component, dram.name) == ("ram", "rapl-dram")
    assert dram.energy_j() == pytest.approx(3.0)


def test_wrap_around_adds_the_range(tmp_path):
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "package-0", 900_000, range_uj=1_000_000)
    zone(root, "intel-rapl:1", "package-1", 500_000, range_uj=2_000_000)
    sensor = RaplSensor(root)
    first = sensor.energy_j()
    set_uj(root, "intel-rapl:0", 100_000)  # wrapped: +200_000 uJ
    set_uj(root, "intel-rapl:1", 600_000)  # +100_000 uJ
    assert sensor.energy_j() - first == pytest.approx(0.3)
    set_uj(root, "intel-rapl:0", 50_000)  # wrapped again: +950_000 uJ
    assert sensor.energy_j() - first == pytest.approx(1.25)


def test_random_walk_with_wraps_is_exact_and_non_decreasing(tmp_path):
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "package-0", 0, range_uj=65_532_610_987)  # AMD EPYC 7543
    sensor = RaplSensor(root)
    rng = random.Random(7)
    raw, true_uj, last = 0, 0, sensor.energy_j()
    for _ in range(200):
        step = rng.randrange(0, 30_000_000_000)  # < one range per read: detectable
        true_uj += step
        raw = (raw + step) % 65_532_610_987
        set_uj(root, "intel-rapl:0", raw)
        value = sensor.energy_j()
        assert value >= last
        last = value
    assert last == pytest.approx(true_uj / 1e6)  # the counter started at 0


def test_root_only_energy_uj_is_unavailable_with_reason(tree, monkeypatch):
    # Since Linux 5.10 energy_uj is mode 0400, owner root. Tests run as root, and root
    # reads anything, so emulate an unprivileged reader: honour the file's mode bits.
    real_read = rapl._read_text

    def read_as_user(path: Path) -> str:
        if not os.stat(path).st_mode & stat.S_IROTH:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    for entry in tree.iterdir():
        for path in entry.iterdir():
            path.chmod(0o444)
    (tree / "intel-rapl:1" / "energy_uj").chmod(0o400)
    monkeypatch.setattr(rapl, "_read_text", read_as_user)
    with pytest.raises(SensorUnavailable) as info:
        RaplSensor(tree)
    assert str(info.value) == ROOT_ONLY_REASON == "energy_uj readable only by root (Linux >= 5.10, CVE-2020-8694)"


def test_zone_vanishing_mid_run_raises_clear_error(tree):
    sensor = RaplSensor(tree)
    sensor.energy_j()
    shutil.rmtree(tree / "intel-rapl:1")  # e.g. intel_rapl unloaded
    with pytest.raises(RuntimeError, match=r"intel-rapl:1 \(package-1\).*energy_uj"):
        sensor.energy_j()


def test_garbage_in_energy_uj_raises(tree):
    sensor = RaplSensor(tree)
    (tree / "intel-rapl:0" / "energy_uj").write_text("not a number\n")
    with pytest.raises(RuntimeError, match="intel-rapl:0"):
        sensor.energy_j()


def test_missing_tree_and_missing_packages(tmp_path):
    with pytest.raises(SensorUnavailable, match="no powercap tree at"):
        RaplSensor(tmp_path / "absent")
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "psys", 1)
    zone(root, "intel-rapl:0:0", "core", 1)
    zone(root, "intel-rapl-mmio:0", "package-0", 1)
    with pytest.raises(SensorUnavailable, match="no RAPL package zone"):
        RaplSensor(root)
    with pytest.raises(SensorUnavailable, match="no RAPL dram zone"):
        RaplSensor(root, dram_only=True)


def test_warns_once_when_reads_are_further_apart_than_a_wrap(tmp_path):
    root = tmp_path / "powercap"
    zone(root, "intel-rapl:0", "package-0", 0, range_uj=50_000_000, max_power_uw=100_000_000)
    now = [0.0]
    sensor = RaplSensor(root, clock=lambda: now[0])
    assert sensor.wrap_period_s == pytest.approx(0.5)  # 50 J at 100 W
    sensor.energy_j()
    now[0] = 0.4
    sensor.energy_j()  # within a wrap period: silent
    now[0] = 2.0
    with pytest.warns(RuntimeWarning, match=r"1.6 s between reads exceeds the 0.5 s a counter needs to wrap"):
        sensor.energy_j()
    now[0] = 9.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sensor.energy_j()  # once only
