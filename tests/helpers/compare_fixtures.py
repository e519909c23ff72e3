"""Report folders with known content for the compare and hydra-callback tests.

Plain JSON dicts with the footprint contract's keys, written as real files.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lightning_green.outputs.footprint import SCHEMA

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
GPU_MEASURED = {"name": "nvml:0", "component": "gpu", "measured": True, "method": "measured: nvml energy counter"}
CPU_ESTIMATED = {"name": "cpu", "component": "cpu", "measured": False, "method": "estimated: 85 W TDP x load"}
CPU_MEASURED = {"name": "rapl", "component": "cpu", "measured": True, "method": "measured: rapl"}


def footprint(
    *,
    overrides: list[str],
    gpu_kwh: float,
    cpu_kwh: float,
    acc: float | None,
    start_min: float,
    duration_s: float,
    status: str = "completed",
    hostname: str | None = "node-a",
    intensity: float = 400.0,
    pue: float = 1.0,
    cpu_sensor: dict | None = None,
    samples: int = 1000,
    metrics: dict | None = None,
    fields: dict | None = None,
) -> dict[str, Any]:
    """A footprint dict; ``fields`` adds (or replaces) top-level keys, e.g. the newer ones
    (``energy_kwh_range``, ``work_by_phase``, ``embodied_kg``, ...)."""
    start = T0 + timedelta(minutes=start_min)
    energy_kwh = gpu_kwh + cpu_kwh
    context = {"precision": "32-true"}
    if hostname is not None:
        context["hostname"] = hostname
    if metrics is None:
        metrics = {"train/loss": 0.5} | ({"val/acc": acc, "val/loss": 1.0 - acc} if acc is not None else {})
    return {
        "schema": SCHEMA,
        "status": status,
        "run_id": "-".join(overrides) or "run",
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=duration_s)).isoformat(),
        "duration_s": duration_s,
        "energy_kwh": energy_kwh,
        "energy_kwh_by_component": {"gpu": gpu_kwh, "cpu": cpu_kwh},
        "pue": pue,
        "facility_energy_kwh": energy_kwh * pue,
        "carbon_intensity_g_per_kwh": intensity,
        "emissions_kg": energy_kwh * pue * intensity / 1000.0,
        "sensors": [GPU_MEASURED, cpu_sensor or CPU_ESTIMATED],
        "samples": samples,
        "energy_per_sample_j": energy_kwh * 3.6e6 / samples if samples else None,
        "context": context,
        "overrides": overrides,
        "metrics": metrics,
    } | (fields or {})


def write_run(folder: Path, data: dict[str, Any], steps_w: float | None = None, n_steps: int = 20) -> Path:
    """Write footprint.json (and steps.csv of ``n_steps`` 0.5 s steps at ``steps_w`` watts)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "footprint.json").write_text(json.dumps(data, indent=2))
    if steps_w is not None:
        t0 = datetime.fromisoformat(data["started_at"]).timestamp()
        with open(folder / "steps.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "epoch", "start_s", "end_s", "duration_s", "energy_j", "samples", "tokens", "gpu_j", "cpu_j"])
            for step in range(n_steps):
                start, watts = t0 + 0.5 * step, steps_w * (1.0 + 0.2 * (step % 3))
                writer.writerow([step, 0, start, start + 0.5, 0.5, watts * 0.5, 8, 0, watts * 0.4, watts * 0.1])
    return folder


# A 2x2 precision x pruning sweep, jobs one after another on one host. The fp32 / no-pruning
# baseline is job 1 (not the first folder). Hand-computed Pareto front (min energy, max
# val/acc): jobs 0, 1, 3; job 2 (0.007 kWh, 0.75) is dominated by job 0 (0.006 kWh, 0.79).
SWEEP = [
    (["precision=bf16", "pruning=none", "seed=1"], 0.005, 0.001, 0.79),
    (["precision=32", "pruning=none", "seed=1"], 0.008, 0.002, 0.80),
    (["precision=32", "pruning=heads", "seed=1"], 0.006, 0.001, 0.75),
    (["precision=bf16", "pruning=heads", "seed=1"], 0.003, 0.001, 0.70),
]


def write_sweep(root: Path, **overrides: Any) -> Path:
    """Hydra-like multirun folder ``root/0..3`` (+ hidden .hydra dirs) from SWEEP."""
    for job, (ovr, gpu, cpu, acc) in enumerate(SWEEP):
        folder = write_run(
            root / str(job),
            footprint(overrides=ovr, gpu_kwh=gpu, cpu_kwh=cpu, acc=acc, start_min=10 * job, duration_s=300, **overrides),
            steps_w=100.0 + 50 * job,
        )
        (folder / ".hydra").mkdir(exist_ok=True)
        (folder / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in ovr) + "\n")
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def serving_footprint(
    *,
    run_id: str,
    predict_kwh: float,
    predictions: int,
    acc: float | None,
    inference: dict[str, Any],
    train_kwh: float = 0.0,
    tokens: int = 0,
    padded_tokens: int = 0,
    start_min: float = 0,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """A predict footprint (``train_kwh`` > 0: fit then predict in one run) with known figures:
    the predict phase holds ``predict_kwh`` over ``predictions`` predictions."""
    steps = 100 if train_kwh else 0
    data = footprint(
        overrides=overrides or [], gpu_kwh=predict_kwh + train_kwh, cpu_kwh=0.0, acc=None, start_min=start_min,
        duration_s=60, samples=800 if train_kwh else 0, metrics={"predict/acc": acc} if acc is not None else {},
        fields={
            "run_id": run_id,
            "steps": steps,
            "energy_kwh_by_phase": {"train": train_kwh, "validate": 0.0, "test": 0.0, "predict": predict_kwh},
            "work_by_phase": {"predict": {"batches": predictions // 32 + 1, "samples": predictions, "tokens": tokens,
                                          "padded_tokens": padded_tokens}},
            "extra": {"inference": inference},
        },
    )
    return data
