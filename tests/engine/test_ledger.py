"""Ledger: attribution to phases, epochs and steps; conservation; per-phase work."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from lightning_green.engine.ledger import PHASES, Ledger
from lightning_green.engine.marks import PHASE_INDEX, STEP_FIELDS, Boundary, EpochMark, PhaseMark
from lightning_green.engine.steps import StepStore
from lightning_green.sensors.base import ConstantPowerSensor

SENSORS = [
    {"name": "nvml:0", "component": "gpu", "measured": True},
    {"name": "rapl", "component": "cpu", "measured": True},
    {"name": "ram", "component": "ram", "measured": False},
    {"name": "nvml:1", "component": "gpu", "measured": True},
]
RATES = np.array([1.0, 2.0, 3.0, 4.0])  # J/s per sensor: 10 W in all


def cum(t: float) -> tuple[float, ...]:
    return tuple((t * RATES).tolist())


def feed_script(ledger: Ledger, script) -> None:
    """Feed (t, mark) pairs with cum_j = t * (1, 2, 3, 4) J per sensor."""
    for t, mark in script:
        ledger.feed(t, mark, cum(t))


def feed_steps(ledger: Ledger, steps) -> None:
    """Feed (start, end, samples, tokens, phase, epoch) steps."""
    records = np.array([[s, e, n, tok, tok, PHASE_INDEX[p], -1 if ep is None else ep]
                        for s, e, n, tok, p, ep in steps], dtype=float)
    ledger.feed_steps(records, np.outer(records[:, 0], RATES), np.outer(records[:, 1], RATES))


def rows_of(store: StepStore) -> list[dict]:
    return [dict(zip(store.columns, row)) for chunk in store.chunks() for row in chunk.tolist()]


def test_energy_goes_to_the_current_phase_epoch_and_step(tmp_path):
    store = StepStore(["gpu", "cpu", "ram"], tmp_path / "s.bin")
    ledger = Ledger(SENSORS, store, wall_offset_s=1000.0)
    feed_script(ledger, [
        (1.0, Boundary("begin")),          # 1 -> 2: before any phase: "other"
        (2.0, PhaseMark("train")),
        (2.0, EpochMark(0)),
        (6.0, PhaseMark("validate")),
        (7.0, PhaseMark("train")),
        (7.0, EpochMark(1)),
        (10.0, Boundary("end")),
    ])
    feed_steps(ledger, [(2.5, 3.5, 32, 512, "train", 0), (4.0, 6.0, 16, 0, "train", 0),
                        (8.0, 9.0, 8, 0, "train", 1), (6.2, 6.4, 4, 0, "validate", 0)])
    assert ledger.energy_j == pytest.approx(90.0)
    assert ledger.energy_j_by_phase == {
        "train": pytest.approx(70.0), "validate": pytest.approx(10.0), "test": 0.0,
        "predict": 0.0, "other": pytest.approx(10.0)}
    assert ledger.energy_j_by_epoch == {0: pytest.approx(50.0), 1: pytest.approx(30.0)}
    assert ledger.energy_j_by_sensor == {"nvml:0": pytest.approx(9.0), "rapl": pytest.approx(18.0),
                                         "ram": pytest.approx(27.0), "nvml:1": pytest.approx(36.0)}
    assert ledger.energy_j_by_component == {"gpu": pytest.approx(45.0), "cpu": pytest.approx(18.0),
                                            "ram": pytest.approx(27.0)}
    assert ledger.energy_j_by_component_phase() == {
        f"{c}/{p}": pytest.approx(v) for (c, p), v in {
            ("gpu", "other"): 5.0, ("cpu", "other"): 2.0, ("ram", "other"): 3.0,
            ("gpu", "train"): 35.0, ("cpu", "train"): 14.0, ("ram", "train"): 21.0,
            ("gpu", "validate"): 5.0, ("cpu", "validate"): 2.0, ("ram", "validate"): 3.0}.items()}
    assert ledger.work_by_phase == {
        "train": {"batches": 3, "samples": 56, "tokens": 512, "padded_tokens": 512},
        "validate": {"batches": 1, "samples": 4, "tokens": 0, "padded_tokens": 0}}
    assert (ledger.first_t, ledger.last_t, ledger.duration_s) == (1.0, 10.0, 9.0)
    rows = rows_of(store)
    assert [(r["step"], r["epoch"], r["samples"], r["tokens"], PHASES[int(r["phase"])]) for r in rows] == [
        (0, 0, 32, 512, "train"), (1, 0, 16, 0, "train"), (2, 1, 8, 0, "train"), (3, 0, 4, 0, "validate")]
    assert [r["energy_j"] for r in rows] == [pytest.approx(10.0), pytest.approx(20.0), pytest.approx(10.0),
                                            pytest.approx(2.0)]
    assert (rows[1]["gpu_j"], rows[1]["cpu_j"], rows[1]["ram_j"]) == (
        pytest.approx(10.0), pytest.approx(4.0), pytest.approx(6.0))
    assert (rows[0]["start_s"], rows[0]["end_s"]) == (1002.5, 1003.5)


def test_phase_keys_are_always_present_and_energy_before_any_phase_is_other():
    ledger = Ledger(SENSORS)
    assert ledger.energy_j_by_phase == dict.fromkeys(PHASES, 0.0)
    assert ledger.energy_j == 0.0 and ledger.first_t is None and ledger.duration_s == 0.0
    feed_script(ledger, [(0.0, Boundary("begin")), (2.0, Boundary("tick"))])
    assert ledger.energy_j_by_phase["other"] == pytest.approx(20.0)
    feed_script(ledger, [(2.0, PhaseMark("sanity_check")), (3.0, Boundary("end"))])
    assert ledger.energy_j_by_phase["sanity_check"] == pytest.approx(10.0)
    assert set(PHASES) <= set(ledger.energy_j_by_phase)
    assert ledger.energy_j_by_epoch == {}


def test_step_numbers_continue_from_first_step_and_rows_are_counted_without_a_store(tmp_path):
    store = StepStore(["gpu", "cpu", "ram"], tmp_path / "s.bin")
    ledger = Ledger(SENSORS, store, wall_offset_s=0.0, first_step=40)
    feed_steps(ledger, [(0.0, 1.5, 4, 0, "train", None)])
    (row,) = rows_of(store)
    assert row["step"] == 40 and row["epoch"] == -1 and row["energy_j"] == pytest.approx(15.0)
    bare = Ledger(SENSORS)
    feed_steps(bare, [(0.0, 1.0, 2, 0, "predict", None)] * 3)
    assert bare.steps == 3 and bare.work_by_phase["predict"]["samples"] == 6


def test_marks_that_are_not_marks_are_rejected():
    ledger = Ledger(SENSORS)
    with pytest.raises(ValueError, match="PhaseMark, EpochMark or Boundary"):
        ledger.feed(0.0, ("phase", "train"), cum(0.0))


def test_energy_is_conserved_over_many_random_marks():
    rng = random.Random(7)
    ledger = Ledger(SENSORS, wall_offset_s=0.0)
    values = [0.0, 0.0, 0.0, 0.0]
    t = 0.0
    ledger.feed(t, Boundary("begin"), tuple(values))
    for i in range(100_000):
        t += rng.uniform(1e-4, 1e-2)
        values = [c + rng.uniform(0.0, 3.0) * 10 ** rng.randint(-6, 2) for c in values]
        r = rng.random()
        if r < 0.001:
            mark = PhaseMark(rng.choice(PHASES))
        elif r < 0.0015:
            mark = EpochMark(i)
        else:
            mark = Boundary("tick")
        ledger.feed(t, mark, tuple(values))
    total = ledger.energy_j
    assert total == pytest.approx(math.fsum(values), rel=1e-12)
    assert math.fsum(ledger.energy_j_by_phase.values()) == pytest.approx(total, rel=1e-9)
    assert math.fsum(ledger.energy_j_by_component.values()) == pytest.approx(total, rel=1e-12)
    assert math.fsum(ledger.energy_j_by_component_phase().values()) == pytest.approx(total, rel=1e-9)


def test_cum_of_the_wrong_length_is_rejected():
    ledger = Ledger(SENSORS)
    with pytest.raises(ValueError, match="cum_j must have 4 values"):
        ledger.feed(0.0, Boundary("begin"), (1.0, 2.0))


@pytest.mark.parametrize("sensors,match", [
    ([{"name": "a"}], "sensors"),
    ([{"name": "a", "component": "gpu"}, {"name": "a", "component": "cpu"}], "unique"),
])
def test_bad_sensor_descriptions_are_rejected(sensors, match):
    with pytest.raises(ValueError, match=match):
        Ledger(sensors)


def test_a_store_with_other_components_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="store components"):
        Ledger(SENSORS, StepStore(["gpu"], tmp_path / "s.bin"))


def test_sensor_objects_are_accepted_as_well_as_descriptions():
    ledger = Ledger([ConstantPowerSensor(5.0, name="psu", component="node")])
    ledger.feed(0.0, Boundary("begin"), (0.0,))
    ledger.feed(1.0, Boundary("end"), (5.0,))
    assert ledger.energy_j_by_component == {"node": 5.0}


def test_step_fields_are_the_record_layout():
    assert STEP_FIELDS == ("start_t", "end_t", "samples", "tokens", "padded_tokens", "phase", "epoch")
