"""validate_carbon_options: parsed objects for good options, named errors for bad ones."""

from __future__ import annotations

import warnings

import pytest

from lightning_green.carbon.embodied import EmbodiedModel
from lightning_green.carbon.intensity import CarbonWarning
from lightning_green.carbon.options import CarbonOptions, validate_carbon_options
from lightning_green.carbon.pause import PausePolicy
from lightning_green.carbon.series import IntensitySeries

H = 3600
T0 = 1_714_521_600
NOW = T0 + 1800


@pytest.fixture
def grid_csv(tmp_path):
    path = tmp_path / "grid.csv"
    rows = "\n".join(f"{T0 + i * H},{g}" for i, g in enumerate([100, 400, 250, 500]))
    path.write_text("timestamp,carbon_intensity_g_per_kwh\n" + rows + "\n")
    return path


def test_nothing_asked_is_all_off():
    options = validate_carbon_options()
    assert options == CarbonOptions()
    assert options.pause_policy() is None
    assert set(options.figures(it_energy_kwh=1, pue=1.2, hours=1).values()) == {None}
    assert options.describe() == {
        "carbon_intensity_series": None, "pause_above_g_per_kwh": None, "max_pause_s": None,
        "water_l_per_kwh": None, "price_per_kwh": None, "currency": None,
    }


def test_everything_asked_is_parsed_and_gives_the_report_figures(grid_csv):
    options = validate_carbon_options(
        carbon_intensity_series=str(grid_csv), pause_above_g_per_kwh=300, max_pause_s=600,
        water_l_per_kwh=0.5, price_per_kwh=0.2, currency="eur", embodied={"gpu_kg": 100, "utilisation": 1.0},
        now_unix=NOW,
    )
    assert isinstance(options.series, IntensitySeries) and options.series.g_per_kwh.tolist() == [100, 400, 250, 500]
    described = options.describe()
    assert described["carbon_intensity_series"]["path"] == str(grid_csv)
    assert (described["carbon_intensity_series"]["min_g_per_kwh"], described["carbon_intensity_series"]["max_g_per_kwh"]) == (100, 500)
    assert (described["pause_above_g_per_kwh"], described["max_pause_s"]) == (300, 600)
    figures = options.figures(it_energy_kwh=2.0, pue=1.5, hours=3.0, gpu_count=2, cpu_sockets=0, ram_gb=0)
    assert figures["water_l"] == pytest.approx(1.0)  # 2 IT kWh x 0.5 L/kWh, no PUE
    assert figures["energy_cost"] == pytest.approx(0.6) and figures["currency"] == "EUR"  # 2 x 1.5 x 0.2
    assert figures["embodied_kg"] == pytest.approx(2 * 100 * 3 / (6 * 8760))
    assert figures["embodied"]["label"] == "estimated" and figures["embodied"]["gpu_kg"] == 100

    clock_now = [T0 + 1.5 * H]  # 400 g/kWh until hour 2 (250), capped at max_pause_s
    policy = options.pause_policy(clock=lambda: clock_now[0], sleep=lambda s: clock_now.__setitem__(0, clock_now[0] + s))
    assert isinstance(policy, PausePolicy) and policy.wait_if_needed() == pytest.approx(600)


def test_series_objects_and_embodied_forms_are_accepted(grid_csv):
    series = IntensitySeries.from_csv(grid_csv)
    assert validate_carbon_options(carbon_intensity_series=series, now_unix=NOW).series is series
    assert validate_carbon_options(embodied=True).embodied == EmbodiedModel()
    assert validate_carbon_options(embodied=False).embodied is None
    model = EmbodiedModel(cpu_kg=50)
    assert validate_carbon_options(embodied=model).embodied is model


def test_a_series_that_does_not_cover_now_is_rejected(grid_csv):
    with pytest.raises(ValueError, match=r"`carbon_intensity_series` \(.*grid.csv\) covers 2024-05-01T00:00:00Z "
                       r"to 2024-05-01T04:00:00Z, not now \(2024-05-01T04:00:00Z\)"):
        validate_carbon_options(carbon_intensity_series=grid_csv, now_unix=T0 + 4 * H)
    with pytest.raises(ValueError, match=r"not now"):
        validate_carbon_options(carbon_intensity_series=grid_csv, now_unix=T0 - 1)


def test_series_max_gap_s_reaches_the_reader(tmp_path):
    path = tmp_path / "gappy.csv"
    path.write_text(f"timestamp,g_per_kwh\n{T0},1\n{T0 + H},2\n{T0 + 3 * H},3\n{T0 + 4 * H},4\n")
    with pytest.raises(ValueError, match="gap of 7200 s"):
        validate_carbon_options(carbon_intensity_series=path, now_unix=NOW)
    series = validate_carbon_options(carbon_intensity_series=path, series_max_gap_s=2 * H, now_unix=NOW).series
    assert series.max_gap_s == 2 * H


def test_pausing_needs_a_series_that_reaches_the_threshold(grid_csv):
    with pytest.raises(ValueError, match=r"pause_above_g_per_kwh=300 needs carbon_intensity_series"):
        validate_carbon_options(pause_above_g_per_kwh=300)
    with pytest.raises(ValueError, match=r"pause_above_g_per_kwh=50 is below every value .* \(min 100 g/kWh\)"):
        validate_carbon_options(carbon_intensity_series=grid_csv, pause_above_g_per_kwh=50, now_unix=NOW)
    with pytest.raises(ValueError, match=r"pause_above_g_per_kwh must be a number > 0 and <= 2000, got -5"):
        validate_carbon_options(carbon_intensity_series=grid_csv, pause_above_g_per_kwh=-5, now_unix=NOW)
    with pytest.warns(CarbonWarning, match="never pause"):
        validate_carbon_options(carbon_intensity_series=grid_csv, pause_above_g_per_kwh=500, now_unix=NOW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_carbon_options(carbon_intensity_series=grid_csv, pause_above_g_per_kwh=499, now_unix=NOW)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_per_kwh": 0.3}, r"price_per_kwh and currency go together"),
        ({"currency": "USD"}, r"price_per_kwh and currency go together"),
        ({"price_per_kwh": 0.3, "currency": "dollars"}, r"currency must be an ISO 4217 currency code"),
        ({"water_l_per_kwh": 550}, r"water_l_per_kwh must be a number >= 0 and <= 20, got 550"),
        ({"max_pause_s": 0}, r"max_pause_s must be a number > 0, got 0"),
        ({"embodied": {"gpu_kgs": 1}}, r"embodied takes the keys \['gpu_kg', .*\], got unknown \['gpu_kgs'\]"),
        ({"embodied": "yes"}, r"embodied must be None, False, True, a dict .* got 'yes'"),
        ({"embodied": {"lifetime_years": -2}}, r"embodied lifetime_years must be a number > 0"),
        ({"carbon_intensity_series": 42}, r"carbon_intensity_series must be None, a CSV path or an IntensitySeries, got 42"),
        ({"carbon_intensity_series": "no/such.csv"}, r"`carbon_intensity_series`='.*no/such.csv': no such file"),
    ],
)
def test_bad_options_are_rejected_with_a_named_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        validate_carbon_options(now_unix=NOW, **kwargs)


def test_hydra_config_nodes_are_accepted():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"embodied": {"gpu_kg": 120, "sources": ["vendor LCA"]}, "price_per_kwh": 0.2, "currency": "EUR"})
    options = validate_carbon_options(embodied=cfg.embodied, price_per_kwh=cfg.price_per_kwh, currency=cfg.currency)
    assert options.embodied == EmbodiedModel(gpu_kg=120, sources=("vendor LCA",))
    assert options.price.cost(1.0, 1.0) == pytest.approx(0.2)


def test_package_exports_load_lazily_without_numpy_at_import():
    import subprocess
    import sys

    code = ("import sys, lightning_green.carbon as c; assert 'numpy' not in sys.modules, 'numpy at import'; "
            "assert c.IntensitySeries.__module__ == 'lightning_green.carbon.series'; "
            "assert c.validate_carbon_options.__module__ == 'lightning_green.carbon.options'")
    subprocess.run([sys.executable, "-c", code], check=True)
