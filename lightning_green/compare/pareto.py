"""Which direction is better for a metric, and the Pareto front of (cost, metric) points."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lightning_green.validation import check_choice

__all__ = ["METRIC_MODES", "metric_maximized", "pareto_front"]

METRIC_MODES = ("auto", "max", "min")
_LOWER_IS_BETTER = {"loss", "error", "err", "nll", "perplexity", "ppl", "mse", "mae", "rmse", "wer", "cer"}


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
