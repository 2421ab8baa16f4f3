"""What the inventory reports: GPUs, their MIG instances and the processes on them.

Plain frozen dataclasses with ``to_dict`` for ``--json`` and the agent's answers; they
hold no NVML handles, so an :class:`Inventory` outlives the NVML session that read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["GpuDevice", "GpuProcess", "Inventory", "InventoryState", "MigInstance"]

#: ``ok``: GPUs were read; ``no-driver``: no NVIDIA driver/NVML library on the host;
#: ``no-gpu``: the driver answers but sees no GPU; ``error``: NVML failed otherwise.
InventoryState = Literal["ok", "no-driver", "no-gpu", "error"]


@dataclass(frozen=True)
class GpuProcess:
    """A process using a GPU, and the container it runs in (None: on the host).

    Attributes
    ----------
    pid
        Its PID as the host sees it.
    used_memory_mib
        GPU memory it holds, or None where NVML does not say (Windows WDDM, MIG).
    container_id
        The 64-hex id of its container, found through ``/proc/PID/cgroup``.
    """

    pid: int
    used_memory_mib: int | None = None
    container_id: str | None = None


@dataclass(frozen=True)
class MigInstance:
    """One MIG device of a GPU in MIG mode.

    Attributes
    ----------
    index
        Its index among the GPU's MIG devices: the ``M`` of the CDI name
        ``nvidia.com/gpu=G:M``.
    uuid
        ``MIG-...``.
    gpu_instance_id, compute_instance_id
        NVML's GI and CI ids (``nvidia-smi -L`` shows them).
    """

    index: int
    uuid: str
    name: str = ""
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class GpuDevice:
    """One physical GPU, as NVML (or the simulation) reported it.

    Values NVML could not give (``Not Supported`` on a consumer card, a reading that
    failed) are None; ``problems`` says which and why, one line each.
    """

    index: int
    uuid: str
    name: str
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    utilization_gpu_percent: int | None = None
    utilization_memory_percent: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    mig_enabled: bool = False
    mig_pending: bool | None = None
    mig_instances: tuple[MigInstance, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The device as JSON-ready data."""
        data = asdict(self)
        data["mig_instances"] = [asdict(m) for m in self.mig_instances]
        data["processes"] = [asdict(p) for p in self.processes]
        data["problems"] = list(self.problems)
        return data


@dataclass(frozen=True)
class Inventory:
    """The GPUs of one host, or why there are none.

    Attributes
    ----------
    state
        See :data:`InventoryState`.
    message
        One line for people: ``"no NVIDIA driver on HOST (...)"`` and the like; empty
        when ``state`` is ``ok``.
    host
        The host's name, as the message uses it.
    simulated
        The answers came from ``GHOSTPANEL_GPU_SIMULATE``, not from a driver.
    source
        The simulation file, when simulated.
    """

    state: InventoryState
    host: str
    gpus: tuple[GpuDevice, ...] = ()
    message: str = ""
    driver_version: str | None = None
    nvml_version: str | None = None
    simulated: bool = False
    source: str | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """``"simulated"`` or ``"nvml"``: where the numbers come from."""
        return "simulated" if self.simulated else "nvml"

    def find(self, key: str | int) -> GpuDevice | None:
        """The GPU whose index (``0``, ``"0"``) or UUID (``GPU-...``, any case) is ``key``."""
        text = str(key).strip()
        for gpu in self.gpus:
            if text == str(gpu.index) or text.lower() == gpu.uuid.lower():
                return gpu
        return None

    def to_dict(self) -> dict[str, Any]:
        """The inventory as JSON-ready data (``ghostpanel gpu ls --json``)."""
        return {"state": self.state, "host": self.host, "message": self.message,
                "simulated": self.simulated, "source": self.source, "label": self.label,
                "driver_version": self.driver_version, "nvml_version": self.nvml_version,
                "problems": list(self.problems),
                "gpus": [gpu.to_dict() for gpu in self.gpus]}
