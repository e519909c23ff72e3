"""The recipe's parts: pruning (shapes, parameters, step time), data, tokenizer, config helpers."""

from __future__ import annotations

import json
import time

import pytest
import torch

from tests.helpers.recipe_helpers import CONF


def _bert(hidden, layers, heads, intermediate, vocab=500, seed=0):
    from lightning_green.recipe.bert import BertClassifier

    torch.manual_seed(seed)
    return BertClassifier(config={"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                                  "intermediate_size": intermediate}, vocab_size=vocab)


# -- pruning ---------------------------------------------------------------------------------
def test_structured_pruning_shrinks_layers_and_keeps_the_model_working():
    from lightning_green.recipe.pruning import apply_pruning

    x = torch.randint(5, 500, (4, 20))
    mask = torch.ones_like(x)
    mask[:, 15:] = 0
    for method, check in (
        ("heads", lambda layer: (layer.attention.self.query.out_features, layer.attention.output.dense.in_features,
                                 layer.attention.self.num_attention_heads) == (32, 32, 2)),
        ("ffn", lambda layer: (layer.intermediate.dense.out_features, layer.output.dense.in_features) == (64, 64)),
    ):
        model = _bert(hidden=64, layers=2, heads=4, intermediate=128)
        callbacks, info = apply_pruning(model, method, 0.5)
        assert all(check(layer) for layer in model.model.bert.encoder.layer)
        assert info["parameters_after"] < info["parameters_before"]
        assert info["parameters_after"] == sum(p.numel() for p in model.parameters())
        out = model(input_ids=x, attention_mask=mask, labels=torch.tensor([0, 1, 0, 1]))
        assert out.logits.shape == (4, 2) and torch.isfinite(out.loss)
        out.loss.backward()


def test_head_pruning_keeps_the_most_important_heads_exactly():
    """The kept heads compute exactly what they computed before: only whole heads were removed."""
    from lightning_green.recipe.pruning import prune_heads

    model = _bert(hidden=64, layers=1, heads=4, intermediate=128)
    attention = model.model.bert.encoder.layer[0].attention.self
    with torch.no_grad():  # make head 2 the least important
        attention.query.weight[32:48] *= 0.01
        attention.key.weight[32:48] *= 0.01
        attention.value.weight[32:48] *= 0.01
    before = attention.value.weight.detach().clone()
    prune_heads(model, 0.25)
    kept = torch.cat([before[0:32], before[48:64]])
    assert torch.equal(attention.value.weight, kept) and attention.all_head_size == 48


def test_pruning_amount_is_validated():
    from lightning_green.recipe.pruning import validate_pruning

    for bad in (0, 1, 1.5, -0.1, "half", None, True):
        with pytest.raises(ValueError, match=r"`pruning.amount` must be a number in \(0, 1\)"):
            validate_pruning("heads", bad)
    assert validate_pruning("none", None) == ("none", None)
    with pytest.raises(ValueError, match="`pruning.method` must be one of"):
        validate_pruning("structured", 0.5)


def _step_s(model, batch) -> float:
    start = time.perf_counter()
    model(**batch).loss.backward()
    return time.perf_counter() - start


def _best_step_s(models: dict, batch: dict, rounds: int = 5) -> dict[str, float]:
    """Fastest step per model over interleaved rounds (other load slows all models alike)."""
    for model in models.values():  # warm-up
        _step_s(model, batch)
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(_step_s(model, batch))
    return {name: min(values) for name, values in times.items()}


def test_structured_pruning_lowers_step_time_masks_do_not():
    """Training-step time (forward + backward, one thread) of a small BERT before and after pruning.

    From the shapes, removing half the heads removes 1/6 of the Linear FLOPs and half of the
    attention maps; half the FFN units, 1/3 of the Linear FLOPs. Measured here: about 0.83x
    and 0.75x of the dense step. L1 masks (what ModelPruning does) keep the dense shapes: ~1.0x.
    A noisy machine gets up to three tries.
    """
    import torch.nn.utils.prune as prune

    from lightning_green.recipe.pruning import apply_pruning

    models = {}
    for method in ("none", "heads", "ffn"):
        models[method] = _bert(hidden=256, layers=2, heads=8, intermediate=1024)
        apply_pruning(models[method], method, None if method == "none" else 0.5)
    models["l1_unstructured"] = _bert(hidden=256, layers=2, heads=8, intermediate=1024)
    linears = [(m, "weight") for m in models["l1_unstructured"].modules() if isinstance(m, torch.nn.Linear)]
    prune.global_unstructured(linears, pruning_method=prune.L1Unstructured, amount=0.5)
    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(5, 500, (8, 64)), "labels": torch.randint(0, 2, (8,))}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(3):
            best = _best_step_s(models, batch)
            ratio = {name: value / best["none"] for name, value in best.items()}
            if ratio["heads"] < 0.93 and ratio["ffn"] < 0.88 and ratio["l1_unstructured"] > 0.85:
                break
    finally:
        torch.set_num_threads(threads)
    assert ratio["heads"] < 0.93, ratio
    assert ratio["ffn"] < 0.88, ratio
    assert ratio["l1_unstructured"] > 0.85, ratio  # masks alone save nothing


# -- data --------------------------------------------------------------------------------------
def test_demo_data_is_deterministic_and_balanced():
    from lightning_green.recipe.demo_data import generate_reviews

    a, b, c = generate_reviews(400, 1), generate_reviews(400, 1), generate_reviews(400, 2)
    assert a == b and a != c
    assert 0.4 < sum(a["label"]) / 400 < 0.6
    assert all(isinstance(t, str) and t for t in a["text"])


def test_files_datamodule_splits_tokenizes_pads_and_caches(tmp_path):
    from lightning_green.recipe.bert import load_tokenizer
    from lightning_green.recipe.data import SentimentDataModule
    from lightning_green.recipe.demo_data import generate_reviews

    reviews = generate_reviews(100, 3)
    train_csv = tmp_path / "train.csv"
    lines = ["text,label"] + [f'"{t}",{y}' for t, y in zip(reviews["text"], reviews["label"])]
    train_csv.write_text("\n".join(lines) + "\n")
    test_json = tmp_path / "test.jsonl"
    test_json.write_text("\n".join(json.dumps({"text": t, "label": y, "id": i})
                                   for i, (t, y) in enumerate(zip(reviews["text"][:10], reviews["label"][:10]))))

    def module():
        return SentimentDataModule("files", train_files=str(train_csv), test_files=str(test_json), batch_size=8,
                                   max_length=16, validation_fraction=0.2, cache_dir=str(tmp_path / "cache"))

    dm = module()
    raw = dm.raw_splits()
    assert (len(raw["train"]), len(raw["validation"]), len(raw["test"])) == (80, 20, 10)
    dm.tokenizer = load_tokenizer(None, dm.training_texts, vocab_size=200, cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 1
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) >= {"input_ids", "attention_mask", "labels"} and batch["input_ids"].shape[0] == 8
    assert batch["input_ids"].shape[1] <= 16  # truncated to max_length, padded per batch
    # a second module (another rank, a later run) loads the cache instead of tokenizing again
    other = module()
    other.tokenizer = load_tokenizer(None, other.training_texts, vocab_size=200, cache_dir=str(tmp_path / "cache"))
    assert other.tokenizer.get_vocab() == dm.tokenizer.get_vocab()
    other._tokenize = lambda: pytest.fail("tokenized again despite the cache")
    other.setup("fit")
    assert len(other.datasets["train"]) == 80


def test_imdb_source_uses_the_hub_splits_and_splits_off_validation(monkeypatch):
    import datasets

    from lightning_green.recipe.data import SentimentDataModule

    def fake_hub(name, *args, **kwargs):  # the hub's layout of stanfordnlp/imdb, offline
        assert name == "stanfordnlp/imdb" and not args and not kwargs
        split = lambda n: datasets.Dataset.from_dict({"text": [f"review {i}" for i in range(n)], "label": [i % 2 for i in range(n)]})  # noqa: E731
        return datasets.DatasetDict({"train": split(50), "test": split(30), "unsupervised": split(70)})

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    raw = SentimentDataModule("imdb", validation_fraction=0.2).raw_splits()
    assert list(raw) == ["train", "validation", "test"]
    assert (len(raw["train"]), len(raw["validation"]), len(raw["test"])) == (40, 10, 30)


def test_subsample_fraction_and_validation_errors():
    from lightning_green.recipe.data import SentimentDataModule

    dm = SentimentDataModule("demo", num_train=100, num_validation=40, num_test=20, subsample_fraction=0.5)
    assert [len(dm.raw_splits()[s]) for s in ("train", "validation", "test")] == [50, 20, 10]
    with pytest.raises(ValueError, match=r"`data.subsample_fraction` must be in \(0, 1\], got 0"):
        SentimentDataModule("demo", subsample_fraction=0)
    with pytest.raises(ValueError, match="`data.source` must be one of"):
        SentimentDataModule("hub")


def test_tokenizer_is_trained_offline_and_cached(tmp_path):
    from lightning_green.recipe.bert import load_tokenizer

    texts = ["the film was good .", "the plot was not good at all ."] * 20
    tok = load_tokenizer(None, texts, vocab_size=100, cache_dir=str(tmp_path))
    ids = tok("the film was good .")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "the", "film", "was", "good", ".", "[SEP]"]
    assert tok.pad_token_id == 0 and len(list((tmp_path / "tokenizers").iterdir())) == 1
    from lightning_green.recipe import bert

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bert, "train_wordpiece_tokenizer", lambda *a: pytest.fail("retrained despite the cache"))
        again = load_tokenizer(None, lambda: texts, 100, str(tmp_path))
    assert again.get_vocab() == tok.get_vocab()


# -- config helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    (32, "32-true"), ("32", "32-true"), (16, "16-mixed"), ("bf16", "bf16-mixed"), (64, "64-true"), (32.0, "32-true"),
    ("bf16-true", "bf16-true"), ("16-true", "16-true"), ("BF16-Mixed", "bf16-mixed"),
])
def test_precision_values_are_normalised(value, expected):
    from lightning_green.recipe.train import normalize_precision

    assert normalize_precision(value) == expected


def test_child_argv_runs_the_parents_job_in_the_parents_folder():
    from lightning_green.recipe.train import CHILD_ENV, child_argv

    argv = ["train.py", "-m", "precision=32,bf16", "strategy=ddp", 'hydra.run.dir="outputs/x"']
    job = json.dumps({"overrides": ["precision=bf16", "strategy=ddp"], "output_dir": "/runs/sweep/1"})
    assert child_argv(argv, {}) is None
    assert child_argv(argv, {CHILD_ENV: job, "LOCAL_RANK": "0"}) is None  # rank 0 runs its own argv
    new = child_argv(argv, {CHILD_ENV: job, "LOCAL_RANK": "1"})
    assert new[:3] == ["train.py", "precision=bf16", "strategy=ddp"] and "-m" not in new
    assert 'hydra.run.dir="/runs/sweep/1"' in new and "hydra.output_subdir=null" in new
    assert "hydra/job_logging=none" in new


def test_ddp_without_gpus_means_two_cpu_processes(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    from lightning_green.recipe.train import resolve_devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        assert resolve_devices(compose("train", overrides=["strategy=ddp"])) == 2
        assert resolve_devices(compose("train", overrides=["strategy=ddp_spawn"])) == 2
        assert resolve_devices(compose("train", overrides=["strategy=ddp", "trainer.devices=3"])) == 3
        assert resolve_devices(compose("train")) == "auto"
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert resolve_devices(compose("train", overrides=["strategy=ddp"])) == "auto"


def test_defaults_are_offline():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train")
    assert cfg.data.source == "demo" and cfg.model.pretrained is None and cfg.precision == 32
    assert cfg.strategy.name == "auto" and cfg.pruning.method == "none" and "cooldown_s" in cfg.energy
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        base = compose("train", overrides=["model=bert_base", "data=imdb"])
    assert base.model.pretrained == "bert-base-uncased" and base.model.learning_rate == 2e-5
    assert base.data.source == "imdb" and base.data.batch_size == 32


def test_energy_keys_reach_the_callback_and_prometheus_port_builds_an_exporter(tmp_path):
    """Every EnergyCallback argument is an energy.* key; energy.prometheus_port serves /metrics."""
    import socket

    from lightning_green.exporters import PrometheusExporter
    from lightning_green.recipe.train import _energy_callback
    from tests.helpers.recipe_helpers import composed

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with composed([f"energy.prometheus_port={port}", "energy.snapshot_every_s=5", "energy.water_l_per_kwh=0.5",
                   "energy.price_per_kwh=0.2", "energy.currency=EUR", "energy.embodied=true"],
                  tmp_path / "out", tmp_path / "cache") as cfg:
        cb = _energy_callback(cfg, str(tmp_path / "out"))
    (exporter,) = cb.exporters
    assert isinstance(exporter, PrometheusExporter) and exporter.port == port
    options = cb.meter.options
    assert (options.snapshot_every_s, options.water_l_per_kwh, options.currency) == (5.0, 0.5, "EUR")
    assert options.carbon_options.embodied is not None
    with composed(["energy.prometheus_port=70000"], tmp_path / "o2", tmp_path / "cache") as cfg:
        with pytest.raises(ValueError, match=r"energy.prometheus_port must be an integer >= 0 and <= 65535.*70000"):
            _energy_callback(cfg, str(tmp_path / "o2"))
