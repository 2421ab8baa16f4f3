"""Logs of a project's containers, across environments, merged into one stream.

Without ``follow``, every container's log is read (with the engine's timestamps) and the
lines are merged in time order -- RFC 3339 stamps are compared as times, not as text,
since engines write a varying number of fraction digits. With ``follow``, each running
container's log is followed and lines are yielded as they arrive from any of them; a
stopped container's log is read once (Podman may cut a followed log of a stopped
container short, podman#21914). The stream ends when every followed container stops, or
when the consumer stops reading (the followers are then cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ..bolt import Boltfile
from ..engine import Environment, LogLine
from ..engine._times import engine_time_ns
from ._errors import SurgeError
from ._observe import ObservedContainer, observe_containers

__all__ = ["SurgeLogLine", "surge_logs", "timestamp_key"]


def timestamp_key(stamp: str | None) -> tuple[int, int]:
    """``(seconds, nanoseconds)`` of an engine's time, for sorting; (0, 0) if there is none.

    (0, 0), first, for ``None``, Go's zero time and text that is not a time
    (:func:`~ghostpanel_kernel.engine._times.engine_time_ns` reads it).

    Examples
    --------
    >>> timestamp_key("2026-11-27T10:00:00.8Z") > timestamp_key("2026-11-27T10:00:00.75Z")
    True
    """
    nanoseconds = engine_time_ns(stamp)
    return (0, 0) if nanoseconds is None else divmod(nanoseconds, 1_000_000_000)


@dataclass(frozen=True)
class SurgeLogLine:
    """One line of one container of the project.

    Attributes
    ----------
    environment, service, container
        Where it comes from.
    line
        The line, with the engine's timestamp.

    Examples
    --------
    >>> str(SurgeLogLine("east", "web", "shop_web", LogLine("stdout", "hello")))
    'shop_web | hello'
    """

    environment: str
    service: str
    container: str
    line: LogLine

    def __str__(self) -> str:
        return f"{self.container} | {self.line.text}"


async def _project_containers(boltfile: Boltfile, environments: Sequence[Environment],
                              service: str | None
                              ) -> list[tuple[Environment, ObservedContainer]]:
    project = boltfile.project
    if not project:
        raise SurgeError(f"{boltfile.path} has no project name")
    if service is not None and service not in boltfile.services:
        raise SurgeError(f"no service `{service}` in {boltfile.path}; services: "
                         f"{', '.join(boltfile.services)}")
    found = await asyncio.gather(*(observe_containers(env, project, boltfile.services)
                                   for env in environments))
    return [(env, seen) for env, observed in zip(environments, found, strict=True)
            for seen in observed
            if not seen.set_aside and (service is None or seen.service == service)]


async def _read(environment: Environment, seen: ObservedContainer,
                tail: int | Literal["all"]) -> list[SurgeLogLine]:
    lines = await seen.container.logs(tail=tail, timestamps=True)
    return [SurgeLogLine(environment.name, seen.service or "", seen.name, line)
            for line in lines]


async def surge_logs(boltfile: Boltfile, environments: Sequence[Environment], *,
                     service: str | None = None, follow: bool = False,
                     tail: int | Literal["all"] = "all") -> AsyncIterator[SurgeLogLine]:
    """The logs of the project's containers (of one ``service``), merged.

    Parameters
    ----------
    boltfile
        The project (not validated: logs of a broken file's project can be read).
    environments
        Open environments.
    service
        Only this service's containers.
    follow
        Keep yielding new lines until the containers stop.
    tail
        The last N lines of each container (``"all"``: every line).

    Raises
    ------
    SurgeError
        No project name, or no such service.

    Examples
    --------
    >>> async for entry in surge_logs(bf, [east], service="web"):     # doctest: +SKIP
    ...     print(entry)
    shop_web | GET / 200
    """
    found = await _project_containers(boltfile, environments, service)
    if not follow:
        batches = await asyncio.gather(*(_read(env, seen, tail) for env, seen in found))
        merged = sorted((entry for batch in batches for entry in batch),
                        key=lambda entry: timestamp_key(entry.line.timestamp))
        for entry in merged:
            yield entry
        return
    # A pump puts its lines, then None when its container's log ends, or the error that
    # ended it (raised to the reader).
    queue: asyncio.Queue[SurgeLogLine | Exception | None] = asyncio.Queue(maxsize=10_000)

    async def pump(environment: Environment, seen: ObservedContainer) -> None:
        try:
            if not seen.running:
                for entry in await _read(environment, seen, tail):
                    await queue.put(entry)
            else:
                stream = seen.container.logs(follow=True, tail=tail, timestamps=True)
                try:
                    async for line in stream:
                        await queue.put(SurgeLogLine(environment.name, seen.service or "",
                                                     seen.name, line))
                finally:  # close the engine's stream now, even when cancelled
                    if isinstance(stream, AsyncGenerator):
                        await stream.aclose()
        except Exception as error:  # handed to the reader, which raises it
            await queue.put(error)
            return
        await queue.put(None)

    tasks = [asyncio.create_task(pump(env, seen)) for env, seen in found]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
