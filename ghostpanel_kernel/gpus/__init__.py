"""GPUs of a host: the NVML inventory, a simulated NVML, and the allocator.

- :func:`read_inventory` reads every GPU through NVML (``nvidia-ml-py``), or through the
  simulation ``GHOSTPANEL_GPU_SIMULATE`` names; a host without a driver gets a clear
  ``no-driver`` state, never an exception.
- :class:`GpuAllocator` reserves GPUs and MIG devices for workloads under the policies
  exclusive, shared, time-sliced and MIG, kept in GhostPanel's store.
- :func:`engine_spec` / :func:`create_with_gpus` give the reservation to Docker or
  Podman in the form each honours, and refuse where a GPU would be dropped silently.
- :func:`request_from_gpu_table` maps a Boltfile's ``gaming.gpu`` settings onto a
  :class:`GpuRequest`.

See docs/gpus.md.
"""

from __future__ import annotations

from ._allocation import Allocation, cdi_name
from ._allocator import GpuAllocator
from ._create import create_with_gpus
from ._errors import GpuError, GpuRequestError, GpuSpecError, GpuUnavailable, SimulationError
from ._model import GpuDevice, GpuProcess, Inventory, MigInstance
from ._nvbind import request_from_gpu_table, request_from_service
from ._nvml import read_inventory
from ._request import DEFAULT_TENANTS, POLICIES, GpuRequest, Policy
from ._simulate import SIMULATE_VARIABLE, SimulatedNvml, load_simulation
from ._spec import GpuEngineSpec, engine_spec

__all__ = [
    "DEFAULT_TENANTS",
    "POLICIES",
    "SIMULATE_VARIABLE",
    "Allocation",
    "GpuAllocator",
    "GpuDevice",
    "GpuEngineSpec",
    "GpuError",
    "GpuProcess",
    "GpuRequest",
    "GpuRequestError",
    "GpuSpecError",
    "GpuUnavailable",
    "Inventory",
    "MigInstance",
    "Policy",
    "SimulatedNvml",
    "SimulationError",
    "cdi_name",
    "create_with_gpus",
    "engine_spec",
    "load_simulation",
    "read_inventory",
    "request_from_gpu_table",
    "request_from_service",
]
