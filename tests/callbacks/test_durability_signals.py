"""SIGTERM and SLURM's pre-emption, for real: a fit under Lightning's signal handling
(tests/scripts/durability_fit.py) receives the signal; the footprint ends "interrupted", the
checkpoint saved on the way out carries it, and the run resumed from that checkpoint continues
it, counting what was spent after the checkpoint once.

What Lightning 2.6 does (lightning/pytorch/trainer/connectors/signal_connector.py):

* SIGTERM: its handler only sets ``received_sigterm``; the training loop raises
  ``SIGTERMException`` (a SystemExit without a code) after the batch, callbacks get
  ``on_exception`` (OnExceptionCheckpoint saves there; Lightning orders checkpoint callbacks
  last, so EnergyCallback has stopped by then) and the process exits 0.
* Under ``SLURMEnvironment(auto_requeue=True)``, SIGUSR1 (SLURM's ``--signal=USR1@<s>``): the
  handler saves ``hpc_ckpt_<n>.ckpt`` in ``default_root_dir`` (callback state included: our
  ``state_dict`` runs inside the signal handler) and runs ``scontrol requeue $SLURM_JOB_ID``;
  training goes on until SLURM ends the job with SIGTERM. The requeued job (same variables,
  ``ckpt_path=None``) resumes from the newest hpc checkpoint by itself.
"""

from __future__ import annotations

import signal
import stat

import pytest
import torch

from tests.helpers.durability import J_PER_KWH, ROOT, Fit, footprint, rank_state
from tests.helpers.nodes import slurm_env

POWER_W = 50.0
EVERY_S = 0.5

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _energy_state(checkpoint_path) -> dict:
    saved = torch.load(checkpoint_path, weights_only=False)
    states = [v for k, v in saved["callbacks"].items() if k.startswith("EnergyCallback")]
    assert len(states) == 1, list(saved["callbacks"])
    return {"global_step": saved["global_step"], **states[0]}


def _segment_bounds_j(fit: Fit) -> float:
    """P x (this process's time from setup to exit): an upper bound of its own segment's energy."""
    started = float((fit.marks / "setup-0").read_text())
    return POWER_W * (fit.exit_record()["t"] - started)


def test_sigterm_ends_interrupted_the_exception_checkpoint_carries_it_and_a_resume_continues(tmp_path):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    first = Fit(tmp_path, "first", out_dir=str(out), power_w=POWER_W, snapshot_every_s=EVERY_S, step_sleep_s=0.02,
                on_exception_ckpt_dir=str(ckpt))
    try:
        first.wait_for("12 steps", lambda: first.steps() >= 12)
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait() == 0, first.output()  # SIGTERMException: SystemExit without a code
    finally:
        first.close()
    assert (first.exit_record()["exception"], first.exit_record()["status"]) == ("SIGTERMException", "interrupted")
    interrupted = footprint(out)
    assert interrupted["status"] == "interrupted"
    assert any("SIGTERMException" in w for w in interrupted["warnings"])
    stopped_j = interrupted["energy_kwh"] * J_PER_KWH
    assert stopped_j == pytest.approx(POWER_W * interrupted["duration_s"], rel=0.05)

    # The checkpoint OnExceptionCheckpoint saved holds the whole footprint (EnergyCallback
    # stopped first), keyed by the steps it holds.
    state = _energy_state(ckpt / "on_exception.ckpt")
    steps = state["global_step"]
    assert steps == first.exit_record()["global_step"] >= 12
    assert state["run_id"] == interrupted["run_id"]
    assert state["totals"]["steps"] == steps == interrupted["steps"]
    assert state["totals"]["energy_j"] == pytest.approx(stopped_j, rel=1e-6)

    resumed = Fit(tmp_path, "resumed", out_dir=str(out), power_w=POWER_W, snapshot_every_s=EVERY_S,
                  step_sleep_s=0.02, resume=str(ckpt / "on_exception.ckpt"), max_steps=steps + 8)
    try:
        assert resumed.wait() == 0, resumed.output()
    finally:
        resumed.close()
    report = footprint(out)
    assert report["status"] == "completed" and report["run_id"] == interrupted["run_id"]
    assert report["steps"] == steps + 8  # the interrupted steps once, the new ones once
    assert report["context"]["resumed"] is True
    # nothing was spent after that checkpoint: no tail to carry
    assert report["context"]["redone_energy_kwh"] * J_PER_KWH == pytest.approx(0.0, abs=1e-6)
    segment_j = report["energy_kwh"] * J_PER_KWH - stopped_j
    assert 0 < segment_j <= _segment_bounds_j(resumed)
    assert report["energy_kwh"] * J_PER_KWH == pytest.approx(POWER_W * report["duration_s"], rel=0.05)
    assert rank_state(out, report["run_id"], 0)["status"] == "completed"


def test_slurm_sigusr1_requeue_checkpoint_carries_the_footprint_and_the_requeued_run_continues_it(tmp_path):
    out, root = tmp_path / "out", tmp_path / "root"
    root.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol-calls.txt"
    scontrol = bin_dir / "scontrol"  # records its call, as the real one would requeue the job
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IXUSR)
    env = slurm_env(ROOT, job_id="4242", hosts=("localhost",), tasks_per_node=1, node_id=0, local_id=0,
                    MASTER_PORT="29517")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    settings = dict(out_dir=str(out), power_w=POWER_W, snapshot_every_s=EVERY_S, step_sleep_s=0.02,
                    slurm_requeue=True, root_dir=str(root))

    job = Fit(tmp_path, "job", env=env, **settings)
    try:
        job.wait_for("8 steps", lambda: job.steps() >= 8)
        job.proc.send_signal(signal.SIGUSR1)  # SLURM: the time limit is near
        job.wait_for("scontrol requeue", lambda: calls.exists() and (root / "hpc_ckpt_1.ckpt").exists())
        at_signal = job.steps()
        job.wait_for("training to go on after the hpc checkpoint", lambda: job.steps() >= at_signal + 20)
        job.proc.send_signal(signal.SIGTERM)  # SLURM ends the requeued job's current run
        assert job.wait() == 0, job.output()
    finally:
        job.close()
    assert calls.read_text().split() == ["requeue", "4242"]
    interrupted = footprint(out)
    assert interrupted["status"] == "interrupted"
    assert job.exit_record()["cluster_environment"] == "SLURMEnvironment"
    stopped_j = interrupted["energy_kwh"] * J_PER_KWH

    hpc = _energy_state(root / "hpc_ckpt_1.ckpt")
    assert hpc["run_id"] == interrupted["run_id"]
    ckpt_j, ckpt_steps = hpc["totals"]["energy_j"], hpc["global_step"]
    assert hpc["totals"]["steps"] == ckpt_steps and 0 < ckpt_steps < interrupted["steps"]
    assert 0 < ckpt_j < stopped_j
    tail_j = stopped_j - ckpt_j  # spent after the hpc checkpoint, on steps the requeued run redoes
    assert tail_j > POWER_W * 0.3

    requeued = Fit(tmp_path, "requeued", env=env, max_steps=ckpt_steps + 30, **settings)
    try:
        assert requeued.wait() == 0, requeued.output()
    finally:
        requeued.close()
    assert requeued.exit_record()["global_step"] == ckpt_steps + 30  # resumed from the hpc checkpoint
    report = footprint(out)
    assert report["status"] == "completed" and report["run_id"] == interrupted["run_id"]
    assert report["steps"] == ckpt_steps + 30
    # The tail is carried once, as redone energy; the requeued run's own segment on top.
    assert report["context"]["redone_energy_kwh"] * J_PER_KWH == pytest.approx(tail_j, rel=1e-6)
    segment_j = report["energy_kwh"] * J_PER_KWH - stopped_j
    assert 0 < segment_j <= _segment_bounds_j(requeued)
    assert report["energy_kwh"] * J_PER_KWH == pytest.approx(POWER_W * report["duration_s"], rel=0.05)
