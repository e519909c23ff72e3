"""Repeats: runs that differ only in seed pooled into one row (mean, std, min-max, count) and
differences smaller than the run-to-run spread flagged, on real footprint files."""

from __future__ import annotations

import csv
import math

import pytest

from lightning_green.compare import compare, load_runs, main, write_table
from lightning_green.compare.groups import Stat, is_repeat_key, noise_check
from tests.helpers.compare_fixtures import footprint, write_run, write_sweep

# (precision, seed, energy kWh, val/acc). Hand-computed: fp32 energy 0.009 +- 0.001, acc 0.81 +- 0.01;
# bf16 energy 0.0055 +- 0.0005, acc 0.815 +- 0.01; fp16 once: 0.004, 0.70.
RUNS = [("32", 1, 0.008, 0.80), ("32", 2, 0.009, 0.81), ("32", 3, 0.010, 0.82),
        ("bf16", 1, 0.005, 0.805), ("bf16", 2, 0.0055, 0.815), ("bf16", 3, 0.006, 0.825),
        ("16", 1, 0.004, 0.70)]


def write_repeats(root):
    for job, (precision, seed, kwh, acc) in enumerate(RUNS):
        write_run(root / str(job), footprint(overrides=[f"precision={precision}", f"seed={seed}"], gpu_kwh=kwh,
                                             cpu_kwh=0.0, acc=acc, start_min=10 * job, duration_s=300))
    return root


def test_stat_and_noise_arithmetic():
    stat = Stat.of([0.8, 0.81, 0.82])
    assert (stat.mean, stat.low, stat.high, stat.n) == pytest.approx((0.81, 0.8, 0.82, 3))
    assert stat.std == pytest.approx(0.01)
    assert Stat.of([1.0]).std is None and Stat.of([None, float("nan")]) is None
    diff, spread = noise_check(Stat.of([1.0, 3.0]), Stat.of([0.0, 0.0, 0.0]))
    assert diff == 2.0 and spread == pytest.approx(math.sqrt(2.0))
    assert noise_check(Stat.of([5.0]), Stat.of([1.0, 3.0])) == (3.0, pytest.approx(2.0))  # borrowed std
    assert noise_check(Stat.of([5.0]), Stat.of([1.0])) == (4.0, None)  # no repeats: noise unknown
    assert is_repeat_key("seed") and is_repeat_key("data.seed") and is_repeat_key("+seed") and not is_repeat_key("seeds")


def test_seed_repeats_pooled_with_spread_and_noise_flag(tmp_path):
    comparison = compare(load_runs([write_repeats(tmp_path / "sweep")]))
    assert comparison.override_keys == ["precision", "seed"] and comparison.group_keys == ["precision"]
    groups = {g.config["precision"]: g for g in comparison.groups}
    fp32, bf16, fp16 = groups["32"], groups["bf16"], groups["16"]
    assert [g.name for g in comparison.groups] == ["c1", "c2", "c3"] and (fp32.n, bf16.n, fp16.n) == (3, 3, 1)
    e = bf16.stats["energy_kwh"]
    assert (e.mean, e.std, e.low, e.high, e.n) == pytest.approx((0.0055, 0.0005, 0.005, 0.006, 3))
    assert fp32.stats["val/acc"].mean == pytest.approx(0.81) and fp32.stats["val/acc"].std == pytest.approx(0.01)
    # bf16 vs fp32: energy -0.0035 (spread sqrt(0.001^2 + 0.0005^2) = 0.00112): real;
    # val/acc +0.005 (spread sqrt(2) x 0.01 = 0.0141): within run-to-run noise
    assert bf16.vs_baseline["energy_kwh"] == pytest.approx(-0.0035)
    assert bf16.noise["energy_kwh"] == pytest.approx(math.hypot(0.001, 0.0005))
    assert bf16.vs_baseline["val/acc"] == pytest.approx(0.005) and bf16.within_noise == ["val/acc"]
    assert fp16.within_noise == [] and fp16.noise["val/acc"] == pytest.approx(math.sqrt(2) * 0.01)  # borrowed
    assert fp32.within_noise == [] and [g.name for g in comparison.groups if g.pareto] == ["c2", "c3"]
    flag = next(f for f in comparison.flags if f.kind == "within-noise")
    assert flag.runs == ("3", "4", "5") and "within run-to-run noise" in flag.message
    assert {r["run"]: r["group"] for r in comparison.rows} == {"0": "c1", "1": "c1", "2": "c1", "3": "c2", "4": "c2",
                                                                "5": "c2", "6": "c3"}


def test_groups_table_and_csv(tmp_path):
    comparison = compare(load_runs([write_repeats(tmp_path / "sweep")]))
    csv_path, md_path = write_table(comparison, tmp_path / "out")
    with open(tmp_path / "out" / "comparison_groups.csv", newline="") as handle:
        rows = {r["group"]: r for r in csv.DictReader(handle)}
    assert rows["c2"]["precision"] == "bf16" and rows["c2"]["runs"] == "3" and rows["c2"]["run_names"] == "3 4 5"
    assert float(rows["c2"]["energy_kwh_std"]) == pytest.approx(0.0005) and rows["c3"]["energy_kwh_std"] == ""
    assert rows["c2"]["within_noise"] == "val/acc" and rows["c1"]["baseline"] == "True"
    md = md_path.read_text()
    assert "## Configurations (repeats pooled)" in md
    assert "| c2 | bf16 | 3 | 5.5 ± 0.5 (5-6) |" in md  # Wh
    assert "within run-to-run noise: val/acc" in md and "+0.005 (noise ±0.014)" in md
    assert "Pareto front of the configurations (mean over repeats; least energy, highest val/acc; completed only): c2, c3." in md


def test_group_by_option_and_bad_key(tmp_path, capsys):
    root = tmp_path / "runs"
    for job, (prec, pruning, kwh) in enumerate([("32", "none", 0.008), ("32", "heads", 0.006), ("bf16", "none", 0.005)]):
        write_run(root / str(job), footprint(overrides=[f"precision={prec}", f"pruning={pruning}"], gpu_kwh=kwh,
                                             cpu_kwh=0.0, acc=0.8, start_min=10 * job, duration_s=60))
    comparison = compare(load_runs([root]), group_by=["precision"])
    assert [(g.config, g.n) for g in comparison.groups] == [({"precision": "32"}, 2), ({"precision": "bf16"}, 1)]
    assert compare(load_runs([root])).groups == []  # nothing repeats: one row per run
    with pytest.raises(ValueError, match=r"group_by must name override keys of the runs \(precision, pruning\), got 'lr'"):
        compare(load_runs([root]), group_by=["lr"])
    assert main([str(root), "--group-by", "precision", "--no-plots"]) == 0
    assert "## Configurations (repeats pooled)" in capsys.readouterr().out


def test_single_runs_say_noise_is_unknown(tmp_path):
    comparison = compare(load_runs([write_sweep(tmp_path / "sweep")]))
    assert comparison.groups == []
    md = write_table(comparison, tmp_path / "out")[1].read_text()
    assert "Each configuration ran once, so run-to-run noise is unknown" in md and "seed=1,2,3" in md
    assert not (tmp_path / "out" / "comparison_groups.csv").exists()
