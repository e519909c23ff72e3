"""Fairness of a comparison: what makes two runs' energy figures not directly comparable.

* ``overlap``: runs that overlapped in time on the same host (a missing hostname counts as
  the same host) measured each other's load on shared sensors.
* ``incomplete``: a run whose status is not ``completed`` covers only the part that ran.
* ``estimated-vs-measured``: a component estimated in one run and measured in another
  (estimates carry +-30-50%).
* ``carbon-settings``: different carbon intensity or PUE: energy compares, emissions do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_green.compare.footprints import Run


@dataclass(frozen=True)
class Flag:
    """A fairness note: ``kind`` (``overlap``, ``incomplete``, ``estimated-vs-measured``,
    ``carbon-settings``), the run names it concerns and a sentence for the reader."""

    kind: str
    runs: tuple[str, ...]
    message: str


def fairness_flags(runs: Sequence[Run]) -> list[Flag]:
    """Overlapping runs on one host, incomplete runs, estimated-vs-measured components,
    differing carbon intensity or PUE."""
    flags = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            ia, ib = a.interval(), b.interval()
            same_host = a.hostname is None or b.hostname is None or a.hostname == b.hostname
            if ia and ib and same_host and ia[0] < ib[1] and ib[0] < ia[1]:
                seconds = min(ia[1], ib[1]) - max(ia[0], ib[0])
                host = a.hostname or b.hostname or "the same host"
                flags.append(Flag("overlap", (a.name, b.name), (
                    f"runs {a.name} and {b.name} overlapped for {seconds:.0f} s on {host}: "
                    "each may have measured the other's load on shared sensors (CPU, RAM, GPU)")))
    for run in runs:
        if run.report.status != "completed":
            flags.append(Flag("incomplete", (run.name,), (
                f"run {run.name} has status {run.report.status!r}: its energy covers only the part "
                "that ran; it is left out of the Pareto front")))
    status = {r.name: r.component_measured() for r in runs}
    for component in sorted({c for s in status.values() for c in s}):
        by_kind: dict[str, list[str]] = {}
        for name, components in status.items():
            if component in components:
                by_kind.setdefault(components[component], []).append(name)
        if len(by_kind) > 1:
            parts = "; ".join(f"{kind} in {', '.join(names)}" for kind, names in sorted(by_kind.items()))
            flags.append(Flag("estimated-vs-measured", tuple(n for ns in by_kind.values() for n in ns), (
                f"{component} energy was {parts}: estimates carry +-30-50% and do not compare "
                "exactly with hardware readings")))
    settings = {(r.report.carbon_intensity_g_per_kwh, r.report.pue) for r in runs}
    if len(settings) > 1:
        flags.append(Flag("carbon-settings", tuple(r.name for r in runs), (
            "runs used different carbon intensity or PUE (see the table): energy compares "
            "directly, emissions do not")))
    return flags
