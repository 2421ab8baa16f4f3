"""The ``volume_backup`` runbook for real: snapshots of a volume whose data is a BTRFS
subvolume (the module-scoped ``btrfs_engine``), and its retention of its own snapshots
only. One papermill run (~4 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.runbooks import arun_runbook
from ghostpanel_kernel.snapshots import SnapshotManager
from tests.btrfs_mount import (  # noqa: F401  (fixtures)
    btrfs_engine_fixture,
    btrfs_fixture,
    make_subvolume,
)
from tests.podman_service import PodmanService

pytestmark = pytest.mark.integration


@pytest.fixture
async def env(btrfs_engine: PodmanService) -> AsyncIterator[Environment]:
    environment = connect(btrfs_engine.url, name="btrfs")
    try:
        yield environment
    finally:
        await environment.aclose()


async def test_volume_backup_snapshots_and_keeps_only_its_newest(
        env: Environment, btrfs_engine: PodmanService, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTPANEL_HOME", str(tmp_path / "home"))
    volume = await env.volumes.create("gp-runbook-backup")
    try:
        data = make_subvolume(Path(volume.mountpoint))
        (data / "file").write_text("v1")
        manager = SnapshotManager(env)
        [manual] = await manager.create("volume:gp-runbook-backup", name="by-hand")
        [older] = await manager.create("volume:gp-runbook-backup", name="runbook-old",
                                       trigger="runbook")
        result = await arun_runbook("volume_backup", {"volumes": "gp-runbook-backup",
                                                      "keep": 1},
                                    environment=btrfs_engine.url)
        assert result.ok, result.error
        snapshots = {snap.name: snap for snap in
                     await manager.list("volume:gp-runbook-backup")}
        taken = [name for name, snap in snapshots.items() if snap.trigger == "runbook"]
        # The runbook's new snapshot is its one kept; the hand-made one is not its own.
        assert manual.name in snapshots and older.name not in snapshots
        assert len(taken) == 1 and taken[0].startswith("bolt-")
        printed = Path(result.record.notebook).read_text()
        assert f"removed old snapshot {older.name}" in printed
    finally:
        for snap in await SnapshotManager(env).list("volume:gp-runbook-backup"):
            await SnapshotManager(env).delete("volume:gp-runbook-backup", snap.name)
        await (await env.volumes.get("gp-runbook-backup")).remove(force=True)
