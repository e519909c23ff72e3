"""Scale: memory over 100,000+ steps, and the sampler thread's CPU use.

Memory: a real :class:`~lightning_green.EnergyMeter` (the sampler thread at the default
0.1 s interval, the ledger, step rows kept in a bounded store that spills to disk) with this
machine's default sensors (``sensors="auto"``) while the training thread records
``--steps`` steps of ``--step-ms`` each (``begin_step``/``end_step`` around a ``time.sleep``,
which releases the GIL as a GPU wait or a torch kernel does). Run twice: once measuring the
process's RSS (psutil), once under ``tracemalloc`` (Python allocations, current and peak).
Growth is counted from a baseline taken after 1,000 steps. Target: bounded, under 10 MB.

CPU: the sampler thread's own CPU time (its ``pthread_getcpuclockid`` clock; where there is
none, user + system ticks from ``/proc/self/task/<tid>/stat``), over ``--cpu-seconds`` with no
steps, then with ~1 kHz steps without files and with them (one process in a local folder: the
sampler appends each round's resolved steps to steps.csv, ~2 us a row), as a percentage of one
core.

    python -m tests.benchmarks.scale [--steps 100000] [--step-ms 0.2] [--cpu-seconds 20]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from typing import Any

from tests.benchmarks._common import machine_line, table

MIB = 2**20


def _meter(output_dir: str | None = None) -> Any:
    from lightning_green import EnergyMeter

    meter = EnergyMeter(output_dir=output_dir, write_files=output_dir is not None, snapshot_every_s=0,
                        carbon_intensity_g_per_kwh=100.0)
    meter.start(manage_epochs=False)
    meter.set_epoch(0)
    meter.set_phase("train")
    return meter


def memory_run(steps: int, step_s: float, traced: bool, every: int) -> list[dict[str, Any]]:
    """Mark ``steps`` steps; return checkpoints (steps, RSS or traced bytes, pending marks)."""
    import psutil

    process = psutil.Process()
    gc.collect()
    if traced:
        tracemalloc.start()
    meter = _meter()
    session = meter._session
    begin, end, sleep = meter.begin_step, meter.end_step, time.sleep
    points: list[dict[str, Any]] = []
    base: dict[str, float] = {}
    try:
        for step in range(steps):
            begin()
            sleep(step_s)
            end(32, 4096, 4096)
            done = step + 1
            if done == 1000 or done % every == 0 or done == steps:
                meter.flush(2.0)  # resolve what is pending, as an epoch end does
                point = {"steps": done, "pending": session.sampler.pending_marks,
                         "rows": session.store.rows,
                         "rss": process.memory_info().rss}
                if traced:
                    point["current"], point["peak"] = tracemalloc.get_traced_memory()
                if done == 1000:
                    base = dict(point)
                    if traced:
                        tracemalloc.reset_peak()
                point["rss_growth"] = point["rss"] - base["rss"]
                if traced:
                    point["current_growth"] = point["current"] - base["current"]
                    point["peak_growth"] = point["peak"] - base["current"]
                points.append(point)
    finally:
        meter.stop()
        if traced:
            tracemalloc.stop()
    return points


def _thread_cpu_s(thread: Any) -> float:
    """CPU seconds of another thread: its CPU-time clock (ns resolution) where the OS has one,
    else its user + system ticks from ``/proc/self/task/<tid>/stat`` (10 ms resolution)."""
    if hasattr(time, "pthread_getcpuclockid"):
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    import psutil

    for entry in psutil.Process().threads():
        if entry.id == thread.native_id:
            return entry.user_time + entry.system_time
    raise RuntimeError(f"sampler thread {thread.native_id} not found in /proc/self/task")


def cpu_run(seconds: float, step_s: float | None, output_dir: str | None = None) -> dict[str, Any]:
    """The sampler thread's CPU time over ``seconds``, idle (``step_s=None``) or recording steps;
    with ``output_dir`` the files are written (steps.csv rows appended each round)."""
    meter = _meter(output_dir)
    session = meter._session
    try:
        sampler = session.sampler
        thread = sampler._thread
        rounds_before = sampler.rounds
        cpu_before, began = _thread_cpu_s(thread), time.perf_counter()
        steps = 0
        if step_s is None:
            time.sleep(seconds)
        else:
            begin, end, sleep = meter.begin_step, meter.end_step, time.sleep
            deadline = began + seconds
            while time.perf_counter() < deadline:
                begin()
                sleep(step_s)
                end(32, 0, 0)
                steps += 1
        meter.flush(2.0)
        cpu_s, elapsed_s = _thread_cpu_s(thread) - cpu_before, time.perf_counter() - began
        rounds = sampler.rounds - rounds_before
    finally:
        meter.stop()
    return {"seconds": elapsed_s, "steps": steps, "cpu_s": cpu_s, "rounds": rounds,
            "percent": 100.0 * cpu_s / elapsed_s, "us_per_round": 1e6 * cpu_s / max(1.0, rounds),
            "us_per_step": 1e6 * cpu_s / steps if steps else None}


def format_result(rss: list[dict[str, Any]], traced: list[dict[str, Any]], cpu: list[tuple[str, dict]],
                  step_ms: float) -> str:
    by_steps = {p["steps"]: p for p in traced}
    rows = []
    for p in rss:
        t = by_steps.get(p["steps"], {})
        rows.append([f"{p['steps']:,}", f"{p['rss'] / MIB:.1f}", f"{p['rss_growth'] / MIB:+.2f}",
                     f"{t['current_growth'] / MIB:+.3f}" if t else "-",
                     f"{t['peak_growth'] / MIB:+.3f}" if t else "-", p["pending"], f"{p['rows']:,}"])
    first = table(["steps", "RSS MiB", "RSS growth MiB", "traced growth MiB", "traced peak growth MiB",
                   "pending marks", "steps.csv rows"], rows,
                  f"Memory over {rss[-1]['steps']:,} steps of ~{step_ms:g} ms through sampler + ledger + step store "
                  "(growth from step 1,000; target: bounded, < 10 MB)")
    cpu_rows = [[name, f"{r['seconds']:.1f}", f"{r['steps']:,}", f"{r['rounds']:.0f}", f"{r['cpu_s']:.3f}",
                 f"{r['percent']:.3f}", f"{r['us_per_round']:.0f}",
                 "-" if r["us_per_step"] is None else f"{r['us_per_step']:.2f}"] for name, r in cpu]
    second = table(["sampler thread", "seconds", "steps recorded", "rounds", "thread CPU s",
                    "% of one core", "CPU us per round", "CPU us per step"], cpu_rows,
                   "Sampler thread CPU at the default 0.1 s interval (sensors='auto' on this machine)")
    return first + "\n\n" + second


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps for the memory runs (default 100,000)")
    parser.add_argument("--step-ms", type=float, default=0.2, help="sleep per step in ms (default 0.2)")
    parser.add_argument("--cpu-seconds", type=float, default=20.0, help="seconds per CPU measurement (default 20)")
    parser.add_argument("--quick", action="store_true", help="10,000 steps, 3 s CPU runs (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.cpu_seconds = 10_000, 3.0
    every = max(1000, args.steps // 5)
    print(machine_line(), flush=True)
    rss = memory_run(args.steps, args.step_ms / 1e3, traced=False, every=every)
    traced = memory_run(args.steps, args.step_ms / 1e3, traced=True, every=every)
    with tempfile.TemporaryDirectory(prefix="lg-bench-scale-") as out:
        cpu = [("idle (no steps)", cpu_run(args.cpu_seconds, None)),
               ("training at ~1 kHz steps, no files", cpu_run(args.cpu_seconds, 0.001)),
               ("training at ~1 kHz steps, steps.csv appended each round", cpu_run(args.cpu_seconds, 0.001, out))]
    text = format_result(rss, traced, cpu, args.step_ms)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
