"""Snapshot operations on a TARGET: list, create, restore, delete, diff, prune."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ._btrfs import BtrfsDriver
from ._commands import Runner, run_command
from ._errors import SnapshotError, SnapshotNotFound
from ._model import SizeDiff, Snapshot, bolt_name, check_name
from ._retention import RetentionPlan, plan_retention
from ._source import Source
from ._steps import Progress, Step, run_steps
from ._targets import Target, parse_target, resolve_sources, users_of
from ._zfs import ZfsDriver

if TYPE_CHECKING:
    from ..engine import Container, Environment

__all__ = ["PruneResult", "RestoreResult", "SnapshotManager"]

#: A retention plan and the snapshots it was made for (or deletes).
_Plan = tuple[RetentionPlan, list[Snapshot]]


class Driver(Protocol):
    """What :class:`BtrfsDriver` and :class:`ZfsDriver` both offer."""

    filesystem: str

    def check_source(self, source: Source) -> None: ...
    async def list(self, source: Source) -> builtins.list[Snapshot]: ...
    async def get(self, source: Source, name: str) -> Snapshot: ...
    async def create(self, source: Source, name: str, *, created: datetime, trigger: str,
                     keep_forever: bool, description: str) -> Snapshot: ...
    async def delete(self, snapshot: Snapshot) -> None: ...
    async def diff(self, a: Snapshot, b: Snapshot) -> SizeDiff: ...
    def restore_steps(self, source: Source, snapshot: Snapshot, *, safety_name: str,
                      stamp: str, now: datetime) -> builtins.list[Step]: ...
    def safety_label(self, source: Source, safety_name: str, stamp: str) -> str: ...


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did.

    Attributes
    ----------
    restored
        The snapshot restored, one per source.
    safety
        Where each source's data as it was is kept: the ``pre-restore`` snapshot's name
        (BTRFS) or the renamed dataset (ZFS, ``DATASET.pre-restore-STAMP``).
    restarted
        Containers stopped for the restore and started again.
    """

    restored: builtins.list[Snapshot]
    safety: builtins.list[str]
    restarted: builtins.list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PruneResult:
    """What a prune planned and did.

    Attributes
    ----------
    plan
        The retention plan (``keep``, ``remove``, ``reasons``), by snapshot name.
    snapshots
        Every snapshot of the target the plan was made for.
    deleted
        The snapshots deleted (none on a dry run).
    """

    plan: RetentionPlan
    snapshots: list[Snapshot]
    deleted: list[Snapshot]


class SnapshotManager:
    """Snapshots of volumes, containers' data and host paths on BTRFS or ZFS.

    Parameters
    ----------
    env
        The engine environment that knows the volumes and containers (needed for
        ``volume:``/``container:`` targets and to stop a source's users on restore).
    snapshot_dir
        Where BTRFS snapshots go (the Boltfile's ``snapshot_path``); default: a
        ``.ghostpanel-snapshots`` folder at the top of the source's filesystem.
    run
        Runs ``btrfs``/``zfs``/``findmnt`` (tests replay or break commands with it).
    clock
        The current time (UTC); names and ``created`` come from it.

    Examples
    --------
    >>> manager = SnapshotManager(env)  # doctest: +SKIP
    >>> [s.name for s in await manager.create("volume:game-data")]  # doctest: +SKIP
    ['bolt-20261207-190503']
    """

    def __init__(self, env: Environment | None = None, *, snapshot_dir: str | None = None,
                 run: Runner = run_command,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.env = env
        self.snapshot_dir = snapshot_dir
        self._run = run
        self._clock = clock
        self._drivers: dict[str, Driver] = {"btrfs": BtrfsDriver(run), "zfs": ZfsDriver(run)}

    def driver(self, source: Source) -> Driver:
        """The driver for ``source``'s filesystem."""
        return self._drivers[source.mount.filesystem]

    async def sources(self, target: str | Target) -> builtins.list[Source]:
        """The subvolumes/datasets behind ``target``, each checked as snapshottable."""
        parsed = parse_target(target) if isinstance(target, str) else target
        sources = await resolve_sources(parsed, env=self.env, snapshot_dir=self.snapshot_dir,
                                        run=self._run)
        for source in sources:
            self.driver(source).check_source(source)
        return sources

    async def list(self, target: str | Target) -> builtins.list[Snapshot]:
        """Every snapshot of the target's sources, newest first."""
        found: builtins.list[Snapshot] = []
        for source in await self.sources(target):
            found += await self.driver(source).list(source)
        found.sort(key=lambda s: (s.created, s.name), reverse=True)
        return found

    async def _unique_name(self, sources: builtins.list[Source], base: str) -> str:
        taken = {s.name for source in sources for s in await self.driver(source).list(source)}
        name, counter = base, 0
        while name in taken:
            counter += 1
            name = f"{base}-{counter}"
        return name

    async def create(self, target: str | Target, *, name: str | None = None,
                     keep_forever: bool = False, description: str = "",
                     trigger: str = "manual", pause: bool = False,
                     progress: Progress | None = None) -> builtins.list[Snapshot]:
        """Snapshot every source of ``target`` under one name.

        Parameters
        ----------
        name
            The name (default: ``bolt-YYYYmmdd-HHMMSS`` of now, UTC, with ``-N`` added
            if a source already has one of that name).
        pause
            Pause the running containers that use the sources while the snapshots are
            taken (consistent data of a running database), unpaused afterwards.

        Raises
        ------
        SnapshotExists
            ``name`` is taken for one of the sources (nothing was created).
        SnapshotError
            A snapshot failed; those already made for other sources are deleted again.
        """
        sources = await self.sources(target)
        now = self._clock()
        if name is None:
            name = await self._unique_name(sources, bolt_name(now))
        else:
            check_name(name)
        paused: builtins.list[Container] = []
        made: builtins.list[tuple[Driver, Snapshot]] = []
        try:
            if pause:
                for container in await users_of(self.env, sources):
                    if container.state == "running":
                        await container.pause()
                        paused.append(container)
            for index, source in enumerate(sources):
                if progress is not None:
                    progress(f"snapshot {source.key}", index, len(sources))
                driver = self.driver(source)
                made.append((driver, await driver.create(
                    source, name, created=now, trigger=trigger, keep_forever=keep_forever,
                    description=description)))
        except BaseException:
            # All of the target's sources or none: a half snapshot restores half the data.
            for driver, snapshot in reversed(made):
                with contextlib.suppress(SnapshotError):
                    await driver.delete(snapshot)
            raise
        finally:
            for container in paused:
                await container.unpause()
        return [snapshot for _, snapshot in made]

    async def _named(self, sources: builtins.list[Source],
                     name: str) -> builtins.list[tuple[Source, Snapshot]]:
        # Every lookup by name passes here: a name such as ``..`` would make the BTRFS
        # driver read (and delete or restore) outside the snapshot folder.
        check_name(name)
        found = []
        for source in sources:
            with contextlib.suppress(SnapshotNotFound):
                found.append((source, await self.driver(source).get(source, name)))
        if not found:
            keys = ", ".join(source.key for source in sources)
            raise SnapshotNotFound(f"no snapshot {name!r} of {keys}")
        return found

    async def delete(self, target: str | Target, name: str) -> builtins.list[Snapshot]:
        """Delete snapshot ``name`` of every source of ``target`` that has it."""
        deleted = []
        for source, snapshot in await self._named(await self.sources(target), name):
            await self.driver(source).delete(snapshot)
            deleted.append(snapshot)
        return deleted

    async def diff(self, target: str | Target, a: str, b: str) -> builtins.list[SizeDiff]:
        """Sizes of snapshots ``a`` and ``b`` of each source that has both."""
        sources = await self.sources(target)
        first = dict((s.key, (s, snap)) for s, snap in await self._named(sources, a))
        diffs = []
        for source, snapshot_b in await self._named(sources, b):
            if source.key in first:
                diffs.append(await self.driver(source).diff(first[source.key][1], snapshot_b))
        if not diffs:
            raise SnapshotNotFound(f"no source of {target} has both {a!r} and {b!r}")
        return diffs

    async def restore(self, target: str | Target, name: str, *, stop_timeout: int = 10,
                      progress: Progress | None = None) -> RestoreResult:
        """Put the data of snapshot ``name`` back in place, losing nothing.

        The containers that use the sources are stopped; each source gets a writable
        copy of the snapshot beside it, the original is moved aside, the copy moved in,
        and the original kept as a read-only ``pre-restore`` snapshot; the containers
        that were running are started again. A failure at any step undoes the steps
        before it: the original is back in place and the containers run again.

        Raises
        ------
        SnapshotNotFound
            No source of the target has a snapshot ``name``.
        RestoreError
            A step failed; the message names it and says what was put back.
        """
        pairs = await self._named(await self.sources(target), name)
        now = self._clock()
        stamp = now.strftime("%Y%m%d-%H%M%S-%f")
        safety_name = await self._unique_name([s for s, _ in pairs], bolt_name(now))
        users = await users_of(self.env, [source for source, _ in pairs])
        running = [container for container in users if container.state in
                   ("running", "paused", "restarting")]
        stopped: builtins.list[Container] = []

        async def stop() -> None:
            try:
                for container in running:
                    await container.stop(timeout=stop_timeout)
                    stopped.append(container)
            except BaseException:
                # A step that fails must leave nothing changed: start those it stopped.
                await start_stopped()
                raise

        async def start_stopped() -> None:
            for container in stopped:
                await container.start()

        steps = [Step("stop", "stopped the containers that use the data "
                      f"({', '.join(c.name for c in running) or 'none running'})",
                      stop, start_stopped)]
        for source, snapshot in pairs:
            steps += self.driver(source).restore_steps(source, snapshot,
                                                       safety_name=safety_name,
                                                       stamp=stamp, now=now)
        steps.append(Step("restart", "started the containers again", start_stopped))
        await run_steps(steps, what=f"restore of {target} to {name}", progress=progress)
        return RestoreResult([snapshot for _, snapshot in pairs],
                             [self.driver(source).safety_label(source, safety_name, stamp)
                              for source, _ in pairs], [c.name for c in stopped])

    async def plan_prune(self, target: str | Target,
                         policy: Mapping[str, Any]) -> _Plan:
        """The retention plan for the target's snapshots, and those snapshots.

        A container's sources share names: a name stands for all of them, kept when
        any of them is ``keep_forever``.
        """
        snapshots = await self.list(target)
        merged: dict[str, dict[str, Any]] = {}
        for snapshot in snapshots:
            entry = merged.setdefault(snapshot.name, {"name": snapshot.name,
                                                      "time": snapshot.created,
                                                      "keep_forever": False})
            entry["time"] = min(entry["time"], snapshot.created)
            entry["keep_forever"] = entry["keep_forever"] or snapshot.keep_forever
        return plan_retention(merged.values(), policy), snapshots

    async def prune(self, target: str | Target, policy: Mapping[str, Any], *,
                    dry_run: bool = False,
                    progress: Progress | None = None) -> PruneResult:
        """Apply a retention policy: delete what the plan removes (nothing on a dry run)."""
        plan, snapshots = await self.plan_prune(target, policy)
        doomed = set(plan.remove)
        victims = [s for s in snapshots if s.name in doomed]
        deleted: builtins.list[Snapshot] = []
        if not dry_run:
            sources = {source.key: source for source in await self.sources(target)}
            for index, snapshot in enumerate(victims):
                if progress is not None:
                    progress(f"delete {snapshot.name} of {snapshot.source}", index,
                             len(victims))
                source = sources.get(snapshot.source) or next(iter(sources.values()))
                await self.driver(source).delete(snapshot)
                deleted.append(snapshot)
        return PruneResult(plan, snapshots, deleted)
