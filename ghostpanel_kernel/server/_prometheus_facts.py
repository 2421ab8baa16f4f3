"""What ``/metrics`` reports about containers, gathered from the engine cheaply.

- **state** (every container, stopped ones included): one ``GET /containers/json?all=1``
  gives id, name, image and state, and, for an exited container, its exit code (in
  ``Status``: ``Exited (3) 2 minutes ago``); Docker's listing also shows the health
  (``Up 2 hours (healthy)``), Podman's does not. Podman takes 100 to 300 ms to list
  100 containers on a busy host, so :class:`Listing` lets a scrape wait only briefly
  for a fresh listing and otherwise answer from the previous one.
- **what only an inspect has**: ``RestartCount``, the health on Podman, the last exit
  code of a running container that has exited before. An inspect per container per
  scrape would cost 100 requests at 100 containers, so :class:`InspectCache` keeps each
  container's last inspect and re-inspects it *before* the scrape only when it is new
  or its listed state changed (the moment a crash or a restart shows), and *after*
  the scrape, in the background, once it is older than ``max_age`` (30 s): a restart
  loop that is ``running`` at every listing still shows within that time.
- **resource values** of the running containers the sampler has not sampled (all of
  them when the agent does not sample): :func:`one_shot_round` takes one stats sample
  of each, concurrently, within a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .._exceptions import GhostPanelError
from ..engine import Container, Environment
from ..engine._client import quote_id
from ..metrics._names import Sample
from ..metrics._stats_convert import ContainerInfo, stats_samples

__all__ = ["ContainerFacts", "InspectCache", "Listing", "Reading", "list_facts",
           "one_shot_round", "readings_from_samples"]

#: Inspects (and stats requests) in flight at once: enough to overlap the engine's
#: latency, few enough not to queue up hundreds of requests on a small host.
CONCURRENCY: Final = 16

_EXITED = re.compile(r"^Exited \((-?\d+)\)")
_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|starting)\)")
#: Go's zero time: the FinishedAt of a container that has never stopped.
_NEVER = "0001-01-01"


@dataclass
class ContainerFacts:
    """One container's identity and lifecycle facts, as ``/metrics`` labels them.

    Attributes
    ----------
    id, name, image : str
        Full id, name without ``/``, image reference.
    state : str
        ``running``, ``exited``, ``paused``, ``created``...
    health : str
        ``healthy``, ``unhealthy``, ``starting``, or ``none`` without a healthcheck.
    exit_code : int or None
        The last exit code; None while the container has never stopped.
    restarts : int or None
        ``RestartCount`` (restarts by the engine's restart policy); None when unknown.
    """

    id: str
    name: str
    image: str
    state: str
    health: str = "none"
    exit_code: int | None = None
    restarts: int | None = None


@dataclass
class Reading:
    """One container's resource values at one time (``metric name -> value``)."""

    time: float
    values: dict[str, float] = field(default_factory=dict)


def _listed(entry: Container) -> ContainerFacts:
    status = entry.status
    exited = _EXITED.match(status)
    health = _HEALTH_IN_STATUS.search(status)
    return ContainerFacts(id=entry.id, name=entry.name, image=entry.image,
                          state=entry.state or "unknown",
                          health=health.group(1) if health else "none",
                          exit_code=int(exited.group(1)) if exited else None)


@dataclass
class _Inspected:
    state: str          # the listed state it was taken at
    taken: float        # monotonic seconds
    health: str
    exit_code: int | None
    restarts: int


def _from_inspect(attrs: Mapping[str, Any], listed_state: str) -> _Inspected:
    state = attrs.get("State") or {}
    health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status") or "none"
    finished = str(state.get("FinishedAt") or _NEVER)
    stopped_before = not finished.startswith(_NEVER)
    exit_code = int(state.get("ExitCode") or 0) if stopped_before else None
    return _Inspected(state=listed_state, taken=time.monotonic(), health=str(health),
                      exit_code=exit_code, restarts=int(attrs.get("RestartCount") or 0))


class InspectCache:
    """The last inspect of each container, refreshed as the module notes say.

    Parameters
    ----------
    engine : Environment
        The engine to inspect on.
    max_age : float
        Seconds after which an entry is refreshed in the background.
    timeout : float
        Seconds the inspects before one scrape may take; those unfinished are
        reported without their inspect-only facts this time.
    """

    def __init__(self, engine: Environment, *, max_age: float = 30.0,
                 timeout: float = 2.0) -> None:
        self.engine = engine
        self.max_age = max_age
        self.timeout = timeout
        self._entries: dict[str, _Inspected] = {}
        self._background: asyncio.Task[None] | None = None

    async def _inspect(self, ident: str, listed_state: str,
                       limit: asyncio.Semaphore) -> None:
        async with limit:
            try:
                attrs = await self.engine.client.get_json(
                    f"/containers/{quote_id(ident)}/json")
            # Removed meanwhile (the next listing drops it), or the engine went away
            # (the listing reports that): this container keeps its last facts.
            except GhostPanelError:
                return
        self._entries[ident] = _from_inspect(attrs, listed_state)

    async def _inspect_all(self, wanted: Sequence[tuple[str, str]]) -> None:
        limit = asyncio.Semaphore(CONCURRENCY)
        await asyncio.gather(*(self._inspect(ident, state, limit)
                               for ident, state in wanted))

    async def complete(self, facts: Sequence[ContainerFacts]) -> None:
        """Fill in ``facts``' health, exit codes and restarts (see the module notes)."""
        present = {fact.id for fact in facts}
        for gone in self._entries.keys() - present:
            del self._entries[gone]
        urgent = [(fact.id, fact.state) for fact in facts
                  if fact.id not in self._entries
                  or self._entries[fact.id].state != fact.state]
        if urgent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inspect_all(urgent), self.timeout)
        for fact in facts:
            entry = self._entries.get(fact.id)
            if entry is None:
                continue
            fact.restarts = entry.restarts
            if fact.health == "none":
                fact.health = entry.health
            if fact.exit_code is None:
                fact.exit_code = entry.exit_code
        self._refresh_later(facts)

    def _refresh_later(self, facts: Sequence[ContainerFacts]) -> None:
        if self._background is not None and not self._background.done():
            return
        horizon = time.monotonic() - self.max_age
        stale = [(fact.id, fact.state) for fact in facts
                 if fact.id in self._entries and self._entries[fact.id].taken < horizon]
        if stale:
            self._background = asyncio.get_running_loop().create_task(
                self._inspect_all(stale), name="ghostpanel-metrics-inspect")

    async def aclose(self) -> None:
        """Cancel a background refresh under way."""
        task, self._background = self._background, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def list_facts(engine: Environment) -> list[ContainerFacts]:
    """Every container's listed facts (one engine request)."""
    return [_listed(entry) for entry in await engine.containers.list(all=True)]


class Listing:
    """The engine's container listing, fresh when the engine is quick, else the last one.

    Podman lists 100 containers in 100 to 300 ms on a busy host: more than a scrape's
    whole budget. Each scrape starts a new listing (one at a time) and waits
    for it at most ``wait`` seconds; a listing that takes longer is used by the next
    scrape, this one answering from the previous listing. Only the first scrape waits
    for its listing whatever it takes. A listing that failed is raised to the scrape
    that sees it: the engine being down shows at once, not as stale figures.

    Parameters
    ----------
    engine : Environment
        The engine to list.
    wait : float
        Seconds a scrape waits for a listing under way.
    """

    def __init__(self, engine: Environment, *, wait: float = 0.02) -> None:
        self.engine = engine
        self.wait = wait
        self._last: list[ContainerFacts] | None = None
        self._task: asyncio.Task[list[ContainerFacts]] | None = None

    async def current(self) -> list[ContainerFacts]:
        """Every container's listed facts: copies, for the caller to complete."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                list_facts(self.engine), name="ghostpanel-metrics-listing")
        task = self._task
        if self._last is None:
            await asyncio.wait([task])
        else:
            await asyncio.wait([task], timeout=self.wait)
        if task.done():
            self._task = None
            self._last = task.result()  # raises what the listing raised
        assert self._last is not None
        return [dataclasses.replace(fact) for fact in self._last]

    async def aclose(self) -> None:
        """Cancel a listing under way."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def readings_from_samples(samples: Iterable[Sample]) -> dict[str, Reading]:
    """Group a sampler round's samples by container id."""
    readings: dict[str, Reading] = {}
    for sample in samples:
        reading = readings.get(sample.container_id)
        if reading is None:
            reading = readings[sample.container_id] = Reading(sample.time)
        reading.values[sample.metric] = sample.value
    return readings


async def one_shot_round(engine: Environment, facts: Sequence[ContainerFacts], *,
                         environment: str, host_memory: int,
                         timeout: float = 5.0) -> dict[str, Reading]:
    """One stats sample of every running container in ``facts``, concurrently.

    Turned into values by the sampler's own conversion (``stats_samples``), so that a
    figure means the same from either source. Containers that stopped meanwhile, and
    those not answered within ``timeout`` seconds, are left out: the scrape reports
    their state without values.

    Parameters
    ----------
    engine : Environment
        The engine.
    facts : sequence of ContainerFacts
        The containers; only the running ones are sampled.
    environment : str
        The samples' ``environment``.
    host_memory : int
        The engine host's memory in bytes (a limit that large means none); 0 unknown.
    timeout : float
        Seconds the whole round may take.
    """
    samples: list[Sample] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    when = time.time()

    async def one(fact: ContainerFacts) -> None:
        async with limit:
            try:
                stats = await _stats(engine, fact)
            except GhostPanelError:  # stopped meanwhile: reported without values
                return
        info = ContainerInfo(environment, fact.name, fact.id, fact.image)
        samples.extend(stats_samples(stats, info, when, None, host_memory)[0])

    running = [fact for fact in facts if fact.state == "running"]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(one(fact) for fact in running)), timeout)
    return readings_from_samples(samples)


async def _stats(engine: Environment, fact: ContainerFacts) -> dict[str, Any]:
    # One request, not Container.stats(), which takes two for a CPU %: the counters
    # are what is exposed, and rates are the scraper's business.
    stats: dict[str, Any] = await engine.client.get_json(
        f"/containers/{quote_id(fact.id)}/stats", params={"stream": False})
    return stats
