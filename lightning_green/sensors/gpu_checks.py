"""Checks of a GPU's own readings, free of NVML (``nvml.py`` feeds them what it reads).

* :class:`CrossCheck`: the energy counter against the trapezoid integral of the power
  readings taken next to each counter read. Agreement shows that the board's sensor agrees
  with itself, not that it is accurate: both come from the same on-board measurement (Yang
  et al., "Part-time Power Measurements: nvidia-smi's Lack of Attention", SC24,
  arXiv:2312.02741, found A100/H100 power sampled about 25 % of the time, which both the
  counter and the power reading inherit). A disagreement above 5 % over the run is noted.
* :func:`probe_update_period`: how often a reading changes, polled in a tight loop for a
  fraction of a second.
* :class:`ProcessWatch`: other compute processes on the GPU, whose energy the GPU's
  readings include.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

DISAGREEMENT_LIMIT = 0.05
#: A run shorter than this (or than 20 counter updates) is not compared: the counter moves in
#: steps of one update period, so a short window says nothing about a few percent.
MIN_WINDOW_S = 5.0
MIN_UPDATES = 20
PROBE_POLL_S = 0.002
PROBE_CHANGES = 5


class CrossCheck:
    """Counter joules vs integrated power joules over the same intervals.

    Args:
        power_source: Which reading is integrated (``"instant field 186"`` or ``"1 s average"``).

    :meth:`add` takes each counter read with the power read next to it (None when the power
    read failed: the intervals on both sides of it are left out of both sums).
    """

    def __init__(self, power_source: str) -> None:
        self.power_source = power_source
        self.counter_j = 0.0
        self.power_integral_j = 0.0
        self.window_s = 0.0
        self.reads = 0
        self.power_failures = 0
        self.counter_unchanged = 0
        self._last: tuple[float, float, float | None] | None = None

    def add(self, t_s: float, counter_j: float, power_w: float | None) -> None:
        self.reads += 1
        if power_w is None:
            self.power_failures += 1
        last, self._last = self._last, (t_s, counter_j, power_w)
        if last is None:
            return
        if counter_j == last[1]:
            self.counter_unchanged += 1
        if power_w is None or last[2] is None or t_s <= last[0]:
            return
        self.counter_j += counter_j - last[1]
        self.power_integral_j += 0.5 * (power_w + last[2]) * (t_s - last[0])
        self.window_s += t_s - last[0]

    @property
    def last(self) -> tuple[float, float, float | None] | None:
        """The latest ``(t_s, counter_j, power_w)`` added (power None if its read failed)."""
        return self._last

    def min_window_s(self, update_period_s: float | None) -> float:
        return max(MIN_WINDOW_S, MIN_UPDATES * (update_period_s or 0.0))

    def disagreement_rel(self) -> float | None:
        """``power_integral_j / counter_j - 1``; None when the counter did not move."""
        return self.power_integral_j / self.counter_j - 1.0 if self.counter_j > 0 else None

    def result(self, update_period_s: float | None) -> dict[str, Any]:
        """The figures for the report; ``disagreement_rel`` None when the window is too short."""
        compared = self.window_s >= self.min_window_s(update_period_s)
        return {
            "counter_j": self.counter_j,
            "power_integral_j": self.power_integral_j,
            "disagreement_rel": self.disagreement_rel() if compared else None,
            "power_source": self.power_source,
            "cross_check_window_s": self.window_s,
            "cross_check_reads": self.reads,
            "power_read_failures": self.power_failures,
            "counter_unchanged_reads": self.counter_unchanged,
        }

    def note(self, name: str, update_period_s: float | None) -> str | None:
        """A warning when the two disagree by more than 5 % over a long enough window."""
        rel = self.result(update_period_s)["disagreement_rel"]
        if rel is None or abs(rel) <= DISAGREEMENT_LIMIT:
            return None
        return (
            f"{name}: NVML energy counter {self.counter_j:.1f} J vs integrated {self.power_source} power "
            f"{self.power_integral_j:.1f} J over {self.window_s:.0f} s ({100 * rel:+.1f} %): the GPU's two "
            f"readings disagree by more than {100 * DISAGREEMENT_LIMIT:g} %; the report uses the counter"
        )


def probe_update_period(
    read: Callable[[], float],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    window_s: float,
    *,
    poll_s: float = PROBE_POLL_S,
    changes_wanted: int = PROBE_CHANGES,
) -> tuple[float | None, int]:
    """``(median seconds between changes of read(), changes seen)``, polling every ``poll_s``
    for at most ``window_s``; the period is None with fewer than 3 changes (2 gaps)."""
    if window_s <= 0:
        return None, 0
    began = clock()
    last = read()
    changes: list[float] = []
    while clock() - began < window_s and len(changes) < changes_wanted:
        sleep(poll_s)
        value = read()
        if value != last:
            changes.append(clock())
            last = value
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    return (statistics.median(gaps) if len(gaps) >= 2 else None), len(changes)


class ProcessWatch:
    """Other compute processes on one GPU, checked at most every ``interval_s``.

    Args:
        interval_s: Seconds between checks (each is one NVML call: cheap, but not per read).

    NVML reports pids of the host's PID namespace. In a container this process's pid is then
    absent from the list: when ``own_context`` says this process holds a CUDA context, one
    listed process is taken to be this one and the others are counted, pids unknown.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.checks = 0
        self.other_pids: set[int] = set()
        self.max_others = 0
        self.foreign_namespace = False
        self.error: str | None = None
        self._last_check_s: float | None = None

    def due(self, now_s: float) -> bool:
        return self._last_check_s is None or now_s - self._last_check_s >= self.interval_s

    def failed(self, now_s: float, reason: str) -> None:
        self._last_check_s = now_s
        self.error = reason

    def record(self, now_s: float, pids: Iterable[int], own_pid: int, own_context: bool) -> str | None:
        """Record one check of the pids NVML lists; returns a note the first time other
        processes are seen. ``own_pid``: this process (read at each check: a sensor may be
        pickled to another process)."""
        self._last_check_s = now_s
        self.checks += 1
        listed = set(pids)
        seen_before = self.max_others
        if own_pid in listed or not own_context:
            others = listed - {own_pid}
            self.other_pids |= others
            count = len(others)
        else:
            self.foreign_namespace = True
            count = max(0, len(listed) - 1)
        self.max_others = max(self.max_others, count)
        if count == 0 or seen_before > 0:
            return None
        which = (f"pids {', '.join(str(p) for p in sorted(listed - {own_pid}))}" if not self.foreign_namespace
                 else "pids from another PID namespace")
        return (f"{count} other compute process(es) ran on this GPU ({which}): its energy readings "
                f"include theirs")

    def result(self) -> dict[str, Any]:
        return {
            "other_processes": sorted(self.other_pids),
            "other_process_count_max": self.max_others,
            "process_checks": self.checks,
            "process_check_error": self.error,
        }
