"""Apply and scale: carry out a plan on every environment, all or nothing.

An apply runs in four phases:

1. **Prepare** (all environments at once): with ``pull``, pull every image that does not
   live only on the host (``localhost/...`` references name local images: nothing to
   pull); make sure each image to run is there, pulling a missing one. A failure here
   has changed nothing.
2. **Plan** (:func:`~ghostpanel_kernel.surge._plan.build_plan`): an environment that
   cannot be read fails the apply before anything changes.
3. **Forward**, per environment (different hosts in parallel, one host's environments in
   turn, see :mod:`~ghostpanel_kernel.surge._hosts`): create the missing networks and
   volumes; containers of services that left the Boltfile are set aside; then service by
   service in ``depends_on`` order: the service's containers to replace or remove are
   stopped and renamed ``{name}-surge-old-{id}`` (*set aside*: their names and ports are
   free, they can come back), the new ones are created (labelled with project, service,
   replica, config hash), joined to their extra networks and started, stopped ones
   started; a service with a healthcheck must be healthy (bounded wait, see
   :mod:`~ghostpanel_kernel.surge._health`) before the next service starts. Each change
   is journalled (:class:`~ghostpanel_kernel.surge._journal.Journal`) as the engine
   makes it. When an environment fails, the others stop at their next step.
4. **Commit or roll back**: if every environment succeeded, the set-aside containers and
   the networks no service uses any more are removed (a failure there is only a
   warning: the new state already runs). If any failed -- or the apply was cancelled --
   every environment's journal is rolled back: what this apply created is removed and
   what it set aside is renamed back and restarted if it was running. Nothing
   half-made stays, and the result says which environment failed and why.

An invalid Boltfile raises :class:`SurgeError` before phase 1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from ..bolt import Boltfile
from ..engine import Container, Environment, GhostPanelError, NotFound
from ._desired import DesiredState, ServiceSpec, desired_state
from ._health import wait_healthy
from ._hosts import run_per_host
from ._journal import Journal
from ._naming import LABEL_CONFIG_HASH, LABEL_PROJECT, is_old_name, old_name
from ._plan import Action, EnvironmentPlan, SurgePlan, build_plan
from ._progress import ProgressCallback, ProgressReporter
from ._result import Outcome, SurgeResult

__all__ = ["DEFAULT_HEALTH_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "MissingImage", "apply_surge",
           "execute_plan", "scale_surge"]

#: Seconds a container may take to stop before it is killed (Docker's default).
DEFAULT_STOP_TIMEOUT = 10
#: Seconds a service with a healthcheck may take to become healthy.
DEFAULT_HEALTH_TIMEOUT = 60.0


class MissingImage(GhostPanelError):
    """An image to run is not on the environment and cannot be pulled."""


class _Aborted(Exception):
    """Another environment failed: this one stops at its next step."""


def _is_local_image(reference: str) -> bool:
    # Podman names imported and locally built images localhost/...: no registry serves
    # them ("localhost:5000/..." is a registry and is pulled as any other).
    return reference.startswith("localhost/")


def _remover(container: Container) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await container.remove(force=True)
    return remove


def _stopper(container: Container, timeout: int) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        await container.stop(timeout=timeout)
    return stop


def _restorer(container: Container, name: str, running: bool
              ) -> Callable[[], Awaitable[None]]:
    async def restore() -> None:
        await container.reload()
        if container.name != name:
            await container.rename(name)
        if running:
            await container.start()
    return restore


def _network_remover(environment: Environment, name: str) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await (await environment.networks.get(name)).remove()
    return remove


def _volume_remover(environment: Environment, name: str) -> Callable[[], Awaitable[None]]:
    async def remove() -> None:
        with contextlib.suppress(NotFound):
            await (await environment.volumes.get(name)).remove(force=True)
    return remove


def step_count(plan: EnvironmentPlan, state: DesiredState) -> int:
    """Progress steps an environment's plan takes (see :class:`SurgeProgress`)."""
    steps = 0
    for action in plan.changes:
        if action.resource != "container":
            steps += action.kind == "create"
            continue
        steps += 2 if action.kind == "recreate" else 1
        spec = state.services.get(action.service)
        if action.kind in ("create", "recreate", "start") and spec and spec.healthcheck:
            steps += 1
    return steps + (1 if plan.changes else 0)


@dataclass
class _Run:
    """One apply in progress: its plan, journals and what it set aside."""

    state: DesiredState
    plan: SurgePlan
    reporter: ProgressReporter
    stop_timeout: int
    health_timeout: float
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    journals: dict[str, Journal] = field(default_factory=dict)
    aside: dict[str, list[Container]] = field(default_factory=dict)

    def check(self) -> None:
        if self.abort.is_set():
            raise _Aborted("stopped: another environment failed")


async def _create_container(run: _Run, environment: Environment, journal: Journal,
                            spec: ServiceSpec, action: Action) -> Container:
    name = action.container
    labels = spec.labels(run.state.project, action.replica)
    try:
        container = await environment.containers.create(
            name=name, **{**spec.create, "labels": labels})
    except BaseException:
        # The engine may have made it before the answer was lost: remove what is ours.
        with contextlib.suppress(Exception):
            made = await environment.containers.get(name)
            if made.labels.get(LABEL_CONFIG_HASH) == spec.config_hash and \
                    made.labels.get(LABEL_PROJECT) == run.state.project:
                await made.remove(force=True)
        raise
    journal.record("created", f"create {name}", _remover(container))
    for network, aliases in spec.networks:
        await (await environment.networks.get(network)).connect(container.id,
                                                                aliases=list(aliases))
    await container.start()
    return container


async def _set_aside(run: _Run, environment: Environment, journal: Journal,
                     action: Action) -> None:
    container = await environment.containers.get(action.container_id)
    running = container.state in ("running", "paused")
    original = container.name
    journal.record("set-aside", f"set aside {original}",
                   _restorer(container, original, running))
    if running:
        await container.stop(timeout=run.stop_timeout)
    await container.rename(old_name(original, container.id))
    run.aside.setdefault(environment.name, []).append(container)
    run.reporter.done(environment.name, f"stopped and set aside {original}")


async def _forward(run: _Run, environment: Environment) -> None:
    name = environment.name
    plan = run.plan.for_environment(name)
    journal = run.journals.setdefault(name, Journal(name))
    changes = plan.changes
    state = run.state
    for action in changes:
        if action.resource == "container" or action.kind != "create":
            continue
        run.check()
        labels = {LABEL_PROJECT: state.project}
        if action.resource == "network":
            network = state.networks[action.container]
            await environment.networks.create(
                network.name, driver=network.driver, internal=network.internal,
                labels={**network.labels, **labels}, subnet=network.subnet,
                gateway=network.gateway, options=network.options)
            journal.record("resource", f"create network {network.name}",
                           _network_remover(environment, network.name))
        else:
            volume = state.volumes[action.container]
            await environment.volumes.create(volume.name, driver=volume.driver,
                                             driver_opts=volume.driver_opts,
                                             labels={**volume.labels, **labels})
            journal.record("resource", f"create volume {volume.name}",
                           _volume_remover(environment, volume.name))
        run.reporter.done(name, f"created {action.resource} {action.container}")
    containers = [a for a in changes if a.resource == "container"]
    for action in containers:  # services gone from the Boltfile, and leftovers
        if action.kind == "remove" and action.service not in state.services:
            run.check()
            if is_old_name(action.container):
                run.reporter.done(name, f"{action.container} is removed at the end")
            else:
                await _set_aside(run, environment, journal, action)
    for spec in state.services.values():
        mine = sorted((a for a in containers if a.service == spec.name),
                      key=lambda a: a.replica)
        for action in mine:
            if action.kind in ("recreate", "remove"):
                run.check()
                if is_old_name(action.container):
                    run.reporter.done(name, f"{action.container} is removed at the end")
                else:
                    await _set_aside(run, environment, journal, action)
        started: list[Container] = []
        for action in mine:
            run.check()
            if action.kind == "start":
                container = await environment.containers.get(action.container_id)
                await container.start()
                journal.record("started", f"start {action.container}",
                               _stopper(container, run.stop_timeout))
            elif action.kind in ("create", "recreate"):
                container = await _create_container(run, environment, journal, spec, action)
            else:
                continue
            started.append(container)
            run.reporter.done(name, f"started {action.container}")
        check = spec.healthcheck
        if check is None:
            continue
        for container in started:  # healthy before the next service starts
            run.check()
            await wait_healthy(environment, container, check, timeout=run.health_timeout)
            run.reporter.done(name, f"{container.name} is healthy")


async def _commit(run: _Run, environment: Environment) -> list[str]:
    """Remove what the successful apply replaced; return warnings."""
    name = environment.name
    plan = run.plan.for_environment(name)
    if not plan.changes:
        return []
    warnings: list[str] = []
    leftovers = [a for a in plan.changes
                 if a.resource == "container" and is_old_name(a.container)]
    doomed = list(run.aside.get(name, []))
    for action in leftovers:
        with contextlib.suppress(NotFound):
            doomed.append(await environment.containers.get(action.container_id))
    for container in doomed:
        try:
            with contextlib.suppress(NotFound):
                await container.remove(force=True)
        except Exception as error:  # the new state runs: a leftover is only a warning
            warnings.append(f"{name}: could not remove {container.name}: {error}")
    for action in plan.changes:
        if action.resource == "network" and action.kind == "remove":
            try:
                await _network_remover(environment, action.container)()
            except Exception as error:  # as above
                warnings.append(f"{name}: could not remove network {action.container}: "
                                f"{error}")
    run.reporter.done(name, "finished")
    return warnings


async def _ensure_images(environment: Environment, images: Sequence[str], *, pull: bool,
                         report: Callable[[str], None]) -> None:
    for reference in images:
        if pull and not _is_local_image(reference):
            report(f"pulling {reference}")
            await environment.images.pull(reference)
            continue
        try:
            await environment.images.get(reference)
        except NotFound:
            if _is_local_image(reference):
                raise MissingImage(f"image {reference} is not on {environment.name!r} and "
                                   "localhost/ images cannot be pulled; load or build it "
                                   "there first") from None
            report(f"pulling {reference} (missing)")
            await environment.images.pull(reference)


def _failed_result(plan: SurgePlan, errors: dict[str, BaseException]) -> SurgeResult:
    outcomes: dict[str, Outcome] = {
        p.environment: "failed" if p.environment in errors else "not-applied"
        for p in plan.environments}
    return SurgeResult(plan.project, plan, outcomes, errors=errors)


async def execute_plan(state: DesiredState, plan: SurgePlan,
                       environments: Sequence[Environment], *,
                       progress: ProgressCallback | None = None,
                       stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                       health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> SurgeResult:
    """Carry out ``plan`` (phases 3 and 4 of the module docstring)."""
    plan_errors = {p.environment: p.error for p in plan.environments if p.error is not None}
    if plan_errors:
        return _failed_result(plan, plan_errors)
    total = sum(step_count(p, state) for p in plan.environments)
    run = _Run(state, plan, ProgressReporter(progress, total), stop_timeout, health_timeout)
    changing = [env for env in environments if plan.for_environment(env.name).changes]

    async def forward(environment: Environment) -> None:
        try:
            await _forward(run, environment)
        except _Aborted:
            raise
        except Exception:
            run.abort.set()
            raise

    try:
        errors = await run_per_host(changing, forward)
    except BaseException:  # cancelled: undo everything, then let the cancellation go on
        await _rollback(run, environments)
        raise
    failed = {name: error for name, error in errors.items()
              if not isinstance(error, _Aborted)}
    if failed:
        touched = {name for name, journal in run.journals.items() if journal.entries}
        rollback_errors = await _rollback(run, environments)
        outcomes: dict[str, Outcome] = {}
        for env_plan in plan.environments:
            name = env_plan.environment
            if name in failed:
                outcomes[name] = "failed"
            elif name in touched:
                outcomes[name] = "rolled-back"
            else:
                outcomes[name] = "not-applied" if env_plan.changes else "unchanged"
        return SurgeResult(plan.project, plan, outcomes, errors=failed, rolled_back=True,
                           rollback_errors=tuple(rollback_errors))
    warnings: list[str] = []
    for environment in changing:
        warnings += await _commit(run, environment)
    outcomes = {p.environment: "applied" if p.changes else "unchanged"
                for p in plan.environments}
    return SurgeResult(plan.project, plan, outcomes, warnings=tuple(warnings))


async def _rollback(run: _Run, environments: Sequence[Environment]) -> list[str]:
    failures: list[str] = []

    async def undo(environment: Environment) -> None:
        journal = run.journals.get(environment.name)
        if journal is None:
            return
        failures.extend(await journal.rollback(
            lambda message: run.reporter.note(environment.name, message)))

    errors = await run_per_host(environments, undo)
    failures += [f"{name}: rollback: {error}" for name, error in errors.items()]
    return failures


async def _prepare(plan: SurgePlan, state: DesiredState,
                   environments: Sequence[Environment], *, pull: bool,
                   progress: ProgressCallback | None) -> dict[str, BaseException]:
    """Pull (``pull``: every image; else only missing ones the plan runs)."""
    reporter = ProgressReporter(progress, 0)

    async def prepare(environment: Environment) -> None:
        # With pull: the images of every service placed here (to compare them after);
        # without: only those of the containers to create.
        kinds = ("create", "recreate", "start", "unchanged") if pull else \
            ("create", "recreate")
        images = list(dict.fromkeys(
            state.services[a.service].image
            for a in plan.for_environment(environment.name).actions
            if a.resource == "container" and a.kind in kinds))
        await _ensure_images(environment, images, pull=pull,
                             report=lambda message: reporter.note(environment.name, message))

    results = await asyncio.gather(*(prepare(env) for env in environments),
                                   return_exceptions=True)
    errors: dict[str, BaseException] = {}
    for environment, outcome in zip(environments, results, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            errors[environment.name] = outcome
    return errors


def _check_names(environments: Sequence[Environment]) -> None:
    names = [env.name for env in environments]
    if len(set(names)) != len(names):
        raise ValueError(f"environments must have distinct names: {names}")
    if not names:
        raise ValueError("no environment to apply to")


async def _apply_state(state: DesiredState, environments: Sequence[Environment], *,
                       pull: bool, progress: ProgressCallback | None, stop_timeout: int,
                       health_timeout: float, only_service: str | None = None
                       ) -> SurgeResult:
    plan = await build_plan(state, environments)
    if only_service is not None:
        plan = _only_service(plan, state, only_service)
    if not plan.ok:
        return await execute_plan(state, plan, environments)  # reports the plan's errors
    errors = await _prepare(plan, state, environments, pull=pull, progress=progress)
    if not errors and pull:
        plan = await build_plan(state, environments, pull=True)
        errors = await _prepare(plan, state, environments, pull=False, progress=progress)
    if errors:
        return _failed_result(plan, errors)
    return await execute_plan(state, plan, environments, progress=progress,
                              stop_timeout=stop_timeout, health_timeout=health_timeout)


async def apply_surge(boltfile: Boltfile, environments: Sequence[Environment], *,
                      pull: bool = False, progress: ProgressCallback | None = None,
                      stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                      health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> SurgeResult:
    """Make ``environments`` run ``boltfile``, all or nothing.

    A second apply of the same file changes nothing; after an edit, only the services
    whose configuration changed are recreated.

    Parameters
    ----------
    boltfile
        The project.
    environments
        Open environments (distinct names); ``region`` labels place services with
        ``regions``.
    pull
        Pull every image first (``localhost/`` ones excepted) and recreate the
        containers whose image changed: "redeploy with the latest images".
    progress
        Called after each step with a :class:`SurgeProgress`.
    stop_timeout
        Seconds a replaced container may take to stop before it is killed.
    health_timeout
        Seconds a service with a healthcheck may take to become healthy.

    Returns
    -------
    SurgeResult
        ``ok`` when every environment runs the Boltfile; otherwise every change was
        rolled back and ``errors`` says what failed where.

    Raises
    ------
    SurgeError
        The Boltfile is invalid or cannot be applied as placed; nothing was touched.

    Examples
    --------
    >>> result = await apply_surge(Boltfile.load("Boltfile.toml"), [east, west],
    ...                            progress=lambda p: print(p.step, p.total, p.message))
    ...                                                                  # doctest: +SKIP
    >>> result.ok                                                        # doctest: +SKIP
    True
    """
    _check_names(environments)
    return await _apply_state(desired_state(boltfile), environments, pull=pull,
                              progress=progress, stop_timeout=stop_timeout,
                              health_timeout=health_timeout)


def _only_service(plan: SurgePlan, state: DesiredState, service: str) -> SurgePlan:
    """``plan`` restricted to one service's containers and the resources it needs."""
    spec = state.services[service]
    needed = {str(spec.create.get("network")), *(n for n, _ in spec.networks)}
    needed |= {bind.split(":", 1)[0] for bind in spec.create.get("volumes") or []}

    def keep(action: Action) -> bool:
        if action.resource == "container":
            return action.service == service
        return action.kind == "create" and action.container in needed

    return replace(plan, environments=tuple(
        replace(p, actions=tuple(a for a in p.actions if keep(a)))
        for p in plan.environments))


async def scale_surge(boltfile: Boltfile, environments: Sequence[Environment], *,
                      service: str, replicas: int, progress: ProgressCallback | None = None,
                      stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                      health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> SurgeResult:
    """Run ``replicas`` containers of ``service``, touching no other service.

    The count overrides the Boltfile's ``replicas`` until the next :func:`apply_surge`,
    which goes back to the file's (edit the file to keep it). Placement, naming and
    rollback are those of an apply.

    Raises
    ------
    SurgeError
        The Boltfile is invalid, has no such service, or ``replicas`` is negative.

    Examples
    --------
    >>> await scale_surge(bf, [east, west], service="web", replicas=3)   # doctest: +SKIP
    """
    _check_names(environments)
    state = desired_state(boltfile, replicas={service: replicas})
    return await _apply_state(state, environments, pull=False, progress=progress,
                              stop_timeout=stop_timeout, health_timeout=health_timeout,
                              only_service=service)
