"""The stacks page's Updates column: whether the registries hold newer images under the
tags the stacks' containers run (:mod:`ghostpanel_kernel.engine._image_updates`).

It is read *after* the grid shows, in a pass of its own: the engines answer in
milliseconds, a registry may take seconds or not answer at all, and a stack's rows must
not wait for it. One container listing and one
:func:`~ghostpanel_kernel.engine.check_updates` per environment for every stack at
once (so an image several stacks run is asked for once), each environment within
:data:`UPDATES_TIMEOUT`; an environment that fails or times out makes its stacks'
cells say so, the others are still filled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from ghostpanel_kernel.engine import Environment, GhostPanelError
from ghostpanel_kernel.engine._image_updates import (
    DEFAULT_MAX_AGE,
    UpdateStatus,
    check_updates,
    summarize_updates,
)
from ghostpanel_kernel.surge import StackProject

from ._status import describe_error

__all__ = ["UPDATES_TIMEOUT", "stack_updates", "updates_cell"]

K = TypeVar("K", bound=Hashable)

#: Seconds one environment's check may take in all (each registry request has its own
#: 5 s limit in check_updates; this bounds many images asked 8 at a time).
UPDATES_TIMEOUT = 20.0


def updates_cell(statuses: Sequence[UpdateStatus], failures: Sequence[str] = ()) -> str:
    """One stack's Updates cell: :func:`summarize_updates` of its containers, and the
    environments that could not be checked.

    Examples
    --------
    >>> updates_cell([UpdateStatus("current")], ["west: no answer within 20 s"])
    'current; unknown on west: no answer within 20 s'
    >>> updates_cell([], ["east: connection refused"])
    'unknown (east: connection refused)'
    >>> updates_cell([UpdateStatus("update-available", container="shop_web")])
    '1 update available (shop_web)'
    """
    cell = summarize_updates(statuses)
    if not failures:
        return cell
    why = "; ".join(failures)
    return f"{cell}; unknown on {why}" if cell else f"unknown ({why})"


async def _environment_statuses(environment: Environment, names: set[str], *,
                                max_age: float) -> list[UpdateStatus]:
    listed = await environment.containers.list(all=True)
    mine = [c for c in listed if c.name in names]
    if not mine:
        return []
    return list((await check_updates(environment, mine, max_age=max_age)).values())


async def stack_updates(environments: Sequence[Environment],
                        projects: Mapping[K, StackProject], *,
                        max_age: float = DEFAULT_MAX_AGE,
                        timeout: float = UPDATES_TIMEOUT) -> dict[K, str]:
    """The Updates cell of each of ``projects`` (by their keys).

    Parameters
    ----------
    environments
        Where the projects' containers are (others are not read).
    projects
        The stacks, by the grid's keys.
    max_age
        Seconds a registry's earlier answer may be reused (``0`` asks again).
    timeout
        Seconds each environment's listing and check may take in all.

    Returns
    -------
    dict
        By key: ``1 update available (shop_web)``, ``current``, ``current (1 unknown)``,
        ``unknown``, with the environments that could not be checked; ``""`` for a stack
        none of whose containers is left.
    """
    # (environment, container name) -> the keys of the stacks it belongs to.
    owners: dict[tuple[str, str], list[K]] = {}
    for key, project in projects.items():
        for container in project.containers:
            owners.setdefault((container.environment, container.name), []).append(key)
    wanted = [env for env in environments if any(where == env.name for where, _ in owners)]
    results = await asyncio.gather(
        *(asyncio.wait_for(_environment_statuses(
            env, {name for where, name in owners if where == env.name}, max_age=max_age),
            timeout) for env in wanted),
        return_exceptions=True)
    statuses: dict[K, list[UpdateStatus]] = {key: [] for key in projects}
    failures: dict[K, list[str]] = {key: [] for key in projects}
    for env, result in zip(wanted, results, strict=True):
        if isinstance(result, TimeoutError):
            why = f"{env.name}: no answer within {timeout:g} s"
        elif isinstance(result, GhostPanelError | OSError):
            why = f"{env.name}: {describe_error(result)}"
        elif isinstance(result, BaseException):
            raise result  # a bug, or the pass cancelled: not a cell's business
        else:
            for status in result:
                for key in owners.get((env.name, status.container), []):
                    statuses[key].append(status)
            continue
        for key in {key for (where, _), keys in owners.items() if where == env.name
                    for key in keys}:
            failures[key].append(why)
    return {key: updates_cell(statuses[key], failures[key]) for key in projects}
