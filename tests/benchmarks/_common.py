"""Shared helpers for the benchmarks: Markdown tables, the machine description, statistics."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A Markdown table (numbers already formatted by the caller)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import lightning
    import torch

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
    try:
        import psutil

        info["ram_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import codecarbon

        info["codecarbon"] = codecarbon.__version__
    except ImportError:
        pass
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    virtual = False
    try:
        virtual = " hypervisor " in f" {Path('/proc/cpuinfo').read_text()} ".replace("\n", " ")
    except OSError:
        pass
    info["virtual_machine"] = virtual
    return info


def machine_line() -> str:
    m = machine()
    parts = [f"{m['cpu']}, {m['logical_cpus']} logical CPUs"]
    if m.get("virtual_machine"):
        parts[0] += " (VM)"
    if "ram_gib" in m:
        parts.append(f"{m['ram_gib']} GiB RAM")
    parts.append(f"Python {m['python']}, torch {m['torch']}, lightning {m['lightning']}")
    if "codecarbon" in m:
        parts.append(f"codecarbon {m['codecarbon']}")
    parts.append(f"{m['date']}, load average {m.get('load_avg_1m', '?')} at start")
    return "; ".join(parts)


def quiet_lightning() -> None:
    """Silence Lightning's and codecarbon's info logs and the usual benchmark warnings."""
    import logging
    import warnings

    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: import first)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "codecarbon"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    warnings.filterwarnings("ignore", message=".*lightning-green.*carbon intensity.*")
