"""The energy a crashed run spent after its last checkpoint: totals arithmetic and the file
left by the checkpoints (the end-to-end crash and resume is in test_reliability_failures)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lightning_green.callbacks import crash_tail
from lightning_green.engine import totals


def test_spent_since_keeps_energy_and_time_not_the_redone_work():
    checkpoint = totals.add(totals.empty(), {
        "energy_j": 100.0, "duration_s": 10.0, "steps": 8, "samples": 32, "emissions_kg": 1e-3,
        "energy_j_by_phase": {"train": 90.0, "other": 10.0}, "energy_j_by_epoch": {"0": 100.0},
    })
    crashed = totals.add(totals.empty(), {
        "energy_j": 130.0, "duration_s": 13.0, "steps": 10, "samples": 40, "emissions_kg": 1.3e-3,
        "energy_j_by_phase": {"train": 120.0, "other": 10.0}, "energy_j_by_epoch": {"0": 100.0, "1": 30.0},
    })
    tail = totals.spent_since(crashed, checkpoint)
    assert tail["energy_j"] == 30.0 and tail["duration_s"] == pytest.approx(3.0)
    assert tail["emissions_kg"] == pytest.approx(3e-4)
    assert tail["steps"] == tail["samples"] == tail["tokens"] == 0.0  # redone after the resume
    assert tail["energy_j_by_phase"] == {"train": 30.0, "other": 0.0}
    assert tail["energy_j_by_epoch"] == {"0": 0.0, "1": 30.0}
    # Never negative: totals from an older lineage cannot take energy away.
    assert totals.spent_since(checkpoint, crashed)["energy_j"] == 0.0


def test_the_file_is_taken_once_and_only_for_its_own_run(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    trainer = SimpleNamespace(checkpoint_callbacks=[SimpleNamespace(dirpath=str(ckpt_dir)),
                                                    SimpleNamespace(dirpath=str(tmp_path / "never-saved"))])
    done = totals.add(totals.empty(), {"energy_j": 50.0, "duration_s": 5.0})
    written = crash_tail.write(trainer, "run-a", "failed", done)
    assert written == [ckpt_dir / "lightning-green-run-a.json"]  # no folder is made for it
    assert json.loads(written[0].read_text())["status"] == "failed"
    checkpoint = totals.add(totals.empty(), {"energy_j": 20.0, "duration_s": 2.0})
    ckpt = ckpt_dir / "last.ckpt"
    assert crash_tail.take(ckpt, "run-b", checkpoint) is None  # another run's checkpoint
    tail = crash_tail.take(ckpt, "run-a", checkpoint)
    assert tail is not None and tail["energy_j"] == 30.0 and tail["duration_s"] == 3.0
    assert crash_tail.take(ckpt, "run-a", checkpoint) is None  # renamed: added once
    assert (ckpt_dir / "lightning-green-run-a.carried.json").exists()
    (ckpt_dir / "lightning-green-run-a.json").write_text("{not json")
    assert crash_tail.take(ckpt, "run-a", checkpoint) is None  # a damaged file is ignored
