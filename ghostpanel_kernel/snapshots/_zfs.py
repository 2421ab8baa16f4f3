"""ZFS driver: dataset snapshots through the ``zfs`` command.

A snapshot is ``DATASET@bolt-YYYYmmdd-HHMMSS``; ZFS keeps it inside the dataset (it is
read-only by nature, and visible under ``MOUNTPOINT/.zfs/snapshot/``), so the
configured snapshot folder does not apply. The metadata record is kept in ZFS user
properties on the snapshot itself (``ghostpanel:trigger``, ``ghostpanel:keep_forever``,
``ghostpanel:description``, ``ghostpanel:source``, ``ghostpanel:container``): it goes
wherever the snapshot goes, ``zfs send`` included. Only snapshots that carry
``ghostpanel:source`` or a ``bolt-`` name are listed: another tool's snapshots are
never pruned.

Commands use ``-H -p`` (no header, tab-separated, exact numbers, ``creation`` in
seconds since the epoch): the format the parser and the recorded test outputs follow.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from ._commands import Runner, run_command
from ._errors import SnapshotExists, SnapshotNotFound, UnsupportedFilesystem
from ._model import SizeDiff, Snapshot
from ._source import Source
from ._steps import Step

__all__ = ["ZfsDriver"]

_PROPERTIES = ("name", "creation", "referenced", "used", "ghostpanel:trigger",
               "ghostpanel:keep_forever", "ghostpanel:description", "ghostpanel:source",
               "ghostpanel:container")


def _value(text: str) -> str:
    # zfs prints "-" for a user property that is not set.
    return "" if text == "-" else text


class ZfsDriver:
    """Snapshots of ZFS datasets with the ``zfs`` command.

    Parameters
    ----------
    run
        Runs one command and returns its stdout (tests replay recorded output).
    """

    filesystem = "zfs"

    def __init__(self, run: Runner = run_command) -> None:
        self._run = run

    @staticmethod
    def dataset(source: Source) -> str:
        """The dataset of ``source`` (findmnt's SOURCE for a zfs mount)."""
        return source.mount.source

    def check_source(self, source: Source) -> None:
        """Raise :class:`UnsupportedFilesystem` unless the path is a dataset's mount point."""
        if source.path.rstrip("/") != source.mount.target.rstrip("/"):
            raise UnsupportedFilesystem(
                f"{source.path} is inside ZFS dataset {source.mount.source} (mounted at "
                f"{source.mount.target}) but is not a dataset itself: snapshot "
                f"{source.mount.target}, or make {source.path} a dataset (`zfs create`)",
                path=source.path, filesystem="zfs")

    def _parse(self, source: Source, line: str) -> Snapshot | None:
        fields = line.split("\t")
        if len(fields) != len(_PROPERTIES):
            return None
        full, creation, referenced, used, trigger, keep, description, key, container = (
            map(_value, fields))
        dataset, _, name = full.partition("@")
        if not key and not name.startswith("bolt-"):
            return None
        return Snapshot(
            name=name, source=key or source.key, source_path=source.path, location=full,
            filesystem=self.filesystem, created=datetime.fromtimestamp(int(creation), UTC),
            size=int(referenced), trigger=trigger or "unknown",
            keep_forever=keep == "true", description=description, container=container,
            extra={"used": int(used), "dataset": dataset})

    async def list(self, source: Source) -> builtins.list[Snapshot]:
        """GhostPanel's snapshots of the dataset, newest first."""
        self.check_source(source)
        text = await self._run(["zfs", "list", "-H", "-p", "-t", "snapshot", "-d", "1",
                                "-o", ",".join(_PROPERTIES), self.dataset(source)])
        found = [s for line in text.splitlines() if line
                 if (s := self._parse(source, line)) is not None]
        found.sort(key=lambda s: (s.created, s.name), reverse=True)
        return found

    async def get(self, source: Source, name: str) -> Snapshot:
        """The snapshot ``name``; :class:`SnapshotNotFound` if the dataset has none."""
        for snapshot in await self.list(source):
            if snapshot.name == name:
                return snapshot
        raise SnapshotNotFound(f"no snapshot {name!r} of {source.key} "
                               f"(dataset {self.dataset(source)})")

    async def create(self, source: Source, name: str, *, created: datetime, trigger: str,
                     keep_forever: bool, description: str) -> Snapshot:
        """``zfs snapshot`` with the record as user properties; one atomic command."""
        self.check_source(source)
        if any(s.name == name for s in await self.list(source)):
            raise SnapshotExists(f"a snapshot {name!r} of {source.key} already exists")
        full = f"{self.dataset(source)}@{name}"
        if any(character in description for character in "\t\n\r"):
            # `zfs list -H` separates fields by tabs and rows by lines.
            raise ValueError("a ZFS snapshot's description cannot hold tabs or line breaks")
        properties = {"trigger": trigger, "keep_forever": "true" if keep_forever else "false",
                      "source": source.key, "description": description,
                      "container": source.container}
        options = [argument for key, value in properties.items() if value
                   # An empty value is left unset: it lists as "-", read back as "".
                   for argument in ("-o", f"ghostpanel:{key}={value}")]
        await self._run(["zfs", "snapshot", *options, full])
        return await self.get(source, name)

    async def delete(self, snapshot: Snapshot) -> None:
        """``zfs destroy DATASET@NAME`` (never a dataset: the name must hold an ``@``)."""
        if "@" not in snapshot.location:
            raise ValueError(f"refusing to destroy {snapshot.location!r}: not a snapshot")
        await self._run(["zfs", "destroy", snapshot.location])

    async def set_keep_forever(self, snapshot: Snapshot, keep: bool) -> Snapshot:
        """Set ``ghostpanel:keep_forever`` on the snapshot."""
        await self._run(["zfs", "set", f"ghostpanel:keep_forever={'true' if keep else 'false'}",
                         snapshot.location])
        snapshot.keep_forever = keep
        return snapshot

    async def diff(self, a: Snapshot, b: Snapshot) -> SizeDiff:
        """``referenced`` of each and ``used`` (what destroying it would free)."""
        return SizeDiff(a.source, a.name, b.name, a.size or 0, b.size or 0,
                        a.extra.get("used"), b.extra.get("used"))

    async def _mountpoint(self, dataset: str) -> tuple[str, bool]:
        text = await self._run(["zfs", "get", "-H", "-p", "-o", "value,source",
                                "mountpoint", dataset])
        value, _, origin = text.strip().partition("\t")
        return value, origin == "local"

    def safety_label(self, source: Source, safety_name: str, stamp: str) -> str:
        """Where a restore keeps the original: the dataset renamed aside."""
        return f"{self.dataset(source)}.pre-restore-{stamp}"

    def restore_steps(self, source: Source, snapshot: Snapshot, *, safety_name: str,
                      stamp: str, now: datetime) -> builtins.list[Step]:
        """Clone the snapshot, rename the original aside, rename the clone in, keep the
        original read-only as the safety copy; each step with its undo.

        ``zfs rollback`` is not used: it destroys every snapshot newer than the target.
        The original dataset stays, renamed ``DATASET.pre-restore-STAMP``, read-only and
        marked ``ghostpanel:trigger=pre-restore``; ``zfs promote`` makes the restored
        dataset own the older snapshots, so the original can later be destroyed.
        """
        dataset = self.dataset(source)
        staged = f"{dataset}.restoring-{stamp}"
        aside = f"{dataset}.pre-restore-{stamp}"
        run = self._run
        found: list[tuple[str, bool]] = []  # (mountpoint, set locally), read by "stage"

        def local() -> str | None:
            """The dataset's own mountpoint when set on it (it moves with a rename)."""
            return found[0][0] if found and found[0][1] else None

        def command(*argv: str) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                await run(["zfs", *argv])
            return call

        def if_local(make: Callable[[str], Sequence[str]]) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                mountpoint = local()
                if mountpoint is not None:
                    await run(["zfs", *make(mountpoint)])
            return call

        async def stage() -> None:
            found.append(await self._mountpoint(dataset))
            # Not mounted until it takes the original's place.
            await run(["zfs", "clone", "-o", "canmount=noauto", snapshot.location, staged])

        # One command per step: a step that fails has changed nothing, so undoing the
        # steps before it in reverse is always the exact way back.
        return [
            Step("stage", f"cloned {snapshot.location} to {staged}",
                 stage, command("destroy", staged)),
            Step("set-aside", f"renamed the original {dataset} to {aside}",
                 command("rename", dataset, aside), command("rename", aside, dataset)),
            Step("set-aside", f"unmounted the original, now {aside}",
                 if_local(lambda m: ("set", "mountpoint=none", aside)),
                 if_local(lambda m: ("set", f"mountpoint={m}", aside))),
            Step("swap-in", f"renamed the restored clone to {dataset}",
                 command("rename", staged, dataset), command("rename", dataset, staged)),
            Step("swap-in", f"gave {dataset} its mount point",
                 if_local(lambda m: ("set", f"mountpoint={m}", dataset)),
                 if_local(lambda m: ("inherit", "mountpoint", dataset))),
            Step("swap-in", f"let {dataset} mount", command("set", "canmount=on", dataset),
                 command("set", "canmount=noauto", dataset)),
            Step("swap-in", f"mounted the restored {dataset}", command("mount", dataset),
                 command("unmount", dataset)),
            Step("safety", f"made {dataset} own the older snapshots (zfs promote)",
                 command("promote", dataset), command("promote", aside)),
            Step("safety", f"kept the original read-only as {aside}",
                 command("set", "readonly=on", "ghostpanel:trigger=pre-restore",
                         f"ghostpanel:source={source.key}", aside),
                 command("set", "readonly=off", aside)),
        ]
