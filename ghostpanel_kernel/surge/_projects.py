"""The stacks on a set of environments: Surge projects found by their labels, and the
stacks Bolt's own CLI started, found by their names.

One listing per environment (``containers.list(all=True)``, environments in parallel)
finds both:

- a **Surge project** is every container labelled :data:`LABEL_PROJECT`; its service
  and replica come from the labels, and where its Boltfile is from
  :data:`LABEL_BOLTFILE` (stamped by each apply since that label exists; a project
  whose containers lack it has its Boltfile "unknown" until one is given);
- a **Bolt stack** is what ``bolt surge up`` leaves: Bolt's CLI (at the commit
  GhostPanel reads) runs ``podman run -d --name {project}_{service}`` -- replicas
  ``{project}_{service}_{i}`` -- and puts no label of its own on the container. So a
  container with no Surge label (nor Compose's), not a Surge lock nor set aside, whose
  name has that shape, belongs to the Bolt stack named by the part before its first
  ``_``. That reading is a guess: a project name with an ``_`` in it, or a container
  named ``a_b`` by hand (an engine's generated names look like ``happy_turing``), is
  read the same way; :func:`bolt_name` takes the project name when it is known, and
  adopting (:mod:`~ghostpanel_kernel.surge._adopt`) lets the operator say it.

Nothing here changes an engine.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..bolt import Boltfile
from ..engine import Container, Environment
from ._desired import desired_state
from ._lock import LABEL_LOCK
from ._naming import (
    LABEL_BOLTFILE,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    is_old_name,
)
from ._placement import place

__all__ = [
    "COMPOSE_PROJECT_LABEL",
    "StackContainer",
    "StackDiscovery",
    "StackProject",
    "bolt_member",
    "bolt_name",
    "desired_replicas",
    "discover_stacks",
    "group_stacks",
]

#: Compose's project label: a container carrying it belongs to a Compose project, not
#: to a Bolt stack, whatever its name.
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

# Bolt refuses spaces in project and service names; an engine allows letters, digits,
# "_", "." and "-" in a container name.
_BOLT_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9.-]*)_([A-Za-z0-9][A-Za-z0-9_.-]*)")
_REPLICA = re.compile(r"(.+)_([1-9][0-9]*)")


def bolt_name(name: str, project: str | None = None) -> tuple[str, str, int] | None:
    """``(project, service, replica)`` of a container Bolt's CLI named ``name``.

    Parameters
    ----------
    name
        The container's name (without the leading ``/``).
    project
        The project, when known: ``name`` must start with ``{project}_``. Otherwise
        the project is what comes before the first ``_``.

    Examples
    --------
    >>> bolt_name("shop_web"), bolt_name("shop_web_2"), bolt_name("my_shop_web", "my_shop")
    (('shop', 'web', 1), ('shop', 'web', 2), ('my_shop', 'web', 1))
    >>> bolt_name("web") is None, bolt_name("shop.surge-lock") is None
    (True, True)
    """
    if project is not None:
        if not name.startswith(f"{project}_") or len(name) == len(project) + 1:
            return None
        rest = name[len(project) + 1:]
    else:
        match = _BOLT_NAME.fullmatch(name)
        if match is None:
            return None
        project, rest = match.group(1), match.group(2)
    numbered = _REPLICA.fullmatch(rest)
    if numbered is not None:
        return project, numbered.group(1), int(numbered.group(2))
    return project, rest, 1


@dataclass(frozen=True)
class StackContainer:
    """One container of a stack.

    Attributes
    ----------
    environment
        Where it is.
    name, service, replica
        Its name, the service it runs and its replica number.
    state
        The engine's state (``running``, ``exited``...).
    image
        The image reference it was created from.
    boltfile
        The Boltfile path its labels name (``""``: none).
    """

    environment: str
    name: str
    service: str
    replica: int
    state: str
    image: str
    boltfile: str = ""

    @property
    def running(self) -> bool:
        """Whether it is up (``running`` or ``paused``)."""
        return self.state in ("running", "paused")


@dataclass(frozen=True)
class StackProject:
    """A stack: a Surge project (``managed``) or one Bolt's CLI started.

    Attributes
    ----------
    name
        The project name.
    managed
        Surge manages it (its containers carry Surge's labels); False: a Bolt stack,
        which can be adopted.
    containers
        Its containers on every environment, by environment then name.

    Examples
    --------
    >>> web = StackContainer("east", "shop_web", "web", 1, "running", "busybox")
    >>> project = StackProject("shop", True, (web,))
    >>> project.services, project.replicas("east"), project.state
    (('web',), (1, 1), 'running')
    """

    name: str
    managed: bool
    containers: tuple[StackContainer, ...]

    @property
    def services(self) -> tuple[str, ...]:
        """Its services, sorted."""
        return tuple(sorted({c.service for c in self.containers}))

    @property
    def environments(self) -> tuple[str, ...]:
        """The environments it has containers on, in the order found."""
        return tuple(dict.fromkeys(c.environment for c in self.containers))

    @property
    def boltfile(self) -> str:
        """The Boltfile path most of its containers' labels name; ``""`` if none does."""
        paths = Counter(c.boltfile for c in self.containers if c.boltfile)
        return paths.most_common(1)[0][0] if paths else ""

    def replicas(self, environment: str) -> tuple[int, int]:
        """``(running, containers)`` on ``environment``."""
        here = [c for c in self.containers if c.environment == environment]
        return sum(c.running for c in here), len(here)

    @property
    def state(self) -> str:
        """``running`` (all up), ``stopped`` (none up) or ``partial``."""
        running = sum(c.running for c in self.containers)
        if running == len(self.containers):
            return "running"
        return "stopped" if running == 0 else "partial"


@dataclass(frozen=True)
class StackDiscovery:
    """What :func:`discover_stacks` found.

    Attributes
    ----------
    projects
        The Surge projects, then the Bolt stacks, each sorted by name.
    errors
        The environments that could not be read, with why.
    """

    projects: tuple[StackProject, ...]
    errors: Mapping[str, BaseException] = field(default_factory=dict)

    def get(self, name: str, *, managed: bool | None = None) -> StackProject:
        """The stack called ``name`` (a Surge project first); KeyError if none."""
        for project in self.projects:
            if project.name == name and managed in (None, project.managed):
                return project
        raise KeyError(f"no stack {name!r} on these environments")


def _surge_member(environment: str, container: Container) -> StackContainer:
    labels = container.labels
    replica = labels.get(LABEL_REPLICA, "")
    return StackContainer(environment, container.name, labels.get(LABEL_SERVICE, ""),
                          int(replica) if replica.isdigit() else 0, container.state,
                          container.image, labels.get(LABEL_BOLTFILE, ""))


def bolt_member(environment: str, container: Container,
                project: str | None = None) -> tuple[str, StackContainer] | None:
    """``(project, member)`` when ``container`` looks like one Bolt's CLI started."""
    labels = container.labels
    if LABEL_PROJECT in labels or LABEL_LOCK in labels or COMPOSE_PROJECT_LABEL in labels \
            or is_old_name(container.name):
        return None
    named = bolt_name(container.name, project)
    if named is None:
        return None
    name, service, replica = named
    return name, StackContainer(environment, container.name, service, replica,
                                container.state, container.image)


def group_stacks(listings: Iterable[tuple[str, Sequence[Container]]]) -> list[StackProject]:
    """The stacks of ``(environment, containers)`` listings (see the module docstring).

    Examples
    --------
    >>> group_stacks([])
    []
    """
    surge: dict[str, list[StackContainer]] = {}
    bolt: dict[str, list[StackContainer]] = {}
    for environment, containers in listings:
        for container in containers:
            project = container.labels.get(LABEL_PROJECT)
            if project and LABEL_LOCK not in container.labels:
                if not is_old_name(container.name):  # an apply's leftover, not a replica
                    surge.setdefault(project, []).append(_surge_member(environment,
                                                                       container))
                continue
            found = bolt_member(environment, container)
            if found is not None:
                bolt.setdefault(found[0], []).append(found[1])
    return [*(StackProject(name, True, tuple(members))
              for name, members in sorted(surge.items())),
            *(StackProject(name, False, tuple(members))
              for name, members in sorted(bolt.items()))]


async def discover_stacks(environments: Sequence[Environment]) -> StackDiscovery:
    """The stacks on ``environments`` (one container listing each, in parallel).

    Examples
    --------
    >>> found = await discover_stacks([east, west])                     # doctest: +SKIP
    >>> [(p.name, p.managed, p.replicas("east")) for p in found.projects] # doctest: +SKIP
    [('shop', True, (2, 2)), ('legacy', False, (1, 1))]
    """
    results = await asyncio.gather(*(env.containers.list(all=True) for env in environments),
                                   return_exceptions=True)
    listings: list[tuple[str, Sequence[Container]]] = []
    errors: dict[str, BaseException] = {}
    for environment, result in zip(environments, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            errors[environment.name] = result
        else:
            listings.append((environment.name, result))
    return StackDiscovery(tuple(group_stacks(listings)), errors)


def desired_replicas(boltfile: Boltfile, environments: Sequence[Environment]
                     ) -> dict[str, int]:
    """Containers the Boltfile places on each environment (by name), as Surge would.

    Raises
    ------
    SurgeError
        Surge refuses the Boltfile.
    """
    state = desired_state(boltfile)
    placement = place(state, [(env.name, env.labels) for env in environments])
    return {env.name: len(placement.slots.get(env.name, ())) for env in environments}
