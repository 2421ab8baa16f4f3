"""``before_surge_up``: a real ``ghostpanel surge apply`` on a Podman engine whose volumes
live on a real loop-mounted BTRFS snapshots a service's volumes before it recreates it.

A snapshot that fails stops the apply with nothing changed; ``--no-snapshot`` skips them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ghostpanel_kernel import connect
from ghostpanel_kernel.cli import cli
from ghostpanel_kernel.snapshots import SnapshotManager
from ghostpanel_kernel.surge import destroy_surge
from tests.btrfs_mount import (  # noqa: F401  (fixtures)
    btrfs_engine_fixture,
    btrfs_fixture,
    make_subvolume,
)
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

# Exits at once on SIGTERM, so a recreate does not wait out the stop timeout.
COMMAND = '["sh", "-c", "trap \'exit 0\' TERM; while :; do sleep 0.2; done"]'


def run_async(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture
def project(btrfs_engine: PodmanService) -> Iterator[str]:
    name = f"s{uuid.uuid4().hex[:8]}"
    yield name

    async def destroy() -> None:
        env = connect(btrfs_engine.url, name="btrfs")
        try:
            await destroy_surge(name, [env], volumes=True, stop_timeout=0)
        finally:
            await env.aclose()

    run_async(destroy())


@pytest.fixture
def ghostpanel(tmp_path: Path, btrfs_engine: PodmanService) -> Callable[..., Result]:
    """``ghostpanel ARGS...`` with a home where the BTRFS engine is the default."""
    home = tmp_path / "home"

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli, list(args),
            catch_exceptions=False,
            env={"GHOSTPANEL_HOME": str(home), "GHOSTPANEL_DATABASE_URL": None})

    for args in (("env", "add", "btrfs", btrfs_engine.url), ("env", "use", "btrfs")):
        done = run(*args)
        assert done.exit_code == 0, done.output
    return run


def boltfile(path: Path, project: str, *, version: str, binds: list[str],
             before_surge_up: bool = True) -> Path:
    volumes = ", ".join(json.dumps(v) for v in ["world:/data", *binds])
    path.write_text(f"""project = "{project}"

[snapshots.triggers]
before_surge_up = {str(before_surge_up).lower()}

[services.world]
image = "{BUSYBOX_REFERENCE}"
command = {COMMAND}
environment = {{ VERSION = "{version}" }}
volumes = [{volumes}]
""", encoding="utf-8")
    return path


async def _prepare_volume(url: str, name: str) -> Path:
    """The project's volume, made by hand first so that its data is a subvolume."""
    env = connect(url, name="btrfs")
    try:
        volume = await env.volumes.create(name)
        data = make_subvolume(Path(volume.mountpoint))
        (data / "level.dat").write_text("day 1")
        return data
    finally:
        await env.aclose()


async def _world(url: str, project: str) -> tuple[str, str]:
    """The service's container: its id and state."""
    env = connect(url, name="btrfs")
    try:
        container = await env.containers.get(f"{project}_world")
        return container.id, container.state
    finally:
        await env.aclose()


async def _snapshots(url: str, target: str) -> list[Any]:
    env = connect(url, name="btrfs")
    try:
        return await SnapshotManager(env).list(target)
    finally:
        await env.aclose()


def test_before_surge_up_snapshots_before_a_recreate_and_stops_on_failure(
        btrfs: Path, btrfs_engine: PodmanService, project: str, tmp_path: Path,
        ghostpanel: Callable[..., Result]) -> None:
    url = btrfs_engine.url
    data = run_async(_prepare_volume(url, f"{project}_world"))
    bind = make_subvolume(btrfs / f"{project}-saves")
    (bind / "save1").write_text("slot 1")
    path = tmp_path / "Boltfile.toml"

    # First apply: nothing to recreate, so nothing to snapshot.
    first = ghostpanel("surge", "apply", "-f",
                       str(boltfile(path, project, version="1", binds=[f"{bind}:/saves"])))
    assert first.exit_code == 0, first.output
    assert "before_surge_up" not in first.output
    assert run_async(_snapshots(url, f"volume:{project}_world")) == []
    old_id, _ = run_async(_world(url, project))

    # A changed service is recreated: its volume and bind mount are snapshotted first,
    # holding the data as it was before the apply.
    second = ghostpanel("surge", "apply", "-f",
                        str(boltfile(path, project, version="2", binds=[f"{bind}:/saves"])))
    assert second.exit_code == 0, second.output
    [volume_snap] = run_async(_snapshots(url, f"volume:{project}_world"))
    [bind_snap] = run_async(_snapshots(url, str(bind)))
    for snap in (volume_snap, bind_snap):
        assert snap.trigger == "before_surge_up"
        assert f"snapshot {snap.name} of {snap.source} (before_surge_up)" in second.stderr
    assert (Path(volume_snap.location) / "level.dat").read_text() == "day 1"
    assert (Path(bind_snap.location) / "save1").read_text() == "slot 1"
    new_id, state = run_async(_world(url, project))
    assert new_id != old_id and state == "running"
    assert (data / "level.dat").exists()

    # A bind mount that is a plain directory cannot be snapshotted: the apply stops
    # before anything changed, and says why and what to do.
    plain = btrfs / f"{project}-plain"
    plain.mkdir()
    binds = [f"{bind}:/saves", f"{plain}:/plain"]
    failed = ghostpanel("surge", "apply", "-f",
                        str(boltfile(path, project, version="3", binds=binds)))
    assert failed.exit_code == 1, failed.output
    assert f"before_surge_up: could not snapshot {plain} of service `world`" in failed.output
    assert "--no-snapshot" in failed.output
    assert run_async(_world(url, project)) == (new_id, "running")
    # The volumes before the plain directory were snapshotted: valid snapshots, kept.
    before = len(run_async(_snapshots(url, str(bind))))
    assert before == 2

    # --no-snapshot overrides: applied, and no snapshot was taken this time.
    forced = ghostpanel("surge", "apply", "-f", str(path), "--no-snapshot")
    assert forced.exit_code == 0, forced.output
    assert run_async(_world(url, project))[0] != new_id
    assert len(run_async(_snapshots(url, str(bind)))) == before


def test_without_before_surge_up_surge_takes_no_snapshot(
        btrfs: Path, btrfs_engine: PodmanService, project: str, tmp_path: Path,
        ghostpanel: Callable[..., Result]) -> None:
    url = btrfs_engine.url
    run_async(_prepare_volume(url, f"{project}_world"))
    path = tmp_path / "Boltfile.toml"
    for version in ("1", "2"):
        applied = ghostpanel("surge", "apply", "-f", str(boltfile(
            path, project, version=version, binds=[], before_surge_up=False)))
        assert applied.exit_code == 0, applied.output
    assert run_async(_snapshots(url, f"volume:{project}_world")) == []
