"""The footprint of one run: the :class:`FootprintReport` dataclass and its files.

* ``footprint.json``: :func:`write_footprint` / :func:`read_footprint`, schema
  ``"lightning-green/footprint/1"``, written atomically (temporary file in the same folder,
  fsync, :func:`os.replace`), so a reader never sees half a file.
* ``emissions.csv``: :func:`append_emissions_csv` adds one row with codecarbon's columns, in
  the order of codecarbon 3.x's ``EmissionsData``, so codecarbon's tooling and
  ``pandas.read_csv`` read our runs. Units follow codecarbon: ``duration`` s, ``emissions`` kg
  CO2e, ``emissions_rate`` kg/s, ``*_power`` W (run average), ``*_energy`` and
  ``energy_consumed`` kWh. As in codecarbon, energy and power columns include the PUE
  (facility energy); footprint.json keeps IT energy (``energy_kwh``) and
  ``facility_energy_kwh`` apart.

Energy in the report is in kWh (the ledger stores joules; convert with :func:`kwh_from_j`).
Invariants kept by :meth:`FootprintReport.with_carbon`: ``facility_energy_kwh = energy_kwh x
pue`` and ``emissions_kg = facility_energy_kwh x carbon_intensity_g_per_kwh / 1000``.
:meth:`FootprintReport.from_dict` never recomputes: a file reads back exactly as written.

Example::

    from lightning_green.outputs.footprint import FootprintReport, read_footprint, write_footprint

    path = write_footprint(FootprintReport(run_id="a", energy_kwh=0.5), "runs/a")
    print(read_footprint(path).summary())
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_green import carbon
from lightning_green.outputs import files
from lightning_green.outputs.atomic import atomic_write_text
from lightning_green.outputs.emissions_csv import (
    EMISSIONS_CSV_COLUMNS,
    EMISSIONS_FILENAME,
    append_emissions_csv,
)
from lightning_green.outputs.summary import summary_text
from lightning_green.units import J_PER_KWH, kwh_from_j

__all__ = [
    "EMISSIONS_CSV_COLUMNS", "EMISSIONS_FILENAME", "FOOTPRINT_FILENAME", "J_PER_KWH", "SCHEMA",
    "STATUSES", "FootprintReport", "ReportError", "append_emissions_csv", "atomic_write_text",
    "kwh_from_j", "read_footprint", "write_footprint",
]

SCHEMA = "lightning-green/footprint/1"
FOOTPRINT_FILENAME = "footprint.json"
STATUSES = ("completed", "interrupted", "failed", "running")


class ReportError(ValueError):
    """A footprint file that cannot be read: unreadable, not JSON, or not our schema."""


@dataclass
class FootprintReport:
    """Energy and CO2 of one run, as written to ``footprint.json``.

    Energy fields are kWh of IT energy (before PUE) unless named ``facility_``. Dicts keyed
    by epoch, rank or host use string keys (JSON keys are strings; keys are converted on
    construction so a report equals its own round trip). Optional figures are None when not
    measured (no samples, no idle baseline, no projection).
    """

    schema: str = SCHEMA
    status: str = "running"  # "completed" | "interrupted" | "failed" | "running"
    run_id: str = ""
    name: str | None = None  # the user's name for the measurement, if any
    started_at: str | None = None  # ISO 8601 UTC
    ended_at: str | None = None
    duration_s: float = 0.0
    energy_kwh: float = 0.0
    energy_kwh_by_component: dict[str, float] = field(default_factory=dict)
    energy_kwh_by_phase: dict[str, float] = field(default_factory=dict)
    energy_kwh_by_epoch: dict[str, float] = field(default_factory=dict)
    energy_kwh_by_rank: dict[str, float] = field(default_factory=dict)
    energy_kwh_by_host: dict[str, float] = field(default_factory=dict)
    energy_kwh_measured: float = 0.0
    energy_kwh_estimated: float = 0.0
    # Uncertainty bands [low, high] from each sensor's stated uncertainty (added linearly).
    energy_kwh_range: list[float] | None = None
    energy_kwh_by_component_range: dict[str, list[float]] = field(default_factory=dict)
    pue: float = 1.0
    facility_energy_kwh: float = 0.0
    carbon_intensity_g_per_kwh: float = 0.0
    carbon_intensity_source: str = ""
    country_iso_code: str | None = None
    cloud_provider: str | None = None
    cloud_region: str | None = None
    emissions_kg: float = 0.0
    emissions_kg_range: list[float] | None = None  # from the energy range; intensity taken as exact
    # A time-varying intensity (carbon_intensity_series): its file, span and range; emissions are
    # then the sum over time of energy x the intensity at that time.
    carbon_intensity_series: dict | None = None
    pause_above_g_per_kwh: float | None = None
    # Optional, each None unless asked for; never added to emissions_kg.
    embodied_kg: float | None = None  # estimated manufacturing emissions amortised over the run
    embodied: dict | None = None  # how: per-device figures, lifetime, sources
    water_l: float | None = None  # on-site water, litres (WUE x IT energy)
    water_l_per_kwh: float | None = None
    energy_cost: float | None = None  # facility energy x price
    price_per_kwh: float | None = None
    currency: str | None = None
    world_size: int = 1
    num_hosts: int = 1
    sensors: list[dict] = field(default_factory=list)  # name, component, measured, method, scope
    unavailable: list[dict] = field(default_factory=list)  # source, reason
    warnings: list[str] = field(default_factory=list)
    steps: int = 0  # training batches
    optimizer_steps: int | None = None  # Lightning's global_step (fewer with gradient accumulation)
    epochs: int = 0
    samples: int = 0  # training samples
    tokens: int = 0  # training tokens (real, padding excluded)
    # {phase: {"batches", "samples", "tokens" (real), "padded_tokens" (as processed)}}
    work_by_phase: dict[str, dict[str, int]] = field(default_factory=dict)
    energy_per_sample_j: float | None = None
    energy_per_token_j: float | None = None
    samples_per_s: float | None = None
    idle_power_w: float | None = None
    net_energy_kwh: float | None = None
    predicted_energy_kwh: float | None = None
    predicted_emissions_kg: float | None = None
    budget_stopped: str | None = None
    paused_s: float = 0.0  # time paused by carbon-aware pausing
    snapshot_at: str | None = None  # while status is "running": when this snapshot was taken
    context: dict = field(default_factory=dict)
    config: dict | None = None
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("energy_kwh_by_") and isinstance(value, dict):
                setattr(self, f.name, {str(k): v for k, v in value.items()})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (deep copy; NaN and infinities become None)."""
        return _json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FootprintReport:
        """Build a report from :meth:`to_dict` output; nothing is recomputed.

        Unknown keys are ignored (newer writers), missing keys take their defaults (older
        writers). Raises :class:`ReportError` when ``data`` is not a dict or a field has the
        wrong type (the message names the field, the expected type and the value).
        """
        if not isinstance(data, dict):
            raise ReportError(f"a footprint must be a JSON object, got {type(data).__name__}")
        fields = [f for f in dataclasses.fields(cls) if f.name in data]
        return cls(**{f.name: _checked(f, data[f.name]) for f in fields})

    def with_carbon(self, pue: float, intensity: carbon.CarbonIntensity | float) -> FootprintReport:
        """A (shallow) copy with PUE, carbon intensity and emissions computed from ``energy_kwh``.

        Sets ``pue``, ``facility_energy_kwh`` (energy x PUE), the intensity, its source and
        location, ``emissions_kg``, ``predicted_emissions_kg`` (when ``predicted_energy_kwh``
        is set), and appends the intensity's warning (world-average fallback) once.

        Args:
            pue: Power usage effectiveness, >= 1.0.
            intensity: From :func:`lightning_green.carbon.intensity.resolve_intensity`, or a number in
                g CO2e/kWh (recorded with source "explicit").
        """
        if not isinstance(intensity, carbon.CarbonIntensity):
            intensity = carbon.resolve_intensity(carbon_intensity_g_per_kwh=intensity)
        pue = carbon.validate_pue(pue)
        g = intensity.g_per_kwh
        predicted = self.predicted_energy_kwh
        new_warnings = list(self.warnings)
        if intensity.warning and intensity.warning not in new_warnings:
            new_warnings.append(intensity.warning)
        return dataclasses.replace(
            self,
            pue=pue,
            facility_energy_kwh=self.energy_kwh * pue,
            carbon_intensity_g_per_kwh=g,
            carbon_intensity_source=intensity.source,
            country_iso_code=intensity.country_iso_code,
            cloud_provider=intensity.cloud_provider,
            cloud_region=intensity.cloud_region,
            emissions_kg=carbon.emissions_kg(self.energy_kwh, pue, g),
            predicted_emissions_kg=(
                None if predicted is None else carbon.emissions_kg(predicted, pue, g)
            ),
            warnings=new_warnings,
        )

    def summary(self) -> str:
        """A short human readable text: energy by component and phase, CO2, inputs, warnings."""
        return summary_text(self)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


_TYPES = {"int": int, "str": str, "dict": dict, "list": list}


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:  # a JSON integer beyond the float range
        return False
    return True


def _items_ok(declared: str, value: Any) -> bool:
    """The items of a typed container (a corrupt file must fail here, not later in compare)."""
    if declared.startswith("dict[str, float]"):
        return all(v is None or _is_number(v) for v in value.values())
    if declared.startswith("list[str]"):
        return all(isinstance(v, str) for v in value)
    if declared.startswith("list[dict]"):
        return all(isinstance(v, dict) for v in value)
    return True


def _checked(f: dataclasses.Field, value: Any) -> Any:
    declared = str(f.type)  # a string: annotations are postponed
    base = declared.replace(" | None", "").split("[")[0]
    if value is None and "None" in declared:
        return None
    if base == "float":
        if value is None:  # to_dict writes NaN as null
            return math.nan
        if _is_number(value):
            return float(value)
    elif base == "int":
        if isinstance(value, int) and _is_number(value):
            return value
    elif base not in _TYPES or (isinstance(value, _TYPES[base]) and _items_ok(declared, value)):
        return value
    raise ReportError(f"footprint field {f.name!r} must be {declared}, got {value!r}")


def write_footprint(report: FootprintReport, out_dir: str | os.PathLike) -> Path | str:
    """Write ``report`` to ``out_dir/footprint.json`` atomically; returns the path (the URL
    when ``out_dir`` is an fsspec URL such as ``s3://bucket/run``: one object put).

    Raises:
        TypeError, ValueError: A field holds something JSON cannot encode; the old file, if
            any, is left as it was.
    """
    text = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    return files.write_text(files.join(out_dir, FOOTPRINT_FILENAME), text)


def read_footprint(path: str | os.PathLike) -> FootprintReport:
    """Read a ``footprint.json`` (or the one inside a folder; local or an fsspec URL) back into a report.

    Raises:
        ReportError: The file cannot be read, is not JSON, has no ``schema`` or another
            schema than :data:`SCHEMA`, or a field of the wrong type. The message names the file.
    """
    path = path if files.is_remote(path) else Path(path)
    if files.is_dir(path):
        path = files.join(path, FOOTPRINT_FILENAME) if files.is_remote(path) else path / FOOTPRINT_FILENAME
    try:
        data = json.loads(files.read_bytes(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read footprint: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc}); the file may be truncated") from exc
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(
            f"{path}: no 'schema' key, so not a lightning-green footprint (expected {SCHEMA!r})"
        )
    if data["schema"] != SCHEMA:
        raise ReportError(f"{path}: schema {data['schema']!r} is not {SCHEMA!r}")
    try:
        return FootprintReport.from_dict(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from exc
