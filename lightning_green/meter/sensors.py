"""Which sensors this process reads, so that over all ranks every joule is counted once.

* ``device`` sensors (a GPU) are read by the rank that trains on the device; two ranks of one
  host that resolve to the same physical device (``Sensor.device_id``: MIG slices of one GPU)
  are counted once, by the lower rank.
* ``host`` sensors (CPU package, RAM) are read by one rank per host: the lowest global rank
  whose host identity (:func:`lightning_green.engine.distributed.host_id`) matches. Whatever
  the launcher numbers its ranks, two nodes are two hosts.

The ranks agree through one ``all_gather`` of ``(host, device ids)`` when measuring starts
(a collective: every rank starts measuring at the same point of its program).
"""

from __future__ import annotations

import copy
from typing import Any

from lightning_green.engine.distributed import World, all_gather
from lightning_green.sensors.base import Sensor

__all__ = ["choose", "find_sensors"]


def find_sensors(spec: str | list[Sensor], device: Any) -> tuple[list[Sensor], list[dict], list[str]]:
    """``(sensors, unavailable, warnings)``: detected (``"auto"``) or copies of the user's.

    A user sensor whose ``describe()`` raises is left out with its reason: its bug must not
    cost the run.
    """
    if spec == "auto":
        from lightning_green.sensors.detect import probe

        found, missing = probe(torch_device=device)
        return found, [m.describe() for m in missing], []
    found, unavailable, warnings = [], [], []
    for sensor in spec:
        try:
            sensor = copy.copy(sensor)
            sensor.describe()
        except Exception as err:
            reason = f"left out: {type(err).__name__}: {err}"
            unavailable.append({"source": sensor.name, "component": sensor.component, "reason": reason})
            warnings.append(f"sensor {sensor.name!r} {reason}")
            continue
        found.append(sensor)
    return found, unavailable, warnings


def _device_ids(sensors: list[Sensor]) -> list[str | None]:
    out = []
    for sensor in sensors:
        device_id = getattr(sensor, "device_id", None)
        out.append(str(device_id) if sensor.scope == "device" and device_id else None)
    return out


def choose(sensors: list[Sensor], world: World) -> tuple[list[Sensor], list[str]]:
    """The sensors this rank keeps, and what it says about the ones it leaves to another rank.

    Collective when distributed (see the module docstring).
    """
    ids = _device_ids(sensors)
    everyone = all_gather((world.host, ids))
    host_owner: dict[str, int] = {}
    device_owner: dict[tuple[str, str], int] = {}
    for rank, (host, rank_ids) in enumerate(everyone):
        host_owner.setdefault(host, rank)
        for device_id in rank_ids or ():
            if device_id:
                device_owner.setdefault((host, device_id), rank)
    keep, notes = [], []
    for sensor, device_id in zip(sensors, ids):
        if sensor.scope == "host":
            if host_owner.get(world.host, world.rank) != world.rank:
                continue
        elif device_id is not None:
            owner = device_owner.get((world.host, device_id), world.rank)
            if owner != world.rank:
                notes.append(f"sensor {sensor.name!r} measures device {device_id}, which rank {owner} on this host "
                             "also measures (e.g. MIG slices of one GPU): counted once, by rank "
                             f"{owner}, for both ranks")
                continue
        keep.append(sensor)
    return keep, notes
