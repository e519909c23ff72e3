"""EnergyCallback on real Lightning Trainers with sensors of known power."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from lightning_green import EnergyCallback
from lightning_green.sensors import ConstantPowerSensor, PowerSensor
from tests.helpers.threads import lightning_green_threads
from tests.helpers.models import SlowBoringModel, TextBatchModel
from tests.helpers.reliability_kit import make_trainer as kit_make_trainer

GPU_W, CPU_W = 40.0, 10.0


def known_sensors():
    return [
        ConstantPowerSensor(GPU_W, name="fake-gpu", component="gpu", measured=True),
        ConstantPowerSensor(CPU_W, name="fake-cpu", component="cpu"),
    ]


def make_trainer(tmp_path, cb, **kwargs):
    """The reliability kit's quiet CPU Trainer, with two epochs of 8 batches, validation and
    Lightning's default sanity check."""
    defaults = dict(max_epochs=2, limit_train_batches=8, limit_val_batches=2, num_sanity_val_steps=2)
    return kit_make_trainer(tmp_path, [cb], **{**defaults, **kwargs})


def read_steps(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_energy_is_power_times_time_and_phases_sum(tmp_path, no_thread_leak):
    cb = EnergyCallback(sensors=known_sensors(), sampling_interval_s=0.02, output_dir=tmp_path,
                        carbon_intensity_g_per_kwh=100.0, pue=1.5)
    make_trainer(tmp_path, cb).fit(SlowBoringModel(step_sleep_s=0.01))
    report = cb.report
    assert report.status == "completed"
    duration = report.duration_s
    assert duration > 0.1
    gpu_j = report.energy_kwh_by_component["gpu"] * 3.6e6
    cpu_j = report.energy_kwh_by_component["cpu"] * 3.6e6
    # Constant power integrates exactly; only the edges of the window differ from duration_s.
    assert gpu_j == pytest.approx(GPU_W * duration, rel=0.05)
    assert cpu_j == pytest.approx(CPU_W * duration, rel=0.05)
    assert sum(report.energy_kwh_by_phase.values()) == pytest.approx(report.energy_kwh, rel=1e-9)
    assert set(report.energy_kwh_by_phase) == {"train", "validate", "test", "predict", "other"}
    assert report.energy_kwh_by_phase["train"] > report.energy_kwh_by_phase["validate"] > 0
    assert report.energy_kwh_measured == pytest.approx(report.energy_kwh_by_component["gpu"])
    assert report.energy_kwh_estimated == pytest.approx(report.energy_kwh_by_component["cpu"])
    assert report.facility_energy_kwh == pytest.approx(report.energy_kwh * 1.5)
    assert report.emissions_kg == pytest.approx(report.energy_kwh * 1.5 * 100.0 / 1000.0)
    assert sum(report.energy_kwh_by_epoch.values()) <= report.energy_kwh
    assert set(report.energy_kwh_by_epoch) == {"0", "1"}
    assert report.steps == 16 and report.samples == 16 * 4
    assert report.energy_per_sample_j == pytest.approx(report.energy_kwh * 3.6e6 / 64)
    assert report.context["precision"] and report.context["parameters"] == 66
    assert {s["name"]: s["measured"] for s in report.sensors} == {"fake-gpu": True, "fake-cpu": False}

    on_disk = json.loads((tmp_path / "footprint.json").read_text())
    assert on_disk["schema"] == "lightning-green/footprint/1"
    assert on_disk["energy_kwh"] == pytest.approx(report.energy_kwh)
    rows = read_steps(tmp_path / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(16))
    assert {int(r["epoch"]) for r in rows} == {0, 1}
    for row in rows:
        step_s = float(row["end_s"]) - float(row["start_s"])
        assert step_s >= 0.009
        assert float(row["energy_j"]) == pytest.approx((GPU_W + CPU_W) * step_s, rel=0.02, abs=1e-3)
        assert int(row["samples"]) == 4
    step_sum_kwh = sum(float(r["energy_j"]) for r in rows) / 3.6e6
    assert step_sum_kwh <= report.energy_kwh_by_phase["train"] * (1 + 1e-9)
    with open(tmp_path / "emissions.csv", newline="") as f:
        emissions = list(csv.DictReader(f))
    assert len(emissions) == 1
    # codecarbon counts energy_consumed after PUE
    assert float(emissions[0]["energy_consumed"]) == pytest.approx(report.facility_energy_kwh)
    assert float(emissions[0]["emissions"]) == pytest.approx(report.emissions_kg)


def test_logs_to_progress_bar_and_logger(tmp_path):
    cb = EnergyCallback(sensors=known_sensors(), sampling_interval_s=0.02, log_every_n_steps=2,
                        output_dir=tmp_path / "fp")
    logger = CSVLogger(tmp_path, name="logs")
    trainer = make_trainer(tmp_path, cb, logger=logger, max_epochs=1, enable_progress_bar=True)
    trainer.fit(SlowBoringModel())
    assert "energy/power_w" in trainer.progress_bar_metrics
    assert trainer.progress_bar_metrics["energy/power_w"] == pytest.approx(GPU_W + CPU_W)
    assert trainer.progress_bar_metrics["energy/energy_wh"] > 0
    with open(logger.experiment.metrics_file_path, newline="") as f:
        logged = list(csv.DictReader(f))
    keys = set().union(*(row.keys() for row in logged))
    for key in ("energy/gpu_kwh", "energy/cpu_kwh", "energy/train_kwh", "carbon/emissions_kg"):
        assert key in keys
    gpu = [float(r["energy/gpu_kwh"]) for r in logged if r.get("energy/gpu_kwh")]
    assert len(gpu) >= 4 and gpu == sorted(gpu) and gpu[-1] > 0


def test_tokens_counted_from_attention_mask(tmp_path):
    cb = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    make_trainer(tmp_path, cb, max_epochs=1, limit_val_batches=0).fit(TextBatchModel())
    assert cb.report.samples == 24
    assert cb.report.tokens == 24 * 7
    assert cb.report.energy_per_token_j == pytest.approx(cb.report.energy_kwh * 3.6e6 / (24 * 7))


def test_validate_test_predict_add_up_in_phases(tmp_path, no_thread_leak):
    cb = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    trainer = make_trainer(tmp_path, cb, max_epochs=1)
    model = SlowBoringModel()
    trainer.fit(model)
    fit_kwh = cb.report.energy_kwh
    trainer.test(model)
    report = cb.report
    assert report.energy_kwh_by_phase["test"] > 0
    assert report.energy_kwh > fit_kwh
    assert sum(report.energy_kwh_by_phase.values()) == pytest.approx(report.energy_kwh, rel=1e-9)
    trainer.predict(model, dataloaders=model.test_dataloader())
    assert cb.report.energy_kwh_by_phase["predict"] > 0
    assert cb.report.steps == 8  # test and predict add energy, not training steps


def test_exception_propagates_and_report_is_written(tmp_path, no_thread_leak):
    cb = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    trainer = make_trainer(tmp_path, cb)
    with pytest.raises(RuntimeError, match="boom at step 5"):
        trainer.fit(SlowBoringModel(fail_at_step=5))
    assert not lightning_green_threads()
    on_disk = json.loads((tmp_path / "footprint.json").read_text())
    assert on_disk["status"] == "failed"
    assert on_disk["energy_kwh"] > 0
    assert any("boom at step 5" in w for w in on_disk["warnings"])
    assert len(read_steps(tmp_path / "steps.csv")) == 5


def test_energy_budget_stops_training(tmp_path):
    cb = EnergyCallback(sensors=[ConstantPowerSensor(3.6e6, name="huge", component="gpu")],
                        max_energy_kwh=0.05, sampling_interval_s=0.01, output_dir=tmp_path)
    trainer = make_trainer(tmp_path, cb, max_epochs=50, limit_val_batches=0)
    trainer.fit(SlowBoringModel(step_sleep_s=0.01))  # 1 kWh per second: 0.05 kWh in ~50 ms
    assert trainer.global_step < 50 * 8
    assert cb.report.status == "completed"
    assert cb.report.budget_stopped and "max_energy_kwh=0.05" in cb.report.budget_stopped
    assert any("budget" in w for w in cb.report.warnings)


def test_emissions_budget_stops_training(tmp_path):
    cb = EnergyCallback(sensors=[ConstantPowerSensor(3.6e6, name="huge", component="gpu")],
                        carbon_intensity_g_per_kwh=1000.0, max_emissions_kg=0.05,
                        sampling_interval_s=0.01, output_dir=tmp_path)
    trainer = make_trainer(tmp_path, cb, max_epochs=50, limit_val_batches=0)
    trainer.fit(SlowBoringModel(step_sleep_s=0.01))
    assert trainer.global_step < 50 * 8
    assert "max_emissions_kg" in cb.report.budget_stopped


def test_idle_baseline_and_net_energy(tmp_path):
    cb = EnergyCallback(sensors=known_sensors(), idle_baseline_s=0.3, sampling_interval_s=0.02,
                        output_dir=tmp_path)
    make_trainer(tmp_path, cb, max_epochs=1).fit(SlowBoringModel())
    report = cb.report
    assert report.idle_power_w == pytest.approx(GPU_W + CPU_W, rel=0.02)
    # Constant sensors: the run drew exactly idle power, so the net energy is ~0.
    assert abs(report.net_energy_kwh) < 0.05 * report.energy_kwh


def test_projection_predicts_whole_run(tmp_path):
    cb = EnergyCallback(sensors=known_sensors(), project_after_epochs=2, output_dir=tmp_path)
    # Steps long enough that set-up time (not repeated per epoch) stays a small share.
    make_trainer(tmp_path, cb, max_epochs=4, limit_val_batches=0).fit(SlowBoringModel(step_sleep_s=0.02))
    report = cb.report
    assert report.predicted_energy_kwh == pytest.approx(report.energy_kwh, rel=0.35)
    assert report.predicted_emissions_kg == pytest.approx(
        report.predicted_energy_kwh * report.pue * report.carbon_intensity_g_per_kwh / 1000, rel=1e-6)


def test_resume_continues_the_footprint(tmp_path, no_thread_leak):
    ckpt_dir = tmp_path / "ckpt"
    cb1 = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    trainer = Trainer(max_epochs=2, limit_train_batches=8, limit_val_batches=2, logger=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[cb1, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)])
    trainer.fit(SlowBoringModel())
    first = cb1.report
    ckpt = ckpt_dir / "last.ckpt"
    state = torch.load(ckpt, weights_only=False)["callbacks"]
    saved = next(v for k, v in state.items() if "EnergyCallback" in k)
    assert saved["totals"]["steps"] == 16

    for attempt in range(2):  # resuming twice from one checkpoint must not count it twice
        cb2 = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
        trainer2 = Trainer(max_epochs=4, limit_train_batches=8, limit_val_batches=2, logger=False,
                           enable_progress_bar=False, enable_model_summary=False,
                           enable_checkpointing=False, default_root_dir=tmp_path, callbacks=[cb2])
        trainer2.fit(SlowBoringModel(), ckpt_path=ckpt)
        second = cb2.report
        assert second.steps == 32
        assert second.run_id == first.run_id
        assert second.context["resumed"] is True
        assert second.duration_s > first.duration_s
        assert second.energy_kwh > first.energy_kwh
        assert set(second.energy_kwh_by_epoch) == {"0", "1", "2", "3"}
        # The checkpoint's epochs are carried exactly, once: not re-measured, not added twice.
        for epoch in ("0", "1"):
            assert second.energy_kwh_by_epoch[epoch] * 3.6e6 == pytest.approx(saved["totals"]["energy_j_by_epoch"][epoch])
        new_epochs_j = (second.energy_kwh_by_epoch["2"] + second.energy_kwh_by_epoch["3"]) * 3.6e6
        assert second.energy_kwh * 3.6e6 >= (saved["totals"]["energy_j"] + new_epochs_j) * (1 - 1e-9)
        rows = read_steps(tmp_path / "steps.csv")
        assert [int(r["step"]) for r in rows] == list(range(32))


class _RaisingSensor(PowerSensor):
    name, component = "flaky", "gpu"

    def power_w(self) -> float:
        raise OSError("sensor unplugged")


class _BlockingSensor(PowerSensor):
    name, component = "slow", "cpu"

    def power_w(self) -> float:
        import time

        time.sleep(1.0)
        return 5.0


def test_failing_and_blocking_sensors_never_delay_a_step(tmp_path, no_thread_leak):
    cb = EnergyCallback(sensors=[_RaisingSensor(), _BlockingSensor(), ConstantPowerSensor(7.0, component="ram")],
                        sampling_interval_s=0.01, output_dir=tmp_path)
    make_trainer(tmp_path, cb, max_epochs=1, limit_train_batches=16, limit_val_batches=0).fit(
        SlowBoringModel(step_sleep_s=0.05))
    rows = read_steps(tmp_path / "steps.csv")
    assert len(rows) == 16
    longest = max(float(r["end_s"]) - float(r["start_s"]) for r in rows)
    assert longest < 0.5, f"a training step took {longest:.3f} s while a sensor blocked for 1 s"
    report = cb.report
    assert report.status == "completed"
    assert any("flaky" in w and "sensor unplugged" in w for w in report.warnings)
    assert report.energy_kwh_by_component["ram"] > 0


def test_pytorch_lightning_trainer(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.demos.boring_classes import BoringModel

    from lightning_green.callbacks.pytorch_lightning import EnergyCallback as PLEnergyCallback

    cb = PLEnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, callbacks=[cb])
    trainer.fit(BoringModel())
    assert cb.report.status == "completed" and cb.report.steps == 4
    assert cb.report.context["trainer_module"] == "pytorch_lightning"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"sampling_interval_s": 0}, "sampling_interval_s must be a number > 0"),
        ({"sampling_interval_s": "fast"}, "sampling_interval_s"),
        ({"pue": 0.9}, "pue"),
        ({"carbon_intensity_g_per_kwh": -1}, "carbon_intensity_g_per_kwh must be a number > 0"),
        ({"idle_baseline_s": -1}, "idle_baseline_s must be a number >= 0"),
        ({"max_energy_kwh": 0}, "max_energy_kwh must be a number > 0"),
        ({"max_emissions_kg": math.nan}, "max_emissions_kg"),
        ({"project_after_epochs": 0}, "project_after_epochs must be an integer >= 1"),
        ({"project_after_steps": 1.5}, "project_after_steps must be an integer"),
        ({"log_every_n_steps": 0}, "log_every_n_steps"),
        ({"sensors": "gpu"}, "sensors must be 'auto' or a list of Sensor objects, got 'gpu'"),
        ({"sensors": [object()]}, "sensors must be 'auto' or a non-empty list"),
        ({"country_iso_code": "ZZZ"}, "ZZZ"),
        ({"output_dir": 3}, "output_dir must be a path"),
        ({"write_files": "yes"}, "write_files"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, needle):
    with pytest.raises(ValueError) as info:
        EnergyCallback(**kwargs)
    assert needle in str(info.value)
    assert "got" in str(info.value) or "ZZZ" in str(info.value)


def test_projection_after_steps_does_not_wait_for_a_logging_step(tmp_path):
    cb = EnergyCallback(sensors=known_sensors(), project_after_steps=3, log_every_n_steps=50, output_dir=tmp_path)
    make_trainer(tmp_path, cb, max_epochs=2, limit_val_batches=0).fit(SlowBoringModel(step_sleep_s=0.01))
    assert cb.report.steps == 16 < 50
    assert cb.report.predicted_energy_kwh is not None and cb.report.predicted_energy_kwh > 0


def test_idle_baseline_carries_across_a_resume(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    cb1 = EnergyCallback(sensors=known_sensors(), idle_baseline_s=0.3, sampling_interval_s=0.02,
                         output_dir=tmp_path)
    Trainer(max_epochs=1, limit_train_batches=8, limit_val_batches=0, logger=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path,
            callbacks=[cb1, ModelCheckpoint(dirpath=ckpt_dir, save_last=True)]).fit(SlowBoringModel(step_sleep_s=0.005))
    cb2 = EnergyCallback(sensors=known_sensors(), idle_baseline_s=0.3, sampling_interval_s=0.02,
                         output_dir=tmp_path)
    Trainer(max_epochs=2, limit_train_batches=8, limit_val_batches=0, logger=False, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
            callbacks=[cb2]).fit(SlowBoringModel(step_sleep_s=0.005), ckpt_path=ckpt_dir / "last.ckpt")
    report = cb2.report
    assert report.idle_power_w == pytest.approx(GPU_W + CPU_W, rel=0.02)
    # Constant sensors draw exactly idle power: net energy stays ~0 over both segments.
    assert abs(report.net_energy_kwh) < 0.05 * report.energy_kwh


def test_a_failure_to_start_measuring_costs_the_numbers_not_the_fit(tmp_path, monkeypatch, no_thread_leak):
    from lightning_green.meter import sensors as sensor_choice

    def broken(spec, device):
        raise OSError("powercap went away")

    monkeypatch.setattr(sensor_choice, "find_sensors", broken)
    cb = EnergyCallback(sensors=known_sensors(), output_dir=tmp_path)
    trainer = make_trainer(tmp_path, cb, max_epochs=1)
    trainer.fit(SlowBoringModel())
    assert trainer.global_step == 8
    assert cb.report.status == "completed" and cb.report.energy_kwh == 0.0 and cb.report.steps == 8
    assert any("could not start measuring" in w and "powercap went away" in w for w in cb.report.warnings)


def test_state_key_ignores_the_output_dir_names_the_callback_and_is_computed_once(tmp_path, monkeypatch):
    # Lightning reads state_key on every hook call of every step (its profiler label); a resume
    # into another folder must find its state, so the key does not name the folder.
    plain, placed = EnergyCallback(), EnergyCallback(output_dir=tmp_path / "a")
    named = EnergyCallback(name="cpu-only")
    calls = []
    generate = type(named)._generate_state_key
    monkeypatch.setattr(type(named), "_generate_state_key",
                        lambda self, **kw: calls.append(kw) or generate(self, **kw))
    assert plain.state_key == placed.state_key == "EnergyCallback"
    assert named.state_key == named.state_key == "EnergyCallback{'name': 'cpu-only'}"
    assert len(calls) == 1
