"""Accuracy: synthetic power traces with known integrals, replayed through sensors, meter and ledger.

Everything runs on a fake clock (``tests/helpers/fakes.py``), so the figures are exact and repeatable:
the meter samples every ``interval_s`` (default 0.1 s, from t = 1.3 ms), steps follow each
other back to back, and each step's and the run's energy are compared with the trace's exact
integral. Sensors:

* ``PowerSensor`` (sampled power, trapezoid) and ``EnergySensor`` (a counter, exact or moving
  only every 100 ms like NVML's) from ``tests/helpers/fakes.py``, through :func:`tests.helpers.fakes.replay`;
* the real sensor classes on scripted hardware (``tests/helpers/hardware_replay.py``): ``RaplSensor``
  on a fake powercap tree (integer uJ, a counter range that wraps every 4 kJ), ``NvmlSensor``
  on a patched ``pynvml`` reading the energy counter (integer mJ, 100 ms updates) or the
  instant power (integer mW).

The correctness of the replay is asserted in the default test suite by
``tests/engine/test_accuracy.py`` (totals, aliasing, per-step errors) and
``tests/engine/test_accuracy_sensors.py`` (the real sensor classes).

    python -m tests.benchmarks.accuracy [--duration 60]
"""

from __future__ import annotations

import argparse

from tests.helpers.fakes import Trace, bursts, constant, ramp, replay, sine, square
from tests.helpers.hardware_replay import COUNTER_UPDATE_S, replay_hardware

from tests.benchmarks._common import machine_line, table

DEFAULT_INTERVAL_S = 0.1
STEP_LENGTHS_S = (0.001, 0.01, 0.1, 1.0)
HARDWARE = {
    "rapl": "RaplSensor (uJ, wraps)",
    "nvml_counter": "NvmlSensor counter (mJ, 100 ms)",
    "nvml_power": "NvmlSensor instant power (mW)",
}


def traces() -> dict[str, Trace]:
    return {
        "constant 100 W": constant(100.0),
        "ramp 50 W + 2 W/s": ramp(50.0, 2.0),
        "sine 150 +- 100 W, 2.3 s": sine(150.0, 100.0, 2.3),
        "square 60/250 W, 1 s": square(250.0, 60.0, 1.0, 0.5, phase_s=0.037),
        "square 60/250 W, 1.03 s": square(250.0, 60.0, 1.03, 0.5, phase_s=0.011),
        "bursts 20 ms/250 ms (aliased)": bursts(50.0, 300.0, 0.25, 0.02),
        "bursts 20 ms/237 ms": bursts(50.0, 300.0, 0.237, 0.02),
    }


# -- tables ------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    if abs(x) < 5e-7:
        return "0"
    return f"{100 * x:+.4f}" if abs(x) < 0.01 else f"{100 * x:+.2f}"


def _g(x: float) -> str:
    """Two significant digits, no exponent; tiny values as '<0.001'."""
    if x < 0.001:
        return "<0.001"
    return f"{x:.2g}" if "e" not in f"{x:.2g}" else f"{x:.0f}"


def total_errors(duration_s: float = 60.0) -> list[list[str]]:
    rows = []
    for name, trace in traces().items():
        row = [name]
        row.append(_pct(replay(trace, kind="power", interval_s=DEFAULT_INTERVAL_S, step_s=0.1,
                               duration_s=duration_s).total_rel_err))
        row.append(_pct(replay(trace, kind="energy", interval_s=DEFAULT_INTERVAL_S, step_s=0.1,
                               duration_s=duration_s).total_rel_err))
        row.append(_pct(replay(trace, kind="energy", interval_s=DEFAULT_INTERVAL_S, step_s=0.1,
                               duration_s=duration_s, update_period_s=COUNTER_UPDATE_S).total_rel_err))
        for hardware in HARDWARE:
            row.append(_pct(replay_hardware(trace, hardware, duration_s=duration_s)[0]))
        rows.append(row)
    return rows


def step_errors(duration_s: float = 20.0) -> list[list[str]]:
    rows = []
    selected = ["constant 100 W", "sine 150 +- 100 W, 2.3 s", "square 60/250 W, 1.03 s", "bursts 20 ms/237 ms"]
    all_traces = traces()
    for name in selected:
        for kind, label in (("power", "power sampling"), ("energy", "counter, 100 ms updates")):
            row = [name, label]
            for step_s in STEP_LENGTHS_S:
                r = replay(all_traces[name], kind=kind, interval_s=DEFAULT_INTERVAL_S, step_s=step_s,
                           duration_s=max(duration_s, 20 * step_s), update_period_s=COUNTER_UPDATE_S)
                row.append(f"{_g(100 * r.step_mean_abs_err)} / {_g(100 * r.step_max_abs_err)}")
            rows.append(row)
    return rows


def format_result(totals: list[list[str]], steps: list[list[str]], duration_s: float) -> str:
    first = table(
        ["trace", "power sampling", "counter (exact)", "counter (100 ms updates)", *HARDWARE.values()],
        totals,
        f"Accuracy: total-energy error in % over {duration_s:g} s, sampling every {DEFAULT_INTERVAL_S} s "
        "(targets: counters within 0.1 %, power sampling within 1 %)",
    )
    second = table(
        ["trace", "sensor", *(f"{1e3 * s:g} ms steps" for s in STEP_LENGTHS_S)],
        steps,
        f"Per-step attribution error, mean / max of |step error| in % (sampling every {DEFAULT_INTERVAL_S} s)",
    )
    note = ("Power sampling sees a burst shorter than the interval only when a sample lands in it: bursts "
            "whose period is a multiple of the interval alias (here +43 %); an energy counter integrates them. "
            "Per-step energy of steps shorter than the sampling interval or the counter's update period is an "
            "interpolation: exact for smooth power, an approximation for square waves and bursts.")
    return first + "\n\n" + second + "\n\n" + note


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of trace for the totals (default 60)")
    parser.add_argument("--quick", action="store_true", help="shorter traces (a smoke run)")
    args = parser.parse_args(argv)
    duration_s = 10.0 if args.quick else args.duration
    print(machine_line(), flush=True)
    text = format_result(total_errors(duration_s), step_errors(5.0 if args.quick else 20.0), duration_s)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
