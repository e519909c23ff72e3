"""Where files go: local paths with atomic writes (provisional local-only version; the fsspec
version replaces it)."""

from __future__ import annotations

import os
from pathlib import Path

from lightning_green.outputs.atomic import atomic_write_bytes

__all__ = ["check_output_dir", "exists", "join", "read_bytes", "write_bytes", "write_text"]


def join(base: str, name: str) -> str:
    return os.path.join(os.fspath(base), name)


def write_bytes(path: str, data: bytes) -> None:
    atomic_write_bytes(path, data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def exists(path: str) -> bool:
    return os.path.exists(path)


def check_output_dir(path: str) -> str:
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output_dir must be a folder, got {os.fspath(path)!r}: it is an existing file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".lightning-green-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"output_dir must be a writable folder, got {os.fspath(path)!r}: {err}") from err
    return os.fspath(path)
