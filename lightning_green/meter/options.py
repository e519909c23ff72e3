"""The settings shared by :class:`~lightning_green.EnergyMeter` and both ``EnergyCallback`` twins.

One place checks every argument, when the object is built and before any training: an error
names the argument, the allowed values and the value given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_green import carbon
from lightning_green.carbon.options import CarbonOptions, validate_carbon_options
from lightning_green.sensors.base import Sensor
from lightning_green.validation import check_bool, check_number, check_optional_str

__all__ = ["MeterOptions"]


@dataclass
class MeterOptions:
    """Validated settings; see :class:`~lightning_green.EnergyMeter` for what each one does."""

    sensors: str | list[Sensor] = "auto"
    sampling_interval_s: float = 0.1
    country_iso_code: str | None = None
    cloud_provider: str | None = None
    cloud_region: str | None = None
    carbon_intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    output_dir: str | None = None
    idle_baseline_s: float = 0.0
    max_energy_kwh: float | None = None
    max_emissions_kg: float | None = None
    project_after_epochs: int | None = None
    project_after_steps: int | None = None
    log_every_n_steps: int | None = None
    write_files: bool = True
    snapshot_every_s: float = 60.0
    exporters: list[Any] = field(default_factory=list)
    carbon_intensity_series: Any = None
    pause_above_g_per_kwh: float | None = None
    max_pause_s: float | None = None
    water_l_per_kwh: float | None = None
    price_per_kwh: float | None = None
    currency: str | None = None
    embodied: Any = None
    #: Resolved from the carbon arguments.
    intensity: carbon.CarbonIntensity | None = None
    carbon_options: CarbonOptions | None = None

    @classmethod
    def build(cls, **kwargs: Any) -> MeterOptions:
        """Check every argument; raise ValueError naming the first bad one."""
        unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(cls)} - {"intensity", "carbon_options"})
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        o = cls(**kwargs)
        o.sensors = _check_sensors(o.sensors)
        o.sampling_interval_s = check_number("sampling_interval_s", o.sampling_interval_s, exclusive_minimum=0.0,
                                             maximum=3600.0)
        for name in ("country_iso_code", "cloud_provider", "cloud_region"):
            check_optional_str(name, getattr(o, name))
        check_number("carbon_intensity_g_per_kwh", o.carbon_intensity_g_per_kwh, exclusive_minimum=0.0,
                     maximum=carbon.MAX_G_PER_KWH, optional=True)
        o.pue = carbon.validate_pue(o.pue)
        o.intensity = carbon.resolve_intensity(
            carbon_intensity_g_per_kwh=o.carbon_intensity_g_per_kwh, country_iso_code=o.country_iso_code,
            cloud_provider=o.cloud_provider, cloud_region=o.cloud_region,
        )
        if o.output_dir is not None:
            if not isinstance(o.output_dir, (str, os.PathLike)) or not os.fspath(o.output_dir):
                raise ValueError(f"output_dir must be a path or URL (str or os.PathLike) or None, got {o.output_dir!r}")
            o.output_dir = os.fspath(o.output_dir)
        o.idle_baseline_s = check_number("idle_baseline_s", o.idle_baseline_s, minimum=0.0, maximum=3600.0)
        o.max_energy_kwh = check_number("max_energy_kwh", o.max_energy_kwh, exclusive_minimum=0.0, optional=True)
        o.max_emissions_kg = check_number("max_emissions_kg", o.max_emissions_kg, exclusive_minimum=0.0, optional=True)
        for name in ("project_after_epochs", "project_after_steps", "log_every_n_steps"):
            setattr(o, name, check_number(name, getattr(o, name), minimum=1, optional=True, integer=True))
        o.write_files = check_bool("write_files", o.write_files)
        if o.output_dir is not None and o.write_files:
            from lightning_green.outputs import files

            o.output_dir = files.check_output_dir(o.output_dir)  # created and written to, now
        o.snapshot_every_s = check_number("snapshot_every_s", o.snapshot_every_s, minimum=0.0, maximum=86400.0)
        o.exporters = _check_exporters(o.exporters)
        o.carbon_options = validate_carbon_options(
            carbon_intensity_series=o.carbon_intensity_series, pause_above_g_per_kwh=o.pause_above_g_per_kwh,
            max_pause_s=o.max_pause_s, water_l_per_kwh=o.water_l_per_kwh, price_per_kwh=o.price_per_kwh,
            currency=o.currency, embodied=o.embodied,
        )
        return o

    @property
    def budgets(self) -> bool:
        return self.max_energy_kwh is not None or self.max_emissions_kg is not None


def _check_sensors(sensors: Any) -> str | list[Sensor]:
    if isinstance(sensors, str):
        if sensors != "auto":
            raise ValueError(f"sensors must be 'auto' or a list of Sensor objects, got {sensors!r}")
        return sensors
    if not isinstance(sensors, (list, tuple)) or not sensors or not all(isinstance(s, Sensor) for s in sensors):
        raise ValueError(
            f"sensors must be 'auto' or a non-empty list of lightning_green.sensors.Sensor objects, got {sensors!r}"
        )
    return list(sensors)


def _check_exporters(exporters: Any) -> list[Any]:
    if exporters is None:
        return []
    if not isinstance(exporters, Sequence) or isinstance(exporters, (str, bytes)):
        raise ValueError(f"exporters must be a list of exporters (e.g. PrometheusExporter(...)), got {exporters!r}")
    out = list(exporters)
    for exporter in out:
        if not all(callable(getattr(exporter, name, None)) for name in ("check", "start", "update", "stop")):
            raise ValueError(
                "exporters must be a list of lightning_green.exporters objects (with check/start/update/"
                f"snapshot/stop), got {exporter!r}"
            )
        exporter.check()
    return out
