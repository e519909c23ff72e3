"""The Sensor contract's uncertainty, update period, device id and report_extra; each built-in
sensor states its own uncertainty, and it reaches footprint.json through a real Trainer."""

from __future__ import annotations

import json

import pytest
from tests.helpers.reliability_kit import make_trainer
from tests.helpers.sensor_fakes import zone

from lightning_green.sensors import ConstantPowerSensor, CpuEstimateSensor, EnergySensor, PowerSensor, RaplSensor


class WallMeter(PowerSensor):
    name, component, measured = "wall", "node", True

    def power_w(self) -> float:
        return 100.0


class StatedMeter(WallMeter):
    uncertainty_rel, uncertainty_w, uncertainty_source = 0.02, 1.0, "meter datasheet: +-2 % or +-1 W"


class NoInitMeter(EnergySensor):
    """A user sensor that forgets super().__init__()."""

    name, component, measured = "forgetful", "node", False

    def __init__(self) -> None:
        pass

    def energy_j(self) -> float:
        return 0.0


def test_a_sensor_that_states_nothing_gets_a_default_that_says_so():
    measured = WallMeter().describe()
    assert (measured["uncertainty_rel"], measured["uncertainty_w"]) == (0.10, 0.0)
    assert "not stated" in measured["uncertainty_source"] and "10 %" in measured["uncertainty_source"]
    estimated = ConstantPowerSensor(5.0).describe()
    assert estimated["uncertainty_rel"] == 0.50 and "not stated" in estimated["uncertainty_source"]
    assert ConstantPowerSensor(5.0, measured=True).describe()["uncertainty_rel"] == 0.10
    skipped = NoInitMeter().describe()
    assert skipped["uncertainty_rel"] == 0.50 and "not stated" in skipped["uncertainty_source"]
    assert (skipped["update_period_s"], skipped["device_id"]) == (None, None)


def test_stated_uncertainty_by_class_or_argument():
    record = StatedMeter().describe()
    assert (record["uncertainty_rel"], record["uncertainty_w"]) == (0.02, 1.0)
    assert record["uncertainty_source"] == "meter datasheet: +-2 % or +-1 W"
    given = ConstantPowerSensor(7.0, uncertainty_rel=0.2, uncertainty_source="nameplate +-20 %",
                                update_period_s=0.5, device_id="PDU-3/outlet-7").describe()
    assert (given["uncertainty_rel"], given["uncertainty_w"]) == (0.2, 0.0)
    assert given["uncertainty_source"] == "nameplate +-20 %"
    assert (given["update_period_s"], given["device_id"]) == (0.5, "PDU-3/outlet-7")
    only_floor = ConstantPowerSensor(7.0, uncertainty_w=3.0).describe()
    assert (only_floor["uncertainty_rel"], only_floor["uncertainty_w"]) == (0.0, 3.0)
    assert only_floor["uncertainty_source"] == "stated without a source"


def test_band_is_the_larger_of_relative_and_floor():
    sensor = StatedMeter()  # 2 % or 1 W
    assert sensor.uncertainty_j(10_000.0, 60.0) == pytest.approx(200.0)  # 2 % of 10 kJ > 60 J
    assert sensor.uncertainty_j(1_000.0, 60.0) == pytest.approx(60.0)  # 1 W x 60 s > 20 J
    assert NoInitMeter().uncertainty_j(100.0, 10.0) == pytest.approx(50.0)


def test_report_extra_is_empty_unless_a_sensor_has_something_to_say():
    assert WallMeter().report_extra() == {}


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"uncertainty_rel": 1.5}, "uncertainty_rel"), ({"uncertainty_rel": -0.1}, "uncertainty_rel"),
    ({"uncertainty_rel": True}, "uncertainty_rel"), ({"uncertainty_w": float("inf")}, "uncertainty_w"),
    ({"update_period_s": 0}, "update_period_s"), ({"device_id": ""}, "device_id"),
    ({"uncertainty_source": 5}, "uncertainty_source"),
])
def test_bad_values_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ConstantPowerSensor(1.0, **kwargs)


def test_builtin_estimates_and_rapl_state_their_bands(tmp_path):
    cpu = CpuEstimateSensor(tdp_w=100, cpu_times=lambda: (0.0, 0.0)).describe()
    assert cpu["uncertainty_rel"] == 0.5 and "TDP" in cpu["uncertainty_source"]
    assert cpu["update_period_s"] == pytest.approx(0.01)
    zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    zone(tmp_path, "intel-rapl:0:2", "dram", 2_000)
    package = RaplSensor(tmp_path)
    assert package.uncertainty_rel == 0.05 and "RAPL in Action" in package.uncertainty_source
    assert package.describe()["update_period_s"] == 0.001
    dram = RaplSensor(tmp_path, dram_only=True)
    assert dram.uncertainty_rel == 0.10 and "MEMSYS 2016" in dram.uncertainty_source
    assert package.report_extra() == {"wraps": {"intel-rapl:0": 0}}


def test_stated_uncertainty_reaches_footprint_json_through_a_real_trainer(tmp_path):
    from lightning.pytorch.demos.boring_classes import BoringModel

    from lightning_green import EnergyCallback

    sensors = [StatedMeter(), ConstantPowerSensor(3.0, name="nameplate", component="cpu")]
    out = tmp_path / "out"
    cb = EnergyCallback(sensors=sensors, sampling_interval_s=0.02, output_dir=out, carbon_intensity_g_per_kwh=300.0)
    make_trainer(tmp_path, [cb], max_epochs=1, limit_train_batches=4, limit_val_batches=0).fit(BoringModel())
    entries = {s["name"]: s for s in json.loads((out / "footprint.json").read_text())["sensors"]}
    assert entries["wall"]["uncertainty_rel"] == 0.02 and entries["wall"]["uncertainty_w"] == 1.0
    assert entries["wall"]["uncertainty_source"] == "meter datasheet: +-2 % or +-1 W"
    assert entries["nameplate"]["uncertainty_rel"] == 0.5
    assert "not stated" in entries["nameplate"]["uncertainty_source"]
