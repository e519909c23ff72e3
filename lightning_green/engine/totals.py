"""Footprint totals as plain, additive numbers: what crosses ranks, checkpoints and stages.

A totals dict holds joules, counts and seconds only, so that two of them add key by key:
ranks add into a run, a resumed segment adds onto its checkpoint, a test adds onto its fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCHEMA = 1

#: Keys that add up over segments (and over ranks, except the ``RANK0_KEYS``).
ADDITIVE = (
    "energy_j",
    "energy_j_measured",
    "energy_j_estimated",
    "facility_energy_j",
    "emissions_kg",
    "duration_s",
    "samples",
    "tokens",
    "steps",
    "energy_j_by_component",
    "energy_j_by_phase",
    "energy_j_by_epoch",
    "energy_j_by_rank",
    "energy_j_by_host",
)
#: Same on every rank (wall time, step count): taken from rank 0, not summed over ranks.
RANK0_KEYS = ("duration_s", "steps")


def empty() -> dict[str, Any]:
    totals: dict[str, Any] = {key: ({} if key.startswith("energy_j_by_") else 0.0) for key in ADDITIVE}
    totals["schema"] = SCHEMA
    return totals


def add(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Key-wise sum of two totals dicts (nested dicts summed by key)."""
    out = empty()
    for key in ADDITIVE:
        left, right = a.get(key), b.get(key)
        if key.startswith("energy_j_by_"):
            merged: dict[str, float] = {}
            for part in (left or {}, right or {}):
                for name, value in part.items():
                    merged[str(name)] = merged.get(str(name), 0.0) + float(value)
            out[key] = merged
        else:
            out[key] = float(left or 0.0) + float(right or 0.0)
    return out


def merge_ranks(per_rank: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One totals dict from every rank's: sums, except wall time and steps from rank 0."""
    out = empty()
    for entry in per_rank:
        out = add(out, entry)
    if per_rank:
        for key in RANK0_KEYS:
            out[key] = float(per_rank[0].get(key, 0.0))
    return out


def clean(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Totals from a checkpoint: unknown keys dropped, missing ones zero (old files load)."""
    return add(empty(), raw or {})


#: Counts of work done: a crashed run's steps after its last checkpoint are done again.
WORK_KEYS = ("samples", "tokens", "steps")


def spent_since(later: Mapping[str, Any], earlier: Mapping[str, Any]) -> dict[str, Any]:
    """What ``later`` holds beyond ``earlier`` (key-wise, never below zero), work counts
    zeroed: the energy and time a crashed run spent after the checkpoint a resume starts from.
    """
    out = empty()
    for key in ADDITIVE:
        if key in WORK_KEYS:
            continue
        left, right = later.get(key), earlier.get(key)
        if key.startswith("energy_j_by_"):
            right = right or {}
            out[key] = {
                str(name): max(0.0, float(value) - float(right.get(str(name), 0.0)))
                for name, value in (left or {}).items()
            }
        else:
            out[key] = max(0.0, float(left or 0.0) - float(right or 0.0))
    return out
