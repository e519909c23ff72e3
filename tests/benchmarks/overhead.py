"""Overhead: wall time of one small Lightning fit with and without a footprint tracker.

Thousands of short training steps (an MLP on random data, a few ms of real compute per step,
one torch thread) run in alternation over several rounds, under:

* ``bare``: no tracker;
* ``EnergyCallback``: lightning-green at its defaults (``sensors="auto"``; files written to a
  temporary folder);
* ``codecarbon``: ``OfflineEmissionsTracker(country_iso_code="FRA", save_to_file=False,
  log_level="error")`` started before ``fit`` and stopped after it;
* ``DeviceStatsMonitor``: Lightning's own device statistics callback;
* ``empty Callback``: a ``Callback()`` with no hooks of its own: what Lightning's dispatch
  costs per callback and step (it calls every hook of every callback, each in a profiler
  context), the floor under any callback-based tracker.

Every variant gets the same ``CSVLogger`` (``DeviceStatsMonitor`` needs a logger). The round
order rotates, and each round's times are divided by that round's bare time; the table shows
the median of those ratios for the whole ``fit`` (construction of the tracker, set-up,
teardown and files included), for the training loop alone (``on_train_start`` to
``on_train_end``) and for the process CPU time of the fit (all threads).

On a shared machine, other processes move whole fits by tens of percent, far more than the
1 % to be measured. A second measurement is therefore made inside single fits: the batch
hooks of ``EnergyCallback`` (and of ``DeviceStatsMonitor``) run in every other block of 10
steps and are skipped in the others, so both conditions share the process, the sampler
thread and the moment; the mean step time with the hooks on over the mean with them off is
what the callback costs the training thread (its fixed set-up/teardown cost per fit is in
``tests.benchmarks.hooks``). codecarbon cannot be switched on and off per step. A warm-up round (not counted) absorbs imports and one-time caches.

Two step lengths by default: batch 64 (~2 ms of compute per step here, the hard case, 2,000
steps, 8 rounds) and batch 384 (~10 ms, 1,000 steps, 7 rounds).

    python -m tests.benchmarks.overhead [--config BATCH:STEPS:ROUNDS ...] [--ab-steps 3000]
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

VARIANTS = ("bare", "EnergyCallback", "codecarbon", "DeviceStatsMonitor", "empty Callback")


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
    elif variant == "empty Callback":  # what Lightning's hook dispatch alone costs per callback
        from lightning.pytorch.callbacks import Callback

        callbacks.append(Callback())
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


def _toggled(cls: Any, block: int) -> Any:
    """A subclass of callback ``cls`` whose batch hooks run only in every other block of steps."""

    class Toggled(cls):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.step_t: list[float] = []
            self.step_cpu: list[float] = []
            self.step_on: list[bool] = []

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            on = (len(self.step_t) // block) % 2 == 0
            self.step_t.append(time.perf_counter())
            self.step_cpu.append(time.thread_time())
            self.step_on.append(on)
            if on:
                super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if self.step_on[-1]:
                super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    return Toggled


def run_ab(steps: int = 3000, repeats: int = 2, block: int = 10, batch_size: int = 64, features: int = 256,
           hidden: int = 512) -> dict[str, list[dict[str, float]]]:
    """In-fit A/B: each callback's batch hooks on and off in alternating blocks of ``block`` steps.

    Both conditions share the same fit, process, thread and moment, so other load on the machine
    hits them alike; the difference is what the hooks (and the work they cause) cost the training
    thread per step.
    """
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import DeviceStatsMonitor
    from lightning.pytorch.loggers import CSVLogger

    from lightning_green import EnergyCallback

    quiet_lightning()
    torch.set_num_threads(1)
    model_cls, loader = _model_and_data(batch_size, features, hidden, batches_per_epoch=500)
    makers = {"EnergyCallback": lambda d: _toggled(EnergyCallback, block)(output_dir=d),
              "DeviceStatsMonitor": lambda d: _toggled(DeviceStatsMonitor, block)()}
    out: dict[str, list[dict[str, float]]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            with tempfile.TemporaryDirectory(prefix="lg-bench-ab-") as workdir:
                cb = make(workdir)
                pl.seed_everything(0, verbose=False)
                trainer = pl.Trainer(
                    accelerator="cpu", devices=1, max_steps=steps, max_epochs=-1,
                    logger=CSVLogger(workdir, name="csv"), callbacks=[cb], enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False,
                )
                trainer.fit(model_cls(), train_dataloaders=loader)
            pairs = list(zip(cb.step_t, cb.step_t[1:], cb.step_on))[block:]  # skip the first block
            on = [b - a for a, b, o in pairs if o]
            off = [b - a for a, b, o in pairs if not o]
            cpu = list(zip(cb.step_cpu, cb.step_cpu[1:], cb.step_on))[block:]
            cpu_on = [b - a for a, b, o in cpu if o]
            cpu_off = [b - a for a, b, o in cpu if not o]
            out[name].append({"on_median_us": 1e6 * median(on), "off_median_us": 1e6 * median(off),
                              "on_mean_us": 1e6 * sum(on) / len(on), "off_mean_us": 1e6 * sum(off) / len(off),
                              "cpu_on_us": 1e6 * sum(cpu_on) / len(cpu_on),
                              "cpu_off_us": 1e6 * sum(cpu_off) / len(cpu_off)})
            print(f"  A/B {name:18} on {out[name][-1]['on_mean_us']:.0f} us/step, "
                  f"off {out[name][-1]['off_mean_us']:.0f} us/step (means)", flush=True)
    return out


def format_ab(result: dict[str, list[dict[str, float]]], steps: int, block: int) -> str:
    rows = []
    for name, runs in result.items():
        on_mean, off_mean = median([r["on_mean_us"] for r in runs]), median([r["off_mean_us"] for r in runs])
        on_med, off_med = median([r["on_median_us"] for r in runs]), median([r["off_median_us"] for r in runs])
        cpu_on, cpu_off = median([r["cpu_on_us"] for r in runs]), median([r["cpu_off_us"] for r in runs])
        rows.append([name, f"{off_mean:.0f}", f"{on_mean:.0f}", f"{on_mean / off_mean:.4f}",
                     f"{on_mean - off_mean:+.1f}", f"{on_med / off_med:.4f}", f"{on_med - off_med:+.1f}",
                     f"{cpu_off:.0f} / {cpu_on:.0f}", f"{cpu_on - cpu_off:+.1f}", f"{cpu_on / cpu_off:.4f}"])
    title = (f"Overhead on the training thread, in-fit A/B: batch hooks on/off in alternating blocks of {block} "
             f"steps, {steps} steps per fit, median of {len(next(iter(result.values())))} fits")
    notes = ("Wall time: mean and median step time with the hooks on vs off. Thread CPU: the training "
             "thread's own CPU time per step (time.thread_time(): no time lost to other processes, nor waits "
             "for the GIL; the sampler thread's CPU is in the scale benchmark).")
    return table(["callback", "off us/step (mean)", "on us/step (mean)", "ratio (means)", "us/step (means)",
                  "ratio (medians)", "us/step (medians)", "thread CPU us/step off / on", "thread CPU us/step",
                  "thread CPU ratio"], rows, title) + "\n\n" + notes


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
        warm_steps = max(50, steps // 10)
        run_once("bare", warm_steps, model_cls, loader, tempfile.mkdtemp(dir=root))  # Lightning's own cold start
        cold = {}
        for variant in variants:  # warm-up: each tracker's imports, first start, caches (timed: "cold")
            cold[variant] = run_once(variant, warm_steps, model_cls, loader, tempfile.mkdtemp(dir=root))[0]
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
    return {"steps": steps, "rounds": rounds, "batch_size": batch_size, "times": times, "ratios": ratios,
            "cold_extra_s": {v: cold[v] - cold["bare"] for v in variants}, "warm_steps": warm_steps}


def format_result(result: dict[str, Any]) -> str:
    steps = result["steps"]
    from tests.benchmarks._common import percentile
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
            f"{percentile(fit_ratios, 25):.3f}-{percentile(fit_ratios, 75):.3f}",
            f"{min(fit_ratios):.3f}-{max(fit_ratios):.3f}",
            f"{median(loop_ratios):.3f}",
            f"{median(cpu_ratios):.3f}",
            f"{1e6 * (loop_s - base_loop) / steps:+.0f}",
            f"{result['cold_extra_s'][variant]:+.2f}",
        ])
    title = (f"Overhead: {steps} training steps of {1e3 * base_loop / steps:.1f} ms (MLP, batch "
             f"{result['batch_size']}, 1 torch thread), {result['rounds']} alternating rounds, medians")
    notes = ("fit ratio: wall time of the whole fit (tracker construction, set-up, teardown, files) over the "
             "same round's bare fit; loop ratio: on_train_start -> on_train_end only; CPU ratio: process CPU "
             "time of the whole fit (all threads; less sensitive than wall time to other processes); "
             "us/step: loop time per step minus bare's.")
    notes += (f" first fit s: the extra wall time of each tracker's first {result['warm_steps']}-step fit in "
              "the process (imports, hardware detection, caches), once per process.")
    return table(["variant", "fit s", "ms/step", "fit ratio", "fit ratio IQR", "fit ratio range", "loop ratio", "CPU ratio",
                  "us/step vs bare", "first fit s"], rows, title) + "\n\n" + notes


DEFAULT_CONFIGS = ("64:2000:8", "384:1000:7")


def _config(text: str) -> tuple[int, int, int]:
    try:
        batch, steps, rounds = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--config must be BATCH:STEPS:ROUNDS (three integers), got {text!r}") from None
    if min(batch, steps, rounds) < 1:
        raise argparse.ArgumentTypeError(f"--config values must be >= 1, got {text!r}")
    return batch, steps, rounds


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=_config, action="append", metavar="BATCH:STEPS:ROUNDS",
                        help="MLP batch size (64: ~2 ms/step, 256: ~7 ms/step on a 2-core VM), steps per fit, "
                             f"alternating rounds; repeatable (default: {' '.join(DEFAULT_CONFIGS)})")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS[1:], default=list(VARIANTS[1:]),
                        help="trackers to compare with the bare run (default: all)")
    parser.add_argument("--ab-steps", type=int, default=3000, help="steps per in-fit A/B fit (default 3000)")
    parser.add_argument("--block", type=int, default=10, help="A/B block length in steps (default 10)")
    parser.add_argument("--no-ab", action="store_true", help="skip the in-fit A/B measurement")
    parser.add_argument("--quick", action="store_true", help="300 steps, 2 rounds, batch 64 only (a smoke run)")
    args = parser.parse_args(argv)
    configs = args.config or [_config(c) for c in DEFAULT_CONFIGS]
    if args.quick:
        configs = [(64, 300, 2)]
    print(machine_line(), flush=True)
    texts = []
    for batch, steps, rounds in configs:
        texts.append(format_result(run(steps, rounds, batch, variants=("bare", *args.variants))))
    if not args.no_ab:
        ab_steps = 600 if args.quick else args.ab_steps
        texts.append(format_ab(run_ab(ab_steps, 1 if args.quick else 2, args.block, configs[0][0]),
                               ab_steps, args.block))
    text = "\n\n".join(texts)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
