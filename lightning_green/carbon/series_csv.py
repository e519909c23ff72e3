"""Read a grid carbon intensity time series (timestamp, g CO2e/kWh) from a CSV file, offline.

Accepted header names (case-insensitive, surrounding spaces ignored, ``₂`` read as ``2``):

* time column, first found wins: ``timestamp``, ``datetime``, ``time``, ``timestamp_utc``,
  ``datetime_utc``, ``datetime (utc)`` (Electricity Maps' data-portal exports).
* intensity column (g CO2e per kWh), first found in this order wins unless
  ``intensity_column`` names one: ``carbon_intensity_g_per_kwh``, ``intensity_g_per_kwh``,
  ``g_per_kwh``, ``carbon_intensity``, ``carbon intensity gco2eq/kwh (lca)``,
  ``carbon intensity gco2eq/kwh (direct)``. Electricity Maps exports carry both a life-cycle
  (LCA) and a direct column; LCA is taken by default because codecarbon's country figures
  (Our World in Data) are life-cycle figures too, so a series and a country compare like
  for like.

Timestamps: ISO 8601 with a UTC offset (``2024-05-01T13:00:00+02:00``, ``...Z``) or unix
seconds (``1714561200``, ``1714561200.5``). A timestamp without an offset is accepted only
in a column whose name says UTC (``datetime (utc)``, ``timestamp_utc``, ``datetime_utc``);
elsewhere it is rejected, since local time would shift the whole series.

The delimiter is ``,``, or ``;`` / tab when the header line has no comma. Blank lines are
skipped; other columns are ignored. Everything here only parses: the rules on order, gaps
and values are :class:`lightning_green.carbon.series.IntensitySeries`' (it reports problems
with the file's line numbers that this reader returns).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["INTENSITY_COLUMNS", "TIME_COLUMNS", "UTC_TIME_COLUMNS", "ParsedSeries", "read_intensity_csv"]

TIME_COLUMNS = ("timestamp", "datetime", "time", "timestamp_utc", "datetime_utc", "datetime (utc)")
UTC_TIME_COLUMNS = frozenset({"timestamp_utc", "datetime_utc", "datetime (utc)"})
INTENSITY_COLUMNS = (
    "carbon_intensity_g_per_kwh",
    "intensity_g_per_kwh",
    "g_per_kwh",
    "carbon_intensity",
    "carbon intensity gco2eq/kwh (lca)",
    "carbon intensity gco2eq/kwh (direct)",
)


@dataclass(frozen=True)
class ParsedSeries:
    """Raw rows of a series file, in file order (not yet checked for order, gaps or values).

    Attributes:
        t_unix: Timestamps, unix seconds.
        g_per_kwh: Intensities, g CO2e/kWh, as written (may be negative or NaN: checked later).
        lines: The file line (1-based) of each row, for error messages.
        column: The intensity column's header as written in the file.
    """

    t_unix: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    lines: tuple[int, ...]
    column: str


def _norm(name: str) -> str:
    return " ".join(name.replace("\u2082", "2").strip().lower().split())


def _fail(arg: str, path: str, what: str) -> ValueError:
    return ValueError(f"`{arg}`={path!r}: {what}")


def parse_timestamp(text: str, *, naive_is_utc: bool) -> float:
    """Unix seconds from ISO 8601 with an offset, or from a plain number of seconds.

    Raises:
        ValueError: Unparseable, non-finite, or without an offset while ``naive_is_utc`` is False.
    """
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is not finite")
        return seconds
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is neither ISO 8601 (e.g. '2024-05-01T13:00:00+02:00') nor unix seconds"
        ) from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(
                f"timestamp {text!r} has no UTC offset; write it as '{value}+00:00' (or 'Z'), "
                "use unix seconds, or name the column 'timestamp_utc'"
            )
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    if ";" in header_line:
        return ";"
    return "\t" if "\t" in header_line else ","


def _pick(header: list[str], wanted: tuple[str, ...], given: str | None, kind: str, arg: str, path: str) -> int:
    normalised = [_norm(h) for h in header]
    if given is not None:
        if _norm(given) in normalised:
            return normalised.index(_norm(given))
        raise _fail(arg, path, f"no column {given!r} (intensity_column); the header has {header}")
    for name in wanted:
        if name in normalised:
            return normalised.index(name)
    raise _fail(arg, path, f"no {kind} column: the header has {header}; accepted names are {list(wanted)}")


def read_intensity_csv(
    path: str | os.PathLike[str],
    *,
    intensity_column: str | None = None,
    arg: str = "carbon_intensity_series",
) -> ParsedSeries:
    """Parse ``path`` into timestamps and intensities (see the module docstring for the format).

    Args:
        path: The CSV file.
        intensity_column: The intensity column's header, when the default choice is not wanted.
        arg: Argument name used in error messages.

    Raises:
        ValueError: Missing or unreadable file, no header, no accepted column, no data rows,
            an empty or non-numeric cell, or an unparseable timestamp; the message names ``arg``,
            the file and the line.
    """
    shown = os.fspath(path)
    file = Path(shown)
    if not file.is_file():
        raise _fail(arg, shown, "no such file (a CSV with a timestamp and a g CO2e/kWh column)")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(arg, shown, f"cannot be read as UTF-8 text: {err}") from err
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise _fail(arg, shown, "the file is empty; expected a header such as 'timestamp,carbon_intensity_g_per_kwh'")
    reader = csv.reader(lines[first:], delimiter=_delimiter(lines[first]))
    header = next(reader)
    t_col = _pick(header, TIME_COLUMNS, None, "timestamp", arg, shown)
    g_col = _pick(header, INTENSITY_COLUMNS, intensity_column, "carbon intensity (g CO2e/kWh)", arg, shown)
    naive_is_utc = _norm(header[t_col]) in UTC_TIME_COLUMNS
    times: list[float] = []
    values: list[float] = []
    where: list[int] = []
    for offset, row in enumerate(reader, start=first + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, g_col):
            raise _fail(arg, shown, f"line {offset} has {len(row)} cells, fewer than the header's {len(header)}")
        try:
            t = parse_timestamp(row[t_col], naive_is_utc=naive_is_utc)
        except ValueError as err:
            raise _fail(arg, shown, f"line {offset}: {err}") from None
        cell = row[g_col].strip()
        try:
            g = float(cell)
        except ValueError:
            raise _fail(
                arg, shown, f"line {offset}: intensity {cell!r} in column {header[g_col]!r} is not a number "
                "(missing values are not filled in: remove or fill the row)",
            ) from None
        times.append(t)
        values.append(g)
        where.append(offset)
    if not times:
        raise _fail(arg, shown, "the file has a header but no data rows")
    return ParsedSeries(tuple(times), tuple(values), tuple(where), header[g_col].strip())
