"""IntensitySeries.from_csv on real files: accepted formats and rejected ones, by line."""

from __future__ import annotations

import pytest

from lightning_green.carbon.series import IntensitySeries

T0 = 1_714_521_600  # 2024-05-01T00:00:00Z


def write(tmp_path, text, name="grid.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iso_with_offsets_and_unix_seconds_read_the_same(tmp_path):
    iso = write(tmp_path, "timestamp,carbon_intensity_g_per_kwh\n"
                "2024-05-01T02:00:00+02:00,120\n2024-05-01T01:00:00Z,80.5\n2024-05-01T02:00:00+00:00,95\n", "iso.csv")
    unix = write(tmp_path, f"Timestamp , Carbon_Intensity_g_per_kWh\n{T0},120\n{T0 + 3600}.0,80.5\n\n{T0 + 7200},95\n", "unix.csv")
    a, b = IntensitySeries.from_csv(iso), IntensitySeries.from_csv(unix)
    assert a.t_unix.tolist() == b.t_unix.tolist() == [T0, T0 + 3600, T0 + 7200]
    assert a.g_per_kwh.tolist() == b.g_per_kwh.tolist() == [120, 80.5, 95]
    assert a.describe()["path"] == str(iso) and a.describe()["column"] == "carbon_intensity_g_per_kwh"


ELECTRICITY_MAPS = (
    "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO\u2082eq/kWh (direct),"
    "Carbon Intensity gCO\u2082eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
    "Data Source,Data Estimated,Data Estimation Method\n"
    "2024-05-01 00:00:00,France,France,FR,20.1,41.5,95,30,x,false,\n"
    "2024-05-01 01:00:00,France,France,FR,18.0,39.0,95,30,x,false,\n"
)


def test_electricity_maps_export_takes_lca_by_default_and_naive_utc_times(tmp_path):
    path = write(tmp_path, "\ufeff" + ELECTRICITY_MAPS)  # a BOM, as spreadsheet exports write
    series = IntensitySeries.from_csv(path)
    assert series.t_unix.tolist() == [T0, T0 + 3600]
    assert series.g_per_kwh.tolist() == [41.5, 39.0]
    assert series.column == "Carbon Intensity gCO\u2082eq/kWh (LCA)"
    direct = IntensitySeries.from_csv(path, intensity_column="carbon intensity gco2eq/kwh (direct)")
    assert direct.g_per_kwh.tolist() == [20.1, 18.0]


def test_semicolon_delimiter(tmp_path):
    path = write(tmp_path, f"timestamp;g_per_kwh\n{T0};1\n{T0 + 900};2\n{T0 + 1800};3\n")
    assert IntensitySeries.from_csv(path).resolution_s == 900


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("timestamp,carbon_intensity_g_per_kwh\n", "header but no data rows"),
        ("when,carbon_intensity_g_per_kwh\n1,2\n", r"no timestamp column: the header has \['when', 'carbon_intensity_g_per_kwh'\]; accepted names are \['timestamp'"),
        ("timestamp,co2\n1,2\n", r"no carbon intensity \(g CO2e/kWh\) column.*accepted names are \['carbon_intensity_g_per_kwh'"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600},\n", r"line 3: intensity '' in column 'g_per_kwh' is not a number"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600},n/a\n", r"line 3: intensity 'n/a'"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600}\n", r"line 3 has 1 cells, fewer than the header's 2"),
        ("timestamp,g_per_kwh\n2024-05-01 00:00:00,1\n2024-05-01 01:00:00,2\n", r"line 2: timestamp '2024-05-01 00:00:00' has no UTC offset"),
        ("timestamp,g_per_kwh\nyesterday,1\n", r"line 2: timestamp 'yesterday' is neither ISO 8601"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 7200},2\n{T0 + 3600},3\n", r"line 4: timestamps out of order"),
        (f"timestamp,g_per_kwh\n{T0},1\n\n{T0},2\n{T0 + 3600},3\n", r"line 4: duplicate timestamp"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600},-5\n{T0 + 7200},3\n", r"line 3: intensity must be a finite number of g CO2e/kWh in \[0, 2000\], got -5.0"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600},nan\n", r"line 3: intensity must be a finite"),
        (f"timestamp,g_per_kwh\n{T0},1\n{T0 + 3600},2\n{T0 + 4 * 3600},3\n{T0 + 5 * 3600},3\n", r"gap of 10800 s between line 3 \(2024-05-01T01:00:00Z\) and line 4 \(2024-05-01T04:00:00Z\)"),
        (f"timestamp,g_per_kwh\n{T0}000,1\n{T0 + 3600}000,2\n", r"line 2: timestamp must be unix seconds"),
    ],
)
def test_bad_files_are_rejected_naming_the_argument_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"`carbon_intensity_series`.*{message}") as info:
        IntensitySeries.from_csv(path)
    assert str(path) in str(info.value)


def test_missing_file_and_unknown_intensity_column(tmp_path):
    with pytest.raises(ValueError, match=r"`carbon_intensity_series`='.*nope.csv': no such file"):
        IntensitySeries.from_csv(tmp_path / "nope.csv")
    path = write(tmp_path, ELECTRICITY_MAPS)
    with pytest.raises(ValueError, match=r"no column 'marginal' \(intensity_column\)"):
        IntensitySeries.from_csv(path, intensity_column="marginal")
