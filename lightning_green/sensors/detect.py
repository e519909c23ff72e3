"""What can be measured for this process, and why the rest cannot.

* GPU: one :class:`~lightning_green.sensors.nvml.NvmlSensor` per device this process trains
  on (never the other GPUs of the machine).
* CPU: RAPL package counters when readable, else :class:`CpuEstimateSensor`.
* RAM: RAPL DRAM zones when present (and ``rapl_dram``), else :class:`RamEstimateSensor`.

Each source that could not be used is returned as an :class:`Unavailable` with the reason
(no NVIDIA driver, no powercap tree, ``energy_uj`` readable only by root, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_green.sensors.base import Sensor, SensorUnavailable, Unavailable

_HEADER = ("component", "device / zone", "method", "measured", "uncertainty", "scope")


def probe(
    torch_device: Any = None,
    *,
    powercap_root: str | Path | None = None,
    rapl_dram: bool = True,
    all_gpus: bool = False,
) -> tuple[list[Sensor], list[Unavailable]]:
    """Usable sensors for this process, and the sources that could not be used.

    Args:
        torch_device: The device(s) this process trains on (``"cuda:0"``, a
            ``torch.device``, a list of them, or ``"cpu"`` for no GPU). None: the current
            CUDA device, ``cuda:0`` unless torch initialised CUDA on another. Callers that
            know the device (the callback: ``trainer.strategy.root_device``) pass it.
        powercap_root: The powercap directory; default ``/sys/class/powercap``.
        rapl_dram: Use RAPL DRAM zones for RAM when present, instead of the estimate.
        all_gpus: List every GPU this process can see instead (the ``sensors`` command).

    Returns:
        ``(sensors, unavailable)``: GPU sensors first, then CPU, then RAM.
    """
    from lightning_green.sensors.cpu import CpuEstimateSensor
    from lightning_green.sensors.nvml import probe_nvml
    from lightning_green.sensors.ram import RamEstimateSensor
    from lightning_green.sensors.rapl import POWERCAP_ROOT, RaplSensor

    root = POWERCAP_ROOT if powercap_root is None else powercap_root
    unavailable: list[Unavailable] = []
    gpus = _attempt(lambda: probe_nvml(torch_device, all_visible=all_gpus), "nvml", "gpu", unavailable)
    sensors, missing = gpus if gpus is not None else ([], [])
    unavailable = missing + unavailable
    cpu = _attempt(lambda: RaplSensor(root), "rapl", "cpu", unavailable)
    if cpu is None:
        cpu = _attempt(CpuEstimateSensor, "cpu estimate", "cpu", unavailable)
    ram: Sensor | None = None
    if isinstance(cpu, RaplSensor) and rapl_dram:
        ram = _attempt(lambda: RaplSensor(root, dram_only=True), "rapl dram", "ram", unavailable)
    if ram is None:
        ram = _attempt(RamEstimateSensor, "ram estimate", "ram", unavailable)
    sensors += [s for s in (cpu, ram) if s is not None]
    return sensors, unavailable


def _attempt(make: Any, source: str, component: str, unavailable: list[Unavailable]) -> Any:
    """``make()``, or None with the reason added to ``unavailable``: an unexpected error while
    detecting one source (an unreadable /proc or powercap tree) must cost only that source."""
    try:
        return make()
    except Exception as err:
        reason = str(err) if isinstance(err, SensorUnavailable) else f"{type(err).__name__}: {err}"
        unavailable.append(Unavailable(source, component, reason))
        return None


def detect(torch_device: Any = None, *, include_unavailable: bool = False, **options: Any) -> Any:
    """The usable sensors for this process (see :func:`probe` for the arguments).

    Returns:
        ``list[Sensor]``; or ``(sensors, unavailable)`` when ``include_unavailable``.
    """
    sensors, unavailable = probe(torch_device, **options)
    return (sensors, unavailable) if include_unavailable else sensors


def _band(record: dict[str, Any]) -> str:
    """``+-5 %``, ``+-5 % or 5 W``; ``(default)`` when the sensor stated none."""
    rel, floor_w = record.get("uncertainty_rel") or 0.0, record.get("uncertainty_w") or 0.0
    parts = [f"+-{100 * rel:g} %"] if rel else []
    if floor_w:
        parts.append(f"{floor_w:g} W" if parts else f"+-{floor_w:g} W")
    text = " or ".join(parts) or "+-0"
    return text + (" (default)" if "not stated" in str(record.get("uncertainty_source", "")) else "")


def format_sensor_table(torch_device: Any = None, *, all_gpus: bool = True, **options: Any) -> str:
    """A plain-text table of every sensor and every unusable source with its reason.

    Args:
        torch_device: As in :func:`probe`; ignored for GPUs while ``all_gpus`` is True.
        all_gpus: List every visible GPU (the machine's view) rather than this process's.
        **options: Passed to :func:`probe`.
    """
    sensors, unavailable = probe(torch_device, all_gpus=all_gpus, **options)
    rows = [_HEADER]
    for sensor in sensors:
        record = sensor.describe()
        rows.append((
            str(record["component"]),
            str(record.get("device", record["name"])),
            str(record["method"]),
            "measured" if record["measured"] else "estimated",
            _band(record),
            str(record["scope"]),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if unavailable:
        lines += ["", "Not available:"]
        lines += [f"  {item.component:<4} {item.source:<10} {item.reason}" for item in unavailable]
    return "\n".join(lines)
