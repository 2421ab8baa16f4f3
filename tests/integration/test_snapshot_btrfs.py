"""Snapshots on a real loop-mounted BTRFS, with a private Podman engine whose storage
(and so its volumes) lives on it.

One filesystem and one engine for the module (about 3 s to set up); each test makes its
own volumes, containers and subvolumes. Teardown removes the engine's containers and
volumes, stops it, unmounts the filesystem and deletes the image, even after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ghostpanel_kernel import connect
from ghostpanel_kernel.cli import CliContext, cli
from ghostpanel_kernel.engine import Container, Environment, NotFound
from ghostpanel_kernel.snapshots import (
    RestoreError,
    SnapshotCommandError,
    SnapshotManager,
    UnsupportedFilesystem,
    run_command,
)
from tests.btrfs_mount import (  # noqa: F401  (fixtures)
    btrfs_engine_fixture,
    btrfs_fixture,
    btrfs_loop_mount,
    make_subvolume,
)
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

STEPS = ("stop", "stage", "set-aside", "swap-in", "safety", "restart")

# Exits at once on SIGTERM (busybox sleep as PID 1 would ignore it for the whole timeout).
QUICK_STOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


#: Containers the running test made, force-removed after it (its volumes stay until the
#: engine's reset at the end of the module).
_MADE: list[str] = []


@pytest.fixture
async def env(btrfs_engine: PodmanService) -> AsyncIterator[Environment]:
    environment = connect(btrfs_engine.url, name="btrfs")
    try:
        yield environment
    finally:
        for ident in _MADE:
            with contextlib.suppress(NotFound):
                await (await environment.containers.get(ident)).remove(force=True)
        _MADE.clear()
        await environment.aclose()


async def subvolume_volume(env: Environment, files: dict[str, bytes]) -> tuple[str, Path]:
    """A named volume whose data directory is a subvolume holding ``files``."""
    volume = await env.volumes.create(f"gp-snap-{uuid.uuid4().hex[:8]}")
    data = make_subvolume(Path(volume.mountpoint))
    for name, content in files.items():
        (data / name).write_bytes(content)
    return volume.name, data


async def user(env: Environment, mounts: Sequence[str]) -> Container:
    """A started busybox container with ``mounts`` (``-v`` syntax)."""
    name = f"gp-snap-{uuid.uuid4().hex[:8]}"
    _MADE.append(name)
    container = await env.containers.create(image=BUSYBOX_REFERENCE, name=name,
                                            command=QUICK_STOP, volumes=list(mounts))
    await container.start()
    return container


async def read_in(container: Container, path: str) -> str:
    result = await container.exec(["cat", path])
    return result.output


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".restoring-" in p.name
                  or ".pre-restore-" in p.name)


async def test_volume_snapshot_restore_and_the_container_sees_the_old_files(
        env: Environment, btrfs: Path) -> None:
    volume, data = await subvolume_volume(env, {"save.dat": b"level 1\n",
                                                "big.bin": os.urandom(256 << 10)})
    container = await user(env, [f"{volume}:/data"])
    manager = SnapshotManager(env)

    [snapshot] = await manager.create(f"volume:{volume}", description="before the boss")
    assert snapshot.name.startswith("bolt-") and len(snapshot.name) == 20
    assert snapshot.source == f"volume:{volume}"
    assert snapshot.size is not None and snapshot.size >= 256 << 10
    location = Path(snapshot.location)
    # By default under .ghostpanel-snapshots at the top of the volume's filesystem.
    assert location.parent.parent == btrfs / ".ghostpanel-snapshots"
    assert subprocess.run(["btrfs", "property", "get", "-ts", location, "ro"],
                          capture_output=True, text=True, check=True).stdout.strip() \
        == "ro=true"
    record = json.loads(Path(f"{location}.json").read_text())
    assert record["description"] == "before the boss"
    assert record["trigger"] == "manual"
    assert record["keep_forever"] is False

    await container.exec(["sh", "-c", "echo level 9 > /data/save.dat; rm /data/big.bin"])
    assert await read_in(container, "/data/save.dat") == "level 9\n"

    steps: list[str] = []
    result = await manager.restore(f"volume:{volume}", snapshot.name,
                                   progress=lambda name, i, n: steps.append(name))
    assert steps == list(STEPS)
    assert result.restarted == [container.name]
    await container.reload()
    assert container.state == "running"
    assert await read_in(container, "/data/save.dat") == "level 1\n"
    assert (await container.exec(["ls", "/data"])).output.split() == ["big.bin", "save.dat"]
    # The data as it was before the restore is a read-only pre-restore snapshot.
    listed = {s.name: s for s in await manager.list(f"volume:{volume}")}
    safety = listed[result.safety[0]]
    assert safety.trigger == "pre-restore"
    assert Path(safety.location, "save.dat").read_text() == "level 9\n"
    with pytest.raises(OSError):
        Path(safety.location, "new").write_text("x")
    assert leftovers(data.parent) == []


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_at_each_restore_step_leaves_the_original(
        env: Environment, step: str) -> None:
    volume, data = await subvolume_volume(env, {"save.dat": b"old\n"})
    container = await user(env, [f"{volume}:/data"])
    manager = SnapshotManager(env)
    [snapshot] = await manager.create(f"volume:{volume}")
    (data / "save.dat").write_text("current\n")
    before = sorted(s.name for s in await manager.list(f"volume:{volume}"))

    def crash(name: str, index: int, total: int) -> None:
        if name == step:
            raise RuntimeError(f"injected failure at {name}")

    with pytest.raises(RestoreError) as caught:
        await manager.restore(f"volume:{volume}", snapshot.name, progress=crash)
    assert caught.value.step == step
    assert caught.value.undo_failures == []
    assert "everything was put back" in str(caught.value)
    # The original is in place, readable and writable; nothing half-done is left.
    assert (data / "save.dat").read_text() == "current\n"
    (data / "probe").write_text("writable")
    assert leftovers(data.parent) == []
    assert sorted(s.name for s in await manager.list(f"volume:{volume}")) == before
    await container.reload()
    assert container.state == "running"
    assert await read_in(container, "/data/save.dat") == "current\n"


async def test_a_failing_btrfs_command_mid_restore_is_undone(env: Environment) -> None:
    volume, data = await subvolume_volume(env, {"f": b"old"})
    calls: list[list[str]] = []

    async def run(argv: Sequence[str]) -> str:
        calls.append(list(argv))
        if argv[:3] == ["btrfs", "property", "set"] and argv[-1] == "true":
            raise SnapshotCommandError(argv, 1, "ERROR: injected")
        return await run_command(argv)

    manager = SnapshotManager(env, run=run)
    [snapshot] = await manager.create(f"volume:{volume}")
    (data / "f").write_text("new")
    with pytest.raises(RestoreError, match="injected") as caught:
        await manager.restore(f"volume:{volume}", snapshot.name)
    assert caught.value.step == "safety"
    assert (data / "f").read_text() == "new"
    assert leftovers(data.parent) == []
    assert [s.name for s in await manager.list(f"volume:{volume}")] == [snapshot.name]


async def test_container_target_covers_volumes_and_binds_paused(
        env: Environment, btrfs: Path) -> None:
    volume, data = await subvolume_volume(env, {"v": b"volume data"})
    bind = make_subvolume(btrfs / f"bind-{uuid.uuid4().hex[:6]}")
    (bind / "b").write_text("bind data")
    container = await user(env, [f"{volume}:/data", f"{bind}:/bind"])
    manager = SnapshotManager(env)
    states: list[str] = []
    original_pause = Container.pause

    async def spy_pause(self: Container) -> None:
        await original_pause(self)
        await self.reload()
        states.append(self.state)

    Container.pause = spy_pause  # type: ignore[method-assign]
    try:
        made = await manager.create(f"container:{container.name}", pause=True,
                                    keep_forever=True)
    finally:
        Container.pause = original_pause  # type: ignore[method-assign]
    assert states == ["paused"]
    await container.reload()
    assert container.state == "running"
    assert {s.source for s in made} == {f"volume:{volume}", str(bind)}
    assert len({s.name for s in made}) == 1 and all(s.keep_forever for s in made)
    assert {s.container for s in made} == {container.name}
    assert Path(next(s for s in made if s.source == str(bind)).location, "b").read_text() \
        == "bind data"
    # Restore puts both back; delete removes both.
    (bind / "b").write_text("changed")
    (data / "v").write_text("changed")
    result = await manager.restore(f"container:{container.name}", made[0].name)
    assert result.restarted == [container.name]
    assert (bind / "b").read_text() == "bind data"
    assert (data / "v").read_text() == "volume data"
    assert len(await manager.delete(f"container:{container.name}", made[0].name)) == 2
    assert all(s.trigger == "pre-restore"
               for s in await manager.list(f"container:{container.name}"))


async def test_paths_not_on_btrfs_or_not_subvolumes_get_clear_errors(
        btrfs: Path, tmp_path: Path) -> None:
    manager = SnapshotManager()
    with pytest.raises(UnsupportedFilesystem) as caught:
        await manager.create(str(tmp_path))
    filesystem = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(tmp_path)],
                                capture_output=True, text=True, check=True).stdout.strip()
    assert caught.value.filesystem == filesystem
    assert str(tmp_path) in str(caught.value) and f"is on {filesystem}" in str(caught.value)
    plain = btrfs / f"plain-{uuid.uuid4().hex[:6]}"
    plain.mkdir()
    with pytest.raises(UnsupportedFilesystem, match="not a subvolume"):
        await manager.create(str(plain))
    with pytest.raises(UnsupportedFilesystem, match="does not exist"):
        await manager.list(str(btrfs / "missing"))


def cli_run(*args: str, env_url: str | None = None) -> Any:
    def open_environments(names: Sequence[str]) -> list[Environment]:
        assert env_url is not None, "a path target must not open an environment"
        return [connect(env_url, name="btrfs")]

    return CliRunner().invoke(cli, ["snapshot", *args],
                              obj=CliContext(open_environments=open_environments))


def test_cli_on_a_path(btrfs: Path) -> None:
    source = make_subvolume(btrfs / f"game-{uuid.uuid4().hex[:6]}")
    (source / "world").write_bytes(os.urandom(300 << 10))
    target = str(source)
    first = cli_run("create", target, "--description", "fresh world")
    assert first.exit_code == 0, first.output
    name_a = first.stdout.strip()
    (source / "world").write_bytes(os.urandom(600 << 10))
    second = cli_run("create", target, "--name", "after-boss", "--keep-forever", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)[0]["keep_forever"] is True

    listed = cli_run("ls", target, "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["after-boss", name_a]
    table = cli_run("ls", target).stdout
    assert "fresh world" in table and "forever" in table

    diff = json.loads(cli_run("diff", target, name_a, "after-boss", "--json").stdout)
    assert diff[0]["delta"] >= 250 << 10
    assert diff[0]["size_b"] >= 600 << 10

    plan = cli_run("prune", target, "--dry-run", "--max-total", "0")
    assert plan.exit_code == 0, plan.output
    assert "remove   " + name_a in plan.stdout and "keep_forever" in plan.stdout
    assert "would delete 1 snapshot(s), kept 1" in plan.stderr
    assert len(json.loads(cli_run("ls", target, "--json").stdout)) == 2

    restored = cli_run("restore", target, name_a)
    assert restored.exit_code == 0, restored.output
    assert "[4/6] swap-in" in restored.stderr
    assert (source / "world").stat().st_size == 300 << 10

    pruned = cli_run("prune", target, "--max-total", "1", "--json")
    result = json.loads(pruned.stdout)
    assert "after-boss" in result["keep"]  # keep_forever
    assert [s["name"] for s in result["deleted"]] == result["remove"]
    assert len(result["remove"]) == 1
    # Gone from the disk: the subvolume and its record.
    for record in result["deleted"]:
        assert not Path(record["location"]).exists()
        assert not Path(record["location"] + ".json").exists()
    assert [s["name"] for s in json.loads(cli_run("ls", target, "--json").stdout)] == \
        result["keep"]
    assert cli_run("rm", target, "after-boss").exit_code == 0
    # Bad input exits 2 with one clear line.
    for args, message in [(("create", "/proc"), "not on btrfs or zfs"),
                          (("create", target, "--name", "../x"), "invalid snapshot name"),
                          (("restore", target, "nope"), "no snapshot 'nope'"),
                          (("prune", target, "--keep-daily", "-5"), "-1 (all)"),
                          (("ls", "volume:"), "give the volume's name")]:
        bad = cli_run(*args)
        assert bad.exit_code == 2, (args, bad.output)
        assert message in bad.output


async def test_cli_volume_target_through_the_engine(env: Environment,
                                                    btrfs_engine: PodmanService) -> None:
    volume, data = await subvolume_volume(env, {"a": b"1"})

    def invoke(*args: str) -> Any:
        return cli_run(*args, env_url=btrfs_engine.url)

    made = await asyncio.to_thread(invoke, "create", f"volume:{volume}")
    assert made.exit_code == 0, made.output
    listed = await asyncio.to_thread(invoke, "ls", f"volume:{volume}", "--json")
    [record] = json.loads(listed.stdout)
    assert record["source"] == f"volume:{volume}"
    assert record["source_path"] == str(data)


async def test_a_container_snapshot_is_all_or_nothing(env: Environment, btrfs: Path) -> None:
    volume, _ = await subvolume_volume(env, {"v": b"1"})
    bind = make_subvolume(btrfs / f"bind-{uuid.uuid4().hex[:6]}")
    container = await user(env, [f"{volume}:/data", f"{bind}:/bind"])
    snapshots_taken = 0

    async def run(argv: Sequence[str]) -> str:
        nonlocal snapshots_taken
        if argv[:3] == ["btrfs", "subvolume", "snapshot"]:
            snapshots_taken += 1
            if snapshots_taken == 2:
                raise SnapshotCommandError(argv, 1, "ERROR: injected: no space left")
        return await run_command(argv)

    manager = SnapshotManager(env, run=run)
    with pytest.raises(SnapshotCommandError, match="no space left"):
        await manager.create(f"container:{container.name}")
    # The first source's snapshot was deleted again: no half snapshot of the container.
    assert await SnapshotManager(env).list(f"container:{container.name}") == []


def test_the_loop_mount_goes_even_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError), btrfs_loop_mount("120M") as mount_point:
        make_subvolume(mount_point / "sub")
        raise RuntimeError("test failed")
    assert not mount_point.exists()
    assert subprocess.run(["findmnt", "--mountpoint", str(mount_point)],
                          capture_output=True, check=False).returncode != 0


def test_cli_prune_takes_policy_and_snapshot_path_from_a_boltfile(btrfs: Path,
                                                                  tmp_path: Path) -> None:
    source = make_subvolume(btrfs / f"srv-{uuid.uuid4().hex[:6]}")
    store = btrfs / f"store-{uuid.uuid4().hex[:6]}"
    names = []
    for index in range(3):
        made = cli_run("create", str(source), "--snapshot-dir", str(store),
                       "--name", f"s{index}")
        assert made.exit_code == 0, made.output
        names.append(made.stdout.strip())
    assert len(list(store.glob("*/s0"))) == 1  # under --snapshot-dir, not the default
    boltfile = tmp_path / "Boltfile.toml"
    boltfile.write_text(f'project = "p"\n[snapshots]\nsnapshot_path = "{store}"\n'
                        '[snapshots.retention]\nkeep_daily = 5\nmax_total = 1\n'
                        'cleanup_frequency = "daily"\n')
    # The same second, the same day: keep_daily keeps the newest (names descending).
    plan = cli_run("prune", str(source), "-f", str(boltfile), "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    result = json.loads(plan.stdout)
    assert result["keep"] == ["s2"] and result["remove"] == ["s1", "s0"]
    assert result["deleted"] == []
    # An option overrides the file's value.
    wider = json.loads(cli_run("prune", str(source), "-f", str(boltfile), "--max-total",
                               "5", "--dry-run", "--json").stdout)
    assert wider["keep"] == ["s2", "s0"]  # keep_daily (oldest) keeps s0 too
    done = cli_run("prune", str(source), "-f", str(boltfile))
    assert done.exit_code == 0, done.output
    assert "[2/2] delete" in done.stderr
    listed = cli_run("ls", str(source), "--snapshot-dir", str(store), "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["s2"]
