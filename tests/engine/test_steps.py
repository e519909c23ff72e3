"""StepStore: per-step rows in bounded memory, spilled to disk, read back in chunks."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_green.engine.steps import BASE_COLUMNS, StepStore


def block(first: int, n: int, width: int) -> np.ndarray:
    rows = np.zeros((n, width))
    rows[:, 0] = np.arange(first, first + n)
    rows[:, -1] = rows[:, 0] * 0.5
    return rows


def test_rows_spill_past_the_memory_bound_and_read_back_in_order(tmp_path):
    store = StepStore(["gpu", "cpu"], tmp_path / "steps.bin", memory_rows=100)
    assert store.columns == [*BASE_COLUMNS, "gpu_j", "cpu_j"]
    for first in range(0, 1000, 30):
        store.append(block(first, 30, store.width))
        assert store._held <= 130  # never more than the bound plus one batch in memory
    assert store.rows == 1020 and store.spilled_rows > 800
    chunks = list(store.chunks(chunk_rows=256))
    assert all(len(c) <= 256 for c in chunks)
    steps = np.concatenate([c[:, 0] for c in chunks])
    assert steps.tolist() == list(range(1020))
    assert store.column("cpu_j").sum() == pytest.approx(0.5 * sum(range(1020)))
    store.close()
    assert not (tmp_path / "steps.bin").exists()


def test_rows_of_the_wrong_width_are_refused(tmp_path):
    store = StepStore(["gpu"], tmp_path / "s.bin")
    with pytest.raises(ValueError, match=r"shape \(n, 10\)"):
        store.append(np.zeros((3, 4)))


def test_a_failing_disk_loses_rows_but_keeps_memory_bounded(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    store = StepStore(["gpu"], blocker / "steps.bin", memory_rows=10)
    for first in range(0, 50, 5):
        store.append(block(first, 5, store.width))
    assert store.spill_errors > 0 and store._held <= 15
    assert store.rows == sum(len(c) for c in store.chunks())
