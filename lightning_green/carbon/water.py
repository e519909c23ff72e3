"""On-site water of a run from the data centre's water usage effectiveness (WUE).

WUE, as The Green Grid defines it (white paper #35, 2011), is the site's annual water usage
in litres divided by the energy of its *IT equipment* in kWh, so::

    water_l = IT energy (kWh, before PUE) x water_l_per_kwh

codecarbon's ``wue`` multiplies its PUE-scaled energy instead, so for the same WUE its litres
are PUE times these. Typical on-site figures: Li, Yang, Islam, Ren, "Making AI Less
'Thirsty'" (arXiv 2304.03271, 2023) estimate GPT-3's training in Microsoft's US data centres
(1,287 MWh) evaporated ~700,000 L on site: about 0.55 L/kWh (derived); air-cooled sites with little
evaporative cooling report far less, hot sites with cooling towers more. Only on-site water
is counted: the water used to generate the electricity (off-site) is excluded, and Li et al.
find it several times larger in the US. There is no default: water is reported only when
``water_l_per_kwh`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_green.validation import check_number

__all__ = ["MAX_WATER_L_PER_KWH", "WaterUse", "water_l"]

#: Catches unit slips (mL/kWh, L/MWh) before a run; not a physical limit.
MAX_WATER_L_PER_KWH = 20.0


def water_l(it_energy_kwh: float, water_l_per_kwh: float) -> float:
    """Litres of on-site water for ``it_energy_kwh`` of IT energy at ``water_l_per_kwh`` (WUE)."""
    energy = check_number("it_energy_kwh", it_energy_kwh, minimum=0.0)
    wue = check_number("water_l_per_kwh", water_l_per_kwh, minimum=0.0, maximum=MAX_WATER_L_PER_KWH)
    return float(energy * wue)


@dataclass(frozen=True)
class WaterUse:
    """A validated WUE (litres per IT kWh, in [0, 20]).

    Raises:
        ValueError: Out of range or not a number; the message names ``water_l_per_kwh``.
    """

    water_l_per_kwh: float

    def __post_init__(self) -> None:
        value = check_number("water_l_per_kwh", self.water_l_per_kwh, minimum=0.0, maximum=MAX_WATER_L_PER_KWH)
        object.__setattr__(self, "water_l_per_kwh", float(value))

    def litres(self, it_energy_kwh: float) -> float:
        """On-site litres for ``it_energy_kwh`` of IT energy (before PUE)."""
        return water_l(it_energy_kwh, self.water_l_per_kwh)
