"""NVIDIA GPUs through NVML: the only module that imports ``pynvml`` (from ``nvidia-ml-py``).

One :class:`NvmlSensor` measures one physical GPU, the one this process trains on; a GPU
the process does not use is never counted. The device is found by mapping the torch device
through ``CUDA_VISIBLE_DEVICES`` (see :mod:`lightning_green.sensors.cuda_devices`), or, once
torch has initialised CUDA, by the UUID torch reports for it (exact whatever the
``CUDA_DEVICE_ORDER``).

Method, chosen by probing the device when the sensor is made and again in :meth:`open`:

1. ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer):
   ``kind == "energy"``, the meter calls :meth:`NvmlSensor.energy_j`.
2. Otherwise ``kind == "power"`` and the meter samples :meth:`NvmlSensor.power_w`: instant
   power from ``nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)``, falling back to
   ``nvmlDeviceGetPowerUsage`` (a 1 s average on Ampere and newer except A100).

MIG: NVML reports power and energy only for the whole physical GPU, not per MIG instance,
so a ``MIG-`` device is measured through its parent GPU. The figure then includes the other
instances' work (two processes on instances of one GPU each count all of it);
``describe()`` carries ``mig_uuid`` and the method says "whole GPU".

NVML is initialised per sensor (``nvmlInit`` in probe and :meth:`open`, ``nvmlShutdown`` in
:meth:`close`); NVML reference-counts these calls within a process.
"""

from __future__ import annotations

from typing import Any

from lightning_green.sensors import cuda_devices
from lightning_green.sensors.base import Sensor, SensorUnavailable, Unavailable

METHOD_COUNTER = "measured: nvml energy counter"
METHOD_INSTANT = "measured: nvml instant power (NVML_FI_DEV_POWER_INSTANT)"
METHOD_USAGE = "measured: nvml power usage (nvmlDeviceGetPowerUsage, 1 s average on Ampere+)"
_VALUE_FIELDS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def _import_pynvml() -> Any:
    try:
        import pynvml
    except Exception as err:  # ImportError, or a broken install raising anything else
        raise SensorUnavailable(f"pynvml not importable (pip install nvidia-ml-py): {err}") from err
    return pynvml


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


def _uuid_str(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _handle_by_uuid_or_prefix(pynvml: Any, target: str) -> Any:
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(target)
    except pynvml.NVMLError:
        pass
    matches = []  # CUDA accepts a unique UUID prefix; NVML wants the full UUID
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        if _uuid_str(pynvml.nvmlDeviceGetUUID(handle)).startswith(target):
            matches.append(handle)
    if len(matches) != 1:
        found = "no GPU" if not matches else f"{len(matches)} GPUs"
        raise SensorUnavailable(f"NVML: {found} with UUID {target!r} (from CUDA_VISIBLE_DEVICES)")
    return matches[0]


def _resolve(pynvml: Any, target: int | str) -> tuple[Any, str | None]:
    """NVML handle of the physical GPU for ``target``, and the MIG UUID if it named one."""
    if isinstance(target, int):
        count = pynvml.nvmlDeviceGetCount()
        if target >= count:
            raise SensorUnavailable(f"NVML: GPU index {target} does not exist ({count} GPU(s))")
        return pynvml.nvmlDeviceGetHandleByIndex(target), None
    if target.startswith("MIG-GPU-"):  # legacy MIG-GPU-<gpu uuid>/<gi>/<ci>
        return _handle_by_uuid_or_prefix(pynvml, target[4:].split("/")[0]), target
    if target.startswith("MIG-"):
        try:
            mig = pynvml.nvmlDeviceGetHandleByUUID(target)
            return pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig), target
        except pynvml.NVMLError as err:
            raise SensorUnavailable(f"NVML: MIG device {target!r} not found ({type(err).__name__})") from err
    return _handle_by_uuid_or_prefix(pynvml, target), None


def _instant_power_mw(pynvml: Any, handle: Any) -> float:
    value = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(value.nvmlReturn)
    return float(getattr(value.value, _VALUE_FIELDS.get(value.valueType, "uiVal")))


def _probe_method(pynvml: Any, handle: Any) -> tuple[str, str]:
    """(kind, method): the best way this GPU reports its draw."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return "energy", METHOD_COUNTER
    except pynvml.NVMLError:
        pass  # NotSupported before Volta, and on some virtualised GPUs
    try:
        _instant_power_mw(pynvml, handle)
        return "power", METHOD_INSTANT
    except (pynvml.NVMLError, AttributeError):  # AttributeError: an old pynvml
        pass
    try:
        pynvml.nvmlDeviceGetPowerUsage(handle)
        return "power", METHOD_USAGE
    except pynvml.NVMLError as err:
        raise SensorUnavailable(f"NVML: the GPU reports neither energy nor power ({type(err).__name__})") from err


class NvmlSensor(Sensor):
    """One NVIDIA GPU: energy counter where supported, else sampled power.

    Args:
        device_index: NVML index of the GPU (as ``nvidia-smi`` numbers it). Give this or
            ``torch_device``, not both.
        torch_device: The torch device this process trains on (``"cuda:1"``,
            ``torch.device``); mapped through ``CUDA_VISIBLE_DEVICES``. Default: the current
            CUDA device (``cuda:0`` unless torch initialised CUDA and chose another).
        **kwargs: ``name``, ``scope``, ... passed to :class:`Sensor`.

    Raises:
        SensorUnavailable: when pynvml, the driver or the GPU is missing, or the GPU reports
            neither energy nor power. The message is the reason.

    The meter must use :attr:`kind`: ``"energy"`` -> :meth:`energy_j`, ``"power"`` ->
    :meth:`power_w` (which works in both modes). ``describe()`` adds ``device``,
    ``gpu_name``, ``uuid``, ``nvml_index`` and, for a MIG device, ``mig_uuid``.
    """

    component = "gpu"
    measured = True

    def __init__(self, device_index: int | None = None, *, torch_device: Any = None, **kwargs: Any) -> None:
        if device_index is not None and torch_device is not None:
            raise ValueError(
                f"give device_index or torch_device, not both; got device_index={device_index!r}, "
                f"torch_device={torch_device!r}"
            )
        if device_index is not None and (isinstance(device_index, bool) or not isinstance(device_index, int)
                                         or device_index < 0):
            raise ValueError(f"device_index must be an int >= 0 or None, got {device_index!r}")
        self._handle: Any = None
        self._mig_uuid: str | None = None
        self._targets = [device_index] if device_index is not None else cuda_devices.nvml_targets(torch_device)
        self._auto_method = "method" not in kwargs
        pynvml = self._init()
        try:
            handle = self._resolve_handle(pynvml)
            self.uuid = _uuid_str(pynvml.nvmlDeviceGetUUID(handle))
            self.gpu_name = _uuid_str(pynvml.nvmlDeviceGetName(handle))
            self.nvml_index = int(pynvml.nvmlDeviceGetIndex(handle))
            self._kind, self._probed = _probe_method(pynvml, handle)
        except pynvml.NVMLError as err:
            raise SensorUnavailable(nvml_error_reason(err)) from err
        finally:
            pynvml.nvmlShutdown()
        kwargs.setdefault("name", f"nvml:{self.nvml_index}")
        kwargs.setdefault("method", self._method_text(self._probed))
        super().__init__(**kwargs)

    @staticmethod
    def _init() -> Any:
        pynvml = _import_pynvml()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise SensorUnavailable(nvml_error_reason(err)) from err
        return pynvml

    def _resolve_handle(self, pynvml: Any) -> Any:
        errors = []
        for target in self._targets:
            try:
                handle, self._mig_uuid = _resolve(pynvml, target)
                return handle
            except SensorUnavailable as err:
                errors.append(err)
        raise errors[-1]

    def _method_text(self, method: str) -> str:
        return f"{method} (whole GPU: MIG instance {self._mig_uuid} shares it)" if self._mig_uuid else method

    @property
    def kind(self) -> str:
        """``"energy"`` when the GPU has an energy counter, else ``"power"``."""
        return self._kind

    def open(self) -> None:
        """Initialise NVML in this process and find the GPU again by its UUID."""
        if self._handle is not None:
            return
        pynvml = self._init()
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
            self._kind, self._probed = _probe_method(pynvml, handle)
        except BaseException as err:
            pynvml.nvmlShutdown()
            if isinstance(err, pynvml.NVMLError):
                raise SensorUnavailable(nvml_error_reason(err)) from err
            raise
        self._handle = handle
        if self._auto_method:
            self.method = self._method_text(self._probed)

    def close(self) -> None:
        if self._handle is None:
            return
        self._handle = None
        try:
            _import_pynvml().nvmlShutdown()
        except Exception:  # close must not raise
            pass

    def _open_handle(self) -> tuple[Any, Any]:
        if self._handle is None:
            self.open()
        return _import_pynvml(), self._handle

    def energy_j(self) -> float:
        """Joules since the driver loaded (the NVML counter, mJ / 1000)."""
        pynvml, handle = self._open_handle()
        try:
            return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
        except pynvml.NVMLError as err:
            raise RuntimeError(f"{self.name}: energy counter read failed: {nvml_error_reason(err)}") from err

    def power_w(self) -> float:
        """Watts now: instant power, else ``nvmlDeviceGetPowerUsage``."""
        pynvml, handle = self._open_handle()
        try:
            if self._probed != METHOD_USAGE:
                try:
                    return _instant_power_mw(pynvml, handle) / 1000.0
                except (pynvml.NVMLError, AttributeError):
                    if self._probed == METHOD_INSTANT:
                        raise  # the probed method failed: report it, do not switch silently
            return pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except pynvml.NVMLError as err:
            raise RuntimeError(f"{self.name}: power read failed: {nvml_error_reason(err)}") from err

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record.update(device=f"{self.gpu_name} ({self.uuid})", gpu_name=self.gpu_name, uuid=self.uuid,
                      nvml_index=self.nvml_index)
        if self._mig_uuid:
            record["mig_uuid"] = self._mig_uuid
        return record

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None  # ctypes handles do not cross processes; open() finds the GPU again
        return state


def probe_nvml(torch_device: Any = None, *, all_visible: bool = False) -> tuple[list[Sensor], list[Unavailable]]:
    """GPU sensors for this process, and why GPUs could not be measured.

    Args:
        torch_device: The device(s) this process trains on: one device or a list. None
            means the current CUDA device. A non-CUDA device gives no GPU sensor.
        all_visible: Instead of ``torch_device``, every GPU this process can see (for the
            ``lightning-green sensors`` table; never for accounting).
    """
    try:
        pynvml = NvmlSensor._init()
    except SensorUnavailable as err:
        return [], [Unavailable("nvml", "gpu", str(err))]
    try:
        if all_visible:
            count = cuda_devices.visible_count()
            devices: list[Any] = list(range(pynvml.nvmlDeviceGetCount() if count is None else count))
        else:
            devices = list(torch_device) if isinstance(torch_device, (list, tuple)) else [torch_device]
    except pynvml.NVMLError as err:
        return [], [Unavailable("nvml", "gpu", nvml_error_reason(err))]
    finally:
        pynvml.nvmlShutdown()
    sensors: list[Sensor] = []
    unavailable: list[Unavailable] = []
    for device in devices:
        if device is not None and cuda_devices.cuda_index(device) is None:
            continue  # a CPU device: nothing to measure, nothing missing
        try:
            sensor = NvmlSensor(torch_device=device)
        except SensorUnavailable as err:
            unavailable.append(Unavailable("nvml", "gpu", str(err)))
            continue
        if all(s.uuid != sensor.uuid for s in sensors):  # type: ignore[attr-defined]
            sensors.append(sensor)
    if not sensors and not unavailable and all_visible:
        hidden = " (CUDA_VISIBLE_DEVICES hides them)" if cuda_devices.visible_count() is not None else ""
        unavailable.append(Unavailable("nvml", "gpu", f"NVML: no GPU visible to this process{hidden}"))
    return sensors, unavailable


def gpu_sensors_for_device(torch_device: Any = None) -> list[Sensor]:
    """The usable GPU sensors for ``torch_device`` (empty when none can be measured)."""
    return probe_nvml(torch_device)[0]


nvml_gpu_sensors_for_process = gpu_sensors_for_device
probe = probe_nvml
