"""CompareCallback: the sweep ends with a comparison; cooldown between jobs; rank > 0 stays quiet."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from tests.helpers.compare_fixtures import write_sweep
from lightning_green.compare import hydra_callback
from lightning_green.compare.hydra_callback import CompareCallback

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ("comparison.csv", "comparison.md", "energy_by_component.png", "pareto_energy.png", "power_over_time.png")


def _config(sweep_dir=None, *, mode=RunMode.MULTIRUN, num=0, cooldown_s=None, launcher=None):
    cfg = {"hydra": {"mode": mode, "sweep": {"dir": str(sweep_dir)}, "job": {"num": num}}, "energy": {}}
    if launcher is not None:
        cfg["hydra"]["launcher"] = {"_target_": launcher}
    if cooldown_s is not None:
        cfg["energy"]["cooldown_s"] = cooldown_s
    return OmegaConf.create(cfg)


@pytest.fixture
def sleeps(monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr(hydra_callback.time, "sleep", calls.append)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, even under pytest -s
    return calls


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cooldown_counts_down_on_a_terminal(monkeypatch):
    now = [1000.0]
    slept: list[float] = []

    def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(hydra_callback.time, "sleep", fake_sleep)
    monkeypatch.setattr(hydra_callback.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(sys, "stderr", Terminal())
    callback = CompareCallback()
    callback.on_job_end(_config(num=0), job_return=None)
    callback.on_job_start(_config(num=1, cooldown_s=4.0))
    assert sum(slept) == pytest.approx(4.0) and len(slept) > 1  # in slices, to redraw
    text = sys.stderr.getvalue()
    assert "cooling down before the next job" in text and "/ 4 s [" in text and text.endswith("\n")


def test_multirun_end_writes_comparison(tmp_path):
    sweep = write_sweep(tmp_path / "multirun" / "12-00-00")
    CompareCallback().on_multirun_end(_config(sweep))
    for name in OUTPUTS:
        assert (sweep / name).stat().st_size > 0, name
    md = (sweep / "comparison.md").read_text()
    assert "Baseline: run `1` (precision=32 pruning=none)." in md


def test_multirun_end_options_and_out_dir(tmp_path):
    sweep = write_sweep(tmp_path / "sweep")
    out = tmp_path / "report"
    CompareCallback(metric="val/loss", by="emissions", baseline="0", plots=False, out_dir=str(out)).on_multirun_end(
        _config(sweep))
    assert sorted(p.name for p in out.iterdir()) == ["comparison.csv", "comparison.md"]
    md = (out / "comparison.md").read_text()
    assert "Baseline: run `0`" in md and "least emissions, lowest val/loss" in md


def test_multirun_end_never_raises(tmp_path, caplog):
    sweep = write_sweep(tmp_path / "sweep")
    CompareCallback(baseline="no-such-run").on_multirun_end(_config(sweep))  # bad option: logged
    assert "comparing the sweep" in caplog.text and "baseline must be" in caplog.text
    CompareCallback().on_multirun_end(_config(tmp_path / "missing"))
    assert "nothing to compare" in caplog.text
    assert not (sweep / "comparison.md").exists()


def test_rank_above_zero_writes_nothing_and_never_waits(tmp_path, monkeypatch, sleeps):
    sweep = write_sweep(tmp_path / "sweep")
    monkeypatch.setenv("LOCAL_RANK", "1")
    callback = CompareCallback()
    callback.on_job_start(_config(sweep, num=1, cooldown_s=5.0))
    callback.on_multirun_end(_config(sweep))
    assert sleeps == [] and not (sweep / "comparison.md").exists()


@pytest.mark.parametrize("environ, rank_zero", [
    ({}, True),
    ({"RANK": "0"}, True),
    ({"RANK": "0", "LOCAL_RANK": "1"}, True),  # Lightning reads the first variable set: RANK wins
    ({"LOCAL_RANK": "1"}, False),
    ({"SLURM_PROCID": "3"}, False),  # an srun task that is not the first
    ({"LOCAL_RANK": "0", "SLURM_PROCID": "3"}, True),  # SLURM_PROCID set outside SLURM's launching: LOCAL_RANK first
    ({"JSM_NAMESPACE_RANK": "2"}, False),  # IBM LSF jsrun
    ({"NODE_RANK": "1"}, False),  # the first process of a second node
    ({"RANK": ""}, True),
])
def test_rank_zero_reads_the_variables_lightning_reads(environ, rank_zero):
    assert hydra_callback._is_rank_zero(environ) is rank_zero
    if "NODE_RANK" not in environ:  # the same answer as Lightning's own reading of the variables
        from lightning.fabric.utilities.rank_zero import _get_rank

        with pytest.MonkeyPatch.context() as mp:
            for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "NODE_RANK"):
                mp.delenv(key, raising=False)
            for key, value in environ.items():
                mp.setenv(key, value)
            lightning_rank = _get_rank() if environ.get("RANK") != "" else 0
            assert ((lightning_rank or 0) == 0) is rank_zero


def test_slurm_task_above_zero_neither_waits_nor_writes(tmp_path, monkeypatch, sleeps):
    sweep = write_sweep(tmp_path / "sweep")
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    callback = CompareCallback()
    callback.on_job_start(_config(sweep, num=1, cooldown_s=5.0))
    callback.on_multirun_end(_config(sweep))
    assert sleeps == [] and not (sweep / "comparison.md").exists()


def test_cooldown_between_jobs_only(sleeps):
    callback = CompareCallback()
    callback.on_job_start(_config(num=0, cooldown_s=5.0))  # first job: nothing ran before
    assert sleeps == []
    callback.on_job_end(_config(num=0, cooldown_s=5.0), job_return=None)
    callback.on_job_start(_config(num=1, cooldown_s=5.0))
    assert len(sleeps) == 1 and 4.5 < sleeps[0] <= 5.0  # time since the last job counts
    callback.on_job_start(_config(num=2, mode=RunMode.RUN, cooldown_s=5.0))  # single runs: no wait
    callback.on_job_start(_config(num=3))  # no energy.cooldown_s: no wait
    callback.on_job_start(_config(num=4, cooldown_s=0))
    assert len(sleeps) == 1
    CompareCallback(cooldown_s=2.0).on_job_start(_config(num=1, cooldown_s=9.0))  # constructor wins
    assert sleeps[-1] == 2.0


SUBMITIT_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"


def test_cooldown_applies_to_the_sequential_launcher_only(sleeps, caplog):
    """Parallel launchers (submitit, joblib) have no previous job to cool down from: no wait, one warning."""
    parallel = CompareCallback()
    parallel.on_multirun_start(_config(cooldown_s=5.0, launcher=SUBMITIT_LOCAL))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"lightning-green: energy.cooldown_s=5 is ignored: it applies to Hydra's sequential launcher "
                        f"only, and {SUBMITIT_LOCAL} runs the jobs in parallel (the comparison flags jobs that "
                        f"overlapped on one host)"]
    parallel.on_job_start(_config(num=1, cooldown_s=5.0, launcher=SUBMITIT_LOCAL))
    assert sleeps == []
    caplog.clear()
    sequential = CompareCallback()
    sequential.on_multirun_start(_config(cooldown_s=5.0, launcher=hydra_callback.SEQUENTIAL_LAUNCHER))
    CompareCallback().on_multirun_start(_config(cooldown_s=0.0, launcher=SUBMITIT_LOCAL))  # nothing to ignore
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
    sequential.on_job_start(_config(num=1, cooldown_s=5.0, launcher=hydra_callback.SEQUENTIAL_LAUNCHER))
    assert sleeps == [5.0]


def test_multirun_end_logs_the_pareto_front(tmp_path, caplog):
    from lightning_green.compare import compare, load_runs

    caplog.set_level("INFO", logger=hydra_callback.__name__)
    sweep = write_sweep(tmp_path / "sweep")
    CompareCallback(plots=False).on_multirun_end(_config(sweep))
    expected = compare(load_runs([str(sweep)]))
    assert expected.pareto  # the fixture has a front
    lines = [r.getMessage() for r in caplog.records if "Pareto front" in r.getMessage()]
    assert len(lines) == 1
    names = [part.split(" (")[0] for part in lines[0].split(": ", 2)[-1].split("), ")]
    assert lines[0].startswith("lightning-green: Pareto front (least energy, highest val/acc): ")
    assert names == [r.name for r in expected.pareto]


def test_cooldown_counts_time_already_waited(sleeps, monkeypatch):
    callback = CompareCallback()
    callback.on_job_end(_config(num=0), job_return=None)
    now = time.monotonic()
    monkeypatch.setattr(hydra_callback.time, "monotonic", lambda: now + 10.0)
    callback.on_job_start(_config(num=1, cooldown_s=5.0))
    assert sleeps == []


def test_bad_arguments_name_the_key():
    with pytest.raises(ValueError, match=r"energy.cooldown_s must be a number >= 0 or None, got -1"):
        CompareCallback().cooldown_for(_config(cooldown_s=-1))
    with pytest.raises(ValueError, match=r"by must be one of 'energy', 'emissions', got 'watts'"):
        CompareCallback(by="watts")
    with pytest.raises(ValueError, match=r"cooldown_s must be a number >= 0"):
        CompareCallback(cooldown_s=-2.0)
    with pytest.raises(ValueError, match=r"plot_format must be one of 'png', 'svg', got 'pdf'"):
        CompareCallback(plot_format="pdf")
    with pytest.raises(ValueError, match=r"regions must be ISO-3 country codes .* got 'Atlantis'"):
        CompareCallback(regions="FRA,Atlantis")


def test_plot_options_group_by_and_regions_reach_the_comparison(tmp_path):
    sweep = write_sweep(tmp_path / "sweep")
    CompareCallback(plot_format="svg", dpi=100, group_by=["precision"], regions="SWE").on_multirun_end(_config(sweep))
    assert sorted(p.name for p in sweep.glob("*.svg")) == ["energy_by_component.svg", "pareto_energy.svg",
                                                          "power_over_time.svg"]
    md = (sweep / "comparison.md").read_text()
    assert "## Configurations (repeats pooled)" in md and "SWE (g)" in md and "USA (g)" not in md


APP = textwrap.dedent('''
    """A tiny Hydra app that writes a footprint per job, to exercise the callback in real Hydra."""
    import json, os, time
    from datetime import datetime, timezone
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base="1.3", config_path=".", config_name="app")
    def main(cfg):
        start = datetime.now(timezone.utc)
        time.sleep(0.05)
        out = HydraConfig.get().runtime.output_dir
        footprint = {
            "schema": "lightning-green/footprint/1", "status": "completed",
            "started_at": start.isoformat(), "ended_at": datetime.now(timezone.utc).isoformat(),
            "duration_s": 0.05, "energy_kwh": cfg.x * 1e-6, "energy_kwh_by_component": {"cpu": cfg.x * 1e-6},
            "emissions_kg": cfg.x * 4e-7, "carbon_intensity_g_per_kwh": 400.0, "pue": 1.0,
            "overrides": list(HydraConfig.get().overrides.task), "metrics": {"val/acc": 1.0 / cfg.x},
            "sensors": [{"name": "cpu", "component": "cpu", "measured": False}],
            "context": {"hostname": "h"},
        }
        with open(os.path.join(out, "footprint.json"), "w") as f:
            json.dump(footprint, f)

    if __name__ == "__main__":
        main()
''')

APP_YAML = textwrap.dedent('''
    x: 1
    energy:
      cooldown_s: 0.0
    hydra:
      callbacks:
        compare:
          _target_: lightning_green.compare.hydra_callback.CompareCallback
''')


def test_real_hydra_multirun_with_cooldown(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "app.yaml").write_text(APP_YAML)
    sweep = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "app.py", "-m", "x=1,2,3", "energy.cooldown_s=0.6", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (sweep / "comparison.md").is_file() and (sweep / "comparison.csv").is_file()
    md = (sweep / "comparison.md").read_text()
    assert "| 0 | 1 | completed |" in md and "| 2 | 3 | completed |" in md
    starts = [json.loads((sweep / str(i) / "footprint.json").read_text())["started_at"] for i in range(3)]
    ends = [json.loads((sweep / str(i) / "footprint.json").read_text())["ended_at"] for i in range(3)]
    from datetime import datetime

    gaps = [(datetime.fromisoformat(starts[i + 1]) - datetime.fromisoformat(ends[i])).total_seconds() for i in range(2)]
    assert min(gaps) >= 0.55, gaps  # energy.cooldown_s=0.6 separated the jobs
    assert "cooling down" in proc.stdout + proc.stderr + "".join(
        p.read_text() for p in sweep.rglob("*.log"))


@pytest.mark.slow
@pytest.mark.timeout(150)  # ~25 s on 2 idle CPU cores, ~50 s on busy ones
def test_real_train_multirun_end_to_end(tmp_path):
    if not (REPO / "train.py").is_file() or not (REPO / "conf" / "train.yaml").is_file():
        pytest.skip("the recipe (train.py, conf/train.yaml) is not in this checkout")
    sweep = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "precision=32,bf16", "trainer.max_epochs=1",
         "++trainer.limit_train_batches=3", "++trainer.limit_val_batches=2", "data.max_length=64",
         "data.num_train=600", "data.num_validation=128", "data.num_test=128", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=140,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(list(sweep.glob("*/footprint.json"))) == 2
    for name in ("comparison.csv", "comparison.md", "energy_by_component.png", "power_over_time.png"):
        assert (sweep / name).stat().st_size > 0, name
    md = (sweep / "comparison.md").read_text()
    assert "Baseline: run `0` (precision=32)." in md
    assert "| 0 | 32 | completed |" in md and "| 1 | bf16 | completed |" in md
    assert "compared 2 runs" in proc.stdout + proc.stderr
    shutil.rmtree(sweep, ignore_errors=True)
