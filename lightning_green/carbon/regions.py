"""What-if: a run's emissions had its energy been drawn from other grids (codecarbon's data).

The same IT energy and PUE are priced at each region's intensity from
:mod:`lightning_green.carbon.intensity` (offline; nothing is geolocated). Region codes:

* an ISO 3166-1 alpha-3 country code: ``"FRA"``, ``"usa"`` (codecarbon's global_energy_mix.json,
  Our World in Data);
* a cloud region as ``provider:region``: ``"gcp:europe-west1"`` (codecarbon's impact.csv);
* ``"WORLD"``: the world average (codecarbon's carbon_intensity_per_source.json, IEA).

:data:`DEFAULT_REGIONS` spans clean to coal-heavy grids for a comparison table: with
codecarbon 3.3's data (OWID 2023) SWE 41, FRA 56, BRA 98, CAN 170, GBR 238, USA 369,
DEU 381, AUS 549, CHN 582, IND 713 g/kWh, and the world average 475.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lightning_green.carbon.intensity import CarbonIntensity, resolve_intensity, world_average_g_per_kwh
from lightning_green.validation import check_number

__all__ = ["DEFAULT_REGIONS", "RegionEmissions", "emissions_in_regions", "region_intensity", "validate_region_codes"]

DEFAULT_REGIONS = ("SWE", "FRA", "BRA", "CAN", "GBR", "USA", "DEU", "AUS", "CHN", "IND", "WORLD")
WORLD = "WORLD"


@dataclass(frozen=True)
class RegionEmissions:
    """One row of the what-if table.

    Attributes:
        code: The region as given, normalised (``"FRA"``, ``"gcp:europe-west1"``, ``"WORLD"``).
        name: Country or region name.
        g_per_kwh: The region's intensity, g CO2e/kWh.
        emissions_kg: IT energy x PUE x intensity / 1000, kg CO2e (estimated: average intensity).
        source: Where the intensity comes from.
    """

    code: str
    name: str
    g_per_kwh: float
    emissions_kg: float
    source: str


def region_intensity(code: Any) -> tuple[str, str, CarbonIntensity]:
    """``(normalised code, name, intensity)`` for a region code (see the module docstring).

    Raises:
        ValueError: Unknown country, provider or region (the message lists what is allowed),
            or a code that is not a non-empty string.
    """
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"region code must be an ISO-3 country ('FRA'), 'provider:region' or 'WORLD', got {code!r}")
    text = code.strip()
    if text.upper() == WORLD:
        value = world_average_g_per_kwh()
        return WORLD, "World average", CarbonIntensity(value, "world average (codecarbon carbon_intensity_per_source.json)")
    if ":" in text:
        provider, region = (part.strip() for part in text.split(":", 1))
        if not provider or not region:
            raise ValueError(f"region code {code!r}: a cloud region is 'provider:region', e.g. 'gcp:europe-west1'")
        found = resolve_intensity(cloud_provider=provider, cloud_region=region)
        name = f"{found.cloud_provider} {found.cloud_region}" + (f" ({found.country_name})" if found.country_name else "")
        return f"{found.cloud_provider}:{found.cloud_region}", name, found
    found = resolve_intensity(country_iso_code=text)
    return str(found.country_iso_code), found.country_name or str(found.country_iso_code), found


def validate_region_codes(codes: Iterable[Any]) -> tuple[str, ...]:
    """Normalised codes, each checked against codecarbon's data; duplicates dropped, order kept.

    Raises:
        ValueError: An unknown code, or ``codes`` given as one string instead of a list.
    """
    if isinstance(codes, str):
        raise ValueError(f"what-if regions must be a list of codes such as ['FRA', 'gcp:europe-west1'], got {codes!r}")
    return tuple(dict.fromkeys(region_intensity(code)[0] for code in codes))


def emissions_in_regions(
    energy_kwh: float, pue: float, codes: Iterable[Any] | None = None
) -> list[RegionEmissions]:
    """Emissions of ``energy_kwh`` of IT energy at ``pue`` in each region, in the order given.

    Args:
        energy_kwh: IT energy (before PUE), kWh, >= 0.
        pue: The run's PUE, applied in every region (same data centre, another grid).
        codes: Region codes; None -> :data:`DEFAULT_REGIONS`, where a code missing from an
            older codecarbon's data is skipped (a code you pass is an error when unknown).
    """
    energy = float(check_number("energy_kwh", energy_kwh, minimum=0.0))
    factor = float(check_number("pue", pue, minimum=1.0))
    rows = []
    wanted = DEFAULT_REGIONS if codes is None else validate_region_codes(codes)
    for code in wanted:
        try:
            normalised, name, found = region_intensity(code)
        except ValueError:
            if codes is None:
                continue
            raise
        rows.append(RegionEmissions(normalised, name, found.g_per_kwh,
                                    energy * factor * found.g_per_kwh / 1000.0, found.source))
    return rows
