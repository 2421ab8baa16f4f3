"""Surge and the GPU allocator: reserve a project's GPUs, give them back.

Each replica of a service with a ``[gaming.gpu]`` table is a *workload* of the GPU
allocator named after its container (``shop_steam``, ``shop_steam_2``):

- the **plan** checks, per environment, that every replica it creates or recreates
  fits now (a trial reservation, rolled back) and fails that environment's plan with
  the allocator's message (which GPUs, held by whom, or why never) otherwise: nothing
  is created;
- the **apply** reserves them all at once before its first change there (replacing what
  the same workloads held, so a recreated container may take its predecessor's GPU),
  journalled so a rollback puts the old reservations back; each container is created
  with :func:`~ghostpanel_kernel.gpus.create_with_gpus`, which binds the reservation
  to it;
- containers an apply or a destroy **removes** release what is bound to them (and what
  their workload holds).

The allocator of an environment is the GPUs of the host its engine runs on: by default
this host's (NVML, or ``GHOSTPANEL_GPU_SIMULATE``) in GhostPanel's store, for an engine
that runs here (a unix socket or a loopback address). An engine on another host, an
agent's included, has that host's GPUs: Surge refuses its GPU services for now rather
than reserve the wrong GPUs (see docs/gpus.md). Store calls run in a
worker thread: SQLite and NVML block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..engine import Environment
from ..engine._endpoint import is_loopback_host
from ._errors import SurgeError

if TYPE_CHECKING:
    from ..gpus import Allocation, GpuAllocator, GpuRequest

__all__ = ["GpuAllocatorFactory", "GpuBroker", "local_allocator", "runs_here"]

GpuAllocatorFactory = Callable[[Environment], "GpuAllocator"]
"""Opens the GPU allocator of an environment's host (the caller closes it)."""


def local_allocator(environment: Environment) -> GpuAllocator:
    """The allocator of this host's GPUs, for an engine that runs here.

    Raises
    ------
    SurgeError
        ``environment`` is an agent: its GPUs are on the agent's host.
    """
    from ..gpus import GpuAllocator, read_inventory
    from ..gpus._agent_client import is_agent

    if is_agent(environment):
        raise SurgeError(f"{environment.name!r} is a GhostPanel agent: Surge does not yet "
                         "reserve GPUs on an agent's host; run the apply on that host "
                         "(ghostpanel surge up) or remove the service's gaming.gpu table")
    if not runs_here(str(environment.client.url)):
        raise SurgeError(f"{environment.name!r} ({environment.client.url}) is an engine on "
                         "another host: its GPUs are not this host's to reserve; reach it "
                         "through a GhostPanel agent there, or run the apply on that host")
    return GpuAllocator(read_inventory())


def runs_here(url: str) -> bool:
    """Whether an engine URL reaches this host: a unix socket, or a loopback address.

    Examples
    --------
    >>> runs_here("unix:///run/podman/podman.sock"), runs_here("tcp://127.0.0.1:2375")
    (True, True)
    >>> runs_here("tcp://gpu-box.lan:2375")
    False
    """
    parsed = urlsplit(url)
    if parsed.scheme in ("unix", "http+unix", "npipe"):
        return True
    return is_loopback_host(parsed.hostname)


class GpuBroker:
    """The allocators one Surge run uses, one per environment, opened when first needed.

    Parameters
    ----------
    factory
        Opens an environment's allocator (default :func:`local_allocator`).
    """

    def __init__(self, factory: GpuAllocatorFactory | None = None) -> None:
        self._factory = factory or local_allocator
        self._open: dict[str, GpuAllocator] = {}

    async def allocator(self, environment: Environment) -> GpuAllocator:
        """The allocator of ``environment``'s host (opened once per run)."""
        if environment.name not in self._open:
            self._open[environment.name] = await asyncio.to_thread(self._factory,
                                                                   environment)
        return self._open[environment.name]

    def close(self) -> None:
        """Close every allocator this broker opened."""
        for allocator in self._open.values():
            allocator.close()
        self._open.clear()

    async def check(self, environment: Environment,
                    wanted: Sequence[tuple[str, GpuRequest]]) -> None:
        """Fail unless every ``(workload, request)`` fits on the host now; changes nothing.

        Raises
        ------
        SurgeError
            The allocator's refusal (who holds what, or why it can never fit).
        """
        if not wanted:
            return
        allocator = await self.allocator(environment)
        await self._reserve(environment, allocator, wanted, keep=False)

    async def reserve(self, environment: Environment,
                      wanted: Sequence[tuple[str, GpuRequest]]
                      ) -> tuple[list[Allocation], list[Allocation]]:
        """Reserve for every ``(workload, request)``, replacing what they held; all or
        nothing. Returns the new reservations and those they replaced."""
        allocator = await self.allocator(environment)
        return await self._reserve(environment, allocator, wanted, keep=True)

    @staticmethod
    async def _reserve(environment: Environment, allocator: GpuAllocator,
                       wanted: Sequence[tuple[str, GpuRequest]], *, keep: bool
                       ) -> tuple[list[Allocation], list[Allocation]]:
        from ..gpus import GpuError

        try:
            return await asyncio.to_thread(allocator.reserve_all, wanted, keep=keep)
        except GpuError as error:
            raise SurgeError(f"GPUs on {environment.name!r}: {error}") from None

    async def undo(self, environment: Environment, made: Sequence[Allocation],
                   replaced: Sequence[Allocation]) -> None:
        """Undo :meth:`reserve`: drop what it made, put back what it replaced."""
        allocator = await self.allocator(environment)
        await asyncio.to_thread(allocator.discard, made)
        await asyncio.to_thread(allocator.restore, replaced)

    async def release(self, environment: Environment,
                      gone: Iterable[tuple[str, str]]) -> None:
        """Release what removed containers held: ``(container id, workload)`` pairs."""
        pairs = list(gone)
        if not pairs:
            return
        allocator = await self.allocator(environment)

        def release() -> None:
            for container_id, workload in pairs:
                allocator.release_container(container_id)
                if workload:
                    allocator.release(workload)

        await asyncio.to_thread(release)
