"""``ws /api/v1/events`` on a real agent (``tests/agent_process.py``) and the session's
Podman engine: credentials, 100 subscribers, filters, ``since=``, a slow subscriber and
the agent stopping. Containers are made through the engine directly (``env``); what
the agent's subscribers receive is compared."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ghostpanel_kernel import connect
from ghostpanel_kernel.engine import Container, Environment
from tests.agent_process import (  # noqa: F401 (fixtures)
    RunningAgent,
    agent_factory_fixture,
    agent_fixture,
)
from tests.integration.conftest import MakeContainer, unique
from tests.integration.ws_events import Message, Subscriber, subscribe
from tests.podman_service import BUSYBOX_REFERENCE, PodmanService

pytestmark = pytest.mark.integration

#: Seconds any one wait of these tests may take (a loaded 2-core machine).
WAIT = 60.0


def _about(name: str) -> Callable[[Message], bool]:
    return lambda message: message["data"].get("name") == name


async def _lifecycle(container: Container) -> None:
    """Start the container (``sleep``) and stop it: created, started, died events."""
    await container.start()
    await container.stop(timeout=0)


async def _events_of(subscriber: Subscriber, name: str, last: str = "container.died"
                     ) -> list[str]:
    """The types of the messages about ``name`` up to its ``last`` type."""
    async with asyncio.timeout(WAIT):
        taken = await subscriber.until(lambda m: _about(name)(m) and m["type"] == last)
    return [m["type"] for m in taken if _about(name)(m)]


# -- credentials ----------------------------------------------------------------------

async def test_a_handshake_without_a_good_token_is_refused(agent: RunningAgent) -> None:
    for token in ("", "gpa_not-a-token"):
        with pytest.raises(InvalidStatus) as refused:
            async with subscribe(agent, token=token):
                pass
        assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        async with subscribe(agent, token="gpa_wrong", as_subprotocol=True):
            pass
    assert refused.value.response.status_code == 401
    # A token in the URL query is not a credential (URLs land in logs).
    with pytest.raises(InvalidStatus) as refused:
        async with subscribe(agent, [("token", agent.token)], token=""):
            pass
    assert refused.value.response.status_code == 401


async def test_a_browser_sends_the_token_as_a_subprotocol(agent: RunningAgent) -> None:
    async with subscribe(agent, as_subprotocol=True) as events:
        assert events.connection.subprotocol == "ghostpanel"
        response = events.connection.response
        assert response is not None
        assert agent.token not in str(response.headers)
    async with subscribe(agent) as events:  # the header still works
        assert events.connection.subprotocol is None


async def test_a_bad_query_is_refused_with_a_problem(agent: RunningAgent) -> None:
    for query in ([("since", "yesterday-ish")], [("colour", "red")], [("label", "")]):
        with pytest.raises(InvalidStatus) as refused:
            async with subscribe(agent, query):
                pass
        assert refused.value.response.status_code == 400, query
        assert b"problem" in refused.value.response.headers.get("content-type", "").encode()


# -- fan-out --------------------------------------------------------------------------

async def test_a_hundred_subscribers_get_the_same_events_in_order(
        agent: RunningAgent, make_container: MakeContainer) -> None:
    label = unique("fanout")
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(WAIT * 2):
            subscribers = [await stack.enter_async_context(
                subscribe(agent, [("label", f"gp.test={label}")])) for _ in range(100)]
        names = []
        for _ in range(3):
            container = await make_container(labels={"gp.test": label})
            names.append(container.name)
            await _lifecycle(container)
        last = names[-1]

        async def collect(subscriber: Subscriber) -> list[tuple[str, str, int]]:
            async with asyncio.timeout(WAIT):
                await subscriber.until(lambda m: _about(last)(m)
                                       and m["type"] == "container.died")
            return [(m["type"], m["data"]["name"], m["data"]["time_nano"])
                    for m in subscriber.received[1:]]

        seen = await asyncio.gather(*(collect(s) for s in subscribers))
    first = seen[0]
    assert all(other == first for other in seen), "subscribers saw different sequences"
    for name in names:
        types = [kind for kind, who, _ in first if who == name]
        assert types[:3] == ["container.created", "container.initialized",
                             "container.started"] or types[:2] == [
            "container.created", "container.started"], types
        assert "container.died" in types
    times = [nanos for _, _, nanos in first]
    assert times == sorted(times)


async def test_filters(agent: RunningAgent, make_container: MakeContainer) -> None:
    label = unique("filter")
    kept = await make_container(labels={"gp.test": label, "gp.role": "kept"})
    other = await make_container(labels={"gp.test": label})
    async with contextlib.AsyncExitStack() as stack:
        by_type = await stack.enter_async_context(subscribe(
            agent, [("type", "container.started"), ("label", f"gp.test={label}")]))
        by_action = await stack.enter_async_context(subscribe(
            agent, [("action", "die,start"), ("label", f"gp.test={label}")]))
        by_label = await stack.enter_async_context(subscribe(
            agent, [("label", f"gp.test={label}"), ("label", "gp.role")]))
        by_container = await stack.enter_async_context(subscribe(
            agent, [("container", kept.name), ("container", other.id[:12])]))
        by_kind = await stack.enter_async_context(subscribe(
            agent, [("type", "image"), ("container", kept.name)]))
        for container in (kept, other):
            await _lifecycle(container)
        assert await _events_of(by_type, other.name, "container.started") == [
            "container.started"]
        assert {m["data"]["name"] for m in by_type.received[1:]} == {kept.name, other.name}
        assert {m["type"] for m in by_type.received[1:]} == {"container.started"}
        await _events_of(by_action, other.name)
        assert {m["data"]["action"] for m in by_action.received[1:]} <= {"start", "died",
                                                                         "die"}
        assert "container.started" in {m["type"] for m in by_action.received[1:]}
        await _events_of(by_container, other.name)
        assert {m["data"]["name"] for m in by_container.received[1:]} == {
            kept.name, other.name}
        # The label subscriber saw only the container with both labels: the other's
        # events, which come later, never reached it, so wait for the kept one's end
        # and then for one more event that the filter would let through.
        await _events_of(by_label, kept.name)
        marker = await make_container(labels={"gp.test": label, "gp.role": "marker"})
        await _events_of(by_label, marker.name, "container.created")
        assert {m["data"]["name"] for m in by_label.received[1:]} == {kept.name,
                                                                      marker.name}
        # Type and container together: an image event of that container cannot be.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await by_kind.next()


async def test_since_replays_then_continues_live(
        agent: RunningAgent, env: Environment, make_container: MakeContainer) -> None:
    label = unique("since")
    start = time.time() - 1
    before = await make_container(labels={"gp.test": label})
    await _lifecycle(before)
    rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    for since in (rfc3339, f"{start:.3f}"):
        async with subscribe(agent, [("since", since), ("label", f"gp.test={label}")]
                             ) as events:
            replayed = await _events_of(events, before.name)
            assert replayed[0] == "container.created" and "container.started" in replayed
            live = await make_container(labels={"gp.test": label})
            await _lifecycle(live)
            assert "container.started" in await _events_of(events, live.name)
            keys = [(m["type"], m["data"]["id"], m["data"]["time_nano"])
                    for m in events.received[1:]]
            assert len(keys) == len(set(keys)), "an event came twice"
            times = [nanos for _, _, nanos in keys]
            assert times == sorted(times)


# -- slow subscribers and the agent stopping ------------------------------------------

async def test_a_slow_subscriber_is_closed_and_the_others_get_everything(
        agent_factory: Callable[..., RunningAgent], make_container: MakeContainer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Podman delivers a container's events in bursts (it reads its events file every
    # 250 ms): a queue of 16 holds a burst, never 60 events.
    monkeypatch.setenv("GHOSTPANEL_EVENT_QUEUE_LIMIT", "16")
    agent = agent_factory()
    label = unique("slow")
    # Large labels make large messages, which fill the socket buffers sooner (random
    # hex: the test client does not compress, and neither would deflate much). Podman
    # keeps an event's line under 64 KiB, so ~56 KB each; the kernel alone buffers
    # up to 4 MiB for the connection, so some 150 events are made.
    bulk = os.urandom(28_000).hex()
    async with subscribe(agent, [("label", f"gp.test={label}")]) as fast, \
            subscribe(agent, [("label", f"gp.test={label}")], receive_buffer=4096,
                      max_queue=1) as slow:
        names = []
        for _ in range(30):
            container = await make_container(labels={"gp.test": label, "gp.bulk": bulk})
            names.append(container.name)
            await _lifecycle(container)
            # The fast one reads as they come (its queue must never fill).
            await _events_of(fast, container.name)
        for name in names:
            assert "container.started" in [m["type"] for m in fast.received if
                                           _about(name)(m)]
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT):
                while True:
                    await slow.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
        assert len(slow.received) < len(fast.received)


async def test_the_agent_stopping_closes_subscribers_with_1001(
        agent_factory: Callable[..., RunningAgent]) -> None:
    agent = agent_factory()
    async with subscribe(agent) as events:
        stopped = asyncio.get_running_loop().run_in_executor(None, agent.stop)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT):
                while True:
                    await events.next()
        assert await stopped == 0
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_the_engine_restarting_is_told_and_its_events_keep_coming(
        extra_podman_engine: Callable[..., PodmanService],
        agent_factory: Callable[..., RunningAgent]) -> None:
    # (The engine fixture first: its teardown, which wants no process naming the
    # engine left, then runs after the agent's.)
    engine = extra_podman_engine()
    agent = agent_factory(engine_url=engine.url)
    async with subscribe(agent, [("type", "container")]) as events, \
            connect(engine.url, name="direct") as direct:
        before = await direct.containers.create(image=BUSYBOX_REFERENCE, name=unique(),
                                                command=["sleep", "300"])
        await _events_of(events, before.name, "container.created")
        await asyncio.to_thread(engine.stop)
        async with asyncio.timeout(WAIT):
            lost = await events.until(lambda m: m["type"] == "agent.engine_lost")
        assert lost[-1]["data"]["error"]
        await asyncio.to_thread(engine.start)
        async with asyncio.timeout(WAIT):
            await events.until(lambda m: m["type"] == "agent.engine_back")
        async with connect(engine.url, name="direct-again") as again:
            after = await again.containers.create(image=BUSYBOX_REFERENCE, name=unique(),
                                                  command=["sleep", "300"])
            assert await _events_of(events, after.name, "container.created") == [
                "container.created"]
    types = [m["type"] for m in events.received]
    assert types.count("agent.engine_lost") == 1 and types.count("agent.engine_back") == 1
    created = [m["data"]["name"] for m in events.received if m["type"] == "container.created"]
    assert created == [before.name, after.name]  # the replay after the outage: no repeat
