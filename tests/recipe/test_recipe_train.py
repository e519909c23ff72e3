"""The BERT recipe end to end: real configs, real (tiny) Trainers, real footprint files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.recipe_helpers import CONF, REPO, TINY, composed, read_json

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("recipe-cache")


def run_train(tmp_path: Path, cache_dir: Path, overrides: list[str]):
    from lightning_green.recipe.train import train

    out = tmp_path / "run"
    with composed(overrides, out, cache_dir) as cfg:
        metrics, report = train(cfg)
    return out, metrics, report


# One fit per precision and per pruning mode (paired to keep the suite short).
@pytest.mark.parametrize(
    ("precision", "pruning", "lightning_precision"),
    [("32", "none", "32-true"), ("bf16", "heads", "bf16-mixed"), ("16", "ffn", "bf16-mixed"),
     ("32-true", "l1_unstructured", "32-true")],
)
def test_fit_writes_footprint_with_config_overrides_metrics_and_pruning(
    tmp_path, cache_dir, capsys, precision, pruning, lightning_precision
):
    overrides = [f"precision={precision}", f"pruning={pruning}"]
    out, metrics, report = run_train(tmp_path, cache_dir, overrides)

    assert {p.name for p in out.iterdir()} >= {"footprint.json", "emissions.csv", "steps.csv"}
    data = read_json(out / "footprint.json")
    assert data["status"] == "completed"
    assert data["energy_kwh"] > 0 and data["samples"] == 64 and data["steps"] == 4
    # config: the resolved config; overrides: what was asked on the command line
    assert str(data["config"]["precision"]) == precision
    assert data["config"]["pruning"]["method"] == pruning
    assert data["config"]["paths"]["output_dir"] == str(out)
    assert all(o in data["overrides"] for o in overrides)
    # metrics: the validation metrics of the fit
    assert 0.0 <= data["metrics"]["val/acc"] <= 1.0 and "val/f1" in data["metrics"] and "train/loss" in data["metrics"]
    assert data["metrics"]["val/acc"] == pytest.approx(metrics["val/acc"])
    # precision really used (16-mixed has no fp16 AMP on a CPU: Lightning runs bf16-mixed)
    assert data["extra"]["model"]["precision"] == lightning_precision
    assert report.context.get("precision") in (lightning_precision, None)
    # pruning: parameter counts and sparsity as they are after training
    info = data["extra"]["pruning"]
    assert info["method"] == pruning
    if pruning == "none":
        assert info["parameters_after"] == info["parameters_before"] and info["sparsity"] == 0.0
    elif pruning == "l1_unstructured":  # masks: same parameters, half of the Linear weights zero
        assert info["parameters_after"] == info["parameters_before"]
        assert info["sparsity"] == pytest.approx(0.5, abs=0.01)
    elif pruning == "heads":
        assert info["heads_per_layer_before"] == [2, 2] and info["heads_per_layer_after"] == [1, 1]
        assert info["parameters_after"] < info["parameters_before"]
    else:
        assert info["intermediate_size_before"] == [64, 64] and info["intermediate_size_after"] == [32, 32]
        assert info["parameters_after"] < info["parameters_before"]
    printed = capsys.readouterr().out
    assert "Energy (IT, before PUE)" in printed and "by phase:" in printed and "J/sample" in printed
    assert f"Validation: accuracy {metrics['val/acc']:.4f}" in printed
    assert f"in {out}" in printed


def test_pretrained_checkpoint_and_local_files(tmp_path, cache_dir):
    """``model.pretrained=PATH`` with ``data=files`` (CSV, validation split off train) and ``test=true``."""
    import csv

    from lightning_green.recipe.bert import BertClassifier, load_tokenizer
    from lightning_green.recipe.demo_data import generate_reviews

    reviews = generate_reviews(60, 7)
    for name, rows in (("train.csv", range(0, 50)), ("test.csv", range(50, 60))):
        with open(tmp_path / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([reviews["text"][i], reviews["label"][i]] for i in rows)
    ckpt = tmp_path / "ckpt"
    tokenizer = load_tokenizer(None, reviews["text"], vocab_size=300)
    BertClassifier(config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 64}, vocab_size=len(tokenizer)).model.save_pretrained(ckpt)
    tokenizer.save_pretrained(ckpt)
    out, metrics, report = run_train(tmp_path, cache_dir, [
        f"model.pretrained={ckpt}", "test=true", "data=files", f"data.train_files={tmp_path / 'train.csv'}",
        f"data.test_files={tmp_path / 'test.csv'}", "data.validation_fraction=0.2",
    ])
    data = read_json(out / "footprint.json")
    assert data["extra"]["model"]["name"] == str(ckpt)
    assert data["extra"]["model"]["parameters"] < 100_000  # the local 1-layer model, not the config's 2 layers
    assert data["samples"] == 40  # 50 rows, 10 split off for validation
    assert data["energy_kwh_by_phase"]["test"] > 0 and "test/acc" in data["metrics"]


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("precision=fp8", ["`precision`", "bf16", "16-mixed", "'fp8'"]),
        ("precision=true", ["`precision`", "32"]),
        ("pruning=heads pruning.amount=1.5", ["`pruning.amount`", "(0, 1)", "1.5"]),
        ("pruning=ffn pruning.amount=0", ["`pruning.amount`", "(0, 1)", "got 0"]),
        ("pruning.method=magic", ["`pruning.method`", "l1_unstructured", "'magic'"]),
        ("data=files data.train_files=/no/such/train.csv", ["`data.train_files`", "/no/such/train.csv"]),
        ("data=files", ["`data.train_files`", "required"]),
        ("data=files data.train_files=x.txt", ["`data.train_files`", ".parquet", "'.txt'"]),
        ("strategy=fsdp trainer.accelerator=cpu", ["strategy=fsdp", "ddp_spawn"]),
        ("energy.pue=0.5", ["energy.pue", ">= 1", "got 0.5"]),
        ("energy.sampling_interval_s=-1", ["energy.sampling_interval_s", "> 0", "-1"]),
        ("energy.cooldown_s=-5", ["energy.cooldown_s", ">= 0", "-5"]),
        ("+energy.pue_factor=2", ["energy.pue_factor", "not an EnergyCallback argument", "country_iso_code"]),
        ("strategy=ddp strategy.cpu_devices=two", ["strategy.cpu_devices", "integer", "'two'"]),
    ],
)
def test_bad_overrides_fail_before_any_data_or_model_work(tmp_path, cache_dir, monkeypatch, override, words):
    from lightning_green.recipe import data
    from lightning_green.recipe.train import train

    def no_data_yet(*args, **kwargs):
        raise AssertionError("data preparation started before the config was validated")

    monkeypatch.setattr(data.SentimentDataModule, "__init__", no_data_yet)
    with composed(override.split(), tmp_path / "run", cache_dir) as cfg, pytest.raises(ValueError) as err:
        train(cfg)
    for word in words:
        assert word in str(err.value)
    assert not (tmp_path / "run" / "footprint.json").exists()


def test_unknown_strategy_names_the_group_and_its_choices(tmp_path, cache_dir):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as err, composed(["strategy=horovod"], tmp_path, cache_dir):
        pass
    message = str(err.value)
    assert "strategy/horovod" in message
    for choice in ("auto", "ddp", "ddp_spawn", "fsdp"):
        assert f"\t{choice}\n" in message + "\n"


def test_unknown_strategy_on_the_command_line(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "strategy=horovod"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, **OFFLINE_ENV}, timeout=120)
    assert proc.returncode != 0
    assert "Could not find 'strategy/horovod'" in proc.stderr and "ddp_spawn" in proc.stderr
    assert not list(tmp_path.rglob("footprint.json"))
    assert time.perf_counter() - start < 60


def _ddp_env(cache_dir: Path) -> dict[str, str]:
    env = {**os.environ, **OFFLINE_ENV, "LIGHTNING_GREEN_CACHE": str(cache_dir), "PYTHONPATH": str(REPO)}
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_PORT", "MASTER_ADDR"):
        env.pop(key, None)
    return env


@pytest.mark.ddp
def test_ddp_two_cpu_processes_rank_one_writes_nothing(tmp_path, cache_dir):
    """``python train.py precision=16 strategy=ddp``: one footprint for both ranks, no rank-1 files."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "train.py"), "precision=16", "strategy=ddp", *TINY, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=_ddp_env(cache_dir), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = read_json(run_dir / "footprint.json")
    assert data["world_size"] == 2 and set(data["energy_kwh_by_rank"]) == {"0", "1"}
    assert data["samples"] == 64  # 2 ranks x 2 steps x 16
    assert data["extra"]["model"]["precision"] == "bf16-mixed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing outside the run folder
    assert not list(run_dir.glob("*ddp_process*"))  # Lightning's default would leave train_ddp_process_1.log
    assert proc.stdout.count("lightning-green footprint:") == 1


@pytest.mark.ddp
@pytest.mark.slow
def test_multirun_with_ddp_one_footprint_per_job_and_no_second_sweep(tmp_path, cache_dir):
    """``-m`` + ``strategy=ddp``: the relaunched rank 1 must not re-enter the sweep."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(REPO / "train.py"), "-m", "precision=32,bf16", "strategy=ddp", *TINY,
           f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=_ddp_env(cache_dir), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no second sweep, no outputs/
    footprints = sorted(sweep.rglob("footprint.json"))
    assert [p.parent.name for p in footprints] == ["0", "1"]
    for job, precision in (("0", "32-true"), ("1", "bf16-mixed")):
        data = read_json(sweep / job / "footprint.json")
        assert data["world_size"] == 2 and data["extra"]["model"]["precision"] == precision
        assert not list((sweep / job).glob("*ddp_process*"))
    assert (sweep / "comparison.md").exists()  # the Hydra compare callback ran once, on rank 0


def test_configs_exist_for_every_documented_choice():
    for group, choices in {"strategy": ["auto", "ddp", "ddp_spawn", "fsdp"],
                           "pruning": ["none", "l1_unstructured", "heads", "ffn"],
                           "model": ["tiny_bert", "bert_base"], "data": ["demo", "imdb", "files"],
                           "energy": ["default"]}.items():
        assert sorted(p.stem for p in (CONF / group).glob("*.yaml")) == sorted(choices)
