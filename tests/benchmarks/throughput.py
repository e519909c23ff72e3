"""Recipe throughput: samples/s of the BERT recipe at 32, bf16 and 16, against a plain PyTorch loop.

The recipe's own parts (``conf/model/tiny_bert.yaml``, ``BertClassifier``, the demo
``SentimentDataModule`` with its offline WordPiece tokenizer) are built once; ``--steps``
training batches are drawn from the recipe's loader once (seeded) and every variant trains
a freshly initialised model (same seed) on exactly those batches:

* ``Lightning``: a Trainer as the recipe configures it (``gradient_clip_val=1.0``,
  ``log_every_n_steps=20``, a CSVLogger; progress bar off, no validation), precision
  ``32-true``, ``bf16-mixed`` and ``16-mixed`` (which Lightning runs as ``bf16-mixed`` on
  a CPU), without and with ``EnergyCallback`` (defaults, files in a temporary folder);
* ``plain PyTorch``: the same model, AdamW groups, warm-up schedule and gradient clipping in
  a hand-written loop, fp32 and ``torch.autocast("cpu", torch.bfloat16)``; with ``--fp16-loop``
  also fp16 autocast, which torch runs on a CPU (Lightning does not; on CPUs without native
  fp16 arithmetic it is several times slower than fp32).

Samples/s counts the batches after ``--warmup`` batches (steady state). Variants alternate
over ``--rounds`` rounds; the table shows medians.

    python -m tests.benchmarks.throughput [--steps 16] [--warmup 3] [--rounds 2] [--threads N] [--fp16-loop]

On a shared machine whose cores other processes also use, pass ``--threads 1``: torch's
OpenMP threads wait for each other at every kernel, and a descheduled thread stalls them all
(2 threads measured 2-12 s per step where 1 thread took 0.6-1 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks._common import machine_line, median, quiet_lightning, table

LIGHTNING_VARIANTS = [("32-true", False), ("32-true", True), ("bf16-mixed", False), ("bf16-mixed", True),
                      ("16-mixed", False), ("16-mixed", True)]
PLAIN_VARIANTS = ["fp32", "bf16 autocast"]
CONF = Path(__file__).resolve().parents[2] / "conf"


def build_recipe(steps: int, batch_size: int = 32) -> tuple[dict, Any, list[dict]]:
    """The tiny_bert config, the tokenizer and ``steps`` training batches of the demo data."""
    import torch
    from omegaconf import OmegaConf

    from lightning_green.recipe.bert import load_tokenizer
    from lightning_green.recipe.data import SentimentDataModule

    model_cfg = OmegaConf.to_container(OmegaConf.load(CONF / "model" / "tiny_bert.yaml"), resolve=True)
    data_cfg = OmegaConf.to_container(OmegaConf.load(CONF / "data" / "demo.yaml"))
    datamodule = SentimentDataModule(
        "demo", num_train=steps * batch_size, num_validation=32, num_test=32, batch_size=batch_size,
        max_length=int(data_cfg["max_length"]), label_noise=float(data_cfg["label_noise"]), seed=42,
    )
    tokenizer = load_tokenizer(None, datamodule.training_texts, int(model_cfg.get("vocab_size", 8000)))
    datamodule.tokenizer = tokenizer
    datamodule.setup("fit")
    torch.manual_seed(42)
    batches = [batch for _, batch in zip(range(steps), datamodule.train_dataloader())]
    return model_cfg, tokenizer, batches


def new_model(model_cfg: dict, tokenizer: Any) -> Any:
    import lightning.pytorch as pl

    from lightning_green.recipe.bert import BertClassifier

    pl.seed_everything(42, verbose=False)
    kwargs = {k: v for k, v in model_cfg.items() if k not in ("_target_", "vocab_size")}
    return BertClassifier(**kwargs, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0)


def _samples(batches: list[dict]) -> int:
    return sum(len(b["labels"]) for b in batches)


def run_lightning(model_cfg: dict, tokenizer: Any, batches: list[dict], warmup: int, precision: str,
                  energy: bool, workdir: str) -> float:
    """Steady-state samples/s of a recipe-configured Trainer on ``batches``."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader

    class Clock(Callback):
        began = ended = 0.0

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if batch_idx == warmup:
                self.began = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.ended = time.perf_counter()

    clock = Clock()
    callbacks: list[Any] = [clock]
    if energy:
        from lightning_green import EnergyCallback

        callbacks.append(EnergyCallback(output_dir=workdir))
    model = new_model(model_cfg, tokenizer)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, precision=precision, max_epochs=1, gradient_clip_val=1.0,
        log_every_n_steps=20, logger=CSVLogger(workdir, name="csv"), callbacks=callbacks,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    return _samples(batches[warmup:]) / (clock.ended - clock.began)


def run_plain(model_cfg: dict, tokenizer: Any, batches: list[dict], warmup: int, mode: str) -> float:
    """Steady-state samples/s of a hand-written loop doing what the recipe's Trainer does."""
    import contextlib

    import torch
    from transformers import get_linear_schedule_with_warmup

    module = new_model(model_cfg, tokenizer)
    model, hp = module.model, module.hparams
    model.train()
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": hp.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=hp.learning_rate)
    total = len(batches)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    dtype = {"bf16 autocast": torch.bfloat16, "fp16 autocast": torch.float16}.get(mode)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    began = 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            began = time.perf_counter()
        context = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with context:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    return _samples(batches[warmup:]) / (time.perf_counter() - began)


def run(steps: int = 16, warmup: int = 3, rounds: int = 2, threads: int | None = None,
        fp16_loop: bool = False) -> dict[str, Any]:
    import torch

    quiet_lightning()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads:
        torch.set_num_threads(threads)
    model_cfg, tokenizer, batches = build_recipe(steps + warmup)
    plain_modes = PLAIN_VARIANTS + (["fp16 autocast"] if fp16_loop else [])
    variants = [("lightning", p, e) for p, e in LIGHTNING_VARIANTS] + [("plain", m, False) for m in plain_modes]
    results: dict[tuple, list[float]] = {v: [] for v in variants}
    root = tempfile.mkdtemp(prefix="lg-bench-throughput-")
    try:
        for r in range(rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                kind, precision, energy = variant
                if kind == "lightning":
                    value = run_lightning(model_cfg, tokenizer, batches, warmup, precision, energy,
                                          tempfile.mkdtemp(dir=root))
                else:
                    value = run_plain(model_cfg, tokenizer, batches, warmup, precision)
                results[variant].append(value)
                print(f"  round {r + 1}/{rounds} {kind:9} {precision:13} {'+EnergyCallback' if energy else '':15} "
                      f"{value:7.1f} samples/s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lengths = [int(b["input_ids"].shape[1]) for b in batches]
    return {"results": results, "steps": steps, "warmup": warmup, "rounds": rounds,
            "threads": torch.get_num_threads(), "batch_size": len(batches[0]["labels"]),
            "tokens": f"{min(lengths)}-{max(lengths)}", "model": model_cfg.get("config", {})}


def format_result(result: dict[str, Any]) -> str:
    res = {k: median(v) for k, v in result["results"].items()}
    plain = {"32-true": res[("plain", "fp32", False)], "bf16-mixed": res[("plain", "bf16 autocast", False)],
             "16-mixed": res[("plain", "bf16 autocast", False)]}
    rows = []
    for precision, energy in LIGHTNING_VARIANTS:
        value = res[("lightning", precision, energy)]
        bare = res[("lightning", precision, False)]
        label = precision + (" (runs as bf16-mixed on CPU)" if precision == "16-mixed" else "")
        rows.append([f"Lightning recipe, {label}", "yes" if energy else "no", f"{value:.1f}",
                     f"{value / plain[precision]:.3f}", f"{value / bare:.3f}" if energy else "-"])
    for kind, mode, _ in res:
        if kind == "plain":
            rows.append([f"plain PyTorch loop, {mode}", "no", f"{res[(kind, mode, False)]:.1f}",
                         "1.000" if mode != "fp16 autocast" else "-", "-"])
    cfg = result["model"]
    title = (f"Recipe throughput: tiny_bert ({cfg.get('num_hidden_layers')} layers, hidden {cfg.get('hidden_size')}), "
             f"demo data, batch {result['batch_size']}, {result['tokens']} tokens per row, "
             f"{result['steps']} timed steps after {result['warmup']} warm-up, {result['threads']} torch threads, "
             f"median of {result['rounds']} rounds")
    return table(["variant", "EnergyCallback", "samples/s", "vs plain loop (same precision)",
                  "vs same Trainer without callback"], rows, title)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="timed training batches per run (default 16)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--fp16-loop", action="store_true", help="also time the plain loop under fp16 autocast")
    parser.add_argument("--quick", action="store_true", help="4 timed steps, 1 round (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.rounds = 4, 1, 1
    print(machine_line(), flush=True)
    text = format_result(run(args.steps, args.warmup, args.rounds, args.threads, args.fp16_loop))
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
