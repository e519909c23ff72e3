"""Carbon intensity, PUE and CPU TDP from codecarbon's bundled data, offline and lazily.

The data files ship with the ``codecarbon`` package; this module is the only one that reads
them, and it never imports codecarbon itself (``import codecarbon`` loads its tracker, pandas
and hardware probes). The package folder is located with :func:`importlib.util.find_spec`,
which does not execute the package, and each file is parsed once per process on first use.

Files read (paths relative to the ``codecarbon`` package):

* ``data/private_infra/global_energy_mix.json``: ISO-3 country -> ``carbon_intensity``
  (g CO2e/kWh, Our World in Data, 2023 in codecarbon 3.x; e.g. FRA 56, USA 369, IND 713).
* ``data/cloud/impact.csv``: cloud provider + region -> ``impact`` (g/kWh).
* ``data/private_infra/carbon_intensity_per_source.json``: ``world_average`` (475 g/kWh, IEA 2019).
* ``data/hardware/cpu_power.csv``: CPU model -> TDP (W).

Precedence in :func:`resolve_intensity`: explicit value > cloud provider and region >
country > world average (with a :class:`CarbonWarning`). Nothing is ever geolocated.

Example::

    from lightning_green.carbon.intensity import emissions_kg, resolve_intensity

    intensity = resolve_intensity(country_iso_code="fra")
    emissions_kg(2.0, 1.2, intensity.g_per_kwh)  # 2 kWh at PUE 1.2 in France, kg CO2e
"""

from __future__ import annotations

import csv
import difflib
import functools
import importlib.util
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_green.carbon.cpu_match import CpuMatcher

__all__ = [
    "CarbonIntensity", "CarbonWarning", "FALLBACK_WORLD_AVERAGE_G_PER_KWH",
    "WORLD_AVERAGE_G_PER_KWH", "cloud_regions", "codecarbon_data_path", "country_codes",
    "cpu_tdp_table", "cpu_tdp_w", "emissions_kg", "match_cpu", "resolve_intensity",
    "validate_pue", "world_average_g_per_kwh",
]

#: Used only when codecarbon's carbon_intensity_per_source.json cannot be read: the same
#: IEA 2019 world average (475 g CO2e/kWh) codecarbon ships.
FALLBACK_WORLD_AVERAGE_G_PER_KWH = 475.0

_ENERGY_MIX = "data/private_infra/global_energy_mix.json"
_PER_SOURCE = "data/private_infra/carbon_intensity_per_source.json"
_CLOUD = "data/cloud/impact.csv"
_CPU_POWER = "data/hardware/cpu_power.csv"


class CarbonWarning(UserWarning):
    """Emitted when the carbon intensity is a guess (the world average)."""


@dataclass(frozen=True)
class CarbonIntensity:
    """Grid carbon intensity and where it came from.

    Attributes:
        g_per_kwh: Grams CO2e per kWh of electricity drawn by the facility.
        source: Where the value comes from, e.g.
            ``"codecarbon global_energy_mix.json: FRA (OWID 2023)"`` or ``"explicit"``.
        country_iso_code: ISO 3166-1 alpha-3 code of the location, when known.
        cloud_provider: Cloud provider, when given.
        cloud_region: Cloud region, when given.
        warning: Why the value is uncertain (world-average fallback), else None.
        country_name: Country name from codecarbon's data, when known.
    """

    g_per_kwh: float
    source: str
    country_iso_code: str | None = None
    cloud_provider: str | None = None
    cloud_region: str | None = None
    warning: str | None = None
    country_name: str | None = None


def __getattr__(name: str) -> Any:
    # WORLD_AVERAGE_G_PER_KWH reads a file, so it is resolved on first access, not at import.
    if name == "WORLD_AVERAGE_G_PER_KWH":
        return world_average_g_per_kwh()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=None)
def _codecarbon_dir() -> Path | None:
    spec = importlib.util.find_spec("codecarbon")  # finds, does not execute, the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def codecarbon_data_path(relative: str) -> Path | None:
    """Path of a file inside the installed codecarbon package, or None if it is missing.

    Args:
        relative: Path relative to the package folder, e.g. ``"data/cloud/impact.csv"``.
    """
    root = _codecarbon_dir()
    path = None if root is None else root / relative
    return path if path is not None and path.is_file() else None


def _require(relative: str) -> Path:
    path = codecarbon_data_path(relative)
    if path is None:
        raise RuntimeError(
            f"codecarbon's data file {relative} is not available (is codecarbon installed?); "
            "install codecarbon or pass carbon_intensity_g_per_kwh=<g CO2e per kWh>"
        )
    return path


@functools.lru_cache(maxsize=None)
def _energy_mix() -> dict[str, dict[str, Any]]:
    return json.loads(_require(_ENERGY_MIX).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def world_average_g_per_kwh() -> float:
    """World average intensity (g/kWh) from codecarbon's carbon_intensity_per_source.json.

    Falls back to :data:`FALLBACK_WORLD_AVERAGE_G_PER_KWH` (475) when the file is missing.
    """
    path = codecarbon_data_path(_PER_SOURCE)
    if path is None:
        return FALLBACK_WORLD_AVERAGE_G_PER_KWH
    return float(json.loads(path.read_text(encoding="utf-8"))["world_average"])


@functools.lru_cache(maxsize=None)
def _cloud_rows() -> dict[tuple[str, str], dict[str, str]]:
    with _require(_CLOUD).open(encoding="utf-8-sig", newline="") as f:  # the file has a BOM
        return {(r["provider"].lower(), r["region"].lower()): r for r in csv.DictReader(f)}


def country_codes() -> dict[str, str]:
    """ISO-3 code -> country name for every country in codecarbon's global_energy_mix.json."""
    return {code: row.get("country_name", "") for code, row in sorted(_energy_mix().items())}


def cloud_regions(provider: str | None = None) -> dict[str, list[str]]:
    """Cloud provider -> its regions known to codecarbon's impact.csv (one provider if given)."""
    out: dict[str, list[str]] = {}
    for prov, region in _cloud_rows():
        if provider is None or prov == provider.lower():
            out.setdefault(prov, []).append(region)
    return out


def _check_str(value: Any, arg: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"`{arg}` must be a non-empty string, got {value!r}")
    return value.strip()


def _country(code: Any, arg: str = "country_iso_code") -> tuple[str, dict[str, Any]]:
    wanted = _check_str(code, arg).upper()
    mix = _energy_mix()
    if wanted in mix:
        return wanted, mix[wanted]
    names = country_codes()
    if len(wanted) == 2 and wanted.isalpha():  # "FR" -> FRA, FRO: same first letter, then the 2nd
        codes = [c for c in names if c[0] == wanted[0] and wanted[1] in c[1:]]
        hint = f"`{arg}` takes ISO 3166-1 alpha-3 codes and {code!r} looks like alpha-2; "
    else:  # a typo, or a country name
        by_name = {n.upper(): c for c, n in names.items()}
        close = difflib.get_close_matches(wanted, list(names) + list(by_name), n=4, cutoff=0.6)
        codes = list(dict.fromkeys(by_name.get(c, c) for c in close))
        hint = ""
    suggestions = ", ".join(f"{c} ({names[c]})" for c in codes)
    hint += f"did you mean {suggestions}?" if codes else "no close match."
    raise ValueError(
        f"Unknown `{arg}`={code!r}: not in codecarbon's global_energy_mix.json ({len(names)} "
        f"ISO-3 codes); {hint} List them with lightning_green.carbon.intensity.country_codes(), or pass "
        "carbon_intensity_g_per_kwh=<g CO2e per kWh> instead."
    )


def _cloud(provider: Any, region: Any) -> dict[str, str]:
    prov = _check_str(provider, "cloud_provider").lower()
    reg = _check_str(region, "cloud_region").lower()
    regions = cloud_regions()
    if prov not in regions:
        raise ValueError(
            f"Unknown `cloud_provider`={provider!r}: codecarbon's impact.csv knows "
            f"{sorted(regions)}; for another provider pass country_iso_code=<ISO-3> or "
            "carbon_intensity_g_per_kwh=<g CO2e per kWh>"
        )
    if (prov, reg) not in _cloud_rows():
        known = regions[prov]
        close = difflib.get_close_matches(reg, known, n=3, cutoff=0.6)
        raise ValueError(
            f"Unknown `cloud_region`={region!r} for cloud_provider {prov!r}: codecarbon's "
            f"impact.csv has {len(known)} {prov} regions (e.g. {', '.join((close or known)[:3])}); "
            f"list them with lightning_green.carbon.intensity.cloud_regions({prov!r})."
        )
    return _cloud_rows()[(prov, reg)]


# Upper bounds that catch unit slips (pue=120 for 1.20; an intensity in mg/kWh) before a run:
# the worst data centres in Uptime Institute surveys report a PUE of ~2.5-3 (average 1.58);
# the dirtiest grid in codecarbon's global_energy_mix.json is 1306 g/kWh (TKM).
MAX_PUE = 5.0
MAX_G_PER_KWH = 2000.0


def _finite_number(value: Any, arg: str, minimum: float, inclusive: bool, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{arg}` must be a number, got {value!r}")
    ok = value >= minimum if inclusive else value > minimum
    if maximum is not None:
        ok = ok and value <= maximum
    if not (math.isfinite(value) and ok):
        rng = f"finite and {'>=' if inclusive else '>'} {minimum}"
        if maximum is not None:
            rng += f" and <= {maximum}"
        raise ValueError(f"`{arg}` must be {rng}, got {value!r}")
    return float(value)


def validate_pue(pue: Any) -> float:
    """Return ``pue`` as a float after checking it is a finite number in [1, ``MAX_PUE``].

    Raises:
        TypeError: ``pue`` is not a number. ValueError: it is < 1.0, > 5, NaN or infinite.
    """
    return _finite_number(pue, "pue", 1.0, inclusive=True, maximum=MAX_PUE)


def emissions_kg(energy_kwh: float, pue: float, g_per_kwh: float) -> float:
    """Emissions (kg CO2e) of ``energy_kwh`` of IT energy: energy x PUE x intensity / 1000."""
    energy = _finite_number(energy_kwh, "energy_kwh", 0.0, inclusive=True)
    intensity = _finite_number(g_per_kwh, "g_per_kwh", 0.0, inclusive=True)
    return energy * validate_pue(pue) * intensity / 1000.0


def resolve_intensity(
    *,
    carbon_intensity_g_per_kwh: float | None = None,
    country_iso_code: str | None = None,
    cloud_provider: str | None = None,
    cloud_region: str | None = None,
) -> CarbonIntensity:
    """Resolve the grid carbon intensity: explicit > cloud region > country > world average.

    Args:
        carbon_intensity_g_per_kwh: Explicit intensity (g CO2e/kWh), finite and > 0. Wins over
            everything; the location arguments are then only recorded, not looked up.
        country_iso_code: ISO 3166-1 alpha-3 code, any case (``"FRA"``, ``"fra"``). With a
            cloud region it is ignored: the region's own country is recorded.
        cloud_provider: A provider in codecarbon's impact.csv (``"gcp"``); needs ``cloud_region``.
        cloud_region: Region of that provider (``"europe-west1"``).

    Returns:
        The intensity with its source. With no argument at all: the world average, with
        ``warning`` set and a :class:`CarbonWarning` emitted.

    Raises:
        ValueError: Unknown country, provider or region (the message lists the allowed values),
            only one of provider/region, or an intensity <= 0, > 2000 or non-finite.
        TypeError: An argument of the wrong type.
    """
    if (cloud_provider is None) != (cloud_region is None):
        raise ValueError(
            "`cloud_provider` and `cloud_region` go together: got "
            f"cloud_provider={cloud_provider!r}, cloud_region={cloud_region!r}"
        )
    if carbon_intensity_g_per_kwh is not None:
        value = _finite_number(
            carbon_intensity_g_per_kwh, "carbon_intensity_g_per_kwh", 0.0, inclusive=False,
            maximum=MAX_G_PER_KWH,
        )
        country = None
        if country_iso_code is not None:
            country = _check_str(country_iso_code, "country_iso_code").upper()
        return CarbonIntensity(value, "explicit", country, cloud_provider, cloud_region)
    if cloud_provider is not None:
        row = _cloud(cloud_provider, cloud_region)
        prov, reg = row["provider"], row["region"]
        return CarbonIntensity(
            float(row["impact"]), f"codecarbon cloud impact.csv: {prov} {reg}",
            row.get("countryIsoCode") or None, prov, reg,
            country_name=row.get("country_name") or None,
        )
    if country_iso_code is not None:
        code, row = _country(country_iso_code)
        year = row.get("year")
        return CarbonIntensity(
            float(row["carbon_intensity"]),
            f"codecarbon global_energy_mix.json: {code} (OWID{f' {year}' if year else ''})",
            code, country_name=row.get("country_name") or None,
        )
    value = world_average_g_per_kwh()
    warning = (
        f"No location given: using the world average carbon intensity, {value:g} g CO2e/kWh. "
        "Pass country_iso_code (ISO-3, e.g. 'FRA'), cloud_provider + cloud_region, or "
        "carbon_intensity_g_per_kwh for a meaningful CO2 figure."
    )
    warnings.warn(warning, CarbonWarning, stacklevel=2)
    return CarbonIntensity(value, "world average (codecarbon carbon_intensity_per_source.json)",
                           warning=warning)


@functools.lru_cache(maxsize=None)
def cpu_tdp_table() -> dict[str, float]:
    """CPU model name -> TDP (W) from codecarbon's cpu_power.csv; empty if it is missing."""
    path = codecarbon_data_path(_CPU_POWER)
    if path is None:
        return {}
    table: dict[str, float] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            try:  # a few rows are malformed (e.g. "27.29.5" in codecarbon 3.3.2): skip them
                tdp_w = float(row.get("TDP") or "nan")
            except ValueError:
                continue
            if row.get("Name") and math.isfinite(tdp_w) and tdp_w > 0:
                table.setdefault(row["Name"], tdp_w)
    return table


@functools.lru_cache(maxsize=None)
def _cpu_matcher() -> CpuMatcher:
    return CpuMatcher(cpu_tdp_table())


@functools.lru_cache(maxsize=256)
def match_cpu(cpu_model: str) -> tuple[str, float] | None:
    """Find ``cpu_model`` in codecarbon's cpu_power.csv: (name in the file, TDP W) or None.

    The fuzzy match follows codecarbon's (see :class:`lightning_green.carbon.cpu_match.CpuMatcher`):
    exact, then without "(R)", "(TM)", "CPU @ x GHz", "n-Core Processor", then by tokens.
    """
    name = _cpu_matcher().match(cpu_model)
    return None if name is None else (name, cpu_tdp_table()[name])


def cpu_tdp_w(cpu_model: str) -> float | None:
    """TDP (W) of ``cpu_model`` from codecarbon's cpu_power.csv, or None when unknown.

    Args:
        cpu_model: The model string as the OS reports it, e.g.
            ``"Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"`` or ``"AMD EPYC 7543 32-Core Processor"``.
    """
    match = match_cpu(cpu_model)
    return None if match is None else match[1]
