"""The summary text and the ``show --json`` figures: ranges, naming of batches and optimizer
steps, plurals, a running footprint, serving, embodied emissions, water and cost."""

from __future__ import annotations

import dataclasses

import pytest

from lightning_green.outputs.footprint import FootprintReport
from lightning_green.outputs.summary import plural, summary_dict, summary_text

SENSORS = [
    {"name": "nvml:0", "component": "gpu", "measured": True, "method": "measured: nvml energy counter"},
    {"name": "cpu", "component": "cpu", "measured": False, "method": "estimated: 85 W TDP x load"},
]

# Newer footprint fields, as the file holds them (the report class may not have them yet).
NEW_FIELDS = {
    "energy_kwh_range": [0.110, 0.137],
    "energy_kwh_by_component_range": {"gpu": [0.095, 0.105], "cpu": [0.012, 0.028]},
    "emissions_kg_range": [0.0375, 0.0466],
    "optimizer_steps": 308,
    "work_by_phase": {"train": {"batches": 1234, "samples": 40000, "tokens": 0, "padded_tokens": 0},
                      "predict": {"batches": 63, "samples": 2000, "tokens": 50000, "padded_tokens": 128000}},
    "embodied_kg": 0.012,
    "embodied": {"method": "BLOOM-style amortisation over 5 years"},
    "water_l": 0.25, "water_l_per_kwh": 1.8,
    "energy_cost": 0.031, "price_per_kwh": 0.25, "currency": "EUR",
    "carbon_intensity_series": {"path": "grid.csv", "min_g_per_kwh": 120.0, "max_g_per_kwh": 340.0},
    "paused_s": 300.0,
}


def report(**changes) -> FootprintReport:
    base = FootprintReport(
        status="completed", run_id="r1", duration_s=723.0, energy_kwh=0.123,
        energy_kwh_by_component={"gpu": 0.1, "cpu": 0.023}, energy_kwh_by_phase={"train": 0.113, "predict": 0.01},
        pue=1.0, facility_energy_kwh=0.123, carbon_intensity_g_per_kwh=340.0, carbon_intensity_source="explicit",
        emissions_kg=0.0418, sensors=SENSORS, steps=1234, epochs=2, samples=40000, energy_per_sample_j=0.0111,
    )
    return dataclasses.replace(base, **changes)


def test_ranges_beside_totals_and_per_component():
    text = summary_text(report(), NEW_FIELDS)
    assert "Energy (IT, before PUE): 123 Wh (range 110-137 Wh)" in text
    assert "gpu        100 Wh (95-105 Wh)  (measured: nvml energy counter)" in text
    assert "cpu         23 Wh (12-28 Wh)  (estimated: 85 W TDP x load)" in text
    assert "Emissions: 41.8 g CO2e (37.5-46.6 g) at 340 g/kWh (explicit)" in text
    plain = summary_text(report())  # an older file: no range anywhere
    assert "range" not in plain and "Energy (IT, before PUE): 123 Wh\n" in plain + "\n"
    assert "Emissions: 41.8 g CO2e at 340 g/kWh" in plain


def test_batches_and_optimizer_steps_named_for_what_they_are():
    text = summary_text(report(), NEW_FIELDS)
    assert "work: 40,000 samples, 1,234 training batches, 308 optimizer steps, 2 epochs" in text
    assert " steps" not in text.replace("optimizer steps", "")  # batches are never called steps
    assert "optimizer" not in summary_text(report())  # an older file has no optimizer_steps


def test_plurals():
    text = summary_text(report(steps=1, epochs=1, samples=1, world_size=2, num_hosts=1), {"optimizer_steps": 1})
    assert "work: 1 sample, 1 training batch, 1 optimizer step, 1 epoch" in text
    assert "2 processes on 1 host" in text and "host(s)" not in text
    assert plural(0, "run") == "0 runs" and plural(1, "run") == "1 run" and plural(2, "batch", "batches") == "2 batches"


def test_running_footprint_says_when_its_snapshot_was_taken():
    text = summary_text(report(status="running"), {"snapshot_at": "2025-01-01T13:05:00+01:00"})
    assert text.startswith("lightning-green footprint: run r1 (running), 12 min 3 s so far\n"
                           "Status: running (last snapshot at 2025-01-01 12:05:00 UTC): the figures below are")
    assert "Status:" not in summary_text(report(status="running"))  # no snapshot time: nothing to say
    assert "Status:" not in summary_text(report())


def test_serving_carbon_embodied_water_cost_lines():
    text = summary_text(report(), NEW_FIELDS)
    # 0.01 kWh = 36,000 J over 2,000 predictions -> 18,000 J per 1,000; 0.72 J per real token
    assert ("serving: 2,000 predictions in 63 batches, 18,000 J per 1,000 predictions, 0.72 J/token "
            "(0.2812 J per processed token, padding included)") in text
    assert "intensity varied over time: series grid.csv, 120-340 g/kWh" in text
    assert "paused while the grid was dirty: 5 min 0 s" in text
    assert ("Embodied emissions (hardware manufacturing, reported apart, not included above): 12 g CO2e "
            "(BLOOM-style amortisation over 5 years)") in text
    assert "Water: 0.25 L (1.8 L/kWh)" in text and "Electricity cost: 0.031 EUR (0.25 EUR/kWh)" in text
    for absent in ("serving:", "Embodied", "Water", "cost", "paused"):
        assert absent not in summary_text(report()), absent


def test_summary_dict_has_every_key_always():
    full, bare = summary_dict(report(), NEW_FIELDS), summary_dict(FootprintReport())
    assert list(full) == list(bare)  # stable keys, present even when the footprint lacks the figure
    assert full["schema"] == "lightning-green/show/1"
    assert full["energy_kwh_range"] == [0.110, 0.137] and bare["energy_kwh_range"] is None
    assert full["energy_kwh_by_component_range"] == {"gpu": [0.095, 0.105], "cpu": [0.012, 0.028]}
    assert (full["batches"], full["optimizer_steps"], full["samples"]) == (1234, 308, 40000)
    assert full["serving"]["energy_per_1k_predictions_j"] == pytest.approx(0.01 * 3.6e6 / 2000 * 1000)
    assert full["serving"]["energy_per_padded_token_j"] == pytest.approx(0.01 * 3.6e6 / 128000)
    assert bare["serving"] is None and bare["running"] is True and full["running"] is False
    assert (full["embodied_kg"], full["water_l"], full["energy_cost"], full["currency"]) == (0.012, 0.25, 0.031, "EUR")
    assert full["emissions_kg"] == 0.0418  # embodied never added
