"""What undoes each change an apply makes: the entries of its journal.

Every undo acts on what this run made or touched, by id; nothing is looked up by name
except after a create whose answer was lost, and then only what bears this run's id
(:data:`~ghostpanel_kernel.surge._naming.LABEL_RUN`) is removed, so a container of the
same name made by another run, or by hand, is never touched.

A set-aside container is restored only once a stop under way has ended: Podman shows a
container between SIGTERM and its end as ``stopping``, a start then does nothing, and
the stop still ends it (``Exited (137)``) -- a rollback that started it at once left the
service down with no word. After its start the container must run, or the undo fails
with :class:`NotRestored` and the rollback reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..engine import Container, Environment, GhostPanelError, Network, NotFound, Volume
from ._naming import LABEL_RUN

__all__ = ["AsideState", "NotRestored", "network_remover", "remove_if_ours", "remover",
           "restorer", "stopper", "volume_remover", "wait_stop_over"]

#: Seconds beyond the stop timeout a rollback waits for a stop under way to end.
STOP_GRACE = 10.0
#: Seconds between two looks at a container that is stopping.
POLL = 0.1


class NotRestored(GhostPanelError):
    """A rollback could not bring a set-aside container back as it was."""


def remover(container: Container) -> Callable[[], Awaitable[None]]:
    """Undo a create: remove the container (by id: the one this run made)."""
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await container.remove(force=True)
    return remove


def stopper(container: Container, timeout: int) -> Callable[[], Awaitable[None]]:
    """Undo a start: stop the container again."""
    async def stop() -> None:
        await container.stop(timeout=timeout)
    return stop


@dataclass
class AsideState:
    """What a set-aside step did to a container, for its undo."""

    container: Container
    name: str
    running: bool
    stop_timeout: int
    stop_sent: bool = False


async def wait_stop_over(aside: AsideState) -> None:
    """Wait (bounded) until a stop under way has ended.

    Podman shows a container between SIGTERM and its end as ``stopping`` (Docker keeps
    saying ``running``); a start then does nothing, and the stop still ends it
    (``Exited (137)`` once the timeout kills it). A stop this run sent may also never
    have reached the engine (cancelled in flight): then it keeps running, and the wait
    ends at the deadline with the container up, as wanted.
    """
    container = aside.container
    waiting = ("stopping", "running") if aside.stop_sent else ("stopping",)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + aside.stop_timeout + STOP_GRACE
    while container.state in waiting and loop.time() < deadline:
        await asyncio.sleep(POLL)
        await container.reload()


def restorer(aside: AsideState) -> Callable[[], Awaitable[None]]:
    """Undo a set-aside: once a stop under way has ended, give the container its name
    back and, if it ran, start it and check that it runs (else :class:`NotRestored`)."""
    async def restore() -> None:
        container = aside.container
        await container.reload()
        await wait_stop_over(aside)
        if container.name != aside.name:
            await container.rename(aside.name)
        if not aside.running:
            return
        if container.state != "running":
            await container.start()
            await container.reload()
        if container.state != "running":
            raise NotRestored(f"{aside.name} was not restored: it is {container.state} "
                              f"({container.status or 'no status'}) after its start")
    return restore


async def remove_if_ours(find: Callable[[], Awaitable[Container | Network | Volume]],
                          run_id: str) -> None:
    """After a create that failed: remove what it may have made, if this run made it.

    The engine may have made it before its answer was lost; a name already in use
    (another run's, or a stack's) bears another run id, or none, and is left alone.
    """
    with contextlib.suppress(Exception):
        made = await find()
        if made.labels.get(LABEL_RUN) == run_id:
            await made.remove()  # just created: never started, never used


def network_remover(environment: Environment, name: str) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await (await environment.networks.get(name)).remove()
    return remove


def volume_remover(environment: Environment, name: str) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await (await environment.volumes.get(name)).remove(force=True)
    return remove
