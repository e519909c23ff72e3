"""Output folders that may be local paths or fsspec URLs (``s3://``, ``gs://``, ``memory://``, ...).

Remote locations go through Lightning's own
:func:`lightning.fabric.utilities.cloud_io.get_filesystem` (fsspec), as Lightning's loggers and
checkpoints do, so credentials and endpoints come from the same places (for S3: the AWS
environment variables such as ``AWS_ACCESS_KEY_ID`` and ``AWS_ENDPOINT_URL``, ``~/.aws``, or
fsspec's configuration). Local paths (and ``file://`` URLs) keep the fsync'd atomic writes of
:mod:`lightning_green.outputs.atomic`.

* :func:`check_output_dir`: normalise a folder, create it and prove it writable (write and
  delete a probe file) before any training, or raise a ValueError that names the argument,
  the value and why (an existing file, a place that cannot be written, a URL whose fsspec
  package is not installed: ``pip install s3fs``).
* :func:`write_bytes` / :func:`write_text`: atomic; local: temporary file + fsync +
  :func:`os.replace`; remote: one object put (S3 and GCS objects appear whole or not at all).
* :func:`read_bytes`, :func:`exists`, :func:`join`, :func:`is_remote`.

Nothing is imported at module import: fsspec and Lightning load on the first URL.
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import uuid
from pathlib import Path
from typing import Any

from lightning_green.outputs.atomic import atomic_write_bytes

__all__ = [
    "check_output_dir", "exists", "is_dir", "is_remote", "join", "missing_package", "read_bytes", "write_bytes",
    "write_text",
]

PROBE_PREFIX = ".lightning-green-probe-"


def is_remote(path_or_url: str | os.PathLike) -> bool:
    """True for a URL with a protocol other than ``file://`` (``s3://b/run``, ``memory://x``)."""
    text = os.fspath(path_or_url)
    return isinstance(text, str) and "://" in text and not text.startswith(("file://", "local://"))


def _local(path_or_url: str | os.PathLike) -> str:
    text = os.fspath(path_or_url)
    for prefix in ("file://", "local://"):
        if isinstance(text, str) and text.startswith(prefix):
            return text[len(prefix):]
    return text


def _protocols(url: str) -> list[str]:
    """``"simplecache::s3://b/k"`` -> ``["simplecache", "s3"]``."""
    return [part.split("://", 1)[0] for part in url.split("::") if "://" in part or part.isidentifier()]


def missing_package(url: str) -> tuple[str, str] | None:
    """(protocol, pip package) that an fsspec URL needs but this environment lacks, else None.

    Read from fsspec's registry of known implementations (``s3`` -> ``s3fs.S3FileSystem``,
    so ``("s3", "s3fs")``); chained URLs (``simplecache::s3://...``) are checked link by link.
    """
    from fsspec.registry import known_implementations, registry

    for protocol in _protocols(url):
        known = known_implementations.get(protocol)
        if protocol in registry or known is None:
            continue
        module = str(known["class"]).split(".")[0]
        if importlib.util.find_spec(module) is None:
            return protocol, module
    return None


def _filesystem(url: str, name: str = "path") -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a remote URL; a clear error when it cannot be had."""
    missing = missing_package(url)
    if missing is not None:
        raise ValueError(
            f"{name}={url!r} needs the fsspec filesystem for {missing[0]}://, which is not installed: "
            f"pip install {missing[1]}"
        )
    from fsspec.core import url_to_fs
    from lightning.fabric.utilities.cloud_io import get_filesystem  # imports torch: only for URLs

    try:
        fs = get_filesystem(url)
    except (ImportError, ValueError) as err:  # "Protocol not known: foo", a broken install
        raise ValueError(f"{name}={url!r}: no fsspec filesystem for this URL ({err})") from err
    return fs, url_to_fs(url)[1]


def join(base: str | os.PathLike, name: str) -> str:
    """``base/name`` for a local folder or a URL (URLs always join with ``/``)."""
    text = os.fspath(base)
    if is_remote(text):
        return f"{text.rstrip('/')}/{name.lstrip('/')}"
    return os.path.join(text, name)


def check_output_dir(path_or_url: str | os.PathLike, *, name: str = "output_dir") -> str:
    """Normalise an output folder, create it and prove it writable; return the normalised form.

    Local paths (``~`` expanded, ``file://`` stripped) become absolute paths; URLs keep their
    protocol and lose a trailing ``/``. The check writes and deletes a small probe file
    (``.lightning-green-probe-<random>``), so missing credentials, a missing bucket that cannot
    be created, or a read-only place fail here, before training, not at the end of it.

    Raises:
        ValueError: Names ``name`` (``output_dir``), the value and the reason: not a path,
            an existing file, a folder that cannot be created or written, an fsspec URL whose
            filesystem package is not installed (``pip install s3fs``) or that is unknown.
    """
    if isinstance(path_or_url, bool) or not isinstance(path_or_url, (str, os.PathLike)):
        raise ValueError(f"{name} must be a folder path or an fsspec URL (str or os.PathLike), got {path_or_url!r}")
    text = os.fspath(path_or_url)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty folder path or fsspec URL, got {path_or_url!r}")
    if is_remote(text):
        protocol, _, rest = text.partition("://")
        return _check_remote(f"{protocol}://{rest.rstrip('/') or rest}", name)
    return _check_local(os.path.abspath(os.path.expanduser(_local(text))), name)


def _check_local(folder: str, name: str) -> str:
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{name}={folder!r} is an existing file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f"{PROBE_PREFIX}{uuid.uuid4().hex}")
        with open(probe, "wb") as f:
            f.write(b"probe")
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{name}={folder!r} cannot be written: {err.strerror or err}") from err
    return folder


def _check_remote(url: str, name: str) -> str:
    fs, path = _filesystem(url, name)
    probe = f"{path.rstrip('/')}/{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        if fs.isfile(path):
            raise ValueError(f"{name}={url!r} is an existing file (object), not a folder")
        try:
            fs.pipe_file(probe, b"probe")
        except FileNotFoundError:  # a missing bucket or folder: create it, as Lightning's loggers do
            fs.makedirs(path, exist_ok=True)
            fs.pipe_file(probe, b"probe")
        fs.rm_file(probe)
    except ValueError:
        raise
    except Exception as err:  # botocore's NoCredentialsError, ClientError, PermissionError, ...
        raise ValueError(f"{name}={url!r} cannot be written: {type(err).__name__}: {err}") from err
    return url


def write_bytes(path_or_url: str | os.PathLike, data: bytes) -> Path | str:
    """Write ``data`` atomically: readers see the old content or the new, never part of it.

    Local: :func:`~lightning_green.outputs.atomic.atomic_write_bytes` (temporary file in the
    same folder, fsync, :func:`os.replace`; parent folders created). Remote: one
    ``pipe_file`` (a single object put on S3 / GCS; the parent is created if the filesystem
    needs it).

    Returns:
        The location written: a :class:`~pathlib.Path` for a local file, the URL for a remote one.
    """
    if not is_remote(path_or_url):
        return atomic_write_bytes(_local(path_or_url), data)
    url = os.fspath(path_or_url)
    fs, path = _filesystem(url)
    try:
        fs.pipe_file(path, data)
    except FileNotFoundError:  # a missing bucket, or a filesystem with real folders (sftp, hdfs, ...)
        fs.makedirs(posixpath.dirname(path.rstrip("/")), exist_ok=True)
        fs.pipe_file(path, data)
    return url


def write_text(path_or_url: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path | str:
    """:func:`write_bytes` of ``text`` encoded."""
    return write_bytes(path_or_url, text.encode(encoding))


def read_bytes(path_or_url: str | os.PathLike) -> bytes:
    """The whole content of a local file or a remote object.

    Raises:
        FileNotFoundError: Nothing is there (also for remote URLs).
        OSError: Other read errors.
    """
    if not is_remote(path_or_url):
        return Path(_local(path_or_url)).read_bytes()
    fs, path = _filesystem(os.fspath(path_or_url))
    fs.invalidate_cache(path)
    return fs.cat_file(path)


def exists(path_or_url: str | os.PathLike) -> bool:
    """Whether a file or folder (local) or an object or prefix (remote) exists."""
    if not is_remote(path_or_url):
        return os.path.exists(_local(path_or_url))
    fs, path = _filesystem(os.fspath(path_or_url))
    fs.invalidate_cache(path)
    return bool(fs.exists(path))


def is_dir(path_or_url: str | os.PathLike) -> bool:
    """Whether a local folder or a remote folder / prefix exists there."""
    if not is_remote(path_or_url):
        return os.path.isdir(_local(path_or_url))
    fs, path = _filesystem(os.fspath(path_or_url))
    fs.invalidate_cache(path)
    return bool(fs.isdir(path))
