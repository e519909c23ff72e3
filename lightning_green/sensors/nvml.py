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

Checks (see :mod:`lightning_green.sensors.gpu_checks`), reported by
:meth:`NvmlSensor.report_extra` and, when they find a problem, in ``notes``:

* Counter vs power: with an energy counter, each counter read also reads the power
  (instant field 186, else the 1 s average; ``power_source`` says which) and integrates it by
  trapezoid. A disagreement above 5 % over a run of at least 5 s is noted. Agreement shows
  that the board's sensor agrees with itself, not that it is accurate (Yang et al., SC24).
* Update period: :meth:`NvmlSensor.open` polls the counter (or the instant power) for up to
  ``update_probe_s`` (0.3 s) and takes the median time between changes as
  ``update_period_s``; the 1 s average counts as 1 s.
* Other processes: ``nvmlDeviceGetComputeRunningProcesses`` at open and every 30 s; another
  process on this GPU is noted, since the GPU's energy includes its work.
* ``device_id`` is the physical GPU's UUID (the parent's for a MIG instance), so that ranks
  measuring one GPU can be counted once.

Uncertainty: +-5 % or +-5 W, whichever is larger (NVIDIA: ``nvmlDeviceGetPowerUsage``
is accurate to +-5 % of the draw, nvidia-smi's ``power.draw`` to +-5 W). Short, pulsed loads
can be off by more (Yang et al., SC24: the sensor samples ~25 % of the time on A100/H100).

NVML is initialised per sensor (``nvmlInit`` in probe and :meth:`open`, ``nvmlShutdown`` in
:meth:`close`); NVML reference-counts these calls within a process.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from lightning_green.sensors import cuda_devices
from lightning_green.sensors.base import Sensor, SensorUnavailable, Unavailable
from lightning_green.sensors.nvml_calls import (
    METHOD_COUNTER,  # noqa: F401  (re-exported: callers import the method names from here)
    METHOD_INSTANT,
    METHOD_USAGE,
    POWER_AVERAGE,
    POWER_INSTANT,
    device_info,
    instant_power_mw,
    mixed_models,
    nvml_error_reason,
    probe_method,
    probe_power_source,
    read_power,
    resolve,
    uuid_str,
)
from lightning_green.sensors.gpu_checks import CrossCheck, ProcessWatch, probe_update_period
from lightning_green.validation import check_number

AVERAGE_WINDOW_S = 1.0
UPDATE_PROBE_S = 0.3  # read at open(); tests set it to 0 while a fake NVML is patched in
PROCESS_CHECK_S = 30.0
UNCERTAINTY = (
    0.05,
    5.0,
    "measured: +-5 % or +-5 W, whichever is larger (NVIDIA NVML reference, nvmlDeviceGetPowerUsage: "
    "+-5 %; nvidia-smi power.draw: +-5 W); pulsed loads can be off by more (Yang et al., SC24, "
    "arXiv:2312.02741: A100/H100 power sampled ~25 % of the time)",
)


def _import_pynvml() -> Any:
    try:
        import pynvml
    except Exception as err:  # ImportError, or a broken install raising anything else
        raise SensorUnavailable(f"pynvml not importable (pip install nvidia-ml-py): {err}") from err
    return pynvml


class NvmlSensor(Sensor):
    """One NVIDIA GPU: energy counter where supported, else sampled power.

    Args:
        device_index: NVML index of the GPU (as ``nvidia-smi`` numbers it). Give this or
            ``torch_device``, not both.
        torch_device: The torch device this process trains on (``"cuda:1"``,
            ``torch.device``); mapped through torch's UUID for it once CUDA is initialised,
            else through ``CUDA_VISIBLE_DEVICES``. Default: the current CUDA device.
        cross_check: Read the power next to each counter read and integrate it (one more
            NVML call per read), for :meth:`report_extra` and the disagreement note.
        update_probe_s: Seconds :meth:`open` may spend measuring how often the counter
            changes; 0 skips it. Default ``UPDATE_PROBE_S`` (0.3). Ignored when
            ``update_period_s`` is given.
        process_check_s: Seconds between checks for other processes on the GPU.
        clock, sleep: Monotonic clock and sleep, in seconds (tests script them).
        **kwargs: ``name``, ``scope``, ``update_period_s``, ... passed to :class:`Sensor`.

    Raises:
        SensorUnavailable: when pynvml, the driver or the GPU is missing, or the GPU reports
            neither energy nor power. The message is the reason.

    The meter must use :attr:`kind`: ``"energy"`` -> :meth:`energy_j`, ``"power"`` ->
    :meth:`power_w` (which works in both modes). ``describe()`` adds ``device``,
    ``gpu_name``, ``uuid``, ``nvml_index``, ``power_source`` and, for a MIG device,
    ``mig_uuid``; ``device_id`` is ``uuid`` (the physical GPU).
    """

    component = "gpu"
    measured = True
    uncertainty_rel, uncertainty_w, uncertainty_source = UNCERTAINTY

    def __init__(
        self,
        device_index: int | None = None,
        *,
        torch_device: Any = None,
        cross_check: bool = True,
        update_probe_s: float | None = None,
        process_check_s: float = PROCESS_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        if device_index is not None and torch_device is not None:
            raise ValueError(
                f"give device_index or torch_device, not both; got device_index={device_index!r}, "
                f"torch_device={torch_device!r}"
            )
        if device_index is not None and (isinstance(device_index, bool) or not isinstance(device_index, int)
                                         or device_index < 0):
            raise ValueError(f"device_index must be an int >= 0 or None, got {device_index!r}")
        check_number("update_probe_s", update_probe_s, minimum=0.0, maximum=10.0, optional=True)
        check_number("process_check_s", process_check_s, exclusive_minimum=0.0)
        self._handle: Any = None
        self._mig_uuid: str | None = None
        self._targets = [device_index] if device_index is not None else cuda_devices.nvml_targets(torch_device)
        self._index_is_cuda_order = device_index is None
        self._auto_method = "method" not in kwargs
        self._period_given = kwargs.get("update_period_s") is not None
        self._cross_check_wanted = bool(cross_check)
        self._update_probe_s = update_probe_s
        self._clock, self._sleep = clock, sleep
        self._checks_pid: int | None = None  # the process whose open() ran the checks
        self.power_source: str | None = None
        self.update_period_source = "given" if self._period_given else "not measured"
        self.crosscheck: CrossCheck | None = None
        self.processes = ProcessWatch(float(process_check_s))
        pynvml = self._init()
        try:
            handle = self._resolve_handle(pynvml)
            self.uuid = uuid_str(pynvml.nvmlDeviceGetUUID(handle))
            self.gpu_name = uuid_str(pynvml.nvmlDeviceGetName(handle))
            self.nvml_index = int(pynvml.nvmlDeviceGetIndex(handle))
            self._kind, self._probed = probe_method(pynvml, handle)
        except pynvml.NVMLError as err:
            raise SensorUnavailable(nvml_error_reason(err)) from err
        finally:
            pynvml.nvmlShutdown()
        kwargs.setdefault("name", f"nvml:{self.nvml_index}")
        kwargs.setdefault("method", self._method_text(self._probed))
        kwargs.setdefault("device_id", self.uuid)
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
                handle, self._mig_uuid = resolve(pynvml, target)
            except SensorUnavailable as err:
                errors.append(err)
                continue
            if isinstance(target, int) and self._index_is_cuda_order:
                self._warn_device_order(pynvml, target)
            return handle
        raise errors[-1]

    def _warn_device_order(self, pynvml: Any, index: int) -> None:
        """An index from CUDA's numbering used as NVML's: right only in PCI bus order."""
        order = os.environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
        if order == "PCI_BUS_ID":
            return
        models = mixed_models(pynvml)
        if not models:
            return
        message = (
            f"NVML: cuda device index {index} was mapped to NVML GPU {index} without torch's UUID, "
            f"but CUDA_DEVICE_ORDER={order} on a host with several GPU models ({', '.join(models)}): CUDA "
            "may number them differently from NVML. Set CUDA_DEVICE_ORDER=PCI_BUS_ID, or make the sensor "
            "after torch has initialised CUDA"
        )
        self.notes = (*self.notes, message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _method_text(self, method: str) -> str:
        return f"{method} (whole GPU: MIG instance {self._mig_uuid} shares it)" if self._mig_uuid else method

    @property
    def kind(self) -> str:
        """``"energy"`` when the GPU has an energy counter, else ``"power"``."""
        return self._kind

    def open(self) -> None:
        """Initialise NVML in this process, find the GPU again by its UUID, and run the checks
        that need it: the power reading to cross-check with, the update period, other processes."""
        if self._handle is not None:
            return
        pynvml = self._init()
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
            self._kind, self._probed = probe_method(pynvml, handle)
            self.power_source = (POWER_AVERAGE if self._probed == METHOD_USAGE else
                                 POWER_INSTANT if self._probed == METHOD_INSTANT else
                                 probe_power_source(pynvml, handle))
        except BaseException as err:
            pynvml.nvmlShutdown()
            if isinstance(err, pynvml.NVMLError):
                raise SensorUnavailable(nvml_error_reason(err)) from err
            raise
        self._handle = handle
        if self._auto_method:
            self.method = self._method_text(self._probed)
        if self._checks_pid == os.getpid():
            return  # reopened in the same process: the checks go on
        self._checks_pid = os.getpid()  # first open here (a sensor pickled to a rank starts afresh)
        self.crosscheck = None
        self.processes = ProcessWatch(self.processes.interval_s)
        if self._kind == "energy" and self._cross_check_wanted and self.power_source is not None:
            self.crosscheck = CrossCheck(self.power_source)
        self._measure_update_period(pynvml, handle)
        self._check_processes(pynvml, handle, self._clock())

    def _measure_update_period(self, pynvml: Any, handle: Any) -> None:
        if self._period_given:
            return
        if self._probed == METHOD_USAGE:
            self.update_period_s = AVERAGE_WINDOW_S
            self.update_period_source = "nvmlDeviceGetPowerUsage averages over 1 s (Ampere and newer)"
            return
        window_s = UPDATE_PROBE_S if self._update_probe_s is None else self._update_probe_s
        if self._kind == "energy":
            def read() -> float:
                return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        else:
            def read() -> float:
                return instant_power_mw(pynvml, handle)
        try:
            period_s, changes = probe_update_period(read, self._clock, self._sleep, window_s)
        except (pynvml.NVMLError, AttributeError) as err:
            self.update_period_source = f"probe failed: {type(err).__name__}"
            return
        if period_s is not None and period_s > 0:
            self.update_period_s = period_s
            self.update_period_source = f"probed at open: median of {changes - 1} gaps between changes"
        elif window_s > 0:
            self.update_period_source = f"probe saw {changes} change(s) in {window_s:g} s: unknown"

    def _check_processes(self, pynvml: Any, handle: Any, now_s: float) -> None:
        if not self.processes.due(now_s):
            return
        try:
            listed = [int(p.pid) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]
        except (pynvml.NVMLError, AttributeError) as err:
            self.processes.failed(now_s, nvml_error_reason(err))
            return
        note = self.processes.record(now_s, listed, own_pid=os.getpid(),
                                     own_context=cuda_devices.cuda_initialized())
        if note:
            self.notes = (*self.notes, f"{self.name}: {note}")

    def close(self) -> None:
        self._finish_checks()
        if self._handle is None:
            return
        self._handle = None
        try:
            _import_pynvml().nvmlShutdown()
        except Exception:  # close must not raise
            pass

    def _finish_checks(self) -> None:
        if self.crosscheck is None:
            return
        note = self.crosscheck.note(self.name, self.update_period_s)
        if note and note not in self.notes:
            self.notes = (*self.notes, note)

    def report_extra(self) -> dict[str, Any]:
        """Counter vs integrated power (``counter_j``, ``power_integral_j``,
        ``disagreement_rel``, ``power_source``, ...), the update period and where it came
        from, and other processes seen on the GPU."""
        self._finish_checks()
        extra: dict[str, Any] = {"power_source": self.power_source, "update_period_s": self.update_period_s,
                                 "update_period_source": self.update_period_source}
        if self.crosscheck is not None:
            extra.update(self.crosscheck.result(self.update_period_s))
        else:
            extra.update(counter_j=None, power_integral_j=None, disagreement_rel=None)
        extra.update(self.processes.result())
        return extra

    def _open_handle(self) -> tuple[Any, Any]:
        if self._handle is None:
            self.open()
        return _import_pynvml(), self._handle

    def energy_j(self) -> float:
        """Joules since the driver loaded (the NVML counter, mJ / 1000)."""
        pynvml, handle = self._open_handle()
        began = self._clock()
        try:
            counter_j = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
        except pynvml.NVMLError as err:
            raise RuntimeError(f"{self.name}: energy counter read failed: {nvml_error_reason(err)}") from err
        if self.crosscheck is not None:
            try:
                power_w: float | None = read_power(pynvml, handle, self.power_source)[0]
            except (pynvml.NVMLError, AttributeError):
                power_w = None
            self.crosscheck.add(0.5 * (began + self._clock()), counter_j, power_w)
        self._check_processes(pynvml, handle, began)
        return counter_j

    def read_power(self) -> tuple[float, str]:
        """``(watts now, source)``: ``"instant field 186"`` or ``"1 s average"``."""
        pynvml, handle = self._open_handle()
        try:
            forced = {METHOD_INSTANT: POWER_INSTANT, METHOD_USAGE: POWER_AVERAGE}.get(self._probed)
            reading = read_power(pynvml, handle, forced)  # the probed method failing raises
        except pynvml.NVMLError as err:
            raise RuntimeError(f"{self.name}: power read failed: {nvml_error_reason(err)}") from err
        if self._kind == "power":
            self._check_processes(pynvml, handle, self._clock())
        return reading

    def power_w(self) -> float:
        """Watts now: instant power, else ``nvmlDeviceGetPowerUsage``."""
        return self.read_power()[0]

    def device_info(self) -> dict[str, Any]:
        """Versions and settings to print next to GPU figures: driver, NVML, CUDA driver and
        nvidia-ml-py versions, UUID, PCI bus id, power limit, persistence and MIG mode.
        A field NVML cannot give holds ``"unavailable: <reason>"``."""
        pynvml = self._init()
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
            info = {"gpu_name": self.gpu_name, "uuid": self.uuid, "mig_uuid": self._mig_uuid,
                    "nvml_index": self.nvml_index}
            info.update(device_info(pynvml, handle))
            info.update(method=self.method, power_source=self.power_source)
            return info
        except pynvml.NVMLError as err:
            raise SensorUnavailable(nvml_error_reason(err)) from err
        finally:
            pynvml.nvmlShutdown()

    def describe(self) -> dict[str, Any]:
        record = super().describe()
        record.update(device=f"{self.gpu_name} ({self.uuid})", gpu_name=self.gpu_name, uuid=self.uuid,
                      nvml_index=self.nvml_index, power_source=self.power_source)
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
