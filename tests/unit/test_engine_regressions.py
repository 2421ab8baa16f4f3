"""Regression tests: shared /version fetch, the live events window, a closed sync facade."""
import asyncio
import threading
import time

import httpx
import pytest

from ghostpanel_kernel import EnvironmentClosed, connect_sync
from tests.unit.fake_engine import (
    BOLT_WITHOUT_API_HEADER,
    PODMAN,
    URL,
    Body,
    EngineProfile,
    FakeEngine,
    env_for,
    json_answer,
    json_lines,
    streamed,
)


@pytest.mark.parametrize("profile", [PODMAN, BOLT_WITHOUT_API_HEADER], ids=["ping", "fallback"])
async def test_concurrent_version_calls_fetch_version_once(profile: EngineProfile) -> None:
    engine = FakeEngine({("GET", "/containers/json"): json_answer([])}, profile=profile)

    async def slow_version(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return engine.version(request)

    engine.routes[("GET", "/version")] = slow_version
    env = env_for(engine)
    first, *others = await asyncio.gather(env.version(), env.containers.list(),
                                          env.version(), env.system.version())
    assert engine.count("/version") == 1
    assert others[1] is first and others[2] is first
    await env.aclose()


def podman_live_events(now: float) -> tuple[FakeEngine, list[Body]]:
    event = {"Type": "container", "Action": "start", "time": int(now), "timeNano": int(now * 1e9)}
    bodies: list[Body] = []
    return FakeEngine({("GET", "/events"): streamed([json_lines(event)], "application/json",
                                                    bodies, then_wait=True)}), bodies


async def test_a_consumer_busy_past_the_deadline_is_not_cancelled() -> None:
    now = time.time()
    engine, bodies = podman_live_events(now)
    env = env_for(engine)
    seen = []
    async with asyncio.timeout(5):
        async for event in env.system.events(until=now + 0.1):
            await asyncio.sleep(0.3)  # the consumer's own work outlasts the window
            seen.append(event.action)
    assert seen == ["start"]
    assert bodies[0].closed
    await env.aclose()


def test_the_sync_facade_ends_a_live_window_at_until() -> None:
    now = time.time()
    engine, bodies = podman_live_events(now)
    done: list[list[str]] = []
    with connect_sync(URL, transport=httpx.MockTransport(engine)) as env:
        reader = threading.Thread(target=lambda: done.append(
            [e.action for e in env.system.events(until=now + 0.2)]), daemon=True)
        reader.start()
        reader.join(timeout=3)
        assert done == [["start"]]
    assert bodies[0].closed


def test_a_closed_sync_facade_refuses_calls_cleanly() -> None:
    engine = FakeEngine()
    with connect_sync(URL, transport=httpx.MockTransport(engine)) as env:
        assert env.ping() is True
    with pytest.raises(EnvironmentClosed, match="closed"):  # a GhostPanel error
        env.containers.list()  # no "coroutine was never awaited" (warnings are errors)
    env.close()  # closing again is harmless
