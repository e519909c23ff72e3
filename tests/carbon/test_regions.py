"""What-if regions against codecarbon's own data files, read here independently."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from lightning_green.carbon.regions import DEFAULT_REGIONS, emissions_in_regions, validate_region_codes

CODECARBON = Path(importlib.util.find_spec("codecarbon").submodule_search_locations[0])
MIX = json.loads((CODECARBON / "data/private_infra/global_energy_mix.json").read_text())
WORLD = json.loads((CODECARBON / "data/private_infra/carbon_intensity_per_source.json").read_text())["world_average"]
with open(CODECARBON / "data/cloud/impact.csv", encoding="utf-8-sig", newline="") as _f:
    CLOUD = {(r["provider"], r["region"]): float(r["impact"]) for r in csv.DictReader(_f)}


def test_each_region_is_energy_times_pue_times_codecarbons_intensity():
    rows = emissions_in_regions(2.5, 1.2, ["fra", "IND", "gcp:europe-west1", "world"])
    assert [r.code for r in rows] == ["FRA", "IND", "gcp:europe-west1", "WORLD"]
    expected = [MIX["FRA"]["carbon_intensity"], MIX["IND"]["carbon_intensity"], CLOUD[("gcp", "europe-west1")], WORLD]
    assert [r.g_per_kwh for r in rows] == expected
    assert [r.emissions_kg for r in rows] == pytest.approx([2.5 * 1.2 * g / 1000 for g in expected], rel=1e-12)
    assert rows[0].name == "France" and rows[2].name == "gcp europe-west1 (Belgium)"
    assert rows[3].name == "World average" and "world average" in rows[3].source


def test_default_regions_span_clean_to_coal_heavy_grids():
    rows = emissions_in_regions(1.0, 1.0)
    assert [r.code for r in rows] == [c for c in DEFAULT_REGIONS if c == "WORLD" or c in MIX]
    by_code = {r.code: r.g_per_kwh for r in rows}
    assert by_code["SWE"] < 100 < by_code["USA"] < by_code["IND"]
    assert max(by_code.values()) / min(by_code.values()) > 10


def test_unknown_or_malformed_codes_are_rejected_before_any_row():
    with pytest.raises(ValueError, match=r"Unknown `country_iso_code`='FR'.*alpha-2"):
        emissions_in_regions(1.0, 1.0, ["FRA", "FR"])
    with pytest.raises(ValueError, match=r"Unknown `cloud_provider`='azure'"):
        validate_region_codes(["azure:westeurope"])
    with pytest.raises(ValueError, match=r"'gcp:': a cloud region is 'provider:region'"):
        validate_region_codes(["gcp:"])
    with pytest.raises(ValueError, match=r"must be a list of codes .* got 'FRA'"):
        validate_region_codes("FRA")
    with pytest.raises(ValueError, match=r"region code must be .* got 3"):
        validate_region_codes([3])
    with pytest.raises(ValueError, match=r"pue must be a number >= 1, got 0.9"):
        emissions_in_regions(1.0, 0.9, ["FRA"])
    assert validate_region_codes(["fra", "FRA ", "usa"]) == ("FRA", "USA")
