"""IntensitySeries: a series with known values, split intervals, CSV formats and bad files."""

from __future__ import annotations

import pickle
import random
import warnings
from fractions import Fraction

import numpy as np
import pytest

from lightning_green.carbon.intensity import CarbonWarning
from lightning_green.carbon.series import IntensitySeries

H = 3600.0
T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z
HOURLY = [400.0, 300.0, 100.0, 120.0, 500.0, 50.0, 600.0]  # g/kWh over [T0 + i h, T0 + (i+1) h)


def hourly(values=HOURLY, start=T0):
    return IntensitySeries([start + i * H for i in range(len(values))], values)


def reference_g(series_values, start, step, t0, t1, energy_j, pue):
    """Emissions by exact rational arithmetic: energy spread evenly, split over each hour."""
    t0, t1, start, step = Fraction(t0), Fraction(t1), Fraction(start), Fraction(step)
    n = len(series_values)
    edges = [start + i * step for i in range(n + 1)]
    # edge values held outside [start, start + n*step)
    pieces = [(Fraction(-10**12), edges[0], series_values[0])]
    pieces += [(edges[i], edges[i + 1], series_values[i]) for i in range(n)]
    pieces += [(edges[-1], Fraction(10**12), series_values[-1])]
    if t1 == t0:
        value = next(Fraction(g) for a, b, g in pieces if a <= t0 < b)
        return float(Fraction(energy_j) * Fraction(pue) * value / Fraction(3_600_000))
    total = Fraction(0)
    for a, b, g in pieces:
        overlap = min(b, t1) - max(a, t0)
        if overlap > 0:
            total += overlap * Fraction(g)
    mean = total / (t1 - t0)
    return float(Fraction(energy_j) * Fraction(pue) * mean / Fraction(3_600_000))


def test_known_values_inside_hours_are_energy_times_intensity():
    series = hourly()
    # one interval inside each hour: 0.25 .. 0.75 h, energy 1..7 MJ
    t0 = np.array([T0 + (i + 0.25) * H for i in range(7)])
    t1 = t0 + 0.5 * H
    energy_j = np.array([1e6 * (i + 1) for i in range(7)])
    got = series.emissions_g(t0, t1, energy_j, pue=1.2)
    expected = [e / 3.6e6 * 1.2 * g for e, g in zip(energy_j, HOURLY)]
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    assert got.sum() == pytest.approx(sum(expected), rel=1e-9)
    for a, b, e, want in zip(t0, t1, energy_j, expected):
        assert series.integrate(float(a), float(b), float(e), pue=1.2) == pytest.approx(want, rel=1e-12)


def test_interval_across_boundaries_is_split_in_proportion_to_time():
    series = hourly()
    # [0.5 h, 2.5 h): half an hour at 400, an hour at 300, half an hour at 100 -> mean 275
    assert series.mean_g_per_kwh(T0 + 0.5 * H, T0 + 2.5 * H) == pytest.approx(275.0, rel=1e-12)
    assert series.integrate(T0 + 0.5 * H, T0 + 2.5 * H, 7.2e6, pue=1.0) == pytest.approx(2 * 275.0, rel=1e-12)
    # the docstring's example
    assert IntensitySeries([0, H, 2 * H], [100, 300, 200]).integrate(1800, 5400, 3.6e6, pue=1.0) == 200.0


def test_many_random_intervals_match_exact_reference_to_1e9():
    series = hourly()
    rng = random.Random(7)
    t0, t1, energy = [], [], []
    for _ in range(300):
        a = T0 + rng.uniform(-1.0, 8.0) * H  # some before the start and after the end
        b = a + rng.choice([0.0, rng.uniform(0, 0.01), rng.uniform(0, 3) * H])
        t0.append(a), t1.append(b), energy.append(rng.uniform(0, 5e6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarbonWarning)
        vector = series.emissions_g(t0, t1, energy, pue=1.4)
        scalar = [series.integrate(a, b, e, pue=1.4) for a, b, e in zip(t0, t1, energy)]
    expected = [reference_g(HOURLY, T0, H, a, b, e, 1.4) for a, b, e in zip(t0, t1, energy)]
    assert vector.tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert scalar == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert vector.sum() == pytest.approx(sum(expected), rel=1e-9)


def test_splitting_a_run_into_steps_keeps_its_emissions():
    series = hourly()
    whole = series.integrate(T0 + 0.1 * H, T0 + 6.9 * H, 1e7, pue=1.1)
    edges = np.linspace(T0 + 0.1 * H, T0 + 6.9 * H, 1001)
    parts = series.emissions_g(edges[:-1], edges[1:], np.full(1000, 1e7 / 1000), pue=1.1)
    assert parts.sum() == pytest.approx(whole, rel=1e-9)


def test_zero_length_interval_and_intensity_at_boundaries():
    series = hourly()
    assert series.intensity_at(T0) == 400.0
    assert series.intensity_at(T0 + H - 1e-3) == 400.0
    assert series.intensity_at(T0 + H) == 300.0  # [t_i, t_i+1): a boundary belongs to the next value
    assert series.integrate(T0 + 2 * H, T0 + 2 * H, 3.6e6, pue=1.0) == 100.0
    assert series.end_unix == T0 + 7 * H and series.covers(T0 + 7 * H - 1) and not series.covers(T0 + 7 * H)


def test_outside_the_series_holds_edge_values_warns_once_and_counts_seconds():
    series = hourly()
    with pytest.warns(CarbonWarning, match="edge value") as record:
        assert series.intensity_at(T0 - 10) == 400.0
        assert series.integrate(T0 + 6.5 * H, T0 + 8 * H, 3.6e6, pue=1.0) == pytest.approx(600.0)
    assert len(record) == 1
    assert series.uncovered_s(T0 - 100, T0 + H) == 100
    assert series.uncovered_s(T0 + 6 * H, T0 + 8 * H) == H
    assert series.uncovered_s(T0, T0 + 7 * H) == 0


def test_bad_intervals_are_rejected():
    series = hourly()
    with pytest.raises(ValueError, match="interval must be finite with t1_unix >= t0_unix"):
        series.integrate(T0 + 10, T0, 1.0, pue=1.0)
    with pytest.raises(ValueError, match="interval must be finite"):
        series.mean_g_per_kwh(float("-inf"), T0)
    with pytest.raises(ValueError, match="energy_j must be a number >= 0, got -1"):
        series.integrate(T0, T0 + 10, -1.0, pue=1.0)
    with pytest.raises(ValueError, match="pue must be a number >= 1, got 0.5"):
        series.emissions_g([T0], [T0 + 1], [1.0], pue=0.5)
    with pytest.raises(ValueError, match="energy_j must be finite and >= 0"):
        series.emissions_g([T0], [T0 + 1], [float("nan")], pue=1.0)
    with pytest.raises(ValueError, match="t1_unix >= t0_unix"):
        series.emissions_g([T0 + 5], [T0], [1.0], pue=1.0)


def test_cleanest_window_on_a_known_series():
    series = hourly()
    assert series.cleanest_window(H) == (T0 + 5 * H, T0 + 6 * H, 50.0)
    assert series.cleanest_window(2 * H) == (T0 + 2 * H, T0 + 4 * H, 110.0)
    start, end, mean = series.cleanest_window(1.5 * H)  # [2 h, 3.5 h): (100 + 0.5 x 120) / 1.5
    assert (start, end) == (T0 + 2 * H, T0 + 3.5 * H) and mean == pytest.approx(320 / 3, rel=1e-12)
    # no window on a one-minute grid does better
    for duration in (H, 1.5 * H, 2 * H, 2.75 * H):
        best = series.cleanest_window(duration).mean_g_per_kwh
        starts = np.arange(T0, T0 + 7 * H - duration + 1, 60.0)
        assert series.mean_g_per_kwh_many(starts, starts + duration).min() >= best - 1e-9
    whole = series.cleanest_window(7 * H)
    assert whole == (T0, T0 + 7 * H, pytest.approx(sum(HOURLY) / 7))
    with pytest.raises(ValueError, match=r"duration_s must be a number > 0 and <= 25200, got 25201"):
        series.cleanest_window(7 * H + 1)


def test_next_time_at_or_below_a_threshold():
    series = hourly()
    assert series.next_at_or_below(350, T0 + 0.5 * H) == T0 + H
    assert series.next_at_or_below(100, T0 + 0.5 * H) == T0 + 2 * H
    assert series.next_at_or_below(500, T0 + 0.5 * H) == T0 + 0.5 * H  # already below
    assert series.next_at_or_below(10, T0) is None
    assert series.next_at_or_below(1000, T0 + 8 * H) is None  # outside: nothing known


def test_describe_and_pickle():
    series = hourly()
    info = series.describe()
    assert info["rows"] == 7 and info["resolution_s"] == H and info["max_gap_s"] == 1.5 * H
    assert (info["min_g_per_kwh"], info["max_g_per_kwh"]) == (50.0, 600.0)
    assert info["start"] == "2024-05-01T00:00:00Z" and info["end"] == "2024-05-01T07:00:00Z"
    assert info["mean_g_per_kwh"] == pytest.approx(sum(HOURLY) / 7)
    copy = pickle.loads(pickle.dumps(series))
    assert copy.integrate(T0 + 0.5 * H, T0 + 2.5 * H, 7.2e6, pue=1.0) == pytest.approx(550.0)


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [
        ([T0, T0 + 2 * H, T0 + H], [1, 2, 3], r"row 3: timestamps out of order: 2024-05-01T01:00:00Z after 2024-05-01T02:00:00Z \(row 2\)"),
        ([T0, T0 + H, T0 + H], [1, 2, 3], r"row 3: duplicate timestamp"),
        ([T0, T0 + H, T0 + 2 * H], [1, -2, 3], r"row 2: intensity must be a finite number of g CO2e/kWh in \[0, 2000\], got -2.0"),
        ([T0, T0 + H, T0 + 2 * H], [1, float("nan"), 3], r"row 2: intensity .* got nan"),
        ([T0, T0 + H, T0 + 2 * H], [1, float("inf"), 3], r"row 2: intensity .* got inf"),
        ([T0, T0 + H, T0 + 2 * H], [1, 2, 2500], r"row 3: intensity .* got 2500.0"),
        ([T0, T0 + H, T0 + 3 * H, T0 + 4 * H], [1, 2, 3, 4], r"gap of 7200 s between row 2 \(2024-05-01T01:00:00Z\) and row 3 .* longer than 1.5 x the median spacing 3600 s"),
        ([T0 * 1000, T0 * 1000 + H], [1, 2], r"row 1: timestamp must be unix seconds .* milliseconds"),
        ([T0], [1], r"needs at least 2 rows"),
        ([T0, T0 + H], [1], r"2 timestamps but 1 values"),
    ],
)
def test_bad_series_are_rejected_with_the_row(times, values, message):
    with pytest.raises(ValueError, match=r"`carbon_intensity_series`: " + message):
        IntensitySeries(times, values)


def test_max_gap_s_accepts_a_longer_interval_and_holds_the_value():
    times = [T0, T0 + H, T0 + 3 * H, T0 + 4 * H]
    series = IntensitySeries(times, [1, 2, 3, 4], max_gap_s=2 * H)
    assert series.intensity_at(T0 + 2.5 * H) == 2
    with pytest.raises(ValueError, match=r"longer than max_gap_s=3600"):
        IntensitySeries(times, [1, 2, 3, 4], max_gap_s=H)
    with pytest.raises(ValueError, match=r"max_gap_s must be a number > 0, got 0"):
        IntensitySeries(times, [1, 2, 3, 4], max_gap_s=0)
