"""Redeploy a Surge project with the latest images, and nothing else.

:func:`redeploy_latest` is the stacks page's "redeploy with the latest images": it
finds the project's Boltfile where its containers' labels say (:data:`LABEL_BOLTFILE`),
checks that the Boltfile has no change of its own waiting (a redeploy must not slip an
unreviewed edit in: those are applied, after a plan, by ``apply``), then applies it with
``pull``: every image is pulled and only the containers whose image changed are
recreated (:mod:`~ghostpanel_kernel.surge._plan` compares the image each container
runs with the one its reference names after the pull).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from ..bolt import Boltfile
from ..engine import Environment
from ..engine._image_updates import DEFAULT_MAX_AGE, UpdateStatus, check_updates
from ._apply import DEFAULT_HEALTH_TIMEOUT, DEFAULT_STOP_TIMEOUT, apply_surge
from ._errors import SurgeError
from ._plan import SurgePlan, plan_surge
from ._progress import ProgressCallback
from ._projects import StackProject, discover_stacks
from ._result import SurgeResult

__all__ = ["pending_changes", "project_updates", "redeploy_latest"]


def pending_changes(plan: SurgePlan) -> list[str]:
    """The plan's changes, one line each (``east: recreate shop_web (why)``)."""
    return [f"{p.environment}: {a.kind} {a.container} ({a.reason})"
            for p in plan.environments for a in p.changes]


async def project_updates(environments: Sequence[Environment], project: StackProject, *,
                          max_age: float = DEFAULT_MAX_AGE) -> list[UpdateStatus]:
    """Whether each container of ``project`` has a newer image in its registry.

    One listing per environment the project is on (in parallel), then
    :func:`~ghostpanel_kernel.engine.check_updates` for its containers there;
    :func:`~ghostpanel_kernel.engine._image_updates.summarize_updates` makes one cell
    of the result.

    Raises
    ------
    GhostPanelError
        An environment of the project cannot list its containers.
    """
    wanted = {(c.environment, c.name) for c in project.containers}

    async def one(environment: Environment) -> list[UpdateStatus]:
        listed = await environment.containers.list(all=True)
        mine = [c for c in listed if (environment.name, c.name) in wanted]
        return list((await check_updates(environment, mine, max_age=max_age)).values()) \
            if mine else []

    found = await asyncio.gather(*(one(env) for env in environments
                                   if env.name in project.environments))
    return [status for statuses in found for status in statuses]


async def _boltfile_of(environments: Sequence[Environment], project: str | StackProject
                       ) -> Boltfile:
    if isinstance(project, str):
        found = await discover_stacks(environments)
        try:
            project = found.get(project, managed=True)
        except KeyError:
            raise SurgeError(f"no Surge project {project!r} on "
                             f"{', '.join(e.name for e in environments)}") from None
    if not project.managed:
        raise SurgeError(f"{project.name} was started by Bolt's CLI, not Surge: adopt it "
                         "first (its containers name no Boltfile)")
    path = project.boltfile
    if not path:
        raise SurgeError(f"the containers of {project.name} name no Boltfile (applied "
                         "before Surge recorded it): apply its Boltfile once, or pass it")
    if not os.path.isfile(path):
        raise SurgeError(f"{project.name}'s Boltfile {path} is not on this machine")
    return Boltfile.load(path)


async def redeploy_latest(environments: Environment | Sequence[Environment],
                          project: str | StackProject, *,
                          boltfile: Boltfile | str | Path | None = None,
                          progress: ProgressCallback | None = None,
                          stop_timeout: int = DEFAULT_STOP_TIMEOUT,
                          health_timeout: float = DEFAULT_HEALTH_TIMEOUT) -> SurgeResult:
    """Pull the images of ``project`` and recreate only the containers whose image changed.

    Parameters
    ----------
    environments
        The environment, or the environments, the project runs on (all of them: on
        fewer, Surge would move services).
    project
        The project's name, or the stack the stacks page shows.
    boltfile
        The project's Boltfile (default: the one its containers' labels name).
    progress, stop_timeout, health_timeout
        As :func:`~ghostpanel_kernel.surge.apply_surge`.

    Returns
    -------
    SurgeResult
        The apply's result: ``recreated`` where an image changed, ``unchanged``
        elsewhere; rolled back everywhere when anything failed.

    Raises
    ------
    SurgeError
        No such Surge project, no Boltfile for it, a Boltfile of another project, or a
        Boltfile with changes of its own (listed; apply them first); nothing changed.
    BoltfileError
        The Boltfile cannot be read.

    Examples
    --------
    >>> result = await redeploy_latest(env, "shop")                      # doctest: +SKIP
    >>> result.summary()                                                 # doctest: +SKIP
    ['local: 1 recreated, 2 unchanged']
    """
    envs = [environments] if isinstance(environments, Environment) else list(environments)
    name = project if isinstance(project, str) else project.name
    if boltfile is None:
        loaded = await _boltfile_of(envs, project)
    elif isinstance(boltfile, Boltfile):
        loaded = boltfile
    else:
        loaded = Boltfile.load(boltfile)
    if loaded.project != name:
        raise SurgeError(f"{loaded.path} is project {loaded.project!r}, not {name!r}")
    plan = await plan_surge(loaded, envs)
    failed = [f"{p.environment}: {p.error}" for p in plan.environments if p.error is not None]
    if failed:
        raise SurgeError(f"cannot plan {name}: {'; '.join(failed)}")
    waiting = pending_changes(plan)
    if waiting:
        raise SurgeError(f"{name}'s Boltfile has changes of its own, which a redeploy "
                         f"does not apply (apply them first): {'; '.join(waiting)}")
    return await apply_surge(loaded, envs, pull=True, progress=progress,
                             stop_timeout=stop_timeout, health_timeout=health_timeout)
