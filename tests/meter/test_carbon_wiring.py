"""The carbon options through a real meter: a time-varying intensity, pausing, water, cost,
embodied emissions (the arithmetic itself is tested in tests/carbon)."""

from __future__ import annotations

import csv
import time

import pytest
import torch.distributed  # noqa: F401  (imported by start(); here so the timing below is the run's)

from lightning_green import EnergyMeter
from lightning_green.carbon.embodied import EmbodiedModel
from lightning_green.sensors import ConstantPowerSensor

POWER_W = 100.0


def write_series(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "carbon_intensity_g_per_kwh"])
        writer.writerows(rows)
    return path


def sensors():
    return [ConstantPowerSensor(POWER_W, name="fixed", component="gpu", measured=True)]


def test_emissions_follow_the_intensity_of_each_moment(tmp_path):
    now = time.time()
    switch = now + 1.5  # 100 g/kWh until the switch, 400 g/kWh after (1 s rows, no gaps)
    rows = [(round(now - 30 + i, 3), 100 if now - 30 + i < switch else 400) for i in range(90)]
    switch = min(t for t, g in rows if g == 400)  # a row's value holds from its time to the next row's
    series = write_series(tmp_path / "grid.csv", rows)
    meter = EnergyMeter(sensors=sensors(), output_dir=tmp_path / "out", carbon_intensity_series=series, pue=1.5,
                        snapshot_every_s=0, sampling_interval_s=0.05)
    with meter, meter.phase("train"):
        deadline = time.time() + 3.2
        while time.time() < deadline:
            with meter.step(samples=1):
                time.sleep(0.02)
    report = meter.report
    steps = list(csv.DictReader(open(tmp_path / "out" / "steps.csv")))
    # Each step's emissions: its energy x PUE x the intensity of its own time.
    for row in steps:
        g = 100 if float(row["end_s"]) <= switch else 400 if float(row["start_s"]) >= switch else None
        if g is not None:
            assert float(row["emissions_g"]) == pytest.approx(float(row["energy_j"]) * 1.5 / 3.6e6 * g, rel=1e-6)
    # The run: the energy-weighted mean intensity lies strictly between the two values, where
    # the time split puts it (the report's own start and end, constant power).
    assert 100 < report.carbon_intensity_g_per_kwh < 400
    assert report.emissions_kg == pytest.approx(report.facility_energy_kwh * report.carbon_intensity_g_per_kwh / 1000)
    assert sum(float(r["emissions_g"]) for r in steps) / 1000 < report.emissions_kg  # steps are part of the run
    assert report.carbon_intensity_series["path"] == str(series)
    assert report.carbon_intensity_source.startswith("carbon_intensity_series")
    # Against a constant 100 g/kWh the same energy emits less: the series was used.
    assert report.emissions_kg > report.facility_energy_kwh * 100 / 1000 * 1.2


def test_carbon_aware_pausing_waits_for_a_cleaner_grid_and_reports_it(tmp_path):
    now = time.time()
    clean_at = now + 2.0
    rows = [(round(now - 10 + i * 0.5, 3), 500 if now - 10 + i * 0.5 < clean_at else 50) for i in range(60)]
    series = write_series(tmp_path / "grid.csv", rows)
    meter = EnergyMeter(sensors=sensors(), output_dir=tmp_path / "out", carbon_intensity_series=series,
                        pause_above_g_per_kwh=200.0, snapshot_every_s=0)
    with meter, meter.phase("train"):
        began = time.time()
        with meter.step(samples=1):  # the first step waits until the grid is below 200 g/kWh
            pass
        assert time.time() >= clean_at - 0.05 and time.time() - began >= 1.0
    report = meter.report
    assert report.paused_s >= 1.0
    assert report.pause_above_g_per_kwh == 200.0
    assert report.context["carbon_aware_pausing"]["pauses"] == 1


def test_water_cost_and_embodied_are_reported_apart(tmp_path):
    model = EmbodiedModel(gpu_kg=150.0)
    meter = EnergyMeter(sensors=sensors(), output_dir=tmp_path, carbon_intensity_g_per_kwh=300.0, pue=1.2,
                        water_l_per_kwh=0.55, price_per_kwh=0.25, currency="EUR", embodied=model,
                        snapshot_every_s=0)
    with meter, meter.phase("train"):
        time.sleep(0.3)
    r = meter.report
    assert r.water_l == pytest.approx(0.55 * r.energy_kwh)  # WUE is per IT kWh
    assert r.energy_cost == pytest.approx(0.25 * r.energy_kwh * 1.2) and r.currency == "EUR"
    expected = model.estimate(gpu_count=1, cpu_sockets=0, ram_gb=0, hours=r.duration_s / 3600).kg
    assert r.embodied_kg == pytest.approx(expected)
    assert r.emissions_kg == pytest.approx(r.energy_kwh * 1.2 * 300.0 / 1000)  # embodied never added


@pytest.mark.parametrize("kwargs,needle", [
    ({"price_per_kwh": 0.2}, "currency"),
    ({"currency": "EUR"}, "price_per_kwh"),
    ({"pause_above_g_per_kwh": 100.0}, "carbon_intensity_series"),
    ({"water_l_per_kwh": -1}, "water_l_per_kwh"),
    ({"carbon_intensity_series": "/no/such/grid.csv"}, "carbon_intensity_series"),
])
def test_bad_carbon_options_fail_at_construction(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        EnergyMeter(sensors=sensors(), **kwargs)
