"""Status: per environment and service, desired against running replicas, and health.

``desired`` comes from the Boltfile and the placement (what an apply would run there),
``running`` and the container names from the engine: the project's labelled containers
and the unlabelled ones adopted by name (set-aside leftovers are not counted). A service
of the project that left the Boltfile but still has containers is listed with
``desired`` 0.

Health is real: on engines that run healthchecks themselves (Docker) their recorded
status is read; on Podman, whose checks need systemd timers that many hosts lack, each
running container's check is run once through libpod (see
:mod:`~ghostpanel_kernel.surge._health`), which also records the result in the engine.
``check_health=False`` only reads what the engine has recorded.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..bolt import Boltfile
from ..engine import Container, Environment
from ._desired import DesiredState, desired_state
from ._health import run_healthcheck
from ._observe import ObservedContainer, observe_containers
from ._placement import place

__all__ = ["ServiceStatus", "SurgeStatus", "surge_status"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service on one environment.

    Attributes
    ----------
    environment, service
        Where and what.
    desired
        Containers the Boltfile places there.
    running
        Containers of it running there.
    containers
        Their names (running or not), sorted.
    health
        ``healthy`` (every running one), ``unhealthy`` (any), ``starting``, or ``""``
        when the service has no healthcheck or nothing runs.

    Examples
    --------
    >>> ServiceStatus("east", "web", 2, 1, ("shop_web_1", "shop_web_2"), "").converged
    False
    """

    environment: str
    service: str
    desired: int
    running: int
    containers: tuple[str, ...]
    health: str = ""

    @property
    def converged(self) -> bool:
        """As many run as are wanted, all of them up, none unhealthy."""
        return (self.desired == self.running == len(self.containers)
                and self.health in ("", "healthy"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``surge status --json``)."""
        return {"environment": self.environment, "service": self.service,
                "desired": self.desired, "running": self.running,
                "containers": list(self.containers), "health": self.health}


@dataclass(frozen=True)
class SurgeStatus:
    """The project's status on every selected environment.

    Attributes
    ----------
    project
        The project name.
    services
        One entry per environment and service, environments in the given order,
        services in start order.
    errors
        Environments that could not be read, with why.
    """

    project: str
    services: tuple[ServiceStatus, ...]
    errors: dict[str, BaseException] = field(default_factory=dict)

    def service(self, environment: str, service: str) -> ServiceStatus:
        """The entry of ``service`` on ``environment``."""
        for entry in self.services:
            if (entry.environment, entry.service) == (environment, service):
                return entry
        raise KeyError((environment, service))


def _combined(states: Sequence[str]) -> str:
    if not states:
        return ""
    if "unhealthy" in states:
        return "unhealthy"
    if all(state == "healthy" for state in states):
        return "healthy"
    return "starting"


async def _health(environment: Environment, container: Container, state: DesiredState,
                  service: str, check_health: bool) -> str:
    spec = state.services.get(service)
    check = spec.healthcheck if spec is not None else None
    if check is None:
        return ""
    if check_health:
        return await run_healthcheck(environment, container, check)
    await container.reload()
    return container.health


async def _environment_status(environment: Environment, state: DesiredState,
                              desired: dict[str, int], *, check_health: bool
                              ) -> list[ServiceStatus]:
    observed = [seen for seen in await observe_containers(environment, state.project,
                                                          list(state.services))
                if not seen.set_aside]
    by_service: dict[str, list[ObservedContainer]] = {}
    for seen in observed:
        by_service.setdefault(seen.service or "", []).append(seen)
    names = [s for s in state.services if desired.get(s) or s in by_service]
    names += sorted(s for s in by_service if s not in state.services)
    entries = []
    for service in names:
        seen_here = by_service.get(service, [])
        running = [seen for seen in seen_here if seen.running]
        healths = await asyncio.gather(*(
            _health(environment, seen.container, state, service, check_health)
            for seen in running))
        entries.append(ServiceStatus(
            environment.name, service, desired.get(service, 0), len(running),
            tuple(sorted(seen.name for seen in seen_here)),
            _combined([h for h in healths if h])))
    return entries


async def surge_status(boltfile: Boltfile, environments: Sequence[Environment], *,
                       check_health: bool = True) -> SurgeStatus:
    """Desired and running replicas, container names and health, per environment.

    Parameters
    ----------
    boltfile
        The project.
    environments
        Open environments (read in parallel).
    check_health
        Run healthchecks where the engine does not (Podman); else only read the
        recorded health.

    Raises
    ------
    SurgeError
        The Boltfile is invalid.

    Examples
    --------
    >>> status = await surge_status(Boltfile.load("Boltfile.toml"), [east, west])
    ...                                                                # doctest: +SKIP
    >>> [(s.environment, s.service, s.desired, s.running) for s in status.services]
    ...                                                                # doctest: +SKIP
    [('east', 'web', 2, 2), ('west', 'web', 1, 1)]
    """
    state = desired_state(boltfile)
    placement = place(state, [(env.name, env.labels) for env in environments])

    async def one(environment: Environment) -> list[ServiceStatus]:
        # One count of the slots, not a walk per service (quadratic in services).
        counts = Counter(slot.service for slot in placement.slots.get(environment.name, ()))
        desired = {service: counts[service] for service in state.services}
        return await _environment_status(environment, state, desired,
                                         check_health=check_health)

    results = await asyncio.gather(*(one(env) for env in environments),
                                   return_exceptions=True)
    services: list[ServiceStatus] = []
    errors: dict[str, BaseException] = {}
    for environment, result in zip(environments, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            errors[environment.name] = result
        else:
            services += result
    return SurgeStatus(state.project, tuple(services), errors)
