"""The agent releases a removed container's GPUs by itself: a real ``ghostpanel agent``
process, its real Podman engine, and the simulated NVML (this machine has no GPU).

The reservation is made through ``/api/v1/gpus``; the container is created and removed
with the Engine API directly (not through the agent's routes), so only the agent's
events subscriber can notice. Also: it resumes after the engine restarts, and it
reconciles what happened while the agent was down. (That an idle agent starts none is
in tests/unit/test_gpu_release.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Environment
from tests.agent_process import (  # noqa: F401  (fixtures)
    RunningAgent,
    agent_factory_fixture,
    run_cli,
)
from tests.integration.conftest import unique
from tests.nvml_data import L4_0, MIXED
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

#: Seconds the release may take ("within a few seconds").
WITHIN = 5.0


def _allocations(agent: RunningAgent) -> list[dict[str, Any]]:
    with agent.client(timeout=30) as http:
        answer = http.get("/api/v1/gpus")
        assert answer.status_code == 200, answer.text
        listed: list[dict[str, Any]] = answer.json()["allocations"]
        return listed


def _allocate(agent: RunningAgent, workload: str, gpu: str) -> None:
    with agent.client(timeout=30) as http:
        made = http.post("/api/v1/gpus/allocate", json={"workload": workload, "gpus": [gpu]})
        assert made.status_code == 200, made.text


async def _until(agent: RunningAgent, test: Callable[[list[dict[str, Any]]], bool],
                 what: str, timeout: float = WITHIN) -> float:
    """Poll the agent's reservations until ``test`` holds; the seconds it took."""
    started = time.monotonic()
    while True:
        held = await asyncio.to_thread(_allocations, agent)
        if test(held):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} within {timeout} s; reservations: {held}")
        await asyncio.sleep(0.1)


def _bound(workload: str, container_id: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda held: [(a["workload"], a["container_id"]) for a in held] == [
        (workload, container_id)]


async def test_removing_the_container_with_the_engine_api_releases_its_gpus(
        agent_factory: Callable[..., RunningAgent], env: Environment,
        monkeypatch: pytest.MonkeyPatch, track_container: Callable[[str], None]) -> None:
    monkeypatch.setenv("GHOSTPANEL_GPU_SIMULATE", str(MIXED))
    agent = agent_factory()
    workload = unique("gp-gpu")
    track_container(workload)
    _allocate(agent, workload, "0")
    assert [a["unit"] for a in _allocations(agent)] == [L4_0]
    # Created directly on the engine under the workload's name: the agent binds it.
    container = await env.containers.create(image=BUSYBOX_REFERENCE, name=workload,
                                            command=["true"])
    await _until(agent, _bound(workload, container.id), "the reservation was not bound")
    await container.remove(force=True)
    took = await _until(agent, lambda held: held == [], "the reservation was not released")
    print(f"released {took:.2f} s after the engine removed the container")
    assert "released GPU reservations of " + workload in agent.log()


async def test_it_survives_an_engine_restart_and_an_agent_restart(
        extra_podman_engine: Callable[..., PodmanService],
        agent_factory: Callable[..., RunningAgent],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # (The engine fixture first: its teardown then runs after the agent's.)
    engine = extra_podman_engine()
    monkeypatch.setenv("GHOSTPANEL_GPU_SIMULATE", str(MIXED))
    agent = agent_factory(engine_url=engine.url)
    first, second = unique("gp-gpu"), unique("gp-gpu")
    _allocate(agent, first, "0")
    _allocate(agent, second, "1")
    async with connect(engine.url, name="direct") as direct:
        one = await direct.containers.create(image=BUSYBOX_REFERENCE, name=first,
                                             command=["true"])
        two = await direct.containers.create(image=BUSYBOX_REFERENCE, name=second,
                                             command=["true"])
        await _until(agent, lambda held: {a["container_id"] for a in held} == {one.id,
                                                                                two.id},
                     "the reservations were not bound")
    # The engine goes away and comes back: the subscriber resumes.
    await asyncio.to_thread(engine.stop)
    await asyncio.to_thread(engine.start)
    async with connect(engine.url, name="direct-again") as again:
        await (await again.containers.get(first)).remove(force=True)
        await _until(agent, lambda held: [a["workload"] for a in held] == [second],
                     "no release after the engine restarted", timeout=15)
        # The agent is down while the container goes; at its start it holds a
        # reservation, so it follows the engine again and reconciles.
        await asyncio.to_thread(agent.stop)
        await (await again.containers.get(second)).remove(force=True)
        assert [a["workload"] for a in _cli_allocations(agent)] == [second]
        await asyncio.to_thread(agent.start)
        await _until(agent, lambda held: held == [], "not reconciled at the agent's start")


def _cli_allocations(agent: RunningAgent) -> list[dict[str, Any]]:
    import json

    result = run_cli(agent.home, "gpu", "ls", "--json")
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, Any]] = json.loads(result.stdout)["allocations"]
    return listed
