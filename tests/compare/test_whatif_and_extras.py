"""Embodied emissions beside (never added to) operational ones, water and cost columns, the
what-if regions and the cleanest-window hook."""

from __future__ import annotations

import csv

import pytest

from lightning_green.carbon.intensity import resolve_intensity
from lightning_green.compare import compare, load_runs, main, write_table
from lightning_green.compare import whatif
from tests.helpers.compare_fixtures import footprint, write_run


def _runs(root, **fields_a):
    write_run(root / "a", footprint(overrides=["precision=32"], gpu_kwh=0.004, cpu_kwh=0.001, acc=0.8, start_min=0,
                                    duration_s=60, pue=1.2, fields=fields_a))
    write_run(root / "b", footprint(overrides=["precision=bf16"], gpu_kwh=0.002, cpu_kwh=0.001, acc=0.8, start_min=5,
                                    duration_s=60, pue=1.2))
    return load_runs([root])


def test_embodied_water_cost_columns_when_present(tmp_path):
    runs = _runs(tmp_path / "runs", embodied_kg=0.0123, embodied={"method": "amortised"}, water_l=0.011,
                 water_l_per_kwh=1.8, energy_cost=0.0015, price_per_kwh=0.25, currency="EUR")
    comparison = compare(runs)
    rows = {r["run"]: r for r in comparison.rows}
    assert rows["a"]["embodied_kg"] == 0.0123 and rows["b"]["embodied_kg"] is None
    assert rows["a"]["emissions_kg"] == pytest.approx(0.005 * 1.2 * 0.4)  # embodied never added
    assert (rows["a"]["water_l"], rows["a"]["energy_cost"], rows["a"]["currency"]) == (0.011, 0.0015, "EUR")
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "embodied CO2 (g, not included) | water (L) | electricity cost |" in md
    assert "| 12.3 | 0.011 | 0.0015 EUR |" in md and "never added to it" in md
    plain = compare(_runs(tmp_path / "plain"))
    assert not {"embodied_kg", "water_l", "energy_cost"} & set(plain.columns)


def test_what_if_regions_from_codecarbon_data(tmp_path):
    runs = _runs(tmp_path / "runs")
    comparison = compare(runs, regions=["FRA", "gcp:europe-west9"])
    fra = resolve_intensity(country_iso_code="FRA").g_per_kwh
    gcp = resolve_intensity(cloud_provider="gcp", cloud_region="europe-west9").g_per_kwh
    row = {r["run"]: r for r in comparison.rows}["a"]
    assert row["emissions_kg_if_FRA"] == pytest.approx(0.005 * 1.2 * fra / 1000)  # facility energy x intensity
    assert row["emissions_kg_if_gcp:europe-west9"] == pytest.approx(0.005 * 1.2 * gcp / 1000)
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "## What if: the same runs on other grids" in md and f"FRA {fra:.4g} g/kWh" in md
    assert "emissions_kg_if_USA" in compare(runs).columns  # the default regions: FRA, DEU, USA, IND
    assert not [c for c in compare(runs, regions=()).columns if c.startswith("emissions_kg_if_")]
    with pytest.raises(ValueError, match=r"regions must be ISO-3 country codes .* got 'FR'"):
        compare(runs, regions=["FR"])


def test_regions_option_of_the_command(tmp_path, capsys):
    _runs(tmp_path / "runs")
    assert main([str(tmp_path / "runs"), "--regions", "SWE", "--no-plots"]) == 0
    with open(tmp_path / "runs" / "comparison.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert [c for c in header if c.startswith("emissions_kg_if_")] == ["emissions_kg_if_SWE"]
    assert main([str(tmp_path / "runs"), "--regions", "none", "--no-plots"]) == 0
    assert "## What if" not in capsys.readouterr().out.split("Written to")[-2]


def test_cleanest_window_reads_the_series_again_and_prices_the_run_there(tmp_path):
    # Hourly 300, 250, 50, 60, 280 g/kWh; a 60 s run's cleanest 60 s window is at 50 g/kWh.
    grid = tmp_path / "grid.csv"
    grid.write_text("timestamp,carbon_intensity_g_per_kwh\n" + "".join(
        f"2025-01-01T{hour:02d}:00:00Z,{g}\n" for hour, g in enumerate((300, 250, 50, 60, 280))))
    runs = _runs(tmp_path / "runs", carbon_intensity_series={"path": str(grid), "min_g_per_kwh": 50.0,
                                                             "max_g_per_kwh": 300.0})
    kg, text = whatif.cleanest_window_kg(runs[0])
    assert kg == pytest.approx(0.005 * 1.2 * 50.0 / 1000)  # facility energy x the window's intensity
    assert text == "2025-01-01T02:00:00Z to 2025-01-01T02:01:00Z at 50 g/kWh"
    assert whatif.cleanest_window_kg(runs[1]) is None  # no series recorded
    comparison = compare(runs, regions=["FRA"])
    rows = {r["run"]: r for r in comparison.rows}
    assert rows["a"]["emissions_kg_cleanest_window"] == pytest.approx(kg)
    assert rows["b"]["emissions_kg_cleanest_window"] is None
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "cleanest window (g)" in md and f"| {kg * 1000:.4g} {text} |" in md
    grid.unlink()  # a series that cannot be read again gives no what-if, not an error
    assert whatif.cleanest_window_kg(load_runs([tmp_path / "runs" / "a"])[0]) is None


def test_missing_codecarbon_data_skips_the_what_if_only(tmp_path, monkeypatch):
    runs = _runs(tmp_path / "runs")
    monkeypatch.setattr("lightning_green.carbon.intensity.codecarbon_data_path", lambda relative: None)
    monkeypatch.setattr("lightning_green.carbon.intensity._energy_mix", lambda: (_ for _ in ()).throw(
        RuntimeError("codecarbon's data file data/private_infra/global_energy_mix.json is not available")))
    comparison = compare(runs)
    assert comparison.regions == [] and not [c for c in comparison.columns if c.startswith("emissions_kg_if_")]
    assert "What-if regions skipped: codecarbon's data file" in comparison.notes[0]
