"""EnergyCallback as a Lightning user meets it: debug runs, the run's folder, the progress bar,
the line at the end, loggers in every stage, the steps they log at, `show`, waits, bad folders.

Real Trainers on the CPU with sensors of known power; nothing reaches the network.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.fabric.loggers.tensorboard import _TENSORBOARD_AVAILABLE, _TENSORBOARDX_AVAILABLE
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_green import EnergyCallback
from lightning_green.cli import main as cli_main
from tests.helpers.ecosystem_kit import (
    LoggingModel, RecordingLogger, TwoOptimizerModel, csv_rows, end_lines, energy_cb, files_under, said, trainer,
)

ROOT = Path(__file__).resolve().parents[2]
PROGRESS_BAR_KEYS = ("energy/power_w", "energy/energy_wh")


# -- fast_dev_run -------------------------------------------------------------------------------
def test_fast_dev_run_measures_prints_the_summary_and_writes_nothing(tmp_path, monkeypatch, caplog, no_thread_leak):
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(tmp_path)
    cb = energy_cb()
    # Lightning's defaults: a logger and a checkpoint callback, both suppressed by fast_dev_run.
    debug = trainer(tmp_path, [cb, ModelCheckpoint(dirpath=tmp_path / "ckpt")], fast_dev_run=True, logger=True,
                    enable_checkpointing=True, limit_train_batches=None, limit_val_batches=None)
    model = LoggingModel()
    debug.fit(model)
    debug.validate(model, verbose=False)
    debug.test(model, verbose=False)
    debug.predict(model)
    report = cb.report
    assert report.status == "completed" and report.steps == 1 and report.energy_kwh > 0
    assert all(report.energy_kwh_by_phase[p] > 0 for p in ("train", "validate", "test", "predict"))
    # A checkpoint the user saves by hand holds the state, but no state folder appears.
    debug.save_checkpoint(tmp_path / "manual" / "by-hand.ckpt")
    assert files_under(tmp_path) == [tmp_path / "manual" / "by-hand.ckpt"]
    assert not [p for p in tmp_path.rglob(".lightning-green*")]
    messages = said(caplog)
    assert len(messages) == 4  # one per call: the summary and where the files are (nowhere)
    assert all(m.startswith("lightning-green footprint: run ") and "Energy (IT, before PUE)" in m for m in messages)
    assert all(m.endswith("footprint not written (debug run: Lightning writes nothing either)") for m in messages)


def test_a_debug_run_with_an_explicit_output_dir_leaves_it_empty(tmp_path):
    out = tmp_path / "fp"
    cb = energy_cb(output_dir=out)
    trainer(tmp_path, [cb], fast_dev_run=True).fit(LoggingModel())
    assert cb.report.energy_kwh > 0
    assert out.is_dir() and not list(out.iterdir())  # checked writable at construction, then left alone


# -- the run's own folder -------------------------------------------------------------------------
def _loggers():
    kinds = ["csv"]
    if _TENSORBOARD_AVAILABLE or _TENSORBOARDX_AVAILABLE:
        kinds.append("tensorboard")
    return kinds


@pytest.mark.parametrize("kind", _loggers())
def test_files_go_to_the_loggers_versioned_folder_and_two_fits_give_two(tmp_path, kind):
    reports = []
    for _ in range(2):
        logger = (CSVLogger if kind == "csv" else TensorBoardLogger)(tmp_path / "logs", name="exp")
        cb = energy_cb()
        trainer(tmp_path, [cb], logger=logger).fit(LoggingModel())
        assert cb.output_dir == logger.log_dir
        reports.append(cb.report)
    for version, report in enumerate(reports):
        folder = tmp_path / "logs" / "exp" / f"version_{version}"
        assert json.loads((folder / "footprint.json").read_text())["run_id"] == report.run_id
        assert [r["run_id"] for r in csv_rows(folder / "emissions.csv")] == [report.run_id]
        assert len(csv_rows(folder / "steps.csv")) == 4
    assert reports[0].run_id != reports[1].run_id


def test_without_a_logger_each_run_gets_its_own_folder_under_default_root_dir(tmp_path):
    reports = []
    for _ in range(2):
        cb = energy_cb()
        trainer(tmp_path, [cb]).fit(LoggingModel())
        reports.append(cb.report)
        assert Path(cb.output_dir) == tmp_path / "lightning_green" / cb.report.run_id
    for report in reports:
        on_disk = json.loads((tmp_path / "lightning_green" / report.run_id / "footprint.json").read_text())
        assert on_disk["run_id"] == report.run_id and on_disk["energy_kwh"] == pytest.approx(report.energy_kwh)


# -- progress-bar values stay out of the report ---------------------------------------------------
def test_progress_bar_values_never_reach_the_reports_metrics(tmp_path):
    cb = energy_cb(output_dir=tmp_path / "fp", log_every_n_steps=2)
    fit = trainer(tmp_path, [cb], enable_progress_bar=True, limit_train_batches=8)
    fit.fit(LoggingModel())
    # They were on the bar, hence in callback_metrics, when the run ended ...
    assert set(PROGRESS_BAR_KEYS) <= set(fit.progress_bar_metrics)
    assert set(PROGRESS_BAR_KEYS) <= set(fit.callback_metrics)
    # ... but the report's metrics are the model's own.
    for metrics in (cb.report.metrics, json.loads((tmp_path / "fp" / "footprint.json").read_text())["metrics"]):
        assert not set(PROGRESS_BAR_KEYS) & set(metrics)
        assert {"train_loss", "train_loss_step", "train_loss_epoch"} <= set(metrics)


# -- one line at the end of every run -------------------------------------------------------------
def test_every_run_ends_with_one_line_of_totals_and_where_the_files_are(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "fp"
    cb = energy_cb(output_dir=out)
    fit = trainer(tmp_path, [cb])
    fit.fit(LoggingModel())
    first = cb.report
    fit.test(LoggingModel(), verbose=False)
    second = cb.report
    lines = end_lines(caplog)
    assert lines == [
        f"lightning-green: completed, {r.energy_kwh * 1000:.4g} Wh, {r.emissions_kg * 1000:.4g} g CO2e; "
        f"footprint in {out}" for r in (first, second)
    ]
    assert len(said(caplog)) == 2  # nothing else, and the summary is not printed by a normal run


# -- loggers in every stage, at Lightning's own steps ----------------------------------------------
@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_energy_reaches_the_logger_in_a_run_without_training(tmp_path, stage):
    logger = CSVLogger(tmp_path, name="logs")
    cb = energy_cb(output_dir=tmp_path / "fp")
    run = trainer(tmp_path, [cb], logger=logger, limit_val_batches=4, limit_test_batches=4, limit_predict_batches=4)
    getattr(run, stage)(LoggingModel(), **({} if stage == "predict" else {"verbose": False}))
    rows = [r for r in csv_rows(Path(logger.log_dir) / "metrics.csv") if r.get("energy/energy_kwh")]
    assert len(rows) == 1
    logged = rows[0]
    assert float(logged["energy/energy_kwh"]) == pytest.approx(cb.report.energy_kwh)
    assert float(logged[f"energy/{stage}_kwh"]) == pytest.approx(cb.report.energy_kwh_by_phase[stage])
    assert float(logged[f"energy/{stage}_kwh"]) > 0
    assert float(logged["energy/gpu_kwh"]) == pytest.approx(cb.report.energy_kwh_by_component["gpu"])
    assert float(logged["carbon/emissions_kg"]) == pytest.approx(cb.report.emissions_kg)


@pytest.mark.parametrize("model_kind", ["gradient accumulation", "two optimizers"])
def test_energy_is_logged_at_the_step_lightnings_own_monitors_use(tmp_path, model_kind):
    """Every energy value logged during training sits at the step Lightning logs that batch's
    own values at (and LearningRateMonitor its learning rates): ``_batches_that_stepped``, not
    ``global_step`` (one ahead after an optimizer step, twice as fast with two optimizers)."""
    recorder = RecordingLogger()
    cb = energy_cb(output_dir=tmp_path / "fp", log_every_n_steps=4)
    accumulating = model_kind == "gradient accumulation"
    model = LoggingModel() if accumulating else TwoOptimizerModel()
    fit = trainer(tmp_path, [cb, LearningRateMonitor(logging_interval="step")], logger=recorder,
                  limit_train_batches=16, max_epochs=2, log_every_n_steps=1,
                  **({"accumulate_grad_batches": 4} if accumulating else {}))
    fit.fit(model)
    stepped = fit.fit_loop.epoch_loop._batches_that_stepped
    assert stepped == (8 if accumulating else 32)
    assert fit.global_step == (8 if accumulating else 64)
    calls = recorder.calls
    energy = [i for i, (_, keys) in enumerate(calls) if "energy/energy_kwh" in keys]
    loss_steps = {step for step, keys in calls if "train_loss_step" in keys}
    lr_steps = {step for step, keys in calls if any(k.startswith("lr-") for k in keys)}
    assert len(energy) >= 8 and lr_steps
    periodic = [i for i in energy if i + 1 < len(calls) and "train_loss_step" in calls[i + 1][1]]
    assert len(periodic) == 8  # every 4th batch: logged just before Lightning logs that batch's loss
    for i in periodic:
        assert calls[i][0] == calls[i + 1][0]  # ... at the same step
    energy_steps = {calls[i][0] for i in energy}
    assert energy_steps <= loss_steps | lr_steps
    # Lightning logs an epoch's values at its last batch's step: so do the epoch-end energy
    # values, and the fit's final totals land at the last one.
    epoch_steps = {step for step, keys in calls if "train_loss_epoch" in keys}
    assert epoch_steps == {stepped // 2 - 1, stepped - 1}
    assert epoch_steps <= energy_steps
    assert calls[energy[-1]][0] == stepped - 1


# -- `show` names batches and optimizer steps --------------------------------------------------------
def test_show_names_training_batches_and_optimizer_steps(tmp_path, capsys):
    cb = energy_cb(output_dir=tmp_path / "fp")
    trainer(tmp_path, [cb], limit_train_batches=8, max_epochs=2, accumulate_grad_batches=4).fit(LoggingModel())
    capsys.readouterr()
    assert cli_main(["show", str(tmp_path / "fp")]) == 0
    text = capsys.readouterr().out
    assert "  work: 64 samples, 16 training batches, 4 optimizer steps, 2 epochs\n" in text
    assert cli_main(["show", "--json", str(tmp_path / "fp")]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["batches"], shown["optimizer_steps"], shown["epochs"]) == (16, 4, 2) and "steps" not in shown


# -- waits show progress ---------------------------------------------------------------------------
def test_an_idle_baseline_of_a_few_seconds_says_so_on_stderr(tmp_path, capsys):
    cb = energy_cb(output_dir=tmp_path / "fp", idle_baseline_s=2.5)
    trainer(tmp_path, [cb], limit_train_batches=2).fit(LoggingModel())
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "measuring idle power" in line]
    assert len(lines) == 1 and lines[0].startswith("lightning-green: measuring idle power (")  # one line off a terminal
    assert cb.report.idle_power_w == pytest.approx(25.0, rel=0.02)


# -- unusable output folders fail when the callback is built -----------------------------------------
def test_an_existing_file_as_output_dir_fails_at_construction(tmp_path):
    taken = tmp_path / "footprint"
    taken.write_text("not a folder")
    with pytest.raises(ValueError, match=r"output_dir=.*footprint' is an existing file, not a folder"):
        EnergyCallback(output_dir=taken, carbon_intensity_g_per_kwh=100.0)
    with pytest.raises(ValueError, match=r"output_dir=.*footprint/run' cannot be written"):
        EnergyCallback(output_dir=taken / "run", carbon_intensity_g_per_kwh=100.0)


def test_a_place_that_cannot_be_created_fails_at_construction():
    with pytest.raises(ValueError, match=r"output_dir='/proc/lightning-green-run' cannot be written"):
        EnergyCallback(output_dir="/proc/lightning-green-run", carbon_intensity_g_per_kwh=100.0)


def test_a_read_only_folder_fails_at_construction(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    code = ("from lightning_green import EnergyCallback\n"
            "try:\n    EnergyCallback(output_dir=%r, carbon_intensity_g_per_kwh=100.0)\n"
            "except ValueError as err:\n    print(err)\nelse:\n    print('accepted')\n") % str(folder / "run")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if os.geteuid() != 0:  # a plain user cannot write a folder without the write bit
        folder.chmod(0o500)
        command = [sys.executable, "-c", code]
    else:  # root writes anywhere, except on a read-only mount (in a mount namespace of its own)
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare(1): no read-only folder to try")
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"mount namespaces refused here: {probe.stderr.strip()}")
        command = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(folder),
                   sys.executable, "-c", code]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    finally:
        folder.chmod(0o700)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith(f"output_dir={str(folder / 'run')!r} cannot be written"), done.stdout
    assert "Read-only file system" in done.stdout or "Permission denied" in done.stdout


# -- warnings when the callback is built ------------------------------------------------------------
def test_a_warning_while_building_points_at_the_users_line():
    from lightning_green.carbon import CarbonWarning

    with pytest.warns(CarbonWarning, match="No location given") as said:
        EnergyCallback()
    assert len(said) == 1 and said[0].filename == __file__
    with pytest.warns(CarbonWarning, match="No location given"), pytest.raises(ValueError, match="idle_baseline_s"):
        EnergyCallback(idle_baseline_s=-1)  # a bad argument checked after the warning: both reach the user
