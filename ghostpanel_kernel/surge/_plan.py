"""Plan: the Boltfile against what runs, per environment, as a list of actions.

For each selected environment (read in parallel; a plan changes nothing) every container
the placement wants there is compared with what the engine has under that name:

``create``     nothing of that name runs there;
``recreate``   it runs with another config hash (or, with ``pull``, another image id than
               the reference now names; or, adopted, another image or command);
``start``      it is as wanted but not running;
``unchanged``  it is as wanted and running (an adopted container whose image and command
               match stays as it is, unlabelled);
``remove``     a container of the project no longer wanted there (service gone, fewer
               replicas, placed elsewhere, set aside by an interrupted apply), or a
               project network no service uses any more.

Networks and named volumes the services use and the engine lacks are ``create``
actions of their own (``resource`` ``network``/``volume``); volumes are never removed
by a plan. An environment that cannot be read gets its error instead of actions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..bolt import Boltfile
from ..engine import Environment, NotFound
from ._desired import DesiredState, ServiceSpec, desired_state
from ._errors import SurgeError
from ._gaming import describe_request
from ._gpus import GpuAllocatorFactory, GpuBroker
from ._observe import ObservedContainer, observe_containers, observe_resources
from ._placement import Placement, Slot, check_placement, place

if TYPE_CHECKING:
    from ..gpus import GpuRequest

__all__ = [
    "Action",
    "ActionKind",
    "EnvironmentPlan",
    "SurgePlan",
    "build_plan",
    "plan_surge",
    "same_image",
]

ActionKind = Literal["create", "recreate", "start", "remove", "unchanged"]
Resource = Literal["container", "network", "volume"]


@dataclass(frozen=True)
class Action:
    """One thing a plan does (or leaves) on one environment.

    Attributes
    ----------
    kind
        ``create``, ``recreate``, ``start``, ``remove`` or ``unchanged``.
    service
        The service (``""`` for a network or volume).
    container
        The container's name (the network's or volume's for those).
    reason
        Why, in words.
    resource
        ``container``, ``network`` or ``volume``.
    replica
        The replica number (0 for a network or volume).
    container_id
        The existing container's id (every kind but ``create``).
    running
        Whether the existing container was running.
    gpus
        The GPUs the container holds or will hold, in words (``GPU 0, exclusive``);
        empty for a service without GPUs.

    Examples
    --------
    >>> Action("create", "web", "shop_web", "new").to_dict()["kind"]
    'create'
    """

    kind: ActionKind
    service: str
    container: str
    reason: str
    resource: Resource = "container"
    replica: int = 0
    container_id: str = ""
    running: bool = False
    gpus: str = ""

    @property
    def changes(self) -> bool:
        """Whether applying it changes the engine."""
        return self.kind != "unchanged"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``surge plan --json``)."""
        data: dict[str, Any] = {
            "kind": self.kind, "service": self.service, "container": self.container,
            "reason": self.reason, "resource": self.resource, "replica": self.replica,
            "container_id": self.container_id}
        if self.gpus:  # only GPU containers carry it
            data["gpus"] = self.gpus
        return data


@dataclass(frozen=True)
class EnvironmentPlan:
    """The plan for one environment: its actions, or why it could not be planned."""

    environment: str
    actions: tuple[Action, ...] = ()
    error: BaseException | None = None

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that change something."""
        return tuple(a for a in self.actions if a.changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``surge plan --json``)."""
        return {"environment": self.environment,
                "actions": [a.to_dict() for a in self.actions],
                "error": None if self.error is None else str(self.error)}


@dataclass(frozen=True)
class SurgePlan:
    """What applying a Boltfile would do, per environment.

    Examples
    --------
    >>> plan = await plan_surge(Boltfile.load("Boltfile.toml"), [east, west])  # doctest: +SKIP
    >>> [(a.kind, a.container) for a in plan.environments[0].actions]        # doctest: +SKIP
    [('create', 'shop_default'), ('create', 'shop_web')]
    """

    project: str
    environments: tuple[EnvironmentPlan, ...]
    state: DesiredState | None = field(default=None, repr=False, compare=False)
    placement: Placement | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Every environment could be planned."""
        return all(p.error is None for p in self.environments)

    @property
    def changes(self) -> bool:
        """Applying it would change something somewhere."""
        return any(p.changes for p in self.environments)

    def for_environment(self, name: str) -> EnvironmentPlan:
        """The plan of environment ``name``."""
        for plan in self.environments:
            if plan.environment == name:
                return plan
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``surge plan --json``)."""
        return {"project": self.project,
                "environments": [p.to_dict() for p in self.environments]}


def _normalized_image(reference: str) -> str:
    reference = reference.removeprefix("docker.io/").removeprefix("library/")
    last = reference.rsplit("/", 1)[-1]
    if "@" not in reference and ":" not in last:
        reference += ":latest"
    return reference


def same_image(a: str, b: str) -> bool:
    """Whether two image references name the same image (``busybox`` and
    ``docker.io/library/busybox:latest`` do).

    Examples
    --------
    >>> same_image("busybox", "docker.io/library/busybox:latest")
    True
    """
    return _normalized_image(a) == _normalized_image(b)


def _adopted_difference(seen: ObservedContainer, spec: ServiceSpec) -> str | None:
    config = seen.container.attrs.get("Config") or {}
    image = str(config.get("Image") or seen.container.image)
    if not same_image(image, spec.image):
        return f"adopted container runs image {image}, the Boltfile {spec.image}"
    wanted = spec.create.get("command")
    if wanted is not None and list(config.get("Cmd") or []) != list(wanted):
        return f"adopted container runs {config.get('Cmd')}, the Boltfile {list(wanted)}"
    return None


def _container_action(slot: Slot, spec: ServiceSpec, seen: ObservedContainer | None,
                      image_ids: Mapping[str, str]) -> Action:
    def action(kind: ActionKind, reason: str) -> Action:
        return Action(kind, slot.service, slot.name, reason, replica=slot.replica,
                      container_id="" if seen is None else seen.container.id,
                      running=seen is not None and seen.running)

    if seen is None:
        of = f"replica {slot.replica} of {spec.replicas}" if spec.replicas > 1 else "service"
        return action("create", f"new {of}")
    if seen.managed:
        if seen.service != spec.name:
            return action("recreate", f"the container runs service `{seen.service}`")
        if seen.config_hash != spec.config_hash:
            return action("recreate", f"configuration changed (hash "
                          f"{(seen.config_hash or '')[:12]} -> {spec.config_hash[:12]})")
        wanted_id = image_ids.get(spec.image)
        if wanted_id and seen.image_id and wanted_id != seen.image_id:
            return action("recreate", f"image changed ({spec.image} is now "
                          f"{wanted_id[:12]}, the container runs {seen.image_id[:12]})")
        if not seen.running:
            return action("start", f"up to date but {seen.container.state}")
        return action("unchanged", "up to date")
    difference = _adopted_difference(seen, spec)
    if difference is not None:
        return action("recreate", difference)
    if not seen.running:
        return action("start", f"adopted (image and command match), {seen.container.state}")
    return action("unchanged", "adopted: image and command match")


def _removal_reason(seen: ObservedContainer, state: DesiredState) -> str:
    if seen.set_aside:
        return "set aside by an apply that did not finish"
    spec = state.services.get(seen.service or "")
    if spec is None:
        return f"service `{seen.service}` is no longer in the Boltfile"
    if spec.replicas == 0:
        return f"service `{spec.name}` is scaled to 0"
    if seen.replica is not None and seen.replica > spec.replicas:
        return f"replica {seen.replica} is beyond replicas = {spec.replicas}"
    if seen.replica is not None and seen.name != spec.container_name(state.project,
                                                                     seen.replica):
        return f"renamed: `{spec.name}` now runs {spec.replicas} replica(s)"
    return "placed on another environment"


def gpu_workloads(state: DesiredState, actions: Sequence[Action]
                  ) -> list[tuple[str, GpuRequest]]:
    """The ``(workload, request)`` pairs of the GPU containers ``actions`` create or
    recreate: the workload is the container's name."""
    wanted: list[tuple[str, GpuRequest]] = []
    for action in actions:
        spec = state.services.get(action.service)
        if action.resource == "container" and action.kind in ("create", "recreate") and \
                spec is not None and spec.gpu is not None:
            wanted.append((action.container, spec.gpu))
    return wanted


async def _plan_environment(environment: Environment, state: DesiredState,
                            slots: Sequence[Slot], *, pull: bool,
                            gpus: GpuBroker | None = None) -> EnvironmentPlan:
    observed, resources = await asyncio.gather(
        observe_containers(environment, state.project, list(state.services)),
        observe_resources(environment, state.project))
    actions: list[Action] = []
    for network in state.networks.values():
        if network.name in resources.networks:
            continue
        if network.external:
            raise SurgeError(f"external network {network.name!r} does not exist on "
                             f"{environment.name!r}")
        actions.append(Action("create", "", network.name, "network the services join",
                              resource="network"))
    for volume in state.volumes.values():
        if volume.name in resources.volumes:
            continue
        if volume.external:
            raise SurgeError(f"external volume {volume.name!r} does not exist on "
                             f"{environment.name!r}")
        actions.append(Action("create", "", volume.name, "named volume the services mount",
                              resource="volume"))
    image_ids: dict[str, str] = {}
    if pull:
        for image in state.images:
            try:
                found = await environment.images.get(image)
            except NotFound:
                continue
            image_ids[image] = found.id.removeprefix("sha256:")
    by_name = {seen.name: seen for seen in observed}
    wanted = {slot.name for slot in slots}
    for slot in slots:
        actions.append(_container_action(slot, state.services[slot.service],
                                         by_name.get(slot.name), image_ids))
    for seen in observed:
        if seen.name not in wanted and (seen.managed or seen.set_aside):
            actions.append(Action("remove", seen.service or "", seen.name,
                                  _removal_reason(seen, state), replica=seen.replica or 0,
                                  container_id=seen.container.id, running=seen.running))
    used = set(state.networks)
    for name in sorted(resources.project_networks - used):
        actions.append(Action("remove", "", name, "no service uses this network any more",
                              resource="network"))
    actions = [_with_gpus(action, state) for action in actions]
    gpu_wanted = gpu_workloads(state, actions)
    if gpu_wanted:
        # Before anything is created: a request the host cannot meet fails the plan.
        broker = gpus or GpuBroker()
        try:
            await broker.check(environment, gpu_wanted)
        finally:
            if gpus is None:
                broker.close()
    return EnvironmentPlan(environment.name, tuple(actions))


def _with_gpus(action: Action, state: DesiredState) -> Action:
    spec = state.services.get(action.service)
    if action.resource != "container" or spec is None or spec.gpu is None or \
            action.kind == "remove":
        return action
    return replace(action, gpus=describe_request(spec.gpu))


async def build_plan(state: DesiredState, environments: Sequence[Environment], *,
                     pull: bool = False, gpus: GpuBroker | None = None) -> SurgePlan:
    """Plan ``state`` on ``environments`` (see :func:`plan_surge`); ``gpus`` checks
    the GPU services against each host's allocator.

    Raises
    ------
    SurgeError
        The placement cannot be applied (see :func:`check_placement`).
    """
    described = [(env.name, env.labels) for env in environments]
    placement = place(state, described)
    check_placement(state, placement, described)

    async def one(environment: Environment) -> EnvironmentPlan:
        try:
            return await _plan_environment(environment, state,
                                           placement.slots[environment.name], pull=pull,
                                           gpus=gpus)
        except Exception as error:  # reported per environment, as fan-out does
            return EnvironmentPlan(environment.name, error=error)

    plans = await asyncio.gather(*(one(env) for env in environments))
    return SurgePlan(state.project, tuple(plans), state=state, placement=placement)


async def plan_surge(boltfile: Boltfile, environments: Sequence[Environment], *,
                     pull: bool = False,
                     gpu_allocators: GpuAllocatorFactory | None = None) -> SurgePlan:
    """What :func:`apply_surge` would do to ``environments``; changes nothing.

    Parameters
    ----------
    boltfile
        The project to deploy.
    environments
        Open environments; their ``region`` labels place services with ``regions``.
    pull
        Also compare each container's image id with what its reference names now
        (as ``apply(pull=True)`` does after pulling).
    gpu_allocators
        Opens the GPU allocator of an environment's host, for services with GPUs
        (default: this host's, see :mod:`~ghostpanel_kernel.surge._gpus`).

    Returns
    -------
    SurgePlan
        Per environment, its actions, or the error that kept it from being read.

    Raises
    ------
    SurgeError
        The Boltfile is invalid or cannot be applied as placed.

    Examples
    --------
    >>> plan = await plan_surge(Boltfile.load("Boltfile.toml"), [env])   # doctest: +SKIP
    >>> [(a.kind, a.container, a.reason) for a in plan.environments[0].actions]
    ...                                                                   # doctest: +SKIP
    [('create', 'shop_default', 'network the services join'), ...]
    """
    names = [env.name for env in environments]
    if len(set(names)) != len(names):
        raise ValueError(f"environments must have distinct names: {names}")
    broker = GpuBroker(gpu_allocators)
    try:
        return await build_plan(desired_state(boltfile), environments, pull=pull,
                                gpus=broker)
    finally:
        broker.close()
