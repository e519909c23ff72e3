"""Packaging: what a user gets from the wheel, and what importing the package costs.

* The built wheel carries every module, ``py.typed`` and the recipe's Hydra configs, with the
  version written once (``lightning_green.__version__``) and ``codecarbon>=3.3``.
* Installed (not editable) into a fresh virtual environment, ``lightning-green-train`` run from
  an unrelated folder finds its packaged configs and writes footprint.json. The environment
  sees the system's site-packages (torch is not copied again) and gets only the wheel.
* ``import lightning_green`` and ``from lightning_green import EnergyMeter`` import neither
  Lightning nor the recipe's stack (nor torch), and EnergyMeter measures without them.
"""

from __future__ import annotations

import email.parser
import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lightning_green

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lightning_green"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg", "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "OMP_NUM_THREADS": "1"}
#: Packages a framework-free measurement must not load (the callback and the recipe need them).
HEAVY = ("lightning", "pytorch_lightning", "lightning_fabric", "transformers", "datasets", "tokenizers", "hydra",
         "omegaconf", "matplotlib", "torchmetrics")


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (the checkout must not leak in), offline, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OFFLINE, **extra)
    return env


def _package_files() -> set[str]:
    """Every file of the package in the checkout, as wheel paths."""
    out = set()
    for path in PACKAGE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            out.add(path.relative_to(REPO).as_posix())
    return out


def test_import_and_energy_meter_load_no_framework(tmp_path):
    code = (
        "import sys, json\n"
        "import lightning_green\n"
        "after_import = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY + ('torch', 'pynvml', 'codecarbon'))\n"
        "from lightning_green import EnergyMeter, FootprintReport, Totals, sensors\n"
        "from lightning_green.sensors import ConstantPowerSensor\n"
        "after_meter = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY + ('torch', 'pynvml', 'codecarbon'))\n"
        "print(json.dumps([after_import, after_meter]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + code], cwd=tmp_path, capture_output=True,
                          text=True, env=_clean_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after_import, after_meter = json.loads(proc.stdout.splitlines()[-1])
    assert after_import == [] and after_meter == []


BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class Blocked(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
"""

METER_RUN = """
import time
from lightning_green import EnergyMeter
from lightning_green.sensors import ConstantPowerSensor

meter = EnergyMeter(sensors=[ConstantPowerSensor(50.0, name="board", component="gpu", measured=True)],
                    sampling_interval_s=0.01, output_dir="run", carbon_intensity_g_per_kwh=100.0)
with meter:
    with meter.phase("train"):
        for _ in range(5):
            with meter.step(samples=2):
                time.sleep(0.01)
    meter.epoch_end()
print(meter.report.summary())
"""


def test_energy_meter_measures_where_lightning_and_the_recipe_stack_are_missing(tmp_path):
    code = f"BLOCKED = {HEAVY!r}\n" + BLOCKER + METER_RUN
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env=_clean_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lightning-green footprint:" in proc.stdout
    footprint = json.loads((tmp_path / "run" / "footprint.json").read_text())
    assert footprint["status"] == "completed" and footprint["steps"] == 5
    assert footprint["energy_kwh_by_component"]["gpu"] * 3.6e6 == pytest.approx(50.0 * footprint["duration_s"],
                                                                                rel=0.02)
    assert footprint["context"]["lightning"] is None  # recorded as absent, not a failure


def test_pyproject_single_sources_the_version_and_requires_codecarbon_3_3():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lightning_green.__version__"}
    requirements = project["project"]["dependencies"]
    assert "codecarbon>=3.3" in requirements
    assert not any(r.split(">")[0].split("=")[0].strip() == "pynvml" for r in requirements)  # nvidia-ml-py instead


# wheel, venv, install and a tiny recipe run in a fresh interpreter: ~11 s on 2 cores, ~16 s when shared
def test_wheel_installs_into_a_fresh_venv_and_the_recipe_runs_from_an_unrelated_folder(tmp_path):
    # Build from a copy, so the checkout gets no build/ or egg-info.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "lightning_green", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                            "-w", str(dist), str(source)], capture_output=True, text=True, env=_clean_env(),
                           timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("lightning_green-*.whl")

    # What the wheel holds: every module and data file of the package, py.typed, the configs.
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(info).decode())
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "lightning_green/py.typed" in names
    assert "lightning_green/recipe/conf/train.yaml" in names
    assert "lightning_green/recipe/conf/hydra/launcher/slurm.yaml" in names
    missing = _package_files() - names
    assert not missing, f"files of the package left out of the wheel: {sorted(missing)}"
    assert metadata["Version"] == lightning_green.__version__ == "0.2.0"
    requires = metadata.get_all("Requires-Dist")
    assert "codecarbon>=3.3" in requires
    assert "lightning-green-train = lightning_green.recipe.train:main" in entry_points

    # A fresh environment that sees the system's packages and gets the wheel alone.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, env=_clean_env(), timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import lightning_green, importlib.metadata as m; "
                            "print(lightning_green.__file__); print(m.version('lightning-green'))"],
        cwd=elsewhere, capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, version = where.stdout.split()
    assert Path(module_file).is_relative_to(venv)  # the wheel's copy, not the checkout
    assert version == lightning_green.__version__

    # The documented command, plus what shrinks the run (tests/helpers/recipe_helpers.py: TINY).
    command = [str(venv / "bin" / "lightning-green-train"), "trainer.max_epochs=1", "trainer.limit_train_batches=5",
               "trainer.limit_val_batches=2",
               "model.config.hidden_size=32", "model.config.num_hidden_layers=2", "model.config.num_attention_heads=2",
               "model.config.intermediate_size=64", "model.config.max_position_embeddings=128",
               "data.num_train=128", "data.num_validation=64", "data.num_test=32", "data.batch_size=16",
               "data.eval_batch_size=32", "data.max_length=48", "+trainer.enable_progress_bar=false",
               "+trainer.enable_model_summary=false", "energy.sampling_interval_s=0.05"]
    run = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, timeout=400,
                         env=_clean_env(LIGHTNING_GREEN_CACHE=str(tmp_path / "cache")))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    (found,) = glob.glob(str(elsewhere / "outputs" / "*" / "*" / "footprint.json"))  # Hydra's default run folder
    footprint = json.loads(Path(found).read_text())
    assert footprint["status"] == "completed" and footprint["energy_kwh"] > 0
    assert footprint["steps"] == 5  # limit_train_batches=5 of 8 batches: the overrides reached the Trainer
    assert footprint["config"]["trainer"]["limit_val_batches"] == 2
    assert {"emissions.csv", "steps.csv"} <= {p.name for p in Path(found).parent.iterdir()}
    hydra_yaml = (Path(found).parent / ".hydra" / "hydra.yaml").read_text()
    packaged_conf = Path(module_file).parent / "recipe" / "conf"
    assert f"path: {packaged_conf}\n" in hydra_yaml  # the configs came from the installed package
