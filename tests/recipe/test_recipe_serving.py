"""Serving the recipe's model: ``mode=predict``, ``predict=true``, the inference levers, checkpoints.

Real Hydra composition, real (tiny) Trainers and transformers models, CPU. Energy comes from a
ConstantPowerSensor of known power (given as an ``energy.sensors`` override), so the predict
phase's energy is that power times the phase's duration.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.helpers.recipe_helpers import LEARNS, composed, constant_sensor, read_json

POWER_W = 40.0
INTENSITY = 200.0  # g/kWh, explicit so the emissions arithmetic is known
J_PER_KWH = 3.6e6


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("serving-cache")


def run(out: Path, cache_dir: Path, overrides: list[str], base: list[str] = LEARNS):
    from lightning_green.recipe.train import train

    with composed([*base, *overrides], out, cache_dir) as cfg:
        return train(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """One fit that learns the demo task, with the recipe's checkpoint: (run folder, checkpoint)."""
    out = tmp_path_factory.mktemp("trained") / "fit"
    run(out, cache_dir, ["trainer.enable_checkpointing=true"])
    checkpoints = sorted((out / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in checkpoints] == ["epoch2-step96.ckpt"]  # 3 epochs x 32 steps, no '=' in the name
    return out, checkpoints[0]


def _serve(tmp_path, cache_dir, ckpt, extra=(), name="serve"):
    out = tmp_path / name
    metrics, report = run(out, cache_dir, ["mode=predict", f"ckpt_path={ckpt}", constant_sensor(POWER_W),
                                           f"energy.carbon_intensity_g_per_kwh={INTENSITY}", *extra])
    return out, metrics, report


def _test_texts_and_tokenizer(cache_dir):
    """The demo test split and the training tokenizer, built the way the recipe builds them."""
    from lightning_green.recipe.bert import load_tokenizer
    from lightning_green.recipe.data import SentimentDataModule

    dm = SentimentDataModule("demo", num_train=512, num_validation=64, num_test=256, seed=42)
    tokenizer = load_tokenizer(None, dm.training_texts, 8000, str(cache_dir))
    raw = dm.raw_splits()["test"]
    return list(raw["text"]), list(raw["label"]), tokenizer


@pytest.mark.parametrize(("precision", "lightning_precision"), [("32", "32-true"), ("bf16", "bf16-mixed")])
def test_predict_footprint_counts_predictions_tokens_and_energy_per_prediction(
    tmp_path, cache_dir, trained, precision, lightning_precision
):
    fit_dir, ckpt = trained
    batch = 24
    out, metrics, report = _serve(tmp_path, cache_dir, ckpt, [f"precision={precision}", f"inference.batch_size={batch}"])
    data = read_json(out / "footprint.json")
    inf = data["extra"]["inference"]
    assert data == report.to_dict()  # the file was rewritten with the per-prediction figures

    # what was served, counted independently from the raw texts
    texts, labels, tokenizer = _test_texts_and_tokenizer(cache_dir)
    lengths = [len(tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in texts]
    chunks = [lengths[i:i + batch] for i in range(0, len(lengths), batch)]
    assert inf["predictions"] == 256 and inf["batches"] == math.ceil(256 / batch) == len(chunks)
    assert inf["tokens"] == sum(lengths)
    assert inf["padded_tokens"] == sum(len(c) * max(c) for c in chunks) > inf["tokens"]
    assert inf["padding_fraction"] == pytest.approx(1 - sum(lengths) / inf["padded_tokens"], abs=1e-6)

    # energy: the predict phase only, from a sensor of known power
    assert data["energy_kwh_by_phase"].get("train", 0.0) == 0.0  # serving only: no training in this footprint
    energy_j = data["energy_kwh_by_phase"]["predict"] * J_PER_KWH
    assert inf["energy_j"] == pytest.approx(energy_j)
    assert energy_j == pytest.approx(POWER_W * inf["predict_duration_s"], rel=0.05, abs=POWER_W * 0.01)
    assert inf["energy_j_per_1000_predictions"] == pytest.approx(energy_j / 256 * 1000)
    assert inf["energy_j_per_token"] == pytest.approx(energy_j / sum(lengths))
    assert inf["energy_j_per_padded_token"] == pytest.approx(energy_j / inf["padded_tokens"])
    assert inf["emissions_g_per_1000_predictions"] == pytest.approx(energy_j / J_PER_KWH * INTENSITY / 256 * 1000)
    assert inf["counts_source"]  # the recipe's own count until the footprint carries work_by_phase

    # accuracy of the served predictions, against the labels
    assert metrics["predict/acc"] == data["metrics"]["predict/acc"] == inf["accuracy"] == inf["correct"] / 256
    if precision == "32":  # the same model run by hand over the same batches
        from lightning_green.recipe.bert import BertClassifier

        model = BertClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, 256, batch):
                enc = tokenizer(texts[i:i + batch], truncation=True, max_length=64, padding=True, return_tensors="pt")
                correct += int((model(**enc).logits.argmax(-1) == torch.tensor(labels[i:i + batch])).sum())
        assert inf["correct"] == pytest.approx(correct, abs=1)

    # the serving set-up, and where the model came from
    fit = read_json(fit_dir / "footprint.json")
    assert inf["precision"] == lightning_precision and inf["quantization"] == "none" and inf["batch_size"] == batch
    assert inf["mode"] == "predict" and inf["checkpoint"] == str(ckpt) and inf["training_run_id"] == fit["run_id"]
    assert 0 < inf["training_energy_kwh_at_checkpoint"] <= fit["energy_kwh"]
    assert inf["pruning"]["method"] == "none" and inf["parameters"] == fit["extra"]["model"]["parameters"]
    assert inf["tokenizer"] == "from the checkpoint"


def test_checkpoint_carries_the_tokenizer(trained, cache_dir):
    from lightning_green.recipe.bert import tokenizer_from_checkpoint
    from lightning_green.recipe.checkpoints import read_checkpoint

    texts, _, tokenizer = _test_texts_and_tokenizer(cache_dir)
    restored = tokenizer_from_checkpoint(read_checkpoint(str(trained[1])))
    assert restored.pad_token_id == tokenizer.pad_token_id
    for text in texts[:50]:
        assert restored(text, truncation=True, max_length=64)["input_ids"] == tokenizer(text, truncation=True, max_length=64)["input_ids"]


def test_int8_dynamic_quantization_replaces_linear_layers_and_keeps_accuracy(tmp_path, cache_dir, trained):
    """Stated bound: on 256 demo test reviews, int8 accuracy is within 0.03 of fp32's."""
    from lightning_green.recipe.checkpoints import model_from_checkpoint, read_checkpoint
    from lightning_green.recipe.inference import quantize_dynamic_int8

    model = model_from_checkpoint(read_checkpoint(str(trained[1])))
    linear_names = {name for name, m in model.model.named_modules() if isinstance(m, torch.nn.Linear)}
    info = quantize_dynamic_int8(model.model)
    quantized = {name for name, m in model.model.named_modules()
                 if type(m).__name__ == "Linear" and m.__module__.startswith("torch.ao.nn.quantized.dynamic")}
    assert info["linear_layers_quantized"] == len(linear_names) > 0
    assert quantized == linear_names
    assert not any(isinstance(m, torch.nn.Linear) for m in model.model.modules())

    _, fp32_metrics, fp32 = _serve(tmp_path, cache_dir, trained[1], name="fp32")
    _, int8_metrics, int8 = _serve(tmp_path, cache_dir, trained[1], ["inference.quantization=dynamic_int8"], name="int8")
    assert fp32_metrics["predict/acc"] > 0.6  # the model learned something: the bound is not about chance
    assert abs(int8_metrics["predict/acc"] - fp32_metrics["predict/acc"]) <= 0.03
    rec = int8.extra["inference"]
    assert rec["quantization"] == "dynamic_int8" and rec["quantized"]["linear_layers_quantized"] == len(linear_names)
    assert rec["state_dict_mb"] < fp32.extra["inference"]["state_dict_mb"]  # int8 weights


@pytest.mark.parametrize(("method", "shape_key", "after"), [("heads", "heads_per_layer_after", [1, 1]),
                                                            ("ffn", "intermediate_size_after", [32, 32])])
def test_pruned_checkpoint_reloads_with_its_pruned_shapes(tmp_path, cache_dir, method, shape_key, after):
    from lightning_green.recipe.bert import BertClassifier
    from lightning_green.recipe.pruning import count_parameters

    run(tmp_path / "fit", cache_dir, [f"pruning={method}", "trainer.enable_checkpointing=true"], base=())
    pruning = read_json(tmp_path / "fit" / "footprint.json")["extra"]["pruning"]
    ckpt = tmp_path / "fit" / "checkpoints" / "epoch0-step4.ckpt"
    model = BertClassifier.load_from_checkpoint(ckpt, map_location="cpu")
    assert pruning[shape_key] == after and model.hparams["pruning"][shape_key] == after
    assert count_parameters(model) == pruning["parameters_after"] < pruning["parameters_before"]

    _, report = run(tmp_path / "serve", cache_dir, ["mode=predict", f"ckpt_path={ckpt}"], base=())
    rec = report.extra["inference"]
    assert rec["pruning"]["method"] == method and rec["pruning"][shape_key] == after
    assert rec["parameters"] == pruning["parameters_after"] and rec["predictions"] == 32


def test_resume_continues_the_footprint_and_predict_after_fit(tmp_path, cache_dir):
    """``ckpt_path`` with mode=fit resumes (same run, steps go on); ``predict=true`` serves at the end."""
    from hydra.errors import OverrideParseException

    run(tmp_path / "first", cache_dir, ["trainer.enable_checkpointing=true"], base=())
    first = read_json(tmp_path / "first" / "footprint.json")
    ckpt = tmp_path / "first" / "checkpoints" / "epoch0-step4.ckpt"
    # Hydra takes the recipe's name as written; Lightning's default name needs quotes
    lightning_name = tmp_path / "epoch=0-step=4.ckpt"
    lightning_name.write_bytes(ckpt.read_bytes())
    with pytest.raises(OverrideParseException, match="mismatched input '='"), \
            composed([f"ckpt_path={lightning_name}"], tmp_path / "x", cache_dir):
        pass
    with composed([f"ckpt_path='{lightning_name}'"], tmp_path / "x", cache_dir) as cfg:
        assert cfg.ckpt_path == str(lightning_name)

    # resuming needs the checkpoint's pruning (its shapes)
    with pytest.raises(ValueError, match=r"`pruning` must match the checkpoint .* pruning=none .* got pruning=heads"):
        run(tmp_path / "mismatch", cache_dir, [f"ckpt_path={ckpt}", "pruning=heads"], base=())
    assert not (tmp_path / "mismatch").exists()

    metrics, report = run(tmp_path / "resumed", cache_dir, [f"ckpt_path={ckpt}", "trainer.max_epochs=2", "predict=true"],
                          base=())
    data = read_json(tmp_path / "resumed" / "footprint.json")
    assert data["run_id"] == first["run_id"] and data["steps"] == 8 and data["samples"] == 128
    assert data["energy_kwh_by_phase"]["train"] > first["energy_kwh_by_phase"]["train"]
    assert data["energy_kwh_by_phase"]["predict"] > 0
    inf = data["extra"]["inference"]
    assert inf["mode"] == "fit+predict" and inf["training_run_id"] == data["run_id"] and inf["predictions"] == 32
    assert "val/acc" in data["metrics"] and "predict/acc" in data["metrics"]  # the fit's metrics survive predict
    assert metrics["predict/acc"] == data["metrics"]["predict/acc"]


def test_predict_files_without_labels_serve_only_those_files(tmp_path, cache_dir, trained, monkeypatch):
    from lightning_green.recipe.data import SentimentDataModule

    texts = ["the film was great .", "i thought the plot was dull and the acting awful .", "overall a fun experience ."]
    csv = tmp_path / "requests.csv"
    csv.write_text("text\n" + "\n".join(f'"{t}"' for t in texts) + "\n")
    monkeypatch.setattr(SentimentDataModule, "raw_splits", lambda self: pytest.fail("loaded the training splits"))
    out, metrics, report = _serve(tmp_path, cache_dir, trained[1], [f"data.predict_files={csv}"])
    inf = report.extra["inference"]
    assert inf["predictions"] == 3 and inf["data"] == {"predict_files": [str(csv)], "max_length": 64}
    assert inf["accuracy"] is None and "predict/acc" not in metrics and "predict/acc" not in report.metrics
    assert inf["energy_j_per_1000_predictions"] == pytest.approx(inf["energy_j"] / 3 * 1000)


def test_compile_is_warmed_up_outside_the_predict_phase(tmp_path, cache_dir, trained):
    _, plain_metrics, _ = _serve(tmp_path, cache_dir, trained[1], name="plain")
    _, metrics, report = _serve(tmp_path, cache_dir, trained[1], ["inference.compile=true"], name="compiled")
    inf = report.extra["inference"]
    assert inf["compile"] is True and inf["compile_s"] > 0 and inf["warmup_s"] >= inf["compile_s"]
    assert inf["predictions"] == 256  # the warm-up batch is not counted
    assert metrics["predict/acc"] == pytest.approx(plain_metrics["predict/acc"], abs=2 / 256)
    # the compile's energy is in "other", not in the predict phase
    assert report.energy_kwh_by_phase["other"] * J_PER_KWH >= POWER_W * inf["compile_s"] * 0.95


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("inference.quantization=int4", ["inference.quantization", "'none'", "'dynamic_int8'", "'int4'"]),
        ("mode=predict", ["`ckpt_path`", "required for mode=predict", "None"]),
        ("mode=predict ckpt_path=/no/such/model.ckpt", ["`ckpt_path`", "file not found", "/no/such/model.ckpt"]),
        ("mode=serve", ["`mode`", "'fit'", "'predict'", "'serve'"]),
        ("mode=predict ckpt_path={file} inference.quantization=dynamic_int8 precision=bf16",
         ["inference.quantization=dynamic_int8", "precision=32", "bf16-mixed"]),
        ("mode=predict ckpt_path={file} inference.quantization=dynamic_int8 trainer.accelerator=gpu",
         ["inference.quantization=dynamic_int8", "CPU only", "'none'"]),
        ("inference.batch_size=0", ["inference.batch_size", ">= 1", "got 0"]),
        ("inference.compile=maybe", ["inference.compile", "true, false", "'maybe'"]),
        ("inference.warmup_batches=-1", ["inference.warmup_batches", ">= 0", "-1"]),
        ("predict=yes", ["predict", "true, false", "'yes'"]),
        ("data.predict_split=dev", ["`data.predict_split`", "'validation'", "'dev'"]),
        ("data.predict_files=/no/such/requests.csv", ["`data.predict_files`", "/no/such/requests.csv"]),
        ("predict=true strategy=ddp", ["one process", "strategy=auto", "'ddp'"]),
        ("mode=predict ckpt_path={file} pruning=heads", ["carried over", "pruning.method='heads'"]),
        ("mode=predict ckpt_path={file}", ["`ckpt_path`", "cannot read", "{file}"]),
        ("ckpt_path={file}", ["`ckpt_path`", "cannot read", "{file}"]),
    ],
)
def test_bad_serving_input_fails_before_any_work(tmp_path, cache_dir, monkeypatch, override, words):
    from lightning_green.recipe import bert, data
    from lightning_green.recipe.train import train

    def no_work_yet(*args, **kwargs):
        raise AssertionError("data or model work started before the input was validated")

    monkeypatch.setattr(data.SentimentDataModule, "__init__", no_work_yet)
    monkeypatch.setattr(bert.BertClassifier, "__init__", no_work_yet)
    not_a_checkpoint = tmp_path / "model.ckpt"
    not_a_checkpoint.write_text("not a checkpoint")
    overrides = override.replace("{file}", str(not_a_checkpoint)).split()
    with composed(overrides, tmp_path / "run", cache_dir) as cfg, pytest.raises(ValueError) as err:
        train(cfg)
    for word in words:
        assert word.replace("{file}", str(not_a_checkpoint)) in str(err.value)
    assert not (tmp_path / "run" / "footprint.json").exists()
