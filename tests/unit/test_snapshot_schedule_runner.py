"""ScheduleRunner with a fake manager and a fake clock: rounds, retention, failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from ghostpanel_kernel.bolt import Boltfile
from ghostpanel_kernel.snapshots import (
    PruneResult,
    ScheduleRunner,
    Snapshot,
    SnapshotError,
    SnapshotManager,
    plan_retention,
    schedule_plan,
    service_targets,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Clock:
    now: datetime
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeManager:
    """Keeps snapshots in a dict; fails targets named in ``broken``."""

    clock: Clock
    broken: set[str] = field(default_factory=set)
    taken: dict[str, list[Snapshot]] = field(default_factory=dict)
    prunes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def create(self, target: str, *, trigger: str = "manual") -> list[Snapshot]:
        if target in self.broken:
            raise SnapshotError(f"{target} is on ext4")
        when = self.clock.now
        snap = Snapshot(when.strftime("bolt-%Y%m%d-%H%M%S"), target, "/x", "/x", "btrfs",
                        when, trigger=trigger)
        self.taken.setdefault(target, []).append(snap)
        return [snap]

    async def prune(self, target: str, policy: dict[str, Any]) -> PruneResult:
        self.prunes.append((target, policy))
        snaps = self.taken[target]
        plan = plan_retention(snaps, policy)
        doomed = [s for s in snaps if s.name in plan.remove]
        self.taken[target] = [s for s in snaps if s.name not in plan.remove]
        return PruneResult(plan, snaps, doomed)


BOLTFILE = """\
project = "mc"

[snapshots]
snapshot_path = "/srv/snaps"

[snapshots.retention]
keep_daily = 3

[snapshots.triggers]
daily = "02:00"
weekly = "sunday@03:00"

[volumes.shared]
name = "the-shared-one"

[services.world]
image = "docker.io/library/alpine"
volumes = ["world:/data", "./config:/config:ro", "shared:/shared", "/:/host-root"]

[services.backup]
image = "docker.io/library/alpine"
volumes = ["world:/data:ro", "/anon-target-only"]
"""


def runner(clock: Clock, manager: FakeManager, text: str = BOLTFILE,
           **kw: Any) -> ScheduleRunner:
    plan = schedule_plan(Boltfile.loads(text), base_dir=Path("/srv/mc"))
    return ScheduleRunner(cast(SnapshotManager, manager), plan, clock=clock,
                          sleep=clock.sleep, **kw)


def test_targets_follow_surge_names_and_paths(tmp_path: Path) -> None:
    (tmp_path / "socket-like-file").write_text("")
    data = Boltfile.loads(BOLTFILE).to_dict()
    data["services"]["world"]["volumes"].append(f"{tmp_path}/socket-like-file:/run/s")
    assert service_targets(data, Path("/srv/mc")) == {
        "world": ["volume:mc_world", "/srv/mc/config", "volume:the-shared-one", "/"],
        "backup": ["volume:mc_world"],  # a file and an anonymous volume are left out
    }
    plan = schedule_plan(Boltfile.loads(BOLTFILE), base_dir=Path("/srv/mc"))
    assert plan.all_targets == ["volume:mc_world", "/srv/mc/config", "volume:the-shared-one",
                                "/"]
    assert plan.snapshot_dir == "/srv/snaps" and plan.retention == {"keep_daily": 3}
    assert not plan.before_surge_up


async def test_a_week_of_schedule_takes_each_due_snapshot_and_prunes() -> None:
    clock = Clock(at("2026-12-07T10:00"))  # a Monday
    manager = FakeManager(clock)
    text = BOLTFILE.replace('"/:/host-root"', '"/:/root"')
    rounds: list[Any] = []
    await runner(clock, manager, text, report=rounds.append).run_forever(rounds=8)
    # Tue..Sun daily at 02:00 (six), Sunday weekly at 03:00, Monday daily: eight rounds.
    assert [(r.trigger, s.created) for r in rounds for s in r.snapshots
            if s.source == "volume:mc_world"] == [
        *[("daily", at(f"2026-12-{d:02d}T02:00")) for d in range(8, 14)],
        ("weekly", at("2026-12-13T03:00")), ("daily", at("2026-12-14T02:00"))]
    assert all(r.ok for r in rounds)
    # keep_daily = 3: the newest of each of the last three days is all that is left.
    assert [s.created for s in manager.taken["volume:mc_world"]] == [
        at("2026-12-12T02:00"), at("2026-12-13T03:00"), at("2026-12-14T02:00")]
    assert sum(len(r.pruned) for r in rounds) == 5 * 4
    assert clock.slept[0] == (at("2026-12-08T02:00") - at("2026-12-07T10:00")).total_seconds()


async def test_a_failing_target_is_logged_and_the_loop_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(at("2026-12-07T10:00"))
    manager = FakeManager(clock, broken={"/srv/mc/config"})
    rounds: list[Any] = []
    await runner(clock, manager, report=rounds.append).run_forever(rounds=2)
    assert len(rounds) == 2
    for result in rounds:
        assert result.errors == [("/srv/mc/config", "/srv/mc/config is on ext4")]
        assert {s.source for s in result.snapshots} == {"volume:mc_world",
                                                       "volume:the-shared-one", "/"}
    assert "scheduled daily snapshot of /srv/mc/config failed" in caplog.text
    # Repaired: the next round takes it too.
    manager.broken.clear()
    clock.now += timedelta(days=1)
    result = await runner(clock, manager).run_round("daily")
    assert result.ok and len(result.snapshots) == 4


async def test_a_failing_prune_keeps_the_snapshot_and_the_other_targets() -> None:
    clock = Clock(at("2026-12-07T10:00"))
    manager = FakeManager(clock)

    async def broken_prune(target: str, policy: dict[str, Any]) -> PruneResult:
        raise SnapshotError("btrfs subvolume delete: device busy")

    manager.prune = broken_prune  # type: ignore[method-assign]
    result = await runner(clock, manager).run_round("hourly")
    assert len(result.snapshots) == 4
    assert [e[1] for e in result.errors] == ["retention: btrfs subvolume delete: device busy"] * 4


async def test_no_retention_table_prunes_nothing() -> None:
    clock = Clock(at("2026-12-07T10:00"))
    manager = FakeManager(clock)
    text = BOLTFILE.replace("[snapshots.retention]\nkeep_daily = 3\n", "")
    await runner(clock, manager, text).run_round("daily")
    assert manager.prunes == []


async def test_a_clock_that_wakes_early_sleeps_again() -> None:
    clock = Clock(at("2026-12-07T01:00"))
    manager = FakeManager(clock)
    woke = []

    async def early(seconds: float) -> None:  # wakes after half the time asked
        woke.append(seconds)
        clock.now += timedelta(seconds=seconds / 2)

    plan = schedule_plan(Boltfile.loads(BOLTFILE), base_dir=Path("/srv/mc"))
    await ScheduleRunner(cast(SnapshotManager, manager), plan, clock=clock,
                         sleep=early).run_forever(rounds=1)
    assert manager.taken["volume:mc_world"][0].created >= at("2026-12-07T02:00")
    assert len(woke) > 1


async def test_a_round_that_overruns_a_due_time_does_not_repeat_it() -> None:
    clock = Clock(at("2026-12-07T01:00"))
    manager = FakeManager(clock)
    text = BOLTFILE.replace('daily = "02:00"', "hourly = true")
    create = manager.create

    async def slow(target: str, *, trigger: str = "manual") -> list[Snapshot]:
        made = await create(target, trigger=trigger)
        clock.now += timedelta(minutes=50)  # four targets: a round takes 200 minutes
        return made

    manager.create = slow  # type: ignore[method-assign]
    rounds: list[Any] = []
    await runner(clock, manager, text, report=rounds.append).run_forever(rounds=2)
    # 02:00 round ends at 05:20; the 03:00-05:00 ones are skipped, 06:00 is next.
    assert [r.snapshots[0].created for r in rounds] == [at("2026-12-07T02:00"),
                                                        at("2026-12-07T06:00")]


async def test_no_periodic_trigger_returns_at_once() -> None:
    clock = Clock(at("2026-12-07T01:00"))
    text = BOLTFILE.replace('daily = "02:00"\nweekly = "sunday@03:00"\n',
                            "before_surge_up = true\n")
    await runner(clock, FakeManager(clock), text).run_forever()
    assert clock.slept == []
