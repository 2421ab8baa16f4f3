"""``before_surge_up``: snapshot a service's volumes before Surge recreates it.

:func:`before_surge_up` makes the callable that :func:`~ghostpanel_kernel.surge.apply_surge`
takes as ``before_recreate``: Surge calls it, per environment, with the services whose
containers it is about to recreate, before it changes anything; a snapshot that fails
raises :class:`BeforeSurgeError`, and the apply fails there having changed nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from ._errors import SnapshotError
from ._manager import SnapshotManager
from ._model import Snapshot
from ._schedule import SchedulePlan, schedule_plan

if TYPE_CHECKING:
    from ..bolt import Boltfile
    from ..engine import Environment

__all__ = ["BeforeSurgeError", "before_surge_up", "boltfile_before_surge_up"]

TRIGGER = "before_surge_up"


class BeforeSurgeError(SnapshotError):
    """A ``before_surge_up`` snapshot failed; Surge changed nothing.

    Attributes
    ----------
    service, target
        The service and the volume (or path) that could not be snapshotted.
    """

    def __init__(self, message: str, *, service: str, target: str) -> None:
        super().__init__(message)
        self.service = service
        self.target = target


def before_surge_up(plan: SchedulePlan, *, snapshot_dir: str | None = None,
                    taken: Callable[[Snapshot], None] | None = None
                    ) -> Callable[[Environment, Sequence[str]], Awaitable[None]]:
    """The ``before_recreate`` hook that snapshots each recreated service's volumes.

    Parameters
    ----------
    plan
        The Boltfile's schedule plan (:func:`schedule_plan`): each service's targets.
    snapshot_dir
        Where BTRFS snapshots go (default: the plan's ``snapshot_path``).
    taken
        Called with each snapshot taken (the CLI prints them).

    Examples
    --------
    >>> plan = schedule_plan(boltfile)                                  # doctest: +SKIP
    >>> await apply_surge(boltfile, [env], before_recreate=before_surge_up(plan))
    ...                                                                 # doctest: +SKIP
    """
    folder = snapshot_dir if snapshot_dir is not None else plan.snapshot_dir

    async def hook(environment: Environment, services: Sequence[str]) -> None:
        manager = SnapshotManager(environment, snapshot_dir=folder)
        done: set[str] = set()  # replicas and services that share a volume: once
        for service in services:
            for target in plan.targets.get(service, ()):
                if target in done:
                    continue
                try:
                    made = await manager.create(
                        target, trigger=TRIGGER,
                        description=f"before surge recreated {service}")
                except Exception as error:  # whatever it was, the apply must not go on
                    raise BeforeSurgeError(
                        f"before_surge_up: could not snapshot {target} of service "
                        f"`{service}`, so Surge changed nothing: {error} (make it a btrfs "
                        "subvolume or zfs dataset, or apply with --no-snapshot)",
                        service=service, target=target) from error
                done.add(target)
                for snapshot in made:
                    if taken is not None:
                        taken(snapshot)

    return hook


def boltfile_before_surge_up(boltfile: Boltfile, *, snapshot_dir: str | None = None,
                             taken: Callable[[Snapshot], None] | None = None
                             ) -> Callable[[Environment, Sequence[str]], Awaitable[None]] | None:
    """The hook ``boltfile`` asks for, or None when it does not.

    One place decides, for every way Surge is driven (``ghostpanel surge apply``, the
    agent's ``/api/v1/surge/apply``), whether an apply snapshots first: when
    ``[snapshots.triggers] before_surge_up = true`` and ``[snapshots]`` is not disabled.

    Raises
    ------
    ValueError
        A trigger in the Boltfile cannot be scheduled (its message names the key).
    """
    triggers = (boltfile.to_dict().get("snapshots") or {}).get("triggers") or {}
    if not triggers.get("before_surge_up"):
        return None
    plan = schedule_plan(boltfile)
    if not plan.before_surge_up:  # [snapshots] enabled = false
        return None
    return before_surge_up(plan, snapshot_dir=snapshot_dir, taken=taken)
