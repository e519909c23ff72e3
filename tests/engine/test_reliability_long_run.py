"""Fault injection, length: a million training steps through meter, ledger and steps.csv.

tests/engine/test_meter.py already drives 500,000 steps (1e6 marks) through Meter + Ledger with a
counting sink, and 25,000 steps under tracemalloc. What it leaves out, and this test covers:
the run length of the issue (1,000,000 steps), the production composition of a session
(Ledger -> StepsWriter streaming to a real steps.csv, as in lightning_green.engine.session), a
tracemalloc window at the very end of the run (memory must not grow with the step count), and
the file itself (one row per step, totals that add up).
"""

from __future__ import annotations

import csv
import sys
import tracemalloc

import pytest

from lightning_green.engine.ledger import Ledger, StepsWriter
from lightning_green.engine.sampler import Meter
from tests.helpers.fakes import CounterSensor, FakeClock, ScriptedPowerSensor, constant

STEPS = 1_000_000
STEP_S = 0.001  # 1 ms per step: 1,000 s of training
GPU_W, CPU_W = 300.0, 40.0


def test_a_million_steps_keep_memory_bounded_and_totals_exact(tmp_path):
    clock = FakeClock()
    sensors = [ScriptedPowerSensor(constant(GPU_W), clock, t0=0.0, name="gpu", component="gpu"),
               CounterSensor(constant(CPU_W), clock, t0=0.0, name="cpu", component="cpu")]
    writer = StepsWriter(tmp_path / "steps.csv", ["cpu", "gpu"])
    ledger = Ledger(sensors, step_sink=writer, wall_offset_s=0.0)
    meter = Meter(sensors, sink=ledger.feed, clock=clock)
    mark, advance, sample = meter.mark, clock.advance, meter.sample_once
    window_from = STEPS - 10_000
    blocks = []
    sample()
    mark(("phase", "train"))
    for step in range(STEPS):
        if step % 100_000 == 0:
            mark(("epoch", step // 100_000))
        if step == 100_000:
            blocks.append(sys.getallocatedblocks())
        if step == window_from:
            tracemalloc.start()
            traced_at_start = tracemalloc.get_traced_memory()[0]
        mark(("step_start", step))
        advance(STEP_S)
        mark(("step_end", step, 8, 128))
        if step % 100 == 99:
            sample()
    try:
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_at_start
        blocks.append(sys.getallocatedblocks())
    finally:
        tracemalloc.stop()
    meter.stop()
    writer.close()

    # Memory: 900,000 steps after the first reading, fewer than one new block per 100 steps;
    # over the traced last 10,000 steps (20,000 marks), under 10 bytes per step retained
    # (the writer's 256-row buffer alone may hold ~30 kB; one leaked object per step, >500 kB).
    assert blocks[1] - blocks[0] < 9_000, blocks
    assert traced_growth < 100_000, f"{traced_growth} bytes retained over the last 10,000 steps"

    duration_s = STEPS * STEP_S
    assert ledger.steps == STEPS and ledger.samples == 8 * STEPS and ledger.tokens == 128 * STEPS
    assert ledger.energy_j_by_component["gpu"] == pytest.approx(GPU_W * duration_s, rel=1e-9)
    assert ledger.energy_j_by_component["cpu"] == pytest.approx(CPU_W * duration_s, rel=1e-9)
    assert sum(ledger.energy_j_by_epoch.values()) == pytest.approx(ledger.energy_j, rel=1e-12)
    assert sorted(ledger.energy_j_by_epoch) == list(range(10))

    # steps.csv: every step once, in order, each with exactly (GPU_W + CPU_W) x 1 ms.
    count, total_j, worst, expected_j = 0, 0.0, 0.0, (GPU_W + CPU_W) * STEP_S
    with open(tmp_path / "steps.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        step_col, energy_col = header.index("step"), header.index("energy_j")
        for row in reader:
            if int(row[step_col]) != count:
                pytest.fail(f"row {count} is step {row[step_col]}")
            energy_j = float(row[energy_col])
            total_j += energy_j
            worst = max(worst, abs(energy_j - expected_j))
            count += 1
    assert count == STEPS
    assert worst < 1e-6
    assert total_j == pytest.approx((GPU_W + CPU_W) * duration_s, rel=1e-9)
