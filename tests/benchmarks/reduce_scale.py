"""The end-of-run cost against the world size: ``EnergyMeter.stop()`` with 2, 4 and 8 gloo ranks.

``python -m tests.benchmarks.reduce_scale [--ranks 2,4,8] [--steps 10000,100000] [--quick]``

Each configuration starts ``ranks`` processes (gloo over 127.0.0.1, one ``torch.distributed``
process group). Every rank runs an :class:`~lightning_green.EnergyMeter` with two fake sensors
of constant power (a device sensor per rank, a host sensor on local rank 0) over a tiny loop
that only calls ``meter.step()`` ``steps`` times in the train phase, then all ranks meet at a
barrier and call ``meter.stop()``: the one reduce path (lightning_green/meter/finish.py and
engine/distributed.py). Measured on rank 0 and on the last rank:

* the wall time of ``stop()`` and its parts: the session's own end (final reading, every step
  resolved), the ``all_gather`` of each rank's row count and components, the
  ``gather_to_zero`` of each rank's small result, the chunked ``reduce`` of the per-step
  rows (float64 tensors of 65,536 rows), and on rank 0 the report and the files
  (footprint.json, steps.csv, emissions.csv, the rank state file);
* the peak resident memory above the level before ``stop()`` (/proc/self/statm polled every
  millisecond by a thread);
* the pickled size of one rank's result (what ``gather_to_zero`` sends per rank).

A second table measures what rank 0 alone does per rank, at world sizes no single machine can
start: one process runs the same meter, and at ``stop()`` the gather hands rank 0 ``N``
copies of a real rank's pickled result (each its own rank and host, 8 ranks a host); rank 0
then unpickles them, sums them, builds the report (every rank's sensors are listed in it) and
writes the files, as after a real gather of ``N`` ranks.

On one machine with few cores the ranks share CPUs: the times include that contention (the
README says how the figures extrapolate to 1,000 ranks on a real cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("session_stop", "all_gather", "gather_to_zero", "reduce_rows", "report", "steps_csv", "files")


class _PeakRss:
    """Peak resident set size (bytes) while running, polled every millisecond."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.read()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.001)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())


def _timed(owner: object, name: str, part: str, spent: dict[str, float], counts: dict[str, int]) -> None:
    """Wrap ``owner.name`` so that its wall time adds to ``spent[part]``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[part] = spent.get(part, 0.0) + time.perf_counter() - t0
            counts[part] = counts.get(part, 0) + 1

    setattr(owner, name, wrapper)


def worker(result_dir: str, steps: int) -> None:
    """One rank (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment)."""
    import torch.distributed as dist

    from lightning_green import EnergyMeter
    from lightning_green.engine.session import Session
    from lightning_green.meter import energy_meter, finish
    from lightning_green.meter.state import RankState
    from lightning_green.outputs.steps_csv import StepsCsv
    from lightning_green.sensors import ConstantPowerSensor

    dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    rank = dist.get_rank()
    spent: dict[str, float] = {}
    counts: dict[str, int] = {}
    _timed(Session, "stop", "session_stop", spent, counts)
    _timed(finish, "all_gather", "all_gather", spent, counts)
    _timed(finish, "gather_to_zero", "gather_to_zero", spent, counts)
    _timed(finish, "reduce_rows_to_zero", "reduce_rows", spent, counts)
    _timed(energy_meter, "make_report", "report", spent, counts)
    _timed(StepsCsv, "write_all", "steps_csv", spent, counts)
    for owner, name in ((energy_meter, "write_footprint"), (energy_meter, "append_emissions_csv"),
                        (RankState, "write")):
        _timed(owner, name, "files", spent, counts)
    payload: dict[str, int] = {}
    original_rank_result = energy_meter.EnergyMeter._rank_result

    def rank_result(self, *args, **kwargs):
        result = original_rank_result(self, *args, **kwargs)
        payload["bytes"] = len(pickle.dumps(result))
        return result

    energy_meter.EnergyMeter._rank_result = rank_result
    sensors = [ConstantPowerSensor(100.0, name="device", component="gpu", scope="device", measured=True),
               ConstantPowerSensor(20.0, name="host", component="cpu", scope="host", measured=True)]
    meter = EnergyMeter(sensors=sensors, output_dir=os.path.join(result_dir, "out"), snapshot_every_s=0,
                        carbon_intensity_g_per_kwh=100.0, sampling_interval_s=0.1)
    meter.start()
    began = time.perf_counter()
    with meter.phase("train"):
        for _ in range(steps):
            with meter.step(samples=8):
                pass
    loop_s = time.perf_counter() - began
    dist.barrier()  # every rank enters stop() together: waiting for a slow loop is not stop()'s cost
    spent.clear()
    counts.clear()
    with _PeakRss() as rss:
        t0 = time.perf_counter()
        report = meter.stop()
        stop_s = time.perf_counter() - t0
    if rank == 0:
        assert report is not None and int(report.steps) == steps, report
        with open(os.path.join(result_dir, "out", "steps.csv")) as f:
            assert sum(1 for _ in f) == steps + 1
    out = {"rank": rank, "stop_s": stop_s, "loop_s": loop_s, "rss_base": rss.base, "rss_peak_delta": rss.peak - rss.base,
           "parts": spent, "counts": counts, "payload_bytes": payload.get("bytes", 0)}
    with open(os.path.join(result_dir, f"rank-{rank}.json"), "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()


def run(ranks: int, steps: int, port: int) -> list[dict]:
    """One configuration; every rank's measurements."""
    with tempfile.TemporaryDirectory(prefix="lg-reduce-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_"))}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(ranks), OMP_NUM_THREADS="1",
                   GLOO_SOCKET_IFNAME="lo", PYTHONPATH=str(ROOT), LOCAL_RANK="0")
        procs = []
        for rank in range(ranks):
            # one "host" per rank pair would need namespaces: every rank here is on one host, and
            # only rank 0 reads the host sensor (scope "host"), as on one node
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.benchmarks.reduce_scale", "--worker", folder, "--worker-steps", str(steps)],
                cwd=ROOT, env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True))
        failed = []
        for proc in procs:
            out, _ = proc.communicate(timeout=900)
            if proc.returncode:
                failed.append(out[-3000:])
        if failed:
            raise RuntimeError("a rank failed:\n" + "\n".join(failed))
        return [json.loads(Path(folder, f"rank-{r}.json").read_text()) for r in range(ranks)]


def rank0_alone(n_ranks: int, steps: int) -> dict:
    """Rank 0's own work after a gather of ``n_ranks`` results (see the module docstring)."""
    import dataclasses

    from lightning_green import EnergyMeter
    from lightning_green.meter import energy_meter, finish
    from lightning_green.outputs.steps_csv import StepsCsv
    from lightning_green.sensors import ConstantPowerSensor

    spent: dict[str, float] = {}
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    original = finish.reduce_to_zero

    def gathered_from_n_ranks(result, store, world, **kwargs):
        mine = original(result, store, world, **kwargs)
        blobs = []
        for r in range(n_ranks):
            host = f"node-{r // 8}"
            e = result.totals["energy_j"]
            totals = dict(result.totals, energy_j_by_rank={str(r): e}, energy_j_by_host={host: e})
            sensors = [dict(s, rank=r, host=host) for s in result.sensors]
            blobs.append(pickle.dumps(dataclasses.replace(result, rank=r, host=host, totals=totals, sensors=sensors)))
        sizes["gathered"] = sum(len(b) for b in blobs)
        t0 = time.perf_counter()
        results = [pickle.loads(b) for b in blobs]
        spent["unpickle"] = time.perf_counter() - t0
        return finish.Gathered(results, mine.components, mine.rows, True)

    totals_property = finish.Gathered.totals

    def timed_totals(self):
        t0 = time.perf_counter()
        try:
            return totals_property.fget(self)
        finally:
            spent["sum"] = spent.get("sum", 0.0) + time.perf_counter() - t0

    saved = [(finish, "reduce_to_zero"), (energy_meter, "make_report"), (StepsCsv, "write_all"),
             (energy_meter, "write_footprint"), (energy_meter, "append_emissions_csv")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in saved]
    finish.reduce_to_zero = gathered_from_n_ranks
    finish.Gathered.totals = property(timed_totals)
    _timed(energy_meter, "make_report", "report", spent, counts)
    _timed(StepsCsv, "write_all", "steps_csv", spent, counts)
    for name in ("write_footprint", "append_emissions_csv"):
        _timed(energy_meter, name, "files", spent, counts)
    try:
        with tempfile.TemporaryDirectory(prefix="lg-rank0-") as folder:
            sensors = [ConstantPowerSensor(100.0, name="device", component="gpu", scope="device", measured=True),
                       ConstantPowerSensor(20.0, name="host", component="cpu", scope="host", measured=True)]
            meter = EnergyMeter(sensors=sensors, output_dir=folder, snapshot_every_s=0, carbon_intensity_g_per_kwh=100.0)
            meter.start()
            with meter.phase("train"):
                for _ in range(steps):
                    with meter.step(samples=8):
                        pass
            with _PeakRss() as rss:
                t0 = time.perf_counter()
                report = meter.stop()
                stop_s = time.perf_counter() - t0
            assert len(report.energy_kwh_by_rank) == n_ranks
            sizes["footprint"] = os.path.getsize(os.path.join(folder, "footprint.json"))
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)
        finish.Gathered.totals = totals_property
    return {"n": n_ranks, "stop_s": stop_s, "parts": spent, "rss_peak_delta": rss.peak - rss.base, **sizes}


def _row(ranks: int, steps: int, rank: dict) -> list[str]:
    parts = rank["parts"]
    cells = [str(ranks), f"{steps:,}", str(rank["rank"]), f"{rank['stop_s'] * 1e3:.0f}"]
    cells += [f"{parts.get(p, 0.0) * 1e3:.1f}" for p in PARTS]
    cells += [f"{rank['rss_peak_delta'] / 2**20:.1f}", f"{rank['payload_bytes']:,}"]
    return cells


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.reduce_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="2,4,8", help="world sizes (default 2,4,8)")
    parser.add_argument("--steps", default="10000,100000", help="steps per rank (default 10000,100000)")
    parser.add_argument("--rank0-ranks", default="8,100,1000,4000",
                        help="results handed to rank 0 alone (default 8,100,1000,4000)")
    parser.add_argument("--quick", action="store_true", help="2 ranks, 2,000 steps: checks that it runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.worker_steps)
        return ""
    from tests.benchmarks._common import machine_line, table

    ranks_list = [2] if args.quick else [int(x) for x in args.ranks.split(",")]
    steps_list = [2000] if args.quick else [int(x) for x in args.steps.split(",")]
    rows = []
    port = 29600 + os.getpid() % 300
    for steps in steps_list:
        for ranks in ranks_list:
            port += 1
            results = run(ranks, steps, port)
            for rank in (results[0], results[-1]):
                rows.append(_row(ranks, steps, rank))
            print(f"  {ranks} ranks x {steps:,} steps: rank 0 stop() {results[0]['stop_s'] * 1e3:.0f} ms, "
                  f"rank {ranks - 1} {results[-1]['stop_s'] * 1e3:.0f} ms", flush=True)
    headers = ["ranks", "steps/rank", "rank", "stop() ms", *(f"{p} ms" for p in PARTS), "peak RSS +MiB",
               "result bytes"]
    text = table(headers, rows, title="End-of-run cost of EnergyMeter.stop() under gloo (one machine)")
    alone_rows = []
    alone_steps = 2000 if args.quick else 10000
    for n in ([8, 100] if args.quick else [int(x) for x in args.rank0_ranks.split(",")]):
        got = rank0_alone(n, alone_steps)
        p = got["parts"]
        alone_rows.append([f"{n:,}", f"{got['gathered'] / 2**20:.2f}", f"{p.get('unpickle', 0) * 1e3:.1f}",
                           f"{p.get('sum', 0) * 1e3:.1f}", f"{p.get('report', 0) * 1e3:.1f}",
                           f"{p.get('files', 0) * 1e3:.1f}", f"{got['footprint'] / 2**20:.2f}",
                           f"{got['stop_s'] * 1e3:.0f}", f"{got['rss_peak_delta'] / 2**20:.1f}"])
        print(f"  rank 0 alone, {n:,} results: stop() {got['stop_s'] * 1e3:.0f} ms", flush=True)
    text += "\n\n" + table(
        ["ranks gathered", "results MiB", "unpickle ms", "sum ms", "report ms", "footprint+emissions ms",
         "footprint.json MiB", "stop() ms", "peak RSS +MiB"], alone_rows,
        title=f"Rank 0's own work per rank: one process handed N real results at the gather ({alone_steps:,} steps)")
    text += f"\n\nMachine: {machine_line()}"
    print(text)
    return text


if __name__ == "__main__":
    main()
