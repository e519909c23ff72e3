"""Cluster sweeps of the recipe: submitit launchers, the Optuna energy/accuracy search, its objectives.

End to end with real ``python train.py -m`` processes on tiny demo settings: submitit's local
executor runs each job as its own subprocess; the Optuna search runs 3 trials and saves its
study in the sweep folder (sqlite).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lightning_green.outputs.footprint import FootprintReport
from lightning_green.recipe import search
from tests.helpers.recipe_helpers import CONF, REPO, TINY, read_json

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sweeps-cache")


def _env(cache_dir: Path) -> dict[str, str]:
    env = {**os.environ, **OFFLINE_ENV, "LIGHTNING_GREEN_CACHE": str(cache_dir), "PYTHONPATH": str(REPO)}
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_PORT", "MASTER_ADDR"):
        env.pop(key, None)
    return {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SUBMITIT_"))}


def _train(tmp_path: Path, cache_dir: Path, *overrides: str, timeout: int = 280) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "-m", *overrides, *TINY], cwd=tmp_path,
                          env=_env(cache_dir), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    return proc


def _comparison(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "comparison.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---- configs ---------------------------------------------------------------------------------

def test_search_and_launcher_configs_compose():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=energy_accuracy", "hydra/launcher=slurm",
                                          "trainer.devices=4", "trainer.num_nodes=2"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert list(sweeper.direction) == ["maximize", "minimize"]
    assert sweeper.sampler._target_ == "optuna.samplers.NSGAIISampler"
    assert set(sweeper.params) == {"precision", "pruning", "model.learning_rate", "data.batch_size"}
    assert cfg.hydra.callbacks.compare.metric == "val/acc" and cfg.hydra.callbacks.compare.by == "energy"
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    # one SLURM task per GPU on every node: what Lightning's SLURMEnvironment expects
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # logs beside the runs
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plain = compose("train", return_hydra_config=True)
    assert "search" not in plain and plain.hydra.sweeper._target_.endswith("BasicSweeper")


# ---- the objectives a task returns -----------------------------------------------------------

def _cfg(**search_node):
    return OmegaConf.create({"search": search_node} if search_node else {})


def test_objectives_are_metric_and_energy_from_the_footprint():
    report = FootprintReport(energy_kwh=2e-6, emissions_kg=5e-7, metrics={"val/acc": 0.75, "val/f1": 0.5})
    assert search.objectives(_cfg(), {"val/acc": 0.1}, report) == (0.75, 2e-6)  # the footprint's figures
    assert search.objectives(_cfg(metric="val/f1", cost="emissions"), {}, report) == (0.5, 5e-7)
    assert search.objectives(_cfg(metric="val/loss"), {"val/loss": 0.3}, report) == (0.3, 2e-6)


def test_missing_metric_or_report_gives_nan_and_says_what_was_logged(caplog):
    report = FootprintReport(energy_kwh=1e-6, metrics={"val/f1": 0.5})
    value, energy = search.objectives(_cfg(metric="val/accuracy"), {"train/loss": 1.0}, report)
    assert math.isnan(value) and energy == 1e-6
    assert "search.metric='val/accuracy' was not logged by this run; logged metrics: ['train/loss', 'val/f1']" in caplog.text
    value, energy = search.objectives(_cfg(), {"val/acc": 0.5}, None)  # ranks other than 0: no report
    assert value == 0.5 and math.isnan(energy)


def test_bad_cost_names_the_key_and_choices():
    with pytest.raises(ValueError, match=r"search.cost must be one of 'energy', 'emissions', got 'watts'"):
        search.objectives(_cfg(cost="watts"), {}, FootprintReport())


def test_make_sweep_dir_creates_the_folder(tmp_path):
    sweep = tmp_path / "multirun" / "a" / "b"
    search.MakeSweepDir().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert sweep.is_dir()


# ---- real sweeps -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_submitit_local_jobs_end_to_end(tmp_path, cache_dir):
    """Two jobs as real local submitit subprocesses: a footprint each, then the comparison."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'lightning-green[sweeps]'")
    sweep = tmp_path / "sweep"
    proc = _train(tmp_path, cache_dir, "hydra/launcher=submitit_local", "precision=32,bf16", "energy.cooldown_s=30",
                  f"hydra.sweep.dir={sweep}")
    output = proc.stdout + proc.stderr
    # submitit ran each job in a process of its own: a job folder and a pickled result per job
    results = sorted(sweep.glob(".submitit/*/*_result.pkl"))
    assert len(results) == 2, sorted(p.relative_to(sweep) for p in sweep.rglob("*"))
    job_ids = {json.loads(json.dumps(OmegaConf.to_container(OmegaConf.load(sweep / j / ".hydra" / "hydra.yaml"))))
               ["hydra"]["job"]["id"] for j in ("0", "1")}
    assert job_ids == {p.parent.name for p in results}  # hydra.job.id is the submitit job of each folder
    reports = [read_json(sweep / j / "footprint.json") for j in ("0", "1")]
    assert [r["extra"]["model"]["precision"] for r in reports] == ["32-true", "bf16-mixed"]
    assert all(r["status"] == "completed" and r["energy_kwh"] > 0 for r in reports)
    rows = _comparison(sweep)
    assert [(r["run"], r["precision"], r["status"]) for r in rows] == [("0", "32", "completed"),
                                                                       ("1", "bf16", "completed")]
    # parallel jobs on one host: flagged exactly when their measured intervals overlapped
    (s0, e0), (s1, e1) = [(datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["ended_at"]))
                          for r in reports]
    overlapped = s0 < e1 and s1 < e0
    assert ("overlap" in rows[0]["flags"]) == overlapped and ("overlap" in rows[1]["flags"]) == overlapped
    # the cooldown is not pretended: one warning, in the launching process
    assert output.count("energy.cooldown_s=30 is ignored: it applies to Hydra's sequential launcher only") == 1
    assert "compared 2 runs" in output and "Pareto front (least energy, highest val/acc)" in output


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_optuna_energy_accuracy_search_three_trials(tmp_path, cache_dir):
    """``-m hparams_search=energy_accuracy``: 3 trials, the study saved, Optuna's front = the table's."""
    optuna = pytest.importorskip("optuna", reason="pip install 'lightning-green[sweeps]'")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install 'lightning-green[sweeps]'")
    sweep = tmp_path / "sweep"
    proc = _train(tmp_path, cache_dir, "hparams_search=energy_accuracy", "hydra.sweeper.n_trials=3",
                  f"hydra.sweep.dir={sweep}")
    output = proc.stdout + proc.stderr
    study = optuna.load_study(study_name="energy_accuracy", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    for trial in trials:  # the task returned (val/acc, energy_kwh) of the footprint its job wrote
        report = read_json(sweep / str(trial.number) / "footprint.json")
        assert trial.values == [report["metrics"]["val/acc"], report["energy_kwh"]]
        for name, value in trial.params.items():
            assert f"{name}={value}" in report["overrides"], (name, value, report["overrides"])
    rows = _comparison(sweep)
    assert [r["run"] for r in rows] == ["0", "1", "2"]
    table_front = {int(r["run"]) for r in rows if r["pareto"] == "True"}
    assert table_front == {t.number for t in study.best_trials}
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert len(results.solutions) == len(study.best_trials)
    assert "Pareto front (least energy, highest val/acc)" in output and "alembic" not in output
