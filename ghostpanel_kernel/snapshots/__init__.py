"""Snapshots of volumes, containers' data and host paths on BTRFS and ZFS.

:class:`SnapshotManager` lists, creates, restores, deletes and diffs snapshots of a
TARGET (``volume:NAME``, ``container:NAME`` or a path that is a subvolume/dataset) and
prunes them with a retention policy; :func:`plan_retention` is the policy on its own.
Names follow Bolt: ``bolt-YYYYmmdd-HHMMSS`` (UTC). A restore never loses data: the
original is kept as a read-only ``pre-restore`` snapshot, and a failure at any step puts
everything back. See ``docs/snapshots.md``.
"""

from __future__ import annotations

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
from ._source import DEFAULT_DIR_NAME, Source
from ._steps import Progress
from ._targets import Target, parse_target
from ._zfs import ZfsDriver

__all__ = [
    "DEFAULT_DIR_NAME",
    "BtrfsDriver",
    "Mount",
    "Progress",
    "PruneResult",
    "RestoreError",
    "RestoreResult",
    "RetentionPlan",
    "Runner",
    "SizeDiff",
    "Snapshot",
    "SnapshotCommandError",
    "SnapshotError",
    "SnapshotExists",
    "SnapshotManager",
    "SnapshotNotFound",
    "Source",
    "Target",
    "UnsupportedFilesystem",
    "ZfsDriver",
    "bolt_name",
    "check_name",
    "find_mount",
    "parse_target",
    "plan_retention",
    "run_command",
]
