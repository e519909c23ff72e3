"""One check for the carbon, water, cost and embodied options, run before any training.

:func:`validate_carbon_options` takes the user-facing keys (as EnergyCallback / EnergyMeter /
Hydra pass them) and returns a :class:`CarbonOptions` of parsed objects, or raises ValueError
naming the argument, what is allowed and the value given. Example::

    options = validate_carbon_options(
        carbon_intensity_series="grid.csv", pause_above_g_per_kwh=300,
        water_l_per_kwh=0.55, price_per_kwh=0.25, currency="EUR", embodied=True,
    )
    policy = options.pause_policy()              # None without pause_above_g_per_kwh
    report_fields = options.figures(it_energy_kwh=1.5, pue=1.2, hours=2.0,
                                    gpu_count=1, cpu_sockets=1, ram_gb=64)
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from lightning_green.carbon.cost import EnergyPrice, validate_price
from lightning_green.carbon.embodied import EmbodiedModel
from lightning_green.carbon.intensity import CarbonWarning
from lightning_green.carbon.pause import DEFAULT_MAX_PAUSE_S, PausePolicy
from lightning_green.carbon.series import ARG as SERIES_ARG
from lightning_green.carbon.series import IntensitySeries, iso_utc
from lightning_green.carbon.water import WaterUse
from lightning_green.validation import check_number

__all__ = ["CarbonOptions", "parse_embodied", "parse_series", "validate_carbon_options"]


@dataclass(frozen=True)
class CarbonOptions:
    """Parsed carbon options; every field None when its feature is off.

    Attributes:
        series: Time-varying intensity; with it, emissions are summed per interval.
        pause_above_g_per_kwh: Carbon-aware pausing threshold (needs ``series``).
        max_pause_s: Most seconds paused in a run.
        water: On-site WUE (litres per IT kWh).
        price: Electricity price and currency.
        embodied: Embodied-emissions model.
    """

    series: IntensitySeries | None = None
    pause_above_g_per_kwh: float | None = None
    max_pause_s: float = DEFAULT_MAX_PAUSE_S
    water: WaterUse | None = None
    price: EnergyPrice | None = None
    embodied: EmbodiedModel | None = None

    def pause_policy(
        self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], Any] = time.sleep
    ) -> PausePolicy | None:
        """A fresh :class:`PausePolicy` for one run, or None when pausing is off."""
        if self.pause_above_g_per_kwh is None or self.series is None:
            return None
        return PausePolicy(self.series, self.pause_above_g_per_kwh, max_pause_s=self.max_pause_s,
                           clock=clock, sleep=sleep)

    def describe(self) -> dict[str, Any]:
        """The inputs as footprint.json records them (None for what is off)."""
        return {
            "carbon_intensity_series": None if self.series is None else self.series.describe(),
            "pause_above_g_per_kwh": self.pause_above_g_per_kwh,
            "max_pause_s": self.max_pause_s if self.pause_above_g_per_kwh is not None else None,
            "water_l_per_kwh": None if self.water is None else self.water.water_l_per_kwh,
            "price_per_kwh": None if self.price is None else self.price.price_per_kwh,
            "currency": None if self.price is None else self.price.currency,
        }

    def figures(
        self,
        *,
        it_energy_kwh: float,
        pue: float,
        hours: float,
        gpu_count: float = 0.0,
        cpu_sockets: float = 0.0,
        ram_gb: float = 0.0,
    ) -> dict[str, Any]:
        """Water, cost and embodied figures of a run, keyed as in footprint.json.

        Args:
            it_energy_kwh: The run's IT energy (before PUE), kWh.
            pue: The run's PUE (cost uses facility energy; water is per IT kWh).
            hours: Wall-clock hours the hardware was held (embodied).
            gpu_count, cpu_sockets, ram_gb: Hardware held (embodied); fractions allowed.

        Returns:
            ``water_l``, ``water_l_per_kwh``, ``energy_cost``, ``price_per_kwh``, ``currency``,
            ``embodied_kg``, ``embodied`` (detail dict); None for each feature that is off.
        """
        out: dict[str, Any] = {
            "water_l": None, "water_l_per_kwh": None, "energy_cost": None, "price_per_kwh": None,
            "currency": None, "embodied_kg": None, "embodied": None,
        }
        if self.water is not None:
            out["water_l"] = self.water.litres(it_energy_kwh)
            out["water_l_per_kwh"] = self.water.water_l_per_kwh
        if self.price is not None:
            out["energy_cost"] = self.price.cost(it_energy_kwh, pue)
            out["price_per_kwh"], out["currency"] = self.price.price_per_kwh, self.price.currency
        if self.embodied is not None:
            estimate = self.embodied.estimate(gpu_count=gpu_count, cpu_sockets=cpu_sockets, ram_gb=ram_gb, hours=hours)
            out["embodied_kg"], out["embodied"] = estimate.kg, estimate.to_dict()
        return out


def parse_series(value: Any, *, now_unix: float | None = None, max_gap_s: float | None = None) -> IntensitySeries | None:
    """None, a CSV path or an :class:`IntensitySeries` -> a series that covers ``now_unix``.

    Args:
        value: The ``carbon_intensity_series`` option.
        now_unix: The moment the run is set up (default: ``time.time()``); the series must
            cover it, or every joule would be priced at an edge value.
        max_gap_s: Passed to :meth:`IntensitySeries.from_csv` for a path.
    """
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        series = IntensitySeries.from_csv(os.path.abspath(os.fspath(value)), max_gap_s=max_gap_s)
    elif isinstance(value, IntensitySeries):
        series = value
    else:
        raise ValueError(f"{SERIES_ARG} must be None, a CSV path or an IntensitySeries, got {value!r}")
    now = time.time() if now_unix is None else float(check_number("now_unix", now_unix, minimum=0.0))
    if not series.covers(now):
        raise ValueError(
            f"`{SERIES_ARG}` ({series.path or 'in memory'}) covers {iso_utc(series.start_unix)} to "
            f"{iso_utc(series.end_unix)}, not now ({iso_utc(now)}): every joule would be priced at the "
            "series' edge value. Pass a series that covers the run (a forecast or a current "
            "export), or a constant carbon_intensity_g_per_kwh."
        )
    return series


def parse_embodied(value: Any) -> EmbodiedModel | None:
    """None/False -> off; True -> defaults; a mapping of :class:`EmbodiedModel` fields; or a model."""
    if value is None or value is False:
        return None
    if value is True:
        return EmbodiedModel()
    if isinstance(value, EmbodiedModel):
        return value
    if isinstance(value, Mapping):
        allowed = [f.name for f in fields(EmbodiedModel)]
        unknown = sorted(set(map(str, value)) - set(allowed))
        if unknown:
            raise ValueError(f"embodied takes the keys {allowed}, got unknown {unknown} in {dict(value)!r}")
        given = {str(k): v for k, v in value.items()}
        if "sources" in given and not isinstance(given["sources"], str):
            given["sources"] = tuple(given["sources"])
        return EmbodiedModel(**given)
    raise ValueError(f"embodied must be None, False, True, a dict of {[f.name for f in fields(EmbodiedModel)]} "
                     f"or an EmbodiedModel, got {value!r}")


def validate_carbon_options(
    *,
    carbon_intensity_series: Any = None,
    pause_above_g_per_kwh: Any = None,
    max_pause_s: Any = None,
    water_l_per_kwh: Any = None,
    price_per_kwh: Any = None,
    currency: Any = None,
    embodied: Any = None,
    series_max_gap_s: Any = None,
    now_unix: float | None = None,
) -> CarbonOptions:
    """Check every carbon option at construction time and return them parsed.

    Args:
        carbon_intensity_series: None, a CSV path (see :mod:`lightning_green.carbon.series_csv`)
            or an :class:`IntensitySeries`; must cover ``now_unix``.
        pause_above_g_per_kwh: Pause between steps above this intensity; needs the series, and
            the series must drop to it at least once.
        max_pause_s: Most seconds paused per run (default 86400).
        water_l_per_kwh: On-site WUE, litres per IT kWh, in [0, 20].
        price_per_kwh: Price per facility kWh, >= 0; needs ``currency``.
        currency: ISO 4217 code (3 letters); needs ``price_per_kwh``.
        embodied: None/False, True (defaults), a dict of EmbodiedModel fields, or an EmbodiedModel.
        series_max_gap_s: ``max_gap_s`` for a series read from a path.
        now_unix: When the run is set up (default: now).

    Raises:
        ValueError: Any option out of its allowed values (the message names it and the value).
    """
    series = parse_series(carbon_intensity_series, now_unix=now_unix, max_gap_s=series_max_gap_s)
    max_pause = DEFAULT_MAX_PAUSE_S if max_pause_s is None else float(
        check_number("max_pause_s", max_pause_s, exclusive_minimum=0.0))
    threshold = None
    if pause_above_g_per_kwh is not None:
        if series is None:
            raise ValueError(
                f"pause_above_g_per_kwh={pause_above_g_per_kwh!r} needs carbon_intensity_series (a CSV of "
                "timestamp and g/kWh covering the run) to know when the grid is cleaner; got none"
            )
        threshold = PausePolicy(series, pause_above_g_per_kwh).threshold_g_per_kwh  # validates the range
        low, high = float(series.g_per_kwh.min()), float(series.g_per_kwh.max())
        if threshold < low:
            raise ValueError(
                f"pause_above_g_per_kwh={pause_above_g_per_kwh!r} is below every value of {SERIES_ARG} "
                f"(min {low:g} g/kWh): a pause could never end, so none would happen; pass a threshold "
                f"between {low:g} and {high:g}"
            )
        if threshold >= high:
            warnings.warn(
                f"pause_above_g_per_kwh={threshold:g} is at or above every value of {SERIES_ARG} "
                f"(max {high:g} g/kWh): the run will never pause",
                CarbonWarning, stacklevel=2,
            )
    water = None if water_l_per_kwh is None else WaterUse(water_l_per_kwh)
    return CarbonOptions(
        series=series, pause_above_g_per_kwh=threshold, max_pause_s=max_pause, water=water,
        price=validate_price(price_per_kwh, currency), embodied=parse_embodied(embodied),
    )
