"""Apply and scale: carry out a plan on every environment, all or nothing.

An apply runs in four phases:

1. **Prepare** (all environments at once): with ``pull``, pull every image that does not
   live only on the host (``localhost/...`` references name local images: nothing to
   pull); make sure each image to run is there, pulling a missing one. A failure here
   has changed nothing.
2. **Plan** (:func:`~ghostpanel_kernel.surge._plan.build_plan`): an environment that
   cannot be read fails the apply before anything changes.
3. **Forward**, per environment (different hosts in parallel, one host's environments in
   turn, see :mod:`~ghostpanel_kernel.surge._hosts`): reserve, all at once, the GPUs of
   every container of a GPU service it will create (see
   :mod:`~ghostpanel_kernel.surge._gpus`); create the missing networks and
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
   what it set aside is renamed back and restarted if it was running, and the GPU
   reservations go back to what they were (a commit releases the GPUs of the
   containers it removes). Nothing half-made stays, and the result says which
   environment failed and why.

Before phase 1 the run takes the project's lock on every environment (see
:mod:`~ghostpanel_kernel.surge._lock`), so that two runs never interleave; a run that
cannot take it fails having changed nothing. It gives the lock back at the end, whatever
happened.

What a run may remove is only what it made: the containers, networks and volumes it
creates carry its run id (:data:`~ghostpanel_kernel.surge._naming.LABEL_RUN`), and a
create whose answer was lost removes what it finds under the name only if it bears that
id. A rollback restores a set-aside container only after the engine has finished a stop
that was under way (a start does nothing to a container that is still stopping), then
checks that it runs again; anything not restored is in ``rollback_errors``.

An invalid Boltfile raises :class:`SurgeError` before phase 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from ..bolt import Boltfile
from ..engine import Container, Environment, GhostPanelError, NotFound
from ._desired import DesiredState, ServiceSpec, desired_state
from ._gpus import GpuAllocatorFactory, GpuBroker
from ._health import wait_healthy
from ._hosts import run_per_host
from ._journal import Journal
from ._lock import RunIdentity, release_locks, take_locks
from ._naming import LABEL_BOLTFILE, LABEL_PROJECT, LABEL_RUN, is_old_name, old_name
from ._plan import Action, EnvironmentPlan, SurgePlan, build_plan, gpu_workloads
from ._progress import ProgressCallback, ProgressReporter
from ._result import Outcome, SurgeResult
from ._undo import (
    AsideState,
    network_remover,
    remove_if_ours,
    remover,
    restorer,
    stopper,
    volume_remover,
)

__all__ = ["DEFAULT_HEALTH_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "BeforeRecreate", "CancelCallback",
           "MissingImage", "apply_surge", "execute_plan", "scale_surge"]

#: The label create_with_gpus puts on a GPU container (gpus._spec.LABEL_GPU_WORKLOAD;
#: not imported: the GPU kernel loads SQLAlchemy, which a project without GPUs skips).
LABEL_GPU_WORKLOAD = "io.ghostpanel.gpu.workload"
#: Seconds a container may take to stop before it is killed (Docker's default).
DEFAULT_STOP_TIMEOUT = 10
#: Seconds a service with a healthcheck may take to become healthy.
DEFAULT_HEALTH_TIMEOUT = 60.0
CancelCallback = Callable[[SurgeResult], None]
"""Called with what a cancelled run left (rolled back or not) before the cancellation
goes on: a cancelled coroutine has no result to return."""
BeforeRecreate = Callable[[Environment, Sequence[str]], Awaitable[None]]
"""Called, per environment, with the services whose containers the apply will recreate
there, after the images are ready and before anything changes (the snapshots of
``before_surge_up``); an exception fails the apply there, nothing changed."""


class MissingImage(GhostPanelError):
    """An image to run is not on the environment and cannot be pulled."""


class _Aborted(Exception):
    """Another environment failed: this one stops at its next step."""


def _is_local_image(reference: str) -> bool:
    # Podman names imported and locally built images localhost/...: no registry serves
    # them ("localhost:5000/..." is a registry and is pulled as any other).
    return reference.startswith("localhost/")


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
    identity: RunIdentity = field(default_factory=lambda: RunIdentity("apply"))
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    journals: dict[str, Journal] = field(default_factory=dict)
    aside: dict[str, list[Container]] = field(default_factory=dict)
    gpus: GpuBroker = field(default_factory=GpuBroker)
    #: The GPU workloads this run reserved, by environment.
    reserved: dict[str, set[str]] = field(default_factory=dict)

    def check(self) -> None:
        if self.abort.is_set():
            raise _Aborted("stopped: another environment failed")

    def touched(self) -> set[str]:
        """The environments where this run changed something (not yet undone)."""
        return {name for name, journal in self.journals.items() if journal.entries}

    def labels(self) -> dict[str, str]:
        """The labels of a network or volume this run creates."""
        return {LABEL_PROJECT: self.state.project, LABEL_RUN: self.identity.run_id}


async def _create_container(run: _Run, environment: Environment, journal: Journal,
                            spec: ServiceSpec, action: Action) -> Container:
    name = action.container
    labels = {**spec.labels(run.state.project, action.replica),
              LABEL_RUN: run.identity.run_id}
    if run.state.source:  # where the project's Boltfile is, for the stacks page
        labels[LABEL_BOLTFILE] = run.state.source
    try:
        if spec.gpu is None:
            container = await environment.containers.create(
                name=name, **{**spec.create, "labels": labels})
        else:
            container = await _create_with_gpus(run, environment, spec, name, labels)
    except BaseException:
        await remove_if_ours(lambda: environment.containers.get(name),
                              run.identity.run_id)
        raise
    journal.record("created", f"create {name}", remover(container))
    for network, aliases in spec.networks:
        await (await environment.networks.get(network)).connect(container.id,
                                                                aliases=list(aliases))
    await container.start()
    return container


async def _create_with_gpus(run: _Run, environment: Environment, spec: ServiceSpec,
                            name: str, labels: dict[str, str]) -> Container:
    """Create a GPU service's container with the GPUs its workload (= its name) holds."""
    from ..gpus import create_with_gpus

    allocator = await run.gpus.allocator(environment)
    options = {key: value for key, value in spec.create.items() if key != "image"}
    return await create_with_gpus(environment, allocator, name, image=spec.image,
                                  name=name, **{**options, "labels": labels})


async def _reserve_gpus(run: _Run, environment: Environment, journal: Journal,
                        changes: Sequence[Action]) -> None:
    """Reserve every GPU this environment's new containers need, before any change."""
    wanted = gpu_workloads(run.state, changes)
    if not wanted:
        return
    run.check()
    made, replaced = await run.gpus.reserve(environment, wanted)
    run.reserved[environment.name] = {workload for workload, _ in wanted}

    async def undo() -> None:
        await run.gpus.undo(environment, made, replaced)

    units = ", ".join(f"{a.workload}: {a.label}" for a in made)
    journal.record("gpus", f"reserve GPUs ({units})", undo)
    run.reporter.note(environment.name, f"reserved GPUs ({units})")


async def _set_aside(run: _Run, environment: Environment, journal: Journal,
                     action: Action) -> None:
    container = await environment.containers.get(action.container_id)
    running = container.state in ("running", "paused")
    original = container.name
    aside = AsideState(container, original, running, run.stop_timeout)
    journal.record("set-aside", f"set aside {original}", restorer(aside))
    if running:
        aside.stop_sent = True  # before the request: it may act and its answer be lost
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
    await _reserve_gpus(run, environment, journal, changes)
    for action in changes:
        if action.resource == "container" or action.kind != "create":
            continue
        run.check()
        labels = run.labels()
        if action.resource == "network":
            network = state.networks[action.container]
            try:
                await environment.networks.create(
                    network.name, driver=network.driver, internal=network.internal,
                    labels={**network.labels, **labels}, subnet=network.subnet,
                    gateway=network.gateway, options=network.options)
            except BaseException:
                await remove_if_ours(functools.partial(environment.networks.get, network.name),
                                      run.identity.run_id)
                raise
            journal.record("resource", f"create network {network.name}",
                           network_remover(environment, network.name))
        else:
            volume = state.volumes[action.container]
            try:
                await environment.volumes.create(volume.name, driver=volume.driver,
                                                 driver_opts=volume.driver_opts,
                                                 labels={**volume.labels, **labels})
            except BaseException:
                await remove_if_ours(functools.partial(environment.volumes.get, volume.name),
                                      run.identity.run_id)
                raise
            journal.record("resource", f"create volume {volume.name}",
                           volume_remover(environment, volume.name))
        run.reporter.done(name, f"created {action.resource} {action.container}")
    containers = [a for a in changes if a.resource == "container"]
    for action in containers:  # services gone from the Boltfile, and leftovers
        if action.kind == "remove" and action.service not in state.services:
            run.check()
            if is_old_name(action.container):
                run.reporter.done(name, f"{action.container} is removed at the end")
            else:
                await _set_aside(run, environment, journal, action)
    by_service: dict[str, list[Action]] = {}
    for action in containers:  # grouped once: a scan per service is quadratic
        by_service.setdefault(action.service, []).append(action)
    for spec in state.services.values():
        mine = sorted(by_service.get(spec.name, ()), key=lambda a: a.replica)
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
                               stopper(container, run.stop_timeout))
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
    gone: list[tuple[str, str]] = []
    for container in doomed:
        try:
            with contextlib.suppress(NotFound):
                await container.remove(force=True)
        except Exception as error:  # the new state runs: a leftover is only a warning
            warnings.append(f"{name}: could not remove {container.name}: {error}")
            continue
        workload = container.labels.get(LABEL_GPU_WORKLOAD)
        if workload is not None:
            # A recreated container's workload now holds its successor's GPUs: only
            # what is bound to the removed container goes then.
            keep = workload in run.reserved.get(name, set())
            gone.append((container.id, "" if keep else workload))
    try:
        await run.gpus.release(environment, gone)
    except Exception as error:  # as above: the removed containers' GPUs stay reserved
        warnings.append(f"{name}: could not release the GPUs of removed containers: "
                        f"{error} (ghostpanel gpu release WORKLOAD)")
    for action in plan.changes:
        if action.resource == "network" and action.kind == "remove":
            try:
                await network_remover(environment, action.container)()
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


def _undone_result(plan: SurgePlan, touched: set[str], failed: dict[str, BaseException],
                   rollback: dict[str, list[str]], *, cancelled: bool = False
                   ) -> SurgeResult:
    """The result of a run that was rolled back: decided here, once, for every reader."""
    outcomes: dict[str, Outcome] = {}
    for env_plan in plan.environments:
        name = env_plan.environment
        if name in failed:
            outcomes[name] = "failed"
        elif name in touched:
            outcomes[name] = "rollback-incomplete" if rollback.get(name) else "rolled-back"
        else:
            outcomes[name] = "not-applied" if env_plan.changes else "unchanged"
    failures = tuple(failure for name in rollback for failure in rollback[name])
    # "Every change was undone" only when it is true: nothing failed to undo, and there
    # was something to undo (a failure counts: its environment may have half-made it).
    undone = not failures and bool(touched or failed)
    return SurgeResult(plan.project, plan, outcomes, errors=failed, rolled_back=undone,
                       rollback_errors=failures, cancelled=cancelled)


async def execute_plan(state: DesiredState, plan: SurgePlan,
                       environments: Sequence[Environment], *,
                       progress: ProgressCallback | None = None,
                       stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                       health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                       identity: RunIdentity | None = None,
                       on_cancel: CancelCallback | None = None,
                       gpus: GpuBroker | None = None) -> SurgeResult:
    """Carry out ``plan`` (phases 3 and 4 of the module docstring).

    Cancelled, it rolls back, calls ``on_cancel`` with what the rollback left, and lets
    the cancellation go on. ``gpus`` holds the GPU allocators (default: this host's,
    closed at the end).
    """
    if gpus is not None:
        return await _execute(state, plan, environments, progress=progress,
                              stop_timeout=stop_timeout, health_timeout=health_timeout,
                              identity=identity, on_cancel=on_cancel, gpus=gpus)
    own = GpuBroker()
    try:
        return await _execute(state, plan, environments, progress=progress,
                              stop_timeout=stop_timeout, health_timeout=health_timeout,
                              identity=identity, on_cancel=on_cancel, gpus=own)
    finally:
        own.close()


async def _execute(state: DesiredState, plan: SurgePlan, environments: Sequence[Environment],
                   *, progress: ProgressCallback | None, stop_timeout: int,
                   health_timeout: float, identity: RunIdentity | None,
                   on_cancel: CancelCallback | None, gpus: GpuBroker) -> SurgeResult:
    plan_errors = {p.environment: p.error for p in plan.environments if p.error is not None}
    if plan_errors:
        return _failed_result(plan, plan_errors)
    total = sum(step_count(p, state) for p in plan.environments)
    run = _Run(state, plan, ProgressReporter(progress, total), stop_timeout, health_timeout,
               identity=identity or RunIdentity("apply"), gpus=gpus)
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
        touched = run.touched()
        rollback = await _rollback(run, environments)
        if on_cancel is not None:
            on_cancel(_undone_result(plan, touched, {}, rollback, cancelled=True))
        raise
    failed = {name: error for name, error in errors.items()
              if not isinstance(error, _Aborted)}
    if failed:
        touched = run.touched()
        return _undone_result(plan, touched, failed, await _rollback(run, environments))
    outcomes: dict[str, Outcome] = {p.environment: "applied" if p.changes else "unchanged"
                                    for p in plan.environments}
    warnings: list[str] = []
    try:
        for environment in changing:
            warnings += await _commit(run, environment)
    except BaseException:
        # Cancelled during the clean-up: the new state runs; what it replaced is still
        # set aside, and the next apply's plan removes it.
        if on_cancel is not None:
            on_cancel(SurgeResult(plan.project, plan, outcomes, cancelled=True, warnings=(
                *warnings, "cancelled during the clean-up: the new state runs; the "
                "containers it replaced are left set aside until the next apply")))
        raise
    return SurgeResult(plan.project, plan, outcomes, warnings=tuple(warnings))


async def _rollback(run: _Run, environments: Sequence[Environment]) -> dict[str, list[str]]:
    """Undo every journal; return the undo steps that failed, by environment."""
    failures: dict[str, list[str]] = {}

    async def undo(environment: Environment) -> None:
        journal = run.journals.get(environment.name)
        if journal is None:
            return
        failed = await journal.rollback(
            lambda message: run.reporter.note(environment.name, message))
        if failed:
            failures[environment.name] = failed

    errors = await run_per_host(environments, undo)
    for name, error in errors.items():
        failures.setdefault(name, []).append(f"{name}: rollback: {error}")
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


async def _before_recreate(plan: SurgePlan, environments: Sequence[Environment],
                           hook: BeforeRecreate) -> dict[str, BaseException]:
    """Call ``hook`` where services are recreated; its failures, by environment."""
    errors: dict[str, BaseException] = {}
    for environment in environments:
        services = list(dict.fromkeys(
            a.service for a in plan.for_environment(environment.name).changes
            if a.resource == "container" and a.kind == "recreate"))
        if not services:
            continue
        try:
            await hook(environment, services)
        except Exception as error:  # reported as the environment's failure, as _prepare's
            errors[environment.name] = error
    return errors


def _check_names(environments: Sequence[Environment]) -> None:
    names = [env.name for env in environments]
    if len(set(names)) != len(names):
        raise ValueError(f"environments must have distinct names: {names}")
    if not names:
        raise ValueError("no environment to apply to")


async def _apply_state(state: DesiredState, environments: Sequence[Environment], *,
                       pull: bool, progress: ProgressCallback | None, stop_timeout: int,
                       health_timeout: float, only_service: str | None = None,
                       break_lock: bool = False, on_cancel: CancelCallback | None = None,
                       operation: str = "apply",
                       before_recreate: BeforeRecreate | None = None,
                       gpu_allocators: GpuAllocatorFactory | None = None) -> SurgeResult:
    """Lock, apply (:func:`_apply_locked`), unlock; whatever happens in between."""
    identity = RunIdentity(operation)
    gpus = GpuBroker(gpu_allocators)
    held: dict[str, Container | None] = {}
    cancelled: list[SurgeResult] = []
    notices: list[str] = []
    try:
        lock_errors = await take_locks(environments, state.project, identity, held,
                                       images=state.images, break_lock=break_lock,
                                       notices=notices)
        if lock_errors:
            unplanned = SurgePlan(state.project,
                                  tuple(EnvironmentPlan(env.name) for env in environments))
            result = _failed_result(unplanned, lock_errors)
        else:
            result = await _apply_locked(
                state, environments, pull=pull, progress=progress,
                stop_timeout=stop_timeout, health_timeout=health_timeout,
                only_service=only_service, identity=identity, on_cancel=cancelled.append,
                before_recreate=before_recreate, gpus=gpus)
    except asyncio.CancelledError:
        warnings = await release_locks(environments, held, state.project)
        if on_cancel is not None:
            left = cancelled[0] if cancelled else SurgeResult(
                state.project, SurgePlan(state.project, ()), {}, cancelled=True)
            on_cancel(replace(left, warnings=(*notices, *left.warnings, *warnings)))
        raise
    finally:
        gpus.close()
        warnings = await release_locks(environments, held, state.project)
    return replace(result, warnings=(*notices, *result.warnings, *warnings))


async def _apply_locked(state: DesiredState, environments: Sequence[Environment], *,
                        pull: bool, progress: ProgressCallback | None, stop_timeout: int,
                        health_timeout: float, only_service: str | None,
                        identity: RunIdentity, on_cancel: CancelCallback,
                        before_recreate: BeforeRecreate | None = None,
                        gpus: GpuBroker | None = None) -> SurgeResult:
    plan = await build_plan(state, environments, gpus=gpus)
    if only_service is not None:
        plan = _only_service(plan, state, only_service)
    if not plan.ok:
        return await execute_plan(state, plan, environments)  # reports the plan's errors
    errors = await _prepare(plan, state, environments, pull=pull, progress=progress)
    if not errors and pull:
        plan = await build_plan(state, environments, pull=True, gpus=gpus)
        errors = await _prepare(plan, state, environments, pull=False, progress=progress)
    if not errors and before_recreate is not None:
        errors = await _before_recreate(plan, environments, before_recreate)
    if errors:
        return _failed_result(plan, errors)
    return await execute_plan(state, plan, environments, progress=progress,
                              stop_timeout=stop_timeout, health_timeout=health_timeout,
                              identity=identity, on_cancel=on_cancel, gpus=gpus)


async def apply_surge(boltfile: Boltfile, environments: Sequence[Environment], *,
                      pull: bool = False, progress: ProgressCallback | None = None,
                      stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                      health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                      break_lock: bool = False,
                      on_cancel: CancelCallback | None = None,
                      before_recreate: BeforeRecreate | None = None,
                      gpu_allocators: GpuAllocatorFactory | None = None) -> SurgeResult:
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
    break_lock
        Take the project's lock even where another run holds it (see
        :mod:`~ghostpanel_kernel.surge._lock`): for a lock its holder left behind.
    on_cancel
        Called, when the apply is cancelled (Ctrl-C), with the result of its rollback
        (what was undone, what could not be) before the cancellation goes on.
    before_recreate
        Called per environment with the services whose containers will be recreated
        there, once the images are ready and before anything changes (see
        :data:`BeforeRecreate`; the CLI passes the Boltfile's ``before_surge_up``
        snapshots). If it raises, the apply fails there having changed nothing.
    gpu_allocators
        Opens the GPU allocator of an environment's host for the services with a
        ``[gaming.gpu]`` table (default: this host's GPUs and GhostPanel's store; see
        :mod:`~ghostpanel_kernel.surge._gpus`). Never called for a project without.

    Returns
    -------
    SurgeResult
        ``ok`` when every environment runs the Boltfile; otherwise the changes were
        rolled back (``rollback_errors`` lists what could not be), ``errors`` says what
        failed where, and :meth:`SurgeResult.conclusion` says it in one statement. A
        project locked by another run fails with
        :class:`~ghostpanel_kernel.surge._lock.ProjectLocked` there, nothing changed.

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
                              health_timeout=health_timeout, break_lock=break_lock,
                              on_cancel=on_cancel, before_recreate=before_recreate,
                              gpu_allocators=gpu_allocators)


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
                      health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
                      break_lock: bool = False,
                      on_cancel: CancelCallback | None = None,
                      gpu_allocators: GpuAllocatorFactory | None = None) -> SurgeResult:
    """Run ``replicas`` containers of ``service``, touching no other service.

    The count overrides the Boltfile's ``replicas`` until the next :func:`apply_surge`,
    which goes back to the file's (edit the file to keep it). Placement, naming, the
    lock and rollback (``break_lock``, ``on_cancel``) are those of an apply.

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
                              only_service=service, break_lock=break_lock,
                              on_cancel=on_cancel, operation="scale",
                              gpu_allocators=gpu_allocators)
