"""ddp_spawn: the report is made in a spawned child process; hand it to the parent's callback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from lightning_green.outputs.atomic import atomic_write_text
from lightning_green.outputs.footprint import FootprintReport

__all__ = ["spawned", "take", "write"]

_PREFIX = "lightning-green-handoff-"


def spawned(trainer: Any) -> bool:
    """Whether this process is a child that Lightning's ``ddp_spawn`` launcher started."""
    launcher = getattr(trainer.strategy, "launcher", None)
    return type(launcher).__name__ == "_MultiProcessingLauncher"


def _path(token: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{_PREFIX}{token}.json"


def write(token: str, report: FootprintReport) -> None:
    atomic_write_text(_path(token), json.dumps(report.to_dict()))


def take(token: str) -> FootprintReport | None:
    path = _path(token)
    if not path.exists():
        return None
    try:
        return FootprintReport.from_dict(json.loads(path.read_text()))
    finally:
        path.unlink(missing_ok=True)
