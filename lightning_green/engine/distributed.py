"""Everything that crosses ranks, in one place.

Each process measures what it owns (its GPU; each host's CPU and RAM on one process of that
host), so a plain sum over ranks counts every joule once. Outside a ``torch.distributed``
process group with more than one rank nothing is sent and every function is the identity.

Collectives (every rank must call them at the same point of its program; the callers say
where and why every rank gets there): :func:`all_gather`, :func:`gather_to_zero`,
:func:`all_reduce_sum` and :func:`reduce_rows_to_zero`. Objects travel through
``all_gather_object``/``gather_object`` (small: O(1) per rank); per-step figures travel as a
float64 tensor reduced to rank 0 in fixed-size chunks, so memory and traffic per rank are
O(steps), whatever the world size.

Host identity: ``LIGHTNING_GREEN_HOST_ID`` if set, else the host name; two nodes are two
hosts whatever the launcher numbers their ranks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["World", "all_gather", "all_reduce_sum", "current_world", "gather_to_zero", "host_id",
           "reduce_rows_to_zero"]

HOST_ENV = "LIGHTNING_GREEN_HOST_ID"
#: Rows per reduce of per-step figures: bounds the tensor each rank builds (8 MB at 16 columns).
REDUCE_CHUNK_ROWS = 65536


def host_id() -> str:
    """This machine's identity for host-scoped sensors."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


@dataclass(frozen=True)
class World:
    """Where this process stands: its global rank, how many ranks, its host."""

    rank: int = 0
    world_size: int = 1
    host: str = ""
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return None
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return dist


def current_world() -> World:
    """This process's place in the running process group (one rank without one)."""
    dist = _dist()
    if dist is None:
        return World(0, 1, host_id(), None)
    return World(dist.get_rank(), dist.get_world_size(), host_id(), str(dist.get_backend()))


def _device(dist: Any) -> Any:
    import torch

    if dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` without a process group). Collective."""
    dist = _dist()
    if dist is None:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_to_zero(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (None elsewhere; ``[obj]`` without a process group). Collective."""
    dist = _dist()
    if dist is None:
        return [obj]
    rank0 = dist.get_rank() == 0
    out: list[Any] | None = [None] * dist.get_world_size() if rank0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over ranks, on every rank. Collective."""
    dist = _dist()
    if dist is None:
        return [float(v) for v in values]
    import torch

    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device(dist))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def reduce_rows_to_zero(rows: np.ndarray) -> np.ndarray | None:
    """Element-wise sum of a float64 array over ranks, on rank 0 (None elsewhere). Collective:
    every rank passes an array of the same shape. Call it chunk by chunk
    (:data:`REDUCE_CHUNK_ROWS`) so no rank ever holds more than one chunk."""
    dist = _dist()
    if dist is None:
        return rows
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float64)).to(_device(dist))
    dist.reduce(tensor, dst=0, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy() if dist.get_rank() == 0 else None
