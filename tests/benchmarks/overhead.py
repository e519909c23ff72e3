"""Overhead: wall time of one small Lightning fit with and without a footprint tracker.

Thousands of short training steps (an MLP on random data, a few ms of real compute per step,
one torch thread) run in alternation over several rounds, under:

* ``bare``: no tracker;
* ``EnergyCallback``: lightning-green at its defaults (``sensors="auto"``; files written to a
  temporary folder);
* ``codecarbon``: ``OfflineEmissionsTracker(country_iso_code="FRA", save_to_file=False,
  log_level="error")`` started before ``fit`` and stopped after it;
* ``DeviceStatsMonitor``: Lightning's own device statistics callback.

Every variant gets the same ``CSVLogger`` (``DeviceStatsMonitor`` needs a logger). The round
order rotates, and each round's times are divided by that round's bare time; the table shows
the median of those ratios for the whole ``fit`` (construction of the tracker, set-up,
teardown and files included), for the training loop alone (``on_train_start`` to
``on_train_end``) and for the process CPU time of the fit (all threads; robust to other
processes competing for the cores). A warm-up round (not counted) absorbs imports and one-time caches.

    python -m tests.benchmarks.overhead [--steps 2000] [--rounds 5] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from tests.benchmarks._common import machine_line, median, quiet_lightning, table

VARIANTS = ("bare", "EnergyCallback", "codecarbon", "DeviceStatsMonitor")


def _model_and_data(batch_size: int, features: int, hidden: int, batches_per_epoch: int) -> tuple[Any, Any]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Mlp(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(features, hidden), torch.nn.ReLU(),
                torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                torch.nn.Linear(hidden, 10),
            )

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    generator = torch.Generator().manual_seed(0)
    n = batch_size * batches_per_epoch
    data = TensorDataset(torch.randn(n, features, generator=generator),
                         torch.randint(0, 10, (n,), generator=generator))
    return Mlp, DataLoader(data, batch_size=batch_size, shuffle=False)


class LoopTimer:
    """A callback recording ``on_train_start`` -> ``on_train_end`` (the training loop)."""

    def __new__(cls) -> Any:
        from lightning.pytorch.callbacks import Callback

        class _Timer(Callback):
            began = ended = 0.0

            def on_train_start(self, trainer: Any, pl_module: Any) -> None:
                self.began = time.perf_counter()

            def on_train_end(self, trainer: Any, pl_module: Any) -> None:
                self.ended = time.perf_counter()

        return _Timer()


def run_once(variant: str, steps: int, model_cls: Any, loader: Any, workdir: str) -> tuple[float, float, float]:
    """One fit under ``variant``; returns (whole fit s, training loop s, process CPU s of the fit)."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    pl.seed_everything(0, verbose=False)
    model = model_cls()
    timer = LoopTimer()
    began, began_cpu = time.perf_counter(), time.process_time()
    callbacks: list[Any] = [timer]
    stop: Callable[[], Any] | None = None
    if variant == "EnergyCallback":
        from lightning_green import EnergyCallback

        callbacks.append(EnergyCallback(output_dir=workdir))
    elif variant == "DeviceStatsMonitor":
        from lightning.pytorch.callbacks import DeviceStatsMonitor

        callbacks.append(DeviceStatsMonitor())
    elif variant == "codecarbon":
        from codecarbon import OfflineEmissionsTracker

        tracker = OfflineEmissionsTracker(country_iso_code="FRA", save_to_file=False, log_level="error")
        tracker.start()
        stop = tracker.stop
    elif variant != "bare":
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=steps, max_epochs=-1, logger=CSVLogger(workdir, name="csv"),
        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, num_sanity_val_steps=0,
    )
    trainer.fit(model, train_dataloaders=loader)
    if stop is not None:
        stop()
    ended, ended_cpu = time.perf_counter(), time.process_time()
    return ended - began, timer.ended - timer.began, ended_cpu - began_cpu


def run(steps: int = 2000, rounds: int = 5, batch_size: int = 64, features: int = 256, hidden: int = 512,
        variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """Alternate the variants over ``rounds`` rounds; return raw times and per-round ratios."""
    import torch

    quiet_lightning()
    torch.set_num_threads(1)
    model_cls, loader = _model_and_data(batch_size, features, hidden, batches_per_epoch=500)
    times: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    root = tempfile.mkdtemp(prefix="lg-bench-overhead-")
    try:
        for variant in variants:  # warm-up: imports, codecarbon's first start, caches
            run_once(variant, max(50, steps // 10), model_cls, loader, tempfile.mkdtemp(dir=root))
        for r in range(rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for variant in order:
                gc.collect()
                times[variant].append(run_once(variant, steps, model_cls, loader, tempfile.mkdtemp(dir=root)))
                print(f"  round {r + 1}/{rounds} {variant:<18} fit {times[variant][-1][0]:7.3f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = times["bare"]
    ratios = {v: tuple([t[i] / b[i] for t, b in zip(times[v], base)] for i in range(3)) for v in variants}
    return {"steps": steps, "rounds": rounds, "batch_size": batch_size, "times": times, "ratios": ratios}


def format_result(result: dict[str, Any]) -> str:
    steps = result["steps"]
    base_loop = median([t[1] for t in result["times"]["bare"]])
    rows = []
    for variant, runs in result["times"].items():
        fit_ratios, loop_ratios, cpu_ratios = result["ratios"][variant]
        loop_s = median([t[1] for t in runs])
        rows.append([
            variant,
            f"{median([t[0] for t in runs]):.2f}",
            f"{1e3 * loop_s / steps:.3f}",
            f"{median(fit_ratios):.3f}",
            f"{min(fit_ratios):.3f}-{max(fit_ratios):.3f}",
            f"{median(loop_ratios):.3f}",
            f"{median(cpu_ratios):.3f}",
            f"{1e6 * (loop_s - base_loop) / steps:+.0f}",
        ])
    title = (f"Overhead: {steps} training steps (MLP, batch {result['batch_size']}, 1 torch thread), "
             f"{result['rounds']} alternating rounds, medians")
    notes = ("fit ratio: wall time of the whole fit (tracker construction, set-up, teardown, files) over the "
             "same round's bare fit; loop ratio: on_train_start -> on_train_end only; CPU ratio: process CPU "
             "time of the whole fit (all threads; insensitive to other processes on a shared machine); "
             "us/step: loop time per step minus bare's.")
    return table(["variant", "fit s", "ms/step", "fit ratio", "fit ratio range", "loop ratio", "CPU ratio",
                  "us/step vs bare"], rows, title) + "\n\n" + notes


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per fit (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="MLP batch size (default 64: ~3 ms/step)")
    parser.add_argument("--quick", action="store_true", help="300 steps, 2 rounds (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 300, 2
    print(machine_line(), flush=True)
    text = format_result(run(args.steps, args.rounds, args.batch_size))
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
