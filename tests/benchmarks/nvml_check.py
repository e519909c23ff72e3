"""NVML check (needs an NVIDIA GPU): energy counter vs integrated instant power, counter update
period, and EnergyCallback's overhead on a BERT-base fine-tune.

STATUS: written without a GPU and NOT YET RUN on one; only ``--dry-run`` (a scripted NVML on
the CPU) has been run. The README's Performance section has no GPU figures until it is.

1. Agreement: 60 s idle (after a CUDA context exists; a context alone adds 26-50 W), then 60 s
   under load (a bf16 matmul loop). A thread reads the GPU's energy counter
   (``nvmlDeviceGetTotalEnergyConsumption``) and its instant power
   (``NVML_FI_DEV_POWER_INSTANT``) through :class:`~lightning_green.sensors.nvml.NvmlSensor`
   every 10 ms; the counter's delta is compared with the trapezoid integral of the power
   samples. A lightning-green ``Meter`` with its own ``NvmlSensor`` at the default 0.1 s runs
   alongside and is compared with the same counter delta. Target: agreement within 5 %
   (``shared/MEASUREMENT.md``: 3-5 % over 60 s).
2. Counter update period: the counter read in a tight loop for 5 s under load; the times
   between changes (NVML: ~20-100 ms).
3. Overhead: BERT-base sized (``BertConfig()`` defaults: 12 layers, hidden 768, random
   weights, since the machine may have no network) ``BertClassifier``, batch 32 x 128 random
   tokens, ``bf16-mixed``; fits with and without ``EnergyCallback`` alternate over rounds;
   median ratio of the training-loop time, and the batch hooks' cost with device tensors.

Run on the GPU machine, from the repository root (about 5 minutes)::

    python -m tests.benchmarks.nvml_check [--device 0] [--seconds 60] [--bert-steps 150] [--rounds 3]
    python -m tests.benchmarks.nvml_check --dry-run     # no GPU: scripted NVML, seconds, CPU

Prints Markdown tables (and ``--json PATH`` writes the raw figures) to paste into the README
with the GPU model, driver and date it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.benchmarks._common import machine_line, median, percentile, quiet_lightning, table


# -- sensors -------------------------------------------------------------------------------------
@contextlib.contextmanager
def gpu_sensors(device_index: int, dry_run: bool) -> Iterator[tuple[Any, Any]]:
    """Two opened NvmlSensors for one GPU: one for the 10 ms reader, one for the Meter."""
    from lightning_green.sensors.nvml import NvmlSensor

    with contextlib.ExitStack() as stack:
        if dry_run:
            stack.enter_context(_scripted_nvml())
        reader, for_meter = NvmlSensor(device_index), NvmlSensor(device_index, name="nvml-meter")
        reader.open()
        stack.callback(reader.close)
        if reader.kind != "energy":
            raise SystemExit(f"GPU {device_index} has no energy counter (NVML method: {reader.method}); "
                             "the agreement check needs one (Volta or newer)")
        yield reader, for_meter


@contextlib.contextmanager
def _scripted_nvml() -> Iterator[None]:
    """--dry-run: a patched pynvml whose GPU draws 60 W, or 300 W while ``LOAD`` is set."""
    from tests.helpers.sensor_fakes import FakeGpu, FakeNvml, uuid

    began = time.perf_counter()
    state = {"t": began, "energy_j": 0.0, "shown_t": began, "shown_j": 0.0}

    def power_w() -> float:
        return 300.0 if LOAD.is_set() else 60.0

    class ScriptedGpu(FakeGpu):
        def _advance(self) -> None:
            now = time.perf_counter()
            state["energy_j"] += power_w() * (now - state["t"])
            state["t"] = now

        @property
        def energy_mj(self) -> int:  # moves every 50 ms, like a real counter
            self._advance()
            if state["t"] - state["shown_t"] >= 0.05:
                state["shown_t"], state["shown_j"] = state["t"], state["energy_j"]
            return 1_000_000 + int(state["shown_j"] * 1000)

        @energy_mj.setter
        def energy_mj(self, value: int) -> None:
            pass

        @property
        def power_mw(self) -> int:
            return int(power_w() * 1000)

        @power_mw.setter
        def power_mw(self, value: int) -> None:
            pass

    with FakeNvml([ScriptedGpu(index=0, uuid=uuid(0))]).patched():
        yield


LOAD = threading.Event()  # set while the load phase runs (read by the dry-run GPU)


# -- 1. agreement ----------------------------------------------------------------------------------
def _reader(sensor: Any, period_s: float, stop: threading.Event, out: list) -> None:
    clock = time.perf_counter
    while not stop.is_set():
        before = clock()
        energy_j = sensor.energy_j()
        power_w = sensor.power_w()
        out.append((0.5 * (before + clock()), energy_j, power_w))
        stop.wait(max(0.0, period_s - (clock() - before)))


def _matmul_load(device: str, seconds: float, size: int) -> int:
    import torch

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    deadline, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        for _ in range(8):
            a = (a @ b).clamp_(-1, 1)
        n += 8
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return n


def agreement(reader: Any, for_meter: Any, phase: str, seconds: float, device: str, size: int) -> dict[str, Any]:
    """Counter delta vs integrated instant power (10 ms) vs the Meter (0.1 s) over one phase."""
    from lightning_green.engine.ledger import Ledger
    from lightning_green.engine.sampler import Meter

    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    ledger = Ledger([for_meter.describe()], wall_offset_s=0.0)
    meter = Meter([for_meter], sink=ledger.feed)
    meter.start()
    meter.wait_ready()
    thread = threading.Thread(target=_reader, args=(reader, 0.01, stop, samples), daemon=True)
    thread.start()
    time.sleep(0.5)
    meter.mark(("start",))
    matmuls = 0
    if phase == "load":
        LOAD.set()
        matmuls = _matmul_load(device, seconds, size)
        LOAD.clear()
    else:
        time.sleep(seconds)
    meter.mark(("end",))
    time.sleep(0.3)
    stop.set()
    thread.join()
    meter.stop()
    t0, t1 = ledger.first_t, ledger.last_t
    window = [s for s in samples if t0 <= s[0] <= t1]
    counter_j = window[-1][1] - window[0][1]
    power_j = sum(0.5 * (a[2] + b[2]) * (b[0] - a[0]) for a, b in zip(window, window[1:]))
    span_s = window[-1][0] - window[0][0]
    return {
        "phase": phase, "seconds": span_s, "reads": len(window), "counter_j": counter_j, "power_j": power_j,
        "mean_power_w": counter_j / span_s, "power_vs_counter": power_j / counter_j - 1.0,
        "meter_j": ledger.energy_j, "meter_seconds": t1 - t0,
        "meter_vs_counter": (ledger.energy_j / (t1 - t0)) / (counter_j / span_s) - 1.0,
        "matmuls": matmuls, "meter_warnings": list(meter.warnings),
    }


# -- 2. counter update period ----------------------------------------------------------------------
def update_period(reader: Any, seconds: float, device: str, size: int) -> dict[str, Any]:
    changes: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        last = reader.energy_j()
        while not stop.is_set():
            value = reader.energy_j()
            if value != last:
                changes.append(time.perf_counter())
                last = value
            time.sleep(0.0005)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    LOAD.set()
    _matmul_load(device, seconds, size)
    LOAD.clear()
    stop.set()
    thread.join()
    gaps_ms = [1e3 * (b - a) for a, b in zip(changes, changes[1:])]
    return {"changes": len(changes), "median_ms": median(gaps_ms), "p10_ms": percentile(gaps_ms, 10),
            "p90_ms": percentile(gaps_ms, 90), "max_ms": max(gaps_ms) if gaps_ms else math.nan}


# -- 3. callback overhead on a BERT-base fine-tune ---------------------------------------------------
def bert_overhead(device: str, steps: int, rounds: int, dry_run: bool) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from lightning_green.recipe.bert import BertClassifier
    from tests.benchmarks.hooks import _timed_callback_class

    config = ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
              if dry_run else {})  # {}: BertConfig defaults = BERT-base
    batch, seq = (8, 32) if dry_run else (32, 128)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (steps, batch, seq), generator=g)
    data = [{"input_ids": ids[i], "attention_mask": torch.ones_like(ids[i]),
             "labels": torch.randint(0, 2, (batch,), generator=g)} for i in range(steps)]
    warmup = max(1, steps // 10)

    class Clock(Callback):
        began = ended = 0.0

        def on_train_batch_start(self, trainer: Any, pl_module: Any, b: Any, batch_idx: int) -> None:
            if batch_idx == warmup:
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                self.began = time.perf_counter()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            self.ended = time.perf_counter()

    timed_cls = _timed_callback_class()
    loop_s: dict[str, list[float]] = {"bare": [], "EnergyCallback": []}
    hooks_us: list[float] = []
    for r in range(rounds):
        for variant in (("bare", "EnergyCallback") if r % 2 == 0 else ("EnergyCallback", "bare")):
            pl.seed_everything(0, verbose=False)
            model = BertClassifier(config=config, vocab_size=30522, learning_rate=2e-5)
            clock = Clock()
            callbacks: list[Any] = [clock]
            with tempfile.TemporaryDirectory(prefix="lg-nvml-check-") as workdir:
                energy = timed_cls(output_dir=workdir) if variant == "EnergyCallback" else None
                if energy is not None:
                    callbacks.append(energy)
                trainer = pl.Trainer(
                    accelerator="cpu" if dry_run else "gpu", devices=1, precision="bf16-mixed", max_steps=steps,
                    logger=False, callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                )
                trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=None))
            loop_s[variant].append(clock.ended - clock.began)
            if energy is not None:
                hooks_us += [(a + b) / 1e3 for a, b in zip(energy.start_ns[warmup:], energy.end_ns[warmup:])]
            print(f"  round {r + 1}/{rounds} {variant:15} {clock.ended - clock.began:.2f} s", flush=True)
    ratios = [e / b for e, b in zip(loop_s["EnergyCallback"], loop_s["bare"])]
    timed = steps - warmup
    return {"steps": timed, "batch": batch, "seq": seq, "bare_ms_per_step": 1e3 * median(loop_s["bare"]) / timed,
            "energy_ms_per_step": 1e3 * median(loop_s["EnergyCallback"]) / timed, "ratio": median(ratios),
            "ratios": ratios, "hook_median_us": median(hooks_us), "hook_p99_us": percentile(hooks_us, 99)}


# -- report ----------------------------------------------------------------------------------------
def format_result(result: dict[str, Any]) -> str:
    rows = [[r["phase"], f"{r['seconds']:.1f}", r["reads"], f"{r['mean_power_w']:.1f}", f"{r['counter_j']:.1f}",
             f"{r['power_j']:.1f}", f"{100 * r['power_vs_counter']:+.2f}", f"{100 * r['meter_vs_counter']:+.2f}"]
            for r in result["agreement"]]
    parts = [table(["phase", "s", "10 ms reads", "mean W", "counter J", "integrated instant power J",
                    "power vs counter %", "Meter (0.1 s) vs counter %"], rows,
                   f"NVML agreement on {result['gpu']} (target: within 5 %)")]
    u = result["update_period"]
    parts.append(table(["counter changes", "median ms", "p10 ms", "p90 ms", "max ms"],
                       [[u["changes"], f"{u['median_ms']:.1f}", f"{u['p10_ms']:.1f}", f"{u['p90_ms']:.1f}",
                         f"{u['max_ms']:.1f}"]], "Energy counter update period (under load)"))
    b = result["bert"]
    parts.append(table(["model", "steps", "bare ms/step", "EnergyCallback ms/step", "loop ratio (median)",
                        "hook us median", "hook us p99"],
                       [[f"BERT-base size, bf16-mixed, {b['batch']}x{b['seq']}", b["steps"],
                         f"{b['bare_ms_per_step']:.1f}", f"{b['energy_ms_per_step']:.1f}", f"{b['ratio']:.4f}",
                         f"{b['hook_median_us']:.1f}", f"{b['hook_p99_us']:.0f}"]],
                       "EnergyCallback overhead on a GPU fine-tune"))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", type=int, default=0, help="CUDA / NVML device index (default 0)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per agreement phase (default 60)")
    parser.add_argument("--matmul-size", type=int, default=8192, help="square matrix size of the load (default 8192)")
    parser.add_argument("--bert-steps", type=int, default=150, help="steps per BERT fit (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating BERT rounds (default 3)")
    parser.add_argument("--json", default=None, help="also write the raw figures to this JSON file")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: scripted NVML, 2 s phases, tiny BERT on CPU")
    args = parser.parse_args(argv)
    import torch

    quiet_lightning()
    dry = args.dry_run
    if dry:
        args.seconds, args.matmul_size, args.bert_steps, args.rounds = 2.0, 256, 6, 1
        device = "cpu"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU: run on a GPU machine, or pass --dry-run to check the script")
        device = f"cuda:{args.device}"
        torch.cuda.set_device(args.device)
        torch.zeros(1, device=device)  # the CUDA context exists before the idle baseline
        time.sleep(5.0)
    print(machine_line(), flush=True)
    result: dict[str, Any] = {"dry_run": dry}
    with gpu_sensors(args.device, dry) as (reader, for_meter):
        described = reader.describe()
        result["gpu"] = ("scripted NVML (dry run)" if dry else
                         f"{described.get('gpu_name')} ({torch.version.cuda and 'CUDA ' + torch.version.cuda})")
        print(f"GPU: {result['gpu']}; method: {described['method']}", flush=True)
        result["agreement"] = [agreement(reader, for_meter, phase, args.seconds, device, args.matmul_size)
                               for phase in ("idle", "load")]
        result["update_period"] = update_period(reader, min(5.0, args.seconds), device, args.matmul_size)
    result["bert"] = bert_overhead(device, args.bert_steps, args.rounds, dry)
    text = format_result(result)
    print(text, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2, default=str)
    return text


if __name__ == "__main__":
    main()
