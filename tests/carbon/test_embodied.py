"""Embodied emissions: the BLOOM arithmetic, per-component amortisation, validation."""

from __future__ import annotations

import pytest

from lightning_green.carbon.embodied import EmbodiedModel


def test_defaults_reproduce_the_bloom_papers_gpu_share():
    model = EmbodiedModel()
    # 150 kg over 6 years x 8760 h x 0.85 -> 0.00336 kg per GPU-hour
    assert model.use_hours == 6 * 8760 * 0.85 == 44676
    per_gpu_hour = model.estimate(gpu_count=1, cpu_sockets=0, ram_gb=0, hours=1).kg
    assert per_gpu_hour == pytest.approx(150 / 44676, rel=1e-12)
    assert round(per_gpu_hour, 5) == 0.00336
    # BLOOM's final training: 1,082,990 GPU-hours -> the paper's 3.64 t of GPU embodied emissions
    bloom = model.estimate(gpu_count=384, cpu_sockets=0, ram_gb=0, hours=1_082_990 / 384)
    assert round(bloom.kg / 1000, 2) == 3.64


def test_components_add_up_with_their_own_figures():
    model = EmbodiedModel(gpu_kg=200, cpu_kg=40, ram_kg_per_gb=0.5, lifetime_years=4, utilisation=1.0)
    hours = 10.0
    estimate = model.estimate(gpu_count=8, cpu_sockets=2, ram_gb=512, hours=hours)
    life_h = 4 * 8760
    assert estimate.by_component == pytest.approx(
        {"gpu": 8 * 200 * hours / life_h, "cpu": 2 * 40 * hours / life_h, "ram": 512 * 0.5 * hours / life_h}, rel=1e-12)
    assert estimate.kg == pytest.approx(sum(estimate.by_component.values()), rel=1e-12)
    assert estimate.kg_per_unit_hour["ram"] == pytest.approx(0.5 / life_h)
    assert estimate.hours == hours and estimate.units == {"gpu_count": 8, "cpu_sockets": 2, "ram_gb": 512}


def test_fractions_of_a_host_and_zero_hours():
    model = EmbodiedModel()
    whole = model.estimate(gpu_count=1, cpu_sockets=1, ram_gb=0, hours=3)
    part = model.estimate(gpu_count=1 / 7, cpu_sockets=2 / 64, ram_gb=0, hours=3)
    assert part.by_component["gpu"] == pytest.approx(whole.by_component["gpu"] / 7)
    assert part.by_component["cpu"] == pytest.approx(whole.by_component["cpu"] / 32)
    assert model.estimate(gpu_count=4, cpu_sockets=2, ram_gb=64, hours=0).kg == 0.0


def test_report_entry_is_labelled_estimated_with_sources():
    entry = EmbodiedModel().estimate(gpu_count=1, cpu_sockets=1, ram_gb=16, hours=2).to_dict()
    assert entry["label"] == "estimated" and entry["measured"] is False
    assert "not included in emissions_kg" in entry["method"]
    assert any("BLOOM" in s and "150 kg" in s for s in entry["sources"])
    assert any("R740" in s and "533 kg" in s for s in entry["sources"])
    assert entry["ram_kg_per_gb"] == pytest.approx(533 / 384)
    assert entry["cpu_kg"] == 23.5 and entry["lifetime_years"] == 6 and entry["utilisation"] == 0.85


def test_an_overridden_figure_is_named_in_the_sources():
    assert EmbodiedModel().sources[-1].startswith("Dell PowerEdge")
    model = EmbodiedModel(gpu_kg=300, lifetime_years=4)
    assert model.sources[-1] == "set by the user, no source given: gpu_kg=300, lifetime_years=4"
    mine = EmbodiedModel(gpu_kg=300, sources=("vendor LCA 2024",))
    assert mine.sources == ("vendor LCA 2024",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpu_kg": -1}, r"embodied gpu_kg must be a number >= 0 and <= 10000, got -1"),
        ({"ram_kg_per_gb": 533}, r"embodied ram_kg_per_gb must be a number >= 0 and <= 100, got 533"),
        ({"lifetime_years": 0}, r"embodied lifetime_years must be a number > 0 and <= 30, got 0"),
        ({"utilisation": 85}, r"embodied utilisation must be a number > 0 and <= 1, got 85"),
        ({"cpu_kg": float("nan")}, r"embodied cpu_kg must be a number .* got nan"),
        ({"sources": "one string"}, r"embodied sources must be a tuple of strings"),
    ],
)
def test_bad_model_figures_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EmbodiedModel(**kwargs)


def test_bad_estimate_arguments_are_rejected():
    model = EmbodiedModel()
    with pytest.raises(ValueError, match=r"gpu_count must be a number >= 0, got -1"):
        model.estimate(gpu_count=-1, cpu_sockets=1, ram_gb=1, hours=1)
    with pytest.raises(ValueError, match=r"hours must be a number >= 0, got inf"):
        model.estimate(gpu_count=1, cpu_sockets=1, ram_gb=1, hours=float("inf"))
