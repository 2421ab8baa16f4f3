"""The errors of the GPU kernel: one root, split by what the caller can do about it."""

from __future__ import annotations

from .._exceptions import GhostPanelError

__all__ = ["GpuError", "GpuRequestError", "GpuSpecError", "GpuUnavailable", "SimulationError"]


class GpuError(GhostPanelError):
    """Root of the GPU errors (a :class:`GhostPanelError`: the CLI exits 1 with it)."""


class SimulationError(GpuError):
    """``GHOSTPANEL_GPU_SIMULATE`` names a file that is missing or not a valid simulation."""


class GpuRequestError(GpuError, ValueError):
    """An allocation request that can never be met as written: a GPU that does not exist,
    a policy the GPU cannot take (MIG on a GPU without MIG mode), a bad Boltfile value."""


class GpuUnavailable(GpuError):
    """No GPU (or MIG instance) is free for the request now; the message names who holds
    what, so the operator knows whom to release.

    Attributes
    ----------
    holders
        ``{unit: [workload, ...]}`` of the units the request could have used.
    """

    def __init__(self, message: str, *, holders: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.holders = dict(holders or {})


class GpuSpecError(GpuError):
    """The engine cannot be given the GPUs in a way GhostPanel can check (an unknown
    engine, or one that would start the container silently without them)."""
