"""Adopt a stack Bolt's CLI started: write a Boltfile for it, then let Surge manage it.

Bolt's CLI names a stack's containers ``{project}_{service}`` (``_{i}`` for replicas)
and labels nothing (see :mod:`~ghostpanel_kernel.surge._projects`). Adoption is two
steps, each shown before it is done:

1. :func:`describe_adoption` reads the containers (inspect, and their images' inspect
   for what the image itself sets) and writes the Boltfile that runs them as they run:
   image; command and entrypoint where they differ from the image's; environment
   variables the operator set (not the image's, nor the engine's ``HOSTNAME``,
   ``HOME``, ``container``, ``TERM``); labels not inherited from the image; published
   ports; named volumes (declared ``external`` under their own names, so that Surge
   mounts the very volumes that hold the data, and never removes them) and host
   paths; restart policy; CPU and memory limits; ``tty``/``stdin_open``; replicas.
   What a Boltfile cannot say, or what adoption will change, is in
   :attr:`Adoption.notes` (a port published on one host address only; the services
   move from the engine's default network to the project's ``{project}_default``,
   where they reach each other by service name).
2. :func:`adopt_stack` applies that Boltfile to the one environment, with one change
   to Surge's usual plan (:func:`plan_adoption`): Surge would keep a Bolt-named
   container whose image and command match *unlabelled* ("adopted"), but an engine
   cannot add labels to an existing container, and without Surge's labels the stack
   is not a Surge project. So every such container is **recreated** -- same image,
   same settings, now labelled -- through Surge's apply (set aside, create, start,
   then remove the old one; rolled back if anything fails, under the project's lock).
   A recreated container loses what it wrote outside its volumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import tomlkit

from ..bolt import Boltfile
from ..engine import Container, Environment, NotFound
from ._apply import DEFAULT_HEALTH_TIMEOUT, DEFAULT_STOP_TIMEOUT, execute_plan
from ._desired import desired_state
from ._errors import SurgeError
from ._lock import RunIdentity, release_locks, take_locks
from ._observe import observe_containers
from ._plan import EnvironmentPlan, SurgePlan, build_plan
from ._progress import ProgressCallback
from ._projects import bolt_member
from ._result import SurgeResult

__all__ = ["ADOPT_REASON", "Adoption", "adopt_stack", "boltfile_text", "describe_adoption",
           "plan_adoption"]

#: Why a matching Bolt container is recreated by an adoption (the plan's reason).
ADOPT_REASON = ("adopted: recreated with the same image and settings to carry Surge's "
                "labels (an engine cannot relabel a container)")

# Set by the engine in every container, whatever was asked.
_ENGINE_ENV = frozenset({"HOSTNAME", "HOME", "container"})
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ANY_ADDRESS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Adoption:
    """A Bolt stack on one environment, and the Boltfile that would run it as it runs.

    Attributes
    ----------
    project
        The project name.
    environment
        Where the stack runs.
    containers
        Its containers' names, sorted.
    text
        The Boltfile (TOML) :func:`describe_adoption` wrote.
    notes
        What the Boltfile cannot say, or what adopting changes, in words.
    """

    project: str
    environment: str
    containers: tuple[str, ...]
    text: str
    notes: tuple[str, ...] = ()


def _env_table(container_env: Sequence[str], image_env: Sequence[str]) -> dict[str, str]:
    inherited = set(image_env)
    table: dict[str, str] = {}
    for entry in container_env:
        key, _, value = entry.partition("=")
        if entry in inherited or key in _ENGINE_ENV or \
                (key, value) in (("PATH", _DEFAULT_PATH), ("TERM", "xterm")):
            continue  # the image's, or what the engine sets in every container
        table[key] = value
    return table


def _ports(bindings: Mapping[str, Any] | None, where: str, notes: list[str]) -> list[str]:
    ports = []
    for key, hosts in sorted((bindings or {}).items()):
        port, _, protocol = key.partition("/")
        for host in hosts or []:
            if not host.get("HostPort"):
                continue
            address = host.get("HostIp") or ""
            if address not in _ANY_ADDRESS:
                notes.append(f"{where}: port {host['HostPort']} is published on "
                             f"{address} only; a Boltfile publishes on every address")
            suffix = "" if protocol in ("", "tcp") else f"/{protocol}"
            ports.append(f"{host['HostPort']}:{port}{suffix}")
    return ports


def _mounts(mounts: Sequence[Mapping[str, Any]], volumes: dict[str, dict[str, Any]],
            where: str, notes: list[str]) -> list[str]:
    found = []
    for mount in mounts:
        option = "" if mount.get("RW", True) else ":ro"
        if mount.get("Type") == "volume" and mount.get("Name"):
            name = str(mount["Name"])
            # Declared external under its own name: Surge mounts this very volume (not
            # a new "{project}_{name}") and never removes it.
            volumes[name] = {"name": name, "external": True}
            found.append(f"{name}:{mount['Destination']}{option}")
        elif mount.get("Type") == "bind":
            found.append(f"{mount['Source']}:{mount['Destination']}{option}")
        else:
            notes.append(f"{where}: the {mount.get('Type')} mount at "
                         f"{mount.get('Destination')} is left out (a Boltfile mounts named "
                         "volumes and host paths)")
    return found


def _restart(policy: Mapping[str, Any] | None) -> str | None:
    name = str((policy or {}).get("Name") or "")
    if name in ("always", "unless-stopped"):
        return name
    if name == "on-failure":
        retries = int((policy or {}).get("MaximumRetryCount") or 0)
        return f"on-failure:{retries}" if retries else "on-failure"
    return None


def service_table(container: Mapping[str, Any], image: Mapping[str, Any], where: str,
                  volumes: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, Any]:
    """A Boltfile service running what ``container`` (its inspect) runs.

    Parameters
    ----------
    container, image
        The container's and its image's inspect data.
    where
        The service's name, for the notes.
    volumes
        Named volumes it mounts are added here (``[volumes.<name>]`` tables).
    notes
        What cannot be said in the Boltfile is added here.

    Examples
    --------
    >>> inspect = {"Config": {"Image": "busybox", "Cmd": ["sleep", "9"], "Env": ["A=1"]},
    ...            "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}
    >>> service_table(inspect, {"Config": {"Cmd": ["sh"]}}, "web", {}, [])
    {'image': 'busybox', 'command': ['sleep', '9'], 'env': {'A': '1'}, 'ports': ['8080:80']}
    """
    config = container.get("Config") or {}
    host = container.get("HostConfig") or {}
    image_config = image.get("Config") or {}
    table: dict[str, Any] = {"image": str(config.get("Image") or container.get("Image"))}
    for key, engine_key in (("entrypoint", "Entrypoint"), ("command", "Cmd")):
        value = list(config.get(engine_key) or [])
        if value and value != list(image_config.get(engine_key) or []):
            table[key] = value
    env = _env_table(config.get("Env") or [], image_config.get("Env") or [])
    if env:
        table["env"] = env
    image_labels = image_config.get("Labels") or {}
    labels = {k: v for k, v in (config.get("Labels") or {}).items()
              if image_labels.get(k) != v}
    if labels:
        table["labels"] = labels
    ports = _ports(host.get("PortBindings"), where, notes)
    if ports:
        table["ports"] = ports
    mounts = _mounts(container.get("Mounts") or [], volumes, where, notes)
    if mounts:
        table["volumes"] = mounts
    restart = _restart(host.get("RestartPolicy"))
    if restart:
        table["restart"] = restart
    if host.get("NanoCpus"):
        table["cpu_limit"] = f"{int(host['NanoCpus']) / 1e9:g}"
    if host.get("Memory"):
        table["memory_limit"] = str(int(host["Memory"]))
    user = str(config.get("User") or "")
    if user and user != str(image_config.get("User") or ""):
        table["user"] = user
    for key, engine_key in (("tty", "Tty"), ("stdin_open", "OpenStdin")):
        if config.get(engine_key):
            table[key] = True
    return table


def boltfile_text(project: str, services: Mapping[str, Mapping[str, Any]],
                  volumes: Mapping[str, Mapping[str, Any]]) -> str:
    """The Boltfile (TOML) of ``services`` and ``volumes`` (tables, in that order).

    Examples
    --------
    >>> print(boltfile_text("shop", {"web": {"image": "busybox"}}, {}), end="")
    project = "shop"
    <BLANKLINE>
    [services.web]
    image = "busybox"
    """
    document = tomlkit.document()
    document["project"] = project
    services_table = tomlkit.table(is_super_table=True)
    for name, table in services.items():
        services_table[name] = table
    document["services"] = services_table
    if volumes:
        volumes_table = tomlkit.table(is_super_table=True)
        for name, table in volumes.items():
            volumes_table[name] = table
        document["volumes"] = volumes_table
    return tomlkit.dumps(document)


async def _image_attrs(environment: Environment, reference: str,
                       cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if reference not in cache:
        try:
            cache[reference] = (await environment.images.get(reference)).attrs
        except NotFound:  # the image is gone: nothing is known to come from it
            cache[reference] = {}
    return cache[reference]


async def describe_adoption(environment: Environment, project: str) -> Adoption:
    """The Boltfile that runs the Bolt stack ``project`` on ``environment`` as it runs.

    Raises
    ------
    KeyError
        No container there is named like one of ``project``'s (and unlabelled).

    Examples
    --------
    >>> adoption = await describe_adoption(env, "legacy")               # doctest: +SKIP
    >>> print(adoption.text)                                           # doctest: +SKIP
    """
    members: dict[str, list[tuple[int, Container]]] = {}
    for container in await environment.containers.list(all=True):
        found = bolt_member(environment.name, container, project)
        if found is not None:
            member = found[1]
            members.setdefault(member.service, []).append((member.replica, container))
    if not members:
        raise KeyError(f"no container on {environment.name!r} is named like a service of "
                       f"Bolt stack {project!r} ({project}_<service>) without Surge's labels")
    notes: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, Any]] = {}
    images: dict[str, dict[str, Any]] = {}
    names: list[str] = []
    for service, replicas in sorted(members.items()):
        replicas.sort(key=lambda pair: pair[0])
        await asyncio.gather(*(container.reload() for _, container in replicas))
        first = replicas[0][1]
        image = await _image_attrs(environment, first.image, images)
        table = service_table(first.attrs, image, service, volumes, notes)
        if len(replicas) > 1:
            table["replicas"] = len(replicas)
        services[service] = table
        names += [container.name for _, container in replicas]
    notes.append(f"Surge runs the services on the network {project}_default, where they "
                 "reach each other by service name; today they are on the engine's "
                 "default network")
    text = boltfile_text(project, services, volumes)
    # What Surge would refuse is said now, before anything is written or recreated.
    desired_state(Boltfile.loads(text))
    return Adoption(project, environment.name, tuple(sorted(names)), text, tuple(notes))


async def plan_adoption(boltfile: Boltfile, environment: Environment) -> SurgePlan:
    """Surge's plan for ``boltfile`` on ``environment``, where each Bolt-named container
    Surge would keep unlabelled is recreated instead (see the module docstring).

    Raises
    ------
    SurgeError
        Surge refuses the Boltfile.
    """
    state = desired_state(boltfile)
    plan = await build_plan(state, [environment])
    env_plan = plan.environments[0]
    if env_plan.error is not None:
        return plan
    observed = await observe_containers(environment, state.project, list(state.services))
    unlabelled = {seen.container.id for seen in observed if not seen.managed}
    actions = tuple(
        replace(action, kind="recreate", reason=ADOPT_REASON)
        if action.resource == "container" and action.kind in ("unchanged", "start")
        and action.container_id in unlabelled else action
        for action in env_plan.actions)
    return replace(plan, environments=(replace(env_plan, actions=actions),))


async def adopt_stack(boltfile: Boltfile, environment: Environment, *,
                      progress: ProgressCallback | None = None,
                      stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                      health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> SurgeResult:
    """Make Surge manage the Bolt stack ``boltfile`` describes on ``environment``.

    Carries out :func:`plan_adoption` as an apply does (under the project's lock, all
    or nothing); afterwards the containers carry Surge's labels (and the Boltfile's
    path, when it was read from a file).

    Raises
    ------
    SurgeError
        Surge refuses the Boltfile; nothing was touched.
    """
    state = desired_state(boltfile)
    if not state.source:
        raise SurgeError("save the adopted Boltfile to a file first: the stack's "
                         "containers record where it is")
    identity = RunIdentity("adopt")
    held: dict[str, Container | None] = {}
    notices: list[str] = []
    try:
        errors = await take_locks([environment], state.project, identity, held,
                                  images=state.images, break_lock=False, notices=notices)
        if errors:
            result = SurgeResult(state.project, SurgePlan(state.project, (
                EnvironmentPlan(environment.name),)), {environment.name: "failed"},
                errors=errors)
        else:
            plan = await plan_adoption(boltfile, environment)
            result = await execute_plan(state, plan, [environment], progress=progress,
                                        stop_timeout=stop_timeout,
                                        health_timeout=health_timeout, identity=identity)
    finally:
        notices += await release_locks([environment], held, state.project)
    return replace(result, warnings=(*notices, *result.warnings))
