"""Many footprints -> one comparison: rows, baseline deltas, Pareto front, fairness flags.

Pure Python (no matplotlib): the plots and the ``lightning-green compare`` command live in
:mod:`lightning_green.compare.plots`, which re-exports everything public here.

A *run* is a folder holding a ``footprint.json`` (and usually ``steps.csv``) written by
:class:`~lightning_green.EnergyCallback`. Energy is compared as IT energy (before PUE), so
runs with different carbon settings stay comparable on energy; emissions are not, and the
comparison says so.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning_green.compare.fairness import Flag, fairness_flags
from lightning_green.validation import check_choice

FOOTPRINT_NAME = "footprint.json"
BYS = ("energy", "emissions")
METRIC_MODES = ("auto", "max", "min")
# Default main metric: the first of these present in any run's metrics.
METRIC_CANDIDATES = (
    "val/acc", "val_acc", "val/accuracy", "val_accuracy", "val/f1", "val_f1",
    "val/loss", "val_loss",
)
_LOWER_IS_BETTER = {"loss", "error", "err", "nll", "perplexity", "ppl", "mse", "mae", "rmse", "wer", "cer"}
_COMPONENT_ORDER = ("gpu", "cpu", "ram")
_FP32 = {"32", "32-true", "fp32", "float32", "full", "none", "null", ""}


@dataclass
class Run:
    """One run folder: its name, its directory and its footprint (a FootprintReport)."""

    name: str
    path: Path
    report: Any

    @property
    def steps_path(self) -> Path:
        return self.path / "steps.csv"

    @property
    def overrides(self) -> dict[str, str]:
        """``key=value`` command-line overrides as a dict (``+``/``~`` prefixes dropped)."""
        pairs = (str(o).split("=", 1) for o in (self.report.overrides or []) if "=" in str(o))
        return {k.lstrip("+~"): v for k, v in pairs}

    def energy_kwh_by_component(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in (self.report.energy_kwh_by_component or {}).items()}

    def component_measured(self) -> dict[str, str]:
        """Per component: ``"measured"``, ``"estimated"`` or ``"mixed"`` (from ``sensors``)."""
        seen: dict[str, set[bool]] = {}
        for sensor in self.report.sensors or []:
            if isinstance(sensor, dict) and "component" in sensor:
                seen.setdefault(str(sensor["component"]), set()).add(bool(sensor.get("measured", True)))
        names = {frozenset({True}): "measured", frozenset({False}): "estimated"}
        return {c: names.get(frozenset(m), "mixed") for c, m in seen.items()}

    def metric(self, name: str | None) -> float | None:
        value = (self.report.metrics or {}).get(name) if name else None
        return float(value) if _finite(value) else None

    def interval(self) -> tuple[float, float] | None:
        """(start, end) as unix seconds, or None when the footprint lacks the times."""
        start = _parse_time(self.report.started_at)
        if start is None:
            return None
        end = _parse_time(self.report.ended_at)
        if end is None:
            end = start + float(self.report.duration_s or 0.0)
        return start, end

    @property
    def hostname(self) -> str | None:
        return (self.report.context or {}).get("hostname") or None


@dataclass
class Comparison:
    """The result of :func:`compare`. ``rows`` are CSV-ready dicts in ``columns`` order."""

    runs: list[Run]
    rows: list[dict[str, Any]]
    columns: list[str]
    baseline: Run | None
    flags: list[Flag]
    metric: str | None
    maximize: bool
    by: str
    pareto: list[Run]
    override_keys: list[str]
    components: list[str]
    measured: dict[str, dict[str, str]] = field(default_factory=dict)  # run -> component -> status


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _find_footprints(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # .pl_hydra_*, .hydra, .git
        if FOOTPRINT_NAME in filenames:
            yield Path(folder) / FOOTPRINT_NAME


def load_runs(paths: Sequence[str | os.PathLike]) -> list[Run]:
    """Every footprint.json under ``paths`` (folders searched recursively, or files).

    Hidden folders (``.pl_hydra_*``, ``.hydra``) are not searched. A corrupt or foreign
    footprint.json is skipped with one line on stderr. Runs are named by their folder
    relative to the path given, and sorted naturally (``2`` before ``10``).
    """
    from lightning_green.outputs.footprint import ReportError, read_footprint

    found: dict[Path, tuple[Path, Path]] = {}
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            print(f"lightning-green compare: skipped {root}: no such file or folder", file=sys.stderr)
            continue
        for footprint in _find_footprints(root):
            found.setdefault(footprint.resolve(), (root, footprint))
    runs = []
    for root, footprint in found.values():
        try:
            report = read_footprint(footprint)
        except (ReportError, OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            print(f"lightning-green compare: skipped {footprint}: {err}", file=sys.stderr)
            continue
        folder = footprint.parent
        base = root if root.is_dir() else root.parent
        name = folder.relative_to(base).as_posix() if folder != base else folder.resolve().name
        runs.append(Run(name=name, path=folder, report=report))
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder names under different roots
        common = Path(os.path.commonpath([r.path.resolve() for r in runs]))
        for run in runs:
            run.name = run.path.resolve().relative_to(common).as_posix() or run.path.name
    return sorted(runs, key=lambda r: _natural_key(r.name))


def choose_metric(runs: Sequence[Run], metric: str | None = None) -> str | None:
    """``metric`` if given, else the first of METRIC_CANDIDATES present, else any ``val*``."""
    if metric:
        return metric
    present = {k for r in runs for k, v in (r.report.metrics or {}).items() if _finite(v)}
    for name in METRIC_CANDIDATES:
        if name in present:
            return name
    val = sorted(k for k in present if k.startswith("val"))
    return val[0] if val else None


def metric_maximized(metric: str | None, mode: str = "auto") -> bool:
    """True when a higher value is better: ``max``, or ``auto`` unless loss-like."""
    check_choice("metric_mode", mode, METRIC_MODES)
    if mode != "auto":
        return mode == "max"
    tokens = set(re.split(r"[^a-z0-9]+", (metric or "").lower()))
    return not tokens & _LOWER_IS_BETTER


def pareto_front(points: Sequence[tuple[float, float]], maximize: bool = True) -> list[int]:
    """Indices of points not dominated when minimising x and maximising (or minimising) y."""
    sign = 1.0 if maximize else -1.0
    front = []
    for i, (xi, yi) in enumerate(points):
        dominated = any(
            xj <= xi and sign * yj >= sign * yi and (xj < xi or sign * yj > sign * yi)
            for j, (xj, yj) in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def _is_default_baseline(run: Run) -> bool:
    overrides = run.overrides
    config = run.report.config if isinstance(run.report.config, dict) else {}
    precision = overrides.get("precision", (run.report.context or {}).get("precision", config.get("precision")))
    pruning = overrides.get("pruning", config.get("pruning"))
    if isinstance(pruning, dict):
        pruning = pruning.get("name", pruning.get("mode", pruning.get("method")))
    return str(precision).lower() in _FP32 and str(pruning).lower() in {"none", "null", ""}


def choose_baseline(runs: Sequence[Run], baseline: str | None = None) -> Run | None:
    """The run named ``baseline`` (folder name, or overrides such as ``"precision=32 pruning=none"``);
    by default the fp32 / no-pruning run, else the first run."""
    if not runs:
        return None
    if baseline is None:  # a completed fp32 / no-pruning run, else any such run, else the first
        defaults = [r for r in runs if _is_default_baseline(r)]
        return ([r for r in defaults if r.report.status == "completed"] or defaults or list(runs))[0]
    for run in runs:
        if baseline in (run.name, run.path.name):
            return run
    wanted = dict(t.split("=", 1) for t in baseline.replace(",", " ").split() if "=" in t)
    for run in runs:
        if wanted and all(run.overrides.get(k.lstrip("+~")) == v for k, v in wanted.items()):
            return run
    known = ", ".join(repr(r.name) for r in runs)
    raise ValueError(f"baseline must be a run folder name ({known}) or overrides like 'precision=32', got {baseline!r}")


def _pct(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or not _finite(value) or not _finite(base) or base == 0:
        return None
    return (value - base) / base * 100.0


def order_components(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [c for c in _COMPONENT_ORDER if c in names] + sorted(names - set(_COMPONENT_ORDER))


def compare(
    runs: Sequence[Run],
    baseline: str | None = None,
    metric: str | None = None,
    *,
    by: str = "energy",
    metric_mode: str = "auto",
) -> Comparison:
    """Tabulate ``runs``: one row each, deltas against the baseline, Pareto front, flags.

    Args:
        runs: From :func:`load_runs`.
        baseline: Folder name or override string of the baseline run; None picks the
            fp32 / no-pruning run, else the first.
        metric: Main validation metric; None picks the first of METRIC_CANDIDATES found.
        by: ``"energy"`` or ``"emissions"``: the cost axis of the Pareto front.
        metric_mode: ``"auto"`` (loss-like names minimised), ``"max"`` or ``"min"``.
    """
    check_choice("by", by, BYS)
    runs = list(runs)
    base = choose_baseline(runs, baseline)
    metric = choose_metric(runs, metric)
    maximize = metric_maximized(metric, metric_mode)
    parsed = [r.overrides for r in runs]
    keys = [k for k in dict.fromkeys(k for p in parsed for k in p) if len({p.get(k) for p in parsed}) > 1]
    components = order_components(c for r in runs for c in r.energy_kwh_by_component())
    cost = {r.name: (r.report.energy_kwh if by == "energy" else r.report.emissions_kg) for r in runs}
    candidates = [r for r in runs if r.report.status == "completed" and _finite(cost[r.name]) and r.metric(metric) is not None]
    front_idx = pareto_front([(cost[r.name], r.metric(metric)) for r in candidates], maximize)
    pareto = [candidates[i] for i in front_idx]
    flags = fairness_flags(runs)
    b = base.report if base else None
    rows = []
    for run, overrides in zip(runs, parsed):
        rep = run.report
        per_component = run.energy_kwh_by_component()
        per_sample = rep.energy_per_sample_j
        if not _finite(per_sample) and rep.samples:
            per_sample = float(rep.energy_kwh) * 3.6e6 / rep.samples
        value, base_value = run.metric(metric), base.metric(metric) if base else None
        row: dict[str, Any] = {"run": run.name}
        row.update({k: overrides.get(k, "") for k in keys})
        row.update({
            "status": rep.status,
            "duration_s": rep.duration_s,
            "energy_kwh": rep.energy_kwh,
            **{f"{c}_kwh": per_component.get(c) for c in components},
            "energy_per_sample_j": per_sample if _finite(per_sample) else None,
            "emissions_kg": rep.emissions_kg,
            **({metric: value} if metric else {}),
            "carbon_intensity_g_per_kwh": rep.carbon_intensity_g_per_kwh,
            "pue": rep.pue,
            "energy_vs_baseline_pct": _pct(rep.energy_kwh, b.energy_kwh if b else None),
            "emissions_vs_baseline_pct": _pct(rep.emissions_kg, b.emissions_kg if b else None),
            **({f"{metric}_vs_baseline": None if value is None or base_value is None else value - base_value}
               if metric else {}),
            "baseline": run is base,
            "pareto": run in pareto,
            "flags": ";".join(dict.fromkeys(f.kind for f in flags if run.name in f.runs)),
            "path": str(run.path),
        })
        rows.append(row)
    columns = list(rows[0]) if rows else []
    return Comparison(
        runs=runs, rows=rows, columns=columns, baseline=base, flags=flags, metric=metric,
        maximize=maximize, by=by, pareto=pareto, override_keys=keys, components=components,
        measured={r.name: r.component_measured() for r in runs},
    )
