"""Fault injection, bad input: every EnergyCallback argument and every recipe key given a
wrong type, an out-of-range or an unknown value fails before training, naming the key and
what it accepts; corrupt or foreign footprint.json files are skipped by ``compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from unittest import mock

import pytest
from hydra import compose, initialize_config_dir

from lightning_green import EnergyCallback, cli
from lightning_green.outputs.footprint import SCHEMA, FootprintReport, write_footprint
from lightning_green.sensors import ConstantPowerSensor

ROOT = Path(__file__).resolve().parents[2]

# (argument, bad value, a piece of the allowed values that the message must show)
BAD_ARGUMENTS = [
    ("sensors", "gpu", "'auto' or a list of Sensor"),
    ("sensors", 5, "'auto' or a non-empty list"),
    ("sensors", [], "non-empty list"),
    ("sensors", [object()], "Sensor objects"),
    ("sensors", None, "'auto' or a non-empty list"),
    ("sampling_interval_s", "fast", "> 0"),
    ("sampling_interval_s", 0, "> 0"),
    ("sampling_interval_s", math.nan, "> 0"),
    ("sampling_interval_s", True, "> 0"),
    ("sampling_interval_s", 1e9, "<= 3600"),
    ("country_iso_code", 3, "string"),
    ("country_iso_code", "ZZZ", "country_codes()"),
    ("country_iso_code", "fr", "FRA"),
    ("cloud_provider", 3, "string"),
    ("cloud_provider", "nope", "cloud_region"),
    ("cloud_region", 5, "string"),
    ("cloud_region", "mars-1", "cloud_provider"),
    ("carbon_intensity_g_per_kwh", "x", "> 0"),
    ("carbon_intensity_g_per_kwh", -1, "> 0"),
    ("carbon_intensity_g_per_kwh", math.inf, "> 0"),
    ("pue", "1.2", "number"),
    ("pue", 0.9, ">= 1.0"),
    ("pue", math.nan, ">= 1.0"),
    ("pue", None, "number"),
    ("pue", 120, "<= 5.0, got 120"),  # a unit slip for 1.20
    ("carbon_intensity_g_per_kwh", 56000, "<= 2000"),  # mg/kWh, not g/kWh
    ("output_dir", 3, "str or os.PathLike"),
    ("output_dir", ["runs"], "str or os.PathLike"),
    ("idle_baseline_s", "x", ">= 0"),
    ("idle_baseline_s", -1, ">= 0"),
    ("idle_baseline_s", 1e6, "<= 3600"),
    ("max_energy_kwh", "x", "> 0"),
    ("max_energy_kwh", 0, "> 0"),
    ("max_energy_kwh", math.inf, "> 0"),
    ("max_emissions_kg", -1, "> 0"),
    ("max_emissions_kg", math.nan, "> 0"),
    ("project_after_epochs", 0, "integer >= 1"),
    ("project_after_epochs", 1.5, "integer >= 1"),
    ("project_after_epochs", "2", "integer >= 1"),
    ("project_after_steps", True, "integer >= 1"),
    ("project_after_steps", -3, "integer >= 1"),
    ("log_every_n_steps", 0, "integer >= 1"),
    ("log_every_n_steps", 2.5, "integer >= 1"),
    ("write_files", "yes", "True or False"),
    ("write_files", 1, "True or False"),
]


@pytest.mark.parametrize("argument, value, allowed", BAD_ARGUMENTS,
                         ids=[f"{a}={v!r}" for a, v, _ in BAD_ARGUMENTS])
def test_every_bad_constructor_argument_fails_naming_it(argument, value, allowed):
    with pytest.raises((ValueError, TypeError)) as info:
        EnergyCallback(**{argument: value})
    message = str(info.value)
    assert argument in message
    assert allowed in message
    assert repr(value) in message or str(value) in message


def test_cloud_region_unknown_for_its_provider_names_the_region():
    with pytest.raises(ValueError, match=r"cloud_region.*'mars-1'.*gcp.*cloud_regions\('gcp'\)"):
        EnergyCallback(cloud_provider="gcp", cloud_region="mars-1")


# -- the Hydra recipe: the real conf/, composed, then train()'s validation ------------------------
def train_with(tmp_path, overrides):
    """Compose conf/train.yaml with ``overrides`` and run lightning_green.recipe.train.train up to the
    point where work starts: the tokenizer (the first step of real work) must never be reached."""
    from lightning_green.recipe import train as train_module
    from lightning_green.recipe import bert

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={tmp_path}"])
    with mock.patch.object(bert, "load_tokenizer", autospec=True,
                           side_effect=AssertionError("training started before the bad key was caught")):
        train_module.train(cfg)


def compose_error(overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        compose("train", overrides=overrides)


BAD_KEYS = [
    (["precision=17"], ["`precision`", "bf16", "17"]),
    (["precision=fp8"], ["`precision`", "16-mixed", "'fp8'"]),
    (["precision=true"], ["`precision`", "32", "True"]),
    (["+trainer.precision=16"], ["top-level `precision`", "trainer.precision=16"]),
    (["strategy.name=horovod"], ["`strategy.name`", "ddp_spawn", "'horovod'"]),
    (["strategy.name=3"], ["`strategy.name`", "'ddp'", "3"]),
    (["strategy=ddp", "strategy.cpu_devices=two"], ["strategy.cpu_devices", "integer >= 1", "'two'"]),
    (["strategy=ddp", "strategy.cpu_devices=0"], ["strategy.cpu_devices", "integer >= 1", "0"]),
    (["strategy=ddp", "strategy.cpu_devices=1.5"], ["strategy.cpu_devices", "integer >= 1", "1.5"]),
    (["pruning.method=magnitude"], ["`pruning.method`", "heads", "'magnitude'"]),
    (["pruning=heads", "pruning.amount=1.5"], ["`pruning.amount`", "(0, 1)", "1.5"]),
    (["pruning=ffn", "pruning.amount=0"], ["`pruning.amount`", "(0, 1)", "0"]),
    (["pruning=l1_unstructured", "pruning.amount=half"], ["`pruning.amount`", "(0, 1)", "'half'"]),
    (["pruning=l1_unstructured", "pruning.amount=null"], ["`pruning.amount`", "(0, 1)", "None"]),
    (["pruning=heads", "pruning.amount=true"], ["`pruning.amount`", "(0, 1)", "True"]),
    (["energy.sensors=gpu"], ["energy.sensors", "'auto'", "'gpu'"]),
    (["energy.sampling_interval_s=0"], ["energy.sampling_interval_s", "> 0", "0"]),
    (["energy.sampling_interval_s=fast"], ["energy.sampling_interval_s", "> 0", "'fast'"]),
    (["energy.country_iso_code=ZZZ"], ["energy.country_iso_code", "country_codes()", "ZZZ"]),
    (["energy.cloud_provider=gcp"], ["energy.cloud_provider", "cloud_region", "'gcp'"]),
    (["energy.cloud_provider=gcp", "energy.cloud_region=mars-1"], ["energy.cloud_region", "cloud_regions", "mars-1"]),
    (["energy.carbon_intensity_g_per_kwh=-5"], ["energy.carbon_intensity_g_per_kwh", "> 0", "-5"]),
    (["energy.pue=0.5"], ["energy.pue", ">= 1.0", "0.5"]),
    (["energy.pue=high"], ["energy.pue", "number", "'high'"]),
    (["energy.idle_baseline_s=-1"], ["energy.idle_baseline_s", ">= 0", "-1"]),
    (["energy.max_energy_kwh=0"], ["energy.max_energy_kwh", "> 0", "0"]),
    (["energy.max_emissions_kg=lots"], ["energy.max_emissions_kg", "> 0", "'lots'"]),
    (["energy.project_after_epochs=1.5"], ["energy.project_after_epochs", "integer >= 1", "1.5"]),
    (["energy.project_after_steps=0"], ["energy.project_after_steps", "integer >= 1", "0"]),
    (["energy.log_every_n_steps=0"], ["energy.log_every_n_steps", "integer >= 1", "0"]),
    (["energy.cooldown_s=-1"], ["energy.cooldown_s", ">= 0", "-1"]),
    (["energy.cooldown_s=soon"], ["energy.cooldown_s", ">= 0", "'soon'"]),
    (["+energy.pue_factor=1.2"], ["energy.pue_factor", "sampling_interval_s", "max_energy_kwh"]),
]


@pytest.mark.parametrize("overrides, needles", BAD_KEYS, ids=[" ".join(o) for o, _ in BAD_KEYS])
def test_every_bad_recipe_key_fails_before_training_naming_it(tmp_path, overrides, needles):
    with pytest.raises(ValueError) as info:
        train_with(tmp_path, overrides)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)
    assert list(tmp_path.iterdir()) == []  # nothing written: nothing started


@pytest.mark.parametrize("overrides, needles", [
    (["strategy=horovod"], ["strategy/horovod", "ddp_spawn", "fsdp"]),
    (["pruning=magnitude"], ["pruning/magnitude", "l1_unstructured", "heads"]),
    (["energy=green"], ["energy/green", "default"]),
    (["energy.write_files=maybe"], ["energy.write_files"]),  # not a recipe key: Hydra refuses it
    (["strategy.cpu_device=2"], ["strategy.cpu_device"]),  # a typo is not silently ignored
])
def test_unknown_config_groups_and_keys_fail_at_composition(overrides, needles):
    with pytest.raises(Exception) as info:
        compose_error(overrides)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


# -- compare: corrupt and foreign footprints are skipped, the good ones compared ----------------
def _good(root: Path, name: str, energy_kwh: float, acc: float) -> dict:
    report = FootprintReport(run_id=name, status="completed", energy_kwh=energy_kwh, duration_s=10.0,
                             emissions_kg=energy_kwh / 2, samples=100, metrics={"val/acc": acc},
                             energy_kwh_by_component={"gpu": energy_kwh})
    write_footprint(report, root / name)
    return report.to_dict()


def _bad(root: Path, name: str, content: str | bytes) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    path = folder / "footprint.json"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


def test_compare_skips_corrupt_and_foreign_footprints_with_a_message(tmp_path, capsys):
    runs = tmp_path / "runs"
    good = _good(runs, "good-a", 0.5, 0.9)
    _good(runs, "good-b", 0.3, 0.8)
    bad = {
        "truncated": json.dumps(good)[:120],
        "empty": "",
        "binary": b"\xff\xfe\x00\x13garbage",
        "json-list": "[1, 2, 3]",
        "codecarbon-json": json.dumps({"emissions": 0.1, "energy_consumed": 0.2}),
        "future-schema": json.dumps(dict(good, schema="lightning-green/footprint/99")),
        "energy-a-string": json.dumps(dict(good, energy_kwh="lots")),
        "component-a-string": json.dumps(dict(good, energy_kwh_by_component={"gpu": "x"})),
        "metric-a-string": json.dumps(dict(good, metrics={"val/acc": "high"})),
        "sensors-not-dicts": json.dumps(dict(good, sensors=[1, "x"])),
        "warnings-not-strings": json.dumps(dict(good, warnings=[1, None])),
        "huge-int": json.dumps(dict(good, samples=10**400)),
        "status-null": json.dumps(dict(good, status=None)),
    }
    for name, content in bad.items():
        _bad(runs, name, content)
    out = tmp_path / "cmp"
    code = cli.main(["compare", str(runs), "--out", str(out), "--no-plots"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 0, captured.err
    for name in bad:
        assert f"skipped {runs / name / 'footprint.json'}" in captured.err, (name, captured.err)
    assert captured.err.count("skipped") == len(bad)
    table = (out / "comparison.csv").read_text()
    assert "good-a" in table and "good-b" in table
    assert not any(name in table for name in bad)


def test_compare_with_only_bad_footprints_says_so_and_fails_cleanly(tmp_path, capsys):
    _bad(tmp_path / "runs", "truncated", '{"schema": "' + SCHEMA + '", "energy_kwh": 0.')
    code = cli.main(["compare", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp"), "--no-plots"])
    captured = capsys.readouterr()
    assert code != 0
    assert "skipped" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "cmp" / "comparison.csv").exists()


def test_a_report_written_by_the_callback_reads_back_through_compare(tmp_path, capsys, no_thread_leak):
    """The stricter reading must accept every file the writer produces."""
    from lightning.pytorch.demos.boring_classes import BoringModel

    from tests.helpers.reliability_kit import make_trainer

    cb = EnergyCallback(sensors=[ConstantPowerSensor(10.0, name="w", component="gpu")], output_dir=tmp_path / "a",
                        carbon_intensity_g_per_kwh=100.0)
    cb.extra_fields.update(config={"lr": 0.1, "nested": {"x": [1, 2]}}, overrides=["lr=0.1"], metrics={"val/acc": 0.5})
    make_trainer(tmp_path, [cb], limit_train_batches=2).fit(BoringModel())
    code = cli.main(["compare", str(tmp_path / "a"), "--out", str(tmp_path / "cmp"), "--no-plots"])
    captured = capsys.readouterr()
    assert code == 0 and "skipped" not in captured.err, captured.err
