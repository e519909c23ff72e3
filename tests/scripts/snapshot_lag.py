"""How much energy a SIGKILL takes away from the footprint: kill tests/scripts/durability_fit.py
at random moments and compare the footprint left with P x (kill time - start).

Usage: python tests/scripts/snapshot_lag.py [--kills 8] [--devices 1] [--every 2] [--power 50]
       [--batches-per-epoch 8]

Each kill: a fresh fit (ConstantPowerSensor of ``--power`` W per rank, ``--every`` s snapshots),
killed with SIGKILL (every process of the job at once) at a uniformly random moment 1 s to
1 s + 2 intervals after its third snapshot. Prints, per kill and summarised, the lag in seconds of energy
(``(P x elapsed - energy in footprint.json) / (ranks x P)``), the kill time minus the last
snapshot mark, and what each snapshot took to land (footprint.json's mtime minus its mark).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.helpers.durability import J_PER_KWH, Fit, footprint, snapshot_at, unix  # noqa: E402


def one_kill(folder: Path, devices: int, every_s: float, power_w: float, batches_per_epoch: int) -> dict:
    fit = Fit(folder, "fit", power_w=power_w, snapshot_every_s=every_s, step_sleep_s=0.02, devices=devices,
              batches_per_epoch=batches_per_epoch)
    out = folder / "out"
    seen: list[str] = []
    landed: list[float] = []

    def three() -> bool:
        at = snapshot_at(out)
        if at and (not seen or seen[-1] != at):
            seen.append(at)
            landed.append(os.path.getmtime(out / "footprint.json") - unix(at))
        return len(seen) >= 3

    try:
        fit.wait_for("3 snapshots", three)
        end = time.monotonic() + random.uniform(1.0, 1.0 + 2 * every_s)
        while time.monotonic() < end:  # keep recording how long snapshots take to land
            three()
            time.sleep(0.01)
        killed_at = fit.kill_all()
        fit.wait()
    finally:
        fit.close()
    report = footprint(out)
    started, mark = unix(report["started_at"]), unix(report["snapshot_at"])
    energy_j = report["energy_kwh"] * J_PER_KWH
    lag_s = (devices * power_w * (killed_at - started) - energy_j) / (devices * power_w)
    return {"lag_s": lag_s, "since_mark_s": killed_at - mark, "landed_s": landed, "status": report["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--power", type=float, default=50.0)
    parser.add_argument("--batches-per-epoch", type=int, default=8,
                        help="each epoch end flushes the meter (marks resolved at once); 100000: none")
    args = parser.parse_args()
    results = []
    for i in range(args.kills):
        with tempfile.TemporaryDirectory(prefix="lg-lag-") as folder:
            got = one_kill(Path(folder), args.devices, args.every, args.power, args.batches_per_epoch)
        results.append(got)
        print(f"kill {i + 1}: status {got['status']}, lag {got['lag_s']:.3f} s of energy, kill - last mark "
              f"{got['since_mark_s']:.3f} s, snapshots landed {statistics.median(got['landed_s']) * 1e3:.0f} ms "
              f"(median) after their mark", flush=True)
    lags = [r["lag_s"] for r in results]
    landed = [x for r in results for x in r["landed_s"]]
    print(f"\n{args.kills} kills, {args.devices} rank(s), snapshot_every_s={args.every}, "
          f"{args.batches_per_epoch} batches an epoch: lag median "
          f"{statistics.median(lags):.3f} s, min {min(lags):.3f} s, max {max(lags):.3f} s "
          f"(= {max(lags) / args.every:.2f} intervals); a snapshot lands {statistics.median(landed) * 1e3:.0f} ms "
          f"(median, max {max(landed) * 1e3:.0f} ms) after its mark")


if __name__ == "__main__":
    main()
