"""Repeats: runs of one configuration (differing only in ``seed``) pooled into one row.

A *configuration* is the set of override values that tell runs apart, except repeat keys
(``seed``, or any key whose last dotted part is ``seed``). Runs with the same configuration
form a :class:`Group` with, for each figure, the mean, the sample standard deviation, the
min-max range and the count. ``group_by=["precision"]`` instead forms groups by those keys'
values only (everything else pooled).

**Run-to-run noise.** A configuration's difference from the baseline configuration,
``mean - mean_baseline``, is *within run-to-run noise* when it is smaller than the spread of
a difference between one run of each: ``sqrt(std^2 + std_baseline^2)``. A configuration run
once borrows the other's std (same noise assumed); with no repeats anywhere the noise is
unknown and nothing is flagged (the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_green.compare.footprints import Run, finite

__all__ = ["Group", "Stat", "group_runs", "is_repeat_key", "noise_check"]

REPEAT_KEYS = ("seed",)


def is_repeat_key(key: str) -> bool:
    """``seed``, ``data.seed``, ``+seed``: keys whose runs are repeats of one configuration."""
    return key.lstrip("+~").split(".")[-1] in REPEAT_KEYS


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (None for one value), min, max and count."""

    mean: float
    std: float | None
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[Any]) -> Stat | None:
        xs = [float(v) for v in values if finite(v)]
        if not xs:
            return None
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
        return cls(mean, std, min(xs), max(xs), len(xs))


@dataclass
class Group:
    """Runs of one configuration: ``config`` maps each group key to its (canonical) value."""

    name: str
    config: dict[str, str]
    runs: list[Run]
    stats: dict[str, Stat] = field(default_factory=dict)
    vs_baseline: dict[str, float | None] = field(default_factory=dict)
    noise: dict[str, float | None] = field(default_factory=dict)  # figure -> spread of a difference
    within_noise: list[str] = field(default_factory=list)
    pareto: bool = False

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def completed(self) -> bool:
        return all(r.report.status == "completed" for r in self.runs)


def group_runs(runs: Sequence[Run], keys: Sequence[str], group_by: Sequence[str] | None = None) -> tuple[list[str], list[Group]]:
    """(group keys, groups in first-seen order).

    Args:
        runs: The runs, in table order.
        keys: The override keys that tell runs apart.
        group_by: Keys to group by; None: every key in ``keys`` except repeat keys.

    Raises:
        ValueError: A ``group_by`` key that is no run's override (names the known ones).
    """
    if group_by is None:
        group_keys = [k for k in keys if not is_repeat_key(k)]
    else:
        known = sorted({k for r in runs for k in r.overrides})
        for key in group_by:
            if key not in known:
                raise ValueError(f"group_by must name override keys of the runs ({', '.join(known) or 'none'}), got {key!r}")
        group_keys = list(dict.fromkeys(group_by))
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        values = run.canonical_overrides
        config = {k: values.get(k, "") for k in group_keys}
        key = tuple(config.values())
        if key not in groups:
            groups[key] = Group(name=f"c{len(groups) + 1}", config=config, runs=[])
        groups[key].runs.append(run)
    return group_keys, list(groups.values())


def fill_stats(group: Group, figures: dict[str, Callable[[Run], Any]]) -> None:
    """Compute ``group.stats[name]`` for each figure (a function of a run)."""
    for name, get in figures.items():
        stat = Stat.of([get(r) for r in group.runs])
        if stat is not None:
            group.stats[name] = stat


def noise_check(a: Stat | None, b: Stat | None) -> tuple[float | None, float | None]:
    """(difference of means a - b, spread of a one-run difference) or Nones when unknown."""
    if a is None or b is None:
        return None, None
    sa, sb = a.std, b.std
    if sa is None and sb is None:
        return a.mean - b.mean, None
    sa, sb = (sb if sa is None else sa), (sa if sb is None else sb)
    return a.mean - b.mean, math.hypot(sa, sb)


def compare_groups(groups: Sequence[Group], base: Group | None, figures: Sequence[str]) -> None:
    """Fill each group's ``vs_baseline``, ``noise`` and ``within_noise`` for ``figures``."""
    for group in groups:
        for name in figures:
            diff, spread = noise_check(group.stats.get(name), base.stats.get(name) if base else None)
            group.vs_baseline[name] = diff
            group.noise[name] = spread
            if group is not base and diff is not None and spread is not None and abs(diff) < spread:
                group.within_noise.append(name)
