"""Errors of the snapshot kernel, all :class:`~ghostpanel_kernel.GhostPanelError`."""

from __future__ import annotations

from collections.abc import Sequence

from .._exceptions import GhostPanelError

__all__ = [
    "RestoreError",
    "SnapshotCommandError",
    "SnapshotError",
    "SnapshotExists",
    "SnapshotNotFound",
    "UnsupportedFilesystem",
]


class SnapshotError(GhostPanelError):
    """A snapshot operation could not be done; the message says why and what is left."""


class UnsupportedFilesystem(SnapshotError):
    """The path is not on BTRFS or ZFS, or is not a subvolume/dataset there.

    Attributes
    ----------
    path
        The path asked about.
    filesystem
        Its filesystem type as ``findmnt`` names it (``ext4``, ``overlay``, ...).
    """

    def __init__(self, message: str, *, path: str, filesystem: str) -> None:
        super().__init__(message)
        self.path = path
        self.filesystem = filesystem


class SnapshotNotFound(SnapshotError, LookupError):
    """No snapshot of that name exists for the target."""


class SnapshotExists(SnapshotError):
    """A snapshot of that name already exists for the source."""


class SnapshotCommandError(SnapshotError):
    """A ``btrfs``/``zfs``/``findmnt`` command failed (or is not installed).

    Attributes
    ----------
    command
        The command line that failed.
    returncode
        Its exit status (127 when the program is missing).
    stderr
        What it wrote on stderr, stripped.
    """

    def __init__(self, command: Sequence[str], returncode: int, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr or f"exit status {returncode}"
        super().__init__(f"`{' '.join(command)}` failed: {detail}")


class RestoreError(SnapshotError):
    """A restore failed at ``step``; everything it had done was undone.

    Attributes
    ----------
    step
        The step that failed (``stop``, ``stage``, ``set-aside``, ``swap-in``,
        ``safety``, ``restart``).
    undo_failures
        Messages of undo actions that failed too (empty: the original is back in place,
        as before the restore); each names what is left where.
    """

    def __init__(self, message: str, *, step: str, undo_failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.step = step
        self.undo_failures = list(undo_failures)
