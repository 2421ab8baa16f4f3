"""BTRFS driver: read-only subvolume snapshots with a JSON sidecar, through ``btrfs``.

Layout, under the configured snapshot folder (on the same filesystem as the source:
BTRFS snapshots cannot cross filesystems)::

    SNAPSHOT_DIR/<source folder>/bolt-20261207-190503        read-only snapshot
    SNAPSHOT_DIR/<source folder>/bolt-20261207-190503.json   its metadata record

The metadata lives in a sidecar next to the snapshot rather than in GhostPanel's store:
it travels with the data (a backup of the folder, a ``btrfs send``, another GhostPanel
on the same host or the agent see the same records), it survives the store being reset,
and the snapshot itself is read-only, so nothing can be written into it.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ._commands import Runner, run_command
from ._errors import SnapshotCommandError, SnapshotExists, SnapshotNotFound, UnsupportedFilesystem
from ._model import SizeDiff, Snapshot
from ._source import Source
from ._steps import Step

__all__ = ["BtrfsDriver"]

#: st_ino of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
_SUBVOLUME_ROOT_INODE = 256


def is_subvolume(path: str) -> bool:
    """Whether ``path`` is the root of a BTRFS subvolume (inode 256 on btrfs)."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == _SUBVOLUME_ROOT_INODE
    except OSError:
        return False


def _write_json(path: str, data: dict[str, Any]) -> None:
    # Written beside and renamed: a crash leaves the old record or the new, never half.
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class BtrfsDriver:
    """Snapshots of BTRFS subvolumes with the ``btrfs`` command.

    Parameters
    ----------
    run
        Runs one command and returns its stdout (tests wrap it to inject failures).
    """

    filesystem = "btrfs"

    def __init__(self, run: Runner = run_command) -> None:
        self._run = run

    def check_source(self, source: Source) -> None:
        """Raise :class:`UnsupportedFilesystem` unless the source is a subvolume."""
        if not is_subvolume(source.path):
            raise UnsupportedFilesystem(
                f"{source.path} is on btrfs ({source.mount.target}) but is not a subvolume, "
                "so it cannot be snapshotted: make it one (`btrfs subvolume create`, then "
                "move the data in) or snapshot the subvolume that holds it",
                path=source.path, filesystem="btrfs")

    # -- records ------------------------------------------------------------------------

    def _record(self, source: Source, name: str) -> Snapshot | None:
        location = os.path.join(source.folder, name)
        if not is_subvolume(location):
            return None
        try:
            with open(f"{location}.json", encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            data = {}  # Sidecar lost or damaged: the snapshot still lists, from its name.
        created = _created(data.get("created"), name, location)
        return Snapshot(
            name=name, source=str(data.get("source", source.key)),
            source_path=str(data.get("source_path", source.path)), location=location,
            filesystem=self.filesystem, created=created,
            size=data.get("size") if isinstance(data.get("size"), int) else None,
            trigger=str(data.get("trigger", "unknown")),
            keep_forever=bool(data.get("keep_forever", False)),
            description=str(data.get("description", "")),
            container=str(data.get("container", "")))

    async def list(self, source: Source) -> builtins.list[Snapshot]:
        """Snapshots of ``source``, newest first (equal times: name descending)."""
        try:
            names = os.listdir(source.folder)
        except FileNotFoundError:
            return []
        found = [record for name in names if not name.endswith((".json", ".tmp"))
                 if (record := self._record(source, name)) is not None]
        found.sort(key=lambda s: (s.created, s.name), reverse=True)
        return found

    async def get(self, source: Source, name: str) -> Snapshot:
        """The snapshot ``name`` of ``source``; :class:`SnapshotNotFound` if none."""
        record = self._record(source, name)
        if record is None:
            raise SnapshotNotFound(f"no snapshot {name!r} of {source.key} in {source.folder}")
        return record

    # -- operations ---------------------------------------------------------------------

    async def size(self, path: str) -> int:
        """Bytes the subvolume at ``path`` refers to (``btrfs filesystem du``)."""
        return (await self._du([path]))[0][0]

    async def _du(self, paths: Sequence[str]) -> builtins.list[tuple[int, int]]:
        # du counts allocated extents: data still in the page cache would count as 0.
        await self._run(["btrfs", "filesystem", "sync", paths[0]])
        text = await self._run(["btrfs", "filesystem", "du", "-s", "--raw", *paths])
        # Header, then "Total Exclusive Set-shared Filename" per path, in order.
        rows = [line.split(None, 3) for line in text.splitlines()[1:] if line.strip()]
        return [(int(row[0]), int(row[1])) for row in rows]

    async def create(self, source: Source, name: str, *, created: datetime, trigger: str,
                     keep_forever: bool, description: str) -> Snapshot:
        """Take a read-only snapshot ``name`` of ``source`` and write its record."""
        self.check_source(source)
        location = os.path.join(source.folder, name)
        if os.path.lexists(location):
            raise SnapshotExists(f"a snapshot {name!r} of {source.key} already exists "
                                 f"({location})")
        os.makedirs(source.folder, exist_ok=True)
        await self._run(["btrfs", "subvolume", "snapshot", "-r", source.path, location])
        try:
            snapshot = Snapshot(
                name=name, source=source.key, source_path=source.path, location=location,
                filesystem=self.filesystem, created=created, size=await self.size(location),
                trigger=trigger, keep_forever=keep_forever, description=description,
                container=source.container)
            _write_json(f"{location}.json", snapshot.to_json())
        except BaseException:
            # No snapshot without its record: it would list as "unknown" forever.
            with contextlib.suppress(SnapshotCommandError):
                await self._run(["btrfs", "subvolume", "delete", location])
            raise
        return snapshot

    async def delete(self, snapshot: Snapshot) -> None:
        """Delete the snapshot subvolume, then its record."""
        await self._run(["btrfs", "subvolume", "delete", snapshot.location])
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{snapshot.location}.json")

    async def set_keep_forever(self, snapshot: Snapshot, keep: bool) -> Snapshot:
        """Change ``keep_forever`` in the record (the snapshot itself stays read-only)."""
        snapshot.keep_forever = keep
        _write_json(f"{snapshot.location}.json", snapshot.to_json())
        return snapshot

    async def diff(self, a: Snapshot, b: Snapshot) -> SizeDiff:
        """Sizes of two snapshots and what each holds alone."""
        (size_a, exclusive_a), (size_b, exclusive_b) = await self._du([a.location, b.location])
        return SizeDiff(a.source, a.name, b.name, size_a, size_b, exclusive_a, exclusive_b)

    # -- restore ------------------------------------------------------------------------

    def safety_label(self, source: Source, safety_name: str, stamp: str) -> str:
        """Where a restore keeps the original: the ``pre-restore`` snapshot's name."""
        return safety_name

    def restore_steps(self, source: Source, snapshot: Snapshot, *, safety_name: str,
                      stamp: str, now: datetime) -> builtins.list[Step]:
        """The filesystem steps of a restore, each with its undo.

        ``stage`` makes a writable snapshot of ``snapshot`` beside the source;
        ``set-aside`` renames the source away (same directory, so nothing is copied);
        ``swap-in`` renames the staged copy into its place; ``safety`` moves the
        original into the snapshot folder as a read-only ``pre-restore`` snapshot
        named ``safety_name``. The original is only ever renamed, never deleted or
        copied (an undo deletes nothing but the staged copy), so no step can lose it.
        """
        parent, base = os.path.split(source.path.rstrip("/"))
        staged = os.path.join(parent, f".{base}.restoring-{stamp}")
        aside = os.path.join(parent, f".{base}.pre-restore-{stamp}")
        safety = os.path.join(source.folder, safety_name)
        run = self._run

        async def stage() -> None:
            await run(["btrfs", "subvolume", "snapshot", snapshot.location, staged])

        async def unstage() -> None:
            if is_subvolume(staged):
                await run(["btrfs", "subvolume", "delete", staged])

        async def set_aside() -> None:
            os.rename(source.path, aside)

        async def put_back() -> None:
            os.rename(aside, source.path)

        async def swap_in() -> None:
            os.rename(staged, source.path)

        async def swap_out() -> None:
            os.rename(source.path, staged)

        async def keep_safety() -> None:
            os.makedirs(source.folder, exist_ok=True)
            os.rename(aside, safety)
            try:
                await run(["btrfs", "property", "set", "-ts", safety, "ro", "true"])
                record = Snapshot(
                    name=safety_name, source=source.key, source_path=source.path,
                    location=safety, filesystem=self.filesystem, created=now,
                    size=await self.size(safety), trigger="pre-restore",
                    description=f"the data as it was before {snapshot.name} was restored",
                    container=source.container)
                _write_json(f"{safety}.json", record.to_json())
            except BaseException:
                await unkeep_safety()
                raise

        async def unkeep_safety() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{safety}.json")
            await run(["btrfs", "property", "set", "-ts", safety, "ro", "false"])
            os.rename(safety, aside)

        return [
            Step("stage", f"made a writable copy of {snapshot.name} at {staged}",
                 stage, unstage),
            Step("set-aside", f"moved the original {source.path} aside to {aside}",
                 set_aside, put_back),
            Step("swap-in", f"moved the restored copy into {source.path}", swap_in, swap_out),
            Step("safety", f"kept the original as snapshot {safety_name}",
                 keep_safety, unkeep_safety),
        ]


def _created(value: Any, name: str, location: str) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    with contextlib.suppress(ValueError):
        return datetime.strptime(name[:20], "bolt-%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    return datetime.fromtimestamp(os.stat(location).st_mtime, UTC)
