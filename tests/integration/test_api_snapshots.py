"""Snapshot routes of ``/api/v1`` on a real ``ghostpanel agent`` whose private Podman
engine keeps its storage (and so its volumes) on a real loop-mounted BTRFS.

One filesystem, one engine and one agent for the module; each test makes its own
volumes, containers and subvolumes. The fixtures ``btrfs`` and ``btrfs_engine`` are
tests/btrfs_mount.py's, shared with test_snapshot_btrfs.py.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, Environment, NotFound
from tests.agent_process import RunningAgent, start_agent
from tests.agent_process import problem_answer as _problem
from tests.btrfs_mount import (  # noqa: F401  (fixtures)
    btrfs_engine_fixture,
    btrfs_fixture,
    make_subvolume,
)
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

# Exits at once on SIGTERM (busybox sleep as PID 1 would ignore it for the whole timeout).
QUICK_STOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
#: The agent's --snapshot-dir, under the BTRFS mount.
AGENT_SNAPSHOTS = "agent-snapshots"


@pytest.fixture(name="agent", scope="module")
def agent_fixture(btrfs: Path, btrfs_engine: PodmanService) -> Iterator[RunningAgent]:
    """An agent on the BTRFS engine, its snapshots in ``AGENT_SNAPSHOTS`` on the BTRFS;
    stopped (exit status 0) and its home deleted after."""
    running = start_agent(btrfs_engine.url,
                          extra_args=("--snapshot-dir", str(btrfs / AGENT_SNAPSHOTS)))
    try:
        yield running
    finally:
        try:
            running.stop()
        finally:
            shutil.rmtree(running.home, ignore_errors=True)


@pytest.fixture(name="env")
async def env_fixture(btrfs_engine: PodmanService) -> AsyncIterator[Environment]:
    """The BTRFS engine; containers named ``gp-snapapi-*`` are removed after the test."""
    environment = connect(btrfs_engine.url, name="btrfs")
    try:
        yield environment
    finally:
        for container in await environment.containers.list(all=True):
            if container.name.startswith("gp-snapapi-"):
                with contextlib.suppress(NotFound):
                    await container.remove(force=True)
        await environment.aclose()


async def _volume_with(env: Environment, text: str) -> tuple[str, Path]:
    """A named volume whose data directory is a subvolume holding ``state.txt``."""
    volume = await env.volumes.create(f"gp-snapapi-{uuid.uuid4().hex[:8]}")
    data = make_subvolume(Path(volume.mountpoint))
    (data / "state.txt").write_text(text)
    return volume.name, data


async def _user(env: Environment, volume: str) -> Container:
    container = await env.containers.create(
        image=BUSYBOX_REFERENCE, name=f"gp-snapapi-{uuid.uuid4().hex[:8]}",
        command=QUICK_STOP, volumes=[f"{volume}:/data"])
    await container.start()
    return container


async def test_snapshot_a_running_container_change_restore_it_sees_the_old_data(
        agent: RunningAgent, env: Environment, btrfs: Path) -> None:
    volume, data = await _volume_with(env, "version 1")
    container = await _user(env, volume)
    with agent.client(timeout=60) as http:
        made = http.post(f"/api/v1/containers/{container.name}/snapshot",
                         json={"pause": True, "description": "before the update"})
        assert made.status_code == 201, made.text
        [snapshot] = made.json()["snapshots"]
        assert snapshot["source"] == f"volume:{volume}"
        assert snapshot["container"] == container.name
        assert snapshot["filesystem"] == "btrfs" and snapshot["trigger"] == "manual"
        assert snapshot["description"] == "before the update"
        # No folder in the request: the agent's --snapshot-dir.
        assert Path(snapshot["location"]).parent.parent == btrfs / AGENT_SNAPSHOTS
        assert (await env.containers.get(container.id)).state == "running"  # unpaused

        (data / "state.txt").write_text("version 2")
        listed = http.get("/api/v1/snapshots", params={"source": f"volume:{volume}"})
        assert [s["name"] for s in listed.json()] == [snapshot["name"]]

        restored = http.post(f"/api/v1/snapshots/{snapshot['name']}/restore",
                             json={"source": f"container:{container.name}",
                                   "stop_timeout": 5})
        assert restored.status_code == 200, restored.text
        body = restored.json()
        assert body["restarted"] == [container.name]
        assert [s["name"] for s in body["restored"]] == [snapshot["name"]]
        result = await (await env.containers.get(container.id)).exec(
            ["cat", "/data/state.txt"])
        assert result.output == "version 1"
        # The data as it was before the restore is kept as a pre-restore snapshot.
        kept = http.get("/api/v1/snapshots", params={"source": f"volume:{volume}"}).json()
        [safety] = [s for s in kept if s["trigger"] == "pre-restore"]
        assert Path(safety["location"], "state.txt").read_text() == "version 2"

        deleted = http.delete(f"/api/v1/snapshots/{snapshot['name']}",
                              params={"source": f"volume:{volume}"})
        assert [s["name"] for s in deleted.json()["deleted"]] == [snapshot["name"]]
        gone = _problem(http.post(f"/api/v1/snapshots/{snapshot['name']}/restore",
                                  json={"source": f"volume:{volume}"}), 404)
    assert snapshot["name"] in gone["detail"]
    assert not Path(snapshot["location"]).exists()


async def test_a_path_s_snapshots_in_a_chosen_folder_and_a_prune(
        agent: RunningAgent, btrfs: Path) -> None:
    source = make_subvolume(btrfs / f"game-{uuid.uuid4().hex[:8]}")
    (source / "world.dat").write_text("seed 42")
    folder = btrfs / f"snaps-{uuid.uuid4().hex[:8]}"
    with agent.client(timeout=60) as http:
        locations = {}
        for name, forever in (("s1", True), ("s2", False), ("s3", False)):
            made = http.post("/api/v1/snapshots", json={
                "source": str(source), "name": name, "keep_forever": forever,
                "snapshot_dir": str(folder)})
            assert made.status_code == 201, made.text
            locations[name] = Path(made.json()["snapshots"][0]["location"])
        assert locations["s1"].parent.parent == folder  # the folder asked for
        assert (locations["s1"] / "world.dat").read_text() == "seed 42"
        dry = http.post("/api/v1/snapshots/prune", json={
            "source": str(source), "snapshot_dir": str(folder),
            "policy": {"max_total": 1}, "dry_run": True})
        assert dry.status_code == 200, dry.text
        plan = dry.json()
        # s1 is kept forever and takes no place in max_total: the newest other stays.
        assert sorted(plan["keep"]) == ["s1", "s3"] and plan["remove"] == ["s2"]
        assert plan["deleted"] == []
        done = http.post("/api/v1/snapshots/prune", json={
            "source": str(source), "snapshot_dir": str(folder),
            "policy": {"max_total": 1}}).json()
        assert [s["name"] for s in done["deleted"]] == ["s2"]
        left = http.get("/api/v1/snapshots", params={"source": str(source)})
    # Without the folder the agent looks in its own, where there are none.
    assert left.status_code == 200 and left.json() == []
    assert [name for name, path in locations.items() if path.exists()] == ["s1", "s3"]


def test_a_path_not_on_btrfs_is_a_422_naming_it_and_its_filesystem(
        agent: RunningAgent) -> None:
    with agent.client() as http:
        refused = _problem(http.post("/api/v1/snapshots", json={
            "source": str(agent.home)}), 422)
        unknown = _problem(http.post("/api/v1/containers/gp-snapapi-none/snapshot"), 404)
        volume = _problem(http.get("/api/v1/snapshots",
                                   params={"source": "volume:gp-snapapi-none"}), 404)
    assert refused["path"] == str(agent.home)
    assert refused["filesystem"] not in ("btrfs", "zfs")
    assert refused["filesystem"] in refused["detail"]
    assert "gp-snapapi-none" in unknown["detail"] and "gp-snapapi-none" in volume["detail"]
