"""NVML calls made on a ``pynvml`` module handed in by :mod:`lightning_green.sensors.nvml`
(the only module that imports it): finding the physical GPU for a target, reading its power,
probing what it supports, and the versions and settings to print next to GPU figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning_green.sensors.base import SensorUnavailable

METHOD_COUNTER = "measured: nvml energy counter"
METHOD_INSTANT = "measured: nvml instant power (NVML_FI_DEV_POWER_INSTANT)"
METHOD_USAGE = "measured: nvml power usage (nvmlDeviceGetPowerUsage, 1 s average on Ampere+)"
POWER_INSTANT = "instant field 186"
POWER_AVERAGE = "1 s average"
_VALUE_FIELDS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def nvml_error_reason(err: BaseException) -> str:
    """A user-facing reason for an NVML error (e.g. no driver on this machine)."""
    label = type(err).__name__
    known = {
        "NVMLError_LibraryNotFound": "no NVIDIA driver (libnvidia-ml.so not found)",
        "NVMLError_DriverNotLoaded": "NVIDIA driver not loaded",
        "NVMLError_NoPermission": "no permission to query the GPU",
        "NVMLError_GpuIsLost": "the GPU fell off the bus",
    }
    return f"NVML: {known.get(label, str(err) or label)} ({label})"


def uuid_str(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def handle_by_uuid_or_prefix(pynvml: Any, target: str) -> Any:
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(target)
    except pynvml.NVMLError:
        pass
    matches, errors = [], []  # CUDA accepts a unique UUID prefix; NVML wants the full UUID
    for index in range(pynvml.nvmlDeviceGetCount()):
        try:  # one GPU that NVML cannot read must not hide the others
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = uuid_str(pynvml.nvmlDeviceGetUUID(handle))
        except pynvml.NVMLError as err:
            errors.append(f"GPU {index}: {type(err).__name__}")
            continue
        if uuid.startswith(target):
            matches.append(handle)
    if len(matches) != 1:
        found = "no GPU" if not matches else f"{len(matches)} GPUs"
        unread = f"; unreadable: {', '.join(errors)}" if errors else ""
        raise SensorUnavailable(f"NVML: {found} with UUID {target!r} (from CUDA_VISIBLE_DEVICES){unread}")
    return matches[0]


def resolve(pynvml: Any, target: int | str) -> tuple[Any, str | None]:
    """NVML handle of the physical GPU for ``target``, and the MIG UUID if it named one."""
    if isinstance(target, int):
        count = pynvml.nvmlDeviceGetCount()
        if target >= count:
            raise SensorUnavailable(f"NVML: GPU index {target} does not exist ({count} GPU(s))")
        return pynvml.nvmlDeviceGetHandleByIndex(target), None
    if target.startswith("MIG-GPU-"):  # legacy MIG-GPU-<gpu uuid>/<gi>/<ci>
        return handle_by_uuid_or_prefix(pynvml, target[4:].split("/")[0]), target
    if target.startswith("MIG-"):
        try:
            mig = pynvml.nvmlDeviceGetHandleByUUID(target)
            return pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig), target
        except pynvml.NVMLError as err:
            raise SensorUnavailable(f"NVML: MIG device {target!r} not found ({type(err).__name__})") from err
    return handle_by_uuid_or_prefix(pynvml, target), None


def instant_power_mw(pynvml: Any, handle: Any) -> float:
    value = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(value.nvmlReturn)
    return float(getattr(value.value, _VALUE_FIELDS.get(value.valueType, "uiVal")))


def read_power(pynvml: Any, handle: Any, source: str | None) -> tuple[float, str]:
    """(watts, source): the instant field, else the 1 s average; ``source`` forces one."""
    if source != POWER_AVERAGE:
        try:
            return instant_power_mw(pynvml, handle) / 1000.0, POWER_INSTANT
        except (pynvml.NVMLError, AttributeError):  # AttributeError: an old pynvml
            if source == POWER_INSTANT:
                raise
    return pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, POWER_AVERAGE


def probe_power_source(pynvml: Any, handle: Any) -> str | None:
    """Which power reading works on this GPU, None if neither."""
    try:
        return read_power(pynvml, handle, None)[1]
    except pynvml.NVMLError:
        return None


def mixed_models(pynvml: Any) -> list[str]:
    """The distinct GPU models NVML sees, when there is more than one (else empty)."""
    names = set()
    for index in range(pynvml.nvmlDeviceGetCount()):
        try:
            names.add(uuid_str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index))))
        except pynvml.NVMLError:
            continue
    return sorted(names) if len(names) > 1 else []


def probe_method(pynvml: Any, handle: Any) -> tuple[str, str]:
    """(kind, method): the best way this GPU reports its draw."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return "energy", METHOD_COUNTER
    except pynvml.NVMLError:
        pass  # NotSupported before Volta, and on some virtualised GPUs
    try:
        instant_power_mw(pynvml, handle)
        return "power", METHOD_INSTANT
    except (pynvml.NVMLError, AttributeError):  # AttributeError: an old pynvml
        pass
    try:
        pynvml.nvmlDeviceGetPowerUsage(handle)
        return "power", METHOD_USAGE
    except pynvml.NVMLError as err:
        raise SensorUnavailable(f"NVML: the GPU reports neither energy nor power ({type(err).__name__})") from err


def device_info(pynvml: Any, handle: Any) -> dict[str, Any]:
    """Versions and settings of the GPU behind ``handle``; a field NVML cannot give holds
    ``"unavailable: <error>"``."""
    def get(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Exception as err:  # NVMLError, NotSupported, an old pynvml without the call
            return f"unavailable: {type(err).__name__}"

    def version() -> str:
        from importlib.metadata import version as package_version

        return package_version("nvidia-ml-py")

    def mig_mode() -> Any:
        current, pending = pynvml.nvmlDeviceGetMigMode(handle)
        return {"current": "enabled" if current else "disabled", "pending": "enabled" if pending else "disabled"}

    return {
        "driver_version": get(lambda: uuid_str(pynvml.nvmlSystemGetDriverVersion())),
        "nvml_version": get(lambda: uuid_str(pynvml.nvmlSystemGetNVMLVersion())),
        "cuda_driver_version": get(pynvml.nvmlSystemGetCudaDriverVersion),
        "nvidia_ml_py_version": get(version),
        "pci_bus_id": get(lambda: uuid_str(pynvml.nvmlDeviceGetPciInfo(handle).busId)),
        "power_limit_w": get(lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0),
        "persistence_mode": get(lambda: "enabled" if pynvml.nvmlDeviceGetPersistenceMode(handle) else "disabled"),
        "mig_mode": get(mig_mode),
    }
