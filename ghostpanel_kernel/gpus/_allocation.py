"""One held GPU or MIG device, as the allocator reports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._request import Policy

__all__ = ["Allocation", "cdi_name"]


def cdi_name(gpu_index: int, mig_index: int | None = None) -> str:
    """The CDI device name NVIDIA's toolkit (``nvidia-ctk cdi generate``) gives a GPU or
    a MIG device: ``nvidia.com/gpu=0``, ``nvidia.com/gpu=0:1``.

    Examples
    --------
    >>> cdi_name(0), cdi_name(1, 2)
    ('nvidia.com/gpu=0', 'nvidia.com/gpu=1:2')
    """
    return f"nvidia.com/gpu={gpu_index}" + ("" if mig_index is None else f":{mig_index}")


@dataclass(frozen=True)
class Allocation:
    """A unit held by a workload.

    Attributes
    ----------
    workload
        The container or Surge service name it is reserved for.
    unit
        The UUID held: ``GPU-...``, or ``MIG-...`` under the ``mig`` policy.
    slot
        Its tenant number on the unit (0 for exclusive and MIG).
    gpu_index, gpu_uuid, mig_index
        The physical GPU, and the MIG device's index on it.
    policy, tenants
        How it is held, and the most tenants that policy lets on the unit.
    container_id
        The container created with it, once there is one.
    """

    workload: str
    unit: str
    slot: int
    gpu_index: int
    gpu_uuid: str
    mig_index: int | None
    policy: Policy
    tenants: int
    simulated: bool = False
    container_id: str | None = None
    created_at: datetime | None = None

    @property
    def cdi_name(self) -> str:
        """The unit's CDI name (see :func:`cdi_name`)."""
        return cdi_name(self.gpu_index, self.mig_index)

    @property
    def label(self) -> str:
        """``GPU 0`` or ``GPU 0 MIG 1``, for messages."""
        return f"GPU {self.gpu_index}" + ("" if self.mig_index is None
                                         else f" MIG {self.mig_index}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (``--json``)."""
        return {"workload": self.workload, "unit": self.unit, "slot": self.slot,
                "gpu_index": self.gpu_index, "gpu_uuid": self.gpu_uuid,
                "mig_index": self.mig_index, "policy": self.policy,
                "tenants": self.tenants, "cdi_name": self.cdi_name,
                "simulated": self.simulated, "container_id": self.container_id,
                "created_at": None if self.created_at is None
                else self.created_at.isoformat()}
