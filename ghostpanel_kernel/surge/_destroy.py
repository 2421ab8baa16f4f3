"""Destroy: remove a project from environments.

Removed: every container labelled with the project (set-aside ones included) and, when a
Boltfile is given, the unlabelled ones its services' names adopt; then the networks
labelled with the project. Named volumes hold data, so they go only with
``volumes=True`` (as ``docker compose down -v``). External networks and volumes carry
no label and are never touched.

A removal cannot be undone, so destroy is not all-or-nothing: every environment is
cleaned as far as it goes (one host's environments in turn, hosts in parallel) and the
result reports each environment's error. Each environment is cleaned under the
project's lock (see :mod:`~ghostpanel_kernel.surge._lock`), so a destroy never races an
apply: where another run holds it, that environment fails and is left as it is.

A removed container that was created with GPUs (it bears the
``io.ghostpanel.gpu.workload`` label) releases its reservation: what is bound to it and
what its workload holds (see :mod:`~ghostpanel_kernel.surge._gpus`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..bolt import Boltfile
from ..engine import Environment, NotFound
from ._apply import DEFAULT_STOP_TIMEOUT, LABEL_GPU_WORKLOAD
from ._gpus import GpuAllocatorFactory, GpuBroker
from ._hosts import run_per_host
from ._lock import RunIdentity, acquire_lock, release_lock
from ._naming import LABEL_PROJECT
from ._observe import observe_containers
from ._plan import Action, EnvironmentPlan, SurgePlan
from ._progress import ProgressCallback, ProgressReporter
from ._result import Outcome, SurgeResult

__all__ = ["destroy_surge"]


async def destroy_surge(target: Boltfile | str, environments: Sequence[Environment], *,
                        volumes: bool = False, stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                        progress: ProgressCallback | None = None,
                        break_lock: bool = False,
                        gpu_allocators: GpuAllocatorFactory | None = None) -> SurgeResult:
    """Remove the project's containers and networks (and volumes) from ``environments``.

    Parameters
    ----------
    target
        The Boltfile (its ``project``, and its service names for adopted containers),
        or only the project name (then only labelled resources are found). The
        Boltfile is not validated: a broken file can still be destroyed.
    environments
        Open environments.
    volumes
        Also remove the project's named volumes (their data is lost).
    stop_timeout
        Seconds each container may take to stop before it is killed.
    progress
        Called after each removal with a :class:`SurgeProgress`.
    break_lock
        Take the project's lock even where another run holds it.
    gpu_allocators
        Opens the GPU allocator of an environment's host, to release what removed GPU
        containers held (default: this host's); only called where there is one.

    Returns
    -------
    SurgeResult
        Its plan lists what was removed, per environment.

    Examples
    --------
    >>> result = await destroy_surge("shop", [east, west], volumes=True)   # doctest: +SKIP
    """
    if isinstance(target, Boltfile):
        project = target.project
        services = target.services
        if not project:
            raise ValueError(f"{target.path} has no project name to destroy")
    else:
        project, services = target, []
    label = {"label": [f"{LABEL_PROJECT}={project}"]}
    plans: dict[str, EnvironmentPlan] = {}
    reporter = ProgressReporter(progress, 0)
    identity = RunIdentity("destroy")
    gpus = GpuBroker(gpu_allocators)

    async def destroy(environment: Environment) -> None:
        lock = await acquire_lock(environment, project, identity, break_lock=break_lock,
                                  report=lambda message: reporter.note(environment.name,
                                                                       message))
        try:
            await destroy_locked(environment)
        finally:
            await release_lock(lock)

    async def destroy_locked(environment: Environment) -> None:
        name = environment.name
        observed = await observe_containers(environment, project, services)
        networks = await environment.networks.list(filters=label)
        found_volumes = await environment.volumes.list(filters=label) if volumes else []
        actions = [Action("remove", seen.service or "", seen.name,
                          "project container" if seen.managed else "adopted by name",
                          replica=seen.replica or 0, container_id=seen.container.id,
                          running=seen.running) for seen in observed]
        actions += [Action("remove", "", n.name, "project network", resource="network")
                    for n in networks]
        actions += [Action("remove", "", v.name, "project volume", resource="volume")
                    for v in found_volumes]
        plans[name] = EnvironmentPlan(name, tuple(actions))
        reporter.total += len(actions)
        released: list[tuple[str, str]] = []
        for seen in observed:
            with contextlib.suppress(NotFound):
                if seen.running:
                    await seen.container.stop(timeout=stop_timeout)
                await seen.container.remove(force=True)
            workload = seen.container.labels.get(LABEL_GPU_WORKLOAD)
            if workload is not None:
                released.append((seen.container.id, workload))
            reporter.done(name, f"removed {seen.name}")
        await gpus.release(environment, released)
        for network in networks:
            with contextlib.suppress(NotFound):
                await network.remove()
            reporter.done(name, f"removed network {network.name}")
        for volume in found_volumes:
            with contextlib.suppress(NotFound):
                await volume.remove(force=True)
            reporter.done(name, f"removed volume {volume.name}")

    try:
        errors = await run_per_host(environments, destroy)
    finally:
        gpus.close()
    plan = SurgePlan(project, tuple(plans.get(env.name, EnvironmentPlan(env.name))
                                    for env in environments))
    outcomes: dict[str, Outcome] = {}
    for env_plan in plan.environments:
        name = env_plan.environment
        outcomes[name] = "failed" if name in errors else \
            "applied" if env_plan.actions else "unchanged"
    return SurgeResult(project, plan, outcomes, errors=errors)
