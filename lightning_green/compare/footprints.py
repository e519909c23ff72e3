"""Runs as compare sees them: a footprint.json read from disk, its overrides and its work.

A *run* is a folder holding a ``footprint.json`` (and usually ``steps.csv``) written by
:class:`~lightning_green.EnergyCallback`. :class:`Run` keeps both the parsed
:class:`~lightning_green.outputs.footprint.FootprintReport` and the JSON as written, so that
fields newer than the installed report class (``energy_kwh_range``, ``work_by_phase``,
``embodied_kg``, ...) are read from the file, and files older than them read as "absent".
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_green.units import unix_time

__all__ = ["FOOTPRINT_NAME", "PHASE_COUNTS", "Run", "canonical_value", "finite", "load_runs"]

FOOTPRINT_NAME = "footprint.json"
PHASE_COUNTS = ("batches", "samples", "tokens", "padded_tokens")


def finite(value: Any) -> bool:
    """A real number (not a bool), finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def canonical_value(text: Any) -> str:
    """One spelling per override value, so that spelling never tells runs apart.

    Numbers compare by value (``5e-5`` = ``5e-05`` = ``0.00005``; ``1`` = ``1.0``), booleans
    and null case-insensitively (``True`` = ``true``), quotes are dropped (``'abc'`` = ``abc``)
    and lists compare item by item (``[1,2]`` = ``[1, 2.0]``). Anything else is kept as written.
    """
    s = str(text).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if s.startswith("[") and s.endswith("]"):
        items = [canonical_value(item) for item in s[1:-1].split(",")] if s[1:-1].strip() else []
        return "[" + ",".join(items) + "]"
    if s.lower() in ("true", "false", "null"):
        return s.lower()
    try:
        number = float(s.replace("_", ""))
    except ValueError:
        return s
    if not math.isfinite(number):
        return s.lower()
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


@dataclass
class Run:
    """One run folder: its name, its directory, its footprint (a FootprintReport) and the
    footprint's JSON as written (``raw``)."""

    name: str
    path: Path
    report: Any
    raw: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """A footprint field: the report's attribute, else the file's key, else ``default``."""
        value = getattr(self.report, name, None)
        if value is None or (isinstance(value, (dict, list, str)) and not value) or (finite(value) and value == 0):
            value = self.raw.get(name, value)  # a report class's default (None, {}, 0) defers to the file
        return default if value is None else value

    @property
    def steps_path(self) -> Path:
        return self.path / "steps.csv"

    @property
    def overrides(self) -> dict[str, str]:
        """``key=value`` command-line overrides as written (``+``/``~`` prefixes dropped)."""
        pairs = (str(o).split("=", 1) for o in (self.report.overrides or []) if "=" in str(o))
        return {k.lstrip("+~"): v for k, v in pairs}

    @property
    def canonical_overrides(self) -> dict[str, str]:
        """The overrides with each value in its :func:`canonical_value` spelling."""
        return {k: canonical_value(v) for k, v in self.overrides.items()}

    def energy_kwh_by_component(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in (self.report.energy_kwh_by_component or {}).items() if finite(v)}

    def phase_kwh(self, phase: str) -> float:
        value = (self.report.energy_kwh_by_phase or {}).get(phase)
        return float(value) if finite(value) else 0.0

    def work(self, phase: str) -> dict[str, int]:
        """``work_by_phase[phase]`` ({batches, samples, tokens, padded_tokens}); for ``train``
        the top-level ``steps``/``samples``/``tokens`` when the file has no ``work_by_phase``."""
        entry = self.get("work_by_phase", {}).get(phase)
        if isinstance(entry, Mapping):
            return {k: int(entry[k]) for k in PHASE_COUNTS if finite(entry.get(k))}
        if phase == "train":
            r = self.report
            return {k: int(v) for k, v in (("batches", r.steps), ("samples", r.samples), ("tokens", r.tokens)) if v}
        return {}

    @property
    def is_serving(self) -> bool:
        """The run has predict energy and counted predictions."""
        return self.phase_kwh("predict") > 0 and self.work("predict").get("samples", 0) > 0

    @property
    def is_training(self) -> bool:
        """The run trained: training batches, or energy in the train phase."""
        return bool(self.report.steps) or self.phase_kwh("train") > 0

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
        return float(value) if finite(value) else None

    def interval(self) -> tuple[float, float] | None:
        """(start, end) as unix seconds, or None when the footprint lacks the times."""
        start = unix_time(self.report.started_at)
        if start is None:
            return None
        end = unix_time(self.report.ended_at)
        if end is None:
            end = start + float(self.report.duration_s or 0.0)
        return start, end

    @property
    def hostname(self) -> str | None:
        return (self.report.context or {}).get("hostname") or None

    @property
    def inference(self) -> dict[str, Any]:
        """``extra.inference``: the serving settings the recipe recorded (empty if none)."""
        value = (self.report.extra or {}).get("inference")
        return dict(value) if isinstance(value, Mapping) else {}


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _find_footprints(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # .pl_hydra_*, .hydra, .git
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
            data = json.loads(footprint.read_text(encoding="utf-8"))
        except (ReportError, OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            print(f"lightning-green compare: skipped {footprint}: {err}", file=sys.stderr)
            continue
        folder = footprint.parent
        base = root if root.is_dir() else root.parent
        name = folder.relative_to(base).as_posix() if folder != base else folder.resolve().name
        runs.append(Run(name=name, path=folder, report=report, raw=data))
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder names under different roots
        common = Path(os.path.commonpath([r.path.resolve() for r in runs]))
        for run in runs:
            run.name = run.path.resolve().relative_to(common).as_posix() or run.path.name
    return sorted(runs, key=lambda r: _natural_key(r.name))
