"""Units, defined once. Joules are stored everywhere; conversions happen at the edges."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

__all__ = ["J_PER_KWH", "J_PER_WH", "kwh_from_j", "unix_time"]

J_PER_WH = 3600.0
J_PER_KWH = 3.6e6


def kwh_from_j(energy_j: float) -> float:
    """Joules to kWh (1 kWh = 3.6e6 J)."""
    return energy_j / J_PER_KWH


def unix_time(text: Any) -> float | None:
    """An ISO 8601 time as in footprint.json (``...Z`` or ``+00:00``; naive means UTC) in unix
    seconds; None for anything else."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
