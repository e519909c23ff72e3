"""Experiment trackers whose files live elsewhere: MLflow (local file store, sqlite) and W&B
(offline). The footprint goes to a folder of its own run, never to the tracker's shared
folder, and is attached to the tracker's run. Real mlflow and wandb, no server, no network;
skipped, saying so, where they are not installed (``pip install -e ".[test]"`` has them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.ecosystem_kit import LoggingModel, energy_cb, trainer


def _fit_twice(tmp_path: Path, make_logger, after=lambda logger: None) -> list[tuple[object, object]]:
    """Two fits in a row, each with a new logger and a new callback, no output_dir."""
    runs = []
    for i in range(2):
        logger = make_logger(i)
        cb = energy_cb()
        trainer(tmp_path, [cb], logger=logger).fit(LoggingModel())
        after(logger)
        runs.append((logger, cb))
    return runs


def _own_folders(tmp_path: Path, runs) -> None:
    folders = [Path(cb.output_dir) for _, cb in runs]
    assert folders == [tmp_path / "lightning_green" / cb.report.run_id for _, cb in runs]
    for folder, (_, cb) in zip(folders, runs):
        assert json.loads((folder / "footprint.json").read_text())["run_id"] == cb.report.run_id


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_mlflow_runs_keep_their_own_footprint_attached_as_an_artifact(tmp_path, monkeypatch, store):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (it is in the test extra)")
    from lightning.pytorch.loggers import MLFlowLogger

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow >= 3.7 refuses the file store without it
    uri = f"file:{tmp_path / 'mlruns'}" if store == "file" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = _fit_twice(tmp_path, lambda i: MLFlowLogger(experiment_name="energy", tracking_uri=uri,
                                                       run_name=f"run-{i}"))
    _own_folders(tmp_path, runs)
    if store == "file":  # the logger's save_dir is shared by every run: nothing of ours lands there
        assert runs[0][0].save_dir == str(tmp_path / "mlruns")
        assert not (tmp_path / "mlruns" / "footprint.json").exists()
    client = mlflow.MlflowClient(uri)
    for logger, cb in runs:
        listed = [a.path for a in client.list_artifacts(logger.run_id, "lightning_green")]
        assert listed == ["lightning_green/footprint.json"]
        local = client.download_artifacts(logger.run_id, "lightning_green/footprint.json", str(tmp_path / "dl"))
        attached = json.loads(Path(local).read_text())
        assert attached["run_id"] == cb.report.run_id
        assert attached["energy_kwh"] == pytest.approx(cb.report.energy_kwh)
        logged = client.get_run(logger.run_id).data.metrics
        assert logged["energy/energy_kwh"] == pytest.approx(cb.report.energy_kwh)


def test_wandb_offline_runs_keep_their_own_footprint_in_the_run_files(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb is not installed (it is in the test extra)")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.chdir(tmp_path)
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path),
                        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
                        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
                        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"), "WANDB_DISABLE_GIT": "true",
                        "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(name, value)
    run_dirs: list[Path] = []

    def finish(logger) -> None:  # a run ends before the next one starts, as in a script's second fit
        run_dirs.append(Path(logger.experiment.dir))
        wandb.finish()

    try:
        runs = _fit_twice(tmp_path, lambda i: WandbLogger(project="energy", name=f"run-{i}", offline=True,
                                                          save_dir=str(tmp_path / "wb")), after=finish)
    finally:
        if wandb.run is not None:
            wandb.finish()
    _own_folders(tmp_path, runs)
    assert not (tmp_path / "wb" / "footprint.json").exists()  # W&B's save_dir: where every run used to write
    assert len(set(run_dirs)) == 2 and all(d.parent.parent == tmp_path / "wb" / "wandb" for d in run_dirs)
    for run_dir, (_, cb) in zip(run_dirs, runs):
        attached = run_dir / "lightning_green" / "footprint.json"
        assert attached.is_file() and not attached.is_symlink()  # a copy: the run keeps it if our folder goes
        assert json.loads(attached.read_text()) == json.loads((Path(cb.output_dir) / "footprint.json").read_text())
