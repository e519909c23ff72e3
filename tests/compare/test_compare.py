"""lightning_green.compare: table values, baseline deltas, Pareto set, fairness flags, plots, CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.compare_fixtures import CPU_MEASURED, footprint, write_run, write_sweep
from lightning_green.cli import main as cli_main
from lightning_green.compare import (
    compare,
    load_runs,
    main,
    pareto_front,
    plot_energy_by_component,
    plot_pareto,
    plot_power_over_time,
    read_power_series,
    write_table,
)


def _run(root: Path, name: str, **kwargs) -> Path:
    defaults = dict(overrides=[f"name={name}"], gpu_kwh=0.004, cpu_kwh=0.001, acc=0.8, start_min=0, duration_s=60)
    return write_run(root / name, footprint(**{**defaults, **kwargs}))


def _rows(comparison) -> dict[str, dict]:
    return {row["run"]: row for row in comparison.rows}


def test_table_values_baseline_and_pareto(tmp_path):
    comparison = compare(load_runs([write_sweep(tmp_path / "sweep")]))
    rows = _rows(comparison)
    assert list(rows) == ["0", "1", "2", "3"]
    assert comparison.override_keys == ["precision", "pruning"]  # seed=1 is the same everywhere
    assert comparison.baseline.name == "1"  # the fp32 / no-pruning run, though not the first
    assert comparison.metric == "val/acc" and comparison.maximize
    assert rows["0"]["precision"] == "bf16" and rows["2"]["pruning"] == "heads"
    assert rows["0"]["energy_kwh"] == pytest.approx(0.006)
    assert rows["0"]["gpu_kwh"] == pytest.approx(0.005) and rows["0"]["cpu_kwh"] == pytest.approx(0.001)
    assert rows["0"]["energy_per_sample_j"] == pytest.approx(0.006 * 3.6e6 / 1000)
    assert rows["0"]["emissions_kg"] == pytest.approx(0.006 * 400 / 1000)
    assert rows["0"]["carbon_intensity_g_per_kwh"] == 400.0 and rows["0"]["pue"] == 1.0
    assert [rows[n]["energy_vs_baseline_pct"] for n in "0123"] == pytest.approx([-40.0, 0.0, -30.0, -60.0])
    assert [rows[n]["emissions_vs_baseline_pct"] for n in "0123"] == pytest.approx([-40.0, 0.0, -30.0, -60.0])
    assert [rows[n]["val/acc_vs_baseline"] for n in "0123"] == pytest.approx([-0.01, 0.0, -0.05, -0.10])
    assert [r.name for r in comparison.pareto] == ["0", "1", "3"]  # job 2 is dominated by job 0
    assert [rows[n]["pareto"] for n in "0123"] == [True, True, False, True]
    assert comparison.flags == []  # sequential jobs on one host, same sensors and settings


def test_baseline_option_by_name_and_overrides(tmp_path):
    runs = load_runs([write_sweep(tmp_path / "sweep")])
    assert compare(runs, baseline="3").baseline.name == "3"
    by_overrides = compare(runs, baseline="precision=bf16 pruning=none")
    assert by_overrides.baseline.name == "0"
    assert _rows(by_overrides)["1"]["energy_vs_baseline_pct"] == pytest.approx((0.010 - 0.006) / 0.006 * 100)
    with pytest.raises(ValueError, match=r"baseline must be .*'0'.*got 'precision=16'"):
        compare(runs, baseline="precision=16")


def test_default_baseline_prefers_a_completed_run(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", overrides=["precision=bf16"], start_min=0)
    _run(root, "b", overrides=["precision=32"], start_min=5, status="failed")
    _run(root, "c", overrides=["precision=32-true", "pruning=none"], start_min=10)
    assert compare(load_runs([root])).baseline.name == "c"
    (root / "c" / "footprint.json").unlink()
    assert compare(load_runs([root])).baseline.name == "b"  # failed, but still the fp32 run
    (root / "b" / "footprint.json").unlink()
    assert compare(load_runs([root])).baseline.name == "a"  # no fp32 run: the first


def test_pareto_front_hand_computed():
    points = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.7), (4.0, 0.9), (0.5, 0.1)]
    assert pareto_front(points, maximize=True) == [0, 1, 4, 5]
    # loss-like: lower is better -> only the cheapest with the lowest loss survive
    assert pareto_front(points, maximize=False) == [5]
    assert pareto_front([(1.0, 0.5), (1.0, 0.5)]) == [0, 1]  # equal points do not dominate each other


def test_loss_metric_is_minimised_and_by_emissions(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", gpu_kwh=0.004, acc=0.9, start_min=0)  # val/loss 0.1
    _run(root, "b", gpu_kwh=0.002, acc=0.6, start_min=5)  # val/loss 0.4
    _run(root, "c", gpu_kwh=0.003, acc=0.5, start_min=10, intensity=50.0)  # val/loss 0.5, but very clean power
    runs = load_runs([root])
    by_energy = compare(runs, metric="val/loss")
    assert not by_energy.maximize
    assert [r.name for r in by_energy.pareto] == ["a", "b"]
    by_emissions = compare(runs, metric="val/loss", by="emissions")
    assert [r.name for r in by_emissions.pareto] == ["a", "b", "c"]
    assert [f.kind for f in by_emissions.flags] == ["carbon-settings"]
    assert compare(runs, metric="val/loss", metric_mode="max").maximize
    with pytest.raises(ValueError, match=r"by must be one of 'energy', 'emissions', got 'co2'"):
        compare(runs, by="co2")


def test_overlap_flag_same_host_only(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", start_min=0, duration_s=120)
    _run(root, "b", start_min=1, duration_s=120)  # overlaps a for 60 s on node-a
    _run(root, "c", start_min=1, duration_s=120, hostname="node-b")  # overlaps, other host
    _run(root, "d", start_min=2, duration_s=60)  # starts when a ends: disjoint from a
    flags = compare(load_runs([root])).flags
    overlaps = {f.runs for f in flags if f.kind == "overlap"}
    assert overlaps == {("a", "b"), ("b", "d")}
    message = next(f.message for f in flags if f.runs == ("a", "b"))
    assert "60 s" in message and "node-a" in message


def test_missing_hostname_counts_as_same_host(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", start_min=0, duration_s=120, hostname=None)
    _run(root, "b", start_min=1, duration_s=120, hostname="node-b")
    _run(root, "c", start_min=10, duration_s=120, hostname=None)  # later: disjoint
    assert [(f.kind, f.runs) for f in compare(load_runs([root])).flags] == [("overlap", ("a", "b"))]


def test_incomplete_run_flagged_and_left_out_of_pareto(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", start_min=0, gpu_kwh=0.004)
    _run(root, "b", start_min=5, gpu_kwh=0.001, status="failed")  # cheapest, best acc: but failed
    comparison = compare(load_runs([root]))
    assert [(f.kind, f.runs) for f in comparison.flags] == [("incomplete", ("b",))]
    assert "'failed'" in comparison.flags[0].message
    assert [r.name for r in comparison.pareto] == ["a"]
    assert _rows(comparison)["b"]["flags"] == "incomplete"


def test_estimated_vs_measured_flag(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", start_min=0)  # cpu estimated
    _run(root, "b", start_min=5, cpu_sensor=CPU_MEASURED)
    _run(root, "c", start_min=10)
    flags = compare(load_runs([root])).flags
    assert [(f.kind, f.runs) for f in flags] == [("estimated-vs-measured", ("a", "c", "b"))]
    assert "cpu energy was estimated in a, c; measured in b" in flags[0].message


def test_corrupt_foreign_and_hidden_footprints_skipped(tmp_path, capsys):
    root = write_sweep(tmp_path / "sweep")
    (root / "4").mkdir()
    (root / "4" / "footprint.json").write_text('{"schema": "lightning-green/footprint/1", "energy_kw')
    (root / "5").mkdir()
    (root / "5" / "footprint.json").write_text(json.dumps({"schema": "someone-else/1", "energy": 3}))
    (root / "6").mkdir()
    (root / "6" / "footprint.json").write_text(json.dumps(["not", "a", "dict"]))
    hidden = root / "0" / ".pl_hydra_rank_1"
    write_run(hidden, json.loads((root / "0" / "footprint.json").read_text()))
    runs = load_runs([root, root / "1"])  # a run given twice is loaded once
    assert [r.name for r in runs] == ["0", "1", "2", "3"]
    err = capsys.readouterr().err
    assert "skipped" in err and str(root / "4" / "footprint.json") in err
    assert "someone-else/1" in err and str(root / "6" / "footprint.json") in err
    assert "Traceback" not in err


def test_markdown_and_csv_files(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", start_min=0, duration_s=120, overrides=["precision=32", "pruning=none"])
    _run(root, "b", start_min=1, duration_s=120, overrides=["precision=bf16", "pruning=none"], status="interrupted")
    comparison = compare(load_runs([root]))
    csv_path, md_path = write_table(comparison, tmp_path / "out")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run"] for r in rows] == ["a", "b"] and rows[1]["precision"] == "bf16"
    assert float(rows[1]["energy_kwh"]) == pytest.approx(0.005)
    assert rows[1]["flags"] == "overlap;incomplete" and rows[0]["baseline"] == "True"
    md = md_path.read_text()
    assert "Baseline: run `a` (precision=32)." in md
    assert "| a | 32 | completed | 120.0 | 5 | 4 | ~1 |" in md  # Wh; cpu estimated
    assert "| baseline | baseline | baseline |" in md
    assert "[1] [2]" in md and "1. **overlap**: runs a and b overlapped for 60 s" in md
    assert "2. **incomplete**: run b has status 'interrupted'" in md


def _assert_png(path: Path, min_bytes: int = 8_000) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.std() > 0.05  # not a blank canvas


def test_each_plot_written(tmp_path):
    comparison = compare(load_runs([write_sweep(tmp_path / "sweep")]))
    out = tmp_path / "plots"
    out.mkdir()
    _assert_png(plot_energy_by_component(comparison, out / "bars.png"))
    _assert_png(plot_pareto(comparison, out / "pareto.png"))
    _assert_png(plot_power_over_time(comparison, out / "power.png"))


def test_plots_skipped_without_metric_or_steps(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a", acc=None, metrics={})
    comparison = compare(load_runs([root]))
    assert comparison.metric is None and comparison.pareto == []
    assert plot_pareto(comparison, tmp_path / "p.png") is None
    assert plot_power_over_time(comparison, tmp_path / "w.png") is None  # no steps.csv
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "w.png").exists()


def test_power_series_from_steps_csv(tmp_path):
    folder = write_run(tmp_path / "r", footprint(overrides=[], gpu_kwh=1e-3, cpu_kwh=0, acc=0.5, start_min=0,
                                                 duration_s=60), steps_w=100.0, n_steps=6)
    t, watts = read_power_series(folder / "steps.csv")
    assert t == pytest.approx([0.25, 0.75, 1.25, 1.75, 2.25, 2.75])
    assert watts == pytest.approx([100, 120, 140, 100, 120, 140])
    # Many steps: energy-weighted average in time bins keeps the mean power
    folder = write_run(tmp_path / "long", footprint(overrides=[], gpu_kwh=1e-3, cpu_kwh=0, acc=0.5, start_min=0,
                                                    duration_s=60), steps_w=100.0, n_steps=3000)
    t, watts = read_power_series(folder / "steps.csv", max_points=100)
    assert len(t) == 100 and sum(watts) / len(watts) == pytest.approx(120.0, rel=0.01)


def test_cli_compare_writes_files(tmp_path, capsys):
    root = write_sweep(tmp_path / "sweep")
    assert cli_main(["compare", str(root), "--metric", "val/acc", "--by", "emissions"]) == 0
    for name in ("comparison.csv", "comparison.md", "energy_by_component.png", "pareto_emissions.png",
                 "power_over_time.png"):
        assert (root / name).is_file(), name
    out = capsys.readouterr().out
    assert "Pareto front (least emissions, highest val/acc; completed runs only): `0`, `1`, `3`." in out
    assert "![pareto emissions](pareto_emissions.png)" in (root / "comparison.md").read_text()


def test_cli_options_and_errors(tmp_path, capsys):
    root = write_sweep(tmp_path / "sweep")
    out = tmp_path / "elsewhere"
    assert main([str(root / "0"), str(root / "2"), "--out", str(out), "--no-plots", "--baseline", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["comparison.csv", "comparison.md"]
    assert "Baseline: run `2`" in (out / "comparison.md").read_text()
    assert main([str(root), "--baseline", "nope", "--no-plots"]) == 2
    assert "baseline must be" in capsys.readouterr().err
    assert main([str(tmp_path / "empty-or-missing")]) == 1
    assert "no readable footprint.json" in capsys.readouterr().err


def test_console_entry_point(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    proc = subprocess.run([sys.executable, "-m", "lightning_green", "compare", str(root), "--no-plots"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "| 1 | 32 | none | completed |" in proc.stdout and (root / "comparison.csv").is_file()


def test_one_run_is_one_run(tmp_path):
    root = tmp_path / "runs"
    _run(root, "a")
    md = write_table(compare(load_runs([root])), tmp_path / "out")[1].read_text()
    assert md.startswith("# Energy comparison of 1 run\n")
    _run(root, "b", start_min=5)
    assert write_table(compare(load_runs([root])), tmp_path / "out")[1].read_text().startswith("# Energy comparison of 2 runs\n")
