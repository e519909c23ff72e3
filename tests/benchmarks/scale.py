"""Scale: memory over 100,000+ steps, and the sampler thread's CPU use.

Memory: a real :class:`~lightning_green.engine.session.MeterSession` (the meter thread at the
default 0.1 s interval, the ledger, steps.csv streamed by ``StepsWriter``) with this
machine's default sensors (``sensors="auto"``) while the training thread marks
``step_start``/``step_end`` for ``--steps`` steps of ``--step-ms`` each (``time.sleep``,
which releases the GIL as a GPU wait or a torch kernel does). Run twice: once measuring the
process's RSS (psutil), once under ``tracemalloc`` (Python allocations, current and peak).
Growth is counted from a baseline taken after 1,000 steps. Target: bounded, under 10 MB.

CPU: the meter thread's own CPU time (its ``pthread_getcpuclockid`` clock; where there is
none, user + system ticks from ``/proc/self/task/<tid>/stat``), over ``--cpu-seconds`` with no marks, then with ~1 kHz
steps, as a percentage of one core.

    python -m tests.benchmarks.scale [--steps 100000] [--step-ms 0.2] [--cpu-seconds 20]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

from tests.benchmarks._common import machine_line, table

MIB = 2**20


def _session() -> Any:
    from lightning_green.sensors.detect import probe
    from lightning_green.engine.session import MeterSession

    sensors, _ = probe(torch_device="cpu")
    session = MeterSession(sensors, 0.1)
    session.start()
    session.meter.wait_ready()
    session.begin()
    return session


def memory_run(steps: int, step_s: float, traced: bool, every: int) -> list[dict[str, Any]]:
    """Mark ``steps`` steps; return checkpoints (steps, RSS or traced bytes, pending marks)."""
    import psutil

    process = psutil.Process()
    gc.collect()
    if traced:
        tracemalloc.start()
    session = _session()
    mark, sleep = session.meter.mark, time.sleep
    points: list[dict[str, Any]] = []
    base: dict[str, float] = {}
    try:
        mark(("epoch", 0))
        mark(("phase", "train"))
        for step in range(steps):
            mark(("step_start", step))
            sleep(step_s)
            mark(("step_end", step, 32, 4096))
            done = step + 1
            if done == 1000 or done % every == 0 or done == steps:
                session.flush()  # resolve what is pending, as an epoch end does
                point = {"steps": done, "pending": session.meter.pending_marks,
                         "rows": session._steps_writer.rows_written,
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
        session.stop()
        session.cleanup()
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
    raise RuntimeError(f"meter thread {thread.native_id} not found in /proc/self/task")


def cpu_run(seconds: float, step_s: float | None) -> dict[str, Any]:
    """The meter thread's CPU time over ``seconds``, idle (``step_s=None``) or marking steps."""
    session = _session()
    try:
        thread = session.meter._thread
        reads_before = sum(h.reads for h in session.meter.health.values())
        cpu_before, began = _thread_cpu_s(thread), time.perf_counter()
        steps = 0
        if step_s is None:
            time.sleep(seconds)
        else:
            mark, sleep = session.meter.mark, time.sleep
            deadline = began + seconds
            while time.perf_counter() < deadline:
                mark(("step_start", steps))
                sleep(step_s)
                mark(("step_end", steps, 32, 0))
                steps += 1
        session.flush()
        cpu_s, elapsed_s = _thread_cpu_s(thread) - cpu_before, time.perf_counter() - began
        reads = sum(h.reads for h in session.meter.health.values()) - reads_before
    finally:
        session.stop()
        session.cleanup()
    rounds = reads / max(1, len(session.sensors))
    return {"seconds": elapsed_s, "steps": steps, "cpu_s": cpu_s, "rounds": rounds,
            "percent": 100.0 * cpu_s / elapsed_s, "us_per_round": 1e6 * cpu_s / max(1.0, rounds)}


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
                  f"Memory over {rss[-1]['steps']:,} steps of ~{step_ms:g} ms through meter + ledger + StepsWriter "
                  "(growth from step 1,000; target: bounded, < 10 MB)")
    cpu_rows = [[name, f"{r['seconds']:.1f}", f"{r['steps']:,}", f"{r['rounds']:.0f}", f"{r['cpu_s']:.2f}",
                 f"{r['percent']:.2f}", f"{r['us_per_round']:.0f}"] for name, r in cpu]
    second = table(["meter thread", "seconds", "steps marked", "sampling rounds", "thread CPU s",
                    "% of one core", "CPU us per round"], cpu_rows,
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
    cpu = [("idle (no marks)", cpu_run(args.cpu_seconds, None)),
           ("training at ~1 kHz steps (2 marks each)", cpu_run(args.cpu_seconds, 0.001))]
    text = format_result(rss, traced, cpu, args.step_ms)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
