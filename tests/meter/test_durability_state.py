"""The pieces a kill relies on, one at a time: when snapshots are due, each rank's own redone
energy across resumes, a checkpoint key every rank agrees on, and rank 0 counting the ranks
that did not reach the end from their state files (the end-to-end runs are in
tests/callbacks/test_durability_*.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lightning_green import EnergyMeter
from lightning_green.engine.distributed import World
from lightning_green.engine.session import Session
from lightning_green.engine.totals import Totals
from lightning_green.meter import snapshots
from lightning_green.meter.finish import Gathered, RankResult, with_state_files
from lightning_green.meter.resume import checkpoint_state, restore
from lightning_green.meter.state import RankState, state_dir_for
from lightning_green.sensors import ConstantPowerSensor


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t


def test_snapshots_fall_every_interval_from_each_mark_not_from_each_write(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(snapshots, "time", clock)
    snap = snapshots.Snapshotter(1.0)
    assert not snap.due()
    clock.t = 101.0
    assert snap.due()
    snap.pending = (5.0, 1_700_000_000.0)  # the mark, at 101.0
    assert not snap.due()  # one at a time
    clock.t = 101.8  # resolving and writing took 0.8 s
    snap.done()
    assert snap.taken == 1 and snap.pending is None
    clock.t = 101.9
    assert not snap.due()
    clock.t = 102.0  # one interval after the mark (not after the write, which would be 102.8)
    assert snap.due()
    assert not snapshots.Snapshotter(0).due()  # 0 = off


def test_marks_come_early_enough_for_resolution_in_batches(monkeypatch):
    """Marks are resolved (and the snapshot written) one resolution period after they are made,
    on a resolution round: a mark is due every_s - 2 periods after the last one, so the
    footprint a kill finds is never more than every_s old (plus its write); flush rounds
    (epoch ends) do not make short intervals write on every round."""
    clock = _Clock()
    monkeypatch.setattr(snapshots, "time", clock)
    snap = snapshots.Snapshotter(60.0)
    clock.t = 100.0 + 57.9
    assert not snap.due(1.0)
    clock.t = 100.0 + 58.0
    assert snap.due(1.0) and not snap.due(0.0)
    short = snapshots.Snapshotter(2.0)  # short intervals: never sooner than every_s / 2
    clock.t += 0.9
    assert not short.due(1.0)
    clock.t += 0.1
    assert short.due(1.0)


def _state(tmp_path, rank: int, *, ckpt: Totals, redone_at_ckpt: float | None, now: Totals, status: str) -> str:
    folder = str(tmp_path)
    state = RankState("run", rank, host=f"h{rank}", status=status, totals=now)
    state.remember_checkpoint("step8", ckpt, redone_at_ckpt or 0.0)
    if redone_at_ckpt is None:  # a file from before redone energy was kept per rank
        state.checkpoints["step8"].pop("redone_energy_j")
    state.write(folder)
    return folder


def _checkpoint(folder: str, rank0_totals: Totals, redone_j: float) -> dict:
    return checkpoint_state(run_id="run", key="step8", state_dir=folder, world_size=2, own=rank0_totals,
                            started_at=1.0, idle_power_w=None, segments=1, redone_energy_j=redone_j)


def test_each_rank_takes_back_its_own_redone_energy_not_rank_0s(tmp_path):
    at_ckpt = Totals(energy_j=100.0, duration_s=10.0, steps=8)
    later = Totals(energy_j=130.0, duration_s=13.0, steps=10)
    folder = _state(tmp_path, 1, ckpt=at_ckpt, redone_at_ckpt=7.0, now=later, status="running")
    # rank 0 saved the checkpoint; its own redone energy (40 J) is in the checkpoint file
    restored = restore(_checkpoint(folder, Totals(energy_j=111.0, steps=8), redone_j=40.0), rank=1)
    assert restored.carried.energy_j == pytest.approx(130.0)  # its checkpoint + its tail
    assert restored.redone_energy_j == pytest.approx(7.0 + 30.0)  # its own earlier redone + its tail, not 40
    assert restored.carried.steps == 8  # the tail's steps are done again, not carried


def test_older_state_files_give_rank_0_the_checkpoints_redone_and_the_others_none(tmp_path):
    at_ckpt = Totals(energy_j=100.0, duration_s=10.0, steps=8)
    for rank in (0, 1):
        folder = _state(tmp_path, rank, ckpt=at_ckpt, redone_at_ckpt=None, now=at_ckpt, status="completed")
    checkpoint = _checkpoint(folder, at_ckpt, redone_j=40.0)
    assert restore(checkpoint, rank=0).redone_energy_j == 40.0
    assert restore(checkpoint, rank=1).redone_energy_j == 0.0


def test_rank_0_counts_the_ranks_that_did_not_reach_the_end_from_their_files(tmp_path):
    folder = str(tmp_path)
    for rank, energy in ((1, 40.0), (2, 50.0)):  # rank 3 left no file
        state = RankState("run", rank, host="h", status="running", redone_energy_j=float(rank),
                          totals=Totals(energy_j=energy, duration_s=3.0, steps=9, energy_j_by_rank={str(rank): energy}))
        state.write(folder)
    RankState("other-run", 3, totals=Totals(energy_j=1e6)).write(folder)  # another run's file is not read
    zero = RankResult(rank=0, host="h", totals=Totals(energy_j=60.0, duration_s=4.0, steps=10,
                                                      energy_j_by_rank={"0": 60.0}).to_dict(),
                      segment=Totals().to_dict(), rows=10, redone_energy_j=5.0)
    gathered = with_state_files(Gathered([zero], ["gpu"], None, True), folder, "run", World(0, 4, "h"))
    assert [r.rank for r in gathered.results] == [0, 1, 2]
    assert not gathered.complete
    totals = gathered.totals
    assert totals.energy_j == 150.0 and totals.energy_j_by_rank == {"0": 60.0, "1": 40.0, "2": 50.0}
    assert totals.duration_s == 4.0 and totals.steps == 10  # rank 0's wall time and steps
    assert gathered.redone_energy_j == 5.0 + 1.0 + 2.0
    notes = gathered.results[0].warnings  # one note, on rank 0's result, for every rank concerned
    assert len(notes) == 2 and not gathered.results[1].warnings
    assert notes[0].startswith("the ranks did not reach the end of the run together: ranks 1, 2 are counted from "
                               "their state files, written at ")
    assert notes[0].endswith("(status running); only rank 0's sensors are listed")
    assert notes[1] == "rank 3 left no state file: its energy is missing from the totals"
    assert all(r.rows == 10 for r in gathered.results)
    alone = with_state_files(Gathered([zero], [], None, True), None, "run", World(0, 2, "h"))
    assert [r.rank for r in alone.results] == [0] and not alone.complete


def test_many_ranks_are_named_in_one_short_line():
    from lightning_green.meter.finish import _ranks

    assert _ranks([3]) == "rank 3" and _ranks([1, 2]) == "ranks 1, 2"
    assert _ranks(list(range(1, 1000))) == "ranks 1, 2, 3, 4, 5, 6, 7, ..., 999 (999 ranks)"


def test_a_checkpoint_is_keyed_by_the_steps_done_even_when_the_meter_thread_lags(tmp_path, monkeypatch):
    """A flush that does not finish in time (a busy machine) leaves the ledger behind; the key
    and the steps of the checkpoint come from the training thread's own count, the same on
    every rank."""
    meter = EnergyMeter(sensors=[ConstantPowerSensor(10.0, name="fixed", component="gpu", measured=True)],
                        output_dir=tmp_path, snapshot_every_s=0, carbon_intensity_g_per_kwh=100.0,
                        sampling_interval_s=3600.0)  # no round but the first, unless flushed
    with meter:
        with meter.phase("train"):
            for _ in range(5):
                with meter.step(samples=2):
                    pass
            monkeypatch.setattr(Session, "flush", lambda self, timeout_s=2.0: False)  # nothing resolved in time
            lagging = meter._session.totals().steps
            state = meter.state_dict()
            monkeypatch.undo()
    assert lagging < 5  # the ledger had not seen every step (the situation this guards against)
    assert state["key"] == "step5" and state["totals"]["steps"] == 5
    saved = RankState.read(state_dir_for(str(tmp_path), meter.run_id), 0, meter.run_id)
    assert saved.at_checkpoint("step5").steps == 5
    assert meter.report.steps == 5
    after = meter.state_dict()  # after stop(): the totals so far, the same key
    assert after["key"] == "step5" and after["totals"]["steps"] == 5


def test_snapshot_exchange_sums_redone_energy_over_ranks(monkeypatch):
    monkeypatch.setattr(snapshots, "all_reduce_sum", lambda values: [v * 2 for v in values])  # two equal ranks
    figures = SimpleNamespace(energy_j={("gpu", "train"): 10.0})
    result = snapshots.exchange(figures=figures, energy_j=10.0, emissions_kg=1e-3, samples=4, steps=2, elapsed_s=1.0,
                                rank=0, batches_since=2, every_n=50, target_s=0.5, redone_energy_j=3.0)
    assert result.redone_energy_j == 6.0 and result.totals.energy_j == 20.0
    assert result.next_in_batches == 1  # 2 batches took 2 s (doubled here): 0.5 s is less than a batch


def test_summing_many_ranks_pairwise_gives_what_totals_over_ranks_gives():
    from lightning_green.meter.finish import _over_ranks

    ranks = [Totals(energy_j=10.0 + r, duration_s=5.0 + r, steps=7, samples=4 + r, energy_j_by_rank={str(r): 10.0 + r},
                    energy_j_by_host={f"h{r // 2}": 10.0 + r}, energy_j_by_component={"gpu": 8.0, "cpu": 2.0 + r},
                    work_by_phase={"train": {"batches": 7, "samples": 4 + r}}) for r in range(7)]
    expected, got = Totals.over_ranks(ranks), _over_ranks(ranks)
    assert got.energy_j_by_rank == expected.energy_j_by_rank and len(got.energy_j_by_rank) == 7
    assert got.energy_j_by_host == pytest.approx(expected.energy_j_by_host)
    assert got.energy_j_by_component == pytest.approx(expected.energy_j_by_component)
    assert got.work_by_phase == expected.work_by_phase
    assert (got.energy_j, got.samples) == (pytest.approx(expected.energy_j), expected.samples)
    assert (got.duration_s, got.steps) == (5.0, 7)  # rank 0's wall time and steps
    assert _over_ranks(ranks[:1]) == Totals.over_ranks(ranks[:1]) and _over_ranks([]) == Totals()
