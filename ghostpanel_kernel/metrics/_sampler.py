"""The sampler: every ``interval`` seconds, one stats answer per running container,
all at once, into the store; container events as the engine reports them.

A round lists the running containers (one request), asks each for a one-shot stats
answer concurrently (at most ``concurrency`` in flight), turns the answers into
Samples that share the round's time, and writes them in one transaction, in a worker
thread so the event loop (the agent's) never waits on the disk. Restarts, exit codes,
OOM kills and health changes come from a subscriber to the engine's event stream,
not from polling, so a container that crash-loops between two rounds is still seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from .._exceptions import GhostPanelError, NotFound
from ..engine._client import quote_id
from ..engine._containers import Container
from ..engine._environment import Environment
from ._events import EventTranslator
from ._names import ContainerEvent, Sample
from ._stats_convert import ContainerInfo, CpuReading, stats_samples
from ._store import MetricsStore

__all__ = ["Sampler"]

_log = logging.getLogger("ghostpanel.metrics")


class Sampler:
    """Samples one environment's running containers into a :class:`MetricsStore`.

    Parameters
    ----------
    env
        The engine to sample (the caller opens and closes it).
    store
        Where samples and events go.
    interval
        Seconds between the starts of two rounds.
    concurrency
        Stats requests in flight at once.
    downsample_every
        Seconds between two :meth:`MetricsStore.downsample` runs (0: never).
    environment
        The ``environment`` of the samples; None for the environment's name. The agent
        says ``local``: its clients know it by their own names for it.

    Attributes
    ----------
    environment : str
        The ``environment`` label of what it records.
    rounds : int
        Rounds completed.
    restarts : dict
        Restarts seen since the sampler started, per container name.

    Examples
    --------
    >>> sampler = Sampler(env, MetricsStore(), interval=10)    # doctest: +SKIP
    >>> task = sampler.start()                                  # doctest: +SKIP
    >>> sampler.latest()["web"][0]                              # doctest: +SKIP
    Sample(time=..., container='web', metric='cpu_cores', value=0.02, ...)
    >>> await sampler.aclose()                                  # doctest: +SKIP
    """

    def __init__(self, env: Environment, store: MetricsStore, interval: float = 10.0, *,
                 concurrency: int = 16, downsample_every: float = 600.0,
                 environment: str | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"the sampling interval must be positive, got {interval}")
        self.env = env
        self.environment = environment if environment is not None else env.name
        self.store = store
        self.interval = interval
        self.downsample_every = downsample_every
        self.rounds = 0
        self.restarts: dict[str, int] = {}
        self._limit = asyncio.Semaphore(concurrency)
        self._cpu: dict[str, CpuReading] = {}
        self._latest: dict[str, list[Sample]] = {}
        self._host_memory: int | None = None
        self._translate = EventTranslator(self.environment)
        self._tasks: list[asyncio.Task[None]] = []

    # -- one round ---------------------------------------------------------------------

    async def _host_memory_bytes(self) -> int:
        if self._host_memory is None:
            try:
                info = await self.env.system.info()
                self._host_memory = int(info.get("MemTotal") or 0)
            except GhostPanelError:
                return 0  # asked again next round
        return self._host_memory

    async def _one(self, container: Container, when: float, host_memory: int
                   ) -> list[Sample]:
        async with self._limit:
            try:
                stats: Mapping[str, Any] = await self.env.client.get_json(
                    f"/containers/{quote_id(container.id)}/stats",
                    params={"stream": False})
            except NotFound:
                return []  # it went between the listing and now
        if not isinstance(stats, Mapping):
            return []  # Podman answers null for a container that stopped meanwhile
        info = ContainerInfo(self.environment, container.name, container.id, container.image)
        samples, reading = stats_samples(stats, info, when, self._cpu.get(container.id),
                                         host_memory)
        if reading is not None:
            self._cpu[container.id] = reading
        return samples

    async def sample_once(self) -> list[Sample]:
        """Take one round: sample every running container, write, and return the
        samples. A container whose stats fail is left out of the round (logged)."""
        when = time.time()
        containers = await self.env.containers.list()
        host_memory = await self._host_memory_bytes()
        answers = await asyncio.gather(*(self._one(c, when, host_memory)
                                         for c in containers), return_exceptions=True)
        samples: list[Sample] = []
        latest: dict[str, list[Sample]] = {}
        for container, answer in zip(containers, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, GhostPanelError):
                    raise answer
                _log.warning("metrics: no stats for %s: %s", container.name, answer)
                continue
            samples.extend(answer)
            if answer:
                latest[container.name] = answer
        running = {c.id for c in containers}
        for gone in set(self._cpu) - running:  # forget containers no longer running
            del self._cpu[gone]
        await asyncio.to_thread(self.store.write, samples)
        self._latest = latest
        self.rounds += 1
        return samples

    def latest(self) -> dict[str, list[Sample]]:
        """The last round's samples per container name (for ``/metrics``)."""
        return dict(self._latest)

    # -- running -----------------------------------------------------------------------

    async def _sample_forever(self) -> None:
        next_round = time.monotonic()
        last_downsample = time.monotonic()
        while True:
            try:
                await self.sample_once()
            except GhostPanelError as error:
                _log.warning("metrics: round skipped: %s", error)
            now = time.monotonic()
            if self.downsample_every and now - last_downsample >= self.downsample_every:
                last_downsample = now
                await asyncio.to_thread(self.store.downsample)
            # Rounds start on a fixed grid; a round longer than the interval skips ahead.
            next_round += self.interval
            if next_round < now:
                next_round = now + self.interval
            await asyncio.sleep(next_round - now)

    async def record(self, event: ContainerEvent) -> None:
        """Store one container event (and count restarts)."""
        if event.kind == "restart":
            self.restarts[event.container] = self.restarts.get(event.container, 0) + 1
        await asyncio.to_thread(self.store.write_events, [event])

    async def _follow_events(self) -> None:
        since: float | None = None
        while True:
            try:
                async for event in self.env.events(filters={"type": ["container"]},
                                                   since=since):
                    if since is not None and event.time <= since:
                        continue  # replayed after a reconnection
                    since = event.time
                    found = self._translate(event)
                    if found is not None:
                        await self.record(found)
            except GhostPanelError as error:
                _log.warning("metrics: event stream lost, reconnecting: %s", error)
            await asyncio.sleep(min(self.interval, 5.0))

    def start(self) -> None:
        """Start sampling and following events in the background (on the running
        loop); :meth:`aclose` stops both."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._follow_events()),
                           asyncio.create_task(self._sample_forever())]

    async def run(self) -> None:
        """Sample until cancelled (``ghostpanel metrics collect``)."""
        self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop sampling; a round under way is cancelled (its samples not written)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
