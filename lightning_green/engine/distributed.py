"""Cross-rank reduction of footprints.

Each process measures what it owns (its GPU; the host's CPU and RAM only on local rank 0),
so a plain sum over ranks counts every joule once. Summaries travel as small dicts through
``torch.distributed.all_gather_object``, which works on gloo and NCCL alike; with one
process nothing is sent.
"""

from __future__ import annotations

from typing import Any


def is_distributed() -> bool:
    """True when a torch.distributed process group with more than one rank is running."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order; ``[obj]`` outside a process group.

    Collective: all ranks must call it at the same point.
    """
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
