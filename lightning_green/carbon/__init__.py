"""Carbon data and arithmetic: grid intensity (constant or over time), embodied, water and cost.

The only home of codecarbon in this package (its data files only; its tracker is never started).
Nothing is read at import, and the modules beyond :mod:`~lightning_green.carbon.intensity`
(numpy-backed series, embodied, water, cost, regions, pausing, options) load on first use.
"""

from __future__ import annotations

import importlib
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

_LAZY = {
    "IntensitySeries": "series", "IntensityWindow": "series",
    "EmbodiedModel": "embodied", "EmbodiedEstimate": "embodied",
    "WaterUse": "water", "EnergyPrice": "cost",
    "RegionEmissions": "regions", "DEFAULT_REGIONS": "regions", "emissions_in_regions": "regions",
    "PausePolicy": "pause",
    "CarbonOptions": "options", "validate_carbon_options": "options",
}

__all__ = list(_intensity.__all__) + list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    return getattr(_intensity, name)  # WORLD_AVERAGE_G_PER_KWH: read on first access
