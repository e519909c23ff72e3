"""steps.csv: one row per step (batch), written from the engine's step rows in chunks.

Columns: ``step,epoch,phase,start_s,end_s,duration_s,energy_j,emissions_g,samples,tokens,
padded_tokens``, then ``<component>_j`` per component. ``start_s``/``end_s`` are unix seconds;
``epoch`` is empty when there was none; ``energy_j`` is every sensor's energy in the step (all
ranks, once reduced); ``emissions_g`` its emissions (energy x PUE x the grid intensity at that
time); ``tokens`` are real tokens (padding excluded), ``padded_tokens`` what the model
processed. Per-step energy interpolates the sampled series: steps shorter than the sampling
interval (or a counter's update period) get a smooth share, not a measurement.

A resumed run continues the same file: rows before its first step are kept, later ones
(done again) replaced.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from lightning_green.engine.marks import PHASES
from lightning_green.outputs import files

__all__ = ["STEPS_FILENAME", "StepsCsv", "csv_columns", "format_rows", "iter_steps", "read_steps", "write_steps_csv"]

STEPS_FILENAME = "steps.csv"
_INT_COLUMNS = ("step", "epoch", "samples", "tokens", "padded_tokens")
_PHASE_NAMES = np.array(PHASES, dtype=object)


def csv_columns(components: Iterable[str]) -> list[str]:
    return ["step", "epoch", "phase", "start_s", "end_s", "duration_s", "energy_j", "emissions_g", "samples",
            "tokens", "padded_tokens", *(f"{c}_j" for c in components)]


def format_rows(chunk: np.ndarray, n_components: int, emissions_g: np.ndarray | None = None) -> str:
    """CSV text of engine step rows (:data:`lightning_green.engine.steps.BASE_COLUMNS` then
    components), in :func:`csv_columns` order; ``emissions_g`` per row, or empty.

    One ``%`` over every value of the chunk (columns interleaved into one flat list) instead
    of one per row: the per-row Python work is gone, the float formatting stays in C.
    """
    n = len(chunk)
    if not n:
        return ""
    # Times as whole microseconds, printed "%d.%06d": the text of "%.6f", at a third of its cost.
    start_us = np.rint(chunk[:, 3] * 1e6).astype(np.int64)
    end_us = np.rint(chunk[:, 4] * 1e6).astype(np.int64)
    epoch = chunk[:, 2].astype(np.int64)
    columns: list[list[Any]] = [
        chunk[:, 0].astype(np.int64).tolist(),
        np.where(epoch < 0, "", epoch.astype(str)).tolist(),
        _PHASE_NAMES[np.clip(chunk[:, 1].astype(np.intp), 0, len(PHASES) - 1)].tolist(),
    ]
    for micros in (start_us, end_us, np.maximum(end_us - start_us, 0)):
        seconds, fraction = np.divmod(micros, 1_000_000)
        columns += [seconds.tolist(), fraction.tolist()]
    columns.append(chunk[:, 8].tolist())
    if emissions_g is not None:
        columns.append(np.asarray(emissions_g, dtype=np.float64).tolist())
    counts = chunk[:, 5:8].astype(np.int64)
    columns += [counts[:, 0].tolist(), counts[:, 1].tolist(), counts[:, 2].tolist()]
    columns += [chunk[:, 9 + i].tolist() for i in range(n_components)]
    width = len(columns)
    flat: list[Any] = [None] * (n * width)
    for index, column in enumerate(columns):
        flat[index::width] = column
    emissions = "%.9g," if emissions_g is not None else ","
    fmt = "%d,%s,%s,%d.%06d,%d.%06d,%d.%06d,%.12g," + emissions + "%d,%d,%d" + ",%.12g" * n_components + "\n"
    return (fmt * n) % tuple(flat)


def _kept_rows(target: str, first_step: int, header: list[str]) -> list[str]:
    """Lines of an existing steps.csv with ``step < first_step``, in ``header``'s columns."""
    try:
        text = files.read_bytes(target).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    reader = csv.reader(io.StringIO(text))
    old = next(reader, None)
    if not old or "step" not in old:
        return []
    index = old.index("step")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in reader:
        try:
            if int(float(row[index])) >= first_step:
                continue
        except (ValueError, IndexError):
            continue
        values = dict(zip(old, row))
        writer.writerow([values.get(name, "") for name in header])
    return [out.getvalue()] if out.tell() else []


class StepsCsv:
    """One run's steps.csv in ``out_dir``, written as the run goes (local folders: rows are
    appended at each snapshot, whole lines in one write, then fsync'd, so a killed run leaves
    every row up to its last snapshot) or at the end (remote folders, which have no append).

    A resumed run continues the file: rows before its first step are kept, later ones (done
    again) replaced. ``emissions_g(start_s, end_s, energy_j)`` gives each step's emissions.
    """

    def __init__(self, out_dir: str, components: list[str], *, first_step: int = 0,
                 emissions_g: Any = None) -> None:
        self.path = files.join(out_dir, STEPS_FILENAME)
        self.components = list(components)
        self.first_step = int(first_step)
        self.emissions_g = emissions_g
        self.rows_written = 0
        self.appendable = not files.is_remote(self.path)
        self._started = False
        self._unsynced = False

    def _text(self, chunks: Iterable[np.ndarray]) -> str:
        """CSV text of rows given in chunks, formatted in blocks of up to 65,536 rows."""
        out: list[str] = []
        for block in _blocks(chunks):
            emissions = None
            if self.emissions_g is not None:
                emissions = self.emissions_g(block[:, 3], block[:, 4], block[:, 8])
            out.append(format_rows(block, len(self.components), emissions))
        return "".join(out)

    def _head(self) -> str:
        header = csv_columns(self.components)
        head = io.StringIO()
        csv.writer(head, lineterminator="\n").writerow(header)
        kept = _kept_rows(self.path, self.first_step, header) if self.first_step > 0 and files.exists(self.path) else []
        return head.getvalue() + "".join(kept)

    def append(self, chunks: Iterable[np.ndarray], *, sync: bool = True) -> int:
        """Append rows (local folders only); returns how many. The first call writes the
        header and the earlier segment's rows, atomically; later ones add whole lines in one
        ``write`` (a kill cannot leave half a line), then fsync unless ``sync=False``."""
        if not self.appendable:
            return 0
        text = self._text(chunks)
        rows = text.count("\n")
        if not self._started:
            files.write_text(self.path, self._head() + text)  # atomic, fsync'd
            self._started, self._unsynced = True, False
        elif text or (sync and self._unsynced):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                data = memoryview(text.encode("utf-8"))
                while data:  # one write for a regular file; the loop only guards short writes
                    data = data[os.write(fd, data):]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._unsynced = not sync
        self.rows_written += rows
        return rows

    def write_all(self, chunks: Iterable[np.ndarray]) -> None:
        """Write the whole file atomically (the end of a remote or distributed run)."""
        text = self._text(chunks)
        if not text and not (self.first_step > 0 and files.exists(self.path)):
            return
        files.write_text(self.path, self._head() + text)
        self._started = True
        self.rows_written = text.count("\n")


def _blocks(chunks: Iterable[np.ndarray], rows: int = 65536) -> Iterator[np.ndarray]:
    """The chunks' rows regrouped into arrays of up to ``rows`` rows (fewer, larger pieces)."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        if not len(chunk):
            continue
        pending.append(chunk)
        held += len(chunk)
        if held >= rows:
            yield np.concatenate(pending)
            pending, held = [], 0
    if pending:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def write_steps_csv(target_dir: str, chunks: Iterable[np.ndarray], components: list[str], *,
                    first_step: int = 0) -> None:
    """Write ``target_dir``/steps.csv at once from engine step rows (see :class:`StepsCsv`)."""
    StepsCsv(target_dir, components, first_step=first_step).write_all(chunks)


def iter_steps(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield steps.csv rows as dicts: ints for step/epoch/samples/tokens, str for phase, floats
    otherwise; an empty ``epoch`` becomes None."""
    with open(path, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, text in raw.items():
                if key is None:
                    continue
                if text in ("", None):
                    row[key] = None
                elif key == "phase":
                    row[key] = text
                elif key in _INT_COLUMNS:
                    row[key] = int(text)
                else:
                    row[key] = float(text)
            yield row


def read_steps(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All rows of a steps.csv (see :func:`iter_steps`)."""
    return list(iter_steps(path))
