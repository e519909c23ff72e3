"""NVML check for a first, once-only GPU run: counter vs integrated power, update period, overhead.

STATUS: written without a GPU; only ``--dry-run`` (a scripted NVML, CPU load) has run.

Every section is printed and saved to ``--json PATH`` as soon as it finishes, so a crash or a
time-out later (the BERT section has its own ``--bert-timeout-s``) keeps what came before.

0. Set-up: CUDA starts on ``cuda:N`` first, then the sensor is built from that torch device
   (through torch's UUID for it). torch's and NVML's UUIDs are printed and the check stops
   (exit 2) if they differ. Driver, NVML, CUDA driver and nvidia-ml-py versions, GPU UUID,
   PCI bus id, power limit, persistence and MIG mode are printed and saved.
1. Agreement, idle then under load (a bf16 matmul loop): two ``NvmlSensor`` read in threads,
   every 10 ms and every 100 ms (the meter's default). Each integrates its power reading next
   to every counter read (``report_extra()``: ``counter_j``, ``power_integral_j``,
   ``disagreement_rel``); the power source (``instant field 186`` or ``1 s average``) names
   the columns. Agreement shows that the board agrees with itself, not that it is accurate.
2. Update period: the counter and the instant power polled in a tight loop under load; the
   times between changes, the cost of one read, and the sensor's own open-time estimate.
3. Overhead: BERT-base sized ``BertClassifier`` (random weights, no network), batch 32 x 128,
   ``bf16-mixed``, fits with and without ``EnergyCallback`` alternating; the Trainer runs on
   the same ``cuda:N``. Needs ``transformers``; ``--skip-bert`` leaves it out.

One prepared GPU run (``--quick``: about 2-3 minutes; defaults: about 5), from the repository
root; it needs torch, lightning and nvidia-ml-py (transformers for the BERT section), not
codecarbon, hydra or datasets::

    export PYTHONUNBUFFERED=1
    python3 -m pytest -m gpu tests/sensors/test_gpu_real.py -q -rs -s -p no:cacheprovider 2>&1 | tee $OUT/gpu_tests.txt
    timeout 420 python3 -m tests.benchmarks.nvml_check --quick --json $OUT/nvml_check.json 2>&1 | tee $OUT/nvml_check.txt

Without a GPU (scripted NVML on the CPU, to check the script)::

    python -m tests.benchmarks.nvml_check --dry-run --skip-bert --json /tmp/nvml_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.benchmarks._common import machine_line, median, percentile, table

QUICK = {"idle_s": 20.0, "load_s": 30.0, "period_s": 3.0, "bert_steps": 60, "rounds": 2, "bert_timeout_s": 120.0}
DRY = {"idle_s": 2.0, "load_s": 2.0, "period_s": 1.0, "bert_steps": 6, "rounds": 1, "matmul_size": 256}
LOAD = threading.Event()  # set while a load runs (the dry run's scripted GPU draws more then)


class Results:
    """Sections printed and written to JSON as each finishes (atomically: tmp + rename)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"status": "running", "sections": {}}

    def add(self, name: str, value: Any, text: str = "") -> None:
        self.data["sections"][name] = value
        self.save()
        print(f"\n## {name}\n{text or json.dumps(value, indent=2, default=str)}", flush=True)

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.save()
        print(f"\nstatus: {status}" + (f"; figures in {self.path}" if self.path else ""), flush=True)

    def save(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as handle:
            json.dump(self.data, handle, indent=1, default=str)
        os.replace(tmp, self.path)


# -- devices -----------------------------------------------------------------------------------
def bare_uuid(uuid: str | None) -> str:
    text = (uuid or "").strip().lower()
    return text.split("-", 1)[1] if text.startswith(("gpu-", "mig-")) else text


def uuid_check(torch_uuid: str | None, sensor: Any) -> dict[str, Any]:
    """torch's UUID for the device against the one NVML measures (the MIG instance if any)."""
    mig = sensor.describe().get("mig_uuid")
    measured = mig or sensor.uuid
    return {"torch_uuid": torch_uuid, "nvml_uuid": sensor.uuid, "mig_uuid": mig,
            "match": bool(torch_uuid) and bare_uuid(torch_uuid) == bare_uuid(measured)}


def start_cuda(index: int) -> tuple[str, str]:
    """Start CUDA on ``cuda:index`` (before any sensor exists) and return (device, torch UUID)."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run on a GPU machine, or pass --dry-run to check the script")
    if index >= torch.cuda.device_count():
        raise SystemExit(f"--device {index}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    device = f"cuda:{index}"
    torch.cuda.set_device(index)
    torch.zeros(1, device=device)
    torch.cuda.synchronize()
    return device, str(torch.cuda.get_device_properties(index).uuid)


def make_sensor(sensor_device: str, **kwargs: Any) -> Any:
    from lightning_green.sensors.nvml import NvmlSensor

    return NvmlSensor(torch_device=sensor_device, **kwargs)


@contextlib.contextmanager
def scripted_nvml() -> Iterator[str]:
    """--dry-run: a patched pynvml whose GPU draws 60 W, or 300 W while ``LOAD`` is set; its
    counter moves every 50 ms. Yields the fake GPU's UUID (standing in for torch's)."""
    from tests.helpers.sensor_fakes import FakeGpu, FakeNvml, uuid

    began = time.perf_counter()
    state = {"t": began, "energy_j": 0.0, "shown_t": began, "shown_j": 0.0}
    lock = threading.Lock()

    def power_w() -> float:
        return 300.0 if LOAD.is_set() else 60.0

    class ScriptedGpu(FakeGpu):
        @property
        def energy_mj(self) -> int:
            with lock:
                now = time.perf_counter()
                state["energy_j"] += power_w() * (now - state["t"])
                state["t"] = now
                if now - state["shown_t"] >= 0.05:
                    state["shown_t"], state["shown_j"] = now, state["energy_j"]
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

    fake = FakeNvml([ScriptedGpu(index=0, uuid=uuid(0))])
    from lightning_green.sensors.nvml import UPDATE_PROBE_S

    fake.update_probe_s = UPDATE_PROBE_S  # the open-time probe runs as on a GPU
    with fake.patched():
        yield uuid(0)


def matmul_load(device: str, seconds: float, size: int) -> int:
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


# -- 1. agreement --------------------------------------------------------------------------------
def agreement(sensor_device: str, load_device: str, phase: str, seconds: float, size: int) -> dict[str, Any]:
    """Two sensors read every 10 ms and 100 ms while the GPU idles or computes."""
    sensors = {"10 ms": make_sensor(sensor_device, name="nvml-10ms"),
               "100 ms": make_sensor(sensor_device, name="nvml-100ms")}
    series: list[list[float | None]] = []
    stop, errors = threading.Event(), []
    ready = [threading.Event() for _ in sensors]

    def reader(sensor: Any, period_s: float, ready_event: threading.Event, record: bool) -> None:
        try:
            sensor.open()
            ready_event.set()
            while not stop.is_set():
                began = time.perf_counter()
                sensor.energy_j()
                last = sensor.crosscheck.last if record and sensor.crosscheck is not None else None
                if last is not None:
                    series.append([round(last[0], 5), round(last[1], 3), last[2]])
                stop.wait(max(0.0, period_s - (time.perf_counter() - began)))
        except Exception as err:  # reported in the section, not lost in a thread
            errors.append(f"{sensor.name}: {type(err).__name__}: {err}")
            ready_event.set()
        finally:
            sensor.close()

    threads = [threading.Thread(target=reader, args=(s, p, r, p == 0.01), daemon=True)
               for s, p, r in zip(sensors.values(), (0.01, 0.1), ready)]
    for thread in threads:
        thread.start()
    for event in ready:
        event.wait(10.0)
    matmuls = 0
    if phase == "load":
        LOAD.set()
        try:
            matmuls = matmul_load(load_device, seconds, size)
        finally:
            LOAD.clear()
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(10.0)
    result: dict[str, Any] = {"phase": phase, "seconds": seconds, "matmuls": matmuls, "errors": errors}
    for label, sensor in sensors.items():
        extra = sensor.report_extra()
        window = extra.get("cross_check_window_s") or 0.0
        extra["mean_power_w"] = extra["counter_j"] / window if extra.get("counter_j") and window else None
        extra["notes"] = list(sensor.notes)
        result[label] = extra
    t0 = series[0][0] if series else 0.0
    result["series_10ms"] = {"columns": ["t_s", "counter_j", f"{result['10 ms']['power_source']} power_w"],
                             "rows": [[round(r[0] - t0, 5), r[1], r[2]] for r in series]}
    return result


def format_agreement(rows: list[dict[str, Any]], gpu: str) -> str:
    source = next((r["10 ms"]["power_source"] for r in rows if r["10 ms"].get("power_source")), "power")
    lines = []
    for r in rows:
        for label in ("10 ms", "100 ms"):
            x = r[label]

            def fmt(v: Any, spec: str) -> str:
                return "n/a" if v is None else format(v, spec)

            rel, shown = x.get("disagreement_rel"), "n/a"
            if rel is not None:
                shown = f"{100 * rel:+.2f}"
            elif x.get("counter_j"):  # a window under 5 s: shown, but the sensor does not judge it
                shown = f"{100 * (x['power_integral_j'] / x['counter_j'] - 1):+.2f} (short window)"
            lines.append([r["phase"], label, fmt(x.get("cross_check_window_s"), ".1f"), x.get("cross_check_reads"),
                          fmt(x.get("mean_power_w"), ".1f"), fmt(x.get("counter_j"), ".1f"),
                          fmt(x.get("power_integral_j"), ".1f"), shown, x.get("counter_unchanged_reads")])
    return table(["phase", "reads every", "s", "reads", "mean W (counter)", "counter J",
                  f"integrated {source} J", f"{source} vs counter %", "reads with counter unchanged"],
                 lines, f"NVML counter vs integrated {source} power on {gpu}")


# -- 2. update period -----------------------------------------------------------------------------
def update_period(sensor_device: str, load_device: str, seconds: float, size: int) -> dict[str, Any]:
    """The counter and the power polled in a tight loop under load: gaps between changes, read cost."""
    sensor = make_sensor(sensor_device, name="nvml-poll", cross_check=False)
    sensor.open()
    counter_changes: list[float] = []
    power_changes: list[float] = []
    counter_us: list[float] = []
    power_us: list[float] = []
    sources: set[str] = set()
    stop = threading.Event()

    def poll() -> None:
        last_e, last_p = sensor.energy_j(), sensor.read_power()[0]
        while not stop.is_set():
            t0 = time.perf_counter()
            e = sensor.energy_j()
            t1 = time.perf_counter()
            p, source = sensor.read_power()
            t2 = time.perf_counter()
            counter_us.append(1e6 * (t1 - t0))
            power_us.append(1e6 * (t2 - t1))
            sources.add(source)
            if e != last_e:
                counter_changes.append(t0)
                last_e = e
            if p != last_p:
                power_changes.append(t1)
                last_p = p
            time.sleep(0.0005)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    LOAD.set()
    try:
        matmul_load(load_device, seconds, size)
    finally:
        LOAD.clear()
        stop.set()
        thread.join(10.0)
        sensor.close()

    def gaps(changes: list[float]) -> dict[str, Any]:
        ms = [1e3 * (b - a) for a, b in zip(changes, changes[1:])]
        return {"changes": len(changes), "median_ms": median(ms), "p10_ms": percentile(ms, 10),
                "p90_ms": percentile(ms, 90), "max_ms": max(ms) if ms else None}

    return {"counter": gaps(counter_changes), "power": gaps(power_changes), "power_sources": sorted(sources),
            "counter_read_us_median": median(counter_us), "power_read_us_median": median(power_us),
            "open_probe_s": sensor.update_period_s, "open_probe_source": sensor.update_period_source}


def format_period(u: dict[str, Any]) -> str:
    def row(name: str, g: dict[str, Any], read_us: float) -> list[Any]:
        return [name, g["changes"], f"{g['median_ms']:.1f}", f"{g['p10_ms']:.1f}", f"{g['p90_ms']:.1f}",
                "n/a" if g["max_ms"] is None else f"{g['max_ms']:.1f}", f"{read_us:.0f}"]

    probe = u["open_probe_s"]
    return table(["reading", "changes", "median ms", "p10 ms", "p90 ms", "max ms", "read us (median)"],
                 [row("energy counter", u["counter"], u["counter_read_us_median"]),
                  row(f"power ({', '.join(u['power_sources'])})", u["power"], u["power_read_us_median"])],
                 "Update period under load (tight polling); open-time probe: "
                 + ("n/a" if probe is None else f"{1e3 * probe:.1f} ms") + f" ({u['open_probe_source']})")


# -- 3. callback overhead on a BERT-base fine-tune --------------------------------------------------
class BertTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise BertTimeout in the main thread after ``seconds`` (no limit off the main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise BertTimeout(f"BERT section exceeded --bert-timeout-s {seconds:g}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bert_overhead(device: str, steps: int, rounds: int, dry: bool, results: Results) -> dict[str, Any]:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch.utils.data import DataLoader

    from lightning_green import EnergyCallback
    from lightning_green.recipe.bert import BertClassifier  # needs transformers

    config = ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
              if dry else {})  # {}: BertConfig defaults = BERT-base
    batch, seq = (8, 32) if dry else (32, 128)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 30000, (steps, batch, seq), generator=g)
    data = [{"input_ids": ids[i], "attention_mask": torch.ones_like(ids[i]),
             "labels": torch.randint(0, 2, (batch,), generator=g)} for i in range(steps)]
    warmup = max(1, steps // 10)
    cuda = device.startswith("cuda")

    class Clock(Callback):
        began = ended = 0.0

        def on_train_batch_start(self, trainer: Any, pl_module: Any, b: Any, batch_idx: int) -> None:
            if batch_idx == warmup:
                if cuda:
                    torch.cuda.synchronize()
                self.began = time.perf_counter()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.ended = time.perf_counter()

    class TimedEnergy(EnergyCallback):  # public hooks only: no private attributes
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hook_ns: list[int] = []

        def on_train_batch_start(self, trainer: Any, pl_module: Any, b: Any, batch_idx: int) -> None:
            began = time.perf_counter_ns()
            super().on_train_batch_start(trainer, pl_module, b, batch_idx)
            self.hook_ns.append(time.perf_counter_ns() - began)

        def on_train_batch_end(self, trainer: Any, pl_module: Any, out: Any, b: Any, batch_idx: int) -> None:
            began = time.perf_counter_ns()
            super().on_train_batch_end(trainer, pl_module, out, b, batch_idx)
            self.hook_ns[-1] += time.perf_counter_ns() - began

    out: dict[str, Any] = {"model": "tiny BERT (dry run), CPU" if dry else "BERT-base size, bf16-mixed",
                           "batch": batch, "seq": seq, "steps": steps - warmup, "rounds": [], "footprint_gpu": None}
    loop_s: dict[str, list[float]] = {"bare": [], "EnergyCallback": []}
    hooks_us: list[float] = []
    for r in range(rounds):
        for variant in (("bare", "EnergyCallback") if r % 2 == 0 else ("EnergyCallback", "bare")):
            pl.seed_everything(0, verbose=False)
            model = BertClassifier(config=config, vocab_size=30522, learning_rate=2e-5)
            clock = Clock()
            with tempfile.TemporaryDirectory(prefix="lg-nvml-check-") as workdir:
                energy = TimedEnergy(output_dir=workdir, carbon_intensity_g_per_kwh=400.0) \
                    if variant == "EnergyCallback" else None
                trainer = pl.Trainer(
                    accelerator="gpu" if cuda else "cpu", devices=[int(device.split(":")[1])] if cuda else 1,
                    precision="bf16-mixed", max_steps=steps, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                    num_sanity_val_steps=0, callbacks=[clock] + ([energy] if energy else []))
                trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=None))
                if energy is not None:
                    hooks_us += [ns / 1e3 for ns in energy.hook_ns[warmup:]]
                    with contextlib.suppress(OSError, ValueError):
                        with open(os.path.join(workdir, "footprint.json")) as handle:
                            report = json.load(handle)
                        out["footprint_gpu"] = [s for s in report.get("sensors", []) if s.get("component") == "gpu"]
            loop_s[variant].append(clock.ended - clock.began)
            out["rounds"].append({"round": r + 1, "variant": variant, "loop_s": clock.ended - clock.began})
            results.add("bert (partial)", out, f"round {r + 1}/{rounds} {variant:15} {clock.ended - clock.began:.2f} s")
    timed = steps - warmup
    ratios = [e / b for e, b in zip(loop_s["EnergyCallback"], loop_s["bare"])]
    out.update(bare_ms_per_step=1e3 * median(loop_s["bare"]) / timed,
               energy_ms_per_step=1e3 * median(loop_s["EnergyCallback"]) / timed, ratio=median(ratios),
               ratios=ratios, hook_median_us=median(hooks_us), hook_p99_us=percentile(hooks_us, 99))
    return out


def format_bert(b: dict[str, Any]) -> str:
    return table(["model", "steps", "bare ms/step", "EnergyCallback ms/step", "loop ratio (median)",
                  "hook us median", "hook us p99"],
                 [[f"{b['model']}, {b['batch']}x{b['seq']}", b["steps"], f"{b['bare_ms_per_step']:.1f}",
                   f"{b['energy_ms_per_step']:.1f}", f"{b['ratio']:.4f}", f"{b['hook_median_us']:.1f}",
                   f"{b['hook_p99_us']:.0f}"]], "EnergyCallback overhead on a GPU fine-tune")


# -- main -------------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.nvml_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--device", type=int, default=0, help="CUDA device index as torch numbers it (default 0)")
    parser.add_argument("--json", default=None, help="write each section's figures to this JSON file as it finishes")
    parser.add_argument("--idle-s", type=float, default=60.0, help="seconds of the idle phase (default 60)")
    parser.add_argument("--load-s", type=float, default=60.0, help="seconds of the load phase (default 60)")
    parser.add_argument("--period-s", type=float, default=5.0, help="seconds of tight polling (default 5)")
    parser.add_argument("--matmul-size", type=int, default=8192, help="square matrix size of the load (default 8192)")
    parser.add_argument("--bert-steps", type=int, default=150, help="steps per BERT fit (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating BERT rounds (default 3)")
    parser.add_argument("--bert-timeout-s", type=float, default=240.0,
                        help="stop the BERT section after this many seconds, keeping the rest (default 240)")
    parser.add_argument("--skip-bert", action="store_true", help="leave the BERT section out")
    parser.add_argument("--quick", action="store_true",
                        help="idle 20 s, load 30 s, polling 3 s, BERT 2 rounds x 60 steps (about 2-3 min)")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: scripted NVML, 2 s phases, CPU load, tiny BERT on the CPU")
    first = parser.parse_args(argv)
    parser.set_defaults(**(DRY if first.dry_run else QUICK if first.quick else {}))  # explicit options win
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    from tests.benchmarks._common import quiet_lightning

    quiet_lightning()
    results = Results(args.json)
    results.data["options"] = vars(args)
    with contextlib.ExitStack() as stack:
        if args.dry_run:
            torch_uuid = stack.enter_context(scripted_nvml())
            sensor_device, load_device = "cuda:0", "cpu"
        else:
            sensor_device, torch_uuid = start_cuda(args.device)
            load_device = sensor_device
            time.sleep(5.0)  # the idle baseline starts after the CUDA context settles
        import torch

        sensor = make_sensor(sensor_device, name="nvml-setup")
        sensor.open()  # probes the power source and the update period, lists the GPU's processes
        sensor.close()
        setup = {"machine": machine_line(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                 "dry_run": args.dry_run, "sensor_device": sensor_device, "load_device": load_device,
                 **uuid_check(torch_uuid, sensor), "device_info": sensor.device_info(),
                 "describe": sensor.describe(), "report_extra": sensor.report_extra(), "notes": list(sensor.notes)}
        results.add("setup", setup)
        if not setup["match"]:
            results.finish(f"stopped: torch UUID {torch_uuid} != NVML UUID {setup['mig_uuid'] or setup['nvml_uuid']}")
            raise SystemExit(2)
        gpu = f"{setup['device_info'].get('gpu_name')} (driver {setup['device_info'].get('driver_version')})"
        phases = []
        for phase, seconds in (("idle", args.idle_s), ("load", args.load_s)):
            phases.append(agreement(sensor_device, load_device, phase, seconds, args.matmul_size))
            results.add(f"agreement {phase}", phases[-1], format_agreement(phases[-1:], gpu))
        period = update_period(sensor_device, load_device, args.period_s, args.matmul_size)
        results.add("update period", period, format_period(period))
    if args.skip_bert:
        results.add("bert", {"skipped": "--skip-bert"})
    else:
        try:
            with time_limit(args.bert_timeout_s):
                bert = bert_overhead(load_device, args.bert_steps, args.rounds, args.dry_run, results)
            results.add("bert", bert, format_bert(bert))
        except ImportError as err:
            results.add("bert", {"skipped": f"{type(err).__name__}: {err}"})
        except BaseException as err:  # a crash, a time-out or ^C: keep the NVML sections
            results.add("bert", {"failed": f"{type(err).__name__}: {err}"})
            results.finish(f"bert failed: {type(err).__name__}")
            if isinstance(err, KeyboardInterrupt):
                raise
            return results.data
    results.finish("completed")
    return results.data


if __name__ == "__main__":
    main()
