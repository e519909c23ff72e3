"""carbon.py against codecarbon's own data files, read here independently."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lightning_green.carbon import intensity as carbon

CODECARBON = Path(importlib.util.find_spec("codecarbon").submodule_search_locations[0])
MIX = json.loads((CODECARBON / "data/private_infra/global_energy_mix.json").read_text())
PER_SOURCE = json.loads((CODECARBON / "data/private_infra/carbon_intensity_per_source.json").read_text())
with open(CODECARBON / "data/cloud/impact.csv", encoding="utf-8-sig", newline="") as _f:
    CLOUD = list(csv.DictReader(_f))
with open(CODECARBON / "data/hardware/cpu_power.csv", encoding="utf-8", newline="") as _f:
    CPU = {row["Name"]: row["TDP"] for row in csv.DictReader(_f)}


@pytest.mark.parametrize(
    ("code", "about_g_per_kwh"), [("FRA", 56), ("USA", 369), ("DEU", 381), ("IND", 713)]
)
def test_country_intensity_is_codecarbons(code, about_g_per_kwh):
    for given in (code, code.lower(), f" {code.title()} "):
        intensity = carbon.resolve_intensity(country_iso_code=given)
        assert intensity.g_per_kwh == MIX[code]["carbon_intensity"]
        assert intensity.country_iso_code == code
        assert intensity.country_name == MIX[code]["country_name"]
        assert intensity.source == f"codecarbon global_energy_mix.json: {code} (OWID {MIX[code]['year']})"
        assert intensity.warning is None
    # the published figures (Our World in Data 2023, bundled with codecarbon 3.x)
    assert round(intensity.g_per_kwh) == about_g_per_kwh


def test_every_cloud_region_is_codecarbons():
    assert len(CLOUD) > 10
    for row in CLOUD:
        intensity = carbon.resolve_intensity(
            cloud_provider=row["provider"].upper(), cloud_region=row["region"]
        )
        assert intensity.g_per_kwh == float(row["impact"])
        assert intensity.country_iso_code == row["countryIsoCode"]
        assert (intensity.cloud_provider, intensity.cloud_region) == (row["provider"], row["region"])
    belgium = carbon.resolve_intensity(cloud_provider="gcp", cloud_region="europe-west1")
    assert belgium.source == "codecarbon cloud impact.csv: gcp europe-west1"
    assert belgium.country_iso_code == "BEL"


def test_world_average_warns_and_is_codecarbons():
    with pytest.warns(carbon.CarbonWarning, match="world average"):
        intensity = carbon.resolve_intensity()
    assert intensity.g_per_kwh == PER_SOURCE["world_average"] == 475
    assert carbon.WORLD_AVERAGE_G_PER_KWH == PER_SOURCE["world_average"]
    assert "country_iso_code" in intensity.warning
    assert intensity.source == "world average (codecarbon carbon_intensity_per_source.json)"
    assert intensity.country_iso_code is None


def test_world_average_fallback_without_codecarbon_data(monkeypatch):
    monkeypatch.setattr(carbon, "codecarbon_data_path", lambda relative: None)
    assert carbon.world_average_g_per_kwh.__wrapped__() == carbon.FALLBACK_WORLD_AVERAGE_G_PER_KWH
    assert carbon.cpu_tdp_table.__wrapped__() == {}


def test_precedence_explicit_then_cloud_then_country():
    explicit = carbon.resolve_intensity(
        carbon_intensity_g_per_kwh=12.5, country_iso_code="fra", cloud_provider="aws",
        cloud_region="eu-west-3",  # not in codecarbon's data: recorded, not looked up
    )
    assert (explicit.g_per_kwh, explicit.source) == (12.5, "explicit")
    assert (explicit.country_iso_code, explicit.cloud_provider) == ("FRA", "aws")
    cloud = carbon.resolve_intensity(country_iso_code="IND", cloud_provider="gcp", cloud_region="europe-west9")
    row = next(r for r in CLOUD if r["region"] == "europe-west9")
    assert cloud.g_per_kwh == float(row["impact"]) != MIX["IND"]["carbon_intensity"]
    assert cloud.country_iso_code == "FRA"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a location given: no world-average warning
        assert carbon.resolve_intensity(country_iso_code="DEU").g_per_kwh == MIX["DEU"]["carbon_intensity"]


def test_unknown_country_names_it_and_suggests():
    with pytest.raises(ValueError, match="XYZ") as err:
        carbon.resolve_intensity(country_iso_code="XYZ")
    assert "country_codes()" in str(err.value) and "country_iso_code" in str(err.value)
    with pytest.raises(ValueError, match="FRA") as err:
        carbon.resolve_intensity(country_iso_code="FR")
    assert "alpha-3" in str(err.value) and "'FR'" in str(err.value)
    with pytest.raises(ValueError, match=r"DEU \(Germany\)"):
        carbon.resolve_intensity(country_iso_code="de")
    with pytest.raises(ValueError, match="FRA"):
        carbon.resolve_intensity(country_iso_code="France")
    with pytest.raises(TypeError, match="country_iso_code"):
        carbon.resolve_intensity(country_iso_code=250)
    assert carbon.country_codes()["FRA"] == "France"
    assert len(carbon.country_codes()) == len(MIX)


def test_unknown_cloud_lists_allowed_values():
    with pytest.raises(ValueError, match="cloud_provider") as err:
        carbon.resolve_intensity(cloud_provider="aws", cloud_region="us-east-1")
    assert "gcp" in str(err.value)
    n_gcp = sum(r["provider"] == "gcp" for r in CLOUD)
    with pytest.raises(ValueError, match=f"{n_gcp} gcp regions") as err:
        carbon.resolve_intensity(cloud_provider="gcp", cloud_region="europe-west99")
    assert "europe-west99" in str(err.value) and "cloud_regions('gcp')" in str(err.value)
    with pytest.raises(ValueError, match="cloud_region"):
        carbon.resolve_intensity(cloud_provider="gcp")
    assert len(carbon.cloud_regions("gcp")["gcp"]) == n_gcp


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_explicit_intensity_must_be_positive_finite(bad):
    with pytest.raises(ValueError, match="carbon_intensity_g_per_kwh") as err:
        carbon.resolve_intensity(carbon_intensity_g_per_kwh=bad)
    assert "> 0" in str(err.value) and repr(bad) in str(err.value)


@pytest.mark.parametrize("bad", ["56", True, None])
def test_explicit_intensity_must_be_a_number(bad):
    if bad is None:  # None means "not given": world average
        with pytest.warns(carbon.CarbonWarning):
            assert carbon.resolve_intensity(carbon_intensity_g_per_kwh=bad).g_per_kwh == 475
        return
    with pytest.raises(TypeError, match="carbon_intensity_g_per_kwh"):
        carbon.resolve_intensity(carbon_intensity_g_per_kwh=bad)


def test_validate_pue():
    assert carbon.validate_pue(1) == 1.0 and isinstance(carbon.validate_pue(1), float)
    assert carbon.validate_pue(1.58) == 1.58
    for bad in (0.99, 0.0, -2, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"`pue` must be finite and >= 1\.0") as err:
            carbon.validate_pue(bad)
        assert repr(bad) in str(err.value)
    with pytest.raises(TypeError, match="pue"):
        carbon.validate_pue("1.2")


def test_emissions_arithmetic():
    assert carbon.emissions_kg(2.0, 1.5, 400.0) == pytest.approx(1.2)
    assert carbon.emissions_kg(0.0, 1.0, 475.0) == 0.0
    fra = carbon.resolve_intensity(country_iso_code="FRA")
    assert carbon.emissions_kg(10.0, 1.1, fra.g_per_kwh) == pytest.approx(10 * 1.1 * MIX["FRA"]["carbon_intensity"] / 1000)
    with pytest.raises(ValueError, match="energy_kwh"):
        carbon.emissions_kg(-1.0, 1.0, 400.0)
    with pytest.raises(ValueError, match="pue"):
        carbon.emissions_kg(1.0, 0.5, 400.0)


@pytest.mark.parametrize(
    ("reported", "name"),
    [
        ("AMD EPYC 7543", "AMD EPYC 7543"),
        ("amd epyc 7543p", "AMD EPYC 7543P"),
        ("AMD EPYC 7543 32-Core Processor", "AMD EPYC 7543"),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Intel Xeon Gold 6248"),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248R"),
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", "Intel Xeon E5-2686 v4"),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "Intel Core i7-8700"),
        ("12th Gen Intel(R) Core(TM) i7-12700H", "Intel Core i7-12700H"),
        ("AMD Ryzen 9 5950X 16-Core Processor", "AMD Ryzen 9 5950X"),
        ("Apple M2 Pro", "Apple M2 Pro"),
    ],
)
def test_cpu_tdp_from_codecarbon_csv(reported, name):
    assert carbon.cpu_tdp_w(reported) == float(CPU[name])
    assert carbon.match_cpu(reported) == (name, float(CPU[name]))


@pytest.mark.parametrize(
    "reported", ["", "   ", "banana", "AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz", "QEMU Virtual CPU version 2.5+"]
)
def test_cpu_tdp_unknown_is_none(reported):
    assert carbon.cpu_tdp_w(reported) is None


def test_cpu_tdp_table_matches_csv():
    table = carbon.cpu_tdp_table()
    parsable = {}
    for name, tdp in CPU.items():
        try:
            value = float(tdp)
        except ValueError:  # e.g. "27.29.5" in codecarbon 3.3.2
            continue
        if value > 0:  # a 0 W TDP would make every estimate 0
            parsable[name] = value
    assert table == parsable
    assert len(table) > 1000


def test_import_and_lookups_never_import_codecarbon():
    code = (
        "import sys, lightning_green.carbon.intensity as c\n"
        "assert 'codecarbon' not in sys.modules\n"
        "c.resolve_intensity(country_iso_code='FRA'); c.cpu_tdp_w('AMD EPYC 7543')\n"
        "c.resolve_intensity(cloud_provider='gcp', cloud_region='us-west1')\n"
        "bad = [m for m in ('codecarbon', 'pandas', 'pynvml', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
