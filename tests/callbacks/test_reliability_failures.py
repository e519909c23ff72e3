"""Fault injection, the run itself: exceptions, Ctrl+C, SIGTERM, crashes while writing,
resume after a crash, threads, and several callbacks or Trainers in one process.

Every test checks what happened to training (the exception a user gets, the exit code)
and what the files say (status, energy so far, never a partial file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_green import EnergyCallback
from lightning_green.outputs.footprint import read_footprint
from lightning_green.sensors import ConstantPowerSensor
from tests.helpers.threads import lightning_green_threads
from tests.helpers.models import SlowBoringModel
from tests.helpers.reliability_kit import (
    AtStep,
    make_trainer,
    no_temp_files,
    read_json,
    read_rows,
)

ROOT = Path(__file__).resolve().parents[2]
POWER_W = 50.0


def sensors(power_w: float = POWER_W, name: str = "fixed"):
    return [ConstantPowerSensor(power_w, name=name, component="gpu", measured=True)]


def energy_cb(out_dir, power_w: float = POWER_W, **kwargs) -> EnergyCallback:
    return EnergyCallback(sensors=sensors(power_w), output_dir=out_dir, sampling_interval_s=0.01,
                          carbon_intensity_g_per_kwh=200.0, **kwargs)


def assert_files_hold_energy_so_far(out_dir: Path, status: str, steps: int) -> dict:
    footprint = read_json(out_dir / "footprint.json")
    assert footprint["status"] == status
    assert footprint["steps"] == steps
    assert footprint["energy_kwh"] > 0
    assert footprint["energy_kwh"] * 3.6e6 == pytest.approx(POWER_W * footprint["duration_s"], rel=0.1)
    emissions = read_rows(out_dir / "emissions.csv")
    assert float(emissions[-1]["energy_consumed"]) == pytest.approx(footprint["facility_energy_kwh"])
    assert float(emissions[-1]["emissions"]) == pytest.approx(footprint["emissions_kg"])
    assert [int(r["step"]) for r in read_rows(out_dir / "steps.csv")] == list(range(steps))
    assert no_temp_files(out_dir) == []
    return footprint


# -- training raising, Ctrl+C, SIGTERM -------------------------------------------------------
def test_exception_at_step_n_propagates_and_files_hold_the_energy_so_far(tmp_path, no_thread_leak):
    cb = energy_cb(tmp_path)
    trainer = make_trainer(tmp_path, [cb], max_epochs=3, limit_train_batches=5)
    with pytest.raises(RuntimeError, match="^boom at step 7$"):
        trainer.fit(SlowBoringModel(step_sleep_s=0.01, fail_at_step=7))
    footprint = assert_files_hold_energy_so_far(tmp_path, "failed", steps=7)
    assert any("RuntimeError: boom at step 7" in w for w in footprint["warnings"])
    assert set(footprint["energy_kwh_by_epoch"]) == {"0", "1"}
    assert cb.report.status == "failed"


class _CtrlC(SlowBoringModel):
    def training_step(self, batch, batch_idx):
        if self.global_step == 4:
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)


def test_keyboard_interrupt_becomes_exit_1_with_an_interrupted_report(tmp_path, no_thread_leak):
    """Lightning catches KeyboardInterrupt, calls on_exception (not teardown) and sys.exit(1)."""
    cb = energy_cb(tmp_path)
    trainer = make_trainer(tmp_path, [cb], limit_train_batches=10)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as info:
            trainer.fit(_CtrlC(step_sleep_s=0.01))
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores SIGINT from then on
    assert info.value.code == 1
    footprint = assert_files_hold_energy_so_far(tmp_path, "interrupted", steps=4)
    assert any("KeyboardInterrupt" in w for w in footprint["warnings"])


def test_sigterm_under_lightning_signal_handling_writes_an_interrupted_report(tmp_path):
    script = ROOT / "tests" / "scripts" / "reliability_sigterm_fit.py"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = tmp_path / "training-started"
        deadline = time.monotonic() + 120
        while not started.exists():
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the fit never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Lightning's handler sets a flag; the loop then raises SIGTERMException, a SystemExit
    # without a code: the process exits with status 0 after on_exception and teardown.
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    footprint = read_json(tmp_path / "footprint.json")
    assert footprint["status"] == "interrupted"
    assert 3 <= footprint["steps"] < 1000
    assert footprint["energy_kwh"] * 3.6e6 == pytest.approx(POWER_W * footprint["duration_s"], rel=0.1)
    assert any("SIGTERMException" in w for w in footprint["warnings"])
    assert len(read_rows(tmp_path / "emissions.csv")) == 1
    assert len(read_rows(tmp_path / "steps.csv")) == footprint["steps"]
    assert no_temp_files(tmp_path) == []
    assert read_json(tmp_path / "threads.json") == []  # no lightning-green thread alive at exit


# -- crashes while writing -------------------------------------------------------------------
@pytest.mark.parametrize("victim", ["footprint.json", "emissions.csv", "steps.csv"])
def test_a_crash_while_writing_leaves_the_previous_file_whole(tmp_path, monkeypatch, no_thread_leak, victim):
    """The process 'dies' between writing the temporary file and renaming it: the old file
    stays as it was, readable, and training is not failed by the footprint."""
    make_trainer(tmp_path, [energy_cb(tmp_path)]).fit(SlowBoringModel())
    before = {name: (tmp_path / name).read_bytes() for name in ("footprint.json", "emissions.csv", "steps.csv")}

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == victim:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setenv("LIGHTNING_GREEN_STRICT", "0")  # production: a report error only warns
    cb = energy_cb(tmp_path)
    trainer = make_trainer(tmp_path, [cb], max_epochs=2)
    with mock.patch("os.replace", side_effect=replace), \
            pytest.warns(UserWarning, match="could not finish its report.*No space left"):
        trainer.fit(SlowBoringModel())
    assert trainer.state.finished and trainer.global_step == 20  # training unharmed
    assert cb.report is not None and cb.report.status == "completed" and cb.report.steps == 20
    assert (tmp_path / victim).read_bytes() == before[victim]  # old content, whole
    read_footprint(tmp_path / "footprint.json")  # still a valid footprint
    assert no_temp_files(tmp_path) == []


# -- resume after a crash --------------------------------------------------------------------
def test_resume_after_a_crash_continues_from_the_last_checkpoint(tmp_path, no_thread_leak):
    ckpt_dir = tmp_path / "ckpt"
    crashed = energy_cb(tmp_path)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=4)
    trainer = make_trainer(tmp_path, [crashed, checkpoint], max_epochs=2, limit_train_batches=8,
                           enable_checkpointing=True)
    with pytest.raises(RuntimeError, match="boom at step 10"):
        trainer.fit(SlowBoringModel(step_sleep_s=0.01, fail_at_step=10))
    assert read_json(tmp_path / "footprint.json")["status"] == "failed"
    saved = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 8
    state = next(v for k, v in saved["callbacks"].items() if k.startswith("EnergyCallback"))
    assert state["totals"]["steps"] == 8
    ckpt_j, ckpt_s = state["totals"]["energy_j"], state["totals"]["duration_s"]
    assert ckpt_j > 0 and ckpt_s > 0
    # The crashed run went on after its checkpoint (steps 9-10): its totals wait in the run's
    # state folder, where the checkpoint says they are.
    crash_j = crashed.report.energy_kwh * 3.6e6
    rank_file = Path(state["state_dir"]) / "rank-0.json"
    assert rank_file == tmp_path / ".lightning-green" / crashed.report.run_id / "rank-0.json"
    left = read_json(rank_file)
    assert left["status"] == "failed" and left["totals"]["energy_j"] == pytest.approx(crash_j)
    assert left["checkpoints"][state["key"]]["energy_j"] == pytest.approx(ckpt_j)
    assert crash_j > ckpt_j

    results = []
    for attempt in range(2):  # resuming twice from one checkpoint must not count it twice
        cb = energy_cb(tmp_path)
        make_trainer(tmp_path, [cb], max_epochs=2, limit_train_batches=8).fit(
            SlowBoringModel(step_sleep_s=0.01), ckpt_path=ckpt_dir / "last.ckpt")
        report = cb.report
        assert report.status == "completed" and report.steps == 16 and report.samples == 64
        assert report.run_id == crashed.report.run_id
        assert report.context["resumed"] is True
        # The first resume adds the crashed tail (energy and time, not its redone steps), once.
        redone_j = report.context["redone_energy_kwh"] * 3.6e6
        if attempt == 0:
            assert redone_j == pytest.approx(crash_j - ckpt_j, rel=1e-6)
            assert any("crashed run spent after this checkpoint" in w for w in report.warnings)
            assert read_json(rank_file)["status"] == "completed"  # nothing left to carry again
        else:
            assert redone_j == 0.0
        segment_j = report.energy_kwh * 3.6e6 - ckpt_j
        segment_s = report.duration_s - ckpt_s
        assert segment_s > 0
        # Every joule is matched by time, the crashed tail's included: constant power.
        assert segment_j == pytest.approx(POWER_W * segment_s, rel=0.1)
        # Lightning calls no on_train_epoch_start for the epoch it resumes in: the segment's
        # energy must still go to training and to epoch 1, not to "other" and no epoch.
        segment_train_j = report.energy_kwh_by_phase["train"] * 3.6e6 - state["totals"]["energy_j_by_phase"]["train"]
        assert segment_train_j > 0.7 * segment_j
        assert report.energy_kwh_by_epoch["1"] * 3.6e6 > 0.7 * segment_j
        rows = read_rows(tmp_path / "steps.csv")
        assert [int(r["step"]) for r in rows] == list(range(16))
        assert [r["epoch"] for r in rows] == ["0"] * 8 + ["1"] * 8
        results.append(report)
    assert results[1].energy_kwh < results[0].energy_kwh * 1.5


class _FailsInSanityCheck(SlowBoringModel):
    def validation_step(self, batch, batch_idx):
        raise RuntimeError("boom in the sanity check")


def test_a_resume_that_fails_before_training_keeps_the_crashed_tail(tmp_path, no_thread_leak):
    ckpt_dir = tmp_path / "ckpt"
    crashed = energy_cb(tmp_path)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=4)
    with pytest.raises(RuntimeError, match="boom at step 10"):
        make_trainer(tmp_path, [crashed, checkpoint], max_epochs=2, limit_train_batches=8,
                     enable_checkpointing=True).fit(SlowBoringModel(step_sleep_s=0.01, fail_at_step=10))
    state = next(v for k, v in torch.load(ckpt_dir / "last.ckpt", weights_only=False)["callbacks"].items()
                 if k.startswith("EnergyCallback"))
    tail_j = crashed.report.energy_kwh * 3.6e6 - state["totals"]["energy_j"]
    assert tail_j > 0

    # A resume that dies in the sanity check, before on_train_start: the tail must survive it.
    early = energy_cb(tmp_path)
    with pytest.raises(RuntimeError, match="sanity check"):
        make_trainer(tmp_path, [early], max_epochs=2, limit_train_batches=8, limit_val_batches=1,
                     num_sanity_val_steps=1).fit(_FailsInSanityCheck(), ckpt_path=ckpt_dir / "last.ckpt")
    assert early.report.status == "failed"
    assert early.report.context["redone_energy_kwh"] * 3.6e6 == pytest.approx(tail_j, rel=1e-6)

    final = energy_cb(tmp_path)
    make_trainer(tmp_path, [final], max_epochs=2, limit_train_batches=8).fit(
        SlowBoringModel(step_sleep_s=0.01), ckpt_path=ckpt_dir / "last.ckpt")
    # Both the first crash's tail and the failed resume's own energy are carried, once.
    early_j = early.report.energy_kwh * 3.6e6 - crashed.report.energy_kwh * 3.6e6
    assert early_j > 0
    assert final.report.context["redone_energy_kwh"] * 3.6e6 == pytest.approx(tail_j + early_j, rel=1e-6)
    assert final.report.steps == 16


class _FailsInTest(SlowBoringModel):
    def test_step(self, batch, batch_idx):
        raise RuntimeError("boom in test")


def test_a_failed_test_call_leaves_no_crash_totals_for_a_later_fit(tmp_path, no_thread_leak):
    ckpt_dir = tmp_path / "ckpt"
    cb = energy_cb(tmp_path)
    trainer = make_trainer(tmp_path, [cb, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)],
                           limit_test_batches=2, enable_checkpointing=True)
    model = _FailsInTest()
    trainer.fit(model)
    with pytest.raises(RuntimeError, match="boom in test"):
        trainer.test(model)
    assert cb.report.status == "failed"
    # No training step is redone: a resume from the fit's checkpoint carries nothing more.
    resumed = energy_cb(tmp_path)
    make_trainer(tmp_path, [resumed], max_epochs=2).fit(SlowBoringModel(), ckpt_path=ckpt_dir / "last.ckpt")
    assert resumed.report.context["redone_energy_kwh"] == 0.0


# -- threads ----------------------------------------------------------------------------------
def test_no_thread_outlives_fit_validate_test_predict_or_an_exception(tmp_path, no_thread_leak):
    cb = EnergyCallback(output_dir=tmp_path, sampling_interval_s=0.01)  # "auto": real estimates
    trainer = make_trainer(tmp_path, [cb], limit_val_batches=2, limit_test_batches=2, limit_predict_batches=2)
    model = SlowBoringModel()
    for name, call in [
        ("fit", lambda: trainer.fit(model)),
        ("validate", lambda: trainer.validate(model, verbose=False)),
        ("test", lambda: trainer.test(model, verbose=False)),
        ("predict", lambda: trainer.predict(model, dataloaders=model.test_dataloader())),
    ]:
        call()
        assert not lightning_green_threads(), f"after {name}"
        assert cb.report.status == "completed"
    phases = cb.report.energy_kwh_by_phase
    assert all(phases[p] > 0 for p in ("train", "validate", "test", "predict")), phases
    failing = make_trainer(tmp_path, [cb], max_epochs=1)
    with pytest.raises(RuntimeError, match="boom"):
        failing.fit(SlowBoringModel(fail_at_step=2))
    assert not lightning_green_threads(), "after an exception"
    assert cb.report.status == "failed"


# -- two callbacks, two Trainers ----------------------------------------------------------------
def test_two_energy_callbacks_in_one_trainer_keep_their_own_footprints(tmp_path, no_thread_leak):
    low, high = tmp_path / "low", tmp_path / "high"
    with pytest.raises(RuntimeError, match="state_key"):  # two unnamed ones: Lightning refuses the Trainer
        make_trainer(tmp_path, [energy_cb(low), energy_cb(high)])
    cb_low, cb_high = energy_cb(low, power_w=10.0, name="low"), energy_cb(high, power_w=30.0, name="high")
    ckpt_dir = tmp_path / "ckpt"
    trainer = make_trainer(tmp_path, [cb_low, cb_high, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)],
                           enable_checkpointing=True)
    trainer.fit(SlowBoringModel(step_sleep_s=0.01))
    for cb, out, power_w in ((cb_low, low, 10.0), (cb_high, high, 30.0)):
        report = cb.report
        assert report.status == "completed" and report.steps == 10
        assert report.energy_kwh * 3.6e6 == pytest.approx(power_w * report.duration_s, rel=0.1)
        assert read_json(out / "footprint.json")["run_id"] == report.run_id
        assert len(read_rows(out / "emissions.csv")) == 1
    assert cb_low.report.run_id != cb_high.report.run_id
    states = torch.load(ckpt_dir / "last.ckpt", weights_only=False)["callbacks"]
    ours = {k: v for k, v in states.items() if k.startswith("EnergyCallback")}
    assert len(ours) == 2  # one state each, not one overwriting the other

    resumed_low, resumed_high = energy_cb(low, power_w=10.0, name="low"), energy_cb(high, power_w=30.0, name="high")
    make_trainer(tmp_path, [resumed_low, resumed_high], max_epochs=2).fit(
        SlowBoringModel(), ckpt_path=ckpt_dir / "last.ckpt")
    assert resumed_low.report.run_id == cb_low.report.run_id
    assert resumed_high.report.run_id == cb_high.report.run_id
    assert resumed_high.report.energy_kwh > resumed_low.report.energy_kwh * 2


def test_two_trainers_in_one_process_do_not_disturb_each_other(tmp_path, no_thread_leak):
    """An inner Trainer runs a whole fit while the outer one is mid-epoch (a nested search or
    an evaluation Trainer): two sessions alive at once, each measuring only its own calls."""
    inner_cb = energy_cb(tmp_path / "inner", power_w=30.0)
    inner_durations = []

    def run_inner(step):
        if step == 3:
            inner = make_trainer(tmp_path / "inner", [inner_cb], limit_train_batches=5)
            inner.fit(SlowBoringModel(step_sleep_s=0.01))
            inner_durations.append(inner_cb.report.duration_s)

    outer_cb = energy_cb(tmp_path / "outer", power_w=10.0)
    outer = make_trainer(tmp_path / "outer", [outer_cb, AtStep(run_inner)], limit_train_batches=8)
    outer.fit(SlowBoringModel(step_sleep_s=0.01))
    outer_report, inner_report = outer_cb.report, inner_cb.report
    assert outer_report.steps == 8 and inner_report.steps == 5
    assert outer_report.run_id != inner_report.run_id
    assert outer_report.energy_kwh * 3.6e6 == pytest.approx(10.0 * outer_report.duration_s, rel=0.1)
    assert inner_report.energy_kwh * 3.6e6 == pytest.approx(30.0 * inner_report.duration_s, rel=0.1)
    assert outer_report.duration_s > inner_report.duration_s
    assert [int(r["step"]) for r in read_rows(tmp_path / "outer" / "steps.csv")] == list(range(8))
    assert [int(r["step"]) for r in read_rows(tmp_path / "inner" / "steps.csv")] == list(range(5))
    # Afterwards the outer Trainer's test adds to the outer footprint only.
    outer.test(SlowBoringModel(), verbose=False)
    after_test = outer_cb.report
    assert after_test.energy_kwh_by_phase["test"] > 0 and after_test.steps == 8
    assert after_test.energy_kwh * 3.6e6 == pytest.approx(10.0 * after_test.duration_s, rel=0.1)


def test_resume_into_another_output_dir_continues_the_footprint(tmp_path, no_thread_leak):
    """The checkpoint key names output_dir (see above); a resumed run in a new folder (a new
    Hydra run dir) must still find its totals."""
    first = energy_cb(tmp_path / "run1")
    ckpt_dir = tmp_path / "ckpt"
    make_trainer(tmp_path, [first, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)],
                 enable_checkpointing=True).fit(SlowBoringModel())
    resumed = energy_cb(tmp_path / "run2")
    make_trainer(tmp_path, [resumed], max_epochs=2).fit(SlowBoringModel(), ckpt_path=ckpt_dir / "last.ckpt")
    assert resumed.report.run_id == first.report.run_id
    assert resumed.report.steps == 20
    assert resumed.report.energy_kwh > first.report.energy_kwh
    assert [int(r["step"]) for r in read_rows(tmp_path / "run2" / "steps.csv")] == list(range(10, 20))
