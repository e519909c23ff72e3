"""Time-varying grid carbon intensity, offline: emissions of energy spent at given times.

A series is a list of ``(t_i, g_i)``: intensity ``g_i`` g CO2e/kWh holds over ``[t_i, t_{i+1})``
(the value written at a timestamp is the one for the period that *starts* there, as in grid
operators' and Electricity Maps' hourly exports). The last value holds for one more
*resolution* (the series' median spacing), so an hourly series ending at 23:00 covers until
midnight. The covered range is ``[start_unix, end_unix)``.

Rules checked at construction (each error names the argument, what is allowed and the row):

* at least two rows; timestamps strictly increasing (an equal timestamp is a duplicate, a
  smaller one is out of order) and within 1970-2100 (a larger number is likely milliseconds);
* values finite, >= 0 and <= ``MAX_G_PER_KWH`` (2000, above the dirtiest grid in codecarbon's
  data, 1306 g/kWh: a larger value is a unit slip such as mg/kWh or lb/MWh);
* no gap: no spacing longer than ``max_gap_s``, which defaults to 1.5 x the median spacing,
  so one missing row of a regular series is a gap. Pass ``max_gap_s`` to accept an irregular
  series (the previous value is then held across the longer interval).

Outside the covered range the edge values are held, with one :class:`CarbonWarning` per
series, and :meth:`IntensitySeries.uncovered_s` says how many seconds were priced that way.
(:func:`lightning_green.carbon.options.validate_carbon_options` refuses a series that does
not cover the moment a run is set up.)

Energy over an interval ``[t0, t1)`` is assumed spread evenly over it, so its emissions are
``energy x PUE x mean intensity over [t0, t1)``: an interval across a boundary is split in
proportion to time. Example::

    series = IntensitySeries([0, 3600, 7200], [100, 300, 200])   # hourly, covers [0, 3 h)
    series.integrate(1800, 5400, 3.6e6, pue=1.0)  # 1 kWh, half at 100, half at 300 -> 200.0 g
"""

from __future__ import annotations

import bisect
import math
import os
import warnings
from datetime import datetime, timezone
from typing import Any, NamedTuple

import numpy as np

from lightning_green.carbon.intensity import MAX_G_PER_KWH, CarbonWarning
from lightning_green.carbon.series_csv import read_intensity_csv
from lightning_green.validation import check_number

__all__ = ["ARG", "IntensitySeries", "IntensityWindow", "J_PER_KWH", "MAX_UNIX_S", "iso_utc"]

ARG = "carbon_intensity_series"
J_PER_KWH = 3.6e6
MAX_UNIX_S = 4_102_444_800.0  # 2100-01-01T00:00Z: beyond it a timestamp is likely in milliseconds
GAP_FACTOR = 1.5


class IntensityWindow(NamedTuple):
    """A window of the series and its mean intensity (time-weighted, g CO2e/kWh)."""

    start_unix: float
    end_unix: float
    mean_g_per_kwh: float


def iso_utc(t: float) -> str:
    """``t`` (unix seconds) as ISO 8601 UTC with a ``Z`` (its repr if out of range)."""
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return repr(t)


class IntensitySeries:
    """Grid carbon intensity over time; see the module docstring for semantics and rules.

    Args:
        t_unix: Timestamps, unix seconds, strictly increasing.
        g_per_kwh: Intensity in g CO2e/kWh holding from each timestamp to the next.
        max_gap_s: Longest accepted spacing between rows; default 1.5 x the median spacing.
        path: The file the series came from (recorded in :meth:`describe`).
        column: The column the values came from (recorded in :meth:`describe`).
        lines: File line of each row, used in error messages.
        arg: Argument name used in error messages.

    Raises:
        ValueError: The series breaks a rule above; the message names ``arg`` and the row.
    """

    __slots__ = ("t_unix", "g_per_kwh", "end_unix", "resolution_s", "max_gap_s", "path", "column",
                 "_bounds", "_cum", "_values", "_warned")

    def __init__(
        self,
        t_unix: Any,
        g_per_kwh: Any,
        *,
        max_gap_s: float | None = None,
        path: str | None = None,
        column: str | None = None,
        lines: Any = None,
        arg: str = ARG,
    ) -> None:
        where = f" ({path})" if path else ""

        def row(i: int) -> str:
            return f"line {lines[i]}" if lines is not None else f"row {i + 1}"

        def fail(what: str) -> ValueError:
            return ValueError(f"`{arg}`{where}: {what}")

        t = np.asarray(t_unix, dtype=np.float64).ravel()
        g = np.asarray(g_per_kwh, dtype=np.float64).ravel()
        if t.size != g.size:
            raise fail(f"{t.size} timestamps but {g.size} values")
        if t.size < 2:
            raise fail(f"needs at least 2 rows to know its time resolution, got {t.size}")
        bad = np.nonzero(~(np.isfinite(t) & (t >= 0.0) & (t < MAX_UNIX_S)))[0]
        if bad.size:
            i = int(bad[0])
            raise fail(f"{row(i)}: timestamp must be unix seconds in [0, {MAX_UNIX_S:.0f}) "
                       f"(1970-2100; milliseconds are too large), got {float(t[i])!r}")
        bad = np.nonzero(~(np.isfinite(g) & (g >= 0.0) & (g <= MAX_G_PER_KWH)))[0]
        if bad.size:
            i = int(bad[0])
            raise fail(f"{row(i)}: intensity must be a finite number of g CO2e/kWh in [0, "
                       f"{MAX_G_PER_KWH:g}], got {float(g[i])!r}")
        step = np.diff(t)
        if (step <= 0).any():
            i = int(np.nonzero(step <= 0)[0][0]) + 1
            kind = "duplicate timestamp" if step[i - 1] == 0 else "timestamps out of order"
            raise fail(f"{row(i)}: {kind}: {iso_utc(t[i])} after {iso_utc(t[i - 1])} ({row(i - 1)}); "
                       "timestamps must be strictly increasing")
        resolution = float(np.median(step))
        limit = GAP_FACTOR * resolution if max_gap_s is None else float(
            check_number("max_gap_s", max_gap_s, exclusive_minimum=0.0))
        gaps = np.nonzero(step > limit)[0]
        if gaps.size:
            i = int(gaps[0]) + 1
            rule = (f"{GAP_FACTOR:g} x the median spacing {resolution:g} s" if max_gap_s is None
                    else f"max_gap_s={limit:g}")
            raise fail(f"gap of {step[i - 1]:g} s between {row(i - 1)} ({iso_utc(t[i - 1])}) and {row(i)} "
                       f"({iso_utc(t[i])}): longer than {rule}; fill the missing rows, or pass max_gap_s "
                       "to hold the previous value across it")
        self.t_unix = t
        self.g_per_kwh = g
        self.resolution_s = resolution
        self.max_gap_s = limit
        self.end_unix = float(t[-1] + resolution)
        self.path = path
        self.column = column
        self._bounds = [*t.tolist(), self.end_unix]  # Python floats: fast bisect on the scalar path
        self._values = g.tolist()
        widths = np.diff(np.asarray(self._bounds))
        self._cum = np.concatenate(([0.0], np.cumsum(g * widths)))  # g/kWh x s from start to each bound
        self._warned = False

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        max_gap_s: float | None = None,
        intensity_column: str | None = None,
        arg: str = ARG,
    ) -> IntensitySeries:
        """Load a series from a CSV file (formats: :mod:`lightning_green.carbon.series_csv`).

        Raises:
            ValueError: The file cannot be read or parsed, or the series breaks a rule.
        """
        parsed = read_intensity_csv(path, intensity_column=intensity_column, arg=arg)
        return cls(parsed.t_unix, parsed.g_per_kwh, max_gap_s=max_gap_s, path=os.fspath(path),
                   column=parsed.column, lines=parsed.lines, arg=arg)

    # ---- lookups ---------------------------------------------------------------------------

    @property
    def start_unix(self) -> float:
        """Start of the covered range (the first timestamp)."""
        return float(self.t_unix[0])

    def covers(self, t_unix: float) -> bool:
        """Whether ``t_unix`` lies in ``[start_unix, end_unix)``."""
        return self.start_unix <= t_unix < self.end_unix

    def _segment(self, t: float) -> int:
        k = bisect.bisect_right(self._bounds, t) - 1
        return min(max(k, 0), len(self._values) - 1)

    def _note_outside(self, t0: float, t1: float) -> None:
        if not self._warned and (t0 < self.start_unix or t1 > self.end_unix or t0 >= self.end_unix):
            self._warned = True
            warnings.warn(
                f"{ARG} covers {iso_utc(self.start_unix)} to {iso_utc(self.end_unix)}; energy at "
                f"{iso_utc(t0 if t0 < self.start_unix else max(t0, min(t1, self.end_unix)))} is priced at the series' edge value "
                "(held). The report states the seconds outside the series (uncovered_s).",
                CarbonWarning, stacklevel=3,
            )

    def intensity_at(self, t_unix: float) -> float:
        """Intensity (g CO2e/kWh) at ``t_unix``; the edge value outside the covered range."""
        self._note_outside(t_unix, t_unix)
        return self._values[self._segment(t_unix)]

    def mean_g_per_kwh(self, t0_unix: float, t1_unix: float) -> float:
        """Time-weighted mean intensity over ``[t0, t1)`` (the value at ``t0`` when they are equal)."""
        if not (math.isfinite(t0_unix) and math.isfinite(t1_unix) and t1_unix >= t0_unix):
            raise ValueError(f"interval must be finite with t1_unix >= t0_unix, got t0={t0_unix!r}, t1={t1_unix!r}")
        self._note_outside(t0_unix, t1_unix)
        ka, kb = self._segment(t0_unix), self._segment(t1_unix)
        g, b = self._values, self._bounds
        if ka == kb:
            return g[ka]
        inner = float(self._cum[kb] - self._cum[ka + 1])
        return (g[ka] * (b[ka + 1] - t0_unix) + inner + g[kb] * (t1_unix - b[kb])) / (t1_unix - t0_unix)

    def integrate(self, t0_unix: float, t1_unix: float, energy_j: float, *, pue: float) -> float:
        """Emissions (g CO2e) of ``energy_j`` of IT energy spent evenly over ``[t0, t1)``.

        ``energy_j / 3.6e6 x pue x mean intensity over [t0, t1)``.
        """
        energy = check_number("energy_j", energy_j, minimum=0.0)
        return energy / J_PER_KWH * check_number("pue", pue, minimum=1.0) * self.mean_g_per_kwh(t0_unix, t1_unix)

    def mean_g_per_kwh_many(self, t0_unix: Any, t1_unix: Any) -> np.ndarray:
        """:meth:`mean_g_per_kwh` over many intervals at once (numpy arrays of equal length)."""
        a = np.asarray(t0_unix, dtype=np.float64)
        b = np.asarray(t1_unix, dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"t0_unix and t1_unix must have one shape, got {a.shape} and {b.shape}")
        if a.size == 0:
            return np.zeros(a.shape)
        if not (np.isfinite(a).all() and np.isfinite(b).all() and (b >= a).all()):
            raise ValueError("intervals must be finite with t1_unix >= t0_unix")
        self._note_outside(float(a.min()), float(b.max()))
        bounds = np.asarray(self._bounds)
        last = self.g_per_kwh.size - 1
        ka = np.clip(np.searchsorted(bounds, a, side="right") - 1, 0, last)
        kb = np.clip(np.searchsorted(bounds, b, side="right") - 1, 0, last)
        g = self.g_per_kwh
        same = ka == kb
        width = np.where(same, 1.0, b - a)  # no division by 0 for zero-length intervals (same segment)
        split = (g[ka] * (bounds[ka + 1] - a) + (self._cum[kb] - self._cum[ka + 1])
                 + g[kb] * (b - bounds[kb])) / width
        return np.where(same, g[ka], split)

    def emissions_g(self, t0_unix: Any, t1_unix: Any, energy_j: Any, *, pue: float) -> np.ndarray:
        """Emissions (g CO2e) of each interval's IT energy: vectorised :meth:`integrate`.

        Args:
            t0_unix, t1_unix: Start and end of each interval (unix seconds), arrays of one shape.
            energy_j: IT energy of each interval (J), >= 0.
            pue: Power usage effectiveness applied to every interval.
        """
        energy = np.asarray(energy_j, dtype=np.float64)
        if not (np.isfinite(energy).all() and (energy >= 0).all()):
            raise ValueError("energy_j must be finite and >= 0 for every interval")
        factor = check_number("pue", pue, minimum=1.0) / J_PER_KWH
        return energy * factor * self.mean_g_per_kwh_many(t0_unix, t1_unix)

    def uncovered_s(self, t0_unix: float, t1_unix: float) -> float:
        """Seconds of ``[t0, t1)`` outside the covered range (priced at an edge value)."""
        before = max(0.0, min(t1_unix, self.start_unix) - t0_unix)
        after = max(0.0, t1_unix - max(t0_unix, self.end_unix))
        return before + after

    def next_at_or_below(self, threshold_g_per_kwh: float, t_unix: float) -> float | None:
        """First time after ``t_unix`` within the series when intensity is <= the threshold.

        ``t_unix`` itself if it already is; None when no such time comes before the series ends.
        """
        if not self.covers(t_unix):
            return None
        k = self._segment(t_unix)
        if self._values[k] <= threshold_g_per_kwh:
            return t_unix
        later = np.nonzero(self.g_per_kwh[k + 1:] <= threshold_g_per_kwh)[0]
        return None if later.size == 0 else self._bounds[k + 1 + int(later[0])]

    def cleanest_window(self, duration_s: float) -> IntensityWindow:
        """The window of ``duration_s`` inside the series with the lowest mean intensity.

        The mean over a sliding window is piecewise linear in its start, so its minimum is at a
        start where the window's start or end meets a boundary; every such start is tried and
        the earliest of equal minima returned. What-if use: a run of that length at constant
        power emits ``energy x PUE x mean_g_per_kwh`` there.

        Raises:
            ValueError: ``duration_s`` <= 0 or longer than the series covers.
        """
        span = self.end_unix - self.start_unix
        d = float(check_number("duration_s", duration_s, exclusive_minimum=0.0, maximum=span))
        bounds = np.asarray(self._bounds)
        starts = np.unique(np.clip(np.concatenate((bounds, bounds - d)), self.start_unix, self.end_unix - d))
        means = self.mean_g_per_kwh_many(starts, starts + d)
        best = float(means.min())
        i = int(np.nonzero(means <= best + 1e-9 * max(best, 1.0))[0][0])
        return IntensityWindow(float(starts[i]), float(starts[i] + d), float(means[i]))

    def describe(self) -> dict[str, Any]:
        """Plain figures for the report (``carbon_intensity_series`` in footprint.json)."""
        return {
            "path": self.path,
            "column": self.column,
            "rows": int(self.g_per_kwh.size),
            "start": iso_utc(self.start_unix),
            "end": iso_utc(self.end_unix),
            "resolution_s": self.resolution_s,
            "max_gap_s": self.max_gap_s,
            "min_g_per_kwh": float(self.g_per_kwh.min()),
            "max_g_per_kwh": float(self.g_per_kwh.max()),
            "mean_g_per_kwh": self.mean_g_per_kwh(self.start_unix, self.end_unix),
        }

    def __repr__(self) -> str:
        return (f"IntensitySeries({self.g_per_kwh.size} rows, {iso_utc(self.start_unix)} to "
                f"{iso_utc(self.end_unix)}, {self.resolution_s:g} s, path={self.path!r})")
