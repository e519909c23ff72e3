"""Carbon-aware pausing: between steps, wait while the grid is dirtier than a threshold.

:class:`PausePolicy` is pure: it reads a clock and calls a sleep function it is given
(``time.time`` and ``time.sleep`` by default; fakes in tests), so the caller decides where
it runs. Rules of :meth:`PausePolicy.wait_if_needed`:

* intensity at ``clock()`` <= ``pause_above_g_per_kwh``: no pause;
* above it: sleep until the first later time *in the series* when intensity is at or below
  the threshold (the series is a forecast or a known schedule), in sleeps of at most
  ``poll_s``, re-reading the clock after each;
* no pause when ``clock()`` is outside the series, or the series has no cleaner time before
  it ends (pausing would be waiting for something nobody predicted);
* all pauses of a run together stop at ``max_pause_s`` (default 24 h), so a run is never
  stalled indefinitely; after that it trains on without pausing.

The time paused is measured with the clock (not the requested sleeps) and kept in
:attr:`PausePolicy.paused_s` for the report. Under DDP every rank must pause together: call
it on rank 0 and broadcast, or call it on every rank with one shared clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lightning_green.carbon.intensity import MAX_G_PER_KWH
from lightning_green.carbon.series import IntensitySeries
from lightning_green.validation import check_number

__all__ = ["DEFAULT_MAX_PAUSE_S", "DEFAULT_POLL_S", "PausePolicy"]

DEFAULT_MAX_PAUSE_S = 86_400.0
DEFAULT_POLL_S = 60.0
_STUCK_CLOCK_SLEEPS = 3  # sleeps in a row that do not move the clock end the pause


class PausePolicy:
    """Decides, between steps, whether to sleep until the grid is cleaner (see module docstring).

    Args:
        series: The intensity series (a forecast or schedule covering the run).
        pause_above_g_per_kwh: Pause while intensity is above this, g CO2e/kWh, in (0, 2000].
        max_pause_s: Most seconds paused over the whole run, > 0.
        poll_s: Longest single sleep, > 0.
        clock: Returns unix seconds (the series' time base).
        sleep: Sleeps the given seconds.

    Attributes:
        paused_s: Seconds paused so far, by the clock.
        pauses: Number of pauses.
        notes: Why pausing was skipped or stopped (each reason once), for the report.
    """

    def __init__(
        self,
        series: IntensitySeries,
        pause_above_g_per_kwh: float,
        *,
        max_pause_s: float = DEFAULT_MAX_PAUSE_S,
        poll_s: float = DEFAULT_POLL_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not isinstance(series, IntensitySeries):
            raise ValueError(f"pause_above_g_per_kwh needs carbon_intensity_series (an IntensitySeries), got {series!r}")
        self.series = series
        self.threshold_g_per_kwh = float(check_number(
            "pause_above_g_per_kwh", pause_above_g_per_kwh, exclusive_minimum=0.0, maximum=MAX_G_PER_KWH))
        self.max_pause_s = float(check_number("max_pause_s", max_pause_s, exclusive_minimum=0.0))
        self.poll_s = float(check_number("poll_s", poll_s, exclusive_minimum=0.0))
        self.clock = clock
        self.sleep = sleep
        self.paused_s = 0.0
        self.pauses = 0
        self.notes: list[str] = []

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def budget_left_s(self) -> float:
        """Seconds of pausing left before ``max_pause_s`` is reached."""
        return max(0.0, self.max_pause_s - self.paused_s)

    def wait_if_needed(self) -> float:
        """Sleep while the grid is above the threshold (rules above); return the seconds paused."""
        now = self.clock()
        if self.budget_left_s <= 0.0:
            return 0.0
        if not self.series.covers(now):
            self._note("not paused outside the intensity series' time range")
            return 0.0
        if self.series.intensity_at(now) <= self.threshold_g_per_kwh:
            return 0.0
        resume_at = self.series.next_at_or_below(self.threshold_g_per_kwh, now)
        if resume_at is None:
            self._note("not paused: the series has no time at or below the threshold before it ends")
            return 0.0
        deadline = min(resume_at, now + self.budget_left_s)
        start, stuck = now, 0
        while now < deadline and stuck < _STUCK_CLOCK_SLEEPS:
            self.sleep(min(self.poll_s, deadline - now))
            later = self.clock()
            stuck = stuck + 1 if later <= now else 0
            now = later
        if stuck >= _STUCK_CLOCK_SLEEPS:
            self._note("pause ended early: the clock did not advance while sleeping")
        paused = max(0.0, now - start)
        self.paused_s += paused
        self.pauses += 1
        if self.budget_left_s <= 0.0:
            self._note(f"max_pause_s={self.max_pause_s:g} reached: no more pauses this run")
        return paused

    def describe(self) -> dict[str, Any]:
        """Plain figures for the report: ``paused_s`` and how pausing was set up."""
        return {
            "paused_s": self.paused_s,
            "pauses": self.pauses,
            "pause_above_g_per_kwh": self.threshold_g_per_kwh,
            "max_pause_s": self.max_pause_s,
            "notes": list(self.notes),
        }
