"""Environment summaries: one engine's state in a few figures, for many engines at once.

What the Home view's cards show (docs/home.md): whether the engine answers (and why
not), its kind and version, containers running / stopped / unhealthy, images, volumes,
and the CPU and memory its running containers use.

What a summary costs the engine, measured on Podman 4.3 (bench/home_summary.py):

- ``GET /containers/json?all=1``, ``/images/json``, ``/volumes``: milliseconds;
- the unhealthy count is a second listing filtered on ``health=unhealthy``: Podman's
  listing leaves the health out of ``Status``, and its filter has it (as Docker's does);
- ``GET /info`` takes about 0.45 s on Podman: it is read once per environment, for the
  host's CPUs and memory, never on every refresh;
- CPU and memory in use: one one-shot ``/stats`` per running container (16 in flight at
  once, about 2.5 ms each), the sum over the running containers; the round gets a time
  budget of its own, a summary says how many containers it covered, and a slow round
  is not repeated at once (:meth:`SummaryReader._paced_usage`). A CPU share
  needs two readings and Podman's one-shot sample carries no earlier one, so a
  :class:`SummaryReader` keeps each container's last sample and measures CPU between
  two refreshes (Docker's sample carries its own earlier reading: measured at once).
  The engine's ``/info`` has no usage figure on Docker (Podman's libpod API has a
  host-wide one, which includes processes outside containers), hence the stats.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .._exceptions import EngineTimeout, GhostPanelError
from ..engine import Environment
from ..engine._client import quote_id
from ..engine._stats import StatsSample
from ._fanout import fan_out
from ._spec import EnvironmentSpec

__all__ = ["EnvironmentSummary", "SummaryReader", "summarize"]

#: Stats requests in flight at once on one engine.
STATS_CONCURRENCY: Final = 16
#: A stats round waits this many times the last round's duration after it (see
#: :meth:`SummaryReader._paced_usage`).
STATS_PACING: Final = 4.0
#: Rounds shorter than this (seconds) are never paced: cheap, and always fresh.
STATS_PACED_FROM: Final = 0.1

_ENGINE_NAMES: Final = {"podman": "Podman", "docker": "Docker", "bolt": "Bolt"}


def _one_line(error: BaseException) -> str:
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


@dataclass(frozen=True)
class EnvironmentSummary:
    """One environment's engine in a few figures, at one moment.

    Parameters
    ----------
    name, url
        The environment and its endpoint.
    refreshed
        When the summary was taken (aware UTC).
    error
        Why the engine could not be summarised (it did not answer, in time or at all);
        None when it answered. See :attr:`reason`.
    engine, version
        ``"Podman"``, ``"Docker"``, ``"Bolt"`` (or the engine's own word) and its version.
    running, paused, stopped, unhealthy
        Containers in each state (``stopped``: neither running nor paused: created,
        exited, dead); ``unhealthy`` counts the running ones whose healthcheck fails.
    images, volumes
        How many of each the engine has.
    cpu_cores
        CPU in use by the running containers, in cores (1.0 = one CPU busy); None until
        it can be measured (Podman: from the second refresh on).
    memory_bytes
        Memory in use by the running containers (page cache excluded); None when none
        of them could be sampled.
    sampled
        Running containers whose stats were read (fewer than ``running`` when the
        round ran out of its time budget).
    host_cpus, host_memory
        The engine host's CPUs and memory in bytes; None when unknown.
    elapsed
        Seconds the summary took.

    Examples
    --------
    >>> summary = EnvironmentSummary("gpu-1", "tcp://10.0.0.9:2375",
    ...     datetime(2026, 12, 8, tzinfo=UTC), error=OSError("connection refused"))
    >>> summary.reachable, summary.reason
    (False, 'connection refused')
    """

    name: str
    url: str
    refreshed: datetime
    error: BaseException | None = field(default=None, compare=False)
    engine: str = ""
    version: str = ""
    running: int = 0
    paused: int = 0
    stopped: int = 0
    unhealthy: int = 0
    images: int = 0
    volumes: int = 0
    cpu_cores: float | None = None
    memory_bytes: int | None = None
    sampled: int = 0
    host_cpus: int | None = None
    host_memory: int | None = None
    elapsed: float = 0.0

    @property
    def reachable(self) -> bool:
        """True when the engine answered."""
        return self.error is None

    @property
    def reason(self) -> str:
        """Why the engine could not be summarised, in one line; ``""`` when it was."""
        return "" if self.error is None else _one_line(self.error)

    @property
    def containers(self) -> int:
        """Every container, whatever its state."""
        return self.running + self.paused + self.stopped


@dataclass
class _Host:
    cpus: int | None
    memory: int | None


class SummaryReader:
    """Reads :class:`EnvironmentSummary` objects, remembering what the next read needs.

    It keeps, per environment, the host's CPUs and memory (``/info`` is slow on
    Podman: read once) and each running container's last stats sample (CPU is measured
    between two reads). One reader per view; reads of one environment must not
    overlap (a view reads each environment from one task).

    Parameters
    ----------
    timeout
        Seconds a whole summary of one environment may take; past it, its summary is
        an :class:`EngineTimeout` error ("no answer within ...").
    stats_budget
        Seconds the stats round may take (within ``timeout``); the containers not
        sampled by then are left out of the CPU and memory sums (``sampled`` says).
    stats
        False: no stats round at all (no CPU or memory figures).
    stats_pacing
        A stats round of more than ``STATS_PACED_FROM`` seconds is repeated only once
        this many times its duration has passed (the figures of the last one are
        shown meanwhile); 0: a round on every read.

    Examples
    --------
    >>> reader = SummaryReader(timeout=5)
    >>> summary = await reader.read(env)                      # doctest: +SKIP
    >>> summary.running, summary.cpu_cores                    # doctest: +SKIP
    (3, None)
    """

    def __init__(self, *, timeout: float = 5.0, stats_budget: float = 2.0,
                 stats: bool = True, stats_pacing: float = STATS_PACING) -> None:
        if not timeout > 0 or not stats_budget > 0:
            raise ValueError(f"timeout and stats_budget must be positive seconds, not "
                             f"{timeout!r} and {stats_budget!r}")
        self.timeout = float(timeout)
        self.stats_budget = float(stats_budget)
        self.stats = stats
        self.stats_pacing = float(stats_pacing)
        self._hosts: dict[str, _Host] = {}
        self._samples: dict[str, dict[str, StatsSample]] = {}
        # Per environment: the last stats round's figures, when it ended, how long it took.
        self._rounds: dict[str, tuple[dict[str, Any], float, float]] = {}

    async def read(self, environment: Environment) -> EnvironmentSummary:
        """Summarise ``environment``; its errors go into the summary, never raised.

        Raises
        ------
        asyncio.CancelledError
            The read itself was cancelled.
        """
        started = time.perf_counter()
        moment = datetime.now(UTC)
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                figures = await self._figures(environment, deadline.when())
        except TimeoutError as error:
            failure: BaseException = error
            if deadline.expired():
                failure = EngineTimeout(f"no answer within {self.timeout:g} s",
                                        endpoint=environment.url)
        except Exception as error:  # said in the summary: see the class docstring
            failure = _first_error(error)
        else:
            return EnvironmentSummary(environment.name, environment.url, moment,
                                      elapsed=time.perf_counter() - started, **figures)
        # Gone: what was measured before says nothing about the engine when it is back.
        self._samples.pop(environment.name, None)
        self._rounds.pop(environment.name, None)
        return EnvironmentSummary(environment.name, environment.url, moment, error=failure,
                                  elapsed=time.perf_counter() - started)

    async def read_all(self, environments: Sequence[EnvironmentSpec | Environment]
                       ) -> list[EnvironmentSummary]:
        """Summarise every environment at once (:func:`fan_out`), in the order given.

        Specs are opened for the read and closed after it; a dead or silent engine costs
        its own summary at most ``timeout`` seconds and delays no other.
        """
        # fan_out's own deadline is a net: read() keeps within ``timeout`` by itself.
        results = await fan_out(environments, self.read, timeout=self.timeout + 1.0)
        now = datetime.now(UTC)
        return [result.value if result.value is not None else EnvironmentSummary(
                    item.name, item.url, now, error=result.error, elapsed=result.elapsed)
                for item, result in zip(environments, results, strict=True)]

    def forget(self, name: str) -> None:
        """Drop what is remembered of environment ``name``."""
        self._hosts.pop(name, None)
        self._samples.pop(name, None)
        self._rounds.pop(name, None)

    # -- the figures ----------------------------------------------------------------

    async def _figures(self, environment: Environment, deadline: float | None
                       ) -> dict[str, Any]:
        """The summary's figures; ``deadline`` (loop time) bounds the stats round too."""
        name = environment.name
        # A ping first (0.2 ms, unversioned): a silent engine is then given up on in a
        # request that the deadline cancels, before the client starts negotiating the
        # API version in a shared task that a cancelled caller cannot stop.
        await environment.ping()
        async with asyncio.TaskGroup() as group:
            version = group.create_task(environment.version())
            listing = group.create_task(environment.containers.list(all=True))
            # Running ones only: a stopped container keeps its last health.
            unhealthy = group.create_task(environment.containers.list(
                filters={"health": ["unhealthy"]}))
            images = group.create_task(environment.images.list())
            volumes = group.create_task(environment.volumes.list())
            host = (None if name in self._hosts
                    else group.create_task(environment.system.info()))
        if host is not None:
            self._hosts[name] = _host_of(host.result())
        containers = listing.result()
        states = [container.state for container in containers]
        running = [container for container in containers if container.state == "running"]
        engine = version.result()
        figures: dict[str, Any] = {
            "engine": _ENGINE_NAMES.get(engine.kind, engine.kind),
            "version": engine.version,
            "running": len(running),
            "paused": states.count("paused"),
            "stopped": len(states) - len(running) - states.count("paused"),
            "unhealthy": len(unhealthy.result()),
            "images": len(images.result()),
            "volumes": len(volumes.result()),
            "host_cpus": self._hosts[name].cpus,
            "host_memory": self._hosts[name].memory,
        }
        if self.stats:
            budget = self.stats_budget
            if deadline is not None:
                # Counts read slowly leave the stats less time: a round cut short is a
                # partial sum, better than no summary at all.
                budget = min(budget, deadline - asyncio.get_running_loop().time() - 0.05)
            figures.update(await self._paced_usage(environment, [c.id for c in running],
                                                   max(budget, 0.0)))
        return figures

    async def _paced_usage(self, environment: Environment, running: Sequence[str],
                           budget: float) -> dict[str, Any]:
        """:meth:`_usage`, or the last round's figures while that round is recent.

        A round's cost grows with the running containers (about 0.5 s at 100 on a busy
        Podman); reads come every few seconds, and sooner after events. A new round
        starts once ``stats_pacing`` times the last one's duration has passed since it
        ended, so that the rounds take at most a fifth of the engine's time. A round
        under ``STATS_PACED_FROM`` (a few dozen containers) is repeated on every read.
        """
        last = self._rounds.get(environment.name)
        now = time.monotonic()
        if last is not None and last[2] >= STATS_PACED_FROM and \
                now - last[1] < self.stats_pacing * last[2]:
            return last[0]
        usage = await self._usage(environment, running, budget)
        ended = time.monotonic()
        self._rounds[environment.name] = (usage, ended, ended - now)
        return usage

    async def _usage(self, environment: Environment, running: Sequence[str],
                     budget: float) -> dict[str, Any]:
        """CPU and memory summed over ``running``, sampled within ``budget`` seconds."""
        previous = self._samples.get(environment.name, {})
        samples: dict[str, StatsSample] = {}
        limit = asyncio.Semaphore(STATS_CONCURRENCY)

        async def one(ident: str) -> None:
            async with limit:
                try:
                    attrs = await environment.client.get_json(
                        f"/containers/{quote_id(ident)}/stats", params={"stream": False})
                except GhostPanelError:  # stopped or removed meanwhile: not counted
                    return
            samples[ident] = StatsSample.from_attrs(attrs)

        tasks = [asyncio.ensure_future(one(ident)) for ident in running]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=budget)
        finally:  # past the budget, or the read was cancelled: no request outlives it
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:  # not an engine's answer: a bug, said in the summary
                raise error
        # Only the containers running now: the others' samples would never be used.
        now_running = set(running)
        self._samples[environment.name] = {**{ident: sample for ident, sample in
                                              previous.items() if ident in now_running},
                                           **samples}
        percents = [_cpu_percent(sample, previous.get(ident))
                    for ident, sample in samples.items()]
        known = [percent for percent in percents if not math.isnan(percent)]
        return {"sampled": len(samples),
                "memory_bytes": sum(s.memory_usage for s in samples.values())
                if samples or not running else None,
                "cpu_cores": sum(known) / 100.0 if known or not running else None}


def _first_error(error: BaseException) -> BaseException:
    """The first of a task group's errors: the engine's failure, said once (every
    request of the summary fails alike when the engine cannot be reached)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _cpu_percent(sample: StatsSample, previous: StatsSample | None) -> float:
    """The sample's CPU share: its own (Docker), else since the previous read's."""
    if not math.isnan(sample.cpu_percent):
        return sample.cpu_percent
    if previous is None:
        return math.nan
    return sample.cpu_percent_since(previous)


def _host_of(info: dict[str, Any]) -> _Host:
    cpus, memory = info.get("NCPU"), info.get("MemTotal")
    return _Host(int(cpus) if isinstance(cpus, int | float) and cpus else None,
                 int(memory) if isinstance(memory, int | float) and memory else None)


async def summarize(environments: Sequence[EnvironmentSpec | Environment], *,
                    timeout: float = 5.0, stats: bool = True) -> list[EnvironmentSummary]:
    """One summary of each environment, read at once; a dead engine delays no other.

    A one-off read (the CPU figures need a second read on Podman: keep a
    :class:`SummaryReader` for that).

    Examples
    --------
    >>> from ghostpanel_kernel.environments import EnvironmentRegistry
    >>> for s in await summarize(EnvironmentRegistry().list()):    # doctest: +SKIP
    ...     print(s.name, s.running if s.reachable else s.reason)
    local 3
    gpu-1 no answer within 5 s (engine at tcp://10.0.0.9:2375)
    """
    return await SummaryReader(timeout=timeout, stats=stats).read_all(environments)
