"""EnergyMeter on its own (no Lightning): fake sensors of known power, real threads, real files.

Every figure checked here is one a user reads: footprint.json, steps.csv, emissions.csv, the
report object, ``live_energy_j()``. Sensors draw a known constant power, so the right answer is
power x the measured window; the windows come from the files themselves (``duration_s``,
``start_s``/``end_s``), bracketed by the test's own clock, never compared with a speed.
"""

from __future__ import annotations

import csv
import json
import time
import traceback
from datetime import datetime
from pathlib import Path

import pytest

from lightning_green import EnergyMeter
from lightning_green.sensors import ConstantPowerSensor
from tests.helpers.fakes import CounterSensor, constant
from tests.helpers.threads import lightning_green_threads

GPU_W, CPU_W, RAM_W = 100.0, 20.0, 8.0
WATTS = {"gpu": GPU_W, "cpu": CPU_W, "ram": RAM_W}
TOTAL_W = GPU_W + CPU_W + RAM_W
#: Constant sensors are exact; the counter is read on the sampler thread, stamped at the middle of
#: its read, so a read preempted on a busy machine moves a reading by up to half the preemption.
TOLERANCE = {"gpu": 0.02, "cpu": 0.02, "ram": 0.05}
PUE, INTENSITY = 1.2, 100.0  # g CO2e / kWh
J_PER_KWH = 3.6e6
STEP_S = 0.01
SAMPLING_S = 0.01


def known_sensors() -> list:
    """A measured 100 W GPU, an estimated 20 W CPU and a measured 8 W RAM energy counter."""
    return [
        ConstantPowerSensor(GPU_W, name="gpu0", component="gpu", measured=True),
        ConstantPowerSensor(CPU_W, name="cpu", component="cpu"),
        CounterSensor(constant(RAM_W), name="ram-counter", component="ram", measured=True),
    ]


def make_meter(out: Path, **kwargs) -> EnergyMeter:
    kwargs.setdefault("sensors", known_sensors())
    return EnergyMeter(sampling_interval_s=SAMPLING_S, output_dir=out, carbon_intensity_g_per_kwh=INTENSITY, pue=PUE,
                       **kwargs)


def train_epochs(meter: EnergyMeter, epochs: int = 2, train_steps: int = 5, val_steps: int = 2) -> None:
    """The issue's loop: training steps with samples and tokens, validation steps, epoch ends."""
    for _ in range(epochs):
        with meter.phase("train"):
            for _ in range(train_steps):
                with meter.step(samples=4, tokens=30, padded_tokens=32):
                    time.sleep(STEP_S)
        with meter.phase("validate"):
            for _ in range(val_steps):
                with meter.step(samples=8):
                    time.sleep(STEP_S)
        meter.epoch_end()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def segment_j(report) -> float:
    """Energy of the last start..stop segment: the sensors' entries hold this segment's joules."""
    return sum(s["energy_j"] for s in report.sensors)


# -- energy = power x time ----------------------------------------------------------------------
def test_energy_is_power_times_time_per_component_and_carbon_follows(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path / "run")
    before = time.time()
    with meter:
        train_epochs(meter)
    after = time.time()

    data = read_json(tmp_path / "run" / "footprint.json")
    assert data["status"] == "completed" and data["world_size"] == 1
    duration = data["duration_s"]
    assert 2 * 7 * STEP_S <= duration <= after - before  # the 14 steps slept at least this long
    by_component = data["energy_kwh_by_component"]
    assert set(by_component) == {"gpu", "cpu", "ram"}
    for component, watts in WATTS.items():
        assert by_component[component] * J_PER_KWH == pytest.approx(watts * duration, rel=TOLERANCE[component]), component
    energy_kwh = data["energy_kwh"]
    assert energy_kwh * J_PER_KWH == pytest.approx(TOTAL_W * duration, rel=0.02)
    # measured (gpu, ram) and estimated (cpu) split, PUE, emissions at the explicit intensity
    assert data["energy_kwh_measured"] == pytest.approx(by_component["gpu"] + by_component["ram"], rel=1e-9)
    assert data["energy_kwh_estimated"] == pytest.approx(by_component["cpu"], rel=1e-9)
    assert data["facility_energy_kwh"] == pytest.approx(energy_kwh * PUE, rel=1e-9)
    assert data["emissions_kg"] == pytest.approx(energy_kwh * PUE * INTENSITY / 1000, rel=1e-9)
    low, high = data["energy_kwh_range"]
    assert low < energy_kwh < high
    # the report object is the file
    assert meter.report.energy_kwh == pytest.approx(energy_kwh, rel=1e-12)
    # work: training steps only count as steps; validation work is kept apart
    assert data["steps"] == 10 and data["samples"] == 40 and data["tokens"] == 300 and data["epochs"] == 2
    assert data["work_by_phase"]["train"] == {"batches": 10, "samples": 40, "tokens": 300, "padded_tokens": 320}
    assert data["work_by_phase"]["validate"]["batches"] == 4 and data["work_by_phase"]["validate"]["samples"] == 32
    assert data["energy_per_sample_j"] == pytest.approx(energy_kwh * J_PER_KWH / 40, rel=1e-9)
    # emissions.csv: one row, codecarbon's units (kWh and kg, PUE included)
    (row,) = read_csv(tmp_path / "run" / "emissions.csv")
    assert row["run_id"] == meter.run_id == data["run_id"]
    assert float(row["energy_consumed"]) == pytest.approx(energy_kwh * PUE, rel=1e-6)
    assert float(row["emissions"]) == pytest.approx(data["emissions_kg"], rel=1e-6)
    assert float(row["gpu_power"]) == pytest.approx(GPU_W * PUE, rel=0.02)


def test_phases_components_ranks_and_epochs_add_up_to_the_total(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path)
    with meter:
        time.sleep(0.02)  # "other": outside any phase
        train_epochs(meter, epochs=3)
    data = read_json(tmp_path / "footprint.json")
    total = data["energy_kwh"]
    phases = data["energy_kwh_by_phase"]
    assert set(phases) == {"train", "validate", "test", "predict", "other"}
    assert phases["train"] > 0 and phases["validate"] > 0 and phases["other"] > 0
    assert phases["test"] == phases["predict"] == 0.0
    for key in ("energy_kwh_by_phase", "energy_kwh_by_component", "energy_kwh_by_rank", "energy_kwh_by_host"):
        assert sum(data[key].values()) == pytest.approx(total, rel=1e-9), key
    assert data["energy_kwh_measured"] + data["energy_kwh_estimated"] == pytest.approx(total, rel=1e-9)
    # Epochs: from an epoch's first step to its epoch_end(). With constant power each epoch's
    # energy lies between power x (its steps' span) and power x (until the next epoch's first step).
    epochs = {int(k): v * J_PER_KWH for k, v in data["energy_kwh_by_epoch"].items()}
    assert sorted(epochs) == [0, 1, 2]
    rows = read_csv(tmp_path / "steps.csv")
    first = {e: min(float(r["start_s"]) for r in rows if int(r["epoch"]) == e) for e in epochs}
    last = {e: max(float(r["end_s"]) for r in rows if int(r["epoch"]) == e) for e in epochs}
    finish = datetime.fromisoformat(data["ended_at"]).timestamp()  # the last epoch ends before the run
    for e, joules in epochs.items():
        upper_t = first[e + 1] if e + 1 in first else finish
        slack_j = RAM_W * (upper_t - first[e]) * TOLERANCE["ram"] + 1e-3  # the counter's read jitter
        assert TOTAL_W * (last[e] - first[e]) - slack_j <= joules <= TOTAL_W * (upper_t - first[e]) + slack_j, e
        assert joules >= sum(float(r["energy_j"]) for r in rows if int(r["epoch"]) == e) * (1 - 1e-9)
    assert sum(epochs.values()) <= total * J_PER_KWH * (1 + 1e-9)


# -- steps.csv -----------------------------------------------------------------------------------------
def test_steps_csv_has_one_row_per_step_with_phase_work_energy_and_emissions(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path)
    with meter:
        train_epochs(meter, epochs=2, train_steps=5, val_steps=2)
    rows = read_csv(tmp_path / "steps.csv")
    assert list(rows[0]) == ["step", "epoch", "phase", "start_s", "end_s", "duration_s", "energy_j", "emissions_g",
                             "samples", "tokens", "padded_tokens", "gpu_j", "cpu_j", "ram_j"]
    assert len(rows) == 2 * (5 + 2)
    assert [int(r["step"]) for r in rows] == list(range(14))
    expected_phases = (["train"] * 5 + ["validate"] * 2) * 2
    assert [r["phase"] for r in rows] == expected_phases
    assert [int(r["epoch"]) for r in rows] == [0] * 7 + [1] * 7
    for row in rows:
        train = row["phase"] == "train"
        assert (int(row["samples"]), int(row["tokens"]), int(row["padded_tokens"])) == ((4, 30, 32) if train else (8, 0, 0))
        start, end, duration = float(row["start_s"]), float(row["end_s"]), float(row["duration_s"])
        assert end > start and duration == pytest.approx(end - start, abs=2e-6)
        assert duration >= STEP_S * 0.999
        for component in ("gpu", "cpu"):  # constant power: exactly power x the step's time
            assert float(row[f"{component}_j"]) == pytest.approx(WATTS[component] * duration, rel=1e-3, abs=1e-4)
        assert float(row["ram_j"]) > 0
        joules = float(row["energy_j"])
        assert joules == pytest.approx(sum(float(row[f"{c}_j"]) for c in WATTS), rel=1e-9)
        assert float(row["emissions_g"]) == pytest.approx(joules / J_PER_KWH * PUE * INTENSITY, rel=1e-6)
    # the counter's rows: its readings are stamped mid-read, so a row is exact only up to read jitter
    ram_j, step_s = sum(float(r["ram_j"]) for r in rows), sum(float(r["duration_s"]) for r in rows)
    assert ram_j == pytest.approx(RAM_W * step_s, rel=TOLERANCE["ram"])
    # consecutive steps: in time order, never overlapping
    assert all(float(a["end_s"]) <= float(b["start_s"]) + 1e-6 for a, b in zip(rows, rows[1:]))
    data = read_json(tmp_path / "footprint.json")
    for phase in ("train", "validate"):
        in_rows = sum(float(r["energy_j"]) for r in rows if r["phase"] == phase)
        assert in_rows <= data["energy_kwh_by_phase"][phase] * J_PER_KWH * (1 + 1e-9)


def test_steps_csv_grows_while_the_run_goes_and_ends_with_every_step_once(tmp_path, no_thread_leak):
    # one process, local folder: the sampler thread appends each round's resolved steps (no
    # snapshots here), so the end of the run formats only the last round's rows
    meter = make_meter(tmp_path, snapshot_every_s=0)
    path = tmp_path / "steps.csv"
    with meter:
        with meter.phase("train"):
            for _ in range(5):
                with meter.step(samples=4):
                    time.sleep(STEP_S)
            deadline = time.monotonic() + 10.0
            while not (path.exists() and len(read_csv(path)) == 5) and time.monotonic() < deadline:
                time.sleep(0.05)
            running = read_csv(path)  # before stop(): written by the sampler thread
            assert [int(r["step"]) for r in running] == list(range(5))
            assert path.read_text().endswith("\n")
            for _ in range(3):
                with meter.step(samples=4):
                    time.sleep(STEP_S)
    rows = read_csv(path)
    assert [int(r["step"]) for r in rows] == list(range(8))
    assert rows[:5] == running  # the streamed rows were final
    assert read_json(tmp_path / "footprint.json")["steps"] == 8


# -- failures --------------------------------------------------------------------------------------------
def _fail_inside(meter: EnergyMeter, error: BaseException) -> None:
    with meter:
        with meter.phase("train"):
            for _ in range(3):
                with meter.step(samples=2):
                    time.sleep(STEP_S)
            raise error


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("boom at step 3"), "failed"),
                                               (KeyboardInterrupt(), "interrupted")])
def test_an_exception_inside_with_writes_the_report_and_propagates_unchanged(tmp_path, no_thread_leak, error, status):
    meter = make_meter(tmp_path)
    with pytest.raises(type(error)) as raised:
        _fail_inside(meter, error)
    assert raised.value is error  # the same object, not a wrapper or a copy
    assert error.__cause__ is None and error.__context__ is None
    frames = traceback.extract_tb(error.__traceback__)
    assert frames[-1].name == "_fail_inside" and frames[-1].line == "raise error"
    assert not any("lightning_green" in f.filename for f in frames)  # not re-raised by the meter
    assert not lightning_green_threads()  # the sampler stopped before the exception went on
    data = read_json(tmp_path / "footprint.json")
    assert data["status"] == status == meter.report.status
    assert data["energy_kwh"] * J_PER_KWH == pytest.approx(TOTAL_W * data["duration_s"], rel=0.02)
    assert data["steps"] == 3 and len(read_csv(tmp_path / "steps.csv")) == 3
    assert len(read_csv(tmp_path / "emissions.csv")) == 1
    if status == "failed":
        assert "training failed: RuntimeError: boom at step 3" in data["warnings"]


# -- lifecycle ------------------------------------------------------------------------------------------
def test_stop_is_idempotent_and_stop_before_start_writes_nothing(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path)
    assert meter.stop() is None and meter.report is None
    assert not (tmp_path / "footprint.json").exists()
    meter.start()
    with meter.phase("train"):
        with meter.step(samples=1):
            time.sleep(STEP_S)
    report = meter.stop()
    assert report is meter.report and report.status == "completed"
    footprint = (tmp_path / "footprint.json").read_bytes()
    emissions = (tmp_path / "emissions.csv").read_bytes()
    assert meter.stop() is None and meter.stop("failed") is None
    assert meter.report is report and report.status == "completed"
    assert (tmp_path / "footprint.json").read_bytes() == footprint
    assert (tmp_path / "emissions.csv").read_bytes() == emissions
    assert not lightning_green_threads()
    with pytest.raises(ValueError, match=r"status must be one of .*'completed'.*got 'done'"):
        meter.stop("done")


def test_two_start_stop_cycles_add_up_in_one_footprint(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path)
    with meter:
        train_epochs(meter, epochs=1, train_steps=3, val_steps=1)
    first = read_json(tmp_path / "footprint.json")
    assert not lightning_green_threads()  # nothing runs between the two cycles
    with meter:
        train_epochs(meter, epochs=1, train_steps=4, val_steps=1)
    second = read_json(tmp_path / "footprint.json")
    assert second["run_id"] == first["run_id"]
    assert second["energy_kwh"] * J_PER_KWH == pytest.approx(first["energy_kwh"] * J_PER_KWH
                                                            + segment_j(meter.report), rel=1e-9)
    assert second["energy_kwh"] > first["energy_kwh"]
    assert second["energy_kwh"] * J_PER_KWH == pytest.approx(TOTAL_W * second["duration_s"], rel=0.02)
    assert second["duration_s"] > first["duration_s"]
    assert second["steps"] == 3 + 4 and second["samples"] == 4 * 7
    assert second["context"]["segments"] == 2
    rows = read_csv(tmp_path / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(4 + 5))  # numbering continues
    assert [r["phase"] for r in rows] == ["train"] * 3 + ["validate"] + ["train"] * 4 + ["validate"]
    emissions = read_csv(tmp_path / "emissions.csv")
    assert len(emissions) == 1  # one row per run id, replaced at each stop: the whole footprint
    assert float(emissions[-1]["energy_consumed"]) == pytest.approx(second["energy_kwh"] * PUE, rel=1e-6)


# -- checkpoints: state_dict / load_state_dict ---------------------------------------------------------
def _round_trip(state: dict) -> dict:
    """What a checkpoint gives back: plain numbers survive JSON (and so torch.save)."""
    return json.loads(json.dumps(state))


def test_resume_in_a_new_meter_continues_the_footprint_and_loading_twice_counts_once(tmp_path, no_thread_leak):
    out = tmp_path / "run"
    first = make_meter(out)
    with first:
        train_epochs(first, epochs=1, train_steps=4, val_steps=1)
    state = _round_trip(first.state_dict())
    before = read_json(out / "footprint.json")
    before_j = before["energy_kwh"] * J_PER_KWH
    assert state["totals"]["energy_j"] == pytest.approx(before_j, rel=1e-9)

    resumed = make_meter(out)
    resumed.load_state_dict(state)
    resumed.load_state_dict(state)  # loading twice must not count the checkpoint twice
    assert resumed.run_id == first.run_id
    assert resumed.live_energy_j() == pytest.approx(before_j, rel=1e-9)
    with resumed:
        train_epochs(resumed, epochs=1, train_steps=3, val_steps=1)
    after = read_json(out / "footprint.json")
    assert after["run_id"] == before["run_id"]
    assert after["energy_kwh"] * J_PER_KWH == pytest.approx(before_j + segment_j(resumed.report), rel=1e-9)
    assert after["duration_s"] > before["duration_s"]
    assert after["steps"] == 4 + 3 and after["samples"] == 4 * 7
    assert after["context"]["resumed"] is True and after["context"]["segments"] == 2
    for key in ("energy_kwh_by_phase", "energy_kwh_by_component"):
        assert sum(after[key].values()) == pytest.approx(after["energy_kwh"], rel=1e-9)
    rows = read_csv(out / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(5 + 4))  # the first run's rows kept, numbering goes on

    # A second resume from the same checkpoint is the first run plus its own segment only.
    again = make_meter(out)
    again.load_state_dict(state)
    with again:
        train_epochs(again, epochs=1, train_steps=2, val_steps=1)
    assert again.report.energy_kwh * J_PER_KWH == pytest.approx(before_j + segment_j(again.report), rel=1e-9)
    assert again.report.steps == 4 + 2


def test_resume_after_a_crash_carries_the_energy_spent_after_the_checkpoint_once(tmp_path, no_thread_leak):
    out = tmp_path / "run"
    crashed = make_meter(out)
    with pytest.raises(RuntimeError):
        with crashed:
            with crashed.phase("train"):
                for step in range(8):
                    if step == 5:
                        state = _round_trip(crashed.state_dict())  # a checkpoint after 5 steps
                    with crashed.step(samples=2):
                        time.sleep(STEP_S)
            raise RuntimeError("killed")
    crashed_j = crashed.report.energy_kwh * J_PER_KWH
    checkpoint_j = state["totals"]["energy_j"]
    assert state["totals"]["steps"] == 5 and 0 < checkpoint_j < crashed_j

    resumed = make_meter(out)
    resumed.load_state_dict(state)
    resumed.load_state_dict(state)
    with resumed:
        with resumed.phase("train"):
            for _ in range(3):  # steps 5..7 again
                with resumed.step(samples=2):
                    time.sleep(STEP_S)
    report = resumed.report
    # the checkpoint, what the crashed run spent after it (on steps redone now), this segment
    assert report.energy_kwh * J_PER_KWH == pytest.approx(crashed_j + segment_j(report), rel=1e-9)
    assert report.context["redone_energy_kwh"] * J_PER_KWH == pytest.approx(crashed_j - checkpoint_j, rel=1e-9)
    assert report.steps == 8 and report.samples == 16  # redone steps are not counted twice
    assert any("crashed run spent after this checkpoint" in w for w in report.warnings)
    rows = read_csv(out / "steps.csv")
    assert [int(r["step"]) for r in rows] == list(range(8))


# -- live figures and budgets ------------------------------------------------------------------------------
def test_live_energy_and_power_follow_the_sensors(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path)
    assert meter.live_energy_j() == 0.0 and meter.live_power_w() == 0.0
    before = time.time()
    meter.start()
    try:
        after_start = time.time()
        seen = []
        with meter.phase("train"):
            for _ in range(20):
                with meter.step(samples=1):
                    time.sleep(STEP_S)
                seen.append(meter.live_energy_j())
                # the constant sensors exactly; the counter's power is its latest difference (0
                # until its second reading, which a busy machine may delay)
                assert TOTAL_W - RAM_W <= meter.live_power_w() <= TOTAL_W + RAM_W
        assert seen == sorted(seen) and seen[-1] > 0
        mark_s = meter.mark("now")
        assert meter.flush(timeout_s=30.0)  # every sensor has a reading after the mark
        live_j = meter.live_energy_j()
        now = time.time()
        slack_j = RAM_W * 0.01  # the counter's reading may be stamped up to a few ms off
        assert TOTAL_W * (mark_s - after_start) - slack_j <= live_j <= TOTAL_W * (now - before) + slack_j
    finally:
        report = meter.stop()
    assert meter.live_energy_j() == pytest.approx(report.energy_kwh * J_PER_KWH, rel=1e-9)
    # The live figure never ran ahead of the report by more than the sampler's lag: it counts from
    # the sampler's last reading before the segment began, which a busy machine may delay.
    assert meter.live_energy_j() >= live_j - slack_j - 2 * TOTAL_W * SAMPLING_S
    assert meter.live_power_w() == 0.0


def test_live_energy_leaves_out_the_idle_baseline_as_the_report_does(tmp_path, no_thread_leak):
    meter = make_meter(tmp_path, idle_baseline_s=0.3)
    with meter:
        # the idle window (0.3 s at 128 W: 38 J) came before the footprint and is not in it
        with meter.phase("train"):
            for _ in range(3):
                with meter.step(samples=1):
                    time.sleep(STEP_S)
        live_j = meter.live_energy_j()
    report = meter.report
    assert report.idle_power_w == pytest.approx(TOTAL_W, rel=TOLERANCE["ram"])
    report_j = report.energy_kwh * J_PER_KWH
    assert report_j == pytest.approx(TOTAL_W * report.duration_s, rel=0.02)
    assert 0 < live_j <= report_j + RAM_W * 0.01 + 2 * TOTAL_W * SAMPLING_S  # far below report_j + 38 J


@pytest.mark.parametrize("budget", [{"max_energy_kwh": 20.0 / J_PER_KWH},
                                    {"max_emissions_kg": 20.0 / J_PER_KWH * PUE * INTENSITY / 1000}])
def test_budget_exceeded_turns_true_once_the_energy_reaches_the_budget(tmp_path, no_thread_leak, budget):
    # 20 J at 128 W: about 0.16 s. A second meter with a budget of a kWh never stops.
    meter, roomy = make_meter(tmp_path / "tight", **budget), make_meter(tmp_path / "roomy", max_energy_kwh=1.0)
    assert not meter.budget_exceeded  # nothing measured yet
    steps = 0
    with pytest.warns(UserWarning, match="budget reached"), meter, roomy:
        with meter.phase("train"):
            while not meter.budget_exceeded and steps < 5000:
                with meter.step(samples=1):
                    time.sleep(STEP_S)
                steps += 1
                assert not roomy.budget_exceeded
            stopped_at_j = meter.live_energy_j()
    assert meter.budget_exceeded and 0 < steps < 5000
    assert stopped_at_j >= 20.0 * (1 - 1e-9)
    (name,) = budget
    data = read_json(tmp_path / "tight" / "footprint.json")
    assert data["status"] == "completed" and name in data["budget_stopped"]
    assert meter.stopped_by == data["budget_stopped"]
    assert read_json(tmp_path / "roomy" / "footprint.json")["budget_stopped"] is None


# -- arguments ---------------------------------------------------------------------------------------------
BAD_ARGUMENTS = [
    ("sensors", "gpu"), ("sensors", []), ("sensors", ["nvml"]),
    ("sampling_interval_s", 0), ("sampling_interval_s", "fast"),
    ("country_iso_code", 250), ("country_iso_code", "XYZ"),
    ("carbon_intensity_g_per_kwh", -1), ("carbon_intensity_g_per_kwh", 5000),
    ("pue", 0.5), ("pue", 120),
    ("output_dir", 42),
    ("idle_baseline_s", -1), ("max_energy_kwh", 0), ("max_emissions_kg", -1),
    ("project_after_epochs", 0), ("project_after_steps", 1.5), ("log_every_n_steps", 0),
    ("write_files", "yes"), ("snapshot_every_s", -1),
    ("exporters", "prometheus"), ("exporters", ["prometheus"]),
    ("carbon_intensity_series", "/no/such/series.csv"), ("pause_above_g_per_kwh", 100),
    ("max_pause_s", -1), ("water_l_per_kwh", -1), ("embodied", "yes"), ("name", ""),
]


@pytest.mark.parametrize(("argument", "value"), BAD_ARGUMENTS, ids=[f"{a}={v!r}" for a, v in BAD_ARGUMENTS])
def test_bad_arguments_raise_the_same_value_error_as_energy_callback(argument, value):
    from lightning_green import EnergyCallback

    with pytest.raises(ValueError) as meter_error:
        EnergyMeter(**{argument: value})
    with pytest.raises(ValueError) as callback_error:
        EnergyCallback(**{argument: value})
    message = str(meter_error.value)
    assert argument in message
    assert message == str(callback_error.value)


def test_an_output_dir_that_is_a_file_is_refused_before_measuring(tmp_path):
    from lightning_green import EnergyCallback

    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    messages = []
    for cls in (EnergyMeter, EnergyCallback):
        with pytest.raises(ValueError, match="output_dir") as error:
            cls(output_dir=taken, sensors=known_sensors())
        messages.append(str(error.value))
    assert messages[0] == messages[1] and str(taken) in messages[0]
    assert not lightning_green_threads()


def test_phase_names_and_stop_statuses_are_checked(tmp_path):
    meter = make_meter(tmp_path)
    with pytest.raises(ValueError, match=r"phase must be one of .*'train'.*got 'training'"):
        meter.phase("training")
    with pytest.raises(ValueError, match=r"phase must be one of .*got 'eval'"):
        meter.set_phase("eval")


def test_epochs_continue_across_start_stop_cycles_and_resumes(tmp_path):
    """A plain loop that never calls set_epoch: epoch_end() numbers the epochs, and a second
    `with meter:` or a resume from meter.state_dict() goes on with the next number."""
    sensor = [ConstantPowerSensor(10.0, name="fixed", component="gpu", measured=True)]

    def epochs(meter, n):
        with meter, meter.phase("train"):
            for _ in range(n):
                for _ in range(2):
                    with meter.step(samples=1):
                        time.sleep(0.005)
                meter.epoch_end()

    first = EnergyMeter(sensors=sensor, output_dir=tmp_path / "a", snapshot_every_s=0)
    epochs(first, 2)
    epochs(first, 1)  # the same meter again: epoch 2, not epoch 0 again
    assert sorted(first.report.energy_kwh_by_epoch) == ["0", "1", "2"]
    state = first.state_dict()
    resumed = EnergyMeter(sensors=sensor, output_dir=tmp_path / "b", snapshot_every_s=0)
    resumed.load_state_dict(state)
    epochs(resumed, 1)
    assert sorted(resumed.report.energy_kwh_by_epoch) == ["0", "1", "2", "3"]
    rows = read_csv(tmp_path / "b" / "steps.csv")
    assert [r["epoch"] for r in rows] == ["3", "3"]
