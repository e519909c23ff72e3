"""Serving: J per 1,000 predictions beside accuracy, pairing with training runs, break-even
arithmetic on footprints with known numbers, serving.csv and the serving plots."""

from __future__ import annotations

import csv

import pytest

from lightning_green.compare import break_even, compare, load_runs, main, pair_training
from tests.helpers.compare_fixtures import footprint, serving_footprint, write_run

J = 3.6e6  # J per kWh


@pytest.mark.parametrize("train_v, serve_v, train_b, serve_b, kind, n", [
    (13_000, 0.3, 10_000, 0.6, "after", 10_000),  # 3,000 J more training, 0.3 J saved per prediction
    (10_000, 0.3, 10_000, 0.6, "immediate", 0),   # same training, cheaper serving
    (9_000, 0.3, 10_000, 0.6, "immediate", 0),    # cheaper at both
    (9_000, 0.8, 10_000, 0.6, "until", 5_000),    # 1,000 J less training, 0.2 J more per prediction
    (11_000, 0.8, 10_000, 0.6, "never", None),    # dearer at both
    (10_000, 0.6, 10_000, 0.6, "same", None),
])
def test_break_even_arithmetic(train_v, serve_v, train_b, serve_b, kind, n):
    result = break_even(train_v, serve_v, train_b, serve_b)
    assert result.kind == kind
    assert result.predictions == (None if n is None else pytest.approx(n))
    assert result.extra_training_j == train_v - train_b and result.saving_j_per_prediction == pytest.approx(serve_b - serve_v)


def write_serving_study(root):
    """Two trainings (full: 0.010 kWh; pruned: 0.013 kWh) and four serving variants, 10,000 predictions each."""
    write_run(root / "train-full", footprint(overrides=["pruning=none"], gpu_kwh=0.010, cpu_kwh=0.0, acc=0.8, start_min=0,
                                             duration_s=600, fields={"run_id": "full-id", "steps": 300}))
    write_run(root / "train-pruned", footprint(overrides=["pruning=heads"], gpu_kwh=0.013, cpu_kwh=0.0, acc=0.78,
                                               start_min=20, duration_s=700, fields={"run_id": "pruned-id", "steps": 300}))
    variants = [
        ("fp32", 0.0020, 0.80, {"precision": "32", "quantization": "none", "trained_from": "full-id"}),
        ("int8", 0.0009, 0.79, {"precision": "32", "quantization": "dynamic_int8", "trained_from": "full-id"}),
        ("pruned", 0.0011, 0.785, {"precision": "32", "quantization": "none",
                                   "ckpt_path": str(root / "train-pruned" / "checkpoints" / "last.ckpt")}),
        ("orphan", 0.0015, 0.60, {"precision": "bf16", "quantization": "none"}),
    ]
    for minute, (name, kwh, acc, inference) in enumerate(variants):
        write_run(root / f"serve-{name}", serving_footprint(run_id=name, predict_kwh=kwh, predictions=10_000, acc=acc,
                                                            inference=inference, tokens=640_000, padded_tokens=1_280_000,
                                                            start_min=40 + minute))
    return root


def test_serving_table_pairing_and_break_even(tmp_path):
    comparison = compare(load_runs([write_serving_study(tmp_path / "study")]))
    assert [r.name for r in comparison.runs] == ["train-full", "train-pruned"]  # serving-only runs have their own table
    s = comparison.serving
    rows = {r.run.name: r for r in s.rows}
    assert s.metric == "predict/acc" and s.baseline is rows["serve-fp32"] and s.setting_keys == ["precision", "quantization"]
    fp32, int8, pruned, orphan = (rows[f"serve-{n}"] for n in ("fp32", "int8", "pruned", "orphan"))
    assert fp32.j_per_1k == pytest.approx(0.0020 * J / 10_000 * 1000)  # 720 J per 1,000 predictions
    assert fp32.j_per_token == pytest.approx(0.0020 * J / 640_000)
    assert fp32.j_per_padded_token == pytest.approx(0.0020 * J / 1_280_000)
    assert (fp32.training.name, fp32.pairing, fp32.training_kwh) == ("train-full", "trained_from", pytest.approx(0.010))
    assert (pruned.training.name, pruned.pairing) == ("train-pruned", "checkpoint")
    assert orphan.training is None and orphan.break_even is None
    assert int8.break_even.kind == "immediate"  # same training, 396 J less per 1,000 predictions
    # pruned: 0.003 kWh = 10,800 J more training; (720 - 396) J saved per 1,000 -> 10,800 / 0.324 = 33,333 predictions
    assert pruned.break_even.kind == "after" and pruned.break_even.predictions == pytest.approx(10_800 / 0.324)
    assert [r.run.name for r in s.rows if r.pareto] == ["serve-fp32", "serve-int8"]
    assert "no training footprint paired with serve-orphan" in s.notes[0]


def test_serving_files_and_markdown(tmp_path):
    root = write_serving_study(tmp_path / "study")
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    with open(out / "serving.csv", newline="") as handle:
        rows = {r["run"]: r for r in csv.DictReader(handle)}
    assert float(rows["serve-int8"]["energy_per_1k_predictions_j"]) == pytest.approx(324.0)
    assert rows["serve-pruned"]["break_even"] == "after"
    assert float(rows["serve-pruned"]["break_even_predictions"]) == pytest.approx(33_333.33, rel=1e-6)
    assert rows["serve-fp32"]["baseline"] == "True" and rows["serve-orphan"]["training_run"] == ""
    md = (out / "comparison.md").read_text()
    assert "## Serving: energy per prediction" in md
    assert "| serve-int8 | 32 | dynamic_int8 | 10,000 | 640,000 (1,280,000) | 324 |" in md
    assert "`serve-pruned` pays back its extra training energy after 33,333 predictions" in md
    assert "train-pruned (checkpoint)" in md and "after 33,333" in md
    for plot in ("pareto_serving.png", "serving_break_even.png"):
        assert (out / plot).stat().st_size > 10_000, plot


def test_explicit_pairs_and_same_run(tmp_path):
    root = tmp_path / "study"
    write_run(root / "fit-predict", serving_footprint(run_id="fp", predict_kwh=0.001, predictions=1000, acc=0.8,
                                                      inference={"precision": "32"}, train_kwh=0.005))
    write_run(root / "other-training", footprint(overrides=[], gpu_kwh=0.02, cpu_kwh=0.0, acc=0.8, start_min=30,
                                                 duration_s=60, fields={"steps": 10}))
    write_run(root / "predict-only", serving_footprint(run_id="po", predict_kwh=0.0005, predictions=1000, acc=0.8,
                                                       inference={"precision": "bf16"}, start_min=60))
    runs = load_runs([root])
    by_name = {r.name: r for r in runs}
    assert pair_training(by_name["fit-predict"], runs) == (by_name["fit-predict"], "same run")
    assert pair_training(by_name["predict-only"], runs) == (None, "")
    assert pair_training(by_name["predict-only"], runs, {"predict-only": "other-training"}) == (by_name["other-training"], "given")
    s = compare(runs, pairs={"predict-only": "other-training"}).serving
    rows = {r.run.name: r for r in s.rows}
    assert rows["fit-predict"].training_kwh == pytest.approx(0.005)  # its total minus its predict energy
    # predict-only: 0.015 kWh = 54,000 J more training, saves (3.6 - 1.8) J per prediction -> 30,000 predictions
    assert rows["predict-only"].break_even.predictions == pytest.approx(30_000)
    with pytest.raises(ValueError, match=r"pair must be SERVING=TRAINING with run names .*got 'nope'"):
        compare(runs, pairs={"predict-only": "nope"})


def test_serving_columns_are_the_inference_levers_not_its_measurements(tmp_path):
    # extra.inference also holds measurements that differ from run to run (warm-up time,
    # energy, accuracy): only the levers tell serving rows apart, pruning as "method amount"
    common = {"precision": "32", "batch_size": 64, "compile": False}
    variants = [
        ("dense", {**common, "quantization": "none", "warmup_s": 0.2, "energy_j": 39.3,
                   "pruning": {"method": "none", "amount": None, "parameters": 3468290}}),
        ("heads", {**common, "quantization": "dynamic_int8", "warmup_s": 0.1, "energy_j": 12.8,
                   "pruning": {"method": "heads", "amount": 0.5, "parameters": 2942466}}),
    ]
    for minute, (name, inference) in enumerate(variants):
        write_run(tmp_path / f"serve-{name}", serving_footprint(run_id=name, predict_kwh=0.001, predictions=1_000,
                                                                acc=0.7, inference=inference, start_min=minute))
    s = compare(load_runs([tmp_path])).serving
    assert s.setting_keys == ["quantization", "pruning"]
    assert [r.settings for r in s.rows] == [{"quantization": "none", "pruning": "none"},
                                            {"quantization": "dynamic_int8", "pruning": "heads 0.5"}]
