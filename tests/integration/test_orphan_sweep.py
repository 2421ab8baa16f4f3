"""A killed test session's engine is removed by the next session, and nothing else is.

The "killed session" is staged for real: an engine with a running container, whose
directory is claimed by a process that has ended.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.orphans import OWNER_FILE, claim, processes_using, sweep_orphans
from tests.podman_service import (
    BUSYBOX_REFERENCE,
    PodmanService,
    mounts_under,
)

pytestmark = pytest.mark.integration


def _ended_process_id() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_an_abandoned_engine_and_its_container_are_removed(
        busybox_archive: Path, podman_engine: PodmanService) -> None:
    base_dir = Path(tempfile.mkdtemp(prefix="gp-", dir="/tmp"))
    engine = PodmanService(base_dir)
    try:
        engine.start()
        engine.import_image(busybox_archive)
        engine.podman("run", "-d", "--name", "left-behind", BUSYBOX_REFERENCE,
                      "sleep", "600")
        (base_dir / OWNER_FILE).write_text(f"{_ended_process_id()}\n")
        assert processes_using(base_dir) and mounts_under(base_dir)

        removed, failures = sweep_orphans()

        assert base_dir in removed and failures == []
        assert not base_dir.exists()
        assert processes_using(base_dir) == [] and mounts_under(base_dir) == []
        # The session's own engine is claimed by this live process: left alone.
        assert podman_engine.base_dir not in removed and podman_engine.ping()
    finally:
        engine.stop()  # reaps the service this test started (already ended by the sweep)
        if base_dir.exists():
            engine.reset()
            shutil.rmtree(base_dir)


def test_unclaimed_and_live_directories_are_kept(tmp_path: Path) -> None:
    unclaimed = tmp_path / "gp-unclaimed"
    unclaimed.mkdir()
    live = tmp_path / "gp-live"
    live.mkdir()
    claim(live)  # by this process, which runs
    garbled = tmp_path / "gp-garbled"
    garbled.mkdir()
    (garbled / OWNER_FILE).write_text("not a pid\n")
    ended = tmp_path / "gp-ended"
    ended.mkdir()
    (ended / OWNER_FILE).write_text(f"{_ended_process_id()}\n")

    removed, failures = sweep_orphans(tmp_path)

    assert (removed, failures) == ([ended], [])
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "gp-garbled", "gp-live", "gp-unclaimed"]
