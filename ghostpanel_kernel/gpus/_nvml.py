"""Reading the inventory through NVML (or a simulation), never failing with a traceback.

:func:`read_inventory` is the one reader: it takes any object with ``pynvml``'s function
names (the real module, :class:`~._simulate.SimulatedNvml`, a test double), so the
error handling that matters on real hosts (no driver, a GPU lost in the middle of the
listing, MIG devices that vanish while they are read) is the code tests run.

``pynvml`` comes from the ``nvidia-ml-py`` package (NVIDIA's own bindings; the
``pynvml`` package on the index is deprecated) and is imported only here, when the
inventory is read: it loads ``libnvidia-ml.so.1`` at ``nvmlInit``, not at import.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ._cgroup import container_of_pid
from ._errors import SimulationError
from ._model import GpuDevice, GpuProcess, Inventory, InventoryState, MigInstance
from ._simulate import load_simulation, simulation_path

__all__ = ["nvml_error_name", "open_nvml", "read_inventory"]

T = TypeVar("T")
_MIB = 1024 * 1024
# NVML's "not available" for a process's memory (NVML_VALUE_NOT_AVAILABLE, 2**64 - 1
# as an unsigned long long): no number at all, not 16 EiB.
_NOT_AVAILABLE = (1 << 64) - 1


class _Lost(Exception):
    """The GPU stopped answering while it was read (NVML_ERROR_GPU_IS_LOST)."""


def nvml_error_name(nvml: Any, error: BaseException) -> str:
    """The ``NVML_ERROR_*`` name of an NVMLError (its code, when unknown)."""
    value = getattr(error, "value", None)
    for name in dir(nvml):
        if name.startswith("NVML_ERROR_") and getattr(nvml, name) == value:
            return name
    return f"NVML error {value}"


def _code(nvml: Any, name: str) -> Any:
    return getattr(nvml, name, object())


def open_nvml() -> tuple[Any, str | None]:
    """The NVML to read: the simulation ``GHOSTPANEL_GPU_SIMULATE`` names, else pynvml.

    Returns
    -------
    (nvml, source)
        ``source`` is the simulation file, or None for the real NVML.

    Raises
    ------
    SimulationError
        The simulation file cannot be used.
    ImportError
        ``nvidia-ml-py`` is not installed.
    """
    path = simulation_path()
    if path is not None:
        return load_simulation(path), str(path)
    # Through importlib: nvidia-ml-py ships no type information, and every use of it
    # goes through this reader's Any-typed calls anyway.
    return importlib.import_module("pynvml"), None


def _host() -> str:
    return socket.gethostname() or "this host"


def read_inventory(nvml: Any | None = None, *, source: str | None = None,
                   host: str | None = None, map_containers: bool = True) -> Inventory:
    """Read every GPU of the host: the inventory, or a state saying why there is none.

    Parameters
    ----------
    nvml
        An object with pynvml's functions; None opens what :func:`open_nvml` says.
    source
        The simulation file ``nvml`` answers from (None: the real NVML). Ignored when
        ``nvml`` is None.
    host
        The host's name for messages (default: this machine's hostname).
    map_containers
        Find the container of each GPU process through ``/proc/PID/cgroup`` (off for
        simulations of another machine's PIDs).

    Returns
    -------
    Inventory
        Never raises for NVML's failures: no library or driver gives ``state
        "no-driver"`` and the message ``"no NVIDIA driver on HOST (...)"``, other
        failures ``"error"`` with NVML's reason; a GPU that fails alone is left out
        with a line in ``problems``.
    """
    host = host or _host()
    if nvml is None:
        try:
            nvml, source = open_nvml()
        except SimulationError as error:
            return Inventory(state="error", host=host, message=str(error), simulated=True,
                             source=str(simulation_path()))
        except ImportError:
            return Inventory(state="no-driver", host=host,
                             message=f"no NVIDIA driver on {host} (the nvidia-ml-py "
                                     "package that reads it is not installed)")
    simulated = source is not None
    map_containers = map_containers and not simulated
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        name = nvml_error_name(nvml, error)
        if name in ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML_ERROR_DRIVER_NOT_LOADED"):
            return Inventory(state="no-driver", host=host, simulated=simulated, source=source,
                             message=f"no NVIDIA driver on {host} ({error})")
        return Inventory(state="error", host=host, simulated=simulated, source=source,
                         message=f"NVML failed to start on {host}: {error} ({name})")
    try:
        return _read(nvml, host, source, map_containers)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # the readings are taken; a failed shutdown changes none of them


def _read(nvml: Any, host: str, source: str | None, map_containers: bool) -> Inventory:
    simulated = source is not None
    problems: list[str] = []
    driver = _optional(nvml, problems, "driver version", nvml.nvmlSystemGetDriverVersion)
    version = _optional(nvml, problems, "NVML version",
                        getattr(nvml, "nvmlSystemGetNVMLVersion", lambda: None))
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as error:
        return Inventory(state="error", host=host, simulated=simulated, source=source,
                         driver_version=_text(driver), message=
                         f"NVML could not count the GPUs on {host}: {error}")
    gpus: list[GpuDevice] = []
    for position in range(count):
        try:
            gpus.append(_device(nvml, position, map_containers))
        except _Lost as lost:
            problems.append(f"GPU {position} {lost}")
        except nvml.NVMLError as error:
            problems.append(f"GPU {position} could not be read: {error} "
                            f"({nvml_error_name(nvml, error)})")
    state: InventoryState = "ok" if gpus else ("no-gpu" if count == 0 else "error")
    message = "" if gpus else (f"no NVIDIA GPU on {host}" if count == 0
                               else f"no GPU of {host} could be read: {'; '.join(problems)}")
    return Inventory(state=state, host=host, gpus=tuple(gpus), message=message,
                     driver_version=_text(driver), nvml_version=_text(version),
                     simulated=simulated, source=source, problems=tuple(problems))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(nvml: Any, problems: list[str], what: str, read: Callable[[], T]) -> T | None:
    """``read()``, or None when the device does not support it (no problem then) or
    fails (a problem line). A lost GPU raises :class:`_Lost`: nothing else of it can
    be read."""
    try:
        return read()
    except nvml.NVMLError as error:
        if getattr(error, "value", None) == _code(nvml, "NVML_ERROR_GPU_IS_LOST"):
            raise _Lost(f"was lost while its {what} was read ({error})") from error
        if getattr(error, "value", None) != _code(nvml, "NVML_ERROR_NOT_SUPPORTED"):
            problems.append(f"{what}: {error}")
        return None


def _required(nvml: Any, what: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except nvml.NVMLError as error:
        if getattr(error, "value", None) == _code(nvml, "NVML_ERROR_GPU_IS_LOST"):
            raise _Lost(f"was lost while its {what} was read ({error})") from error
        raise


def _device(nvml: Any, position: int, map_containers: bool) -> GpuDevice:
    handle = _required(nvml, "handle", lambda: nvml.nvmlDeviceGetHandleByIndex(position))
    uuid = _text(_required(nvml, "UUID", lambda: nvml.nvmlDeviceGetUUID(handle))) or ""
    problems: list[str] = []

    def get(what: str, read: Callable[[], T]) -> T | None:
        return _optional(nvml, problems, what, read)

    index = get("index", lambda: nvml.nvmlDeviceGetIndex(handle))
    name = _text(get("name", lambda: nvml.nvmlDeviceGetName(handle))) or "NVIDIA GPU"
    memory = get("memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    rates = get("utilisation", lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    temperature = get("temperature", lambda: nvml.nvmlDeviceGetTemperature(
        handle, nvml.NVML_TEMPERATURE_GPU))
    power = get("power", lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    limit = get("power limit", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    mode = get("MIG mode", lambda: nvml.nvmlDeviceGetMigMode(handle))
    mig_enabled = bool(mode and mode[0])
    instances = _mig_instances(nvml, handle, problems) if mig_enabled else ()
    return GpuDevice(
        index=position if index is None else int(index), uuid=uuid, name=name,
        memory_total_mib=None if memory is None else int(memory.total) // _MIB,
        memory_used_mib=None if memory is None else int(memory.used) // _MIB,
        utilization_gpu_percent=None if rates is None else int(rates.gpu),
        utilization_memory_percent=None if rates is None else int(rates.memory),
        temperature_c=None if temperature is None else int(temperature),
        power_w=None if power is None else int(power) / 1000,
        power_limit_w=None if limit is None else int(limit) / 1000,
        mig_enabled=mig_enabled, mig_pending=None if not mode else bool(mode[1]),
        mig_instances=instances,
        processes=_processes(nvml, handle, problems, map_containers),
        problems=tuple(problems))


def _mig_instances(nvml: Any, handle: Any, problems: list[str]) -> tuple[MigInstance, ...]:
    count = _optional(nvml, problems, "MIG device count",
                      lambda: nvml.nvmlDeviceGetMaxMigDeviceCount(handle)) or 0
    found: list[MigInstance] = []
    for slot in range(int(count)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            uuid = _text(nvml.nvmlDeviceGetUUID(mig)) or ""
        except nvml.NVMLError as error:
            # NOT_FOUND: an empty slot, or an instance destroyed between the count and
            # this read (MIG changes while we look); neither is a problem to report.
            if getattr(error, "value", None) == _code(nvml, "NVML_ERROR_GPU_IS_LOST"):
                raise _Lost(f"was lost while its MIG devices were read ({error})") from error
            if getattr(error, "value", None) != _code(nvml, "NVML_ERROR_NOT_FOUND"):
                problems.append(f"MIG device {slot}: {error}")
            continue
        memory = _optional(nvml, problems, f"MIG device {slot} memory",
                           partial(nvml.nvmlDeviceGetMemoryInfo, mig))
        found.append(MigInstance(
            index=slot, uuid=uuid,
            name=_text(_optional(nvml, problems, f"MIG device {slot} name",
                                 partial(nvml.nvmlDeviceGetName, mig))) or "",
            memory_total_mib=None if memory is None else int(memory.total) // _MIB,
            memory_used_mib=None if memory is None else int(memory.used) // _MIB,
            gpu_instance_id=_optional(nvml, problems, f"MIG device {slot} GI id",
                                      partial(nvml.nvmlDeviceGetGpuInstanceId, mig)),
            compute_instance_id=_optional(
                nvml, problems, f"MIG device {slot} CI id",
                partial(nvml.nvmlDeviceGetComputeInstanceId, mig))))
    return tuple(found)


def _processes(nvml: Any, handle: Any, problems: list[str],
               map_containers: bool) -> tuple[GpuProcess, ...]:
    seen: dict[int, GpuProcess] = {}
    for what, reader in (("compute processes", "nvmlDeviceGetComputeRunningProcesses"),
                         ("graphics processes", "nvmlDeviceGetGraphicsRunningProcesses")):
        function = getattr(nvml, reader, None)
        if function is None:
            continue
        for entry in _optional(nvml, problems, what, partial(function, handle)) or []:
            pid = int(entry.pid)
            used = getattr(entry, "usedGpuMemory", None)
            memory = None if used is None or used >= _NOT_AVAILABLE else int(used) // _MIB
            # A simulation may name the container itself (its PIDs are not this host's).
            container = getattr(entry, "container_id", None)
            if container is None and map_containers:
                container = container_of_pid(pid)
            if pid not in seen:
                seen[pid] = GpuProcess(pid=pid, used_memory_mib=memory,
                                       container_id=container)
    return tuple(seen.values())
