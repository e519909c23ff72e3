"""steps.csv: one row per training step, streamed with a bounded buffer.

Columns: ``step,epoch,start_s,end_s,duration_s,energy_j,samples,tokens,<component>_j...``.
``start_s``/``end_s`` are unix epoch seconds; ``epoch`` is empty when unknown. Rows are
appended to the file (opened in append mode at each flush), so a resumed run continues the
same file; when the file already has a header its columns are kept. Public names are
re-exported by :mod:`lightning_green.engine.ledger`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BASE_COLUMNS = ("step", "epoch", "start_s", "end_s", "duration_s", "energy_j", "samples", "tokens")
_INT_COLUMNS = ("step", "epoch", "samples", "tokens")


class StepsWriter:
    """Stream :class:`~lightning_green.engine.ledger.StepRow` objects to a CSV file.

    Usable directly as a ledger's ``step_sink``. At most ``buffer_rows`` formatted rows are
    held in memory; :meth:`close` (or :meth:`flush`) writes the rest. A failed write raises
    and its rows are dropped (counted in ``rows_dropped``), so memory stays bounded.

    Args:
        path: The CSV file; created with a header if missing or empty, else appended to.
        components: Component names for the ``<component>_j`` columns, in order.
        buffer_rows: Rows kept in memory before they are written.
    """

    def __init__(self, path: str | os.PathLike, components: Sequence[str],
                 *, buffer_rows: int = 256) -> None:
        if isinstance(buffer_rows, bool) or not isinstance(buffer_rows, int) or buffer_rows < 1:
            raise ValueError(f"buffer_rows must be an int >= 1, got {buffer_rows!r}")
        self.path = Path(path)
        self.components = [str(c) for c in components]
        self.buffer_rows = buffer_rows
        self.rows_written = 0
        self.rows_dropped = 0
        self._buffer: list[str] = []
        self._columns: list[str] | None = None  # settled at the first row
        self._needs_header = False
        self._fast: str | None = None  # %-format for rows in our own column order

    def __call__(self, row: Any) -> None:
        self.write(row)

    def _settle_columns(self) -> list[str]:
        existing = _read_header(self.path)
        if existing:
            self._columns = existing
        else:
            self._columns = [*BASE_COLUMNS, *(f"{c}_j" for c in self.components)]
            self._needs_header = True
        own = [*BASE_COLUMNS, *(f"{c}_j" for c in self.components)]
        if self._columns == own and len(set(own)) == len(own):  # (a component named "energy" clashes)
            # This runs on the meter thread for every step while holding the GIL: one
            # %-format is ~4x cheaper than building the row column by column; it writes
            # exactly what the general path below writes.
            self._fast = "%s,%s,%.6f,%.6f,%.6f,%r,%s,%s" + ",%r" * len(self.components) + "\n"
        return self._columns

    def write(self, row: Any) -> None:
        """Buffer one row; write the buffer when it holds ``buffer_rows`` rows."""
        columns = self._columns or self._settle_columns()
        if self._fast is not None:
            by_comp = row.energy_j_by_component
            epoch = row.epoch
            self._buffer.append(self._fast % (
                row.step, "" if epoch is None else epoch, row.start_s, row.end_s,
                row.end_s - row.start_s, float(row.energy_j), row.samples, row.tokens,
                *[float(by_comp.get(c, 0.0)) for c in self.components],
            ))
            if len(self._buffer) >= self.buffer_rows:
                self.flush()
            return
        values = {
            "step": str(row.step),
            "epoch": "" if row.epoch is None else str(row.epoch),
            "start_s": f"{row.start_s:.6f}",
            "end_s": f"{row.end_s:.6f}",
            "duration_s": f"{row.end_s - row.start_s:.6f}",
            "energy_j": repr(float(row.energy_j)),
            "samples": str(row.samples),
            "tokens": str(row.tokens),
        }
        by_comp = row.energy_j_by_component
        self._buffer.append(",".join(
            values[c] if c in values else
            (repr(float(by_comp.get(c[:-2], 0.0))) if c.endswith("_j") else "")
            for c in columns
        ) + "\n")
        if len(self._buffer) >= self.buffer_rows:
            self.flush()

    def flush(self) -> None:
        """Append the buffered rows (and the header, for a new file)."""
        if not self._buffer and not self._needs_header:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                if self._needs_header:
                    out = io.StringIO()
                    csv.writer(out, lineterminator="\n").writerow(self._columns)
                    f.write(out.getvalue())
                    self._needs_header = False
                f.writelines(self._buffer)
            self.rows_written += len(self._buffer)
        except OSError:
            self.rows_dropped += len(self._buffer)  # memory stays bounded if the disk fails
            raise
        finally:
            self._buffer.clear()

    def close(self) -> None:
        """Write everything buffered. Safe to call more than once."""
        self.flush()


def _read_header(path: Path) -> list[str] | None:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None) or None
    except OSError:  # missing or unreadable: write a new header (a write error shows later)
        return None


def iter_steps(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield steps.csv rows as dicts: ints for step/epoch/samples/tokens, floats otherwise.

    An empty ``epoch`` becomes None.
    """
    with open(path, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, text in raw.items():
                if key is None:
                    continue
                if text in ("", None):
                    row[key] = None
                elif key in _INT_COLUMNS:
                    row[key] = int(text)
                else:
                    row[key] = float(text)
            yield row


def read_steps(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All rows of a steps.csv (see :func:`iter_steps`)."""
    return list(iter_steps(path))
