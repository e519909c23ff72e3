"""Carbon data and arithmetic: grid intensity and CPU power tables from codecarbon's bundled data.

The only home of codecarbon in this package (its data files only; its tracker is never started).
Nothing is read at import.
"""

from __future__ import annotations

from typing import Any

from lightning_green.carbon import intensity as _intensity
from lightning_green.carbon.intensity import (  # noqa: F401
    FALLBACK_WORLD_AVERAGE_G_PER_KWH,
    MAX_G_PER_KWH,
    MAX_PUE,
    CarbonIntensity,
    CarbonWarning,
    cloud_regions,
    codecarbon_data_path,
    country_codes,
    cpu_tdp_table,
    cpu_tdp_w,
    emissions_kg,
    match_cpu,
    resolve_intensity,
    validate_pue,
    world_average_g_per_kwh,
)

__all__ = list(_intensity.__all__)


def __getattr__(name: str) -> Any:
    return getattr(_intensity, name)  # WORLD_AVERAGE_G_PER_KWH: read on first access
