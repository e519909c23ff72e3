"""Which physical GPU a torch device is: ``CUDA_VISIBLE_DEVICES`` mapping, without NVML.

CUDA numbers the devices a process sees ``0..n-1``; NVML numbers every GPU of the machine.
``CUDA_VISIBLE_DEVICES`` links the two. It holds a comma separated list whose entries are
NVML-style indices (``"2"``), GPU UUIDs or unique UUID prefixes (``"GPU-8932f937"``) or MIG
instances (``"MIG-<uuid>"``, or the legacy ``"MIG-GPU-<uuid>/<gi>/<ci>"``). As in CUDA, the
first invalid entry ends the list; an empty value hides every GPU.

Limitation: integer entries (and the unset case) follow ``CUDA_DEVICE_ORDER``. With the
default ``FASTEST_FIRST`` order, a machine that mixes GPU models may number devices
differently from NVML's PCI bus order. :mod:`lightning_green.sensors.nvml` avoids this by
asking torch for the device UUID once CUDA is initialised in the process; when it has to use
an index on a host with several GPU models and ``CUDA_DEVICE_ORDER`` is not ``PCI_BUS_ID``,
it warns and says so in the sensor's notes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from lightning_green.sensors.base import SensorUnavailable

_INT_ENTRY = re.compile(r"^\d+$")
_UUID_ENTRY = re.compile(r"^(GPU|MIG)-[0-9A-Za-z/\-]+$")


def parse_cuda_visible_devices(value: str | None) -> list[int | str] | None:
    """Parse a ``CUDA_VISIBLE_DEVICES`` value the way the CUDA runtime does.

    Args:
        value: The variable's value, or None when it is unset.

    Returns:
        None when unset (every GPU visible, in order); else the visible entries, ints for
        indices and str for ``GPU-``/``MIG-`` entries, cut at the first invalid entry.
    """
    if value is None:
        return None
    entries: list[int | str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if _INT_ENTRY.match(entry):
            entries.append(int(entry))
        elif _UUID_ENTRY.match(entry):
            entries.append(entry)
        else:  # CUDA ignores this entry and every one after it (e.g. "-1", "", "none")
            break
    return entries


def cuda_index(torch_device: Any) -> int | None:
    """The CUDA ordinal of a torch device, or None for a non-CUDA device.

    Args:
        torch_device: A ``torch.device``, a string such as ``"cuda:1"``, ``"cuda"`` or
            ``"cpu"``, or an int ordinal. ``"cuda"`` without an index means the current
            device when torch has initialised CUDA, else device 0.

    Raises:
        ValueError: if ``torch_device`` is not one of these forms.
    """
    if isinstance(torch_device, bool):
        raise ValueError(f"torch_device must be a torch.device, str or int, got {torch_device!r}")
    if isinstance(torch_device, int):
        if torch_device < 0:
            raise ValueError(f"torch_device must be an ordinal >= 0, got {torch_device!r}")
        return torch_device
    if isinstance(torch_device, str):
        kind, _, index = torch_device.strip().partition(":")
        if index and not index.isdigit():
            raise ValueError(f"torch_device must look like 'cuda:N', got {torch_device!r}")
        parsed_index = int(index) if index else None
    elif hasattr(torch_device, "type"):
        kind, parsed_index = torch_device.type, getattr(torch_device, "index", None)
    else:
        raise ValueError(f"torch_device must be a torch.device, str or int, got {torch_device!r}")
    if kind != "cuda":
        return None
    return current_cuda_index() if parsed_index is None else int(parsed_index)


def current_cuda_index() -> int:
    """torch's current CUDA device if torch already initialised CUDA, else 0 (no CUDA init)."""
    import sys

    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            return int(torch.cuda.current_device())
    except Exception:  # a broken CUDA install must not break sensor detection
        pass
    return 0


def visible_target(index: int, environ: Mapping[str, str] | None = None) -> int | str:
    """Map a CUDA ordinal to an NVML index (int) or a UUID / UUID prefix (str).

    Args:
        index: The CUDA ordinal as this process sees it.
        environ: Environment to read ``CUDA_VISIBLE_DEVICES`` from; default ``os.environ``.

    Raises:
        LookupError: if ``CUDA_VISIBLE_DEVICES`` does not make device ``index`` visible.
    """
    env = os.environ if environ is None else environ
    raw = env.get("CUDA_VISIBLE_DEVICES")
    entries = parse_cuda_visible_devices(raw)
    if entries is None:
        return index
    if index >= len(entries):
        raise LookupError(
            f"cuda:{index} is not visible to this process: CUDA_VISIBLE_DEVICES={raw!r} "
            f"makes {len(entries)} device(s) visible"
        )
    return entries[index]


def visible_count(environ: Mapping[str, str] | None = None) -> int | None:
    """How many devices ``CUDA_VISIBLE_DEVICES`` makes visible; None when it is unset."""
    env = os.environ if environ is None else environ
    entries = parse_cuda_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    return None if entries is None else len(entries)


def cuda_initialized() -> bool:
    """Whether torch has initialised CUDA in this process (without initialising it)."""
    import sys

    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


def torch_cuda_uuid(index: int) -> str | None:
    """The UUID torch reports for ``cuda:index``, only if torch already initialised CUDA."""
    import sys

    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_initialized():
            return None
        return str(torch.cuda.get_device_properties(index).uuid)
    except Exception:
        return None


def nvml_targets(torch_device: Any = None) -> list[int | str]:
    """Ways to find the physical GPU of ``torch_device`` in NVML, best first.

    torch's UUID for the device (exact whatever ``CUDA_DEVICE_ORDER``; torch prints it
    without prefix, so both ``GPU-`` and ``MIG-`` forms are tried), then the
    ``CUDA_VISIBLE_DEVICES`` entry.

    Raises:
        SensorUnavailable: for a non-CUDA device, or one ``CUDA_VISIBLE_DEVICES`` hides.
    """
    index = cuda_index("cuda" if torch_device is None else torch_device)
    if index is None:
        raise SensorUnavailable(f"this process does not train on a GPU (device {torch_device!r})")
    targets: list[int | str] = []
    uuid = torch_cuda_uuid(index)
    if uuid:
        bare = uuid.split("-", 1)[1] if uuid.startswith(("GPU-", "MIG-")) else uuid
        targets += [f"GPU-{bare}", f"MIG-{bare}"]
    try:
        targets.append(visible_target(index))
    except LookupError as err:
        if not targets:
            raise SensorUnavailable(str(err)) from err
    return targets
