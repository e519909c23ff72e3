"""Fault injection, length: a million training steps through meter, ledger and steps.csv.

tests/engine/test_meter.py already drives 500,000 steps through Sampler + Ledger, and 25,000
steps under tracemalloc. What it leaves out, and this test covers: the run length of the issue
(1,000,000 steps), the production composition of a session (Ledger -> StepStore spilling to
disk -> steps.csv written in chunks, as in lightning_green.engine.session and the meter), a
tracemalloc window at the very end of the run (memory must not grow with the step count), and
the file itself (one row per step, totals that add up).
"""

from __future__ import annotations

import csv
import sys
import tracemalloc

import pytest

from lightning_green.engine.ledger import Ledger
from lightning_green.engine.marks import Boundary, EpochMark, PhaseMark
from lightning_green.engine.sampler import Sampler
from lightning_green.engine.steps import StepStore
from lightning_green.outputs.steps_csv import write_steps_csv
from tests.helpers.fakes import CounterSensor, FakeClock, ScriptedPowerSensor, constant

STEPS = 1_000_000
STEP_S = 0.001  # 1 ms per step: 1,000 s of training
GPU_W, CPU_W = 300.0, 40.0


def test_a_million_steps_keep_memory_bounded_and_totals_exact(tmp_path):
    clock = FakeClock()
    sensors = [ScriptedPowerSensor(constant(GPU_W), clock, t0=0.0, name="gpu", component="gpu"),
               CounterSensor(constant(CPU_W), clock, t0=0.0, name="cpu", component="cpu")]
    store = StepStore(["gpu", "cpu"], tmp_path / "steps.bin", memory_rows=512)  # <= 45 kB held
    ledger = Ledger(sensors, store, wall_offset_s=0.0)
    meter = Sampler(sensors, sink=ledger.feed, step_sink=ledger.feed_steps, clock=clock)
    mark, advance, sample, record = meter.mark, clock.advance, meter.sample_once, meter.record_step
    window_from = STEPS - 10_000
    blocks = []
    sample()
    mark(PhaseMark("train"))
    for step in range(STEPS):
        if step % 100_000 == 0:
            mark(EpochMark(step // 100_000))
        if step == 100_000:
            blocks.append(sys.getallocatedblocks())
        if step == window_from:
            tracemalloc.start()
            traced_at_start = tracemalloc.get_traced_memory()[0]
        start = clock.t
        meter.open_t0 = start
        advance(STEP_S)
        record(start, clock.t, 8, 128, 160, 0, step // 100_000)
        meter.open_t0 = None
        if step % 100 == 99:
            sample()
    try:
        traced_growth = tracemalloc.get_traced_memory()[0] - traced_at_start
        blocks.append(sys.getallocatedblocks())
    finally:
        tracemalloc.stop()
    mark(Boundary("end"))
    meter.stop()
    write_steps_csv(str(tmp_path), store.chunks(), store.components)

    # Memory: 900,000 steps after the first reading, fewer than one new block per 100 steps;
    # over the traced last 10,000 steps (20,000 marks), under 10 bytes per step retained
    # (the store holds at most 512 rows, 45 kB, before it spills; one leaked object per step,
    # >500 kB).
    assert blocks[1] - blocks[0] < 9_000, blocks
    assert traced_growth < 100_000, f"{traced_growth} bytes retained over the last 10,000 steps"

    duration_s = STEPS * STEP_S
    work = ledger.work_by_phase["train"]
    assert ledger.steps == store.rows == STEPS
    assert (work["samples"], work["tokens"], work["padded_tokens"]) == (8 * STEPS, 128 * STEPS, 160 * STEPS)
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
