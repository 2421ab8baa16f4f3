"""What a project has on one environment: its containers, networks and volumes.

A project's containers are those labelled with its name (:data:`LABEL_PROJECT`) and,
for adoption, those named by Bolt's rule (``{project}_{service}``, ``..._{i}``) for a
service of the Boltfile but carrying no Surge label: a stack started by Bolt, or by hand,
is taken over rather than duplicated. Two listings find them whatever their number: one
by label, one by name (the engines match ``name`` filters as an unanchored regular
expression, so the exact names are checked here). Unlabelled candidates are inspected,
since a listing does not carry the command to compare.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ..engine import Container, Environment, Network, Volume
from ._naming import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVICE,
    is_old_name,
    replica_of_name,
)

__all__ = ["ObservedContainer", "ProjectResources", "observe_containers", "observe_resources"]


@dataclass(frozen=True)
class ObservedContainer:
    """A container of the project as found on an engine.

    Attributes
    ----------
    container
        The engine's container (listing attrs; inspected for adoption candidates).
    service
        The service it runs: its label, or for an unlabelled one the name's service.
    replica
        Its replica number (label or name).
    config_hash
        The config hash label; None for an adopted container.
    managed
        It carries this project's Surge labels (False: adopted by name).
    """

    container: Container
    service: str | None
    replica: int | None
    config_hash: str | None
    managed: bool

    @property
    def name(self) -> str:
        """The container's name."""
        return self.container.name

    @property
    def running(self) -> bool:
        """Whether it runs (``running`` or ``paused`` counts as up)."""
        return self.container.state in ("running", "paused")

    @property
    def set_aside(self) -> bool:
        """It was renamed aside by an apply that never finished."""
        return is_old_name(self.name)

    @property
    def image_id(self) -> str:
        """The id of the image it runs, without ``sha256:``."""
        attrs = self.container.attrs
        ident = attrs.get("ImageID") if "ImageID" in attrs else attrs.get("Image")
        return str(ident or "").removeprefix("sha256:")


def _replica(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _named_service(project: str, name: str, position: Mapping[str, int]
                   ) -> tuple[str, int] | None:
    """The (service, replica) Bolt's naming gives ``name``, among ``position``'s services.

    A name is one of at most two readings (``{project}_{service}``, or
    ``{project}_{service}_{i}``), each looked up rather than tried against every service:
    a project of thousands of services stays linear. When both readings name a service
    (services ``web`` and ``web_2``), the one listed first wins.
    """
    prefix = f"{project}_"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    readings = [(rest, 1)] if rest in position else []
    base, _, number = rest.rpartition("_")
    if base in position and replica_of_name(project, base, name) is not None:
        readings.append((base, int(number)))
    return min(readings, key=lambda reading: position[reading[0]]) if readings else None


async def observe_containers(environment: Environment, project: str,
                             services: Collection[str]) -> list[ObservedContainer]:
    """The project's containers on ``environment``, running or not, sorted by name.

    Parameters
    ----------
    environment
        Where to look.
    project
        The project name.
    services
        Service names whose Bolt-named, unlabelled containers are adopted.
    """
    by_label, by_name = await asyncio.gather(
        environment.containers.list(all=True,
                                    filters={"label": [f"{LABEL_PROJECT}={project}"]}),
        environment.containers.list(all=True, filters={"name": [re.escape(f"{project}_")]}))
    found: dict[str, ObservedContainer] = {}
    for container in by_label:
        labels = container.labels
        found[container.id] = ObservedContainer(
            container, service=labels.get(LABEL_SERVICE),
            replica=_replica(labels.get(LABEL_REPLICA)),
            config_hash=labels.get(LABEL_CONFIG_HASH), managed=True)
    position = {service: index for index, service in enumerate(services)}
    candidates: list[tuple[Container, str, int]] = []
    for container in by_name:
        if container.id in found:
            continue
        named = _named_service(project, container.name, position)
        if named is not None:
            candidates.append((container, *named))
    for container, _, _ in candidates:
        await container.reload()  # the listing has no Config (command) to compare
    for container, service, replica in candidates:
        found[container.id] = ObservedContainer(container, service=service, replica=replica,
                                                config_hash=None, managed=False)
    return sorted(found.values(), key=lambda seen: seen.name)


@dataclass(frozen=True)
class ProjectResources:
    """The networks and volumes on one engine that a project may use.

    Attributes
    ----------
    networks
        Every network by name (the project's and others: a declared one may exist
        already).
    volumes
        Every volume by name.
    project_networks, project_volumes
        Names of those labelled with the project.
    """

    networks: dict[str, Network]
    volumes: dict[str, Volume]
    project_networks: frozenset[str]
    project_volumes: frozenset[str]


async def observe_resources(environment: Environment, project: str) -> ProjectResources:
    """The networks and volumes of ``environment`` (two listings)."""
    networks, volumes = await asyncio.gather(environment.networks.list(),
                                             environment.volumes.list())
    return ProjectResources(
        networks={n.name: n for n in networks}, volumes={v.name: v for v in volumes},
        project_networks=frozenset(n.name for n in networks
                                   if n.labels.get(LABEL_PROJECT) == project),
        project_volumes=frozenset(v.name for v in volumes
                                  if v.labels.get(LABEL_PROJECT) == project))
