"""Sampler: cumulative joules, mark and step resolution, faults, lifecycle and bounded memory.

Most tests drive the sampler without its thread (``sample_once``) on a :class:`FakeClock`,
so the numbers are exact and nothing depends on timing; a few run the real thread.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import tracemalloc

import pytest
from tests.helpers.threads import lightning_green_threads
from tests.helpers.fakes import (
    BlockingSensor,
    CounterSensor,
    FakeClock,
    FaultySensor,
    ScriptedPowerSensor,
    constant,
    ramp,
)

from lightning_green.engine.ledger import Ledger
from lightning_green.engine.marks import Boundary, EpochMark, PhaseMark
from lightning_green.engine.sampler import Sampler as Meter
from lightning_green.engine.sampler import SamplerSnapshot as MeterSnapshot
from lightning_green.engine.steps import StepStore
from lightning_green.sensors.base import ConstantPowerSensor


class Recorder:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, tuple, tuple[float, ...]]] = []

    def __call__(self, t, label, cum) -> None:
        self.calls.append((t, label, cum))

    @property
    def labels(self) -> list[tuple]:
        return [label for _, label, _ in self.calls]


def run(meter: Meter, clock: FakeClock, until: float, marks=(), interval_s: float = 0.1,
        first_sample: bool = True) -> None:
    """Sample at k * interval_s (k >= 0) and mark at the given times, in time order."""
    events = [(t, 1, label) for t, label in marks]
    k = 0 if first_sample else 1
    while k * interval_s <= until + 1e-9:
        events.append((k * interval_s, 0, None))
        k += 1
    for t, is_mark, label in sorted(events, key=lambda e: (e[0], e[1])):
        clock.set(max(t, clock.t))
        if is_mark:
            meter.mark(label)
        else:
            meter.sample_once()


def power_meter(trace, *, sink=None, clock=None, **kwargs):
    clock = clock or FakeClock()
    sensor = ScriptedPowerSensor(trace, clock, t0=0.0, name="p")
    return Meter([sensor], sink=sink, clock=clock, **kwargs), clock


# -- cumulative series and mark resolution -------------------------------------------------
def test_constant_power_marks_resolve_to_exact_energy():
    sink = Recorder()
    meter, clock = power_meter(constant(100.0), sink=sink)
    times = [0.05, 0.37, 1.234, 4.999]
    run(meter, clock, 5.3, [(t, ("m", t)) for t in times])
    assert sink.labels == [("m", t) for t in times]
    for t, _, (cum,) in sink.calls:
        assert cum == pytest.approx(100.0 * t, rel=1e-12)


def test_ramp_power_is_attributed_exactly_between_samples():
    # Trapezoid integration + quadratic interpolation is exact for linear power.
    trace, sink = ramp(50.0, 7.0), Recorder()
    meter, clock = power_meter(trace, sink=sink)
    times = [0.013, 0.099, 0.1, 0.2501, 1.77, 2.0]
    run(meter, clock, 2.2, [(t, ("m", t)) for t in times])
    assert len(sink.calls) == len(times)
    for t, _, (cum,) in sink.calls:
        assert cum == pytest.approx(trace.energy_j(t), rel=1e-12)


def test_marks_before_the_first_sample_read_zero_and_keep_their_order():
    sink = Recorder()
    meter, clock = power_meter(constant(10.0), sink=sink)
    meter.mark(("a",))
    meter.mark(("b",))
    clock.set(1.0)
    meter.sample_once()  # first sample: cum 0 at t=1
    clock.set(1.5)
    meter.mark(("c",))
    clock.set(2.0)
    meter.sample_once()
    assert sink.labels == [("a",), ("b",), ("c",)]
    assert [c for _, _, c in sink.calls] == [(0.0,), (0.0,), (pytest.approx(5.0),)]


def test_marks_wait_until_every_sensor_has_a_later_sample():
    sink = Recorder()
    meter, clock = power_meter(constant(10.0), sink=sink)
    meter.sample_once()
    clock.set(0.05)
    meter.mark(("x",))
    assert meter.pending_marks == 1 and sink.calls == []
    clock.set(0.1)
    meter.sample_once()
    assert meter.pending_marks == 0 and sink.calls[0][2] == (pytest.approx(0.5),)


def test_energy_sensor_is_differenced_from_its_first_reading():
    clock, sink = FakeClock(), Recorder()
    counter = CounterSensor(constant(40.0), clock, t0=0.0, offset_j=987_654.0)
    meter = Meter([counter], sink=sink, clock=clock)
    run(meter, clock, 1.0, [(0.0, ("first",)), (0.45, ("mid",)), (0.95, ("last",))])
    cums = {label: cum[0] for _, label, cum in sink.calls}
    assert cums[("first",)] == 0.0
    assert cums[("mid",)] == pytest.approx(18.0)
    assert cums[("last",)] == pytest.approx(38.0)


def test_sensors_keep_their_order_and_a_counter_mixes_with_power():
    clock, sink = FakeClock(), Recorder()
    sensors = [ScriptedPowerSensor(constant(100.0), clock, t0=0.0, name="gpu"),
               CounterSensor(constant(30.0), clock, t0=0.0, name="cpu", component="cpu")]
    meter = Meter(sensors, sink=sink, clock=clock)
    run(meter, clock, 2.0, [(1.25, ("m",))])
    assert sink.calls[0][2] == (pytest.approx(125.0), pytest.approx(37.5))
    assert meter.sensors == sensors


def test_wrapping_counter_corrected_by_the_sensor_is_exact():
    clock, sink = FakeClock(), Recorder()
    counter = CounterSensor(constant(100.0), clock, t0=0.0, wrap_j=250.0, offset_j=200.0)
    meter = Meter([counter], sink=sink, clock=clock)
    run(meter, clock, 30.0, [(29.95, ("end",))])  # ~12 wraps
    assert sink.calls[0][2][0] == pytest.approx(2995.0, rel=1e-9)
    assert meter.health["counter"].rejected == 0


def test_snapshot_reports_latest_energy_and_power():
    clock = FakeClock()
    sensors = [ScriptedPowerSensor(constant(80.0), clock, t0=0.0, name="p"),
               CounterSensor(constant(20.0), clock, t0=0.0, name="c")]
    meter = Meter(sensors, clock=clock)
    assert meter.snapshot() == MeterSnapshot(0.0, (0.0, 0.0), (0.0, 0.0))
    run(meter, clock, 2.0)
    snap = meter.snapshot()
    assert snap.t == pytest.approx(2.0)
    assert snap.energy_j == (pytest.approx(160.0), pytest.approx(40.0))
    assert snap.power_w == (pytest.approx(80.0), pytest.approx(20.0))


def test_a_constant_sensor_is_read_once_and_never_holds_marks_back():
    clock, sink = FakeClock(), Recorder()
    constant_w = ConstantPowerSensor(25.0, name="ram")
    meter = Meter([constant_w], sink=sink, clock=clock)
    calls = []
    constant_w.power_w = lambda: calls.append(clock.t) or 25.0
    run(meter, clock, 3.0, [(0.5, ("a",)), (2.95, ("b",))])
    assert calls == [0.0]  # read once, at the first round
    assert [c for _, _, c in sink.calls] == [(pytest.approx(12.5),), (pytest.approx(73.75),)]
    assert meter.snapshot().energy_j == (pytest.approx(75.0),)  # carried on to the last round


def test_a_sensor_with_its_own_read_interval_is_read_at_that_pace():
    clock, sink = FakeClock(), Recorder()
    counter = CounterSensor(constant(40.0), clock, t0=0.0, name="cpu")
    counter.read_interval_s = 1.0
    reads = []
    energy = counter.energy_j
    counter.energy_j = lambda: reads.append(clock.t) or energy()
    meter = Meter([counter], sink=sink, clock=clock)  # interval 0.1 s
    run(meter, clock, 5.0, [(2.5, ("m",))])
    assert reads == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert sink.calls[0][2] == (pytest.approx(100.0),)  # interpolated between 2 s and 3 s


def test_flush_without_thread_holds_and_resolves_everything():
    sink = Recorder()
    meter, clock = power_meter(constant(10.0), sink=sink)
    meter.sample_once()
    clock.set(0.04)
    meter.mark(("x",))
    assert meter.flush() is True  # forced sample at t=0.04: the mark resolves now
    assert sink.calls[0][2] == (pytest.approx(0.4),)


# -- faulty sensors ------------------------------------------------------------------------
@pytest.mark.parametrize("mode,field", [
    ("raise", "errors"), ("nan", "rejected"), ("inf", "rejected"), ("negative", "rejected"),
    ("garbage", "rejected"), ("none", "rejected"),
])
def test_bad_power_readings_are_counted_warned_once_and_bridged(mode, field):
    clock, sink = FakeClock(), Recorder()
    bad = FaultySensor(mode, every=3, value=60.0, clock=clock, name="bad")
    good = ScriptedPowerSensor(constant(40.0), clock, t0=0.0, name="good")
    meter = Meter([bad, good], sink=sink, clock=clock)
    run(meter, clock, 10.0, [(5.0, ("mid",)), (9.95, ("end",))])
    health = meter.health["bad"]
    assert getattr(health, field) == bad.reads // 3 > 0
    assert health.reads == bad.reads - bad.reads // 3
    assert health.last_error
    assert sum("'bad'" in w for w in meter.warnings) == 1
    # Constant power bridged linearly over each gap: exact.
    assert sink.calls[-1][2] == (pytest.approx(597.0), pytest.approx(398.0))


def test_sensor_that_always_raises_contributes_zero_and_never_stalls_marks():
    clock, sink = FakeClock(), Recorder()
    bad = FaultySensor("raise", every=1, clock=clock, name="bad")
    good = ScriptedPowerSensor(constant(40.0), clock, t0=0.0, name="good")
    meter = Meter([bad, good], sink=sink, clock=clock)
    marks = [(0.05 + 0.1 * i, ("m", i)) for i in range(100)]
    run(meter, clock, 10.0, marks)
    assert meter.pending_marks <= 1  # a bad sensor without samples never holds marks back
    assert len(sink.calls) >= 99
    assert all(cum[0] == 0.0 for _, _, cum in sink.calls)
    assert meter.health["bad"].errors == bad.reads
    meter.stop()
    assert len(sink.calls) == 100
    assert sink.calls[-1][2][1] == pytest.approx(40.0 * 9.95)


def test_power_gap_shorter_than_max_gap_waits_and_interpolates_linearly():
    clock, sink = FakeClock(), Recorder()
    trace = ramp(20.0, 10.0)
    sensor = ScriptedPowerSensor(trace, clock, t0=0.0, name="p")
    meter = Meter([sensor], sink=sink, clock=clock)  # max_gap_s = 1.0
    run(meter, clock, 1.0)
    sensor.failing = OSError("gone")  # reads at 1.1 .. 1.5 fail
    for t in (1.1, 1.2, 1.23, 1.3, 1.4, 1.5):
        clock.set(t)
        if t == 1.23:
            meter.mark(("in-gap",))
        else:
            meter.sample_once()
    assert meter.pending_marks == 1  # waits for the next valid reading
    sensor.failing = None
    clock.set(1.6)
    meter.sample_once()
    assert meter.pending_marks == 0
    # Linear power across the gap is exact for a ramp.
    assert sink.calls[0][2][0] == pytest.approx(trace.energy_j(1.23), rel=1e-12)
    assert meter.health["p"].errors == 5


def test_long_gap_releases_marks_with_energy_held_then_accounts_the_gap():
    clock, sink = FakeClock(), Recorder()
    sensor = ScriptedPowerSensor(constant(50.0), clock, t0=0.0, name="p")
    meter = Meter([sensor], sink=sink, clock=clock, max_gap_s=0.5)
    run(meter, clock, 1.0)
    sensor.failing = float("nan")
    for i in range(1, 31):  # 3 s without a valid reading
        clock.set(1.0 + 0.1 * i)
        meter.mark(("during", i))
        meter.sample_once()
    assert meter.pending_marks <= 6  # marks are not held back for the whole outage
    held = [cum[0] for _, label, cum in sink.calls if label[0] == "during"]
    assert held[-1] == pytest.approx(50.0)  # energy held at the last valid reading
    sensor.failing = None
    clock.set(4.1)
    meter.mark(("after",))
    clock.set(4.2)
    meter.sample_once()
    meter.stop()
    assert sink.calls[-1][2][0] == pytest.approx(50.0 * 4.1)  # the gap is accounted after it
    assert any("no valid reading" in w for w in meter.warnings)
    cums = [cum[0] for _, _, cum in sink.calls]
    assert cums == sorted(cums)


def test_decreasing_counter_readings_are_rejected():
    clock, sink = FakeClock(), Recorder()
    bad = FaultySensor("decreasing", kind="energy", every=4, value=25.0, clock=clock, name="c")
    meter = Meter([bad], sink=sink, clock=clock)
    run(meter, clock, 5.0, [(4.95, ("end",))])
    assert meter.health["c"].rejected == bad.reads // 4 > 0
    assert sink.calls[0][2][0] == pytest.approx(25.0 * 4.95)
    assert any("went backwards" in w for w in meter.warnings)


def test_counter_reset_is_rebased_after_three_backward_reads():
    clock, sink = FakeClock(), Recorder()
    bad = FaultySensor("reset", kind="energy", every=21, value=10.0, clock=clock, name="c")
    meter = Meter([bad], sink=sink, clock=clock)
    run(meter, clock, 6.0, [(1.95, ("before",)), (5.95, ("end",))])
    cums = dict((label, cum[0]) for _, label, cum in sink.calls)
    # Reads 21-22 (t=2.0, 2.1) are rejected, read 23 (t=2.2) rebases: the energy from the
    # last accepted read (t=1.9) to the rebase, 3 J, is lost; the rest counts.
    assert cums[("before",)] == pytest.approx(19.0)
    assert cums[("end",)] == pytest.approx(10.0 * 5.95 - 3.0)
    assert meter.health["c"].rejected == 2
    assert any("reset" in w for w in meter.warnings)


@pytest.mark.parametrize("mode,reason", [
    ("open", "fake device is not there"), ("open_error", "OSError: fake driver crashed"),
])
def test_sensor_whose_open_fails_is_disabled_with_its_reason(mode, reason):
    clock, sink = FakeClock(), Recorder()
    bad = FaultySensor(mode, clock=clock, name="bad")
    good = ScriptedPowerSensor(constant(10.0), clock, t0=0.0, name="good")
    meter = Meter([bad, good], sink=sink, clock=clock)
    run(meter, clock, 1.0, [(0.95, ("m",))])
    meter.stop()
    assert reason in meter.health["bad"].disabled_reason
    assert bad.reads == 0 and not bad.closed
    assert sink.calls[0][2] == (0.0, pytest.approx(9.5))
    assert any("'bad' disabled" in w for w in meter.warnings)


def test_close_that_raises_is_recorded_and_stop_completes():
    clock = FakeClock()
    bad = FaultySensor("close", clock=clock, name="bad")
    meter = Meter([bad], clock=clock)
    meter.sample_once()
    meter.stop()
    assert bad.closed
    assert any("close() raised" in w for w in meter.warnings)


def test_sink_exceptions_are_contained_and_counted():
    seen = []

    def sink(t, label, cum):
        if label[0] == "bad":
            raise KeyError("boom")
        seen.append(label)

    meter, clock = power_meter(constant(1.0), sink=sink)
    run(meter, clock, 1.0, [(0.1 * i + 0.05, ("bad" if i % 2 else "ok", i)) for i in range(8)])
    assert seen == [("ok", 0), ("ok", 2), ("ok", 4), ("ok", 6)]
    assert meter.sink_errors == 4
    assert sum("sink raised" in w for w in meter.warnings) == 1


# -- memory --------------------------------------------------------------------------------
def test_samples_are_dropped_once_no_pending_mark_needs_them():
    clock = FakeClock()
    good = ScriptedPowerSensor(constant(5.0), clock, t0=0.0, name="good")
    flaky = ScriptedPowerSensor(constant(1.0), clock, t0=0.0, name="flaky")
    meter = Meter([good, flaky], clock=clock)
    run(meter, clock, 100.0)
    assert [len(t.samples) for t in meter._tracks] == [1, 1]
    flaky.failing = RuntimeError("hiccup")  # holds marks back for up to max_gap_s
    clock.advance(0.01)
    meter.mark(("m",))
    for _ in range(5):
        clock.advance(0.1)
        meter.sample_once()
    assert meter.pending_marks == 1
    assert len(meter._tracks[0].samples) == 6  # kept: the pending mark may need them
    flaky.failing = None
    clock.advance(0.1)
    meter.sample_once()
    assert meter.pending_marks == 0
    assert [len(t.samples) for t in meter._tracks] == [1, 1]


def _million_marks(meter: Meter, clock: FakeClock, blocks: list[int], steps: int) -> None:
    mark, advance, sample, record = meter.mark, clock.advance, meter.sample_once, meter.record_step
    sample()
    mark(PhaseMark("train"))
    phase = 0
    for step in range(steps):
        if step % 100_000 == 0:
            mark(EpochMark(step // 100_000))
        if step % 20_000 == 10_000:
            validate = step % 40_000 == 10_000
            phase = 1 if validate else 0
            mark(PhaseMark("validate" if validate else "train"))
        if step == 50_000:
            blocks.append(sys.getallocatedblocks())
        advance(0.0005)
        start = clock.t
        meter.open_t0 = start
        advance(0.0005)
        record(start, clock.t, 8, 16, 16, phase, step // 100_000)
        meter.open_t0 = None
        if step % 50 == 49:
            sample()
    mark(Boundary("end"))
    blocks.append(sys.getallocatedblocks())
    meter.stop()


def _two_sensors(clock):
    return [ScriptedPowerSensor(constant(200.0), clock, t0=0.0, name="gpu"),
            CounterSensor(constant(50.0), clock, t0=0.0, name="cpu", component="cpu")]


def test_a_million_marks_keep_memory_bounded_and_totals_exact(tmp_path):
    clock = FakeClock()
    sensors = _two_sensors(clock)
    store = StepStore(["gpu", "cpu"], tmp_path / "steps.bin")
    ledger = Ledger(sensors, store, wall_offset_s=0.0)
    meter = Meter(sensors, sink=ledger.feed, step_sink=ledger.feed_steps, clock=clock)
    blocks: list[int] = []
    _million_marks(meter, clock, blocks, 500_000)
    # Retaining marks, samples or rows would add >= 1 block per step (5e5 in all).
    assert blocks[1] - blocks[0] < 20_000, blocks
    duration = ledger.last_t - ledger.first_t
    assert duration == pytest.approx(500.0)
    assert ledger.energy_j == pytest.approx(250.0 * duration, rel=1e-9)
    assert ledger.energy_j_by_component == {"gpu": pytest.approx(200.0 * duration, rel=1e-9),
                                            "cpu": pytest.approx(50.0 * duration, rel=1e-9)}
    assert sum(ledger.energy_j_by_phase.values()) == pytest.approx(ledger.energy_j, rel=1e-12)
    assert sum(ledger.energy_j_by_epoch.values()) == pytest.approx(ledger.energy_j, rel=1e-12)
    assert ledger.energy_j_by_phase["validate"] == pytest.approx(0.5 * ledger.energy_j, rel=1e-3)
    assert ledger.steps == store.rows == 500_000
    work = ledger.work_by_phase
    assert work["train"]["batches"] + work["validate"]["batches"] == 500_000
    assert work["train"]["samples"] + work["validate"]["samples"] == 4_000_000
    assert work["train"]["tokens"] + work["validate"]["tokens"] == 8_000_000
    # Every step's row holds its own energy: 250 W x 0.5 ms.
    energy = store.column("energy_j")
    assert energy.sum() == pytest.approx(250.0 * 0.0005 * 500_000, rel=1e-9)
    assert energy.min() == pytest.approx(0.125, rel=1e-6) and energy.max() == pytest.approx(0.125, rel=1e-6)
    store.close()


def test_traced_memory_peak_over_25k_steps_with_step_rows(tmp_path):
    clock = FakeClock()
    sensors = _two_sensors(clock)
    store = StepStore(["gpu", "cpu"], tmp_path / "steps.bin")
    ledger = Ledger(sensors, store, wall_offset_s=0.0)
    meter = Meter(sensors, sink=ledger.feed, step_sink=ledger.feed_steps, clock=clock)
    tracemalloc.start()
    try:
        _million_marks(meter, clock, [], 25_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"traced peak over 25k steps: {peak / 2**20:.2f} MiB")
    assert peak < 10 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert store.rows == 25_000 and store.spilled_rows > 0


# -- arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"interval_s": 0}, "interval_s"), ({"interval_s": -1.0}, "interval_s"),
    ({"interval_s": float("nan")}, "interval_s"), ({"interval_s": "0.1"}, "interval_s"),
    ({"interval_s": True}, "interval_s"), ({"max_gap_s": 0.0}, "max_gap_s"),
    ({"sink": 3}, "sink"), ({"clock": 1.0}, "clock"),
])
def test_bad_arguments_are_rejected_with_their_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Meter([ConstantPowerSensor(1.0)], **kwargs)


def test_duplicate_sensor_names_are_rejected():
    with pytest.raises(ValueError, match="unique names.*'x'"):
        Meter([ConstantPowerSensor(1.0, name="x"), ConstantPowerSensor(2.0, name="x")])


# -- the real thread -----------------------------------------------------------------------
def test_thread_samples_resolves_on_flush_and_stops_cleanly(no_thread_leak):
    sink = Recorder()
    meter = Meter([ConstantPowerSensor(100.0, name="c")], interval_s=0.01, sink=sink)
    meter.start()
    meter.start()  # a second start is a no-op
    assert meter.wait_ready(2.0)
    threads = lightning_green_threads()
    assert len(threads) == 1 and threads[0].daemon and threads[0].name == "lightning-green-sampler"
    meter.mark(("a",))
    time.sleep(0.05)
    meter.mark(("b",))
    assert meter.flush(timeout_s=2.0) is True
    assert sink.labels == [("a",), ("b",)]
    (ta, _, (ca,)), (tb, _, (cb,)) = sink.calls
    assert cb - ca == pytest.approx(100.0 * (tb - ta), rel=1e-9)
    meter.stop()
    meter.stop()  # idempotent
    assert not lightning_green_threads()
    meter.mark(("after stop",))
    assert meter.pending_marks == 0 and len(sink.calls) == 2
    assert meter.flush() is True
    with pytest.raises(RuntimeError, match="stopped"):
        meter.start()


def test_stop_wakes_the_thread_instead_of_waiting_an_interval(no_thread_leak):
    sink = Recorder()
    meter = Meter([ConstantPowerSensor(10.0)], interval_s=30.0, sink=sink)
    meter.start()
    assert meter.wait_ready(2.0)
    meter.mark(("m",))
    began = time.perf_counter()
    meter.stop()
    assert time.perf_counter() - began < 2.0
    assert sink.labels == [("m",)]


def test_blocking_sensor_never_delays_mark_and_stop_returns_promptly(no_thread_leak):
    sink = Recorder()
    blocking = BlockingSensor(1.0, name="slow")
    meter = Meter([blocking, ConstantPowerSensor(50.0, name="fast")], interval_s=0.01, sink=sink)
    try:
        meter.start()
        deadline = time.perf_counter() + 2.0
        while blocking.blocks == 0 and time.perf_counter() < deadline:
            time.sleep(0.005)
        costs = []
        for i in range(2000):  # while the meter thread is stuck in a read
            began = time.perf_counter()
            meter.mark(("m", i))
            costs.append(time.perf_counter() - began)
        assert max(costs) < 0.05
        began = time.perf_counter()
        meter.stop(timeout_s=0.2)
        assert time.perf_counter() - began < 0.8
        assert len(sink.calls) == 2000  # every mark resolved, with the slow sensor held
        assert any("did not stop" in w for w in meter.warnings)
    finally:
        blocking.release()
    deadline = time.perf_counter() + 3.0
    while lightning_green_threads() and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert len(sink.calls) == 2000  # the abandoned thread resolves nothing twice


def test_stop_with_default_timeout_waits_at_most_the_current_blocking_read(no_thread_leak):
    sink = Recorder()
    blocking = BlockingSensor(0.5, name="slow")
    meter = Meter([blocking], interval_s=0.01, sink=sink)
    meter.start()
    time.sleep(0.1)
    meter.mark(("m",))
    began = time.perf_counter()
    meter.stop()
    assert time.perf_counter() - began < 1.5  # the final sample skips the slow sensor
    assert sink.labels == [("m",)]
    assert meter.health["slow"].max_read_s >= 0.4
    assert any("took" in w for w in meter.warnings)


def test_mark_is_cheap():
    meter = Meter([ConstantPowerSensor(1.0)])
    label = ("step_start", 1)
    costs = []
    for _ in range(200):
        began = time.perf_counter_ns()
        for _ in range(100):
            meter.mark(label)
        costs.append((time.perf_counter_ns() - began) / 100)
    median_ns = statistics.median(costs)
    print(f"mark(): median {median_ns:.0f} ns per call")
    assert median_ns < 50_000  # loose: the target is ~0.2 us; CI machines are noisy
    meter.stop()
    assert meter.pending_marks == 0


def test_sample_once_and_the_thread_exclude_each_other(no_thread_leak):
    meter = Meter([ConstantPowerSensor(1.0)], interval_s=0.01)
    assert meter.flush() is False  # never started
    meter.start()
    with pytest.raises(RuntimeError, match="thread is running"):
        meter.sample_once()
    meter.stop()
    other = Meter([ConstantPowerSensor(1.0)])
    other.sample_once()
    with pytest.raises(RuntimeError, match="sample_once"):
        other.start()
    other.stop()


def test_flush_from_another_thread_while_training_marks(no_thread_leak):
    sink = Recorder()
    meter = Meter([ConstantPowerSensor(10.0)], interval_s=0.05, sink=sink)
    meter.start()
    stop = threading.Event()

    def trainer():
        i = 0
        while not stop.is_set():
            meter.mark(("s", i))
            i += 1
            time.sleep(0.0005)

    worker = threading.Thread(target=trainer)
    worker.start()
    try:
        for i in range(5):
            time.sleep(0.02)
            meter.mark(("flush", i))
            assert meter.flush(timeout_s=2.0)
            assert ("flush", i) in sink.labels  # resolved before flush() returned
    finally:
        stop.set()
        worker.join()
        meter.stop()
    times = [t for t, _, _ in sink.calls]
    cums = [c[0] for _, _, c in sink.calls]
    assert times == sorted(times) and cums == sorted(cums)
