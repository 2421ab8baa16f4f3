"""A simulated NVML, read from the JSON file that ``GHOSTPANEL_GPU_SIMULATE`` names.

:class:`SimulatedNvml` answers the same function names as ``pynvml`` (nvidia-ml-py),
so the one inventory reader serves both, and everything downstream (allocator, CLI)
is the code a real GPU runs. Values a file leaves out answer as a real card does for
a reading it lacks: ``NVMLError`` with ``NVML_ERROR_NOT_SUPPORTED``. The file's format
is documented in docs/gpus.md.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ._errors import SimulationError

__all__ = ["SIMULATE_VARIABLE", "SimulatedNvml", "load_simulation", "simulation_path"]

#: The variable that switches the whole GPU stack onto a simulation file.
SIMULATE_VARIABLE = "GHOSTPANEL_GPU_SIMULATE"

_MIB = 1024 * 1024


def simulation_path() -> Path | None:
    """The file ``GHOSTPANEL_GPU_SIMULATE`` names, or None when it is unset or empty."""
    value = os.environ.get(SIMULATE_VARIABLE, "").strip()
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class _Handle:
    """A device handle: a GPU (``mig`` None) or one MIG device of it."""

    gpu: int
    mig: int | None = None


def _pynvml() -> Any:
    # nvidia-ml-py: importing it does not load the driver library. Through importlib
    # since it ships no type information.
    return importlib.import_module("pynvml")


class SimulatedNvml:
    """NVML's functions, answered from a simulation (see :func:`load_simulation`).

    Parameters
    ----------
    data
        The decoded simulation: ``{"gpus": [...]}``.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._gpus: list[Mapping[str, Any]] = list(data.get("gpus", []))
        self._initialised = 0
        # The names a reader of pynvml uses besides its functions: the error class, the
        # error codes (NVML_ERROR_*) and the temperature sensor.
        pynvml = _pynvml()
        self.NVMLError = pynvml.NVMLError
        for name in dir(pynvml):
            if name.startswith("NVML_ERROR_") or name == "NVML_TEMPERATURE_GPU":
                setattr(self, name, getattr(pynvml, name))

    # -- helpers -------------------------------------------------------------------

    def _fail(self, code_name: str) -> Exception:
        pynvml = _pynvml()
        error: Exception = pynvml.NVMLError(getattr(pynvml, code_name))
        return error

    def _check(self) -> None:
        if self._initialised <= 0:
            raise self._fail("NVML_ERROR_UNINITIALIZED")

    def _gpu(self, handle: _Handle) -> Mapping[str, Any]:
        self._check()
        if not isinstance(handle, _Handle) or not 0 <= handle.gpu < len(self._gpus):
            raise self._fail("NVML_ERROR_INVALID_ARGUMENT")
        return self._gpus[handle.gpu]

    def _mig(self, handle: _Handle) -> Mapping[str, Any]:
        gpu = self._gpu(handle)
        instances = gpu.get("mig_instances") or []
        if handle.mig is None or not 0 <= handle.mig < len(instances):
            raise self._fail("NVML_ERROR_INVALID_ARGUMENT")
        instance: Mapping[str, Any] = instances[handle.mig]
        return instance

    def _entry(self, handle: _Handle) -> Mapping[str, Any]:
        return self._gpu(handle) if handle.mig is None else self._mig(handle)

    def _value(self, handle: _Handle, key: str) -> Any:
        entry = self._entry(handle)
        if entry.get(key) is None:
            raise self._fail("NVML_ERROR_NOT_SUPPORTED")
        return entry[key]

    # -- NVML's functions ------------------------------------------------------------

    def nvmlInit(self) -> None:
        """Start a session (counted, as NVML counts them)."""
        self._initialised += 1

    def nvmlShutdown(self) -> None:
        """End a session."""
        self._check()
        self._initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        """The simulated driver version (``"simulated"`` unless the file says)."""
        self._check()
        return str(self._data.get("driver_version", "simulated"))

    def nvmlSystemGetNVMLVersion(self) -> str:
        """The simulated NVML version."""
        self._check()
        return str(self._data.get("nvml_version", "simulated"))

    def nvmlDeviceGetCount(self) -> int:
        """How many GPUs the file lists."""
        self._check()
        return len(self._gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        """The handle of GPU ``index`` (position in the file)."""
        self._check()
        if not 0 <= index < len(self._gpus):
            raise self._fail("NVML_ERROR_INVALID_ARGUMENT")
        return _Handle(index)

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        """The GPU's index: the file's ``index``, else its position."""
        return int(self._gpu(handle).get("index", handle.gpu))

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        """The name of a GPU or a MIG device."""
        entry = self._entry(handle)
        if handle.mig is not None and "name" not in entry:
            return f"MIG {entry.get('profile', 'device')}"
        return str(entry.get("name", "NVIDIA GPU"))

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        """The UUID of a GPU or a MIG device."""
        return str(self._value(handle, "uuid"))

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> SimpleNamespace:
        """``total``/``used``/``free`` in bytes, as pynvml's ``c_nvmlMemory_t``."""
        total = int(self._value(handle, "memory_total_mib")) * _MIB
        used = int(self._entry(handle).get("memory_used_mib", 0)) * _MIB
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        """``gpu``/``memory`` percentages."""
        return SimpleNamespace(gpu=int(self._value(handle, "utilization_gpu_percent")),
                               memory=int(self._entry(handle).get(
                                   "utilization_memory_percent", 0)))

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        """The core temperature in °C."""
        return int(self._value(handle, "temperature_c"))

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        """Power draw in milliwatts (NVML's unit)."""
        return round(float(self._value(handle, "power_w")) * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        """Power limit in milliwatts."""
        return round(float(self._value(handle, "power_limit_w")) * 1000)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle
                                             ) -> list[SimpleNamespace]:
        """The processes the file lists on the GPU: ``pid``, ``usedGpuMemory`` (bytes)."""
        processes: Sequence[Mapping[str, Any]] = self._gpu(handle).get("processes") or []
        return [SimpleNamespace(
            pid=int(p["pid"]), container_id=p.get("container_id"),
            usedGpuMemory=(None if p.get("used_memory_mib") is None
                           else int(p["used_memory_mib"]) * _MIB)) for p in processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle
                                              ) -> list[SimpleNamespace]:
        """No graphics processes: the file lists them all as compute processes."""
        self._gpu(handle)
        return []

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        """``[current, pending]``: 1 when the file's ``mig`` is true."""
        gpu = self._gpu(handle)
        current = int(bool(gpu.get("mig", False)))
        return [current, int(bool(gpu.get("mig_pending", current)))]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        """How many MIG devices the file lists for the GPU."""
        return len(self._gpu(handle).get("mig_instances") or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle,
                                            index: int) -> _Handle:
        """The handle of the GPU's MIG device ``index``."""
        instances = self._gpu(handle).get("mig_instances") or []
        if not 0 <= index < len(instances):
            raise self._fail("NVML_ERROR_NOT_FOUND")
        return _Handle(handle.gpu, index)

    def nvmlDeviceGetGpuInstanceId(self, handle: _Handle) -> int:
        """The MIG device's GPU instance id."""
        return int(self._value(handle, "gpu_instance_id"))

    def nvmlDeviceGetComputeInstanceId(self, handle: _Handle) -> int:
        """The MIG device's compute instance id."""
        return int(self._mig(handle).get("compute_instance_id", 0))


def _check_simulation(data: Any, path: Path) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or not isinstance(data.get("gpus"), list):
        raise SimulationError(f'{path}: a GPU simulation is a JSON object with a "gpus" list')
    seen: set[str] = set()
    for position, gpu in enumerate(data["gpus"]):
        where = f"{path}: gpus[{position}]"
        if not isinstance(gpu, Mapping):
            raise SimulationError(f"{where} is not an object")
        for key in ("uuid", "name", "memory_total_mib"):
            if key not in gpu:
                raise SimulationError(f"{where} has no {key!r}")
        instances = gpu.get("mig_instances") or []
        if instances and not gpu.get("mig"):
            raise SimulationError(f'{where} lists mig_instances but "mig" is not true')
        for uuid in [gpu["uuid"], *(m.get("uuid") for m in instances)]:
            if not isinstance(uuid, str) or uuid in seen:
                raise SimulationError(f"{where}: UUID {uuid!r} is missing or repeated")
            seen.add(uuid)
    return data


def load_simulation(path: str | os.PathLike[str]) -> SimulatedNvml:
    """Read a simulation file.

    Raises
    ------
    SimulationError
        The file cannot be read, is not JSON, or lacks what every GPU needs (``uuid``,
        ``name``, ``memory_total_mib``); the message names the file and the entry.
    """
    location = Path(path)
    try:
        data = json.loads(location.read_text(encoding="utf-8"))
    except OSError as error:
        raise SimulationError(f"cannot read the GPU simulation {location} "
                              f"({SIMULATE_VARIABLE}): {error.strerror or error}") from error
    except ValueError as error:
        raise SimulationError(f"{location} ({SIMULATE_VARIABLE}) is not JSON: {error}"
                              ) from error
    return SimulatedNvml(_check_simulation(data, location))
