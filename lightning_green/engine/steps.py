"""Per-step rows kept in bounded memory: numpy chunks, spilled to a binary file.

A :class:`StepStore` receives rows (one float64 array per batch of steps) from the ledger on
the sampler thread. At most ``memory_rows`` rows stay in memory; older ones are appended to
``spill_path`` as raw float64, so a run of a million steps holds a few hundred kB. Readers
iterate the rows in chunks (:meth:`StepStore.chunks`), never all at once.

Columns: :data:`BASE_COLUMNS` then one ``<component>_j`` column per component.
``start_s``/``end_s`` are unix seconds; ``phase`` is an index into
:data:`~lightning_green.engine.marks.PHASES`; ``epoch`` is -1 when there was none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["BASE_COLUMNS", "StepStore"]

BASE_COLUMNS = ("step", "phase", "epoch", "start_s", "end_s", "samples", "tokens", "padded_tokens", "energy_j")


class StepStore:
    """Rows of per-step figures, appended in batches, read back in chunks.

    Args:
        components: Component names, in the order of the ``<component>_j`` columns.
        spill_path: File the oldest rows go to once more than ``memory_rows`` are held.
        memory_rows: Rows kept in memory before spilling.
    """

    def __init__(self, components: Sequence[str], spill_path: str | os.PathLike, *, memory_rows: int = 8192) -> None:
        self.components = [str(c) for c in components]
        self.columns = [*BASE_COLUMNS, *(f"{c}_j" for c in self.components)]
        self.width = len(self.columns)
        self.spill_path = os.fspath(spill_path)
        self.memory_rows = int(memory_rows)
        self.rows = 0
        self.spilled_rows = 0
        self.spill_errors = 0
        self._chunks: list[np.ndarray] = []
        self._held = 0
        self._lock = threading.Lock()  # appends (sampler thread) vs reads (snapshots, the end)

    def append(self, rows: np.ndarray) -> None:
        """Add rows (shape ``(n, width)``); spill when too many are held."""
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows must have shape (n, {self.width}), got {rows.shape}")
        with self._lock:
            self._chunks.append(np.ascontiguousarray(rows, dtype=np.float64))
            self._held += len(rows)
            self.rows += len(rows)
            if self._held > self.memory_rows:
                self._spill()

    def _spill(self) -> None:
        block = np.concatenate(self._chunks)
        try:
            with open(self.spill_path, "ab") as f:
                block.tofile(f)
        except OSError:
            self.spill_errors += 1
            self.rows -= len(block)  # memory stays bounded if the disk fails: the rows are lost
        else:
            self.spilled_rows += len(block)
        self._chunks = []
        self._held = 0

    def chunks(self, chunk_rows: int = 65536) -> Iterator[np.ndarray]:
        """Every row so far, oldest first, in arrays of at most ``chunk_rows`` rows."""
        with self._lock:
            spilled = self.spilled_rows
            held = list(self._chunks)
        if spilled:
            data = np.memmap(self.spill_path, dtype=np.float64, mode="r", shape=(spilled, self.width))
            for start in range(0, spilled, chunk_rows):
                yield np.array(data[start:start + chunk_rows])
            del data
        for chunk in held:
            for start in range(0, len(chunk), chunk_rows):
                yield chunk[start:start + chunk_rows]

    def chunks_from(self, first_row: int) -> Iterator[np.ndarray]:
        """The rows from index ``first_row`` on, in chunks (rows already written elsewhere
        are skipped)."""
        seen = 0
        for chunk in self.chunks():
            n = len(chunk)
            if seen + n > first_row:
                yield chunk[max(0, first_row - seen):]
            seen += n

    def column(self, name: str) -> np.ndarray:
        """One column over every row (for tests and small runs; O(rows) memory)."""
        index = self.columns.index(name)
        parts = [chunk[:, index] for chunk in self.chunks()]
        return np.concatenate(parts) if parts else np.empty(0)

    def close(self) -> None:
        """Remove the spill file."""
        try:
            os.unlink(self.spill_path)
        except FileNotFoundError:
            pass
