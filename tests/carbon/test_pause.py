"""PausePolicy with a fake clock and a fake sleep: when it pauses, for how long, and its limits."""

from __future__ import annotations

import pytest

from lightning_green.carbon.pause import PausePolicy
from lightning_green.carbon.series import IntensitySeries

H = 3600.0
T0 = 1_714_521_600.0
# hours:          0    1    2    3    4    5
VALUES = [100, 400, 450, 200, 500, 150]


class FakeTime:
    """A clock that only moves when slept on (or when a test moves it)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(now, threshold=300.0, **kwargs):
    fake = FakeTime(now)
    series = IntensitySeries([T0 + i * H for i in range(len(VALUES))], VALUES)
    return PausePolicy(series, threshold, clock=fake.clock, sleep=fake.sleep, **kwargs), fake


def test_no_pause_while_at_or_below_the_threshold():
    pause, fake = policy(T0 + 0.5 * H)
    assert pause.wait_if_needed() == 0.0 and fake.sleeps == []
    at, fake = policy(T0 + 3.5 * H, threshold=200.0)  # exactly at the threshold: no pause
    assert at.wait_if_needed() == 0.0 and fake.sleeps == [] and at.pauses == 0


def test_pauses_until_the_series_drops_below_the_threshold():
    pause, fake = policy(T0 + 1.25 * H)  # 400 g/kWh; at or below 300 again at hour 3
    paused = pause.wait_if_needed()
    assert paused == pytest.approx(1.75 * H)
    assert fake.now == pytest.approx(T0 + 3 * H)
    assert max(fake.sleeps) <= 60.0 and len(fake.sleeps) == 105  # polled in sleeps of 60 s
    assert pause.wait_if_needed() == 0.0  # now clean: the next step runs
    fake.now = T0 + 4.5 * H  # 500 g/kWh until hour 5
    assert pause.wait_if_needed() == pytest.approx(0.5 * H)
    assert (pause.paused_s, pause.pauses) == (pytest.approx(2.25 * H), 2)
    assert pause.describe()["paused_s"] == pytest.approx(2.25 * H)


def test_max_pause_s_bounds_all_pauses_together():
    pause, fake = policy(T0 + 1.0 * H, max_pause_s=1800.0, poll_s=600.0)
    assert pause.wait_if_needed() == pytest.approx(1800.0)
    assert fake.sleeps == [600.0, 600.0, 600.0]
    assert pause.budget_left_s == 0.0
    assert pause.wait_if_needed() == 0.0  # still dirty, but the budget is spent
    assert any("max_pause_s=1800 reached" in note for note in pause.notes)


def test_no_pause_when_nothing_cleaner_is_known():
    pause, fake = policy(T0 + 4.5 * H, threshold=120.0)  # only hour 0 is <= 120, in the past
    assert pause.wait_if_needed() == 0.0 and fake.sleeps == []
    assert "no time at or below the threshold" in pause.notes[0]
    outside, fake = policy(T0 + 7 * H)
    assert outside.wait_if_needed() == 0.0 and fake.sleeps == []
    assert "outside the intensity series" in outside.notes[0]


def test_a_clock_that_does_not_move_cannot_hang_the_run():
    series = IntensitySeries([T0 + i * H for i in range(len(VALUES))], VALUES)
    sleeps = []
    pause = PausePolicy(series, 300.0, clock=lambda: T0 + 1.5 * H, sleep=sleeps.append)
    assert pause.wait_if_needed() == 0.0
    assert len(sleeps) == 3 and "clock did not advance" in pause.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pause_above_g_per_kwh": 0}, r"pause_above_g_per_kwh must be a number > 0 and <= 2000, got 0"),
        ({"pause_above_g_per_kwh": 3000}, r"pause_above_g_per_kwh must be .* got 3000"),
        ({"pause_above_g_per_kwh": 300, "max_pause_s": -1}, r"max_pause_s must be a number > 0, got -1"),
        ({"pause_above_g_per_kwh": 300, "poll_s": 0}, r"poll_s must be a number > 0, got 0"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    series = IntensitySeries([T0, T0 + H], [1, 2])
    with pytest.raises(ValueError, match=message):
        PausePolicy(series, **kwargs)
    with pytest.raises(ValueError, match=r"needs carbon_intensity_series"):
        PausePolicy("grid.csv", 300)
