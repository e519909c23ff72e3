"""What each rank leaves for a resume: Totals arithmetic and the per-rank state file (the
end-to-end crash and resume is in tests/callbacks/test_reliability_failures.py)."""

from __future__ import annotations

import json

import pytest

from lightning_green.engine.totals import Totals
from lightning_green.meter.state import CHECKPOINTS_KEPT, RankState


def test_spent_since_keeps_energy_and_time_not_the_redone_work():
    checkpoint = Totals(energy_j=100.0, duration_s=10.0, steps=8, samples=32, emissions_kg=1e-3,
                        energy_j_by_phase={"train": 90.0, "other": 10.0}, energy_j_by_epoch={"0": 100.0})
    crashed = Totals(energy_j=130.0, duration_s=13.0, steps=10, samples=40, emissions_kg=1.3e-3,
                     energy_j_by_phase={"train": 120.0, "other": 10.0}, energy_j_by_epoch={"0": 100.0, "1": 30.0})
    tail = crashed.spent_since(checkpoint)
    assert tail.energy_j == 30.0 and tail.duration_s == pytest.approx(3.0)
    assert tail.emissions_kg == pytest.approx(3e-4)
    assert tail.steps == tail.samples == tail.tokens == 0.0  # redone after the resume
    assert tail.energy_j_by_phase == {"train": 30.0, "other": 0.0}
    assert tail.energy_j_by_epoch == {"0": 0.0, "1": 30.0}
    # Never negative: totals from an older lineage cannot take energy away.
    assert checkpoint.spent_since(crashed).energy_j == 0.0


def test_totals_add_field_by_field_and_ranks_share_wall_time_and_steps():
    a = Totals(energy_j=10.0, duration_s=5.0, steps=4, samples=8, energy_j_by_component={"gpu": 10.0},
               work_by_phase={"train": {"batches": 4, "samples": 8}})
    b = Totals(energy_j=6.0, duration_s=5.2, steps=4, samples=8, energy_j_by_component={"gpu": 4.0, "cpu": 2.0},
               work_by_phase={"train": {"batches": 4, "samples": 8}, "test": {"batches": 1}})
    both = a + b
    assert (both.energy_j, both.duration_s, both.steps, both.samples) == (16.0, 10.2, 8, 16)
    assert both.energy_j_by_component == {"gpu": 14.0, "cpu": 2.0}
    assert both.work_by_phase == {"train": {"batches": 8.0, "samples": 16.0}, "test": {"batches": 1.0}}
    ranks = Totals.over_ranks([a, b])
    assert ranks.energy_j == 16.0 and ranks.samples == 16
    assert ranks.duration_s == 5.0 and ranks.steps == 4  # rank 0's: the same run on every rank


def test_totals_round_trip_and_old_or_corrupt_checkpoints_load_with_defaults():
    a = Totals(energy_j=10.0, duration_s=5.0, energy_j_by_epoch={"0": 10.0}, work_by_phase={"train": {"batches": 4}})
    assert Totals.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    old = {"schema": 1, "energy_j": 3.0, "energy_j_by_phase": {"train": 3.0}, "unknown": 1}
    assert Totals.from_dict(old) == Totals(energy_j=3.0, energy_j_by_phase={"train": 3.0})
    assert Totals.from_dict({"energy_j": "lots", "duration_s": float("nan")}) == Totals()
    assert Totals.from_dict(None) == Totals()


def test_rank_state_round_trips_keeps_the_latest_checkpoints_and_knows_its_run(tmp_path):
    state = RankState("run-a", rank=1, host="node-b")
    for step in range(CHECKPOINTS_KEPT + 5):
        state.remember_checkpoint(f"step{step}", Totals(energy_j=float(step)))
    state.totals, state.status = Totals(energy_j=500.0), "failed"
    state.write(str(tmp_path))
    back = RankState.read(str(tmp_path), 1, "run-a")
    assert back is not None and back.host == "node-b" and back.status == "failed"
    assert back.totals.energy_j == 500.0
    assert len(back.checkpoints) == CHECKPOINTS_KEPT
    assert back.at_checkpoint("step4") is None  # the oldest went first
    assert back.at_checkpoint(f"step{CHECKPOINTS_KEPT + 4}").energy_j == CHECKPOINTS_KEPT + 4
    assert RankState.read(str(tmp_path), 1, "run-b") is None  # another run's file
    assert RankState.read(str(tmp_path), 0, "run-a") is None  # another rank's
    (tmp_path / "rank-1.json").write_text("{not json")
    assert RankState.read(str(tmp_path), 1, "run-a") is None


def test_the_tail_is_what_an_unfinished_run_spent_after_the_checkpoint():
    checkpoint = Totals(energy_j=100.0, duration_s=10.0, steps=8)
    state = RankState("run", 0, totals=Totals(energy_j=130.0, duration_s=13.0, steps=10), status="failed")
    tail = state.tail_after(checkpoint)
    assert tail is not None and tail.energy_j == 30.0 and tail.steps == 0
    state.status = "running"  # killed: the last snapshot was written while it ran
    assert state.tail_after(checkpoint).energy_j == 30.0
    state.status = "completed"  # a run that completed leaves no tail to redo
    assert state.tail_after(checkpoint) is None
    assert RankState("run", 0, totals=checkpoint, status="failed").tail_after(checkpoint) is None
