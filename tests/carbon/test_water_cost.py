"""Water (WUE per IT kWh) and electricity cost (facility kWh x price, with a currency)."""

from __future__ import annotations

import re

import pytest

from lightning_green.carbon.cost import EnergyPrice, check_currency, energy_cost, validate_price
from lightning_green.carbon.water import WaterUse, water_l


def test_water_is_it_energy_times_wue_without_pue():
    assert water_l(2.0, 0.55) == pytest.approx(1.1, rel=1e-12)
    assert WaterUse(1.8).litres(10.0) == pytest.approx(18.0, rel=1e-12)
    assert WaterUse(0).litres(5.0) == 0.0


@pytest.mark.parametrize("bad", [-0.1, 25, 550, float("nan"), "0.5", None])
def test_bad_wue_is_rejected_with_its_range(bad):
    with pytest.raises(ValueError, match=r"water_l_per_kwh must be a number >= 0 and <= 20, got " + re.escape(repr(bad))):
        WaterUse(bad)


def test_cost_is_facility_energy_times_price():
    assert energy_cost(2.0, 1.5, 0.2) == pytest.approx(0.6, rel=1e-12)
    price = EnergyPrice(30, "jpy")
    assert price.currency == "JPY" and price.price_per_kwh == 30.0
    assert price.cost(1.0, 1.2) == pytest.approx(36.0, rel=1e-12)


def test_price_without_currency_and_currency_without_price_are_rejected():
    assert validate_price(None, None) is None
    with pytest.raises(ValueError, match=r"price_per_kwh and currency go together .* got price_per_kwh=0.25, currency=None"):
        validate_price(0.25, None)
    with pytest.raises(ValueError, match=r"got price_per_kwh=None, currency='EUR'"):
        validate_price(None, "EUR")
    assert validate_price(0.25, " eur ") == EnergyPrice(0.25, "EUR")


@pytest.mark.parametrize("bad", ["euro", "€", "EU", "US$", "", 978, None])
def test_bad_currency_is_rejected(bad):
    with pytest.raises(ValueError, match=r"currency must be an ISO 4217 currency code of 3 letters .* got " + re.escape(repr(bad))):
        check_currency(bad)


@pytest.mark.parametrize("bad", [-0.1, float("inf"), "0.2"])
def test_bad_price_is_rejected(bad):
    with pytest.raises(ValueError, match=r"price_per_kwh must be a number >= 0, got " + re.escape(repr(bad))):
        validate_price(bad, "EUR")
