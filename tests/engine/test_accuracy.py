"""Accuracy replay: synthetic power traces with known integrals through Meter + Ledger.

Each trace is replayed on a fake clock (so the figures are exact and repeatable) through a
power sensor sampled every ``interval_s`` and through an energy counter, with back-to-back
steps of a given length. Targets (issue 6): counters within 0.1% of the total, power
sampling within 1% at the default 0.1 s interval where sampling can see the signal.

What sampling cannot do, tested as such: bursts shorter than the interval are seen only
when a sample happens to land in one, so their error is aliasing, not noise. Per-step
energy of short steps is an approximation: the error shrinks as steps get longer.
"""

from __future__ import annotations

import pytest
from tests.helpers.fakes import bursts, constant, ramp, replay, sine, square

DEFAULT_S = 0.1  # Meter's default interval_s
STEP_LENGTHS_S = (0.002, 0.01, 0.1, 1.0)

TRACES = {
    "constant": constant(100.0),
    "ramp": ramp(50.0, 2.0),
    "sine": sine(150.0, 100.0, 2.3),
    "square_1s": square(250.0, 60.0, 1.0, 0.5, phase_s=0.037),
    "square_1.03s": square(250.0, 60.0, 1.03, 0.5, phase_s=0.011),
    "bursts_20ms": bursts(50.0, 300.0, 0.25, 0.02),
}


def _duration(step_s: float) -> float:
    return 20.0 if step_s < 0.01 else 60.0


# -- totals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,limit", [
    ("constant", 1e-9), ("ramp", 1e-9), ("sine", 1e-4), ("square_1s", 1e-4),
    ("square_1.03s", 1e-2),
])
def test_power_sampling_total_within_target_at_default_interval(name, limit):
    result = replay(TRACES[name], interval_s=DEFAULT_S, step_s=0.1)
    print(f"{name}: total error {result.total_rel_err:+.2e}")
    assert abs(result.total_rel_err) < limit


@pytest.mark.parametrize("name", sorted(TRACES))
@pytest.mark.parametrize("update_period_s", [0.0, 0.02, 0.1])
@pytest.mark.parametrize("interval_s", [DEFAULT_S, 0.01])
def test_counter_total_within_a_tenth_of_a_percent(name, update_period_s, interval_s):
    result = replay(TRACES[name], kind="energy", interval_s=interval_s, step_s=0.1,
                    update_period_s=update_period_s)
    assert abs(result.total_rel_err) < 1e-3


def test_bursts_shorter_than_the_interval_alias_and_are_not_captured():
    # 20 ms bursts every 250 ms, sampled every 100 ms from t=0.0013: one sample in five
    # lands in a burst while bursts fill 8% of the time, so sampling reads 100 W instead of
    # 70 W: +3/7. An energy counter, or sampling faster than the burst, gets it right.
    result = replay(TRACES["bursts_20ms"], interval_s=DEFAULT_S, step_s=0.1)
    assert result.total_rel_err == pytest.approx(3 / 7, abs=0.005)
    fast = replay(TRACES["bursts_20ms"], interval_s=0.01, step_s=0.1)
    assert abs(fast.total_rel_err) < 1e-3
    counter = replay(TRACES["bursts_20ms"], kind="energy", interval_s=DEFAULT_S, step_s=0.1,
                     update_period_s=0.1)
    assert abs(counter.total_rel_err) < 1e-3


# -- per-step attribution ---------------------------------------------------------------------
@pytest.mark.parametrize("step_s", STEP_LENGTHS_S)
@pytest.mark.parametrize("name", ["constant", "ramp"])
def test_smooth_power_is_attributed_exactly_to_every_step(name, step_s):
    result = replay(TRACES[name], interval_s=DEFAULT_S, step_s=step_s, duration_s=_duration(step_s))
    assert result.step_max_abs_err < 1e-9


@pytest.mark.parametrize("step_s", STEP_LENGTHS_S)
def test_sine_power_per_step_error_under_one_percent(step_s):
    result = replay(TRACES["sine"], interval_s=DEFAULT_S, step_s=step_s,
                    duration_s=_duration(step_s))
    assert result.step_mean_abs_err < 0.01


@pytest.mark.parametrize("name", ["square_1.03s", "bursts_20ms"])
@pytest.mark.parametrize("kind", ["power", "energy"])
def test_per_step_error_shrinks_as_steps_get_longer(name, kind):
    errors = [replay(TRACES[name], kind=kind, interval_s=DEFAULT_S, step_s=s,
                     duration_s=_duration(s), update_period_s=0.1).step_mean_abs_err
              for s in STEP_LENGTHS_S]
    assert all(b <= a * 1.001 for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 1.9, errors
    assert errors[0] > 0.05  # short steps of a square signal: an approximation, said so


def test_coarse_counter_read_fast_spreads_each_update_over_its_period():
    # NVML's counter moves every ~100 ms: read every 10 ms it stays flat nine reads in ten.
    # Interpolating between the reads where it moved gives 10 ms steps their share instead
    # of nine zero steps and one tenfold step.
    result = replay(TRACES["constant"], kind="energy", interval_s=0.01, step_s=0.01,
                    update_period_s=0.1, duration_s=20.0)
    assert result.step_mean_abs_err < 1e-3
    assert result.step_max_abs_err < 0.02
    assert abs(result.total_rel_err) < 1e-3


def test_accuracy_table(capsys):
    """Print total and per-step errors by trace, sensor kind and step length (run with -s)."""
    lines = [f"{'trace':14} {'kind':7} {'step':>6}  {'total err':>10}  {'step mean':>9}  "
             f"{'step max':>9}"]
    for name, trace in TRACES.items():
        for kind in ("power", "energy"):
            for step_s in STEP_LENGTHS_S:
                r = replay(trace, kind=kind, interval_s=DEFAULT_S, step_s=step_s,
                           duration_s=_duration(step_s), update_period_s=0.1)
                lines.append(f"{name:14} {kind:7} {step_s:6g}  {r.total_rel_err:+10.2e}  "
                             f"{r.step_mean_abs_err:9.2e}  {r.step_max_abs_err:9.2e}")
                assert r.steps == round(_duration(step_s) / step_s)
    with capsys.disabled():
        print("\naccuracy at interval_s=0.1 (energy: counter updating every 0.1 s)")
        print("\n".join(lines))
