"""Ledger: attribution to phases, epochs and steps; conservation; resume; steps.csv."""

from __future__ import annotations

import json
import math
import random

import pytest

from lightning_green.engine.ledger import (
    PHASES,
    SCHEMA_VERSION,
    Ledger,
    StepRow,
    StepsWriter,
    iter_steps,
    read_steps,
)
from lightning_green.sensors.base import ConstantPowerSensor

SENSORS = [
    {"name": "nvml:0", "component": "gpu", "measured": True},
    {"name": "rapl", "component": "cpu", "measured": True},
    {"name": "ram", "component": "ram", "measured": False},
    {"name": "nvml:1", "component": "gpu", "measured": True},
]


def feed_script(ledger: Ledger, script) -> None:
    """Feed (t, label) pairs with cum_j = t * (1, 2, 3, 4) J per sensor: 10 W in all."""
    for t, label in script:
        ledger.feed(t, label, (t * 1.0, t * 2.0, t * 3.0, t * 4.0))


def test_energy_goes_to_the_current_phase_epoch_and_step():
    rows: list[StepRow] = []
    ledger = Ledger(SENSORS, step_sink=rows.append, wall_offset_s=1000.0)
    feed_script(ledger, [
        (1.0, ("start",)),                  # 1 -> 2: before any phase: "other"
        (2.0, ("phase", "train")),
        (2.0, ("epoch", 0)),
        (2.5, ("step_start", 0)),
        (3.5, ("step_end", 0, 32, 512)),    # step 0: 1 s
        (4.0, ("step_start", 1)),
        (4.25, ("tick",)),                  # a boundary inside a step changes nothing
        (6.0, ("step_end", 1, 16, 0)),      # step 1: 2 s
        (6.0, ("phase", "validate")),
        (7.0, ("phase", "train")),
        (7.0, ("epoch", 1)),
        (8.0, ("step_start", 2)),
        (9.0, ("step_end", 2, 8, None)),
        (10.0, ("end",)),
    ])
    assert ledger.energy_j == pytest.approx(90.0)
    assert ledger.energy_j_by_phase == {
        "train": pytest.approx(70.0), "validate": pytest.approx(10.0), "test": 0.0,
        "predict": 0.0, "other": pytest.approx(10.0)}
    assert ledger.energy_j_by_epoch == {0: pytest.approx(50.0), 1: pytest.approx(30.0)}
    assert ledger.energy_j_by_sensor == {"nvml:0": pytest.approx(9.0), "rapl": pytest.approx(18.0),
                                         "ram": pytest.approx(27.0), "nvml:1": pytest.approx(36.0)}
    assert ledger.energy_j_by_component == {"gpu": pytest.approx(45.0), "cpu": pytest.approx(18.0),
                                            "ram": pytest.approx(27.0)}
    assert (ledger.steps, ledger.samples, ledger.tokens) == (3, 56, 512)
    assert (ledger.first_t, ledger.last_t, ledger.duration_s) == (1.0, 10.0, 9.0)
    assert [(r.step, r.epoch, r.samples, r.tokens) for r in rows] == [
        (0, 0, 32, 512), (1, 0, 16, 0), (2, 1, 8, 0)]
    assert [r.energy_j for r in rows] == [pytest.approx(10.0), pytest.approx(20.0),
                                          pytest.approx(10.0)]
    assert rows[1].energy_j_by_component == {"gpu": pytest.approx(10.0), "cpu": pytest.approx(4.0),
                                             "ram": pytest.approx(6.0)}
    assert (rows[0].start_s, rows[0].end_s, rows[0].duration_s) == (1002.5, 1003.5, 1.0)


def test_phase_keys_are_always_present_and_energy_before_any_phase_is_other():
    ledger = Ledger(SENSORS)
    assert ledger.energy_j_by_phase == dict.fromkeys(PHASES, 0.0)
    assert ledger.energy_j == 0.0 and ledger.first_t is None and ledger.duration_s == 0.0
    feed_script(ledger, [(0.0, ("start",)), (2.0, ("tick",))])
    assert ledger.energy_j_by_phase["other"] == pytest.approx(20.0)
    feed_script(ledger, [(2.0, ("phase", "sanity_check")), (3.0, ("end",))])
    assert ledger.energy_j_by_phase["sanity_check"] == pytest.approx(10.0)
    assert set(PHASES) <= set(ledger.energy_j_by_phase)
    assert ledger.energy_j_by_epoch == {}


def test_step_end_without_start_uses_the_previous_mark():
    rows: list[StepRow] = []
    ledger = Ledger(SENSORS, step_sink=rows.append, wall_offset_s=0.0)
    feed_script(ledger, [(0.0, ("start",)), (1.5, ("step_end", 7, 4, 0))])
    assert rows[0].step == 7 and rows[0].start_s == 0.0 and rows[0].energy_j == pytest.approx(15.0)
    assert ledger.steps == 1


def test_energy_is_conserved_over_many_random_marks():
    rng = random.Random(7)
    ledger = Ledger(SENSORS, wall_offset_s=0.0)
    cum = [0.0, 0.0, 0.0, 0.0]
    t = 0.0
    ledger.feed(t, ("start",), tuple(cum))
    for i in range(100_000):
        t += rng.uniform(1e-4, 1e-2)
        cum = [c + rng.uniform(0.0, 3.0) * 10 ** rng.randint(-6, 2) for c in cum]
        r = rng.random()
        if r < 0.001:
            label = ("phase", rng.choice(PHASES))
        elif r < 0.0015:
            label = ("epoch", i)
        else:
            label = ("step_start", i) if i % 2 else ("step_end", i, 1, 1)
        ledger.feed(t, label, tuple(cum))
    total = ledger.energy_j
    assert total == pytest.approx(math.fsum(cum), rel=1e-12)
    assert math.fsum(ledger.energy_j_by_phase.values()) == pytest.approx(total, rel=1e-9)
    assert math.fsum(ledger.energy_j_by_component.values()) == pytest.approx(total, rel=1e-12)


def test_cum_of_the_wrong_length_is_rejected():
    ledger = Ledger(SENSORS)
    with pytest.raises(ValueError, match="cum_j must have 4 values"):
        ledger.feed(0.0, ("start",), (1.0, 2.0))


@pytest.mark.parametrize("sensors,match", [
    ([{"name": "a"}], "sensors"),
    ([{"name": "a", "component": "gpu"}, {"name": "a", "component": "cpu"}], "unique"),
])
def test_bad_sensor_descriptions_are_rejected(sensors, match):
    with pytest.raises(ValueError, match=match):
        Ledger(sensors)


def test_sensor_objects_are_accepted_as_well_as_descriptions():
    ledger = Ledger([ConstantPowerSensor(5.0, name="psu", component="node")])
    ledger.feed(0.0, ("start",), (0.0,))
    ledger.feed(1.0, ("end",), (5.0,))
    assert ledger.energy_j_by_component == {"node": 5.0}


# -- resume ----------------------------------------------------------------------------------
def test_state_dict_is_plain_json_and_resumes_as_offsets():
    first = Ledger(SENSORS, wall_offset_s=0.0)
    feed_script(first, [(0.0, ("phase", "train")), (0.0, ("epoch", 0)),
                        (1.0, ("step_start", 0)), (2.0, ("step_end", 0, 4, 40)), (3.0, ("end",))])
    state = json.loads(json.dumps(first.state_dict()))
    assert state["version"] == SCHEMA_VERSION
    assert state["energy_j"] == pytest.approx(30.0) and state["steps"] == 1

    for _ in range(2):  # resuming twice from the same checkpoint counts the first run once
        second = Ledger(SENSORS, wall_offset_s=0.0)
        second.load_state_dict(state)
        second.load_state_dict(state)
        feed_script(second, [(100.0, ("phase", "train")), (100.0, ("epoch", 1)),
                             (100.0, ("step_start", 1)), (102.0, ("step_end", 1, 4, 40))])
        assert second.energy_j == pytest.approx(50.0)
        assert second.energy_j_by_phase["train"] == pytest.approx(50.0)
        assert second.energy_j_by_epoch == {0: pytest.approx(30.0), 1: pytest.approx(20.0)}
        assert second.energy_j_by_sensor["nvml:1"] == pytest.approx(20.0)
        assert second.energy_j_by_component["gpu"] == pytest.approx(25.0)
        assert (second.steps, second.samples, second.tokens) == (2, 8, 80)
        assert second.duration_s == pytest.approx(5.0)
        assert second.state_dict()["energy_j"] == pytest.approx(50.0)


def test_old_or_partial_state_loads_with_defaults():
    ledger = Ledger(SENSORS)
    ledger.load_state_dict({"energy_j_by_phase": {"train": "12.5", "bad": "x"},
                            "energy_j_by_sensor": {"gone:0": 3.0}, "steps": None})
    assert ledger.energy_j_by_phase["train"] == 12.5 and "bad" not in ledger.energy_j_by_phase
    assert ledger.energy_j_by_sensor["gone:0"] == 3.0 and ledger.energy_j == 3.0
    assert ledger.steps == 0
    with pytest.raises(ValueError, match="state must be a dict"):
        ledger.load_state_dict([1, 2])


# -- steps.csv -------------------------------------------------------------------------------
def row(step, energy=1.5, epoch=0):
    return StepRow(step=step, epoch=epoch, start_s=1_700_000_000.0 + step,
                   end_s=1_700_000_000.25 + step, energy_j=energy,
                   energy_j_by_component={"gpu": energy - 0.5, "cpu": 0.5}, samples=8, tokens=64)


def test_steps_writer_buffers_a_bounded_number_of_rows(tmp_path):
    path = tmp_path / "out" / "steps.csv"
    writer = StepsWriter(path, ["gpu", "cpu"], buffer_rows=10)
    for step in range(9):
        writer.write(row(step))
    assert not path.exists()  # still buffered
    writer.write(row(9))
    assert len(read_steps(path)) == 10
    for step in range(10, 25):
        writer(row(step, epoch=None))
        assert len(writer._buffer) < 10
    writer.close()
    writer.close()
    rows = read_steps(path)
    assert path.read_text().splitlines()[0] == (
        "step,epoch,start_s,end_s,duration_s,energy_j,samples,tokens,gpu_j,cpu_j")
    assert len(rows) == writer.rows_written == 25
    assert rows[3] == {"step": 3, "epoch": 0, "start_s": 1_700_000_003.0,
                       "end_s": 1_700_000_003.25, "duration_s": 0.25, "energy_j": 1.5,
                       "samples": 8, "tokens": 64, "gpu_j": 1.0, "cpu_j": 0.5}
    assert rows[-1]["epoch"] is None


def test_steps_writer_appends_to_an_existing_file_and_keeps_its_columns(tmp_path):
    path = tmp_path / "steps.csv"
    first = StepsWriter(path, ["gpu", "cpu"])
    first.write(row(0))
    first.close()
    second = StepsWriter(path, ["cpu", "gpu", "ram"])  # a resumed run with another order
    second.write(row(1, energy=2.5))
    second.close()
    text = path.read_text()
    assert text.count("step,epoch") == 1
    rows = list(iter_steps(path))
    assert [r["step"] for r in rows] == [0, 1]
    assert rows[1]["gpu_j"] == 2.0 and rows[1]["cpu_j"] == 0.5 and "ram_j" not in rows[1]


def test_ledger_streams_rows_to_steps_csv_with_unix_times(tmp_path):
    writer = StepsWriter(tmp_path / "steps.csv", ["gpu", "cpu", "ram"])
    ledger = Ledger(SENSORS, step_sink=writer, wall_offset_s=1_700_000_000.0)
    feed_script(ledger, [(10.0, ("step_start", 0)), (10.5, ("step_end", 0, 2, 0))])
    writer.close()
    (only,) = read_steps(writer.path)
    assert only["start_s"] == 1_700_000_010.0 and only["duration_s"] == 0.5
    assert only["energy_j"] == pytest.approx(5.0)
    assert only["gpu_j"] == pytest.approx(2.5) and only["ram_j"] == pytest.approx(1.5)


def test_steps_writer_rejects_a_bad_buffer_size(tmp_path):
    with pytest.raises(ValueError, match="buffer_rows"):
        StepsWriter(tmp_path / "s.csv", ["gpu"], buffer_rows=0)


def test_steps_writer_drops_rows_it_cannot_write_and_stays_bounded(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    writer = StepsWriter(blocker / "steps.csv", ["gpu"], buffer_rows=4)
    for step in range(3):
        writer.write(row(step))
    with pytest.raises(OSError):
        writer.write(row(3))
    assert writer.rows_dropped == 4 and writer._buffer == [] and writer.rows_written == 0


@pytest.mark.parametrize("components", [["gpu", "cpu"], ["cpu"], ["energy", "ram"]])
def test_steps_writer_fast_rows_are_the_general_rows_byte_for_byte(tmp_path, components):
    rows = [
        StepRow(0, None, 1.7e9, 1.7e9 + 0.0021, 0.1 + 0.2, {c: 0.1 * (i + 1) / 3 for i, c in enumerate(components)}, 32, 0),
        StepRow(1, 0, 1.7e9 + 0.5, 1.7e9 + 0.75, 1e-12, {components[0]: 7.0}, 0, 4096),
        StepRow(2, 12, 1.75e9, 1.75e9, 123456.789, {}, 1, 1),
    ]
    fast, general = StepsWriter(tmp_path / "fast.csv", components), StepsWriter(tmp_path / "general.csv", components)
    general._settle_columns()
    general._fast = None  # the column-by-column path, as for a file whose columns are its own
    for row in rows:
        fast.write(row)
        general.write(row)
    fast.close()
    general.close()
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "general.csv").read_bytes()
    # A component named "energy" gives a second energy_j column: only the general path is right.
    assert (fast._fast is None) == ("energy" in components)
