"""Runs of tests/scripts/durability_fit.py for the durability tests: start one in its own
session, wait for its marks, kill it with a real signal, read what it left."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers.nodes import clean_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "scripts" / "durability_fit.py"
J_PER_KWH = 3.6e6


class Fit:
    """One durability_fit.py job (every rank of it in one process group)."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str] | None = None, **settings) -> None:
        self.folder = tmp_path / name
        self.marks = self.folder / "marks"
        self.marks.mkdir(parents=True)
        settings.setdefault("out_dir", str(tmp_path / "out"))
        settings["marks_dir"] = str(self.marks)
        self.settings = settings
        path = self.folder / "settings.json"
        path.write_text(json.dumps(settings))
        self.log = open(self.folder / "output.txt", "w")
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), str(path)], cwd=self.folder,
                                     env=env or clean_env(ROOT), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    # -- marks -----------------------------------------------------------------------
    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.folder / "output.txt").read_text()[-4000:]

    def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float = 120.0) -> object:
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                value = condition()
                if value:
                    return value
                raise AssertionError(f"the fit ended (exit {self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.02)

    def steps(self, rank: int = 0) -> int:
        try:
            return int((self.marks / f"step-{rank}").read_text())
        except (OSError, ValueError):
            return 0

    def pid(self, rank: int) -> int:
        return int(self.wait_for(f"rank {rank}'s pid", lambda: _read(self.marks / f"pid-{rank}")))

    def checkpoints(self, rank: int = 0) -> list[tuple[int, str]]:
        text = _read(self.marks / f"ckpt-{rank}") or ""
        return [(int(step), name) for step, name in (line.split() for line in text.splitlines() if line.strip())]

    def exit_record(self, rank: int = 0) -> dict | None:
        text = _read(self.marks / f"exit-{rank}.json")
        return json.loads(text) if text else None

    # -- the end -----------------------------------------------------------------------
    def kill_all(self, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to every process of the job at once; returns the wall time just before."""
        t = time.time()
        os.killpg(self.proc.pid, sig)
        return t

    def wait(self, timeout_s: float = 120.0) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the fit did not end within {timeout_s} s:\n{self.output()}") from None
        finally:
            self.log.flush()

    def close(self) -> None:
        """Kill whatever is left of the job (its own session only) and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def footprint(out: Path) -> dict | None:
    text = _read(out / "footprint.json")
    return json.loads(text) if text else None


def snapshot_at(out: Path) -> str | None:
    """The snapshot time of the footprint in ``out`` while it is running, else None."""
    data = footprint(out)
    return data.get("snapshot_at") if data and data.get("status") == "running" else None


def unix(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def steps_rows(path: Path) -> tuple[str, list[dict]]:
    """The raw text of a steps.csv and its rows."""
    text = path.read_text()
    return text, list(csv.DictReader(io.StringIO(text)))


def rank_state(out: Path, run_id: str, rank: int) -> dict:
    return json.loads((out / ".lightning-green" / run_id / f"rank-{rank}.json").read_text())
