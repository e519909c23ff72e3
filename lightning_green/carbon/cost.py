"""Electricity cost of a run: facility energy (IT energy x PUE) x price per kWh, in a currency.

The price applies to what the electricity meter sees, so the PUE is included::

    energy_cost = IT energy (kWh) x pue x price_per_kwh      # in `currency`

A price per kWh of IT energy (some colocation contracts) is the same with ``pue=1``. A price
needs its currency and a currency needs its price: one without the other is rejected. The
currency is an ISO 4217 alphabetic code (three letters, e.g. ``EUR``, ``USD``, ``GBP``,
``JPY``); its format is checked, not its membership of the list. There is no default price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lightning_green.validation import check_number

__all__ = ["EnergyPrice", "check_currency", "energy_cost", "validate_price"]

_ISO_4217 = re.compile(r"[A-Za-z]{3}")


def check_currency(currency: Any, arg: str = "currency") -> str:
    """Return ``currency`` upper-cased if it is three ASCII letters (ISO 4217), else raise ValueError."""
    if isinstance(currency, str) and _ISO_4217.fullmatch(currency.strip()):
        return currency.strip().upper()
    raise ValueError(f"{arg} must be an ISO 4217 currency code of 3 letters (e.g. 'EUR', 'USD'), got {currency!r}")


def energy_cost(it_energy_kwh: float, pue: float, price_per_kwh: float) -> float:
    """Cost of ``it_energy_kwh`` of IT energy at ``pue`` and ``price_per_kwh`` (facility kWh)."""
    energy = check_number("it_energy_kwh", it_energy_kwh, minimum=0.0)
    factor = check_number("pue", pue, minimum=1.0)
    price = check_number("price_per_kwh", price_per_kwh, minimum=0.0)
    return float(energy * factor * price)


@dataclass(frozen=True)
class EnergyPrice:
    """A validated electricity price: ``price_per_kwh`` (>= 0, per facility kWh) in ``currency``.

    Raises:
        ValueError: A negative or non-finite price, or a currency that is not 3 letters.
    """

    price_per_kwh: float
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_per_kwh", float(check_number("price_per_kwh", self.price_per_kwh, minimum=0.0)))
        object.__setattr__(self, "currency", check_currency(self.currency))

    def cost(self, it_energy_kwh: float, pue: float) -> float:
        """Cost in :attr:`currency` of ``it_energy_kwh`` of IT energy at ``pue``."""
        return energy_cost(it_energy_kwh, pue, self.price_per_kwh)


def validate_price(price_per_kwh: Any, currency: Any) -> EnergyPrice | None:
    """Both None -> None; both given -> :class:`EnergyPrice`; one alone -> ValueError naming both."""
    if price_per_kwh is None and currency is None:
        return None
    if price_per_kwh is None or currency is None:
        raise ValueError(
            "price_per_kwh and currency go together (a price needs its ISO 4217 currency, e.g. "
            f"price_per_kwh=0.25, currency='EUR'), got price_per_kwh={price_per_kwh!r}, currency={currency!r}"
        )
    return EnergyPrice(price_per_kwh, currency)
