"""tests/benchmarks/nvml_check.py is ready for its one GPU run: it imports and shows --help
without a GPU, its dry run (scripted NVML) saves every section, it stops when torch's and
NVML's UUIDs differ, and a crash or time-out in the BERT section keeps the NVML figures; the
gpu tests and the check run where the recipe's packages are missing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.benchmarks import nvml_check

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["--dry-run", "--idle-s", "0.5", "--load-s", "0.5", "--period-s", "0.3"]


def test_help_runs_without_a_gpu():
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.nvml_check", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in ("--json", "--quick", "--dry-run", "--skip-bert", "--bert-timeout-s", "--device"):
        assert option in done.stdout


def test_quick_preset_and_explicit_options_win():
    quick = nvml_check.parse(["--quick"])
    assert (quick.idle_s, quick.load_s, quick.rounds, quick.bert_steps) == (20.0, 30.0, 2, 60)
    assert nvml_check.parse(["--quick", "--idle-s", "7"]).idle_s == 7.0
    assert nvml_check.parse([]).idle_s == 60.0


def test_dry_run_saves_every_section_with_named_power_columns(tmp_path):
    path = tmp_path / "check.json"
    nvml_check.main([*SHORT, "--skip-bert", "--json", str(path)])
    data = json.loads(path.read_text())
    assert data["status"] == "completed"
    sections = data["sections"]
    assert list(sections) == ["setup", "agreement idle", "agreement load", "update period", "bert"]
    setup = sections["setup"]
    assert setup["match"] is True and setup["torch_uuid"] == setup["nvml_uuid"]
    for key in ("driver_version", "nvml_version", "nvidia_ml_py_version", "pci_bus_id", "power_limit_w",
                "persistence_mode", "mig_mode", "uuid"):
        assert key in setup["device_info"], key
    load = sections["agreement load"]
    assert load["10 ms"]["power_source"] == "instant field 186"
    assert load["10 ms"]["counter_j"] > 0 and load["10 ms"]["power_integral_j"] > 0
    assert load["series_10ms"]["columns"] == ["t_s", "counter_j", "instant field 186 power_w"]
    assert len(load["series_10ms"]["rows"]) == load["10 ms"]["cross_check_reads"]
    assert sections["update period"]["power_sources"] == ["instant field 186"]
    assert sections["update period"]["counter"]["changes"] > 0
    assert sections["bert"] == {"skipped": "--skip-bert"}


def test_a_uuid_mismatch_stops_before_measuring(tmp_path, monkeypatch):
    real = nvml_check.scripted_nvml

    @contextlib.contextmanager
    def other_gpu():
        with real():
            yield "GPU-deadbeef-0000-0000-0000-000000000000"

    monkeypatch.setattr(nvml_check, "scripted_nvml", other_gpu)
    path = tmp_path / "check.json"
    with pytest.raises(SystemExit) as stopped:
        nvml_check.main([*SHORT, "--json", str(path)])
    assert stopped.value.code == 2
    data = json.loads(path.read_text())
    assert data["status"].startswith("stopped: torch UUID GPU-deadbeef")
    assert list(data["sections"]) == ["setup"] and data["sections"]["setup"]["match"] is False


@pytest.mark.parametrize(("failure", "word"), [("crash", "RuntimeError"), ("timeout", "BertTimeout")])
def test_a_failing_bert_section_keeps_the_nvml_results(tmp_path, monkeypatch, failure, word):
    def bert(*args, **kwargs):
        if failure == "crash":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        time.sleep(30)

    monkeypatch.setattr(nvml_check, "bert_overhead", bert)
    path = tmp_path / "check.json"
    nvml_check.main([*SHORT, "--bert-timeout-s", "0.2", "--json", str(path)])
    data = json.loads(path.read_text())
    assert data["status"] == f"bert failed: {word}"
    assert word in data["sections"]["bert"]["failed"]
    assert data["sections"]["agreement load"]["10 ms"]["counter_j"] > 0
    assert data["sections"]["update period"]["counter"]["changes"] > 0


def test_uuid_check_compares_bare_uuids_and_the_mig_instance():
    class Sensor:
        uuid = "GPU-1234abcd-0000-1111-2222-333344445555"

        def __init__(self, mig=None):
            self.mig = mig

        def describe(self):
            return {"mig_uuid": self.mig}

    assert nvml_check.uuid_check("1234ABCD-0000-1111-2222-333344445555", Sensor())["match"] is True
    assert nvml_check.uuid_check(None, Sensor())["match"] is False
    mig = "MIG-99990000-0000-1111-2222-333344445555"
    assert nvml_check.uuid_check("99990000-0000-1111-2222-333344445555", Sensor(mig))["match"] is True
    assert nvml_check.uuid_check("1234abcd-0000-1111-2222-333344445555", Sensor(mig))["match"] is False


RECIPE_PACKAGES = ("transformers", "datasets", "hydra", "hydra_core", "omegaconf")


def without_recipe_packages(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python sees site-packages minus transformers, datasets and hydra
    (and their metadata, so that availability checks agree): run ``python -S`` with it."""
    import site

    view = tmp_path / "site-packages"
    view.mkdir()
    for root in site.getsitepackages():
        for entry in Path(root).iterdir():
            stem = entry.name.split("-")[0].split(".")[0].lower()
            if stem not in RECIPE_PACKAGES and not (view / entry.name).exists():
                (view / entry.name).symlink_to(entry)
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{view}"}


@pytest.mark.slow
def test_gpu_tests_and_the_check_run_without_the_recipes_packages(tmp_path):
    env = without_recipe_packages(tmp_path)
    missing = subprocess.run([sys.executable, "-S", "-c", "import transformers"], env=env, capture_output=True)
    assert missing.returncode != 0  # the view really hides them
    done = subprocess.run([sys.executable, "-S", "-m", "pytest", "-m", "gpu", "tests/sensors/test_gpu_real.py",
                           "-q", "-rs", "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "4 skipped" in done.stdout or "4 passed" in done.stdout, done.stdout[-2000:]
    path = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "-S", "-m", "tests.benchmarks.nvml_check", *SHORT, "--json", str(path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(path.read_text())
    assert data["status"] == "completed" and "agreement load" in data["sections"]
    assert data["sections"]["bert"]["skipped"].startswith("ModuleNotFoundError")
