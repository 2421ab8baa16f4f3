"""What a workload asks for: how many GPUs or which, under which policy.

The policies, as an operator of game servers and ML jobs uses them:

``exclusive``
    The GPU is the workload's alone (a game server that needs every frame).
``shared``
    Up to N workloads use the GPU at once (N = ``tenants``, default 4): inference
    services that each need a slice of its memory.
``time-sliced``
    Up to N workloads take turns on the GPU (default 8): the driver's time-slicing,
    for development jobs and notebooks. Shared and time-sliced tenants never mix on one
    GPU: the first holder's policy is the GPU's until it is free again.
``mig``
    One MIG device per workload, on a GPU in MIG mode: isolated memory and compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ._errors import GpuRequestError

__all__ = ["DEFAULT_TENANTS", "POLICIES", "GpuRequest", "Policy"]

Policy = Literal["exclusive", "shared", "time-sliced", "mig"]
POLICIES: Final[tuple[Policy, ...]] = ("exclusive", "shared", "time-sliced", "mig")
#: Most tenants on one unit when the request does not say.
DEFAULT_TENANTS: Final[dict[Policy, int]] = {"exclusive": 1, "shared": 4, "time-sliced": 8,
                                             "mig": 1}


@dataclass(frozen=True)
class GpuRequest:
    """An allocation request.

    Parameters
    ----------
    count
        How many GPUs (MIG devices under ``mig``); None: one per entry of ``gpus``, or
        1 when ``gpus`` is empty.
    gpus
        Which GPUs: indices (``"0"``) or UUIDs (``GPU-...``; ``MIG-...`` under ``mig``).
        Under ``mig`` a GPU's index or UUID means "a free MIG device of that GPU".
    policy
        One of :data:`POLICIES`.
    tenants
        Most tenants of a shared or time-sliced GPU (default :data:`DEFAULT_TENANTS`);
        fixed at 1 for exclusive and MIG.
    all_gpus
        Every GPU of the host (Boltfile ``gpu:all``).

    Raises
    ------
    GpuRequestError
        A policy that does not exist, a count below 1, ``count`` with ``gpus`` that
        disagree, or tenants below 1.
    """

    count: int | None = None
    gpus: tuple[str, ...] = ()
    policy: Policy = "exclusive"
    tenants: int | None = None
    all_gpus: bool = False

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise GpuRequestError(f"unknown GPU policy {self.policy!r}: use one of "
                                  f"{', '.join(POLICIES)}")
        if self.count is not None and self.count < 1:
            raise GpuRequestError(f"a GPU count must be at least 1, not {self.count}")
        if self.gpus and self.count is not None and self.count != len(self.gpus):
            raise GpuRequestError("give either a count or the GPUs to use, not both")
        if self.all_gpus and (self.gpus or self.count is not None):
            raise GpuRequestError("all GPUs was asked for together with a count or GPUs")
        if self.tenants is not None:
            if self.tenants < 1:
                raise GpuRequestError(f"tenants must be at least 1, not {self.tenants}")
            if self.policy in ("exclusive", "mig") and self.tenants != 1:
                raise GpuRequestError(f"a {self.policy} GPU has exactly one tenant")

    @classmethod
    def parse_policy(cls, text: str) -> Policy:
        """``text`` as a :data:`Policy` (``time_sliced`` and any case accepted)."""
        value = text.strip().lower().replace("_", "-")
        if value not in POLICIES:
            raise GpuRequestError(f"unknown GPU policy {text!r}: use one of "
                                  f"{', '.join(POLICIES)}")
        return value

    @property
    def tenant_limit(self) -> int:
        """The tenants this request allows on each unit it gets."""
        return self.tenants if self.tenants is not None else DEFAULT_TENANTS[self.policy]

    @property
    def needed(self) -> int | None:
        """How many units; None for all of them."""
        if self.all_gpus:
            return None
        return len(self.gpus) if self.gpus else (self.count or 1)
