"""Scripted hardware for the sensor tests: a fake powercap tree and a fake NVML machine.

The NVML fake patches pynvml's functions with autospec, driven by plain data.

Every patched function keeps pynvml's real signature (``autospec=True``), refuses calls
before ``nvmlInit`` as NVML does (NVMLError_Uninitialized), and raises pynvml's own error
classes, so the code under test sees what it would see on a real driver.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pynvml

from lightning_green.sensors import nvml as nvml_module


RANGE_UJ = 262_143_328_850  # Intel's max_energy_range_uj


def zone(root: Path, label: str, name: str, energy_uj: int, range_uj: int = RANGE_UJ,
         max_power_uw: int | None = None) -> Path:
    """One powercap zone directory, as /sys/class/powercap/<label> shows it."""
    path = root / label
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    if max_power_uw is not None:
        (path / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
    return path


def set_uj(root: Path, label: str, energy_uj: int) -> None:
    (root / label / "energy_uj").write_text(f"{energy_uj}\n")


@dataclass
class FakeGpu:
    index: int
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    energy_mj: int = 1_000_000
    power_mw: int = 250_000
    usage_mw: int = 240_000
    counter: bool = True  # nvmlDeviceGetTotalEnergyConsumption supported
    instant: bool = True  # NVML_FI_DEV_POWER_INSTANT supported
    counter_error_after: int | None = None  # raise GpuIsLost after this many counter reads
    counter_reads: int = 0
    migs: list[str] = field(default_factory=list)
    lost: bool = False  # nvmlDeviceGetHandleByIndex raises GpuIsLost for this GPU
    instant_error: bool = False  # field 186 is supported but its read fails now (transient error)
    processes: list[int] = field(default_factory=list)  # pids nvmlDeviceGetComputeRunningProcesses lists
    processes_supported: bool = True
    process_queries: int = 0
    pci_bus_id: str = "00000000:17:00.0"
    power_limit_mw: int = 700_000
    persistence: int = 1
    mig_mode: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ProcessInfo:
    """What nvmlDeviceGetComputeRunningProcesses returns per process (the fields we read)."""

    pid: int
    usedGpuMemory: int = 1 << 30


@dataclass(frozen=True)
class PciInfo:
    busId: str


@dataclass(frozen=True)
class Handle:
    kind: str  # "gpu" or "mig"
    key: str


def _error(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.refcount = 0
        self.init_calls = 0
        self.shutdown_calls = 0
        self.init_error: int | None = None  # e.g. pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
        self.read_handles: list[Handle] = []  # every handle read for energy or power
        self.update_probe_s = 0.0  # NvmlSensor's open-time probe: off unless a test asks for it
        self.driver_version = "570.86.15"

    # -- helpers -------------------------------------------------------------------------
    def _check(self) -> None:
        if self.refcount <= 0:
            raise _error(pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: Handle) -> FakeGpu:
        self._check()
        if handle.kind != "gpu":
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)  # MIG handles report no power
        return next(g for g in self.gpus if g.uuid == handle.key)

    # -- the patched API ------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise _error(self.init_error)
        self.refcount += 1

    def nvmlShutdown(self) -> None:
        self._check()
        self.shutdown_calls += 1
        self.refcount -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Handle:
        self._check()
        if not 0 <= index < len(self.gpus):
            raise _error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if self.gpus[index].lost:
            raise _error(pynvml.NVML_ERROR_GPU_IS_LOST)
        return Handle("gpu", self.gpus[index].uuid)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> Handle:
        self._check()
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return Handle("gpu", uuid)
            if uuid in gpu.migs:
                return Handle("mig", uuid)
        raise _error(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: Handle) -> Handle:
        self._check()
        if migDevice.kind != "mig":
            raise _error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return Handle("gpu", next(g.uuid for g in self.gpus if migDevice.key in g.migs))

    def nvmlDeviceGetUUID(self, handle: Handle) -> str:
        self._check()
        return handle.key

    def nvmlDeviceGetName(self, handle: Handle) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetIndex(self, handle: Handle) -> int:
        return self._gpu(handle).index

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Handle) -> int:
        gpu = self._gpu(handle)
        if not gpu.counter:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        gpu.counter_reads += 1
        if gpu.counter_error_after is not None and gpu.counter_reads > gpu.counter_error_after:
            raise _error(pynvml.NVML_ERROR_GPU_IS_LOST)
        self.read_handles.append(handle)
        return gpu.energy_mj

    def nvmlDeviceGetFieldValues(self, handle: Handle, fieldIds: list[int]):
        gpu = self._gpu(handle)
        values = (pynvml.c_nvmlFieldValue_t * len(fieldIds))()
        for value, field_id in zip(values, fieldIds):
            value.fieldId = field_id
            value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
            ok = field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and gpu.instant and not gpu.instant_error
            value.nvmlReturn = pynvml.NVML_SUCCESS if ok else pynvml.NVML_ERROR_NOT_SUPPORTED
            value.value.uiVal = gpu.power_mw if ok else 0
        self.read_handles.append(handle)
        return values

    def nvmlDeviceGetPowerUsage(self, handle: Handle) -> int:
        gpu = self._gpu(handle)
        self.read_handles.append(handle)
        return gpu.usage_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Handle) -> list[ProcessInfo]:
        gpu = self._gpu(handle)
        gpu.process_queries += 1
        if not gpu.processes_supported:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [ProcessInfo(pid) for pid in gpu.processes]

    def nvmlDeviceGetPciInfo(self, handle: Handle) -> PciInfo:
        return PciInfo(self._gpu(handle).pci_bus_id)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Handle) -> int:
        return self._gpu(handle).power_limit_mw

    def nvmlDeviceGetPersistenceMode(self, handle: Handle) -> int:
        return self._gpu(handle).persistence

    def nvmlDeviceGetMigMode(self, device: Handle) -> Any:
        gpu = self._gpu(device)
        if gpu.mig_mode is None:
            raise _error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return list(gpu.mig_mode)

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check()
        return "12." + self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check()
        return 12080

    @contextlib.contextmanager
    def patched(self):
        names = [n for n in dir(self) if n.startswith("nvml")]
        with contextlib.ExitStack() as stack:
            for name in names:
                stack.enter_context(
                    mock.patch.object(pynvml, name, autospec=True, side_effect=getattr(self, name))
                )
            # the open-time update-period probe polls for real time: a fake counter that never
            # moves would make every open wait; tests of the probe pass update_probe_s
            stack.enter_context(mock.patch.object(nvml_module, "UPDATE_PROBE_S", self.update_probe_s))
            yield self


def uuid(n: int) -> str:
    return f"GPU-{n:08x}-1111-2222-3333-444444444444"


def mig_uuid(n: int) -> str:
    return f"MIG-{n:08x}-aaaa-bbbb-cccc-dddddddddddd"


def machine(count: int = 4) -> FakeNvml:
    return FakeNvml([FakeGpu(index=i, uuid=uuid(i), energy_mj=1_000_000 * (i + 1)) for i in range(count)])
