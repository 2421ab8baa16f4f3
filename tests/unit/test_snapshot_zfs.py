"""The ZFS driver against recorded ``zfs`` output and a model of a pool.

This machine has no ZFS module (tests/data/zfs/README.md): list parsing replays
recorded output; create, delete and restore run on :class:`FakePool`, which applies
the ``zfs`` commands the driver sends to a small model of datasets and snapshots, so
that a failure can be injected before every single command of a restore.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.snapshots import (
    RestoreError,
    SnapshotCommandError,
    SnapshotManager,
    UnsupportedFilesystem,
)

DATA = Path(__file__).parent.parent / "data" / "zfs"
NOW = datetime(2026, 12, 7, 19, 0, 0, tzinfo=UTC)


class FakePool:
    """``tank/games`` mounted at ``mount``; applies the zfs commands it is sent."""

    def __init__(self, mount: Path, *, local_mountpoint: str | None = None) -> None:
        self.mount = mount
        self.datasets: dict[str, dict[str, Any]] = {
            "tank/games": {"data": "current", "readonly": False,
                           "mountpoint": local_mountpoint, "canmount": "on"}}
        self.snapshots: dict[str, dict[str, str]] = {}
        self.commands: list[list[str]] = []
        self.fail_at: int | None = None  # index among the mutating commands
        self.mutations = 0

    async def __call__(self, argv: Sequence[str]) -> str:
        argv = list(argv)
        self.commands.append(argv)
        if argv[0] == "findmnt":
            return json.dumps({"filesystems": [{"fstype": "zfs", "target": str(self.mount),
                                                "source": "tank/games"}]})
        verb = argv[1]
        if verb in ("list", "get"):
            return self._read(argv)
        if self.fail_at is not None and self.mutations == self.fail_at:
            self.fail_at = None  # one failure: the undo commands then work
            raise SnapshotCommandError(argv, 1, "cannot do it: injected")
        self.mutations += 1
        getattr(self, "_" + verb)(argv[2:])
        return ""

    def _read(self, argv: list[str]) -> str:
        if argv[1] == "get":
            dataset = self.datasets[argv[-1]]
            if dataset["mountpoint"] is None:
                return f"/{argv[-1]}\tdefault\n"
            return f"{dataset['mountpoint']}\tlocal\n"
        dataset = argv[-1]
        lines = []
        for full, props in self.snapshots.items():
            if full.startswith(dataset + "@"):
                lines.append("\t".join([full, props.get("creation", str(int(NOW.timestamp()))),
                                        "1000", "10",
                                        *(props.get(f"ghostpanel:{key}", "-") for key in
                                          ("trigger", "keep_forever", "description",
                                           "source", "container"))]))
        return "\n".join(lines) + "\n"

    def _snapshot(self, args: list[str]) -> None:
        props = dict(value.split("=", 1) for value in args[1:-1:2])
        dataset, _, _ = args[-1].partition("@")
        props["data"] = self.datasets[dataset]["data"]
        self.snapshots[args[-1]] = props

    def _clone(self, args: list[str]) -> None:
        source, target = args[-2:]
        self.datasets[target] = {"data": self.snapshots[source]["data"], "readonly": False,
                                 "mountpoint": None, "canmount": "noauto",
                                 "origin": source}

    def _rename(self, args: list[str]) -> None:
        old, new = args
        assert new not in self.datasets, f"zfs rename onto existing {new}"
        self.datasets[new] = self.datasets.pop(old)
        for full in [f for f in self.snapshots if f.startswith(old + "@")]:
            self.snapshots[new + full[len(old):]] = self.snapshots.pop(full)
        for dataset in self.datasets.values():
            if dataset.get("origin", "").startswith(old + "@"):
                dataset["origin"] = new + dataset["origin"][len(old):]

    def _set(self, args: list[str]) -> None:
        dataset = self.datasets[args[-1]] if "@" not in args[-1] else \
            self.snapshots[args[-1]]
        for assignment in args[:-1]:
            key, value = assignment.split("=", 1)
            if key == "readonly":
                dataset["readonly"] = value == "on"
            elif key == "mountpoint":
                dataset["mountpoint"] = value
            else:
                dataset[key] = value

    def _destroy(self, args: list[str]) -> None:
        if "@" in args[-1]:
            del self.snapshots[args[-1]]
        else:
            del self.datasets[args[-1]]

    def _inherit(self, args: list[str]) -> None:
        self.datasets[args[-1]][args[0]] = None

    def _promote(self, args: list[str]) -> None:
        # The clone takes its origin's snapshots up to the one it was cloned from, and
        # the origin becomes a clone of it (zfs-promote(8)).
        clone = args[-1]
        origin = self.datasets[clone].pop("origin", None)
        if origin is None:
            return
        parent, _, snap = origin.partition("@")
        names = [f for f in self.snapshots if f.startswith(parent + "@")]
        for full in names[:names.index(origin) + 1]:
            self.snapshots[clone + full[len(parent):]] = self.snapshots.pop(full)
        self.datasets[parent]["origin"] = f"{clone}@{snap}"

    def _mount(self, args: list[str]) -> None:
        assert args[-1] in self.datasets

    def _unmount(self, args: list[str]) -> None:
        assert args[-1] in self.datasets


def test_list_parses_recorded_output_and_leaves_other_tools_snapshots_out(
        tmp_path: Path) -> None:
    recorded = (DATA / "list-snapshots.txt").read_text()
    findmnt = json.loads((DATA / "findmnt-dataset.json").read_text())
    findmnt["filesystems"][0]["target"] = str(tmp_path)
    sent: list[list[str]] = []

    async def run(argv: Sequence[str]) -> str:
        sent.append(list(argv))
        return json.dumps(findmnt) if argv[0] == "findmnt" else recorded

    async def go() -> list[Any]:
        return await SnapshotManager(run=run).list(str(tmp_path))

    import asyncio
    found = asyncio.run(go())
    assert [s.name for s in found] == ["before-update", "bolt-20261206-020000",
                                       "bolt-20261205-020000"]
    newest = found[0]
    assert newest.keep_forever is True
    assert newest.description == "before the 1.21 update"
    assert newest.container == "mc_server"
    assert newest.source == "volume:games"
    assert newest.location == "tank/games@before-update"
    assert newest.created == datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
    assert found[1].size == 53477376 and found[1].extra["used"] == 65536
    assert found[2].trigger == "daily"
    assert sent[-1][:4] == ["zfs", "list", "-H", "-p"]
    assert sent[-1][-1] == "tank/games"


async def test_create_sets_the_record_as_user_properties(tmp_path: Path) -> None:
    pool = FakePool(tmp_path)
    manager = SnapshotManager(run=pool, clock=lambda: NOW)
    [made] = await manager.create(str(tmp_path), keep_forever=True, description="a b")
    assert made.name == "bolt-20261207-190000"
    create = next(c for c in pool.commands if c[:2] == ["zfs", "snapshot"])
    assert create[-1] == "tank/games@bolt-20261207-190000"
    assert "ghostpanel:keep_forever=true" in create
    assert "ghostpanel:description=a b" in create  # one argument: no shell, no quoting
    assert made.keep_forever is True
    # The same second again: a suffix, never a reused name.
    [again] = await manager.create(str(tmp_path))
    assert again.name == "bolt-20261207-190000-1"
    second = [c for c in pool.commands if c[:2] == ["zfs", "snapshot"]][-1]
    assert not any(a.startswith("ghostpanel:description=") for a in second)
    assert again.description == ""
    with pytest.raises(ValueError, match="tabs or line breaks"):
        await manager.create(str(tmp_path), description="two\nlines")
    await manager.delete(str(tmp_path), again.name)
    assert pool.commands[-1] == ["zfs", "destroy", "tank/games@bolt-20261207-190000-1"]


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", ""])
async def test_a_name_that_could_leave_the_snapshot_folder_is_refused(
        tmp_path: Path, name: str) -> None:
    pool = FakePool(tmp_path)
    manager = SnapshotManager(run=pool, clock=lambda: NOW)
    for operation in (manager.delete, manager.restore):
        with pytest.raises(ValueError, match="invalid snapshot name"):
            await operation(str(tmp_path), name)
    assert not any(c[:2] in (["zfs", "destroy"], ["zfs", "clone"]) for c in pool.commands)


async def test_a_path_inside_a_dataset_is_refused(tmp_path: Path) -> None:
    inner = tmp_path / "world"
    inner.mkdir()
    pool = FakePool(tmp_path)
    with pytest.raises(UnsupportedFilesystem, match="not a dataset itself") as caught:
        await SnapshotManager(run=pool).create(str(inner))
    assert caught.value.filesystem == "zfs"


@pytest.mark.parametrize("local", [None, "/srv/games"])
async def test_restore_swaps_datasets_and_keeps_the_original(
        tmp_path: Path, local: str | None) -> None:
    pool = FakePool(tmp_path, local_mountpoint=local)
    manager = SnapshotManager(run=pool, clock=lambda: NOW)
    [snapshot] = await manager.create(str(tmp_path))
    pool.datasets["tank/games"]["data"] = "changed"
    result = await manager.restore(str(tmp_path), snapshot.name)
    assert pool.datasets["tank/games"]["data"] == "current"
    assert pool.datasets["tank/games"]["mountpoint"] == local
    [aside] = [name for name in pool.datasets if name != "tank/games"]
    assert aside.startswith("tank/games.pre-restore-")
    assert pool.datasets[aside]["data"] == "changed"
    assert pool.datasets[aside]["readonly"] is True
    assert pool.datasets[aside]["ghostpanel:trigger"] == "pre-restore"
    assert result.safety == [aside]
    # After the promote the restored dataset owns the snapshot: it lists there.
    assert [s.name for s in await manager.list(str(tmp_path))] == [snapshot.name]
    # Never `zfs rollback`: it destroys the snapshots newer than the target.
    assert not any(c[:2] == ["zfs", "rollback"] for c in pool.commands)


@pytest.mark.parametrize("local", [None, "/srv/games"])
async def test_a_failure_at_each_restore_command_leaves_the_original(
        tmp_path: Path, local: str | None) -> None:
    failures = 0
    for fail_at in range(100):
        pool = FakePool(tmp_path, local_mountpoint=local)
        manager = SnapshotManager(run=pool, clock=lambda: NOW)
        [snapshot] = await manager.create(str(tmp_path))
        before_snapshots = dict(pool.snapshots)
        pool.datasets["tank/games"]["data"] = "changed"
        before = json.loads(json.dumps(pool.datasets))
        pool.fail_at = pool.mutations + fail_at
        try:
            await manager.restore(str(tmp_path), snapshot.name)
        except RestoreError as error:
            failures += 1
            assert error.undo_failures == []
            assert pool.datasets == before, f"failure at command {fail_at}"
            assert pool.snapshots == before_snapshots
            continue
        break
    # clone, rename, rename, canmount, mount, promote, readonly; a local mount point
    # adds two `zfs set mountpoint`: each of them failed once.
    assert failures == (9 if local else 7)


class StubContainer:
    """Just what a restore asks of a container: its mounts, state, stop and start."""

    def __init__(self, name: str, source: Path, log: list[str], *,
                 stop_fails: bool = False) -> None:
        self.name = name
        self.state = "running"
        self.attrs = {"Mounts": [{"Type": "bind", "Source": str(source)}]}
        self._log = log
        self._stop_fails = stop_fails

    async def stop(self, *, timeout: int | None = None) -> None:
        if self._stop_fails:
            raise SnapshotCommandError(["stop", self.name], 1, "injected")
        self.state = "exited"
        self._log.append(f"stop {self.name}")

    async def start(self) -> None:
        self.state = "running"
        self._log.append(f"start {self.name}")


class StubEnvironment:
    def __init__(self, containers: list[StubContainer]) -> None:
        self.containers = self
        self._containers = containers

    async def list(self, *, all: bool = False) -> list[StubContainer]:
        return self._containers


async def test_restore_stops_the_users_and_a_failed_stop_restarts_the_stopped(
        tmp_path: Path) -> None:
    log: list[str] = []
    web = StubContainer("web", tmp_path, log)
    other = StubContainer("other", tmp_path / "elsewhere", log)
    pool = FakePool(tmp_path)
    manager = SnapshotManager(StubEnvironment([web, other]), run=pool,  # type: ignore[arg-type]
                              clock=lambda: NOW)
    [snapshot] = await manager.create(str(tmp_path))
    result = await manager.restore(str(tmp_path), snapshot.name)
    assert result.restarted == ["web"]  # "other" does not mount the path
    assert log == ["stop web", "start web"]

    log.clear()
    db = StubContainer("db", tmp_path, log, stop_fails=True)
    manager.env = StubEnvironment([web, db])  # type: ignore[assignment]
    with pytest.raises(RestoreError, match="injected") as caught:
        await manager.restore(str(tmp_path), snapshot.name)
    assert caught.value.step == "stop"
    assert log == ["stop web", "start web"]  # web runs again; nothing else was done
    assert web.state == "running"
