"""``lightning-green watch DIR``: follow a running footprint as it grows.

While a run trains, the callback rewrites ``footprint.json`` now and then with status
``"running"`` and ``snapshot_at`` (the time of the snapshot). ``watch`` reads it every
``interval_s`` seconds and prints one line per new snapshot: time, energy, power, emissions
(and samples when counted). Power is the snapshot's ``power_w`` when the footprint has one
(a number, or per component), else the energy added since the previous snapshot over the time
between them (``snapshot_at``, else ``duration_s``). It stops when the status is no longer
``"running"`` (exit 0, after the final line) or after ``timeout_s`` (exit 3).

The loop takes its clock and sleep as arguments, so a test drives it without waiting.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from lightning_green.units import unix_time

__all__ = ["EXIT_TIMEOUT", "Snapshot", "power_w", "read_snapshot", "watch"]

EXIT_TIMEOUT = 3
FOOTPRINT = "footprint.json"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Snapshot(dict):
    """A footprint as read (its JSON dict), with the figures ``watch`` prints."""

    @property
    def key(self) -> tuple[Any, ...]:
        return self.get("status"), self.get("snapshot_at"), self.get("energy_kwh"), self.get("duration_s")

    @property
    def t_s(self) -> float | None:
        """When it was taken: ``snapshot_at`` as unix seconds, else None."""
        return unix_time(self.get("snapshot_at"))


def read_snapshot(path: Path) -> Snapshot | None:
    """The footprint at ``path`` (a file or a run folder), or None while it is missing or
    unreadable (a footprint being replaced, or not written yet)."""
    path = path / FOOTPRINT if path.is_dir() else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Snapshot(data) if isinstance(data, dict) else None


def power_w(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> float | None:
    """Watts now: ``power_w`` (a number, or a dict summed), else energy difference over time."""
    given = current.get("power_w")
    if _finite(given):
        return float(given)
    if isinstance(given, Mapping) and given and all(_finite(v) for v in given.values()):
        return float(sum(given.values()))
    if previous is None:
        return None
    e1, e0 = current.get("energy_kwh"), previous.get("energy_kwh")
    t1, t0 = unix_time(current.get("snapshot_at")), unix_time(previous.get("snapshot_at"))
    if t1 is None or t0 is None:
        t1, t0 = current.get("duration_s"), previous.get("duration_s")
    if not all(_finite(v) for v in (e1, e0, t1, t0)) or t1 <= t0:
        return None
    return (float(e1) - float(e0)) * 3.6e6 / (float(t1) - float(t0))


def _line(snap: Snapshot, watts: float | None) -> str:
    from lightning_green.outputs.summary import (
        format_duration_s,
        format_energy_kwh,
        format_mass_kg,
    )

    when = snap.get("snapshot_at") or snap.get("ended_at") or ""
    if isinstance(when, str) and "T" in when:
        when = when.split("T", 1)[1][:8]
    parts = [f"{when:<8}", f"{snap.get('status', '?'):<11}"]
    duration = snap.get("duration_s")
    parts.append(format_duration_s(float(duration)) if _finite(duration) else "?")
    energy = snap.get("energy_kwh")
    parts.append(format_energy_kwh(float(energy)) if _finite(energy) else "? Wh")
    parts.append(f"{watts:.1f} W" if watts is not None else "- W")
    emissions = snap.get("emissions_kg")
    parts.append(f"{format_mass_kg(float(emissions))} CO2e" if _finite(emissions) else "? CO2e")
    if snap.get("samples"):
        parts.append(f"{int(snap['samples']):,} samples")
    return "  ".join(parts)


def _json_line(snap: Snapshot, watts: float | None) -> str:
    keys = ("status", "snapshot_at", "duration_s", "energy_kwh", "emissions_kg", "samples")
    return json.dumps({**{k: snap.get(k) for k in keys}, "power_w": watts})


def watch(path: str | Path, *, interval_s: float = 2.0, timeout_s: float | None = None, as_json: bool = False,
          out: IO[str] | None = None, err: IO[str] | None = None,
          sleep: Callable[[float], Any] | None = None, clock: Callable[[], float] | None = None) -> int:
    """Print each new snapshot of the footprint at ``path`` until the run ends.

    A folder (or file) that does not exist yet is waited for as long as its parent exists
    (the run may not have started); a path whose parent is missing is an error.

    Returns:
        0 when the run ended (status not ``running``), 3 (:data:`EXIT_TIMEOUT`) after
        ``timeout_s``, 2 for a path that cannot appear (its parent folder is missing).
    """
    out, err = out or sys.stdout, err or sys.stderr
    sleep, clock = sleep or time.sleep, clock or time.monotonic
    path = Path(path)
    if not path.exists() and not path.parent.is_dir():
        print(f"lightning-green watch: DIR must be a run folder or a footprint.json, got {str(path)!r}: "
              "no such file or folder", file=err, flush=True)
        return 2
    start = clock()
    previous: Snapshot | None = None
    waiting_said = False
    if not as_json:
        print(f"{'time':<8}  {'status':<11}  duration  energy  power  emissions", file=out, flush=True)
    while True:
        snap = read_snapshot(path)
        if snap is None and not waiting_said:
            print(f"lightning-green watch: waiting for {path if path.suffix == '.json' else path / FOOTPRINT}",
                  file=err, flush=True)
            waiting_said = True
        if snap is not None and (previous is None or snap.key != previous.key):
            watts = power_w(snap, previous)
            print(_json_line(snap, watts) if as_json else _line(snap, watts), file=out, flush=True)
            previous = snap
        if snap is not None and snap.get("status") != "running":
            return 0
        if timeout_s is not None and clock() - start >= timeout_s:
            state = "still running" if snap is not None else "no footprint appeared"
            print(f"lightning-green watch: {state} after {timeout_s:g} s (--timeout); stopped watching",
                  file=err, flush=True)
            return EXIT_TIMEOUT
        sleep(interval_s)
