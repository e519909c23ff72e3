"""Uncertainty bands: the footprint's own ranges, else the sensors' stated uncertainty, else none;
in the table, the CSV and as error bars on the plots."""

from __future__ import annotations

import csv

import pytest
from matplotlib.container import ErrorbarContainer

from lightning_green.compare import compare, load_runs, write_table
from lightning_green.compare.plots import figure_energy_by_component, figure_pareto
from lightning_green.compare.uncertainty import run_bands
from tests.helpers.compare_fixtures import GPU_MEASURED, footprint, write_run

GPU = dict(GPU_MEASURED, uncertainty_rel=0.05, uncertainty_w=5.0, uncertainty_source="NVML +-5 % / +-5 W")
CPU = {"name": "cpu", "component": "cpu", "measured": False, "method": "estimated: TDP x load", "uncertainty_rel": 0.4}


def _write(root, name, start_min=0, **kwargs):
    defaults = dict(overrides=[f"name={name}"], gpu_kwh=0.004, cpu_kwh=0.001, acc=0.8, start_min=start_min, duration_s=60)
    return write_run(root / name, footprint(**{**defaults, **kwargs}))


def test_band_from_the_sensors_stated_uncertainty(tmp_path):
    data = footprint(overrides=[], gpu_kwh=0.004, cpu_kwh=0.001, acc=0.8, start_min=0, duration_s=60)
    data["sensors"] = [GPU, CPU]
    [run] = load_runs([write_run(tmp_path / "a", data)])
    bands = run_bands(run)
    # gpu: 14,400 J over 60 s: max(5 % = 720 J, 5 W x 60 s = 300 J) = 720 J = 0.0002 kWh; cpu: 40 % of 0.001 kWh
    assert bands.source == "sensors"
    assert bands.components["gpu"] == pytest.approx((0.0038, 0.0042))
    assert bands.components["cpu"] == pytest.approx((0.0006, 0.0014))
    assert bands.energy_kwh == pytest.approx((0.0044, 0.0056))  # summed: estimates' errors do not cancel
    assert bands.emissions_kg == pytest.approx((0.0044 * 0.4, 0.0056 * 0.4))  # scaled by emissions / energy


def test_the_watt_floor_wins_for_small_energies(tmp_path):
    data = footprint(overrides=[], gpu_kwh=0.0001, cpu_kwh=0.0, acc=0.8, start_min=0, duration_s=60)
    data["sensors"] = [GPU]
    data["energy_kwh_by_component"] = {"gpu": 0.0001}
    [run] = load_runs([write_run(tmp_path / "a", data)])
    half = 300.0 / 3.6e6  # 5 W x 60 s, more than 5 % of 360 J
    assert run_bands(run).components["gpu"] == pytest.approx((0.0001 - half, 0.0001 + half))


def test_footprint_ranges_win_and_old_files_have_none(tmp_path):
    root = tmp_path / "runs"
    _write(root, "new", fields={"energy_kwh_range": [0.0045, 0.0058], "emissions_kg_range": [0.0018, 0.0023],
                                "energy_kwh_by_component_range": {"gpu": [0.0039, 0.0041], "cpu": [0.0006, 0.0017]},
                                "sensors": [GPU, CPU]})
    _write(root, "old", start_min=5)  # no ranges, sensors without uncertainty fields
    bands = {r.name: run_bands(r) for r in load_runs([root])}
    assert bands["new"].source == "footprint" and bands["new"].energy_kwh == (0.0045, 0.0058)
    assert bands["new"].components["cpu"] == (0.0006, 0.0017) and bands["new"].emissions_kg == (0.0018, 0.0023)
    assert bands["old"].source == "" and bands["old"].energy_kwh is None and bands["old"].components == {}


def test_table_and_csv_carry_the_bands(tmp_path):
    root = tmp_path / "runs"
    _write(root, "a", fields={"sensors": [GPU, CPU]})
    _write(root, "b", start_min=5)
    csv_path, md_path = write_table(compare(load_runs([root])), tmp_path / "out")
    with open(csv_path, newline="") as handle:
        rows = {r["run"]: r for r in csv.DictReader(handle)}
    assert float(rows["a"]["energy_kwh_low"]) == pytest.approx(0.0044) and float(rows["a"]["cpu_kwh_high"]) == pytest.approx(0.0014)
    assert rows["b"]["energy_kwh_low"] == "" and rows["b"]["gpu_kwh_low"] == ""
    md = md_path.read_text()
    assert "| a | a | completed | 60.0 | 5 (4.4-5.6) | 4 (3.8-4.2) | ~1 (0.6-1.4) |" in md
    assert "| b | b | completed | 60.0 | 5 | 4 | ~1 |" in md
    assert "low-high band from each sensor's stated uncertainty (footprints written before sensors stated one have none)" in md


def test_plots_draw_error_bars_only_where_there_is_a_band(tmp_path):
    root = tmp_path / "runs"
    _write(root, "a", fields={"sensors": [GPU, CPU]})
    _write(root, "b", start_min=5, acc=0.7, gpu_kwh=0.002)
    comparison = compare(load_runs([root]))
    bars = [c for c in figure_energy_by_component(comparison).axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # run a: gpu and cpu; run b: none
    pareto = [c for c in figure_pareto(comparison).axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert [c.has_xerr for c in pareto] == [True, False]
    x_low, x_high = pareto[0].lines[2][0].get_segments()[0][:, 0]
    assert (x_low, x_high) == pytest.approx((4.4, 5.6))  # Wh
    plain = compare(load_runs([root / "b"]))
    assert not [c for c in figure_energy_by_component(plain).axes[0].containers if isinstance(c, ErrorbarContainer)]
