"""Hook cost: the time EnergyCallback adds on the training thread per batch.

A real ``Trainer.fit`` (CPU, tiny model, thousands of batches) runs with a subclass of
``EnergyCallback`` whose ``on_train_batch_start`` / ``on_train_batch_end`` time the parent
hooks with ``perf_counter_ns``. Two batch shapes: a ``(x, y)`` tensor tuple, and a text batch
(``input_ids`` + ``attention_mask`` + ``labels``, 32 x 128) whose tokens are counted. The
batch-end hook runs the live logging every ``log_every_n_steps`` batches (the Trainer's
default, 50: two progress-bar values through ``LightningModule.log`` and the energy metrics to
the Trainer's logger, a CSVLogger here); those batches are shown apart and included in the p99 and the mean. The
once-per-fit ``setup`` (sensor probe, meter thread start) and ``teardown`` (final sample,
report, three files) are timed too, after a short warm-up fit (a process's first fit also probes
the sensors once: not a per-fit cost). A last fit times an empty ``Callback``'s hooks in the same
way: the floor (timer, call and cold caches after the step's compute) under any hook's figure;
and one times the least a Python hook can do (a clock read and a list append), a prototype of
the cheapest design that keeps the hooks in Python.

A second table times the pieces of the hot path in tight loops on a started session, to show
what the time goes to.

    python -m tests.benchmarks.hooks [--steps 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

from tests.benchmarks._common import machine_line, median, percentile, quiet_lightning, table


def _timed_callback_class(base: Any = None) -> Any:
    """``base`` (default: EnergyCallback) with self-timing hooks; ``Callback`` gives the floor:
    what timing a hook that does nothing measures in the same place of a real fit."""
    from lightning_green import EnergyCallback

    base = base or EnergyCallback
    ns = time.perf_counter_ns

    class TimedEnergyCallback(base):
        """EnergyCallback whose batch hooks record their own duration (ns)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.start_ns: list[int] = []
            self.end_ns: list[int] = []
            self.periodic: list[bool] = []
            self.setup_ns = self.teardown_ns = 0

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            began = ns()
            super().setup(trainer, pl_module, stage)
            self.setup_ns = ns() - began

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            began = ns()
            super().teardown(trainer, pl_module, stage)
            self.teardown_ns = ns() - began

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            began = ns()
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
            self.start_ns.append(ns() - began)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            began = ns()
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            self.end_ns.append(ns() - began)
            self.periodic.append(getattr(self, "_last_exchange", None) == getattr(self, "_batches", 0))

    return TimedEnergyCallback


def _modules(batch_size: int, seq_len: int, n_batches: int) -> dict[str, tuple[Any, Any]]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(32, 2)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class TinyText(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(1000, 32)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            pooled = self.embed(batch["input_ids"][:, :8]).mean(dim=1)
            return torch.nn.functional.cross_entropy(self.layer(pooled), batch["labels"])

    g = torch.Generator().manual_seed(0)
    tensors = TensorDataset(torch.randn(batch_size * n_batches, 32, generator=g),
                            torch.randint(0, 2, (batch_size * n_batches,), generator=g))
    ids = torch.randint(1, 1000, (n_batches, batch_size, seq_len), generator=g)
    mask = torch.ones_like(ids)
    mask[:, :, seq_len * 3 // 4:] = 0
    labels = torch.randint(0, 2, (n_batches, batch_size), generator=g)
    text = [{"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]} for i in range(n_batches)]
    return {
        "tensor tuple (x, y)": (Tiny, DataLoader(tensors, batch_size=batch_size)),
        f"text dict {batch_size}x{seq_len} (tokens counted)": (TinyText, DataLoader(text, batch_size=None)),
    }


def fit_hook_costs(steps: int = 5000) -> list[dict[str, Any]]:
    """Per-batch hook times from real fits, one entry per batch shape."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loggers import CSVLogger

    quiet_lightning()
    torch.set_num_threads(1)
    cls = _timed_callback_class()
    floor_cls = _timed_callback_class(pl.Callback)
    modules = _modules(32, 128, 500)
    results = []

    def fit(callback_cls: Any, module_cls: Any, loader: Any, n: int) -> Any:
        with tempfile.TemporaryDirectory(prefix="lg-bench-hooks-") as workdir:
            cb = callback_cls(output_dir=workdir) if callback_cls is cls else callback_cls()
            trainer = pl.Trainer(
                accelerator="cpu", devices=1, max_steps=n, max_epochs=-1, callbacks=[cb],
                logger=CSVLogger(workdir, name="csv"),
                enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
            )
            trainer.fit(module_cls(), train_dataloaders=loader)
        return cb

    class LeastHooks(pl.Callback):
        """The least a Python hook can do: a clock read and a list append (end: + the batch
        size). What any design that keeps the hooks in Python pays, above the floor."""

        def __init__(self) -> None:
            self.records: list[float] = []
            self._add, self._clock = self.records.append, time.perf_counter

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            self._add(self._clock())

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self._add(self._clock())
            self._add(batch[0].shape[0])

    least_cls = _timed_callback_class(LeastHooks)
    first = next(iter(modules.values()))
    fit(cls, *first, 100)  # warm-up: the process's one-time sensor probes and imports are not per fit
    runs = [(name, cls, module_cls, loader) for name, (module_cls, loader) in modules.items()]
    runs.append(("least Python hooks: clock read + list append, timed alike", least_cls, *first))
    runs.append((f"floor: an empty Callback's hooks, timed alike ({next(iter(modules))})", floor_cls, *first))
    for name, callback_cls, module_cls, loader in runs:
        cb = fit(callback_cls, module_cls, loader, steps)
        both = [(a + b) / 1e3 for a, b in zip(cb.start_ns, cb.end_ns)]
        periodic = [x for x, p in zip(both, cb.periodic) if p]
        regular = [x for x, p in zip(both, cb.periodic) if not p]
        results.append({
            "batch": name, "batches": len(both),
            "start_us": median([x / 1e3 for x in cb.start_ns]),
            "end_us": median([x / 1e3 for x in cb.end_ns]),
            "median_us": median(both), "p99_us": percentile(both, 99), "mean_us": sum(both) / len(both),
            "regular_median_us": median(regular), "periodic_median_us": median(periodic),
            "periodic_count": len(periodic),
            "setup_ms": cb.setup_ns / 1e6, "teardown_ms": cb.teardown_ns / 1e6,
        })
    return results


def _loop_ns(fn: Any, n: int = 20000, repeat: int = 7) -> float:
    """Median over ``repeat`` runs of the mean ns per call of ``fn()``."""
    best = []
    for _ in range(repeat):
        began = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best.append((time.perf_counter_ns() - began) / n)
    return median(best)


def piece_costs() -> list[tuple[str, float]]:
    """Tight-loop cost of each piece of the batch hooks, on a started EnergyMeter."""
    import torch

    from lightning_green import EnergyMeter
    from lightning_green.engine.batches import count_samples, token_counts

    torch.set_num_threads(1)
    meter = EnergyMeter(write_files=False, snapshot_every_s=0)
    meter.start(manage_epochs=False)
    meter.set_phase("train")
    try:
        x, y = torch.randn(32, 32), torch.randint(0, 2, (32,))
        pair = (x, y)
        ids = torch.randint(1, 1000, (32, 128))
        text = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": y}

        def one_step() -> None:
            meter.begin_step()
            meter.end_step(32, 0, 0)

        def one_batch() -> None:
            meter.begin_step()
            meter.step_batch(pair)

        empty = _loop_ns(lambda: None)
        rows = [
            ("empty lambda call (loop baseline, subtracted below)", empty),
            ("EnergyMeter.begin_step() + end_step(32, 0, 0)", _loop_ns(one_step) - empty),
            ("EnergyMeter.begin_step() + step_batch((x, y))", _loop_ns(one_batch) - empty),
            ("count_samples((x, y))", _loop_ns(lambda: count_samples(pair)) - empty),
            ("count_samples(text dict)", _loop_ns(lambda: count_samples(text)) - empty),
            ("token_counts((x, y)) -> (None, None)", _loop_ns(lambda: token_counts(pair)) - empty),
            ("token_counts(text dict): attention_mask.sum() + int()", _loop_ns(lambda: token_counts(text)) - empty),
            ("  of which attention_mask.sum()", _loop_ns(lambda: text["attention_mask"].sum()) - empty),
            ("meter.live_energy_j() (periodic path)", _loop_ns(meter.live_energy_j, 2000) - empty),
            ("perf_counter_ns() pair (timer overhead in the fit table)",
             _loop_ns(lambda: time.perf_counter_ns() - time.perf_counter_ns()) - empty),
        ]
    finally:
        meter.stop()
    return rows


def format_result(fits: list[dict[str, Any]], pieces: list[tuple[str, float]]) -> str:
    rows = [[r["batch"], r["batches"], f"{r['start_us']:.2f}", f"{r['end_us']:.2f}", f"{r['median_us']:.2f}",
             f"{r['p99_us']:.1f}", f"{r['mean_us']:.2f}", f"{r['periodic_median_us']:.0f} ({r['periodic_count']}x)" if r["periodic_count"] else "-",
             f"{r['setup_ms']:.0f} / {r['teardown_ms']:.0f}"]
            for r in fits]
    first = table(["batch", "batches", "start us (median)", "end us (median)", "start+end us (median)",
                   "start+end us (p99)", "mean us", "logging batches us (median)", "setup / teardown ms"], rows,
                  "Hook cost per batch, EnergyCallback in a real fit (target: median <= 3 us, tensor batch, "
                  "above the floor)")
    second = table(["piece", "ns per call"], [[name, f"{ns:.0f}"] for name, ns in pieces],
                   "Pieces of the hot path, tight loops on a started session")
    return first + "\n\n" + second


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="batches per fit (default 5000)")
    parser.add_argument("--quick", action="store_true", help="1000 batches (a smoke run)")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    text = format_result(fit_hook_costs(1000 if args.quick else args.steps), piece_costs())
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
