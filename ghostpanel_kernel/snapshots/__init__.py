"""Snapshots of volumes, containers' data and host paths on BTRFS and ZFS.

:class:`SnapshotManager` lists, creates, restores, deletes and diffs snapshots of a
TARGET (``volume:NAME``, ``container:NAME`` or a path that is a subvolume/dataset) and
prunes them with a retention policy; :func:`plan_retention` is the policy on its own.
Names follow Bolt: ``bolt-YYYYmmdd-HHMMSS`` (UTC). A restore never loses data: the
original is kept as a read-only ``pre-restore`` snapshot, and a failure at any step puts
everything back. See ``docs/snapshots.md``.
"""

from __future__ import annotations

from ._before_surge import BeforeSurgeError, before_surge_up, boltfile_before_surge_up
from ._btrfs import BtrfsDriver
from ._commands import Mount, Runner, find_mount, run_command
from ._errors import (
    RestoreError,
    SnapshotCommandError,
    SnapshotError,
    SnapshotExists,
    SnapshotNotFound,
    UnsupportedFilesystem,
)
from ._manager import PruneResult, RestoreResult, SnapshotManager
from ._model import SizeDiff, Snapshot, bolt_name, check_name
from ._retention import RetentionPlan, plan_retention
from ._schedule import RoundResult, SchedulePlan, ScheduleRunner, schedule_plan, service_targets
from ._source import DEFAULT_DIR_NAME, Source
from ._steps import Progress
from ._targets import Target, parse_target
from ._triggers import ScheduleError, SnapshotSchedule, Trigger, parse_triggers
from ._zfs import ZfsDriver

__all__ = [
    "DEFAULT_DIR_NAME",
    "BeforeSurgeError",
    "BtrfsDriver",
    "Mount",
    "Progress",
    "PruneResult",
    "RestoreError",
    "RestoreResult",
    "RetentionPlan",
    "RoundResult",
    "Runner",
    "ScheduleError",
    "SchedulePlan",
    "ScheduleRunner",
    "SizeDiff",
    "Snapshot",
    "SnapshotCommandError",
    "SnapshotError",
    "SnapshotExists",
    "SnapshotManager",
    "SnapshotNotFound",
    "SnapshotSchedule",
    "Source",
    "Target",
    "Trigger",
    "UnsupportedFilesystem",
    "ZfsDriver",
    "before_surge_up",
    "bolt_name",
    "boltfile_before_surge_up",
    "check_name",
    "find_mount",
    "parse_target",
    "parse_triggers",
    "plan_retention",
    "run_command",
    "schedule_plan",
    "service_targets",
]
