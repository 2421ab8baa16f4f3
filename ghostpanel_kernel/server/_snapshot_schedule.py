"""The agent's scheduled snapshots: ``ghostpanel agent --boltfile FILE``.

One background task, started with the app and cancelled when it stops, runs the
Boltfile's ``[snapshots.triggers]`` (:class:`~ghostpanel_kernel.snapshots.ScheduleRunner`)
on the agent's own engine and logs each snapshot taken, pruned or failed. Imported only
by an agent given a Boltfile.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import BoltfileError
from ..bolt import Boltfile
from ..snapshots import RoundResult, SchedulePlan, ScheduleRunner, SnapshotManager, schedule_plan

if TYPE_CHECKING:
    from ..engine import Environment
    from ._settings import AgentSettings

__all__ = ["check_boltfile", "start_schedule"]

_log = logging.getLogger("ghostpanel.agent.snapshots")


def check_boltfile(path: Path) -> SchedulePlan:
    """The schedule plan of ``path``, checked before the agent serves.

    Raises
    ------
    ValueError
        The file cannot be read, a trigger cannot be scheduled, ``[snapshots]`` is
        disabled, or nothing periodic is set: an agent told to run a schedule that
        would never take a snapshot says so rather than start.
    """
    try:
        plan = schedule_plan(Boltfile.load(path))
    except BoltfileError as error:
        raise ValueError(f"{path}: {error}") from error
    if not plan.enabled:
        raise ValueError(f"{path}: [snapshots] enabled = false: the schedule takes nothing")
    if plan.schedule.next_due(datetime.now(UTC)) is None:
        raise ValueError(f"{path}: [snapshots.triggers] sets no hourly, daily, weekly or "
                         'monthly trigger: add e.g. daily = "02:00"')
    return plan


def _report(result: RoundResult) -> None:
    for snapshot in result.snapshots:
        _log.info("%s snapshot %s of %s", result.trigger, snapshot.name, snapshot.source)
    for snapshot in result.pruned:
        _log.info("retention removed %s of %s", snapshot.name, snapshot.source)
    for target, error in result.errors:
        _log.error("%s snapshot of %s failed (retried at the next due time): %s",
                   result.trigger, target, error)


def _ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("the snapshot schedule stopped: %s", task.exception())


def start_schedule(settings: AgentSettings, engine: Environment) -> asyncio.Task[None]:
    """Start the schedule of ``settings.snapshot_boltfile`` on ``engine``; the task.

    BTRFS snapshots go to the Boltfile's ``snapshot_path``, else the agent's
    ``--snapshot-dir``, else the default folder.
    """
    assert settings.snapshot_boltfile is not None
    plan = check_boltfile(settings.snapshot_boltfile)
    folder = plan.snapshot_dir or (None if settings.snapshot_dir is None
                                   else str(settings.snapshot_dir))
    runner = ScheduleRunner(SnapshotManager(engine, snapshot_dir=folder), plan,
                            report=_report)
    due = plan.schedule.next_due(datetime.now(UTC))
    assert due is not None
    _log.info("snapshot schedule of %s: next %s at %s UTC", settings.snapshot_boltfile,
              due[1], f"{due[0]:%Y-%m-%d %H:%M}")
    task = asyncio.create_task(runner.run_forever(), name="ghostpanel-snapshot-schedule")
    task.add_done_callback(_ended)
    return task
