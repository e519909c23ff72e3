"""FootprintReport, footprint.json and emissions.csv, on real files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from lightning_green.carbon import intensity as carbon
from lightning_green.outputs import footprint as report
from lightning_green.outputs.footprint import (
    EMISSIONS_CSV_COLUMNS, SCHEMA, FootprintReport, ReportError, append_emissions_csv,
    atomic_write_text, read_footprint, write_footprint,
)

SENSORS = [
    {"name": "nvml:0", "component": "gpu", "measured": True, "method": "measured: nvml energy counter", "scope": "device"},
    {"name": "cpu", "component": "cpu", "measured": False, "method": "estimated: 225 W TDP x load", "scope": "host"},
    {"name": "ram", "component": "ram", "measured": False, "method": "estimated: 0.375 W/GB", "scope": "host"},
]


def full_report() -> FootprintReport:
    """A report with every field away from its default."""
    r = FootprintReport(
        status="completed", run_id="run-1", started_at="2025-01-01T12:00:00+00:00",
        ended_at="2025-01-01T12:12:03+00:00", duration_s=723.0, energy_kwh=0.123,
        energy_kwh_by_component={"gpu": 0.1, "cpu": 0.02, "ram": 0.003},
        energy_kwh_by_phase={"train": 0.11, "validate": 0.01, "test": 0.0, "predict": 0.0, "other": 0.003},
        energy_kwh_by_epoch={0: 0.06, 1: 0.063}, energy_kwh_by_rank={0: 0.07, 1: 0.053},
        energy_kwh_by_host={"node-a": 0.1, "node-b": 0.023}, energy_kwh_measured=0.1, energy_kwh_estimated=0.023,
        world_size=2, num_hosts=2, sensors=SENSORS,
        unavailable=[{"source": "rapl", "reason": "no /sys/class/powercap"}], warnings=["w1"],
        steps=1234, epochs=2, samples=40000, tokens=5_000_000, energy_per_sample_j=0.123 * 3.6e6 / 40000,
        energy_per_token_j=0.123 * 3.6e6 / 5e6, samples_per_s=55.3, idle_power_w=70.0, net_energy_kwh=0.08,
        predicted_energy_kwh=1.2, budget_stopped="max_energy_kwh=0.1 reached",
        context={"precision": "bf16-mixed", "cpu_model": "AMD EPYC 7543", "gpu_model": "H200", "gpu_count": 2},
        config={"trainer": {"max_epochs": 2}}, overrides=["precision=bf16"], metrics={"val/acc": 0.91},
        extra={"note": [1, 2.5, None]}, name="bert-bf16", energy_kwh_range=[0.11, 0.14],
        energy_kwh_by_component_range={"gpu": [0.095, 0.105], "cpu": [0.01, 0.03]},
        emissions_kg_range=[0.0045, 0.0056], optimizer_steps=617,
        work_by_phase={"train": {"batches": 1234, "samples": 40000, "tokens": 5_000_000, "padded_tokens": 6_000_000}},
        paused_s=12.5, snapshot_at="2025-01-01T12:10:00+00:00",
        carbon_intensity_series={"path": "grid.csv", "min_g_per_kwh": 40.0, "max_g_per_kwh": 90.0},
        pause_above_g_per_kwh=80.0, embodied_kg=0.02, embodied={"method": "estimated"}, water_l=0.07,
        water_l_per_kwh=0.55, energy_cost=0.04, price_per_kwh=0.25, currency="EUR",
    )
    return r.with_carbon(1.2, carbon.resolve_intensity(cloud_provider="gcp", cloud_region="europe-west9"))


def test_every_field_is_set_away_from_default():
    r, default = full_report(), FootprintReport()
    same = [f.name for f in dataclasses.fields(r) if getattr(r, f.name) == getattr(default, f.name)]
    assert same == ["schema"]


def test_json_round_trip_is_exact(tmp_path):
    r = full_report()
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert FootprintReport.from_dict(d) == r
    assert r.energy_kwh_by_epoch == {"0": 0.06, "1": 0.063}  # JSON keys are strings
    path = write_footprint(r, tmp_path / "run")
    assert path == tmp_path / "run" / "footprint.json"
    assert read_footprint(path) == r
    assert read_footprint(tmp_path / "run") == r  # a run folder works too
    assert json.loads(path.read_text())["schema"] == SCHEMA == "lightning-green/footprint/1"


def test_from_dict_ignores_unknown_keys_defaults_missing_and_never_recomputes():
    r = FootprintReport.from_dict({"schema": SCHEMA, "energy_kwh": 2, "pue": 1.5, "emissions_kg": 99.0,
                                   "future_field": {"x": 1}})
    assert r.energy_kwh == 2.0 and r.emissions_kg == 99.0  # as written, not 2 x 1.5 x intensity
    assert r.facility_energy_kwh == 0.0 and r.status == "running" and r.sensors == []
    with pytest.raises(ReportError, match="'duration_s'"):
        FootprintReport.from_dict({"duration_s": "12"})
    with pytest.raises(ReportError, match="'steps'"):
        FootprintReport.from_dict({"steps": 1.5})
    with pytest.raises(ReportError, match="JSON object"):
        FootprintReport.from_dict([1, 2])


def test_non_finite_numbers_are_written_as_strict_json(tmp_path):
    r = FootprintReport(duration_s=math.nan, energy_per_sample_j=math.inf, metrics={"val/loss": math.nan})
    text = write_footprint(r, tmp_path).read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = read_footprint(tmp_path)
    assert math.isnan(back.duration_s) and back.energy_per_sample_j is None and back.metrics == {"val/loss": None}


def test_with_carbon_fills_the_invariants():
    r = FootprintReport(energy_kwh=2.0, predicted_energy_kwh=10.0)
    fra = carbon.resolve_intensity(country_iso_code="FRA")
    out = r.with_carbon(1.5, fra)
    assert out.facility_energy_kwh == 3.0
    assert out.emissions_kg == pytest.approx(3.0 * fra.g_per_kwh / 1000)
    assert out.emissions_kg == out.facility_energy_kwh * out.carbon_intensity_g_per_kwh / 1000
    assert out.predicted_emissions_kg == pytest.approx(15.0 * fra.g_per_kwh / 1000)
    assert (out.country_iso_code, out.carbon_intensity_source) == ("FRA", fra.source)
    assert r.emissions_kg == 0.0  # a copy
    with pytest.warns(carbon.CarbonWarning):
        world = carbon.resolve_intensity()
    twice = out.with_carbon(1.0, world).with_carbon(1.0, world)
    assert twice.warnings == [world.warning] and twice.emissions_kg == pytest.approx(2.0 * 0.475)
    explicit = r.with_carbon(1.0, 100.0)
    assert (explicit.emissions_kg, explicit.carbon_intensity_source) == (0.2, "explicit")
    with pytest.raises(ValueError, match="pue"):
        r.with_carbon(0.9, fra)


def test_summary_says_what_a_user_needs():
    text = full_report().summary()
    for expected in ("run-1 (completed)", "12 min 3 s", "123 Wh", "100 Wh", "measured: nvml energy counter",
                     "estimated: 225 W TDP x load", "train 110 Wh", "validate 10 Wh", "40,000 samples",
                     "J/sample", "148 Wh (PUE 1.2)", "g CO2e (4.5-5.6 g) at 34 g/kWh",
                     "cloud impact.csv: gcp europe-west9", "2 processes on 2 hosts", "idle baseline 70 W", "Projected full run: 1.2 kWh",
                     "Stopped by budget", "rapl", "Warnings:", "  - w1"):
        assert expected in text, expected
    assert FootprintReport(energy_kwh=2.5).summary().splitlines()[1].endswith("2.5 kWh")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for i in range(3):
        write_footprint(FootprintReport(run_id=str(i)), tmp_path)
    assert os.listdir(tmp_path) == ["footprint.json"]
    assert read_footprint(tmp_path).run_id == "2"
    atomic_write_text(tmp_path / "new" / "a.txt", "héllo")
    assert (tmp_path / "new" / "a.txt").read_text(encoding="utf-8") == "héllo"


@pytest.mark.parametrize("crash", ["json.dumps", "os.fsync", "os.replace"])
def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch, crash):
    good = write_footprint(full_report(), tmp_path)
    before = good.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    module, name = crash.split(".")
    monkeypatch.setattr(f"{module}.{name}", boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_footprint(FootprintReport(run_id="new"), tmp_path)
    monkeypatch.undo()
    assert good.read_bytes() == before
    assert os.listdir(tmp_path) == ["footprint.json"]
    assert read_footprint(good) == full_report()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"schema": "lightning-green/footprint/1", "energy_kwh": 0.', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "cannot read"),
        (b"[1, 2]", "no 'schema'"),
        (b'{"energy_kwh": 1.0}', "no 'schema'"),
        (b'{"schema": "codecarbon/1"}', "schema 'codecarbon/1' is not 'lightning-green/footprint/1'"),
        (b'{"schema": "lightning-green/footprint/1", "energy_kwh": "lots"}', "'energy_kwh'"),
    ],
)
def test_read_footprint_rejects_bad_files_naming_them(tmp_path, content, problem):
    path = tmp_path / "footprint.json"
    path.write_bytes(content)
    with pytest.raises(ReportError) as err:
        read_footprint(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert isinstance(err.value, ValueError)


def test_read_footprint_missing_file(tmp_path):
    with pytest.raises(ReportError, match="cannot read"):
        read_footprint(tmp_path / "nope.json")


def test_emissions_csv_rows_in_codecarbon_units(tmp_path):
    r = full_report()
    path = append_emissions_csv(r, tmp_path)
    assert append_emissions_csv(dataclasses.replace(r, run_id="run-2"), tmp_path) == path
    assert path.name == "emissions.csv" and os.listdir(tmp_path) == ["emissions.csv"]
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(EMISSIONS_CSV_COLUMNS) and len(lines) == 3
    df = pd.read_csv(path)
    assert list(df.columns) == list(EMISSIONS_CSV_COLUMNS)
    assert list(df.run_id) == ["run-1", "run-2"]
    row = df.iloc[0]
    assert row.duration == 723.0
    assert row.emissions == pytest.approx(r.emissions_kg)
    assert row.emissions_rate == pytest.approx(r.emissions_kg / 723.0)
    assert row.energy_consumed == pytest.approx(0.123 * 1.2)  # kWh, PUE included as in codecarbon
    assert row.gpu_energy == pytest.approx(0.1 * 1.2) and row.ram_energy == pytest.approx(0.003 * 1.2)
    assert row.gpu_power == pytest.approx(0.1 * 1.2 * 3.6e6 / 723.0)  # W, run average
    assert (row.country_iso_code, row.country_name, row.pue) == ("FRA", "France", 1.2)
    assert (row.on_cloud, row.cloud_provider, row.cloud_region) == ("Y", "gcp", "europe-west9")
    assert (row.cpu_model, row.gpu_model, row.gpu_count) == ("AMD EPYC 7543", "H200", 2)
    assert math.isnan(row.latitude)  # never geolocated


def test_emissions_csv_other_header_is_backed_up(tmp_path):
    old = tmp_path / "emissions.csv"
    old.write_text("timestamp,emissions\n2020-01-01,0.5\n")
    append_emissions_csv(full_report(), tmp_path)
    assert (tmp_path / "emissions.csv.bak").read_text() == "timestamp,emissions\n2020-01-01,0.5\n"
    assert len(pd.read_csv(old)) == 1
    old.write_text("something else\n")
    append_emissions_csv(full_report(), tmp_path)
    assert (tmp_path / "emissions.csv_0.bak").read_text() == "something else\n"
    assert sorted(os.listdir(tmp_path)) == ["emissions.csv", "emissions.csv.bak", "emissions.csv_0.bak"]


def test_emissions_csv_same_columns_other_order_keeps_file_order(tmp_path, monkeypatch):
    reordered = list(reversed(EMISSIONS_CSV_COLUMNS))
    (tmp_path / "emissions.csv").write_text(",".join(reordered) + "\n")
    append_emissions_csv(full_report(), tmp_path)
    df = pd.read_csv(tmp_path / "emissions.csv")
    assert list(df.columns) == reordered and df.run_id[0] == "run-1" and df.pue[0] == 1.2
    before = (tmp_path / "emissions.csv").read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        append_emissions_csv(full_report(), tmp_path)
    assert (tmp_path / "emissions.csv").read_bytes() == before
    assert os.listdir(tmp_path) == ["emissions.csv"]


def test_codecarbon_itself_reads_and_appends_our_emissions_csv(tmp_path):
    # In a subprocess: importing codecarbon calls nvmlInit and may run nvidia-smi.
    append_emissions_csv(full_report(), tmp_path)
    script = textwrap.dedent(
        """
        import dataclasses, json, sys
        from codecarbon.output_methods.emissions_data import EmissionsData
        from codecarbon.output_methods.file import FileOutput
        fields = [f.name for f in dataclasses.fields(EmissionsData)]
        values = {f: 0 for f in fields}
        values.update(timestamp="t", run_id="from-codecarbon", project_name="p")
        FileOutput("emissions.csv", sys.argv[1]).out(EmissionsData(**values), None)
        print(json.dumps(fields))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == list(EMISSIONS_CSV_COLUMNS)
    assert os.listdir(tmp_path) == ["emissions.csv"]  # no .bak: codecarbon accepted our header
    assert list(pd.read_csv(tmp_path / "emissions.csv").run_id) == ["run-1", "from-codecarbon"]


def test_kwh_from_j():
    assert report.kwh_from_j(3.6e6) == 1.0 and report.J_PER_KWH == 3.6e6
