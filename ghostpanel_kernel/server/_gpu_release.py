"""The agent's GPU releaser: a removed container gives its GPUs back by itself.

A reservation made with ``POST /api/v1/gpus/allocate`` (or ``ghostpanel gpu allocate``
on the agent's host) is bound to the container created with it: by
:func:`~ghostpanel_kernel.gpus.create_with_gpus`, or here, when a container is created
under the workload's name (its ``create`` event; the ``nvbind`` route counts such a
container as the holder too). The releaser follows the engine's container events
through the agent's one events stream (the :class:`~._event_hub.EventHub`, which
reconnects and resumes after an engine restart) and, for each ``destroy`` (Docker) or
``remove`` (Podman) event, releases what is bound to that container. It reconciles
with the engine (``gpus reconcile``: reservations bound to containers that no longer
exist are released) when it starts and each time the engine comes back after an
outage, so a container removed while nobody watched (an engine that was down, a Docker
restart that lost its events) is released too.

It costs nothing on an agent that never holds a GPU: it starts

- when the agent starts, only if the store already holds reservations, checked with
  the standard library's ``sqlite3`` on the default SQLite store (the GPU kernel and
  SQLAlchemy stay unimported on an idle agent); on another database (PostgreSQL) the
  check goes through the kernel;
- on the first reservation made through the API, or the first ``GET /api/v1/gpus``
  that shows one (made by the CLI on the agent's host meanwhile).

See docs/gpus.md ("Automatic release").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import GhostPanelError
from ._event_hub import CLOSE_GOING_AWAY
from ._event_shape import EventFilter
from ._routes_events import hub_of

if TYPE_CHECKING:
    from ..gpus import GpuAllocator

__all__ = ["GpuReleaser", "has_reservations"]

_log = logging.getLogger("ghostpanel.agent.gpus")

#: Container actions that mean "gone": Docker says destroy, Podman remove.
REMOVED_ACTIONS: Final = frozenset({"destroy", "remove"})
#: The label create_with_gpus puts on a container: the workload it was created for
#: (gpus._spec.LABEL_GPU_WORKLOAD; not imported, so that an idle agent loads no GPU code).
WORKLOAD_LABEL: Final = "io.ghostpanel.gpu.workload"
#: Seconds the first reconcile waits for the engine's events stream to open, so that a
#: container created meanwhile is either in its list or in the stream.
_CONNECT_WAIT: Final = 5.0
#: Events the releaser may have waiting before the hub drops it (it then resubscribes
#: and reconciles, so nothing is lost, only delayed).
_QUEUE_LIMIT: Final = 10_000
#: Seconds before a dropped subscription is taken again.
_RESUBSCRIBE_DELAY: Final = 1.0
_SQLITE_PREFIX: Final = "sqlite:///"


def has_reservations(store_url: str) -> bool:
    """Whether the store at ``store_url`` holds any GPU reservation.

    On a SQLite store the file is read with the standard library (read-only; a missing
    file or table holds none). On any other database this imports the GPU kernel.
    """
    if store_url.startswith(_SQLITE_PREFIX):
        path = Path(store_url[len(_SQLITE_PREFIX):])
        if not path.is_file():
            return False
        try:
            connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2.0)
        except sqlite3.Error:
            return False
        try:
            row = connection.execute("SELECT 1 FROM gpu_allocations LIMIT 1").fetchone()
        except sqlite3.Error:  # no table yet: a store no GPU was ever reserved in
            return False
        finally:
            connection.close()
        return row is not None
    from ..gpus import GpuAllocator, read_inventory

    with GpuAllocator(read_inventory(), database_url=store_url) as allocator:
        return bool(allocator.allocations())


class GpuReleaser:
    """Follows the engine's container removals and releases their GPUs (see the module
    notes).

    Parameters
    ----------
    state
        The agent API's ``app.state``: its ``engine``, ``settings`` and event hub.
    """

    def __init__(self, state: Any) -> None:
        self._state = state
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._allocator: GpuAllocator | None = None
        #: How many reservations it has released, and reconciliations it has run.
        self.released = 0
        self.reconciled = 0

    @property
    def running(self) -> bool:
        """Whether it follows the engine now."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start following the engine (idempotent; a no-op once stopped for good)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="ghostpanel GPU releaser")

    async def start_if_reserved(self) -> None:
        """Start if the store already holds reservations (the agent's start)."""
        url = self._state.settings.store_url
        try:
            reserved = await asyncio.to_thread(has_reservations, url)
        except Exception as error:  # a broken store must not stop the agent starting
            _log.warning("could not check the GPU reservations: %s", error)
            return
        if reserved:
            self.start()

    async def aclose(self) -> None:
        """Stop following the engine and close the store connection."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        allocator, self._allocator = self._allocator, None
        if allocator is not None:
            allocator.close()

    # -- the work ---------------------------------------------------------------------

    async def _allocator_now(self) -> GpuAllocator:
        if self._allocator is None:
            from ..gpus import GpuAllocator, read_inventory

            url = self._state.settings.store_url
            self._allocator = await asyncio.to_thread(
                lambda: GpuAllocator(read_inventory(), database_url=url))
        return self._allocator

    async def _reconcile(self) -> None:
        """Bind reservations to the containers created under their workload's name, and
        release what is bound to containers the engine no longer has."""
        try:
            containers = await self._state.engine.containers.list(all=True)
            allocator = await self._allocator_now()
            for container in containers:
                workload = container.labels.get(WORKLOAD_LABEL) or container.name
                await asyncio.to_thread(allocator.adopt, workload, container.id)
            released = await asyncio.to_thread(allocator.reconcile,
                                               [c.id for c in containers])
        except GhostPanelError as error:  # the engine is away: its return reconciles
            _log.warning("GPU reconcile skipped: %s", error)
            return
        self.reconciled += 1
        self._count(released, "reconciled with the engine")

    async def _adopt(self, container_id: str, workload: str) -> None:
        allocator = await self._allocator_now()
        try:
            bound = await asyncio.to_thread(allocator.adopt, workload, container_id)
        except GhostPanelError as error:  # the store: the next reconcile tries again
            _log.warning("could not bind the GPUs of %s: %s", workload, error)
            return
        if bound:
            _log.info("GPU reservation of %s bound to container %s", workload,
                      container_id[:12])

    async def _release(self, container_id: str) -> None:
        allocator = await self._allocator_now()
        try:
            released = await asyncio.to_thread(allocator.release_container, container_id)
        except GhostPanelError as error:  # the store: the next reconcile tries again
            _log.warning("could not release the GPUs of %s: %s", container_id[:12], error)
            return
        self._count(released, f"container {container_id[:12]} removed")

    def _count(self, released: list[Any], why: str) -> None:
        if released:
            self.released += len(released)
            _log.info("released GPU reservations of %s (%s)",
                      ", ".join(sorted({a.workload for a in released})), why)

    async def _run(self) -> None:
        wanted = EventFilter(types=frozenset({"container"}),
                             actions=REMOVED_ACTIONS | {"create"})
        while True:
            try:
                hub = hub_of(self._state)
                # Subscribed first, reconciled second: a removal in between is in the
                # queue, and releasing twice is harmless.
                subscription = hub.subscribe(wanted, limit=_QUEUE_LIMIT)
            except RuntimeError:  # the agent is stopping
                return
            try:
                await hub.wait_connected(_CONNECT_WAIT)
                await self._reconcile()
                await self._follow(subscription)
            finally:
                hub.unsubscribe(subscription)
            if subscription.close_code == CLOSE_GOING_AWAY:
                return
            await asyncio.sleep(_RESUBSCRIBE_DELAY)  # dropped as too slow: take it again

    async def _follow(self, subscription: Any) -> None:
        while (batch := await subscription.next_batch()) is not None:
            for _key, text in batch:
                message = json.loads(text)
                kind = message.get("type", "")
                data = message.get("data") or {}
                if kind == "agent.engine_back":
                    await self._reconcile()  # what the outage hid
                    continue
                if data.get("kind") != "container" or not data.get("id"):
                    continue
                if data.get("action") in REMOVED_ACTIONS:
                    await self._release(str(data["id"]))
                elif data.get("action") == "create":
                    attributes = data.get("attributes") or {}
                    workload = attributes.get(WORKLOAD_LABEL) or data.get("name") or ""
                    if workload:
                        await self._adopt(str(data["id"]), str(workload))
