"""``emissions.csv`` in codecarbon's format, so codecarbon's tooling reads our runs.

Columns and order are those of codecarbon 3.x's ``EmissionsData`` (checked against the
installed codecarbon by the tests). Units as in codecarbon: ``duration`` s, ``emissions``
kg CO2e, ``emissions_rate`` kg/s, ``cpu_power``/``gpu_power``/``ram_power`` W (run average),
``cpu_energy``/``gpu_energy``/``ram_energy``/``energy_consumed`` kWh, ``ram_total_size`` GB,
``water_consumed`` L. Like codecarbon, energy and power columns include the PUE.
``codecarbon_version`` is the version of the codecarbon data used for the intensity.

One row per run id, cumulative for that run: a run that ends again (``fit`` then ``test``, a
resume in the same folder) replaces its row (codecarbon's ``on_csv_write="update"``), so the
sum of the rows, as codecarbon's dashboard computes it, counts each run once.

Machine columns come from ``report.context`` when present (keys ``project_name``,
``experiment_id``, ``os``, ``python_version``, ``cpu_count``, ``cpu_model``, ``gpu_count``,
``gpu_model``, ``ram_total_size_gb``, ``tracking_mode``, ``cpu_utilization_percent``,
``gpu_utilization_percent``, ``ram_utilization_percent``, ``ram_used_gb``), else from
cheap local facts (platform, ``os.cpu_count()``, the report's GPU sensors) or left empty.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_green import carbon
from lightning_green.outputs import files

if TYPE_CHECKING:
    from lightning_green.outputs.footprint import FootprintReport

EMISSIONS_FILENAME = "emissions.csv"
#: codecarbon 3.3 ``EmissionsData`` field order.
EMISSIONS_CSV_COLUMNS: tuple[str, ...] = (
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "water_consumed", "country_name", "country_iso_code",
    "region", "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version",
    "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
    "ram_total_size", "tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
    "ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue",
)


@functools.lru_cache(maxsize=1)
def _codecarbon_version() -> str:  # importlib.metadata takes ~1.5 ms: once per process
    try:
        return metadata.version("codecarbon")
    except metadata.PackageNotFoundError:
        return ""


def _ram_total_gb() -> float | str:
    try:  # GiB, as codecarbon's ram_total_size
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (AttributeError, ValueError, OSError):
        return ""


def _country_name(code: str | None) -> str:
    if not code:
        return ""
    try:
        return carbon.country_codes().get(code, "")
    except RuntimeError:  # codecarbon data missing
        return ""


def emissions_row(report: FootprintReport) -> dict[str, Any]:
    """The emissions.csv row for ``report``: column -> value (codecarbon units)."""
    ctx = report.context or {}
    pue = report.pue
    duration_s = report.duration_s
    by_component = report.energy_kwh_by_component

    def energy(component: str) -> float:
        return by_component.get(component, 0.0) * pue

    def power_w(energy_kwh: float) -> float:
        return energy_kwh * 3.6e6 / duration_s if duration_s > 0 else 0.0

    gpu_sensors = sum(1 for s in report.sensors if s.get("component") == "gpu")
    return {
        "timestamp": report.ended_at or report.started_at or "",
        "project_name": ctx.get("project_name", "lightning-green"),
        "run_id": report.run_id,
        "experiment_id": ctx.get("experiment_id", ""),
        "duration": duration_s,
        "emissions": report.emissions_kg,
        "emissions_rate": report.emissions_kg / duration_s if duration_s > 0 else 0.0,
        "cpu_power": power_w(energy("cpu")),
        "gpu_power": power_w(energy("gpu")),
        "ram_power": power_w(energy("ram")),
        "cpu_energy": energy("cpu"),
        "gpu_energy": energy("gpu"),
        "ram_energy": energy("ram"),
        "energy_consumed": report.energy_kwh * pue,
        "water_consumed": 0.0,
        "country_name": _country_name(report.country_iso_code),
        "country_iso_code": report.country_iso_code or "",
        "region": "",
        "cloud_provider": report.cloud_provider or "",
        "cloud_region": report.cloud_region or "",
        "os": ctx.get("os") or platform.platform(),
        "python_version": ctx.get("python_version") or platform.python_version(),
        "codecarbon_version": _codecarbon_version(),
        "cpu_count": ctx.get("cpu_count") or os.cpu_count() or "",
        "cpu_model": ctx.get("cpu_model", ""),
        "gpu_count": ctx.get("gpu_count", gpu_sensors),
        "gpu_model": ctx.get("gpu_model", ""),
        "longitude": "",
        "latitude": "",
        "ram_total_size": ctx.get("ram_total_size_gb") or _ram_total_gb(),
        "tracking_mode": ctx.get("tracking_mode", "machine"),
        "cpu_utilization_percent": ctx.get("cpu_utilization_percent", ""),
        "gpu_utilization_percent": ctx.get("gpu_utilization_percent", ""),
        "ram_utilization_percent": ctx.get("ram_utilization_percent", ""),
        "ram_used_gb": ctx.get("ram_used_gb", ""),
        "on_cloud": "Y" if report.cloud_provider else "N",
        "pue": pue,
        "wue": 0.0,
    }


def _backup_path(path: str) -> str:
    # codecarbon's naming (core/util.py backup): emissions.csv.bak, emissions.csv_0.bak, ...
    candidate, idx = f"{path}.bak", 0
    while files.exists(candidate):
        candidate, idx = f"{path}_{idx}.bak", idx + 1
    return candidate


def _read_old(path: str) -> bytes:
    try:
        return files.read_bytes(path)
    except FileNotFoundError:
        return b""


def _rows_of_other_runs(old: str, header: list[str], run_id: str) -> list[list[str]]:
    """The data rows of ``old`` (a CSV text with ``header``) whose ``run_id`` is not ``run_id``."""
    rows = list(csv.reader(io.StringIO(old.lstrip("\ufeff"))))[1:]
    column = header.index("run_id")
    return [row for row in rows if row and not (len(row) > column and row[column] == run_id)]


def write_emissions_csv(report: FootprintReport, out_dir: str | os.PathLike) -> Path | str:
    """Write ``report``'s row into ``out_dir/emissions.csv``: one row per run id.

    Every row is cumulative for its run (like codecarbon's), so a run that ends several times
    (``fit`` then ``test`` on one callback, a resume into the same folder) replaces its own row
    instead of adding one: summing the file's rows, as codecarbon's dashboard and a pandas
    ``sum()`` do, counts every run once. This is codecarbon's ``on_csv_write="update"``: the
    run's old row is dropped and the new one goes last; other runs' rows stay as they were.

    Like codecarbon: a new file gets a header; an existing file whose header has the same set
    of columns keeps its own column order; a file with another header is first saved as
    ``emissions.csv.bak`` (``emissions.csv_0.bak``, ...) and a new file is started. The file
    is rewritten atomically, so a crash leaves the old file; two processes writing one file
    at the same moment may lose a row. ``out_dir`` may be an fsspec URL (``s3://bucket/run``):
    the object is read and put again whole.

    Returns:
        The path of emissions.csv (its URL for a remote ``out_dir``).
    """
    path = files.join(out_dir, EMISSIONS_FILENAME)
    old_bytes = _read_old(path)
    old = old_bytes.decode("utf-8", errors="replace")
    header = list(EMISSIONS_CSV_COLUMNS)
    kept: list[list[str]] = []
    if old.strip():
        first_line = old.lstrip("\ufeff").splitlines()[0]
        existing = next(csv.reader([first_line]), [])
        if sorted(existing) == sorted(header):
            header = existing
            kept = _rows_of_other_runs(old, header, str(report.run_id))
        else:
            files.write_bytes(_backup_path(path), old_bytes)
    row = emissions_row(report)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    writer.writerow([row[c] for c in header])
    return files.write_bytes(path, buf.getvalue().encode("utf-8"))


#: The former name: it now replaces the run's row rather than appending another.
append_emissions_csv = write_emissions_csv
