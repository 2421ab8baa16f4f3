"""The pieces of an apply that need no engine: rollback order, progress, results, hosts,
log timestamps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from ghostpanel_kernel.engine import Environment
from ghostpanel_kernel.surge import Action, EnvironmentPlan, SurgePlan, SurgeResult
from ghostpanel_kernel.surge._hosts import host_of, run_per_host
from ghostpanel_kernel.surge._journal import Journal
from ghostpanel_kernel.surge._logs import timestamp_key
from ghostpanel_kernel.surge._progress import ProgressReporter, SurgeProgress


async def test_rollback_removes_new_things_then_restores_in_start_order() -> None:
    done: list[str] = []

    def step(name: str, fail: bool = False) -> Callable[[], Awaitable[None]]:
        async def undo() -> None:
            if fail:
                raise RuntimeError("engine said no")
            done.append(name)
        return undo

    journal = Journal("east")
    journal.record("resource", "create network p_default", step("rm network"))
    journal.record("set-aside", "set aside p_db", step("restore db"))
    journal.record("created", "create p_db", step("rm new db"))
    journal.record("set-aside", "set aside p_web", step("restore web"))
    journal.record("created", "create p_web", step("rm new web", fail=True))
    journal.record("started", "start p_worker", step("stop worker"))
    reported: list[str] = []
    failures = await journal.rollback(reported.append)
    assert done == ["stop worker", "rm new db", "restore db", "restore web", "rm network"]
    assert failures == ["east: undo create p_web: engine said no"]
    assert reported[0] == "undo: start p_worker" and len(reported) == 6
    assert journal.entries == []


def test_a_failing_progress_callback_is_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[SurgeProgress] = []

    def callback(progress: SurgeProgress) -> None:
        seen.append(progress)
        raise ValueError("broken bar")

    reporter = ProgressReporter(callback, 2)
    with caplog.at_level(logging.ERROR, logger="ghostpanel_kernel.surge"):
        reporter.done("east", "started p_web")
        reporter.done("east", "finished")
        reporter.done("east", "one too many")
        reporter.note("east", "undo: create p_web")
    assert [(p.step, p.total, p.message) for p in seen] == [
        (1, 2, "started p_web"), (2, 2, "finished"), (2, 2, "one too many"),
        (2, 2, "undo: create p_web")]
    assert seen[0].fraction == 0.5
    assert caplog.text.count("a Surge progress callback failed") == 4
    ProgressReporter(None, 1).done("east", "nobody listens")


def test_result_summary_and_json() -> None:
    plan = SurgePlan("p", (
        EnvironmentPlan("east", (Action("create", "web", "p_web", "new service"),
                                 Action("unchanged", "db", "p_db", "up to date"),
                                 Action("create", "", "p_default", "network",
                                        resource="network"))),
        EnvironmentPlan("west", (Action("recreate", "web", "p_web", "changed"),)),
        EnvironmentPlan("north", ()),
    ))
    ok = SurgeResult("p", plan, {"east": "applied", "west": "applied",
                                 "north": "unchanged"})
    assert ok.ok and ok.summary() == ["east: 1 created, 1 unchanged", "west: 1 recreated",
                                      "north: nothing to do"]
    failed = SurgeResult("p", plan, {"east": "rolled-back", "west": "failed",
                                     "north": "unchanged"},
                         errors={"west": RuntimeError("port taken")}, rolled_back=True)
    assert not failed.ok
    assert failed.summary() == ["east: rolled-back (planned: 1 created, 1 unchanged)",
                                "west: failed: port taken", "north: nothing to do"]
    data = failed.to_dict()
    assert data["errors"] == {"west": "port taken"} and data["rolled_back"] is True
    assert data["plan"]["environments"][0]["actions"][2]["resource"] == "network"


async def test_environments_of_one_host_take_turns() -> None:
    local_a = Environment("unix:///tmp/a.sock", name="a")
    local_b = Environment("tcp://127.0.0.1:2375", name="b")
    remote = Environment("tcp://10.0.0.9:2375", name="c")
    assert [host_of(e) for e in (local_a, local_b, remote)] == [
        "localhost", "localhost", "10.0.0.9"]
    running: set[str] = set()
    overlaps: list[set[str]] = []

    async def operation(environment: Environment) -> None:
        running.add(environment.name)
        overlaps.append(set(running))
        await asyncio.sleep(0.02)
        running.discard(environment.name)
        if environment.name == "b":
            raise RuntimeError("b failed")

    errors = await run_per_host([local_a, local_b, remote], operation)
    assert list(errors) == ["b"] and str(errors["b"]) == "b failed"
    assert not any({"a", "b"} <= seen for seen in overlaps)  # one host: in turn
    assert any({"a", "c"} <= seen for seen in overlaps)      # two hosts: side by side
    for environment in (local_a, local_b, remote):
        await environment.aclose()


def test_log_timestamps_compare_as_times() -> None:
    assert timestamp_key("2026-11-27T10:00:00.8Z") > timestamp_key("2026-11-27T10:00:00.75Z")
    assert timestamp_key("2026-11-27T10:00:00.123456789Z") == (1795773600, 123456789)
    assert timestamp_key("2026-11-27T11:00:00+01:00") == timestamp_key("2026-11-27T10:00:00Z")
    assert timestamp_key(None) == timestamp_key("garbage") == (0, 0)
