"""What if: the same runs' emissions elsewhere, or at a cleaner time.

* **Other regions**: each run's facility energy (IT energy x its PUE) times another grid's
  intensity, from codecarbon's bundled data through
  :func:`lightning_green.carbon.intensity.resolve_intensity`, offline: ISO-3 country codes
  (``FRA``) or cloud regions written ``provider:region`` (``gcp:europe-west9``).
* **Cleanest window**: with a carbon intensity series, the emissions had the run started at
  the cleanest equally long window of the series: see :func:`cleanest_window_kg` (a hook).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lightning_green.compare.footprints import Run, finite

__all__ = ["DEFAULT_REGIONS", "Region", "cleanest_window_kg", "parse_regions", "region_kg", "resolve_regions"]

# From a low-carbon grid to a coal-heavy one (codecarbon's data, OWID): France (nuclear),
# Germany (mixed), the USA (average), India (coal).
DEFAULT_REGIONS = ("FRA", "DEU", "USA", "IND")


@dataclass(frozen=True)
class Region:
    """A what-if location: its label as given, intensity (g CO2e/kWh) and the data's source."""

    label: str
    g_per_kwh: float
    source: str


def parse_regions(text: str | None) -> tuple[str, ...]:
    """``"FRA,USA, gcp:europe-west9"`` -> ``("FRA", "USA", "gcp:europe-west9")``; ``""`` or
    ``"none"`` -> ``()``; None -> :data:`DEFAULT_REGIONS`."""
    if text is None:
        return DEFAULT_REGIONS
    if str(text).strip().lower() == "none":
        return ()
    return tuple(item.strip() for item in str(text).split(",") if item.strip())


def resolve_regions(labels: Sequence[str]) -> list[Region]:
    """Each label's intensity.

    Raises:
        ValueError: An unknown label (names ``regions`` and the value given).
        RuntimeError: codecarbon's data files are missing (not the label's fault).
    """
    from lightning_green.carbon.intensity import resolve_intensity

    out = []
    for label in labels:
        try:
            if ":" in label:
                provider, region = label.split(":", 1)
                intensity = resolve_intensity(cloud_provider=provider, cloud_region=region)
            else:
                intensity = resolve_intensity(country_iso_code=label)
        except (ValueError, TypeError) as err:
            raise ValueError(f"regions must be ISO-3 country codes (FRA) or provider:region (gcp:europe-west9), "
                             f"got {label!r}: {err}") from err
        out.append(Region(label, intensity.g_per_kwh, intensity.source))
    return out


def facility_kwh(run: Run) -> float | None:
    """IT energy x PUE as recorded (``facility_energy_kwh``), else computed."""
    rep = run.report
    if finite(rep.facility_energy_kwh) and rep.facility_energy_kwh > 0:
        return float(rep.facility_energy_kwh)
    if finite(rep.energy_kwh):
        return float(rep.energy_kwh) * (float(rep.pue) if finite(rep.pue) and rep.pue >= 1 else 1.0)
    return None


def region_kg(run: Run, region: Region) -> float | None:
    """The run's emissions (kg CO2e) had it drawn its facility energy from ``region``'s grid."""
    kwh = facility_kwh(run)
    return None if kwh is None else kwh * region.g_per_kwh / 1000.0


def cleanest_window_kg(run: Run) -> tuple[float, str] | None:
    """The run's emissions had it run at the cleanest equally long window of its carbon
    intensity series, and a description of that window; None without a series (or when the
    series file cannot be read again, or is shorter than the run).

    The series named by the footprint's ``carbon_intensity_series`` (``path``, with its
    ``column``) is read again (offline) and asked for the window as long as the run with the
    lowest mean intensity (:meth:`lightning_green.carbon.series.IntensitySeries.cleanest_window`,
    constant power assumed): ``facility kWh x mean g/kWh / 1000``.
    """
    series_info = run.get("carbon_intensity_series")
    if not isinstance(series_info, Mapping) or not series_info.get("path"):
        return None
    kwh, duration_s = facility_kwh(run), run.report.duration_s
    if kwh is None or not finite(duration_s) or duration_s <= 0:
        return None
    from lightning_green.carbon.series import IntensitySeries, iso_utc

    try:
        series = IntensitySeries.from_csv(str(series_info["path"]), intensity_column=series_info.get("column"),
                                          max_gap_s=series_info.get("max_gap_s"))
        window = series.cleanest_window(float(duration_s))
    except (OSError, ValueError):
        return None
    text = f"{iso_utc(window.start_unix)} to {iso_utc(window.end_unix)} at {window.mean_g_per_kwh:.4g} g/kWh"
    return kwh * window.mean_g_per_kwh / 1000.0, text
