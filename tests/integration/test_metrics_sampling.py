"""The sampler on a real Podman engine: CPU of a busy container, limits, crash loops
from the event stream, and an agent that samples and serves its history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ghostpanel_kernel.engine import Container, Environment
from ghostpanel_kernel.metrics._sampler import Sampler
from ghostpanel_kernel.metrics._store import MetricsStore
from tests.agent_process import RunningAgent, agent_factory_fixture  # noqa: F401

pytestmark = pytest.mark.integration

MakeContainer = Callable[..., Awaitable[Container]]
BURN = ["sh", "-c", "while :; do :; done"]


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_busy_container_uses_its_cpu_limit_and_an_idle_one_none(
        env: Environment, make_container: MakeContainer, tmp_path: Path) -> None:
    burner = await make_container(command=BURN, cpus=0.5, memory="64m")
    idle = await make_container()
    await burner.start()
    await idle.start()
    store = MetricsStore(tmp_path)
    sampler = Sampler(env, store, interval=0.5)
    sampler.start()
    try:
        await _until(lambda: sampler.rounds >= 4)
    finally:
        await sampler.aclose()
    frame = store.samples(containers=[burner.name, idle.name])
    cores = frame[frame["metric"] == "cpu_cores"].dropna()
    busy = cores[cores["container"] == burner.name]["value"]
    quiet = cores[cores["container"] == idle.name]["value"]
    # cgroup quota 0.5 of a core: a spinning shell gets at most that (less on a busy
    # host: 2 shared cores, so the floor is loose), never more beyond the quota
    # period's rounding. The median: one interval whose reading the engine stamped
    # late on a loaded host can read high.
    assert len(busy) >= 3 and 0.1 < busy.median() <= 0.6, busy.tolist()
    assert quiet.max() < 0.05, quiet.tolist()
    latest = {s.metric: s.value for s in sampler.latest()[burner.name]}
    assert latest["memory_limit_bytes"] == 64 * 2**20
    assert latest["pids"] >= 1 and latest["memory_usage_bytes"] > 0
    assert {s.metric: s.value for s in sampler.latest()[idle.name]}[
        "memory_limit_bytes"] == 0  # no limit
    # The counter only grows, at about the quota's pace (loosely: the samples carry the
    # round's start time, not the engine's reading time, which a busy host delays).
    usage = frame[(frame["metric"] == "cpu_usage_seconds_total")
                  & (frame["container"] == burner.name)]["value"].tolist()
    assert usage == sorted(usage) and usage[-1] > usage[0]
    store.close()


async def test_a_crash_loop_is_recorded_from_the_engine_s_events(
        env: Environment, make_container: MakeContainer, tmp_path: Path) -> None:
    store = MetricsStore(tmp_path)
    sampler = Sampler(env, store, interval=0.5)
    sampler.start()
    try:
        await asyncio.sleep(0.3)  # the event subscriber is listening
        crashing = await make_container(
            command=["sh", "-c", "sleep 0.2; exit 3"],
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
        await crashing.start()

        def dies() -> list[Any]:
            return store.event_rows(containers=crashing.name, kinds="die")

        # Two retries: three exits, then it stays down (and is safe to remove: a
        # container removed mid-restart can fail the teardown on Podman).
        await _until(lambda: len(dies()) >= 3)
    finally:
        await sampler.aclose()
    events = store.event_rows(containers=crashing.name)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds.count("die") == 3 and kinds.count("restart") == 2
    assert all(e.exit_code == 3 for e in events if e.kind in ("die", "restart"))
    assert all(e.container_id == crashing.id for e in events)
    assert sampler.restarts[crashing.name] >= 2
    frame = store.events(kinds=["restart"])
    assert (frame["exit_code"] == 3).all()
    store.close()


async def test_an_agent_samples_and_serves_history(
        agent_factory: Callable[..., RunningAgent], engine_url: str,
        make_container: MakeContainer) -> None:
    container = await make_container()
    await container.start()
    running = agent_factory(extra_args=["--metrics-interval", "0.3"])
    deadline = time.monotonic() + 20
    with running.client() as http:
        while True:
            answer = http.get("/api/v1/metrics/history",
                              params={"container": container.name, "metric": "pids"})
            assert answer.status_code == 200, answer.text
            rows = answer.json()["rows"]
            if len(rows) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(rows) >= 2 and all(row[1:4] == ["local", container.name, "pids"]
                                      for row in rows)
        assert rows[-1][4] >= 1
        await container.stop(timeout=0)
        events = http.get("/api/v1/metrics/events", params={"kind": "die"})
        deadline = time.monotonic() + 10
        while not events.json()["rows"] and time.monotonic() < deadline:
            time.sleep(0.2)
            events = http.get("/api/v1/metrics/events", params={"kind": "die"})
        assert [row[2] for row in events.json()["rows"]] == [container.name]
    assert (running.home / "metrics" / "metrics.sqlite3").exists()
