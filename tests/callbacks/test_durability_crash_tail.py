"""The crash tail under DDP, with a rank killed by SIGKILL: no collective can run at crash
time, so each rank's own state file must hold what a resume needs.

Job A: a 2-process gloo DDP fit (tests/scripts/durability_fit.py) with ModelCheckpoint
(every_n_train_steps, save_last) and snapshots; rank 1 is SIGKILLed once a snapshot after a
checkpoint is in its state file; rank 0 fails in its next collective and the job dies (its
footprint, written without a collective, takes rank 1's figures from rank 1's file). Job B resumes (2 processes)
from that job's last.ckpt and is itself killed (the whole job, SIGKILL). Job C resumes again
from the same checkpoint and completes. Each rank of C must carry, once: its figures at the
checkpoint, what A spent after it (the tail up to A's last state file write), and what B spent.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
import torch

from tests.helpers.durability import J_PER_KWH, Fit, footprint, rank_state, snapshot_at, steps_rows

POWER_W = 50.0
EVERY_S = 0.5
EVERY_N = 60
MORE_STEPS = 12
WRITE_ALLOWANCE_S = EVERY_S

pytestmark = [pytest.mark.slow, pytest.mark.ddp, pytest.mark.timeout(300)]


def _fit(tmp_path, name: str, **settings) -> Fit:
    return Fit(tmp_path, name, out_dir=str(tmp_path / "out"), power_w=POWER_W, snapshot_every_s=EVERY_S,
               step_sleep_s=0.05, devices=2, ckpt_dir=str(tmp_path / name / "ckpt"),
               every_n_train_steps=EVERY_N, **settings)


def _states(out, run_id: str) -> list[dict]:
    return [rank_state(out, run_id, rank) for rank in (0, 1)]


def _setup_t(fit: Fit, rank: int) -> float:
    return float((fit.marks / f"setup-{rank}").read_text())


def test_a_rank_killed_after_a_checkpoint_its_tail_is_carried_once_by_every_resume(tmp_path):
    out = tmp_path / "out"
    # -- job A: rank 1 dies by SIGKILL after the first checkpoint -------------------------------
    a = _fit(tmp_path, "a")
    try:
        a.wait_for("a checkpoint on both ranks", lambda: len(a.checkpoints(0)) >= 2 and len(a.checkpoints(1)) >= 2)

        def rank_1_snapshot_after_the_checkpoint() -> bool:
            # rank 1's state file rewritten by a snapshot after the checkpoint (a tail to carry)
            run = footprint(out)
            try:
                mine = rank_state(out, run["run_id"], 1) if run else None
            except (OSError, ValueError):
                return False
            key = f"step{a.checkpoints(1)[-1][0]}"
            at = (mine or {}).get("checkpoints", {}).get(key)
            return bool(at) and mine["totals"]["energy_j"] > at["energy_j"] + POWER_W * 0.5

        a.wait_for("a snapshot of rank 1 after the checkpoint", rank_1_snapshot_after_the_checkpoint)
        killed_at = time.time()
        os.kill(a.pid(1), signal.SIGKILL)
        try:  # rank 0 fails in its next collective; a launcher would end the job anyway
            a.proc.wait(timeout=60)
        except Exception:
            a.kill_all()
    finally:
        a.close()
    failed = footprint(out)
    run_id = failed["run_id"]
    checkpoint = tmp_path / "resume-from.ckpt"
    shutil.copy(tmp_path / "a" / "ckpt" / "last.ckpt", checkpoint)  # both resumes use this one
    saved = torch.load(checkpoint, weights_only=False)
    ckpt_steps = saved["global_step"]
    state = next(v for k, v in saved["callbacks"].items() if k.startswith("EnergyCallback"))
    key = state["key"]
    assert state["run_id"] == run_id and key == f"step{ckpt_steps}"

    after_a = _states(out, run_id)
    assert after_a[1]["status"] == "running"  # killed: its last snapshot
    at_ckpt_j = [s["checkpoints"][key]["energy_j"] for s in after_a]
    assert all(s["checkpoints"][key]["steps"] == ckpt_steps for s in after_a)
    tails_a_j = [s["totals"]["energy_j"] - c for s, c in zip(after_a, at_ckpt_j)]
    # rank 1's file holds its energy up to the kill, within one snapshot interval
    started_1 = _setup_t(a, 1)
    assert after_a[1]["totals"]["energy_j"] >= POWER_W * (killed_at - started_1 - EVERY_S - WRITE_ALLOWANCE_S)
    assert all(t > POWER_W * 0.5 for t in tails_a_j), tails_a_j
    # The footprint rank 0 wrote as it failed (no collective possible) counts rank 1 too, from
    # rank 1's own file.
    assert failed["status"] == "failed" and after_a[0]["status"] == "failed"
    failed_by_rank = {r: kwh * J_PER_KWH for r, kwh in failed["energy_kwh_by_rank"].items()}
    assert failed_by_rank["1"] == pytest.approx(after_a[1]["totals"]["energy_j"], rel=1e-6)
    assert failed_by_rank["0"] == pytest.approx(after_a[0]["totals"]["energy_j"], rel=1e-6)
    assert failed["energy_kwh"] * J_PER_KWH == pytest.approx(sum(failed_by_rank.values()), rel=1e-9)
    assert any("rank 1 is counted from its state file" in w for w in failed["warnings"]), failed["warnings"]

    # -- job B: resumes from the checkpoint, then the whole job is killed -----------------------
    b = _fit(tmp_path, "b", resume=str(checkpoint))
    try:
        seen: list[str] = []

        def snapshots_of_b() -> bool:
            at = snapshot_at(out)
            if at and (not seen or seen[-1] != at) and b.steps(0) > 0:
                seen.append(at)
            return len(seen) >= 3

        b.wait_for("3 snapshots of the resumed job", snapshots_of_b)
        b.kill_all()
        b.wait()
    finally:
        b.close()
    after_b = _states(out, run_id)
    assert [s["status"] for s in after_b] == ["running", "running"]
    # B carried A's tail and added its own segment: never below A's figures
    segment_b_j = [sb["totals"]["energy_j"] - sa["totals"]["energy_j"] for sa, sb in zip(after_a, after_b)]
    assert all(0 < s for s in segment_b_j), segment_b_j

    # -- job C: resumes from the same checkpoint and completes ----------------------------------
    c = _fit(tmp_path, "c", resume=str(checkpoint), max_steps=ckpt_steps + MORE_STEPS)
    try:
        assert c.wait(180) == 0, c.output()
    finally:
        c.close()
    report = footprint(out)
    assert report["status"] == "completed" and report["run_id"] == run_id and report["world_size"] == 2
    assert report["steps"] == ckpt_steps + MORE_STEPS  # steps never counted twice
    text, rows = steps_rows(out / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(ckpt_steps + MORE_STEPS))
    after_c = _states(out, run_id)
    by_rank_j = {r: kwh * J_PER_KWH for r, kwh in report["energy_kwh_by_rank"].items()}
    assert sorted(by_rank_j) == ["0", "1"]
    redone_j = report["context"]["redone_energy_kwh"] * J_PER_KWH
    # Each rank: B's figures (checkpoint + A's tail + B's segment), then C's own segment.
    expected_redone = 0.0
    for rank in (0, 1):
        before = after_b[rank]["totals"]["energy_j"]
        segment_c = by_rank_j[str(rank)] - before
        bound = POWER_W * (c.exit_record(0)["t"] - _setup_t(c, rank))
        assert 0 < segment_c <= bound, (rank, segment_c, bound)
        assert after_c[rank]["totals"]["energy_j"] == pytest.approx(by_rank_j[str(rank)], rel=1e-6)
        expected_redone += before - at_ckpt_j[rank]
    assert redone_j == pytest.approx(expected_redone, rel=1e-6)
    # A's tail is in it once: redone = A's tails + B's segments, nothing else
    assert redone_j == pytest.approx(sum(tails_a_j) + sum(segment_b_j), rel=1e-6)
    assert report["energy_kwh"] * J_PER_KWH == pytest.approx(sum(by_rank_j.values()), rel=1e-9)
    assert report["samples"] == (ckpt_steps + MORE_STEPS) * 4 * 2  # batch 4, two ranks
