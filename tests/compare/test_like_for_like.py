"""Like for like: per-sample deltas when runs did different work; spelling never tells runs apart."""

from __future__ import annotations

import csv

import pytest

from lightning_green.compare import canonical_value, compare, load_runs, write_table
from tests.helpers.compare_fixtures import footprint, write_run


@pytest.mark.parametrize("a, b", [
    ("5e-5", "5e-05"), ("5e-5", "0.00005"), ("1", "1.0"), ("1_000", "1000"), ("True", "true"),
    ("'abc'", "abc"), ("[1,2]", "[1, 2.0]"), ("NULL", "null"),
])
def test_spellings_of_one_value(a, b):
    assert canonical_value(a) == canonical_value(b)


@pytest.mark.parametrize("a, b", [("5e-5", "5e-4"), ("32", "32-true"), ("bf16", "BF16"), ("1", "true")])
def test_different_values_stay_different(a, b):
    assert canonical_value(a) != canonical_value(b)


def test_override_spelling_is_not_a_distinguishing_key(tmp_path):
    root = tmp_path / "runs"
    write_run(root / "a", footprint(overrides=["lr=5e-5", "precision=32", "trainer.max_epochs=1"], gpu_kwh=0.004,
                                    cpu_kwh=0.001, acc=0.8, start_min=0, duration_s=60))
    write_run(root / "b", footprint(overrides=["lr=5e-05", "precision=bf16", "trainer.max_epochs=1.0"], gpu_kwh=0.003,
                                    cpu_kwh=0.001, acc=0.8, start_min=5, duration_s=60))
    comparison = compare(load_runs([root]))
    assert comparison.override_keys == ["precision"]
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "| run | precision | status |" in md and "lr" not in md.split("## Runs")[1].split("\n")[2]
    # a baseline written in another spelling still names the run
    assert compare(load_runs([root]), baseline="lr=0.00005 precision=bf16").baseline.name == "b"


def test_different_work_compares_energy_per_sample(tmp_path):
    root = tmp_path / "runs"
    # a: 1000 samples, 5 Wh -> 18 J/sample; b interrupted after 400 samples, 2.4 Wh -> 21.6 J/sample
    write_run(root / "a", footprint(overrides=["precision=32"], gpu_kwh=0.004, cpu_kwh=0.001, acc=0.8, start_min=0,
                                    duration_s=60, samples=1000))
    write_run(root / "b", footprint(overrides=["precision=bf16"], gpu_kwh=0.002, cpu_kwh=0.0004, acc=0.7, start_min=5,
                                    duration_s=30, samples=400, status="interrupted"))
    comparison = compare(load_runs([root]))
    assert comparison.per_sample and comparison.cost_figure == "energy_per_sample_j"
    row = {r["run"]: r for r in comparison.rows}["b"]
    assert row["energy_vs_baseline_pct"] == pytest.approx(-52.0)  # totals: misleading, kept in the CSV
    assert row["energy_per_sample_vs_baseline_pct"] == pytest.approx((21.6 - 18.0) / 18.0 * 100)
    assert row["emissions_per_sample_vs_baseline_pct"] == pytest.approx((21.6 - 18.0) / 18.0 * 100)
    assert "different-work" in row["flags"]
    csv_path, md_path = write_table(comparison, tmp_path / "out")
    md = md_path.read_text()
    assert "Runs did different amounts of work (400-1,000 training samples)" in md
    assert "compares energy (and emissions) per training sample, not totals" in md
    assert "J/sample vs base | CO2/sample vs base" in md and "| +20.0% | +20.0% |" in md
    assert "**different-work**: these runs trained on another number of samples than the baseline (b: 400" in md
    with open(csv_path, newline="") as handle:
        assert float(next(r for r in csv.DictReader(handle) if r["run"] == "b")["energy_per_sample_vs_baseline_pct"]) == \
            pytest.approx(20.0)


def test_same_work_compares_totals(tmp_path):
    root = tmp_path / "runs"
    for name, gpu in (("a", 0.004), ("b", 0.002)):
        write_run(root / name, footprint(overrides=[f"name={name}"], gpu_kwh=gpu, cpu_kwh=0.0, acc=0.8,
                                         start_min=0 if name == "a" else 5, duration_s=60))
    comparison = compare(load_runs([root]))
    assert not comparison.per_sample and comparison.work_note == ""
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "energy vs base | CO2 vs base" in md and "per training sample" not in md
