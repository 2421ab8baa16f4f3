"""Scheduled snapshots on a real loop-mounted BTRFS with a private Podman engine.

- ``ghostpanel snapshot run -f Boltfile`` takes one round of the services' volumes and
  applies the Boltfile's retention;
- the runner with a fake clock (a week in no time) takes daily and weekly snapshots of
  real volumes, records the trigger, prunes, and goes on past a volume that fails;
- ``snapshot run --schedule`` as a real process waits for the next due time and ends
  cleanly on SIGINT (Ctrl-C) and SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.snapshots import ScheduleRunner, SnapshotManager, schedule_plan
from tests.agent_process import (
    cli_environment,
    free_port,
    ghostpanel_command,
    run_cli,
    start_agent,
)
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


async def subvolume_volume(env: Environment, name: str, content: str) -> Path:
    volume = await env.volumes.create(name)
    data = make_subvolume(Path(volume.mountpoint))
    (data / "file").write_text(content)
    return data


def write_boltfile(path: Path, project: str, *, retention: str = "max_total = 2",
                   volumes: str = '["world:/data", "logs:/logs"]') -> Path:
    path.write_text(f"""project = "{project}"

[snapshots.retention]
{retention}

[snapshots.triggers]
daily = "02:00"
weekly = "sunday@03:00"

[services.game]
image = "docker.io/library/busybox"
volumes = {volumes}
""", encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, btrfs_engine: PodmanService) -> Path:
    home = tmp_path / "home"
    for args in (("env", "add", "btrfs", btrfs_engine.url), ("env", "use", "btrfs")):
        done = run_cli(home, *args)
        assert done.returncode == 0, done.stderr
    return home


async def test_snapshot_run_takes_one_round_and_applies_retention(
        env: Environment, home: Path, tmp_path: Path) -> None:
    project = f"r{uuid.uuid4().hex[:6]}"
    await subvolume_volume(env, f"{project}_world", "w")
    await subvolume_volume(env, f"{project}_logs", "l")
    path = write_boltfile(tmp_path / "Boltfile.toml", project)
    names = []
    for _ in range(3):
        done = await asyncio.to_thread(run_cli, home, "snapshot", "run", "-f", str(path),
                                       "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["errors"] == []
        assert {s["source"] for s in result["snapshots"]} == {f"volume:{project}_world",
                                                              f"volume:{project}_logs"}
        assert {s["trigger"] for s in result["snapshots"]} == {"manual"}
        names.append(result["snapshots"][0]["name"])
        await asyncio.sleep(1.1)  # a new name each second
    # max_total = 2: the third round pruned the first one of each volume.
    left = await SnapshotManager(env).list(f"volume:{project}_world")
    assert [s.name for s in left] == names[:0:-1]

    # The human form: one line per snapshot taken.
    done = await asyncio.to_thread(run_cli, home, "snapshot", "run", "-f", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("manual" in line and "bolt-" in line for line in lines)
    assert f"volume:{project}_logs" in lines[1]


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_a_week_of_schedule_on_real_volumes(env: Environment, tmp_path: Path,
                                                  btrfs: Path) -> None:
    project = f"w{uuid.uuid4().hex[:6]}"
    world = await subvolume_volume(env, f"{project}_world", "day 0")
    plain = btrfs / f"{project}-plain"
    plain.mkdir()  # not a subvolume: fails every round, the others go on
    path = write_boltfile(tmp_path / "Boltfile.toml", project, retention="keep_daily = 3",
                          volumes=f'["world:/data", "{plain}:/plain"]')
    plan = schedule_plan(Boltfile.load(path))
    clock = Clock(datetime(2026, 12, 10, 12, 0, tzinfo=UTC))  # a Thursday
    rounds: list[Any] = []
    manager = SnapshotManager(env, clock=clock)

    def report(result: Any) -> None:
        rounds.append(result)
        (world / "file").write_text(f"after round {len(rounds)}")

    await ScheduleRunner(manager, plan, clock=clock, sleep=clock.sleep,
                         report=report).run_forever(rounds=5)
    # Fri, Sat, Sun daily 02:00, Sun weekly 03:00, Mon daily 02:00.
    assert [(r.trigger, r.snapshots[0].created) for r in rounds] == [
        ("daily", datetime(2026, 12, 11, 2, 0, tzinfo=UTC)),
        ("daily", datetime(2026, 12, 12, 2, 0, tzinfo=UTC)),
        ("daily", datetime(2026, 12, 13, 2, 0, tzinfo=UTC)),
        ("weekly", datetime(2026, 12, 13, 3, 0, tzinfo=UTC)),
        ("daily", datetime(2026, 12, 14, 2, 0, tzinfo=UTC))]
    for result in rounds:
        [(target, error)] = result.errors
        assert target == str(plain) and "not a subvolume" in error
    # keep_daily = 3: the newest of Sat, Sun, Mon are left, each with its own data.
    left = await manager.list(f"volume:{project}_world")
    assert [(s.trigger, s.created.day) for s in left] == [("daily", 14), ("weekly", 13),
                                                          ("daily", 12)]
    assert [(Path(s.location) / "file").read_text() for s in left] == [
        "after round 4", "after round 3", "after round 1"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_schedule_in_the_foreground_ends_cleanly_on_a_signal(
        home: Path, tmp_path: Path, signum: int) -> None:
    path = write_boltfile(tmp_path / "Boltfile.toml", f"f{uuid.uuid4().hex[:6]}")
    process = subprocess.Popen(
        ghostpanel_command(home, "snapshot", "run", "-f", str(path), "--schedule"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_environment(home))
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # once it waits for the next due time
        assert line.startswith("next: ") and "UTC; Ctrl-C stops" in line, line
        time.sleep(0.2)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert err.strip() == "stopped"
    assert out == ""


def test_bad_triggers_and_no_trigger_are_bad_input(home: Path, tmp_path: Path) -> None:
    path = write_boltfile(tmp_path / "Boltfile.toml", "bad")
    path.write_text(path.read_text().replace('"sunday@03:00"', '"sundae@03:00"'))
    done = run_cli(home, "snapshot", "run", "-f", str(path))
    assert done.returncode == 2
    assert "snapshots.triggers.weekly" in done.stderr and "monday" in done.stderr
    path.write_text(path.read_text().replace('weekly = "sundae@03:00"\n', "")
                    .replace('daily = "02:00"\n', "before_surge_up = true\n"))
    done = run_cli(home, "snapshot", "run", "-f", str(path), "--schedule")
    assert done.returncode == 2
    assert 'add e.g. daily = "02:00"' in done.stderr


def test_the_agent_runs_the_schedule_of_its_boltfile(btrfs_engine: PodmanService,
                                                     tmp_path: Path) -> None:
    path = write_boltfile(tmp_path / "Boltfile.toml", f"a{uuid.uuid4().hex[:6]}")
    agent = start_agent(btrfs_engine.url, home=tmp_path / "agent-home",
                        extra_args=["--boltfile", str(path)])
    try:
        with agent.client() as client:
            assert client.get("/api/v1/info").status_code == 200
    finally:
        # The schedule task is cancelled and the agent exits cleanly (status 0).
        assert agent.stop() == 0
    log = agent.log()
    assert f"snapshot schedule of {path}: next " in log, log


def test_an_agent_with_a_bad_schedule_does_not_start(btrfs_engine: PodmanService,
                                                     home: Path, tmp_path: Path) -> None:
    path = write_boltfile(tmp_path / "Boltfile.toml", "bad")
    path.write_text(path.read_text().replace('"02:00"', '"02h00"'))
    done = run_cli(home, "agent", "--listen", f"127.0.0.1:{free_port()}", "--engine",
                   btrfs_engine.url, "--boltfile", str(path))
    assert done.returncode == 2
    assert "snapshots.triggers.daily = '02h00'" in done.stderr
