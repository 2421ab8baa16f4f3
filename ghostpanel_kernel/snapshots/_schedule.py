"""Scheduled snapshots: a Boltfile's services' volumes, taken when triggers fall due.

:func:`schedule_plan` reads what a Boltfile asks for (triggers, the volumes of each
service, retention, ``snapshot_path``); :class:`ScheduleRunner` takes one round of
snapshots (:meth:`~ScheduleRunner.run_round`) and prunes with the retention policy, or
loops over the due times (:meth:`~ScheduleRunner.run_forever`). The clock and the sleep
are injectable, so tests run a week of schedule in no time.

A round snapshots each target on its own: a volume that fails is logged and reported,
the others are still taken, and the loop goes on to the next due time (where it is
tried again).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._triggers import SnapshotSchedule, parse_triggers

if TYPE_CHECKING:
    from ..bolt import Boltfile
    from ._manager import SnapshotManager
    from ._model import Snapshot

__all__ = ["RoundResult", "SchedulePlan", "ScheduleRunner", "schedule_plan",
           "service_targets"]

_log = logging.getLogger("ghostpanel.snapshots.schedule")
#: The shortest sleep before a due time (seconds).
_MIN_SLEEP = 0.5


def service_targets(data: Mapping[str, Any], base_dir: Path) -> dict[str, list[str]]:
    """The snapshot targets of each service's ``volumes``, by service name.

    A named volume is ``volume:{project}_{name}`` (or the ``[volumes.NAME] name`` it
    declares), the engine name Surge gives it; a host path (``/``, ``.``, ``~``) is the
    path, relative ones from ``base_dir``. Anonymous volumes (no source) and host paths
    that are files (a socket, a config file: never a subvolume or dataset) are left out.
    """
    from ..bolt import VolumeMount
    from ..surge._naming import resource_name

    project = str(data.get("project") or "")
    declared = data.get("volumes")
    if not isinstance(declared, dict):
        declared = {}
    targets: dict[str, list[str]] = {}
    for name, table in (data.get("services") or {}).items():
        found: list[str] = []
        for spec in (table or {}).get("volumes") or []:
            mount = VolumeMount.parse(spec)
            if mount.source is None:
                continue
            if mount.source.startswith(("/", ".", "~")):
                path = os.path.normpath(base_dir / Path(mount.source).expanduser())
                if os.path.exists(path) and not os.path.isdir(path):
                    continue
                target = path
            else:
                volume = declared.get(mount.source) or {}
                target = "volume:" + (volume.get("name") or resource_name(project,
                                                                          mount.source))
            if target not in found:
                found.append(target)
        targets[name] = found
    return targets


@dataclass(frozen=True)
class SchedulePlan:
    """What a Boltfile's ``[snapshots]`` table asks for.

    Attributes
    ----------
    schedule
        The triggers.
    targets
        Each service's snapshot targets (:func:`service_targets`).
    retention
        ``[snapshots.retention]`` (empty: nothing is pruned).
    snapshot_dir
        ``snapshot_path``, or None for the default folder.
    enabled
        ``enabled`` (default true): false turns the schedule and ``before_surge_up``
        off.
    """

    schedule: SnapshotSchedule
    targets: Mapping[str, list[str]]
    retention: Mapping[str, Any] = field(default_factory=dict)
    snapshot_dir: str | None = None
    enabled: bool = True

    @property
    def all_targets(self) -> list[str]:
        """Every service's targets once, in file order (replicas share volumes)."""
        return list(dict.fromkeys(t for found in self.targets.values() for t in found))

    @property
    def before_surge_up(self) -> bool:
        """Surge must snapshot a service's volumes before recreating its containers."""
        return self.enabled and self.schedule.before_surge_up


def schedule_plan(boltfile: Boltfile, *, base_dir: Path | None = None) -> SchedulePlan:
    """Read the schedule, targets, retention and snapshot folder of ``boltfile``.

    Raises
    ------
    ScheduleError
        A trigger cannot be scheduled (the message names the key and what to write).
    """
    data = boltfile.to_dict()
    table = data.get("snapshots") or {}
    if base_dir is None:
        base_dir = Path.cwd() if boltfile.path == "<string>" else \
            Path(boltfile.path).absolute().parent
    schedule = parse_triggers(table.get("triggers"), path=str(boltfile.path))
    return SchedulePlan(schedule, service_targets(data, base_dir),
                        dict(table.get("retention") or {}), table.get("snapshot_path"),
                        bool(table.get("enabled", True)))


@dataclass
class RoundResult:
    """One round of scheduled snapshots.

    Attributes
    ----------
    trigger
        The trigger recorded in each snapshot.
    snapshots
        The snapshots taken.
    pruned
        The snapshots the retention policy deleted afterwards.
    errors
        ``(target, message)`` for each target that failed (snapshot or prune).
    """

    trigger: str
    snapshots: list[Snapshot] = field(default_factory=list)
    pruned: list[Snapshot] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every target was snapshotted and pruned."""
        return not self.errors


Report = Callable[[RoundResult], None]


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class ScheduleRunner:
    """Takes a plan's snapshots when they fall due, then applies its retention.

    Parameters
    ----------
    manager
        Takes and prunes the snapshots (its ``snapshot_dir`` is used as it is).
    plan
        The schedule, targets and retention.
    clock
        The current time (aware).
    sleep
        Waits that many seconds (``asyncio.sleep``; tests pass a fake that moves the
        clock).
    report
        Called after each round (the CLI prints the snapshots from it).
    """

    def __init__(self, manager: SnapshotManager, plan: SchedulePlan, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = _sleep,
                 report: Report | None = None) -> None:
        self.manager = manager
        self.plan = plan
        self._clock = clock
        self._sleep = sleep
        self._report = report

    async def run_round(self, trigger: str, targets: list[str] | None = None) -> RoundResult:
        """Snapshot each target (default: every service's) once, then prune each.

        A target that fails is recorded in ``errors`` and logged; the others go on.
        Cancellation is not caught.
        """
        result = RoundResult(trigger)
        for target in self.plan.all_targets if targets is None else targets:
            try:
                result.snapshots += await self.manager.create(target, trigger=trigger)
            except Exception as error:  # one volume's failure must not stop the others
                _log.error("scheduled %s snapshot of %s failed: %s", trigger, target, error)
                result.errors.append((target, str(error)))
                continue
            if not self.plan.retention:
                continue
            try:
                pruned = await self.manager.prune(target, self.plan.retention)
            except Exception as error:  # as above: the snapshot is taken, prune next time
                _log.error("retention of %s failed: %s", target, error)
                result.errors.append((target, f"retention: {error}"))
                continue
            result.pruned += pruned.deleted
        if self._report is not None:
            self._report(result)
        return result

    async def run_forever(self, *, rounds: int | None = None) -> None:
        """Sleep until each due time and take a round; ``rounds`` stops after that many.

        Returns at once when no periodic trigger is set. A due time missed while a round
        ran (or the machine slept) is not caught up: the next one after now is taken.
        """
        last: datetime | None = None
        done = 0
        while rounds is None or done < rounds:
            now = self._clock()
            after = now if last is None or now > last else last
            due = self.plan.schedule.next_due(after)
            if due is None:
                return
            when, trigger = due
            # Sleep until the clock says so: a sleep may end early (a clock change). At
            # least half a second each time, so that a clock that keeps waking a little
            # early cannot make this spin.
            while (now := self._clock()) < when:
                await self._sleep(max((when - now).total_seconds(), _MIN_SLEEP))
            last = when
            await self.run_round(trigger)
            done += 1
